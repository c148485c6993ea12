"""Windowing: views not copies, full coverage, and the window -> point rule on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from tsad.windows import PointAccumulator, valid_starts, window_starts, window_view


def test_window_view_is_a_view_not_a_copy() -> None:
    series = np.arange(20, dtype=np.float32).reshape(10, 2)
    view = window_view(series, 4)
    assert view.shape == (7, 4, 2)
    assert np.shares_memory(view, series)
    np.testing.assert_array_equal(view[3], series[3:7])


@pytest.mark.parametrize("n,length,stride", [(10, 4, 3), (10, 4, 2), (64, 32, 8), (33, 32, 8), (32, 32, 32)])
def test_window_starts_cover_every_timestamp(n: int, length: int, stride: int) -> None:
    starts = window_starts(n, length, stride)
    covered = np.zeros(n, dtype=bool)
    for s in starts:
        covered[s: s + length] = True
    assert covered.all()
    assert starts[-1] == n - length
    assert (np.diff(starts) > 0).all()


def test_series_shorter_than_a_window_has_no_windows() -> None:
    assert window_starts(5, 8, 2).size == 0


def test_windows_touching_nan_are_skipped() -> None:
    series = np.ones((12, 2))
    series[5, 1] = np.nan
    starts = valid_starts(series, np.arange(9), 4)
    assert list(starts) == [0, 1, 6, 7, 8]


def test_point_scores_are_the_mean_of_covering_windows() -> None:
    acc = PointAccumulator(6, 1)
    # window at 0 covers 0..3 with error 1; window at 2 covers 2..5 with error 3
    acc.add(np.array([0, 2]), np.array([[[1.0]] * 4, [[3.0]] * 4]))
    np.testing.assert_allclose(acc.result()[:, 0], [1, 1, 2, 2, 3, 3])


def test_uncovered_points_are_nan() -> None:
    acc = PointAccumulator(6, 1)
    acc.add(np.array([0]), np.ones((1, 3, 1)))
    result = acc.result()[:, 0]
    assert np.isnan(result[3:]).all() and (result[:3] == 1).all()


def test_unordered_batch_is_rejected() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        PointAccumulator(6, 1).add(np.array([2, 0]), np.ones((2, 3, 1)))
