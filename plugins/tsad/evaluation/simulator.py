"""A plant simulator: realistic, correlated sensor readings with labelled anomalies.

It fills a SQL "historian" (or dropped csv/parquet files) so the whole pipeline can be run and
judged end to end without a plant. Channels are seeded mixes of shared latent drivers (a daily
demand cycle, load regimes, a slow thermal lag, ambient temperature, a process disturbance), so an
autoencoder has cross-channel structure to learn and the injected anomalies break it.

Determinism: data is generated per (group, UTC day) from ``seed``, so a day is identical whether it
is simulated alone or inside a range. Filters that carry state across midnight are warmed up on
the previous day, and every day starts and ends in the normal regime, so midnight looks normal.

The simulated range is ``days`` site-local days (``config.site_timezone``, UTC by default),
matching how extract cuts days. Timestamps are written in ``source.timestamps_timezone`` (UTC by
default): naive in SQL (SQLAlchemy ``DateTime``), tz-aware in parquet, and in csv as naive text
for UTC or ISO 8601 with the UTC offset otherwise (``tsad.evaluation.historian`` writes them).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from tsad.config import GroupConfig, TsadConfig
from tsad.dates import day_bounds
from tsad.errors import ConfigError
from tsad.evaluation.historian import ANOMALY_TABLE, _write_files, _write_sql

__all__ = ["ANOMALY_TABLE", "KINDS", "InjectedAnomaly", "simulate"]

KINDS = ("spike", "level_shift", "stuck", "correlation_break", "noise")
_REGIME_LEVELS = (0.15, 0.5, 0.9)  # low, normal, high load


@dataclass(frozen=True)
class InjectedAnomaly:
    """One injected anomaly: UTC ``[start, end)`` on ``channels`` of ``group``."""

    group: str
    start: datetime
    end: datetime
    kind: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class _Channel:
    """A channel's fixed character: how it mixes the drivers and how noisy it is."""

    weights: np.ndarray
    offset: float
    span: float
    noise_sd: float


def simulate(
    config: TsadConfig,
    start: date,
    days: int,
    anomaly_days: Sequence[date] = (),
    seed: int = 0,
    historian_url: str | None = None,
) -> list[InjectedAnomaly]:
    """Write ``days`` days from ``start`` for every group; return the anomalies injected.

    Re-running replaces the range's readings and labels (one transaction per SQL group).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    wanted = [start + timedelta(days=i) for i in range(days)]
    anomaly_days = sorted(set(anomaly_days or ()))
    outside = sorted(set(anomaly_days) - set(wanted))
    if outside:
        raise ValueError(
            f"anomaly day {outside[0].isoformat()} is outside the simulated range "
            f"{wanted[0].isoformat()}..{wanted[-1].isoformat()}"
        )
    tz = config.site_timezone
    range_start, range_end = day_bounds(wanted[0], tz)[0], day_bounds(wanted[-1], tz)[1]
    injected: list[InjectedAnomaly] = []
    for group in config.groups:
        frame = _clean_range(group, range_start, range_end, seed)
        labels: list[InjectedAnomaly] = []
        for day in anomaly_days:
            labels += _inject_day(frame, group, day, tz, seed)
        if group.source.kind == "sql":
            url = historian_url or group.source.url
            if url is None:
                raise ConfigError(
                    f"group {group.name!r}: its source uses conn_id {group.source.conn_id!r}; "
                    "pass historian_url to simulate into it"
                )
            _write_sql(frame, group, url, range_start, range_end, labels)
        else:
            _write_files(frame, group, wanted, tz)
        injected += labels
    return injected


# ---------------------------------------------------------------- signals


def _rng(*parts: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``parts`` (Python's ``hash`` is salted)."""
    key = "|".join(str(p) for p in parts).encode()
    return np.random.default_rng([zlib.crc32(key), zlib.adler32(key), len(key)])


def _channel(group: str, name: str) -> _Channel:
    """A channel's character, fixed by group and channel name so any channel list works."""
    rng = _rng("channel", group, name)
    weights = rng.dirichlet([2.0, 2.0, 1.0, 0.7, 0.5])
    weights *= np.where(rng.random(len(weights)) < 0.8, 1.0, -1.0)
    offset = float(rng.uniform(20.0, 250.0))
    span = offset * float(rng.uniform(0.3, 0.6))
    noise_sd = span * float(rng.uniform(0.008, 0.02)) * (3.0 if "vib" in name.lower() else 1.0)
    return _Channel(weights, offset, span, noise_sd)


