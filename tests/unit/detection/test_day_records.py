"""A group-day's records from hand-made unit scores: the run row, transient and sustained events,
and points that match the events, with severity = score / threshold on every row."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import small_plant
from tsad.config import TsadConfig, from_dict
from tsad.detection.day_records import DayRecords, build_records
from tsad.detection.merge import merge
from tsad.detection.unit_scores import UnitScores

DAY = date(2026, 3, 5)
STAMPS = pd.date_range("2026-03-05 06:00", periods=12, freq="300s", tz="UTC", name="timestamp")
STARTED = datetime(2026, 3, 6, 1, 30, tzinfo=UTC)
# pumps: events min_points 2, merge_gap 3, top_channels 2 (conftest.small_plant)
CHANNELS = ["flow", "pressure", "current", "temp"]


@pytest.fixture(autouse=True)
def quiet_plots(caplog: pytest.LogCaptureFixture) -> None:
    """The hand-made units name no real model, so their event plots fail (logged, no plot)."""
    caplog.set_level(logging.CRITICAL, logger="tsad.pipeline")


def plant(tmp: Path, shards: list[list[str]] | None = None,
          timezone: str = "UTC") -> TsadConfig:
    raw = small_plant(tmp)
    raw["site_timezone"] = timezone
    if shards is not None:
        raw["groups"][0]["shards"] = {"channels": shards}
    return from_dict(TsadConfig, raw)


def unit(shard: int | None, channels: list[str], threshold: float, aggregate: list[float],
         points: np.ndarray | None = None, *, drift: bool = False, n_windows: int = 9,
         possible_windows: int = 9) -> UnitScores:
    label = "all" if shard is None else f"s{shard:02d}"
    if points is None:  # channel j scores (j + 1) / 10 of the aggregate: the last one leads
        weights = np.arange(1, len(channels) + 1, dtype=np.float32) / 10
        points = np.outer(np.nan_to_num(aggregate), weights)
    return UnitScores(
        group="pumps", shard=shard, channels=channels,
        model_version_id=f"pumps/{label}/v0003", model_path=str(Path("/nowhere") / label),
        threshold=threshold, timestamps=STAMPS, aggregate=np.array(aggregate, dtype=np.float64),
        point_scores=np.asarray(points, dtype=np.float32), n_windows=n_windows, drift=drift,
        drift_message="day moved away from the model" if drift else "",
        started_at=STARTED, run_id="run-1", possible_windows=possible_windows)


def build(config: TsadConfig, units: list[UnitScores], **kwargs: Any) -> DayRecords:
    group = config.group("pumps")
    return build_records(config, group, DAY, merge(group, units), "tsad_nightly", "run-1",
                         STARTED, {"filled_cells": 2}, **kwargs)


def assert_points_match(records: DayRecords) -> None:
    """Every stored point lies in a stored transient event, and severity = score / threshold."""
    for point in records.points:
        assert point.severity == pytest.approx(point.score / point.threshold)
        assert any(e.start_ts <= point.ts <= e.end_ts and e.kind == "transient"
                   for e in records.events), point
    for event in records.events:
        assert event.severity == pytest.approx(event.peak_score / event.threshold)


#: one event of 3 flagged points (4, 5, 6; peak at 5) and a lone blip (11), too short and
#: more than merge_gap (3) rows away
ONE_EVENT = [0.1, 0.2, 0.1, 0.3, 1.5, 3.0, 2.0, 0.1, 0.2, 0.1, 0.1, 4.0]


def test_a_day_with_one_event(tmp_path: Path) -> None:
    config = plant(tmp_path, timezone="Europe/Berlin")
    records = build(config, [unit(None, CHANNELS, 1.0, ONE_EVENT)])
    run = records.run
    assert (run.sensor_group, run.partition_date, run.dag_id, run.run_id) == (
        "pumps", DAY, "tsad_nightly", "run-1")
    assert run.status == "ok" and run.drift is False and run.message == ""
    assert (run.n_rows, run.n_windows, run.n_anomalous_points, run.n_events) == (12, 9, 3, 1)
    assert (run.model_version_id, run.threshold) == ("pumps/all/v0003", 1.0)
    # the site-local day's bounds, in UTC
    assert run.data_start == datetime(2026, 3, 4, 23, tzinfo=UTC)
    assert run.data_end == datetime(2026, 3, 5, 23, tzinfo=UTC)
    assert run.quality_json == {"filled_cells": 2, "implausible_values": 0}
    assert run.started_at == STARTED and run.finished_at >= STARTED

    [event] = records.events
    assert event.kind == "transient" and event.since_date is None
    assert (event.start_ts, event.peak_ts, event.end_ts) == (
        STAMPS[4].to_pydatetime(), STAMPS[5].to_pydatetime(), STAMPS[6].to_pydatetime())
    assert (event.peak_score, event.threshold, event.severity, event.n_points) == (
        3.0, 1.0, 3.0, 3)
    assert [t["channel"] for t in event.top_channels_json] == ["temp", "current"]
    assert event.model_version_id == "pumps/all/v0003"
    assert event.plot_path is None  # the plot failed (no such model): records are kept

    # points: the event's flagged timestamps only (not the blip), top 2 channels each
    assert sorted({p.ts for p in records.points}) == [t.to_pydatetime() for t in STAMPS[4:7]]
    assert len(records.points) == 3 * 2
    assert {p.channel for p in records.points} == {"temp", "current"}
    peak = [p for p in records.points if p.ts == STAMPS[5].to_pydatetime()]
    assert [(p.channel, p.score) for p in peak] == [("temp", 3.0), ("current", 3.0)]
    assert [p.contribution for p in peak] == [pytest.approx(0.4), pytest.approx(0.3)]
    assert all(p.model_version_id == "pumps/all/v0003" for p in records.points)
    assert_points_match(records)


def test_a_quiet_day_has_a_run_row_only(tmp_path: Path) -> None:
    records = build(plant(tmp_path), [unit(None, CHANNELS, 1.0, [0.5] * 12)])
    assert records.events == [] and records.points == []
    assert records.run.status == "ok" and records.run.n_events == 0


def test_a_day_without_a_scored_window_is_no_data(tmp_path: Path) -> None:
    records = build(plant(tmp_path), [unit(None, CHANNELS, 1.0, [np.nan] * 12, n_windows=0)])
    assert records.run.status == "no_data" and records.events == []
    assert "none of the day's 9 windows could be scored" in records.run.message


def test_a_drifted_day_is_one_sustained_event_since_its_first_day(tmp_path: Path) -> None:
    config = plant(tmp_path)
    moved = [0.5, 2.0, 3.0, 2.5, 2.0, 0.5, 2.0, 5.0, 2.0, 2.0, 0.5, 2.0]
    records = build(config, [unit(None, CHANNELS, 1.0, moved, drift=True)],
                    since=date(2026, 3, 3))
    run = records.run
    assert run.status == "sustained" and run.drift is True and run.n_events == 1
    assert run.message == "day moved away from the model (since 2026-03-03)"
    [event] = records.events
    assert event.kind == "sustained" and event.since_date == date(2026, 3, 3)
    assert (event.start_ts, event.end_ts, event.peak_ts) == (
        STAMPS[1].to_pydatetime(), STAMPS[11].to_pydatetime(), STAMPS[7].to_pydatetime())
    assert (event.n_points, event.peak_score, event.severity) == (9, 5.0, 5.0)
    # no transient events and so no points: the day is one departure, not nine alerts
    assert records.points == [] and run.n_anomalous_points == 0
    started_today = build(config, [unit(None, CHANNELS, 1.0, moved, drift=True)])
    assert started_today.events[0].since_date == DAY
    assert started_today.run.message.endswith(f"(since {DAY.isoformat()})")


def test_sharded_rows_carry_their_lead_shards_score_threshold_and_model(tmp_path: Path) -> None:
    config = plant(tmp_path, [["flow", "pressure"], ["current", "temp"]])
    # s01 (threshold 2) peaks at row 2 with severity 3; s02 (threshold 0.5) at row 10 with 4
    first = unit(1, ["flow", "pressure"], 2.0,
                 [0.2, 3.0, 6.0, 4.0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])
    second = unit(2, ["current", "temp"], 0.5,
                  [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 1.0, 2.0, 0.1])
    records = build(config, [first, second])
    run = records.run
    assert run.status == "ok" and run.n_events == 2
    # the run row names the shard with the day's highest severity, and every shard's model
    assert (run.model_version_id, run.threshold) == ("pumps/s02/v0003", 0.5)
    assert run.message == "shards: pumps/s01/v0003, pumps/s02/v0003"
    early, late = records.events
    assert (early.peak_score, early.threshold, early.severity) == (6.0, 2.0, 3.0)
    assert early.model_version_id == "pumps/s01/v0003"
    assert (late.peak_score, late.threshold, late.severity) == (2.0, 0.5, 4.0)
    assert late.model_version_id == "pumps/s02/v0003"
    by_ts = {p.ts: p for p in records.points}
    s01_peak, s02_peak = by_ts[STAMPS[2].to_pydatetime()], by_ts[STAMPS[10].to_pydatetime()]
    assert (s01_peak.score, s01_peak.threshold, s01_peak.model_version_id) == (
        6.0, 2.0, "pumps/s01/v0003")
    assert (s02_peak.score, s02_peak.threshold, s02_peak.model_version_id) == (
        2.0, 0.5, "pumps/s02/v0003")
    assert sorted(by_ts) == [STAMPS[i].to_pydatetime() for i in (1, 2, 3, 9, 10)]
    assert run.n_anomalous_points == 5 and len(by_ts) == 5
    assert_points_match(records)


def test_a_drifted_shard_gives_its_own_sustained_event_beside_the_others(
        tmp_path: Path) -> None:
    config = plant(tmp_path, [["flow", "pressure"], ["current", "temp"]])
    steady = unit(1, ["flow", "pressure"], 1.0, ONE_EVENT)
    moved = unit(2, ["current", "temp"], 1.0, [5.0] * 12, drift=True)  # above s01's peak (4)
    records = build(config, [steady, moved], since=date(2026, 3, 4))
    run = records.run
    assert run.status == "sustained" and run.drift is True and run.n_events == 2
    assert run.model_version_id == "pumps/s01/v0003"  # a drifted shard does not lead the day
    assert run.message == ("shards: pumps/s01/v0003, pumps/s02/v0003; pumps/s02: day moved "
                           "away from the model (since 2026-03-04)")
    kinds = {e.kind: e for e in records.events}
    assert kinds["transient"].model_version_id == "pumps/s01/v0003"
    assert kinds["sustained"].model_version_id == "pumps/s02/v0003"
    assert kinds["sustained"].since_date == date(2026, 3, 4)
    assert kinds["sustained"].n_points == 12
    assert {p.channel for p in records.points} <= {"flow", "pressure"}
    assert run.n_anomalous_points == 3
    assert_points_match(records)
