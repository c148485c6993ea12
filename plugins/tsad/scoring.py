"""The scoring path: batched inference over zero-copy windows, errors folded onto timestamps.

Memory stays O(n·c) whatever the window length: windows are gathered one batch at a time from a
strided view, and each batch's errors are added onto per-timestamp sums straight away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from tsad.windows import PointAccumulator, valid_starts, window_starts, window_view

SCORE_BATCH = 4096


@dataclass
class Scores:
    """Reconstruction errors of one series. Higher = more anomalous."""

    timestamps: pd.DatetimeIndex
    window_starts: np.ndarray  # [n_windows] index of each scored window's first timestamp
    window_scores: np.ndarray  # [n_windows, n_channels] mean squared error over the window
    point_scores: np.ndarray  # [n_timesteps, n_channels] mean over the windows covering a point
    aggregate: np.ndarray  # [n_timesteps] mean over channels; NaN where no window covered

    def flags(self, threshold: float) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.aggregate > threshold


def score_series(network: torch.nn.Module, series: np.ndarray, timestamps: pd.DatetimeIndex,
                 length: int, stride: int, batch_size: int = SCORE_BATCH) -> Scores:
    """Score scaled ``series [n, c]``: errors per window, per timestamp and channel, aggregate."""
    n, c = series.shape
    starts = valid_starts(series, window_starts(n, length, stride), length)
    windows = window_view(series, length)
    window_scores = np.empty((len(starts), c), dtype=np.float64)
    points = PointAccumulator(n, c)
    network.eval()
    with torch.inference_mode():
        for lo in range(0, len(starts), batch_size):
            batch_starts = starts[lo: lo + batch_size]
            batch = torch.from_numpy(windows[batch_starts])
            errors = ((network(batch) - batch) ** 2).numpy()
            window_scores[lo: lo + len(batch_starts)] = errors.mean(axis=1)
            points.add(batch_starts, errors)
    point_scores = points.result()
    return Scores(timestamps, starts, window_scores, point_scores, point_scores.mean(axis=1))