def _lag(x: np.ndarray, steps: float) -> np.ndarray:
    """First-order lag (exponential smoothing) with time constant ``steps``, starting at x[0]."""
    alpha = 1.0 - np.exp(-1.0 / max(steps, 1e-9))
    y, _ = lfilter([alpha], [1.0, alpha - 1.0], x, zi=[(1.0 - alpha) * x[0]])
    return y


def _day_value(
    name: str, seed: int, group: str, day: date, hours: np.ndarray, lo: float, hi: float
) -> np.ndarray:
    """A per-day random level drawn at each UTC midnight and interpolated, so it is continuous."""
    today, tomorrow = (
        float(_rng(name, seed, group, d.isoformat()).uniform(lo, hi))
        for d in (day, day + timedelta(days=1))
    )
    return today + (tomorrow - today) * hours / 24.0


def _utc_day_drivers(group: str, day: date, seed: int, step_s: int) -> dict[str, np.ndarray]:
    """Stateless drivers of one UTC day; the stateful ones are filtered by ``_utc_day_frame``."""
    n = 86_400 // step_s
    rng = _rng("day", seed, group, day.isoformat())
    hours = np.arange(n) * step_s / 3600.0
    demand = (
        0.5
        + 0.3 * np.sin(2 * np.pi * (hours - 9) / 24)
        + 0.15 * np.sin(4 * np.pi * (hours - 7) / 24)
    )
    demand *= _day_value("demand", seed, group, day, hours, 0.9, 1.1)
    # Regimes: start and end the day in "normal" so midnight is continuous.
    switches = np.sort(rng.uniform(1.0, 23.0, size=int(rng.integers(2, 5))))
    regime = np.full(n, _REGIME_LEVELS[1])
    for i, at in enumerate(switches):
        level = (
            _REGIME_LEVELS[1] if i == len(switches) - 1 else _REGIME_LEVELS[int(rng.integers(0, 3))]
        )
        regime[hours >= at] = level
    ambient = _day_value("ambient", seed, group, day, hours, 0.0, 1.0)
    ambient = 0.6 * ambient + 0.4 * (0.5 + 0.5 * np.sin(2 * np.pi * (hours - 14) / 24))
    shocks = rng.normal(0.0, 1.0, n)
    return {"regime": regime, "demand": demand, "ambient": ambient, "shocks": shocks}


def _utc_day_frame(group: GroupConfig, day: date, seed: int) -> pd.DataFrame:
    """One UTC day of clean readings; filters are warmed up on the previous day."""
    step = group.sampling_seconds
    prev, cur = (
        _utc_day_drivers(group.name, d, seed, step) for d in (day - timedelta(days=1), day)
    )
    n = len(cur["demand"])
    both = {k: np.concatenate([prev[k], cur[k]]) for k in cur}
    per_min = 60.0 / step
    regime = _lag(both["regime"], 5 * per_min)  # a few minutes' ramp between regimes
    load = 0.6 * regime + 0.4 * both["demand"]
    thermal = _lag(load, 60 * per_min)
    tau = 20 * per_min
    disturbance = _lag(both["shocks"], tau) * np.sqrt(2 * tau) * 0.1 + 0.5
    drivers = np.stack([load, thermal, both["demand"], both["ambient"], disturbance])[:, -n:]
    rng = _rng("noise", seed, group.name, day.isoformat())
    columns = {}
    for name in group.channels:
        ch = _channel(group.name, name)
        columns[name] = (
            ch.offset + ch.span * (ch.weights @ drivers) + rng.normal(0.0, ch.noise_sd, n)
        )
    start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
    index = pd.date_range(
        start, periods=n, freq=pd.Timedelta(seconds=step), name="timestamp", unit="us"
    )
    return pd.DataFrame(columns, index=index)


def _clean_range(group: GroupConfig, start: datetime, end: datetime, seed: int) -> pd.DataFrame:
    """Clean readings on the grid in UTC ``[start, end)``, built from whole UTC days."""
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    frames = [
        _utc_day_frame(group, first + timedelta(days=i), seed)
        for i in range((last - first).days + 1)
    ]
    frame = pd.concat(frames)
    return frame[(frame.index >= start) & (frame.index < end)].copy()


# ---------------------------------------------------------------- anomalies


