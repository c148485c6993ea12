"""A unit's scratch scores: written and read back exactly, one folder per Airflow run, removed
once consumed, and errors that name the unit and the task to re-run."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tsad.detection.unit_scores import (
    UnitScores,
    read_scratch,
    remove_scratch,
    scratch_dir,
    scratch_path,
    write_scratch,
)
from tsad.errors import DataError

DAY = date(2026, 3, 5)
RUN = "scheduled__2026-03-06T01:30:00+00:00"


def scores(n: int = 50, shard: int | None = 2) -> UnitScores:
    rng = np.random.default_rng(7)
    aggregate = rng.random(n) / 3  # full float64 precision must survive
    aggregate[[0, 1, n - 1]] = np.nan  # no window covered these
    points = rng.random((n, 2)).astype(np.float32)
    points[0] = np.nan
    return UnitScores(
        group="pumps", shard=shard, channels=["temp", "flow"],
        model_version_id="pumps/s02/v0004", model_path="/models/pumps/s02/v0004",
        threshold=0.123456789012345,
        timestamps=pd.date_range("2026-03-05", periods=n, freq="300s", tz="Europe/Berlin",
                                 name="ts"),
        aggregate=aggregate, point_scores=points, n_windows=31, drift=True,
        drift_message="62% of points above the threshold",
        started_at=datetime(2026, 3, 6, 1, 30, 12, 345678, tzinfo=UTC), run_id=RUN,
        possible_windows=44, missing={"temp": 3},
        implausible={"flow": {"count": 2, "first": "2026-03-05T04:10:00+00:00"}})


def test_scratch_scores_round_trip_exactly(tmp_path: Path) -> None:
    written = scores()
    path = scratch_path(tmp_path, "pumps", DAY, RUN, 2)
    write_scratch(written, path)
    read = read_scratch(path, "pumps/s02")
    np.testing.assert_array_equal(read.aggregate, written.aggregate)  # NaN where NaN
    assert read.aggregate.dtype == np.float64
    np.testing.assert_array_equal(read.point_scores, written.point_scores)
    assert read.point_scores.dtype == np.float32 and read.point_scores.shape == (50, 2)
    # the same instants, in UTC, under the partition's time column name
    assert read.timestamps.equals(written.timestamps.tz_convert("UTC"))
    assert str(read.timestamps.tz) == "UTC" and read.timestamps.name == "timestamp"
    same = {f.name for f in dataclasses.fields(UnitScores)} - {
        "timestamps", "aggregate", "point_scores"}
    assert {k: getattr(read, k) for k in same} == {k: getattr(written, k) for k in same}
    assert read.label == "pumps/s02"


def test_an_unsharded_unit_and_an_empty_day_round_trip(tmp_path: Path) -> None:
    empty = dataclasses.replace(scores(), shard=None, timestamps=scores().timestamps[:0],
                                aggregate=np.zeros(0), point_scores=np.zeros((0, 2), np.float32),
                                n_windows=0, missing={}, implausible={})
    path = scratch_path(tmp_path, "pumps", DAY, RUN, None)
    write_scratch(empty, path)
    read = read_scratch(path, "pumps")
    assert read.shard is None and len(read.timestamps) == 0 and read.point_scores.shape == (0, 2)
    assert read.channels == ["temp", "flow"] and read.n_windows == 0


def test_scores_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    bad = dataclasses.replace(scores(), point_scores=np.zeros((50, 3), np.float32))
    with pytest.raises(ValueError, match=r"scores of pumps/s02: shapes \(50,\) and \(50, 3\) "
                                         "for 50 timestamps and 2 channels"):
        write_scratch(bad, tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_scratch_paths_are_per_group_day_run_and_unit(tmp_path: Path) -> None:
    path = scratch_path(tmp_path, "pumps", DAY, RUN, 2)
    folder = tmp_path / "scores" / "group=pumps" / "date=2026-03-05"
    assert Path(path).parent.parent == folder and Path(path).name == "s02.parquet"
    assert Path(path).parent == Path(scratch_dir(tmp_path, "pumps", DAY, RUN))
    assert Path(scratch_path(tmp_path, "pumps", DAY, RUN, None)).name == "all.parquet"
    run_folder = Path(path).parent.name
    assert run_folder.startswith("run=scheduled__2026-03-06T01_30_00_00_00-")
    assert ":" not in run_folder and "+" not in run_folder
    # another run of the same day (a backfill beside the nightly run) gets a folder of its own,
    # even when the run ids differ only in characters the folder name cannot hold
    for other in ("manual__2026-03-06T01:30:00+00:00", "scheduled__2026-03-06T01_30_00_00_00"):
        assert Path(scratch_path(tmp_path, "pumps", DAY, other, 2)).parent != Path(path).parent
    assert scratch_path(tmp_path, "pumps", DAY, RUN, 2) == path  # and the same run the same one
    remote = scratch_path("s3://bucket/tsad/data", "pumps", DAY, RUN, 1)
    assert isinstance(remote, str) and remote.startswith(
        "s3://bucket/tsad/data/scores/group=pumps/date=2026-03-05/run=") \
        and remote.endswith("/s01.parquet")


def test_reading_missing_or_bad_scratch_names_the_unit_and_the_fix(tmp_path: Path) -> None:
    path = scratch_path(tmp_path, "pumps", DAY, RUN, 2)
    with pytest.raises(DataError, match=f"no scores of pumps/s02 at {path}: its ensure_model "
                                        "or score task did not finish in this run"):
        read_scratch(path, "pumps/s02")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="scores of pumps/s02 at .* are unreadable .*re-run its "
                                        "score task"):
        read_scratch(path, "pumps/s02")
    pq.write_table(pa.table({"timestamp": [1], "aggregate": [0.5]}), path)  # no tsad metadata
    with pytest.raises(DataError, match="are unreadable"):
        read_scratch(path, "pumps/s02")


def test_remove_scratch_removes_the_files_then_the_empty_run_folder(tmp_path: Path) -> None:
    first = scratch_path(tmp_path, "pumps", DAY, RUN, 1)
    second = scratch_path(tmp_path, "pumps", DAY, RUN, 2)
    other_run = scratch_path(tmp_path, "pumps", DAY, "manual__x", 1)
    for path, shard in ((first, 1), (second, 2), (other_run, 1)):
        write_scratch(dataclasses.replace(scores(), shard=shard), path)
    remove_scratch([first])
    assert not first.exists() and second.exists()  # the folder keeps the other unit's file
    remove_scratch([second, first])  # an already removed file is no error
    assert not Path(first).parent.exists()
    assert other_run.exists()  # another run's scores are left alone
