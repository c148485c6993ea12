"""Reference detectors computed in the same run as tsad's: flag-everything, persistence, PCA,
rolling z-score.

Each is fitted on the same training rows as tsad's detector. A baseline's threshold is the
``BASELINE_Q`` quantile of its scores on the training rows. Flag-everything, persistence and PCA
score each test row on its own (no smoothing, no events), as the benchmark's published baselines
do; the rolling z-score is given tsad's events rule, so it compares with tsad event for event.

- flag everything: every test row is anomalous (the floor any detector must clear on F1).
- persistence: x[t] = x[t-1]; score = mean over channels of the squared one-step change, in
  training standard deviations.
- PCA T²+Q: standardise, keep the principal components that explain ``PCA_VARIANCE`` of the
  training variance; T² = Hotelling's statistic in that subspace, Q = squared residual outside it.
  Score = max(T² / T²-limit, Q / Q-limit), each limit its training quantile; flagged above 1.
- rolling z-score: per channel, z[t] = |x[t] - mean| / std of the ``w`` rows before t (its own
  ``w`` per channel, in rows); score = the largest z over the channels; flags = tsad's events
  rule (``tsad.detection.events.event_mask``) over the score and the threshold. ``w`` is chosen
  on the training rows alone, without labels: among ``ROLLING_WINDOWS`` (up to a quarter of the
  training rows), the one whose rolling mean and std best predict the next reading (lowest mean
  Gaussian negative log-likelihood over the same training rows for every candidate). Test rows
  continue from the last ``w`` training rows, as a deployed rolling detector would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsad.config import EventConfig
from tsad.detection.events import event_mask
from tsad.errors import DataError
from tsad.model.scaling import ChannelScaler

BASELINE_Q = 0.99
PCA_VARIANCE = 0.9
ROLLING_WINDOWS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)  # candidates, in rows
STD_FLOOR = 1e-3  # a rolling std is at least this share of the channel's training std


def _finite_quantile(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("inf")


class FlagAll:
    """Every row anomalous."""

    name = "flag everything"

    def fit(self, train: pd.DataFrame) -> FlagAll:
        return self

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(frame)
        return np.ones(n), np.ones(n, dtype=bool)


@dataclass
class _FittedPersistence:
    scaler: ChannelScaler
    threshold: float

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        scores = _one_step_change(self.scaler.transform(frame.to_numpy(dtype=np.float64)))
        with np.errstate(invalid="ignore"):
            return scores, scores > self.threshold


def _one_step_change(z: np.ndarray) -> np.ndarray:
    out = np.full(len(z), np.nan)
    if len(z) > 1:
        out[1:] = np.mean((z[1:].astype(np.float64) - z[:-1]) ** 2, axis=1)
    return out


class Persistence:
    """The naive forecaster x[t] = x[t-1] used as a detector."""

    name = "persistence x[t]=x[t-1]"

    def fit(self, train: pd.DataFrame) -> _FittedPersistence:
        raw = train.to_numpy(dtype=np.float64)
        scaler = ChannelScaler.fit(raw)
        return _FittedPersistence(scaler, _finite_quantile(_one_step_change(scaler.transform(raw)),
                                                           BASELINE_Q))


@dataclass
class _FittedPca:
    scaler: ChannelScaler
    components: np.ndarray  # [c, k]
    variances: np.ndarray  # [k]
    t2_limit: float
    q_limit: float

    def statistics(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = z @ self.components
        t2 = np.sum(t**2 / self.variances, axis=1)
        q = np.sum((z - t @ self.components.T) ** 2, axis=1)
        return t2, q

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        z = self.scaler.transform(frame.to_numpy(dtype=np.float64)).astype(np.float64)
        t2, q = self.statistics(z)
        scores = np.maximum(t2 / self.t2_limit, q / self.q_limit)
        with np.errstate(invalid="ignore"):
            return scores, scores > 1.0


class PcaT2Q:
    """Principal component analysis with Hotelling's T² and the Q (SPE) statistic."""

    name = "PCA T²+Q"

    def fit(self, train: pd.DataFrame) -> _FittedPca:
        raw = train.to_numpy(dtype=np.float64)
        scaler = ChannelScaler.fit(raw)
        z = scaler.transform(raw).astype(np.float64)
        z = z[np.isfinite(z).all(axis=1)]
        _, singular, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        variances = singular**2 / max(len(z) - 1, 1)
        share = np.cumsum(variances) / max(variances.sum(), 1e-12)
        k = int(min(np.searchsorted(share, PCA_VARIANCE) + 1, len(variances)))
        k = min(k, max(len(variances) - 1, 1))  # keep a residual subspace for Q
        fitted = _FittedPca(scaler, vt[:k].T, np.maximum(variances[:k], 1e-12), 1.0, 1.0)
        t2, q = fitted.statistics(z)
        fitted.t2_limit = max(_finite_quantile(t2, BASELINE_Q), 1e-12)
        fitted.q_limit = max(_finite_quantile(q, BASELINE_Q), 1e-12)
        return fitted


