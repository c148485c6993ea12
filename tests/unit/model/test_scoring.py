"""The scoring path: the window -> point rule against a plain re-implementation, and streamed
Parquet scoring (row group by row group) against scoring the same day in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from tsad.config import ModelConfig
from tsad.errors import DataError
from tsad.model.networks import CrossChannelBlend, build_detector_network, build_network
from tsad.ingest.partitions import write_partition
from tsad.model.scaling import ChannelScaler
from tsad.model.scoring import Scores, SeriesScorer, score_series
from tsad.model.streaming import score_parquet
from tsad.windows import valid_starts, window_starts, window_view

LENGTH, STRIDE = 16, 4


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_THREADS", "1")  # tiny batches: threads only add barriers


def _network(kind: str, channels: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(ModelConfig(kind=kind, hidden=8, latent=2), channels, LENGTH).eval()


def _series(n: int = 500, c: int = 3, gaps: bool = True) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n)[:, None]
    series = (np.sin(t / 9 + np.arange(c)) + 0.1 * rng.standard_normal((n, c))).astype(np.float32)
    if gaps:
        series[100:103, 1] = np.nan  # a short gap: the windows touching it are skipped
        series[300:330] = np.nan  # a gap longer than a window: points inside stay uncovered
    return series


def _reference(network: torch.nn.Module,
               series: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rule as stated in windows.py, one window at a time in float64."""
    n, c = series.shape
    starts = valid_starts(series, window_starts(n, LENGTH, STRIDE), LENGTH)
    windows = np.ascontiguousarray(window_view(series, LENGTH)[starts])
    with torch.inference_mode():
        x = torch.from_numpy(windows)
        errors = ((network(x) - x) ** 2).double().numpy()
    sums, counts = np.zeros((n, c)), np.zeros(n)
    for start, err in zip(starts, errors):
        sums[start: start + LENGTH] += err
        counts[start: start + LENGTH] += 1
    with np.errstate(invalid="ignore"):
        return starts, errors.mean(axis=1), sums / counts[:, None]


def _scored_as_reference(network: torch.nn.Module, series: np.ndarray) -> Scores:
    """``score_series`` of ``series``, checked against the rule's plain re-implementation."""
    index = pd.date_range("2024-01-01", periods=len(series), freq="min", tz="UTC")
    scores = score_series(network, series, index, LENGTH, STRIDE, batch_size=7)
    starts, window_scores, points = _reference(network, series)
    np.testing.assert_array_equal(scores.window_starts, starts)
    np.testing.assert_allclose(scores.window_scores, window_scores, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores.point_scores, points, rtol=1e-4, atol=1e-6)
    return scores


@pytest.mark.parametrize("kind", ["conv1d", "dense", "lstm"])
def test_scores_follow_the_mean_of_covering_windows_rule(kind: str) -> None:
    series = _series()
    scores = _scored_as_reference(_network(kind, series.shape[1]), series)
    assert np.isnan(scores.aggregate[310:320]).all()  # inside the long gap: never flagged
    assert np.isfinite(scores.aggregate[:100]).all() and np.isfinite(scores.aggregate[-50:]).all()
    assert scores.point_scores.dtype == np.float32 and scores.aggregate.dtype == np.float64


@pytest.mark.parametrize("kind", ["conv1d", "dense"])
def test_cross_channel_blend_scores_as_its_forward_pass(kind: str) -> None:
    """The scorer runs the blend's linear prediction once per row, not inside every window:
    the errors must still be those of the blended reconstruction, window by window."""
    series = _series(c=4)
    torch.manual_seed(0)
    model = ModelConfig(kind=kind, hidden=8, latent=2, cross_channel=0.5)
    network = build_detector_network(model, series.shape[1], LENGTH)
    assert isinstance(network, CrossChannelBlend)
    network.fit_predictor(series)
    scores = _scored_as_reference(network.eval(), series)
    bare = score_series(network.autoencoder, series, scores.timestamps, LENGTH, STRIDE)
    assert not np.allclose(bare.point_scores, scores.point_scores, equal_nan=True)