def _inject_day(
    frame: pd.DataFrame, group: GroupConfig, day: date, tz: str, seed: int
) -> list[InjectedAnomaly]:
    """Inject 2-3 non-overlapping anomalies into ``frame`` within the site-local ``day``."""
    rng = _rng("anomaly", seed, group.name, day.isoformat())
    step = pd.Timedelta(seconds=group.sampling_seconds)
    day_start, day_end = (pd.Timestamp(b) for b in day_bounds(day, tz))
    count = int(rng.integers(2, 4))
    kinds = [KINDS[i] for i in rng.permutation(len(KINDS))[:count]]
    slot = (day_end - day_start) / count
    in_day = (frame.index >= day_start) & (frame.index < day_end)
    sigmas = frame[in_day].std()  # the day's normal variation, before anything is injected
    out: list[InjectedAnomaly] = []
    for i, kind in enumerate(kinds):
        minutes = {
            "spike": (3, 10),
            "level_shift": (30, 120),
            "stuck": (90, 180),
            "correlation_break": (60, 120),
            "noise": (30, 120),
        }[kind]
        steps = max(2, int(rng.integers(minutes[0], minutes[1] + 1) * 60 // group.sampling_seconds))
        lo = day_start + i * slot + pd.Timedelta(minutes=20)
        room = max(0, int((slot - pd.Timedelta(minutes=40)) / step) - steps)
        # A stuck sensor only shows if the process moves meanwhile: try a few starts, keep the
        # one where some channel drifts most.
        tries = 8 if kind == "stuck" else 1
        options = [lo + int(k) * step for k in rng.integers(0, room + 1, size=tries)]
        rows = max(
            ((frame.index >= b) & (frame.index < b + steps * step) for b in options),
            key=lambda r: _drift(frame[r] / sigmas).max(),
        )
        channels = _pick_channels(frame[rows] / sigmas, kind, rng)
        for name in channels:
            _apply(
                frame,
                rows,
                name,
                kind,
                float(sigmas[name]),
                _channel(group.name, name).noise_sd,
                rng,
            )
        idx = np.flatnonzero(rows)
        end = frame.index[idx[-1]] + step
        out.append(
            InjectedAnomaly(
                group.name,
                frame.index[idx[0]].to_pydatetime(),
                end.to_pydatetime(),
                kind,
                tuple(channels),
            )
        )
    return out


def _drift(window: pd.DataFrame) -> pd.Series:
    """How far each channel's smoothed trend moves within ``window``."""
    trend = window.rolling(15, min_periods=1, center=True).mean()
    return trend.max() - trend.min()


def _pick_channels(window: pd.DataFrame, kind: str, rng: np.random.Generator) -> list[str]:
    """Channels to disturb; ``window`` is the clean window in units of each channel's sigma."""
    channels = [str(c) for c in window.columns]
    if kind == "stuck":  # freeze the channel that drifts most (not the noisiest), so it shows
        return [channels[int(np.argmax(_drift(window).to_numpy()))]]
    if kind == "noise":
        vib = [c for c in channels if "vib" in c.lower()]
        return (
            [vib[int(rng.integers(len(vib)))]]
            if vib
            else [channels[int(rng.integers(len(channels)))]]
        )
    count = int(rng.integers(1, 3)) if kind == "level_shift" and len(channels) > 1 else 1
    return [channels[i] for i in sorted(rng.choice(len(channels), size=count, replace=False))]


def _apply(
    frame: pd.DataFrame,
    rows: np.ndarray,
    name: str,
    kind: str,
    sigma: float,
    noise_sd: float,
    rng: np.random.Generator,
) -> None:
    """Change ``frame[name]`` on ``rows`` by several ``sigma`` (the day's std), never absurdly."""
    values = frame[name].to_numpy(copy=True)
    seg = values[rows]
    n = len(seg)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "spike":
        seg = seg + sign * sigma * rng.uniform(5.0, 8.0) * rng.uniform(0.6, 1.0, n)
    elif kind == "level_shift":
        seg = seg + sign * sigma * rng.uniform(3.0, 4.5)
    elif kind == "stuck":
        seg = np.full(n, seg[0])
    elif kind == "correlation_break":
        mirrored = 2 * seg.mean() - seg  # moves against the drivers it used to follow
        seg = mirrored + sign * sigma * 3.0 * np.linspace(0.5, 1.0, n)
    elif kind == "noise":
        seg = seg + rng.normal(0.0, max(8 * noise_sd, sigma), n)
    values[rows] = seg
    frame[name] = values
