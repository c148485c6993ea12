"""Sliding windows as zero-copy views, and the rule that turns window errors into point scores.

Tutorials build windows with a Python loop and ``np.stack``, copying the series ``length`` times.
Here a window is a strided view of the series; only one batch of windows is ever gathered.

Window -> point rule: every timestamp's score is the mean of the squared reconstruction errors it
received from every valid window that covers it (one value per channel). Window starts step by
``stride`` and a last window is added flush with the end, so every timestamp of a series at least
one window long is covered. Windows containing a NaN (a gap longer than the fill limit) are
skipped; timestamps no valid window covers get NaN scores and are never flagged.

The fold (window errors -> per-timestamp sums) is vectorised: consecutive windows one stride
apart are added as ``length / stride`` contiguous block slabs, not one window position at a time.
"""

from __future__ import annotations

import numpy as np
import torch

MAX_RUNS_PER_FOLD = 16  # more irregular runs than this in one batch: one scatter-add instead


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
    finite = np.isfinite(series)
    if finite.all():  # the usual case, 10x cheaper than the per-row test below
        return starts
    bad_rows = ~finite.all(axis=1)
    prefix = np.concatenate([[0], np.cumsum(bad_rows)])
    return starts[(prefix[starts + length] - prefix[starts]) == 0]


def coverage_counts(starts: np.ndarray, length: int, n_timesteps: int) -> np.ndarray:
    """How many of the windows at ``starts`` cover each timestamp, in O(n) (difference array)."""
    opened = np.bincount(starts, minlength=n_timesteps + 1)
    closed = np.bincount(starts + length, minlength=n_timesteps + 1)
    return np.cumsum(opened[:n_timesteps] - closed[:n_timesteps]).astype(np.int32)


def gather_windows(series: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """Windows ``[len(starts), length, c]`` of ``series [n, c]``: one batch copied, never all.

    Every model takes this contiguous ``[B, L, c]`` memory as it is (the convolutional one reads
    it as channels-last), so a batch is copied once.
    """
    n, c = series.shape
    view = series.as_strided((n - length + 1, length, c), (c, c, 1), series.storage_offset())
    return torch.index_select(view, 0, starts)


def fold_windows(out: torch.Tensor, starts: np.ndarray, errors: torch.Tensor) -> None:
    """Add ``errors [B, length, c]`` of the windows at ``starts`` (increasing) onto ``out [n, c]``.

    Runs of evenly spaced windows are added as a few slabs; a batch broken into many runs (gaps
    everywhere) falls back to one scatter-add.
    """
    count, length, channels = errors.shape
    if count == 0:
        return
    runs = _even_runs(starts)
    if len(runs) > MAX_RUNS_PER_FOLD:
        rows = torch.from_numpy(starts)[:, None] + torch.arange(length)
        out.index_add_(0, rows.reshape(-1), errors.reshape(-1, channels).to(out.dtype))
        return
    for lo, hi in runs:
        _fold_run(out, int(starts[lo]), int(starts[lo + 1] - starts[lo]) if hi - lo > 1 else length,
                  errors[lo:hi])


def _even_runs(starts: np.ndarray) -> list[tuple[int, int]]:
    """Split ``starts`` into index ranges ``[lo, hi)`` whose members are one constant step apart."""
    if len(starts) <= 2:
        return [(0, len(starts))]
    steps = np.diff(starts)
    runs, lo = [], 0
    for j in (np.flatnonzero(steps[1:] != steps[:-1]) + 1).tolist():  # window j+1: a new step
        runs.append((lo, j + 1))
        lo = j + 1
    runs.append((lo, len(starts)))
    return runs


def _fold_run(out: torch.Tensor, first: int, step: int, errors: torch.Tensor) -> None:
    """Fold the windows at ``first, first + step, ...`` onto ``out``."""
    count, length, channels = errors.shape
    if step > length or length % step:
        # slabs do not tile the run: one strided add per window position (each vectorised)
        for offset in range(length):
            stop = first + offset + step * (count - 1) + 1
            out[first + offset: stop: step] += errors[:, offset]
        return
    per_window = length // step
    span = out[first: first + step * (count - 1 + per_window)]
    blocks = span.view(count - 1 + per_window, step, channels)
    for k in range(per_window):  # block k of every window lands on consecutive blocks
        blocks[k: k + count] += errors[:, k * step: (k + 1) * step]


class PointAccumulator:
    """Sums per-position window errors onto timestamps, batch by batch (memory O(n·c))."""

    def __init__(self, n_timesteps: int, n_channels: int) -> None:
        self._sums = np.zeros((n_timesteps, n_channels), dtype=np.float64)
        self._counts = np.zeros(n_timesteps, dtype=np.int64)

    def add(self, starts: np.ndarray, errors: np.ndarray) -> None:
        """Add ``errors [batch, length, c]`` of windows at ``starts`` (strictly increasing)."""
        starts = np.asarray(starts, dtype=np.int64)
        if starts.size > 1 and (np.diff(starts) <= 0).any():
            raise ValueError("window starts in a batch must be strictly increasing")
        fold_windows(torch.from_numpy(self._sums), starts,
                     torch.from_numpy(np.asarray(errors, dtype=np.float64)))
        self._counts += coverage_counts(starts, errors.shape[1], len(self._counts))

    def result(self) -> np.ndarray:
        """Mean error per timestamp and channel; NaN where no valid window covered the point."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._sums / self._counts[:, None]
        out[self._counts == 0] = np.nan
        return out
