"""Block-at-a-time statistics agree with numpy's whole-array ones (the oracle), gaps included.

Block sizes from one row to more than the array cover every edge: a step across two blocks is
counted once, a row with a NaN in any channel is left out of the steps and the covariance as
numpy's filters leave it out, and a channel without a reading gets NaN, as ``np.nanmean`` does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tsad.model.moments import column_moments, finite_row_covariance, step_variance


@pytest.fixture
def readings() -> np.ndarray:
    rng = np.random.default_rng(7)
    x = (rng.normal(50.0, 3.0, (1_000, 4)) + np.linspace(0, 20, 1_000)[:, None]).astype(
        np.float32)
    x[[3, 500, 999], 1] = np.nan  # single gaps, one on the last row
    x[100:130, 2] = np.nan  # a longer gap in one channel
    return x


@pytest.mark.parametrize("rows", [1, 7, 64, 999, 1_000, 5_000, None])
def test_block_statistics_equal_numpy_on_the_whole_array(readings: np.ndarray,
                                                         rows: int | None) -> None:
    x = readings.astype(np.float64)
    count, mean, var = column_moments(readings, rows)
    assert count.tolist() == np.isfinite(x).sum(axis=0).tolist()
    np.testing.assert_allclose(mean, np.nanmean(x, axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, np.nanvar(x, axis=0), rtol=1e-10)

    steps = np.diff(x, axis=0)
    steps = steps[np.isfinite(steps).all(axis=1)]
    np.testing.assert_allclose(step_variance(readings, rows), steps.var(axis=0), rtol=1e-10)

    complete = x[np.isfinite(x).all(axis=1)]
    n, centre, covariance = finite_row_covariance(readings, rows)
    assert n == len(complete)
    np.testing.assert_allclose(centre, complete.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(covariance, np.cov(complete, rowvar=False), rtol=1e-10,
                               atol=1e-12)


def test_a_channel_without_readings_gets_nan_like_numpy() -> None:
    x = np.ones((10, 2))
    x[:, 1] = np.nan
    count, mean, var = column_moments(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(x, axis=0)
    assert count.tolist() == [10, 0]
    assert mean[0] == expected[0] == 1.0 and np.isnan(mean[1]) and np.isnan(expected[1])
    assert var[0] == 0.0 and np.isnan(var[1])


def test_no_complete_step_gives_nan_not_an_error() -> None:
    x = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan]])
    assert np.isnan(step_variance(x)).all()
