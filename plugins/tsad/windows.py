"""Sliding windows as zero-copy views, and the rule that turns window errors into point scores.

Tutorials build windows with a Python loop and ``np.stack``, copying the series ``length`` times.
Here a window is a strided view of the series; only one batch of windows is ever gathered.

Window -> point rule: every timestamp's score is the mean of the squared reconstruction errors it
received from every valid window that covers it (one value per channel). Window starts step by
``stride`` and a last window is added flush with the end, so every timestamp of a series at least
one window long is covered. Windows containing a NaN (a gap longer than the fill limit) are
skipped; timestamps no valid window covers get NaN scores and are never flagged.
"""

from __future__ import annotations

import numpy as np


def window_starts(n_timesteps: int, length: int, stride: int) -> np.ndarray:
    """Start indices every ``stride`` steps, plus one flush with the end so nothing is uncovered."""
    if n_timesteps < length:
        return np.empty(0, dtype=np.int64)
    starts = np.arange(0, n_timesteps - length + 1, stride, dtype=np.int64)
    last = n_timesteps - length
    if starts[-1] != last:
        starts = np.append(starts, last)
    return starts


def window_view(series: np.ndarray, length: int) -> np.ndarray:
    """All windows of ``series [n, c]`` as a read-only view ``[n - length + 1, length, c]``."""
    view = np.lib.stride_tricks.sliding_window_view(series, length, axis=0)  # [n-L+1, c, L]
    return view.transpose(0, 2, 1)


def valid_starts(series: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Keep the starts whose window holds no NaN, in O(n) with a prefix sum of bad rows."""
    bad_rows = ~np.isfinite(series).all(axis=1)
    if not bad_rows.any():
        return starts
    prefix = np.concatenate([[0], np.cumsum(bad_rows)])
    return starts[(prefix[starts + length] - prefix[starts]) == 0]


class PointAccumulator:
    """Sums per-position window errors onto timestamps, batch by batch (memory O(n·c))."""

    def __init__(self, n_timesteps: int, n_channels: int) -> None:
        self._sums = np.zeros((n_timesteps, n_channels), dtype=np.float64)
        self._counts = np.zeros(n_timesteps, dtype=np.int64)

    def add(self, starts: np.ndarray, errors: np.ndarray) -> None:
        """Add ``errors [batch, length, c]`` of windows at ``starts [batch]`` (strictly increasing)."""
        if starts.size > 1 and (np.diff(starts) <= 0).any():
            raise ValueError("window starts in a batch must be strictly increasing")
        for offset in range(errors.shape[1]):  # loop over window positions, vectorised over windows
            rows = starts + offset
            self._sums[rows] += errors[:, offset, :]
            self._counts[rows] += 1

    def result(self) -> np.ndarray:
        """Mean error per timestamp and channel; NaN where no valid window covered the point."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._sums / self._counts[:, None]
        out[self._counts == 0] = np.nan
        return out

