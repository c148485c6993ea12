"""The reporting views answer docs/reporting.md's example queries, on SQLite and PostgreSQL.

The queries are read from the documentation itself, so the docs cannot drift from the views.
``db_url`` (tests/pg_fixture.py) gives each test a fresh SQLite file, then a fresh PostgreSQL
database.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from tsad.storage.engine import get_engine
from tsad.storage.records import (
    EventRecord,
    ModelVersionRecord,
    PointRecord,
    RunRecord,
    record_model_version,
    write_partition,
)
from tsad.storage.schema import create_schema
from tsad.storage.schema import anomaly_feedback
from tsad.storage.views import VIEWS, create_views

from conftest import REPO  # noqa: E402
UTC = timezone.utc
D9, D10, D11 = date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)


def doc_queries() -> dict[str, str]:
    text = (REPO / "docs" / "reporting.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    named = {}
    for block in blocks:
        match = re.match(r"-- name: ([\w-]+)\n", block)
        assert match, f"example query without a '-- name:' line:\n{block}"
        named[match.group(1)] = block
    return named


# ---------------------------------------------------------------- seed


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def model(group: str, beats: bool, model_error: float, persistence: float) -> ModelVersionRecord:
    return ModelVersionRecord(
        id=f"{group}/v0001", sensor_group=group, version=1, detector_kind="conv1d",
        config_json={"name": group}, config_sha256="c" * 64, artifact_uri=f"/models/{group}/v0001",
        manifest_sha256="m" * 64, training_start=date(2026, 11, 1), training_end=date(2026, 11, 7),
        threshold_strategy="quantile", threshold=0.5, created_at=at(D9, 0),
        metrics_json={"epochs_run": 6, "best_epoch": 5, "train_loss": 0.1, "val_loss": 0.12,
                      "model_error": model_error, "persistence_error": persistence,
                      "beats_persistence": beats, "spike_error_ratio": 0.9, "copies_input": False,
                      "train_seconds": 1.5, "device": "cpu", "n_train_windows": 800,
                      "n_val_windows": 200, "val_error_median": 0.1})


def run(group: str, day: date, status: str = "ok", quality: dict | None = None,
        n_events: int = 0) -> RunRecord:
    return RunRecord(sensor_group=group, partition_date=day, site_timezone="UTC", status=status,
                     started_at=at(day + timedelta(days=1), 1, 30),
                     finished_at=at(day + timedelta(days=1), 1, 31), dag_id="tsad_nightly",
                     run_id=f"scheduled__{day}", model_version_id=f"{group}/v0001", threshold=0.5,
                     n_rows=288, n_windows=70, n_events=n_events, drift=status == "drift",
                     quality_json=quality or {"grid_points": 288, "missing_points": 0,
                                              "nan_points": 0, "duplicate_timestamps": 0})


def event(group: str, day: date, start: datetime, minutes: int, severity: float,
          top: list[tuple[str, float]]) -> EventRecord:
    return EventRecord(sensor_group=group, partition_date=day, start_ts=start,
                       end_ts=start + timedelta(minutes=minutes), peak_ts=start, n_points=10,
                       peak_score=severity * 0.5, threshold=0.5, severity=severity,
                       top_channels_json=[{"channel": c, "contribution": w} for c, w in top],
                       model_version_id=f"{group}/v0001",
                       plot_path=f"/plots/{group}-{start:%H%M}.png")


def points(group: str, day: date, start: datetime, channels: list[str],
           severities: list[float]) -> list[PointRecord]:
    return [PointRecord(sensor_group=group, partition_date=day, channel=c,
                        ts=start + timedelta(minutes=5 * i), score=s * 0.5, threshold=0.5,
                        severity=s, contribution=0.5, model_version_id=f"{group}/v0001")
            for i, s in enumerate(severities) for c in channels]


def seed(engine: sa.Engine) -> None:
    """Two groups over three days: re-runs, a drift day, a quiet day, verdicts."""
    record_model_version(engine, model("pumps", True, 0.1, 0.3))
    record_model_version(engine, model("boiler", False, 0.5, 0.4))
    a_start, b_start, c_start = at(D10, 2), at(D10, 14), at(D10, 8)
    ev_a = event("pumps", D10, a_start, 30, 2.5, [("flow", 0.7), ("temp", 0.2)])
    ev_b = event("pumps", D10, b_start, 60, 6.0, [("current", 0.6), ("flow", 0.3)])
    ev_c = event("boiler", D10, c_start, 10, 1.5, [("steam", 0.9)])
    pumps_points = (points("pumps", D10, a_start, ["flow", "temp"], [1.5, 2.5, 2.0])
                    + points("pumps", D10, b_start, ["current", "flow"], [6.0, 4.0]))
    gaps = {"grid_points": 288, "missing_points": 12, "filled_points": 9, "nan_points": 3,
            "duplicate_timestamps": 0}
    write_partition(engine, run("pumps", D9), [], [])
    write_partition(engine, run("pumps", D10, quality=gaps, n_events=2), [ev_a, ev_b],
                    pumps_points)
    write_partition(engine, run("pumps", D10, quality=gaps, n_events=2), [ev_a, ev_b],
                    pumps_points)  # a re-run: history grows, events are replaced
    write_partition(engine, run("boiler", D10, n_events=1), [ev_c],
                    points("boiler", D10, c_start, ["steam"], [1.5, 1.2]))
    write_partition(engine, run("boiler", D11, status="drift"), [], [])
    verdicts = [("pumps", a_start, "false_alarm", "alice"), ("pumps", a_start, "true_alarm", "bob"),
                ("pumps", b_start, "false_alarm", "alice")]
    with engine.begin() as conn:
        for i, (group, start, label, who) in enumerate(verdicts):
            conn.execute(sa.insert(anomaly_feedback).values(
                sensor_group=group, partition_date=D10, event_start_ts=start, label=label,
                created_by=who, created_at=at(D11, 9, i)))


@pytest.fixture
def seeded(db_url: str) -> sa.Engine:
    engine = get_engine(db_url)
    create_schema(engine)
    create_views(engine)
    seed(engine)
    return engine


# ---------------------------------------------------------------- normalising results


def plain(value: Any) -> Any:
    """One spelling for both databases: ISO text for dates and UTC instants, floats, ints."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", value):
        return value[:19]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (float, Decimal)):
        return round(float(value), 6)
    return value


