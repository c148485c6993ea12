"""Stuck sensors: a channel frozen for longer than training ever showed is flagged, led by it.

The rule is learned from the training readings alone (``tsad.model.stuck``): an analog channel
(its readings never repeat) is watched, a quantised one (its readings repeat often) is not; the
limit is at least one window and twice the longest training run. A frozen channel the
autoencoder alone would miss is flagged from the run's first row, in memory and streamed from a
Parquet partition alike; a short flat run is not; ``stuck_rows: 0`` turns it off.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tsad.config import ThresholdConfig
from tsad.ingest.partitions import write_partition
from tsad.model.detector import Detector
from tsad.model.stuck import StuckLimits, repeats, run_lengths

from test_detector import group, synthetic  # noqa: E402


def test_run_lengths_of_flat_runs() -> None:
    column = np.array([1.0, 2.0, 2.0, 2.0, 3.0, np.nan, np.nan, 4.0, 4.0])[:, None]
    assert run_lengths(repeats(column))[:, 0].tolist() == [1, 3, 3, 3, 1, 1, 1, 2, 2]


def test_analog_channels_are_watched_and_quantised_ones_not() -> None:
    rng = np.random.default_rng(0)
    analog = rng.normal(size=5_000)
    analog[100:103] = analog[100]  # its longest training run: 3 readings
    quantised = np.round(rng.normal(size=5_000))  # repeats on about a quarter of its steps
    series = np.stack([analog, quantised], axis=1)
    assert StuckLimits.fit(series, min_rows=4).limits == [7, None]  # 2 x 3 + 1 beats 4
    assert StuckLimits.fit(series, min_rows=32).limits == [32, None]
    assert StuckLimits.fit(series, min_rows=0).limits == [None, None]


@pytest.fixture(scope="module")
def fitted() -> Detector:
    return Detector.fit(group(epochs=10), synthetic(3000, seed=0), checkpoint=False)


def frozen(start: int, rows: int) -> pd.DataFrame:
    frame = synthetic(1000, seed=5)
    frame.iloc[start: start + rows, 1] = frame.iloc[start, 1]
    return frame


def test_a_frozen_channel_is_flagged_from_its_first_row_and_leads(fitted: Detector) -> None:
    assert fitted.stuck_ is not None and fitted.stuck_.limits == [16, 16, 16]  # one window
    assert fitted.metrics_["stuck_watched"] == ["a", "b", "c"]
    scores = fitted.score(frozen(600, 40))
    flagged = scores.aggregate > fitted.threshold
    assert flagged[600:640].all()
    assert scores.aggregate[600:640].min() >= 2 * fitted.threshold  # severity 1 + run / limit
    assert (scores.point_scores[600:640].argmax(axis=1) == 1).all()  # channel b leads

    short = fitted.score(frozen(600, 10)).aggregate  # shorter than a window: not stuck
    unfrozen = fitted.score(synthetic(1000, seed=5)).aggregate
    np.testing.assert_array_equal(short[:590], unfrozen[:590])
    assert short[600:610].max() < 2 * fitted.threshold


def test_a_stuck_run_beside_a_gap_leaves_the_unscored_rows_unscored(fitted: Detector) -> None:
    frame = frozen(560, 100)
    frame.iloc[600:620, 0] = np.nan  # another channel's gap: no window covers these rows
    scores = fitted.score(frame)
    assert np.isnan(scores.aggregate[600:620]).all()
    covered = np.isfinite(scores.aggregate[560:660])
    assert (scores.aggregate[560:660][covered] >= 2 * fitted.threshold).all()


def test_streamed_scores_find_the_same_stuck_rows(fitted: Detector, tmp_path: Path) -> None:
    frame = frozen(600, 40)
    path = tmp_path / "day.parquet"
    write_partition(frame, path)
    streamed = fitted.score_partition(path, read_rows=97)  # chunk edges inside the run
    np.testing.assert_allclose(streamed.aggregate, fitted.score(frame).aggregate, rtol=1e-5)


def test_stuck_rows_zero_turns_the_rule_off_and_old_models_load_without_it(
        fitted: Detector, tmp_path: Path) -> None:
    config = group(epochs=10)
    off = dataclasses.replace(config, threshold=ThresholdConfig(stuck_rows=0))
    detector = Detector.fit(off, synthetic(3000, seed=0), checkpoint=False)
    assert detector.stuck_ is not None and not detector.stuck_.watched
    assert (detector.score(frozen(600, 40)).aggregate[600:640] < 2 * detector.threshold).any()

    fitted.save(tmp_path)
    state = (tmp_path / "state.json")
    stored = state.read_text().replace('"stuck": {', '"stuck_unused": {')  # as saved before
    state.write_text(stored)
    assert Detector.load(tmp_path).stuck_ is None
