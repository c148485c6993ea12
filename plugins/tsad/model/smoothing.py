"""The score rule's smoothing and channel combination, in blocks of rows of constant size.

A day's per-channel errors are the biggest array of a run. The rule (weights, a centred moving
power mean, per-channel thresholds, the aggregate over channels) reads each block of
``BLOCK_ROWS`` rows once, with the rows around it that its moving mean needs, computes in
float64 (the block's cumulative sums stay exact enough whatever the day's length or an outlier's
size) and writes the block back in place: the rule adds a few MB whatever the day's size. The
passes over a block are torch ops (the cumulative sum and the max over channels run several times
faster than numpy's along these axes, and the elementwise ones use every thread).
"""

from __future__ import annotations

import numpy as np
import torch

BLOCK_ROWS = 1 << 15  # rows per block: 32k rows x 30 channels x 8 bytes = 8 MB of float64


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``values [n, c]``: row i averages the finite rows among
    i - (width-1)//2 .. i + width//2; a NaN row stays NaN (no window covered it: never flagged).
    Returns a new float64 array."""
    out = np.array(values, dtype=np.float64)
    if out.shape[0]:
        apply_rule(out, np.ones(out.shape[1]), width)
    return out


def apply_rule(scores: np.ndarray, weights: np.ndarray, width: int,
               divisors: np.ndarray | None = None, use_max: bool = True,
               block_rows: int = BLOCK_ROWS, power: float = 1.0) -> np.ndarray:
    """Weight, smooth over ``width`` rows and divide ``scores [n, c]`` in place; return the
    aggregate over channels (float64 ``[n]``: ``max``, or ``mean`` when ``use_max`` is false;
    NaN where any channel is NaN).

    Row i of the result is ``mean(finite (weights * scores[rows around i]) ** power) ** (1 /
    power) / divisors``: with ``power`` 1 exactly the moving average above. Block by block:
    block [a, b) reads rows [a - before, b + after), whose first ``before`` rows it keeps from
    before the previous block overwrote them.
    """
    n, c = scores.shape
    before, after = (width - 1) // 2, width // 2
    block_rows = max(block_rows, width)
    gain = torch.from_numpy(np.asarray(weights, dtype=np.float64) ** power)
    scale = None if divisors is None else torch.from_numpy(
        1.0 / np.asarray(divisors, dtype=np.float64))
    aggregate = np.empty(n, dtype=np.float64)
    kept = torch.empty((0, c), dtype=torch.float64)  # lifted rows [a - before, a), overwritten
    dtype = torch.from_numpy(scores[:0]).dtype  # powers run in it: float32 halves their bytes
    for a in range(0, n, block_rows):
        b = min(n, a + block_rows)
        fresh = torch.from_numpy(np.asarray(scores[a: min(n, b + after)])).clone()
        segment = torch.cat([kept, _power_(fresh, power).to(torch.float64).mul_(gain)])
        start = a - len(kept)  # global row of segment[0]
        means = _window_means(segment, start, a, b, n, before, after)
        smoothed = _power_(means.to(dtype), 1.0 / power)
        if scale is not None:
            smoothed.mul_(scale)
        aggregate[a:b] = (torch.amax(smoothed, dim=1) if use_max
                          else smoothed.mean(dim=1)).numpy()
        kept = segment[max(0, b - before - start): b - start]
        scores[a:b] = smoothed.numpy()
    return aggregate


def _power_(values: torch.Tensor, exponent: float) -> torch.Tensor:
    """``values ** exponent`` in place (non-negative errors), with fast paths for the rule's
    usual powers: roots and squares run at memory speed, ``pow`` does not."""
    if exponent == 1.0:
        return values
    if exponent == 0.5:
        return values.sqrt_()
    if exponent == 2.0:
        return values.mul_(values)
    if exponent == 0.75:  # sqrt(x) * sqrt(sqrt(x))
        root = values.sqrt_()
        return root.mul_(root.sqrt())
    if abs(exponent - 4.0 / 3.0) < 1e-12:  # cbrt(x) ** 4
        cube_root = torch.from_numpy(np.cbrt(values.numpy(), out=values.numpy()))
        return cube_root.mul_(cube_root).mul_(cube_root)
    return values.pow_(exponent)


def _window_means(segment: torch.Tensor, start: int, a: int, b: int, n: int, before: int,
                  after: int) -> torch.Tensor:
    """Mean of the finite values among rows i - before .. i + after (clipped to the series
    [0, n)) for each global row i in [a, b), from ``segment`` (global rows from ``start``).
    A row whose own value is not finite stays NaN.

    One cumulative sum with a zero row in front; every row's sum is then the difference of two
    of its rows, two contiguous slices for the rows whose window the series' ends do not clip.
    """
    finite = np.isfinite(segment.numpy())
    all_finite = bool(finite.all())
    values = segment if all_finite else torch.where(torch.from_numpy(finite), segment, 0.0)
    sums = _prefix_sums(values)
    rows = np.arange(a, b)
    lo = np.maximum(rows - before, 0) - start
    hi = np.minimum(rows + after + 1, n) - start
    first = min(max(before - a, 0), b - a)  # rows [first, last) of the block: windows unclipped
    last = max(min(n - after - a, b - a), first)
    window_sums = _differences(sums, lo, hi, first, last)
    if all_finite:
        return window_sums.div_(torch.from_numpy((hi - lo).astype(np.float64))[:, None])
    counts = _differences(_prefix_sums(torch.from_numpy(finite.astype(np.float64))), lo, hi,
                          first, last)
    means = window_sums.div_(counts)
    means[torch.from_numpy(~finite[a - start: b - start])] = float("nan")
    return means


def _prefix_sums(values: torch.Tensor) -> torch.Tensor:
    """``[m + 1, c]`` cumulative sums over rows with a zero row in front."""
    sums = torch.empty((len(values) + 1, values.shape[1]), dtype=torch.float64)
    sums[0] = 0.0
    torch.cumsum(values, dim=0, out=sums[1:])
    return sums


def _differences(sums: torch.Tensor, lo: np.ndarray, hi: np.ndarray, first: int,
                 last: int) -> torch.Tensor:
    """``sums[hi] - sums[lo]``, where ``lo`` and ``hi`` step by one over rows [first, last):
    two contiguous slices there, gathers for the few rows before and after (clipped windows)."""
    out = torch.empty((len(lo), sums.shape[1]), dtype=torch.float64)
    if last > first:
        size, top, bottom = last - first, int(hi[first]), int(lo[first])
        torch.sub(sums[top: top + size], sums[bottom: bottom + size], out=out[first:last])
    for part in (slice(0, first), slice(last, len(lo))):
        if part.stop > part.start:
            out[part] = (sums.index_select(0, torch.from_numpy(hi[part]))
                         - sums.index_select(0, torch.from_numpy(lo[part])))
    return out