@dataclass
class _FittedRollingZ:
    windows: list[int]  # per channel, in rows
    floors: np.ndarray  # [c] smallest rolling std used
    history: np.ndarray  # [max(windows), c] the last training rows
    threshold: float
    events: EventConfig

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raw = frame.to_numpy(dtype=np.float64)
        scores = _rolling_z(np.vstack([self.history, raw]), self.windows,
                            self.floors)[len(self.history):]
        if not (math.isfinite(self.threshold) and self.threshold > 0):
            return scores, np.zeros(len(scores), dtype=bool)
        return scores, event_mask(scores, self.threshold, self.events)


def _rolling_stats(x: np.ndarray, window: int, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (floored) of the ``window`` rows before each row; NaN where too few."""
    rolling = pd.Series(x).rolling(window, min_periods=max(2, (window + 1) // 2))
    mean = rolling.mean().shift(1).to_numpy()
    std = rolling.std().shift(1).to_numpy()
    return mean, np.fmax(std, floor)


def _rolling_z(raw: np.ndarray, windows: list[int], floors: np.ndarray) -> np.ndarray:
    """Largest |z| over the channels per row (NaN where no channel has a z)."""
    z = np.full(raw.shape, np.nan)
    for c, (window, floor) in enumerate(zip(windows, floors)):
        mean, std = _rolling_stats(raw[:, c], window, floor)
        z[:, c] = np.abs(raw[:, c] - mean) / std
    with np.errstate(invalid="ignore"):
        return np.fmax.reduce(z, axis=1) if z.shape[1] else np.full(len(z), np.nan)


def _best_window(x: np.ndarray, candidates: list[int], floor: float) -> int:
    """The candidate whose rolling mean/std predict the next reading best (lowest mean Gaussian
    negative log-likelihood), compared on the rows every candidate can predict."""
    first = max(candidates)
    losses = []
    for window in candidates:
        mean, std = _rolling_stats(x, window, floor)
        nll = np.log(std[first:]) + 0.5 * ((x[first:] - mean[first:]) / std[first:]) ** 2
        finite = nll[np.isfinite(nll)]
        losses.append(float(finite.mean()) if finite.size else math.inf)
    return candidates[int(np.argmin(losses))]


class RollingZScore:
    """Each channel against its own recent past: the classic rolling z-score, given tsad's
    events rule (``events``, default: a new group's) so it compares event for event."""

    name = "rolling z-score (events)"

    def __init__(self, events: EventConfig | None = None) -> None:
        self.events = events or EventConfig()

    def fit(self, train: pd.DataFrame) -> _FittedRollingZ:
        raw = train.to_numpy(dtype=np.float64)
        if len(raw) < 8:
            raise DataError(f"the rolling z-score needs at least 8 training rows, got {len(raw)}")
        candidates = [w for w in ROLLING_WINDOWS if w <= len(raw) // 4] or [2]
        with np.errstate(invalid="ignore"):
            spread = np.nanstd(raw, axis=0)
        floors = np.maximum(STD_FLOOR * np.nan_to_num(spread), 1e-12)
        windows = [_best_window(raw[:, c], candidates, floors[c]) for c in range(raw.shape[1])]
        scores = _rolling_z(raw, windows, floors)
        history = raw[len(raw) - max(windows):]
        return _FittedRollingZ(windows, floors, history, _finite_quantile(scores, BASELINE_Q),
                               self.events)
