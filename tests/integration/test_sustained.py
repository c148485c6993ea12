"""Sustained departures (issue 12, item 2 and 3): a day that moved away as a whole is one
sustained event, alerted every day it lasts, never learned as normal until a person confirms
it as a new operating point; training masks recorded events and keeps the threshold."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from conftest import small_plant
from tsad import pipeline
from tsad.config import load_config
from tsad.evaluation.simulator import simulate
from tsad.ingest.partitions import partition_path
from tsad.model import registry
from tsad.storage.engine import get_engine
from tsad.storage.records import latest_run, read_events
from tsad.storage.schema import anomaly_feedback

START, FAULT = date(2026, 3, 1), date(2026, 3, 5)


def plant(tmp: Path, **training: int) -> Path:
    data = small_plant(tmp)
    data["groups"] = data["groups"][:1]
    data["groups"][0]["training"].update(training)
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


def shift_levels(historian_url: str, since: date) -> None:
    """Every pump reading from ``since`` on moves far above its normal level (a failing pump
    and a new operating point look alike)."""
    engine = sa.create_engine(historian_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE pump_readings SET value = value * 3 + 500 WHERE ts >= :since"),
                     {"since": datetime(since.year, since.month, since.day)})
    engine.dispose()


def confirm(engine: sa.Engine, day: date) -> None:
    """What the event page's 'New operating point' button stores."""
    event = read_events(engine, "pumps", day)[0]
    with engine.begin() as conn:
        conn.execute(sa.insert(anomaly_feedback).values(
            sensor_group="pumps", partition_date=day, event_start_ts=event["start_ts"],
            event_id=event["id"], label="new_operating_point", created_by="operator",
            created_at=datetime.now(timezone.utc)))


def test_a_sustained_fault_is_alerted_every_day_and_never_learned(tmp_path: Path) -> None:
    config = load_config(plant(tmp_path, max_model_age_days=1))  # retrains every day
    simulate(config, START, 9, [], seed=4)
    shift_levels(config.groups[0].source.url, FAULT)
    engine = get_engine(config.database.url)
    days = [START + timedelta(days=k) for k in range(3, 8)]  # 03-04 .. 03-08
    results = {d: pipeline.run_day(config, d, ["pumps"])[0] for d in days}

    assert results[days[0]]["status"] == "ok"
    for day in days[1:]:
        run = latest_run(engine, "pumps", day)
        events = read_events(engine, "pumps", day)
        assert run["status"] == "sustained" and run["drift"], day
        assert [e["kind"] for e in events] == ["sustained"]
        assert events[0]["since_date"] == FAULT and events[0]["severity"] > 1
        assert results[day]["alert"]["n_new"] == 1, f"{day}: the fault must be alerted again"
        assert "since 2026-03-05" in run["message"]
    for version in registry.list_versions(config.models_dir, "pumps"):
        trained_on = version.manifest["metrics"]["history"]["days"]
        assert all(d < FAULT.isoformat() for d in trained_on), (version.id, trained_on)

    confirm(engine, date(2026, 3, 8))  # a person says: this is the new normal
    adopted = pipeline.run_day(config, date(2026, 3, 9), ["pumps"])[0]
    assert adopted["trained"] and "confirmed as a new operating point" in adopted["reason"]
    assert adopted["status"] == "ok" and adopted["n_events"] == 0
    newest = registry.list_versions(config.models_dir, "pumps")[-1]
    assert newest.manifest["metrics"]["history"]["since"] == FAULT.isoformat()


