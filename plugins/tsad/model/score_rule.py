"""The score rule: how a model's per-channel reconstruction errors become one score per timestamp.

Steps (the raw errors of step 1 come from ``tsad.model.scoring``):

2. Weights: ``normalise: mean`` divides each channel by its mean held-out error, so a one-channel
   anomaly is not drowned by noisier channels. When the training range holds fewer than
   ``short_range_windows`` windows' worth of rows (20 x 32 = 640 rows by default) a channel
   whose training rows hold few independent values, n_eff = n / (2 R) with persistence factor
   R = var(x) / (var(x[t] - x[t-1]) / 2), is also divided by (effective_samples / n_eff)² when
   n_eff < effective_samples: a slow channel (a temperature over a test bench's minutes) has not
   shown its normal range yet. Days of training have seen a slow channel's daily cycle, and a
   discount there would hide a sustained level shift on it. The rule counts rows, never
   seconds; ``short_range_seconds``, when set, replaces it with the former rule (a range
   shorter than that many seconds).
3. Smoothing: a centred moving power mean over ``smoothing_rows`` rows (``tsad.model.smoothing``).
4. Aggregate: ``max`` over channels (default) or ``mean``.
5. Threshold: fitted on held-out single-point scores shrunk toward their mean (in the space the
   rule averages in, scores**p) by ``shrink`` = sqrt(max(1, rows / window length)), the factor by
   which averaging rows / length independent windows narrows a normal score's spread.
   ``scope: channel`` fits one threshold per channel, divides each channel by it and takes the
   max (threshold 1).

A ``ScoreRule`` is fitted with its model and saved with it (``state.json``), so an old model keeps
the rule it was calibrated with. Its defaults are the rule of models saved before rules existed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsad.config import ThresholdConfig
from tsad.model.smoothing import apply_rule


@dataclass(frozen=True)
class ScoreRule:
    """Steps 2-5 as fitted for one model (module docstring)."""

    normalise: str = "none"
    effective_samples: float = 0.0
    smoothing_rows: int = 1
    smoothing_power: float = 1.0
    aggregate: str = "mean"
    scope: str = "aggregate"
    shrink: float = 1.0

    @classmethod
    def for_training(cls, cfg: ThresholdConfig, sampling_seconds: float,
                     timestamps: pd.DatetimeIndex, window_length: int) -> ScoreRule:
        """The rule a model trained on rows at ``timestamps`` gets from its settings. With the
        defaults it depends on row counts only, never on ``sampling_seconds``."""
        rows = smoothing_rows(cfg, sampling_seconds)
        short = is_short_range(cfg, timestamps, sampling_seconds, window_length)
        return cls(normalise=cfg.normalise,
                   effective_samples=float(cfg.effective_samples) if short else 0.0,
                   smoothing_rows=rows, smoothing_power=cfg.smoothing_power,
                   aggregate=cfg.aggregate, scope=cfg.scope,
                   shrink=math.sqrt(max(1.0, rows / window_length)))

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScoreRule:
        """A saved rule; keys an older save lacks keep the defaults (the rule it used)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def uses_max(self) -> bool:
        return self.aggregate == "max" or self.scope == "channel"

    def apply(self, points: np.ndarray, weights: np.ndarray,
              divisors: np.ndarray | None = None) -> np.ndarray:
        """Steps 2-4 on ``points [n, c]`` in place; returns the aggregate ``[n]``."""
        return apply_rule(points, weights, int(self.smoothing_rows), divisors,
                          self.uses_max or divisors is not None, power=float(self.smoothing_power))

    def combine(self, channel_scores: np.ndarray) -> np.ndarray:
        """Step 4 alone, for single-point scores (calibration)."""
        if channel_scores.shape[0] == 0:
            return np.empty(0)
        with np.errstate(invalid="ignore"):
            out = (channel_scores.max(axis=1) if self.uses_max
                   else channel_scores.mean(axis=1))
        return out.astype(np.float64)

    def narrowed(self, single: np.ndarray) -> np.ndarray:
        """Held-out single-point scores as smoothed scores of normal data would spread: shrunk
        toward their mean by ``shrink`` in the space the rule averages in (``score ** power``),
        per column. The max over channels commutes with the power, so aggregates qualify too."""
        power = float(self.smoothing_power)
        lifted = np.power(np.asarray(single, dtype=np.float64), power)
        centre = lifted.mean(axis=0)
        return np.power(np.maximum(centre + (lifted - centre) / self.shrink, 0.0), 1.0 / power)


