"""The score rule's block-wise smoothing equals the plain definition, whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from tsad.model.smoothing import apply_rule, moving_average


def naive_average(values: np.ndarray, width: int) -> np.ndarray:
    """Row i: mean of the finite values among rows i - (width-1)//2 .. i + width//2; NaN stays."""
    n = len(values)
    out = np.full(values.shape, np.nan)
    for i in range(n):
        lo, hi = max(0, i - (width - 1) // 2), min(n, i + width // 2 + 1)
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                window = values[lo:hi, j]
                out[i, j] = window[np.isfinite(window)].mean()
    return out


def test_moving_average_by_hand() -> None:
    values = np.array([[1.0], [2.0], [np.nan], [4.0], [5.0]])
    np.testing.assert_allclose(moving_average(values, 3)[:, 0], [1.5, 1.5, np.nan, 4.5, 4.5])
    np.testing.assert_allclose(moving_average(values, 2)[:, 0], [1.5, 2.0, np.nan, 4.5, 5.0])
    np.testing.assert_array_equal(moving_average(values, 1), values)


@pytest.mark.parametrize("n,width,block", [(50, 7, 7), (50, 7, 8), (64, 6, 16), (33, 1, 4),
                                           (20, 40, 40), (200, 11, 1000)])
def test_blocks_match_the_definition(n: int, width: int, block: int) -> None:
    rng = np.random.default_rng(n + width)
    values = rng.random((n, 3))
    values[rng.random(n) < 0.15] = np.nan  # uncovered rows
    values[3:6, 1] = np.nan  # one channel's gap
    weights = np.array([1.0, 2.0, 0.5])
    scores = values.astype(np.float32)
    aggregate = apply_rule(scores, weights, width, block_rows=block)
    expected = naive_average(values.astype(np.float32).astype(np.float64) * weights, width)
    np.testing.assert_allclose(scores, expected, rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(aggregate, expected.max(axis=1), rtol=1e-6, equal_nan=True)


def test_divisors_and_mean_aggregate() -> None:
    scores = np.array([[1.0, 4.0], [3.0, 8.0], [5.0, 0.0]])
    aggregate = apply_rule(scores, np.ones(2), 1, divisors=np.array([1.0, 4.0]), use_max=False)
    np.testing.assert_allclose(scores, [[1.0, 1.0], [3.0, 2.0], [5.0, 0.0]])
    np.testing.assert_allclose(aggregate, [1.0, 2.5, 2.5])


def test_works_in_place_in_float32() -> None:
    scores = np.ones((10, 2), dtype=np.float32)
    before = scores.ctypes.data
    apply_rule(scores, np.array([2.0, 3.0]), 3, block_rows=4)
    assert scores.dtype == np.float32 and scores.ctypes.data == before
    np.testing.assert_allclose(scores, np.tile([2.0, 3.0], (10, 1)))


@pytest.mark.parametrize("power", [0.5, 0.75])
@pytest.mark.parametrize("block", [5, 1000])
def test_power_mean_matches_the_definition(power: float, block: int) -> None:
    """``power`` p: each row is the mean of errors ** p around it, raised back to 1 / p."""
    rng = np.random.default_rng(7)
    values = rng.random((60, 2)) ** 3
    values[10:13, 0] = np.nan
    scores = values.copy()
    aggregate = apply_rule(scores, np.array([1.0, 3.0]), 9, block_rows=block, power=power)
    expected = naive_average((values * [1.0, 3.0]) ** power, 9) ** (1 / power)
    np.testing.assert_allclose(scores, expected, rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(aggregate, expected.max(axis=1), rtol=1e-9, equal_nan=True)


def test_power_mean_keeps_a_short_burst_from_outranking_a_long_weak_anomaly() -> None:
    """Why p < 1: the plain mean spreads a short, strong burst's energy over the whole width, so
    normal rows beside it outrank a long, weaker anomaly; averaging amplitudes does not."""
    errors = np.ones((400, 1))
    errors[100:103] = 400.0  # a 3-row burst: 20 in amplitude
    errors[250:350] = 4.0  # a long anomaly: 2 in amplitude
    beside_burst, inside_long = 100 - 20, 300  # a normal row 20 rows before the burst
    plain = apply_rule(errors.copy(), np.ones(1), 60)
    amplitude = apply_rule(errors.copy(), np.ones(1), 60, power=0.5)
    assert plain[beside_burst] > plain[inside_long]
    assert amplitude[beside_burst] < amplitude[inside_long]