def test_a_retrain_after_an_anomalous_day_keeps_the_threshold(tmp_path: Path) -> None:
    """Item 3: a forced retrain over a day whose events were recorded masks them: its
    threshold stays near that of the same days without anomalies, far below one trained over
    the same day unrecorded. (What remains is an anomaly the earlier model missed: a stuck
    sensor no record names.)"""
    thresholds, masked = {}, {}
    for case in ("clean", "recorded", "unrecorded"):
        folder = tmp_path / case
        folder.mkdir()
        config = load_config(plant(folder))
        simulate(config, START, 6, [] if case == "clean" else [date(2026, 3, 4)], seed=7)
        if case == "recorded":  # the anomalous day is scored and its events recorded first
            assert pipeline.run_day(config, date(2026, 3, 4), ["pumps"])[0]["n_events"] >= 1
        ctx = pipeline.GroupDay.of(config, "pumps", date(2026, 3, 5))
        pipeline.extract(ctx)
        version = registry.version_at(pipeline.ensure_model(ctx, force_retrain=True)["path"])
        thresholds[case] = float(version.manifest["threshold"])
        history = version.manifest["metrics"]["history"]
        assert history["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
        masked[case] = history["masked_rows"]
    assert masked["recorded"] > 0 and masked["clean"] == masked["unrecorded"] == 0
    assert thresholds["recorded"] < 0.8 * thresholds["unrecorded"], thresholds
    assert thresholds["recorded"] / thresholds["clean"] < 1.4, thresholds


def test_a_fresh_deployment_warms_up_then_scores(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Item 4: the first days have no history: their runs are 'warming_up' (exit 0, a run row
    saying why) until training.min_days; then a provisional model, retrained once all
    training.days are there. The alerts of a provisional model's day say what it is."""
    config = load_config(plant(tmp_path, days=4, min_days=3))
    first_scored = START + timedelta(days=3)
    simulate(config, START, 6, [first_scored], seed=5)
    engine = get_engine(config.database.url)
    statuses = []
    for k in range(6):
        day = START + timedelta(days=k)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="tsad"):
            result = pipeline.run_day(config, day, ["pumps"])[0]
        if day == first_scored:
            assert read_events(engine, "pumps", day), "the injected anomalies make events"
            assert "PROVISIONAL model pumps/v0001: trained on 3 of the 4 days" in caplog.text
        else:
            assert "PROVISIONAL" not in caplog.text
        run = latest_run(engine, "pumps", day)
        statuses.append(run["status"])
        assert result["status"] == run["status"]
        if k < 3:
            assert f"{k} usable day(s)" in run["message"] and "training.min_days" in run["message"]
    assert statuses[:3] == ["warming_up"] * 3 and "warming_up" not in statuses[3:]
    history = [v.manifest["metrics"]["history"]
               for v in registry.list_versions(config.models_dir, "pumps")]
    assert [h["provisional"] for h in history] == [True, False]  # 3 days, then all 4
    assert [len(h["days"]) for h in history] == [3, 4]
    assert "no usable source data" in str(history[0]["skipped"])


def test_a_false_alarm_verdict_is_learned_the_next_night(tmp_path: Path) -> None:
    """Item 3: events a person marked false alarms make the next night retrain (not a week
    later, when the model ages out); the new model keeps their rows, its threshold clears them
    (raised when it would not: the model says so), and the comparison with the current model
    judges the training at the threshold it gave. Later nights do not retrain for them again."""
    config = load_config(plant(tmp_path))
    marked = date(2026, 3, 4)
    simulate(config, START, 7, [marked], seed=7)
    engine = get_engine(config.database.url)
    for day in (date(2026, 3, 3), marked):
        pipeline.run_day(config, day, ["pumps"])
    events = read_events(engine, "pumps", marked)
    assert events, "the injected anomalies make events"
    with engine.begin() as conn:  # what the event page's 'False alarm' button stores
        for event in events:
            conn.execute(sa.insert(anomaly_feedback).values(
                sensor_group="pumps", partition_date=marked, event_start_ts=event["start_ts"],
                event_id=event["id"], label="false_alarm", created_by="operator",
                created_at=datetime.now(timezone.utc)))

    after = pipeline.run_day(config, date(2026, 3, 5), ["pumps"])[0]
    assert after["trained"] and "marked false alarm" in after["reason"], after.get("reason")
    newest = registry.list_versions(config.models_dir, "pumps")[-1]
    metrics = newest.manifest["metrics"]
    assert metrics["history"]["known_normal_events"] == len(events)
    known = metrics["known_normal"]  # the raise itself: tests/unit/model/test_known_normal.py
    assert known["periods"] >= 1 and newest.manifest["threshold"] >= known["peak"]
    judged = metrics["promotion"]["judged_threshold"]
    assert judged == (None if known["raised_from"] is None else pytest.approx(known["raised_from"]))
    detector = registry.load_detector(newest)
    scores = detector.score_partition(partition_path(config.data_dir, "pumps", marked))
    day_start = scores.timestamps[0]
    for event in events:  # the marked rows, scored as their day is: below the raised threshold
        rows = (scores.timestamps >= event["start_ts"]) & (scores.timestamps <= event["end_ts"])
        assert (scores.aggregate[rows] <= detector.threshold).all(), (event, day_start)

    later = pipeline.run_day(config, date(2026, 3, 6), ["pumps"])[0]
    assert not later["trained"], later.get("reason")
    assert not pipeline.run_day(config, date(2026, 3, 5), ["pumps"])[0]["trained"]  # re-run

    with engine.begin() as conn:  # a later verdict on 03-03, then a backfill of 03-04
        conn.execute(sa.insert(anomaly_feedback).values(
            sensor_group="pumps", partition_date=date(2026, 3, 3),
            event_start_ts=datetime(2026, 3, 3, 12, tzinfo=timezone.utc), label="false_alarm",
            created_by="operator", created_at=datetime.now(timezone.utc)))
    backfill = pipeline.run_day(config, marked, ["pumps"])[0]  # behind the newest model
    assert "marked false alarm" not in (backfill.get("reason") or ""), backfill
