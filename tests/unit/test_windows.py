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


# ---------------------------------------------------------------- vectorised fold and gather

import torch  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from tsad.windows import coverage_counts, fold_windows, gather_windows  # noqa: E402


def _naive_fold(n: int, starts: np.ndarray, errors: np.ndarray) -> np.ndarray:
    out = np.zeros((n, errors.shape[2]))
    for start, err in zip(starts, errors):
        out[start: start + errors.shape[1]] += err
    return out


@settings(max_examples=150, deadline=None)
@given(length=st.integers(2, 12), extra=st.integers(0, 60), stride=st.integers(1, 12),
       drop=st.lists(st.integers(0, 80), max_size=6), transposed=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fold_equals_window_by_window_addition(length: int, extra: int, stride: int,
                                               drop: list[int], transposed: bool,
                                               seed: int) -> None:
    n = length + extra
    starts = window_starts(n, length, min(stride, length))
    starts = np.delete(starts, [d % len(starts) for d in drop][: len(starts) - 1])  # gaps
    errors = np.random.default_rng(seed).random((len(starts), length, 2)).astype(np.float32)
    source = torch.from_numpy(errors)
    if transposed:  # errors in any memory layout (a model may return a strided view)
        source = torch.from_numpy(np.ascontiguousarray(errors.transpose(0, 2, 1))).transpose(1, 2)
    out = torch.zeros(n, 2)
    fold_windows(out, starts, source)
    np.testing.assert_allclose(out.numpy(), _naive_fold(n, starts, errors), rtol=1e-6, atol=1e-6)
    counts = coverage_counts(starts, length, n)
    ones = np.ones((len(starts), length, 1))
    np.testing.assert_array_equal(counts, _naive_fold(n, starts, ones)[:, 0])


def test_fold_of_many_irregular_runs_uses_one_scatter_and_agrees() -> None:
    starts = np.cumsum(np.arange(20))  # a different step between every pair of windows
    errors = np.random.default_rng(0).random((len(starts), 8, 3))
    out = torch.zeros(200, 3, dtype=torch.float64)
    fold_windows(out, starts, torch.from_numpy(errors))
    np.testing.assert_allclose(out.numpy(), _naive_fold(200, starts, errors))


def test_gather_copies_one_batch_with_the_view_values() -> None:
    series = np.random.default_rng(1).random((50, 3)).astype(np.float32)
    starts = np.array([0, 7, 20, 42])
    batch = gather_windows(torch.from_numpy(series), torch.from_numpy(starts), 8)
    assert batch.shape == (4, 8, 3)
    assert not np.shares_memory(batch.numpy(), series)
    np.testing.assert_array_equal(batch.numpy(), window_view(series, 8)[starts])
    assert batch.is_contiguous()
