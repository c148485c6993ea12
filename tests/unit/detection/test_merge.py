"""Merging a group's unit scores: one unit passes through, shards merge by severity
(score / own threshold), the lead shard is named per timestamp, a drifted shard is left out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import small_plant
from tsad.config import GroupConfig, TsadConfig, from_dict
from tsad.detection.merge import merge
from tsad.detection.unit_scores import UnitScores
from tsad.errors import DataError

STAMPS = pd.date_range("2026-03-05", periods=4, freq="300s", tz="UTC", name="timestamp")
NAN = np.nan


def pumps(tmp: Path, shards: list[list[str]] | None = None) -> GroupConfig:
    """The small plant's pumps group (flow, pressure, current, temp), sharded if asked."""
    plant = small_plant(tmp)
    if shards is not None:
        plant["groups"][0]["shards"] = {"channels": shards}
    return from_dict(TsadConfig, plant).group("pumps")


def unit(shard: int | None, channels: list[str], threshold: float, aggregate: list[float],
         points: list[list[float]], *, drift: bool = False,
         timestamps: pd.DatetimeIndex = STAMPS) -> UnitScores:
    label = "all" if shard is None else f"s{shard:02d}"
    return UnitScores(
        group="pumps", shard=shard, channels=channels,
        model_version_id=f"pumps/{label}/v0001", model_path=f"/models/pumps/{label}/v0001",
        threshold=threshold, timestamps=timestamps,
        aggregate=np.array(aggregate, dtype=np.float64),
        point_scores=np.array(points, dtype=np.float32), n_windows=4, drift=drift,
        drift_message="moved" if drift else "", started_at=datetime(2026, 3, 6, tzinfo=UTC),
        run_id="run-1", possible_windows=4)


def test_one_unit_passes_through_unchanged(tmp_path: Path) -> None:
    group = pumps(tmp_path)
    points = [[1, 2, 3, 4], [0, 0, 0, 0], [5, 5, 5, 5], [NAN, 1, 1, 1]]
    only = unit(None, list(group.channels), 0.7, [2.5, 0.0, 5.0, NAN], points)
    merged = merge(group, [only])
    assert merged.threshold == 0.7 and merged.channels == group.channels
    np.testing.assert_array_equal(merged.aggregate, only.aggregate)  # NaN stays NaN
    np.testing.assert_array_equal(merged.point_scores, only.point_scores)  # not scaled
    assert merged.lead.tolist() == [0, 0, 0, 0] and merged.drifted == []
    assert merged.source(2) == (5.0, 0.7, "pumps/all/v0001")
    assert merge(group, [unit(None, list(group.channels), 0.7, [1, 1, 1, 1], points,
                              drift=True)]).drifted[0].drift


def test_shards_merge_by_severity_with_the_lead_shard_per_timestamp(tmp_path: Path) -> None:
    # shard order is not group order: columns must land under their own channel
    group = pumps(tmp_path, [["temp", "flow"], ["pressure", "current"]])
    first = unit(1, ["temp", "flow"], 2.0, [1.0, 4.0, NAN, 1.0],
                 [[2, 4], [6, 8], [NAN, NAN], [1, 1]])
    second = unit(2, ["pressure", "current"], 0.5, [0.25, 0.25, 0.25, 1.0],
                  [[0.5, 1], [0.5, 0.5], [1, 2], [NAN, 0.5]])
    merged = merge(group, [first, second])
    assert merged.threshold == 1.0 and merged.channels == ["flow", "pressure", "current", "temp"]
    # severity = max over shards of score / own threshold; NaN never leads
    np.testing.assert_allclose(merged.aggregate, [0.5, 2.0, 0.5, 2.0])
    assert merged.lead.tolist() == [0, 0, 1, 1]  # a tie goes to the first shard
    assert merged.source(1) == (4.0, 2.0, "pumps/s01/v0001")
    assert merged.source(2) == (0.25, 0.5, "pumps/s02/v0001")
    assert merged.source(3) == (1.0, 0.5, "pumps/s02/v0001")
    # channel scores in units of their own shard's threshold; NaN scores become 0
    expected = np.array([[4 / 2, 0.5 / 0.5, 1 / 0.5, 2 / 2],
                         [8 / 2, 0.5 / 0.5, 0.5 / 0.5, 6 / 2],
                         [0, 1 / 0.5, 2 / 0.5, 0],
                         [1 / 2, 0, 0.5 / 0.5, 1 / 2]], dtype=np.float32)
    np.testing.assert_allclose(merged.point_scores, expected)
    assert merged.drifted == [] and merged.units == [first, second]


def test_a_drifted_shard_is_left_out_of_the_merge(tmp_path: Path) -> None:
    group = pumps(tmp_path, [["flow", "pressure"], ["current", "temp"]])
    steady = unit(1, ["flow", "pressure"], 1.0, [0.5, NAN, 0.2, 3.0],
                  [[1, 1], [1, 1], [1, 1], [1, 1]])
    moved = unit(2, ["current", "temp"], 1.0, [9.0, 9.0, 9.0, 9.0],
                 [[9, 9], [9, 9], [9, 9], [9, 9]], drift=True)
    merged = merge(group, [steady, moved])
    np.testing.assert_array_equal(merged.aggregate, [0.5, NAN, 0.2, 3.0])
    assert merged.lead.tolist() == [0, 0, 0, 0]
    assert merged.drifted == [moved]
    np.testing.assert_array_equal(merged.point_scores[:, 2:], 0)  # its channels add nothing
    also_moved = unit(1, ["flow", "pressure"], 1.0, [1, 1, 1, 1], [[1, 1]] * 4, drift=True)
    both = merge(group, [also_moved, moved])
    assert np.isnan(both.aggregate).all() and len(both.drifted) == 2  # nothing left to score


def test_shards_with_different_timestamps_are_refused_naming_both(tmp_path: Path) -> None:
    group = pumps(tmp_path, [["flow", "pressure"], ["current", "temp"]])
    first = unit(1, ["flow", "pressure"], 1.0, [1, 1, 1, 1], [[1, 1]] * 4)
    short = unit(2, ["current", "temp"], 1.0, [1, 1, 1], [[1, 1]] * 3, timestamps=STAMPS[:3])
    with pytest.raises(DataError, match=r"scores of pumps/s01 and pumps/s02 cover different "
                                        r"timestamps \(4 and 3 rows\).*re-run the group's "
                                        "score tasks"):
        merge(group, [first, short])
    shifted = unit(2, ["current", "temp"], 1.0, [1, 1, 1, 1], [[1, 1]] * 4,
                   timestamps=STAMPS + pd.Timedelta(seconds=1))
    with pytest.raises(DataError, match="pumps/s01 and pumps/s02"):
        merge(group, [first, shifted])


def test_no_units_is_an_error_naming_the_group(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="group 'pumps': no unit scores to merge"):
        merge(pumps(tmp_path), [])
