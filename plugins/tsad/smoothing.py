"""The score rule's smoothing and channel combination, in blocks of rows of constant size.

A day's per-channel errors are the biggest array of a run; the rule (weights, a centred moving
average, per-channel thresholds, the aggregate over channels) used to make four float64 copies of
it and gather cumulative sums with index arrays. Here each block of ``BLOCK_ROWS`` rows is read
once with the rows around it that its moving average needs, computed in float64 (the block's
cumulative sums stay exact enough whatever the day's length) and written back in place, so the
rule adds a few MB whatever the day's size and runs at memory speed.
"""

from __future__ import annotations

import numpy as np

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
               block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Weight, smooth over ``width`` rows and divide ``scores [n, c]`` in place; return the
    aggregate over channels (float64 ``[n]``: ``max``, or ``mean`` when ``use_max`` is false;
    NaN where any channel is NaN).

    Row i of the result is ``mean(finite weights * scores[rows around i]) / divisors``, exactly
    the moving average above, block by block: block [a, b) reads rows [a - before, b + after),
    whose first ``before`` rows it keeps from before the previous block overwrote them.
    """
    n, c = scores.shape
    before, after = (width - 1) // 2, width // 2
    block_rows = max(block_rows, width)
    weights = np.asarray(weights, dtype=np.float64)
    divisors = None if divisors is None else np.asarray(divisors, dtype=np.float64)
    aggregate = np.empty(n, dtype=np.float64)
    kept = np.empty((0, c))  # original (weighted) rows [a - before, a), already overwritten
    for a in range(0, n, block_rows):
        b = min(n, a + block_rows)
        end = min(n, b + after)
        segment = np.concatenate([kept, np.asarray(scores[a:end], dtype=np.float64) * weights])
        start = a - len(kept)  # global row of segment[0]
        finite = np.isfinite(segment)
        smoothed = _block_average(segment, finite, a - start, b - a, before, after)
        smoothed[~finite[a - start: b - start]] = np.nan
        if divisors is not None:
            smoothed /= divisors
        with np.errstate(invalid="ignore"):
            aggregate[a:b] = smoothed.max(axis=1) if use_max else smoothed.mean(axis=1)
        kept = segment[max(0, b - before - start): b - start]
        scores[a:b] = smoothed
    return aggregate


def _block_average(segment: np.ndarray, finite: np.ndarray, first: int, rows: int, before: int,
                   after: int) -> np.ndarray:
    """Moving average of ``rows`` rows of ``segment`` from local row ``first``.

    Cumulative sums get a zero row in front; the window's edges are clipped to the series (not
    the block) by repeating the cumulative sum's first or last value, so every row's sum is one
    subtraction of two contiguous slices.
    """
    width = before + after + 1
    zero = np.zeros((1, segment.shape[1]))
    all_finite = bool(finite.all())
    sums = np.concatenate([zero, np.cumsum(segment if all_finite else np.where(finite, segment, 0.0),
                                           axis=0)])
    pad_front = before - first  # rows of the window before the series' first row
    pad_back = (first + rows + after) - len(segment)  # ... after its last row
    pads = ((max(pad_front, 0), max(pad_back, 0)), (0, 0))
    if pad_front > 0 or pad_back > 0:
        sums = np.pad(sums, pads, mode="edge")
    lo = first - before + max(pad_front, 0)  # index of row `first`'s window start in the pads
    window_sums = sums[lo + width: lo + width + rows] - sums[lo: lo + rows]
    if all_finite:  # counts are the window's width, clipped at the series' ends
        local = np.arange(first, first + rows)
        rows_in = np.minimum(local + after, len(segment) - 1) - np.maximum(local - before, 0) + 1
        return window_sums / rows_in[:, None]
    counts = np.concatenate([zero, np.cumsum(finite, axis=0, dtype=np.float64)])
    if pad_front > 0 or pad_back > 0:
        counts = np.pad(counts, pads, mode="edge")
    with np.errstate(invalid="ignore", divide="ignore"):
        return window_sums / (counts[lo + width: lo + width + rows] - counts[lo: lo + rows])