def test_batch_size_does_not_change_scores() -> None:
    series = _series()
    network = _network("conv1d", series.shape[1])
    index = pd.date_range("2024-01-01", periods=len(series), freq="min", tz="UTC")
    small = score_series(network, series, index, LENGTH, STRIDE, batch_size=5)
    large = score_series(network, series, index, LENGTH, STRIDE)
    np.testing.assert_allclose(small.point_scores, large.point_scores, rtol=1e-5, atol=1e-7)


def test_chunks_that_do_not_overlap_by_a_window_are_rejected() -> None:
    series = _series(gaps=False)
    scorer = SeriesScorer(_network("dense", 3), len(series), 3, LENGTH, STRIDE)
    scorer.add(0, series[:200])
    with pytest.raises(ValueError, match="overlap by length - 1"):
        scorer.add(200, series[200:])


@pytest.mark.parametrize("kind", ["conv1d", "dense"])
@pytest.mark.parametrize("read_rows,row_group", [(64, 100), (7, 1000), (10_000, 128)])
def test_streamed_parquet_scores_equal_in_memory_scores(tmp_path: Path, kind: str, read_rows: int,
                                                        row_group: int) -> None:
    raw = _series(n=1000).astype(np.float64) * 5 + 20
    channels = ["b", "a", "c"]
    index = pd.date_range("2024-01-01", periods=len(raw), freq="min", tz="UTC", name="timestamp")
    frame = pd.DataFrame(raw, index=index, columns=channels)
    path = tmp_path / "readings.parquet"
    write_partition(frame[["c", "a", "b"]], path)  # a different column order on disk
    if row_group:
        table = pq.read_table(path)
        pq.write_table(table, path, row_group_size=row_group)
    scaler = ChannelScaler.fit(raw[:600])
    network = _network(kind, 3)
    in_memory = score_series(network, scaler.transform(raw), index, LENGTH, STRIDE)
    streamed = score_parquet(network, path, channels, LENGTH, STRIDE, scaler, read_rows)
    assert streamed.timestamps.equals(in_memory.timestamps)
    np.testing.assert_array_equal(streamed.window_starts, in_memory.window_starts)
    np.testing.assert_allclose(streamed.window_scores, in_memory.window_scores,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(streamed.point_scores, in_memory.point_scores, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(streamed.aggregate, in_memory.aggregate, rtol=1e-6, atol=1e-7)


def test_streaming_names_a_missing_channel(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=50, freq="min", tz="UTC", name="timestamp")
    path = tmp_path / "readings.parquet"
    write_partition(pd.DataFrame({"a": np.ones(50)}, index=index), path)
    scaler = ChannelScaler.fit(np.ones((50, 2)))
    with pytest.raises(DataError, match="no column 'b'.*re-run extract"):
        score_parquet(_network("dense", 2), path, ["a", "b"], LENGTH, STRIDE, scaler)
    with pytest.raises(DataError, match="does not exist"):
        score_parquet(_network("dense", 2), tmp_path / "nope.parquet", ["a"], LENGTH, STRIDE,
                      scaler)


def test_score_partition_equals_detector_score_of_the_read_frame(tmp_path: Path) -> None:
    from tsad.config import DetectorConfig, WindowConfig
    from tsad.ingest.partitions import partition_path, read_partition
    from tsad.model.detector import Detector

    channels = ["a", "b", "c"]
    index = pd.date_range("2024-01-01", periods=1500, freq="min", tz="UTC", name="timestamp")
    frame = pd.DataFrame(_series(1500).astype(np.float64), index=index, columns=channels)
    group = DetectorConfig(name="pumps", channels=channels,
                           window=WindowConfig(length=LENGTH, stride=STRIDE),
                           model=ModelConfig(kind="conv1d", hidden=8, latent=2, epochs=2))
    detector = Detector.fit(group, frame.iloc[:1000].dropna(), checkpoint=False)
    day = index[1000].date()
    path = partition_path(tmp_path, "pumps", day)
    write_partition(frame.iloc[1000:], path)
    expected = detector.score(read_partition(tmp_path, "pumps", day, channels))
    streamed = detector.score_partition(path, read_rows=100)
    np.testing.assert_array_equal(streamed.window_starts, expected.window_starts)
    np.testing.assert_allclose(streamed.point_scores, expected.point_scores, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(streamed.aggregate, expected.aggregate, rtol=1e-6, atol=1e-9)
