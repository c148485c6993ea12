"""Per-channel means, variances and covariances of a training range, a block of rows at a time.

numpy's ``nanmean``/``nanvar``/``cov`` copy the whole ``[rows, channels]`` array two to four
times in float64 (the NaN-filled copy, the centred copy, the squares): for a week of 1 Hz
readings that is several times the training data itself, and it was the peak of a model's
training (bench/RESULTS.md, *training memory*). These walk ``BLOCK_VALUES`` values at a time in
float64, in two passes (the mean, then squared deviations: as accurate as numpy's), so the extra
memory is one block, whatever the range's length.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

#: values per block (8 MB of float64): the extra memory, whatever the range's length
BLOCK_VALUES = 1 << 20


def _blocks(x: np.ndarray, rows: int | None, overlap: int = 0) -> Iterator[np.ndarray]:
    """Consecutive blocks of ``rows`` rows of ``x`` as float64, each but the first starting
    ``overlap`` rows early (``overlap=1``: no difference across a block edge is lost)."""
    rows = rows or max(1, BLOCK_VALUES // max(x.shape[1], 1))
    for start in range(0, len(x), rows):
        yield np.asarray(x[max(0, start - overlap): start + rows], dtype=np.float64)


def column_moments(x: np.ndarray,
                   rows: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, mean, var)`` per column of ``x [n, c]``, NaN ignored (``np.nanmean`` /
    ``np.nanvar`` with ``ddof=0``); NaN where a column has no reading."""
    c = x.shape[1]
    count, total = np.zeros(c), np.zeros(c)
    for block in _blocks(x, rows):
        present = ~np.isnan(block)
        count += present.sum(axis=0)
        total += np.where(present, block, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    squares = np.zeros(c)
    for block in _blocks(x, rows):
        deviation = block - mean
        squares += np.where(np.isnan(block), 0.0, deviation * deviation).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, mean, np.where(count > 0, squares / count, np.nan)


def step_variance(x: np.ndarray, rows: int | None = None) -> np.ndarray:
    """Per column, the variance of ``x[t] - x[t-1]`` over the steps whose two rows are finite
    in every column (the rows ``np.diff`` then a finite-row filter would keep)."""
    def steps() -> Iterator[np.ndarray]:
        for block in _blocks(x, rows, overlap=1):
            diff = np.diff(block, axis=0)
            yield diff[np.isfinite(diff).all(axis=1)]

    c = x.shape[1]
    count, total = 0, np.zeros(c)
    for diff in steps():
        count += len(diff)
        total += diff.sum(axis=0)
    if count == 0:
        return np.full(c, np.nan)
    mean, squares = total / count, np.zeros(c)
    for diff in steps():
        squares += ((diff - mean) ** 2).sum(axis=0)
    return squares / count


def finite_row_covariance(x: np.ndarray,
                          rows: int | None = None) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, covariance)`` of the rows of ``x [n, c]`` finite in every column (the
    covariance with ``ddof=1``, as ``np.cov(rowvar=False)``)."""
    c = x.shape[1]
    count, total = 0, np.zeros(c)
    for block in _blocks(x, rows):
        block = block[np.isfinite(block).all(axis=1)]
        count += len(block)
        total += block.sum(axis=0)
    mean = total / max(count, 1)
    products = np.zeros((c, c))
    for block in _blocks(x, rows):
        centred = block[np.isfinite(block).all(axis=1)] - mean
        products += centred.T @ centred
    return count, mean, products * (1.0 / max(count - 1, 1))  # as np.cov scales
