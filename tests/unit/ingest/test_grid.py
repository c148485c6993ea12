"""The day's grid, filled batch by batch, against the pandas rules tsad applied to a whole frame.

The oracle is the old whole-frame code in a few lines: duplicates by groupby (mean, first, last),
long rows unstacked, ``reindex(method='nearest', tolerance=step / 2)``, short gaps forward-filled.
Random rows (on and between grid points, repeated, shuffled, NaN) are fed in random batches.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsad.ingest.grid import Grid
from tsad.windows import valid_starts, window_starts

STEP = 60_000_000  # us
N = 120
START = 1_704_153_600_000_000  # 2024-01-02 UTC, us


def oracle(stamps: np.ndarray, codes: np.ndarray, values: np.ndarray, channels: int,
           policy: str, limit: int) -> np.ndarray:
    rows = pd.DataFrame({"t": stamps, "c": codes, "v": values})
    if policy in ("first", "last"):
        rows = rows.drop_duplicates(["t", "c"], keep=policy)
    wide = rows.groupby(["t", "c"], sort=True)["v"].mean().unstack("c")
    wide = wide.reindex(columns=range(channels))
    grid = START + np.arange(N, dtype=np.int64) * STEP
    snapped = wide.reindex(grid, method="nearest", tolerance=STEP // 2).to_numpy()
    carried = pd.DataFrame(snapped).ffill().to_numpy()
    out = snapped.copy()
    for j in range(channels):
        gaps = np.diff(np.concatenate([[0], np.isnan(snapped[:, j]).astype(np.int8), [0]]))
        for lo, hi in zip(np.flatnonzero(gaps == 1), np.flatnonzero(gaps == -1), strict=True):
            if hi - lo <= limit:
                out[lo:hi, j] = carried[lo:hi, j]
    return out.T


@pytest.mark.parametrize("seed", range(12))
def test_long_rows_in_batches_match_the_whole_frame_rules(seed: int) -> None:
    rng = np.random.default_rng(seed)
    channels, m = 3, 500
    slots = rng.integers(0, N, m)
    offsets = rng.choice([0, 0, 0, 10, -10, 30, -30, 29, 45], m) * 1_000_000
    stamps = np.clip(START + slots * STEP + offsets, START, START + N * STEP - 1)
    codes = rng.integers(0, channels, m)
    values = np.round(rng.normal(size=m), 3)
    values[rng.random(m) < 0.05] = np.nan
    for policy in ("mean", "first", "last"):
        limit = int(rng.choice([0, 2, 5]))
        grid = Grid(START, START + N * STEP, STEP, channels, long=True)
        cuts = np.sort(rng.choice(np.arange(1, m), 6, replace=False))
        for part in np.split(np.arange(m), cuts):
            grid.add(stamps[part], values[part], part.astype(np.int64), codes[part])
        count, _ = grid.duplicates()
        assert count == m - len(set(zip(stamps.tolist(), codes.tolist(), strict=True)))
        grid.settle(policy)
        grid.fill(limit)
        expected = oracle(stamps, codes, values, channels, policy, limit)
        np.testing.assert_allclose(grid.values, expected, rtol=1e-12, equal_nan=True)


def test_masked_windows_count_as_scoring_skips_them() -> None:
    rng = np.random.default_rng(3)
    grid = Grid(START, START + N * STEP, STEP, 2, long=False)
    grid.values[:] = rng.normal(size=grid.values.shape)
    grid.values[0, rng.integers(0, N, 7)] = np.nan
    for length, stride in ((6, 3), (10, 7), (N, 1), (N + 1, 1)):
        starts = window_starts(N, length, stride)
        expected = len(starts) - len(valid_starts(grid.values.T, starts, length))
        assert grid.masked_windows(length, stride) == expected


def test_a_reading_halfway_serves_both_neighbours_and_the_later_wins_a_tie() -> None:
    grid = Grid(START, START + 3 * STEP, STEP, 1, long=False)
    half = STEP // 2
    grid.add(np.array([START + half, START + 3 * half]), np.array([[1.0], [2.0]]), np.arange(2))
    grid.settle("mean")
    # point 0 takes the reading 30 s after it; point 1 is 30 s from both and takes the later;
    # point 2 takes the reading 30 s before it
    np.testing.assert_array_equal(grid.values[0], [1.0, 2.0, 2.0])
    expected = oracle(np.array([START + half, START + 3 * half]), np.zeros(2, dtype=int),
                      np.array([1.0, 2.0]), 1, "mean", 0)
    np.testing.assert_array_equal(expected[0][:3], [1.0, 2.0, 2.0])