def query(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(plain(v) for v in row) for row in conn.execute(sa.text(sql))]


EXPECTED: dict[str, list[tuple]] = {
    "events-of-a-week": [
        ("pumps", "2026-11-10 14:00:00", "2026-11-10 15:00:00", 3600, 6.0, "current",
         "false_alarm"),
        ("pumps", "2026-11-10 02:00:00", "2026-11-10 02:30:00", 1800, 2.5, "flow", "true_alarm"),
        ("boiler", "2026-11-10 08:00:00", "2026-11-10 08:10:00", 600, 1.5, "steam", None),
    ],
    "channels-most-often-anomalous": [
        ("pumps", "flow", 5, 1, 6.0),
        ("pumps", "temp", 3, 0, 2.5),
        ("boiler", "steam", 2, 1, 1.5),
        ("pumps", "current", 2, 1, 6.0),
    ],
    "events-per-day": [
        ("2026-11-09", "pumps", 0, None, "ok"),
        ("2026-11-10", "boiler", 1, 1.5, "ok"),
        ("2026-11-10", "pumps", 2, 6.0, "ok"),
        ("2026-11-11", "boiler", 0, None, "drift"),
    ],
    "data-quality-problems": [("pumps", "2026-11-10", 12, 3, 0, "ok")],
    "false-alarms-per-model": [("boiler/v0001", 1, 0, 1), ("pumps/v0001", 2, 1, 0)],
    "model-quality": [
        ("boiler/v0001", "2026-11-01", "2026-11-07", 0.5, 0.5, 0.4, 0, 2),
        ("pumps/v0001", "2026-11-01", "2026-11-07", 0.5, 0.1, 0.3, 1, 3),
    ],
    "runs-per-day": [("2026-11-09", 1, 1), ("2026-11-10", 2, 2)],
}


# ---------------------------------------------------------------- tests


def test_docs_examples_cover_every_expectation() -> None:
    assert set(doc_queries()) == set(EXPECTED)
    text = (REPO / "docs" / "reporting.md").read_text()
    for name in VIEWS:
        assert f"`{name}`" in text, f"view {name} is not documented"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_query_answers(seeded: sa.Engine, name: str) -> None:
    assert query(seeded, doc_queries()[name]) == EXPECTED[name]


def test_view_columns_are_the_documented_contract(seeded: sa.Engine) -> None:
    text = (REPO / "docs" / "reporting.md").read_text()
    with seeded.connect() as conn:
        for name in VIEWS:
            columns = list(conn.execute(sa.text(f"SELECT * FROM {name}")).keys())
            section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
            documented = set(re.findall(r"`([a-z_0-9]+)`", section))
            missing = [c for c in columns if c not in documented]
            assert not missing, f"{name}: columns {missing} are not documented"


def test_current_events_carry_the_plot_and_latest_verdict(seeded: sa.Engine) -> None:
    rows = query(seeded, "SELECT sensor_group, plot_path, feedback_by, top_contribution, "
                         "dag_id FROM v_current_events ORDER BY start_ts")
    assert rows == [("pumps", "/plots/pumps-0200.png", "bob", 0.7, "tsad_nightly"),
                    ("boiler", "/plots/boiler-0800.png", None, 0.9, "tsad_nightly"),
                    ("pumps", "/plots/pumps-1400.png", "alice", 0.6, "tsad_nightly")]


def test_create_views_is_idempotent_and_replaceable(seeded: sa.Engine) -> None:
    create_views(seeded)
    create_views(seeded, replace=True)  # drop and re-create: same answers
    assert query(seeded, doc_queries()["runs-per-day"]) == EXPECTED["runs-per-day"]
    with pytest.raises(sa.exc.DBAPIError):
        with seeded.begin() as conn:  # the verdict label is constrained
            conn.execute(sa.insert(anomaly_feedback).values(
                sensor_group="pumps", partition_date=D10, event_start_ts=at(D10, 2),
                label="maybe", created_at=at(D11, 9)))


def test_reporting_dag_is_scheduled_on_the_asset_the_nightly_detect_emits() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    detect = bag.dags["tsad_nightly"].get_task("sensor_group.detect")
    (outlet,) = detect.outlets
    report = bag.dags["tsad_reporting"]
    assert outlet.name == "tsad_records" and outlet.uri.startswith("tsad://records")
    assert [a.uri for a in report.timetable.asset_condition.objects] == [outlet.uri]