def smoothing_rows(cfg: ThresholdConfig, sampling_seconds: float) -> int:
    """Rows in the smoothing average: ``smoothing_rows``, or ``smoothing_seconds`` over the
    sampling step when that is set; at least 1."""
    if cfg.smoothing_seconds is None:
        return max(1, int(cfg.smoothing_rows))
    return max(1, int(round(cfg.smoothing_seconds / max(sampling_seconds, 1e-9))))


def training_seconds(timestamps: pd.DatetimeIndex, sampling_seconds: float) -> float:
    """How long a training range lasts: first to last timestamp plus one sampling step."""
    if len(timestamps) == 0:
        return 0.0
    return float((timestamps[-1] - timestamps[0]).total_seconds()) + float(sampling_seconds)


def is_short_range(cfg: ThresholdConfig, timestamps: pd.DatetimeIndex, sampling_seconds: float,
                   window_length: int) -> bool:
    """Whether a training range gets the slow-channel discount: fewer rows than
    ``short_range_windows`` windows (a test bench's minutes, one short process run), or, when
    ``short_range_seconds`` is set, a shorter span of time than that."""
    if cfg.short_range_seconds is not None:
        return training_seconds(timestamps, sampling_seconds) < cfg.short_range_seconds
    return len(timestamps) < cfg.short_range_windows * window_length


#: A channel's held-out error scale is at least this share of the median channel's, and at
#: least ``ERROR_FLOOR`` (scaled units squared): a channel that was constant or perfectly
#: reconstructed in the held-out rows would otherwise be divided by ~0 and flag any later wiggle.
RELATIVE_FLOOR, ERROR_FLOOR = 0.05, 1e-4


def error_scale(errors: np.ndarray, normalise: str) -> tuple[np.ndarray, np.ndarray]:
    """Each channel's held-out error scale (``normalise``: mean or median; none: 1), floored,
    and the indices of the channels whose scale was raised to the floor (degenerate)."""
    if normalise == "none":
        return np.ones(errors.shape[1]), np.zeros(0, dtype=np.int64)
    scale = np.mean(errors, axis=0) if normalise == "mean" else np.median(errors, axis=0)
    scale = np.where(np.isfinite(scale), scale, 0.0)
    floor = max(ERROR_FLOOR, RELATIVE_FLOOR * float(np.median(scale)) if scale.size else 0.0)
    degenerate = np.flatnonzero(scale < floor)
    return np.maximum(scale, floor), degenerate


def channel_weights(errors: np.ndarray, persistence: np.ndarray, n_rows: int,
                    normalise: str = "mean", effective_samples: float = 0.0) -> np.ndarray:
    """Step 2: 1 / (error scale x (effective_samples / n_eff)² if n_eff is short)."""
    scale, _ = error_scale(errors, normalise)
    discount = np.ones_like(persistence)
    if effective_samples > 0:
        discount = np.maximum(1.0, effective_samples * 2.0 * persistence / n_rows) ** 2
    return 1.0 / (np.maximum(scale, 1e-12) * discount)


def persistence_factor(series: np.ndarray) -> np.ndarray:
    """Per channel, var(x) / (var(x[t] - x[t-1]) / 2), at least 1 (rows with a NaN skipped);
    a block of rows at a time (``tsad.model.moments``)."""
    from tsad.model.moments import column_moments, step_variance

    step_var = step_variance(series) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = column_moments(series)[2] / step_var
    return np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)
