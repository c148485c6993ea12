"""Partition writes are idempotent, atomic, serialized and keep history (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select

from tsad.errors import ConfigError, DataError, ModelError
from tsad.storage.engine import describe, dispose_all, get_engine
from tsad.storage.records import (
    EventRecord,
    ModelVersionRecord,
    PointRecord,
    RunRecord,
    events_between,
    events_per_day,
    latest_run,
    lock_partition,
    read_events,
    record_model_version,
    record_run,
    write_partition,
)
from tsad.storage.schema import anomaly_event, anomaly_point, create_schema, detection_run

UTC = timezone.utc
DAY = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url: str) -> Engine:
    eng = get_engine(db_url)
    create_schema(eng)
    return eng


def run_record(group: str = "pumps", day: date = DAY, **kw: object) -> RunRecord:
    base = dict(sensor_group=group, partition_date=day, site_timezone="Europe/Berlin",
                status="success", started_at=T0 + timedelta(days=1, hours=1),
                finished_at=T0 + timedelta(days=1, hours=1, minutes=2), dag_id="tsad_nightly",
                run_id="scheduled__2026-11-21", data_start=T0, data_end=T0 + timedelta(days=1),
                model_version_id=f"{group}/v0001", threshold=0.5, n_rows=1440, n_windows=177,
                quality_json={"nan_ratio": {"flow": 0.0}}, drift=False)
    base.update(kw)
    return RunRecord(**base)  # type: ignore[arg-type]


def event_records(n: int, group: str = "pumps", day: date = DAY) -> list[EventRecord]:
    out = []
    for i in range(n):
        start = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=2 * i + 1)
        out.append(EventRecord(
            sensor_group=group, partition_date=day, start_ts=start,
            end_ts=start + timedelta(minutes=10), peak_ts=start + timedelta(minutes=4),
            peak_score=1.5 + i, threshold=0.5, severity=(1.5 + i) / 0.5, n_points=11,
            top_channels_json=[{"channel": "flow", "contribution": 0.7},
                               {"channel": "temp", "contribution": 0.3}],
            model_version_id=f"{group}/v0001"))
    return out


def point_records(events: list[EventRecord]) -> list[PointRecord]:
    return [
        PointRecord(sensor_group=e.sensor_group, partition_date=e.partition_date, channel=ch,
                    ts=e.start_ts + timedelta(minutes=m), score=0.9, threshold=0.5, severity=1.8,
                    contribution=0.5, model_version_id=e.model_version_id)
        for e in events for ch in ("flow", "temp") for m in range(3)
    ]


def rows(engine: Engine, table, drop: tuple[str, ...] = ("id", "detection_run_id")) -> list[dict]:
    with engine.connect() as conn:
        found = [dict(r) for r in conn.execute(select(table)).mappings()]
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in found), key=repr)


def count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_rewrite_is_idempotent_and_keeps_run_history(engine: Engine) -> None:
    events = event_records(3)
    first = write_partition(engine, run_record(), events, point_records(events))
    before = (rows(engine, anomaly_event), rows(engine, anomaly_point))
    second = write_partition(engine, run_record(), events, point_records(events))

    assert second > first
    assert (rows(engine, anomaly_event), rows(engine, anomaly_point)) == before
    assert count(engine, anomaly_event) == 3 and count(engine, anomaly_point) == 18
    assert count(engine, detection_run) == 2
    assert {e["detection_run_id"] for e in read_events(engine, "pumps", DAY)} == {second}
    assert latest_run(engine, "pumps", DAY)["id"] == second


def test_fewer_events_on_rerun_leave_nothing_stale(engine: Engine) -> None:
    events = event_records(3)
    write_partition(engine, run_record(), events, point_records(events))
    write_partition(engine, run_record(n_events=1), events[:1], point_records(events[:1]))
    assert len(read_events(engine, "pumps", DAY)) == 1
    assert count(engine, anomaly_point) == 6
    write_partition(engine, run_record(n_events=0), [], [])
    assert read_events(engine, "pumps", DAY) == [] and count(engine, anomaly_point) == 0


def test_other_partitions_are_untouched(engine: Engine) -> None:
    other_day, other_group = event_records(2, day=DAY - timedelta(days=1)), event_records(1, "fans")
    write_partition(engine, run_record(day=DAY - timedelta(days=1)), other_day, [])
    write_partition(engine, run_record("fans"), other_group, point_records(other_group))
    write_partition(engine, run_record(), [], [])
    assert len(read_events(engine, "pumps", DAY - timedelta(days=1))) == 2
    assert len(read_events(engine, "fans", DAY)) == 1
    assert count(engine, anomaly_point) == 6


def test_failure_midway_keeps_previous_rows(engine: Engine) -> None:
    events = event_records(2)
    good = write_partition(engine, run_record(), events, point_records(events))
    before = (rows(engine, anomaly_event, ()), rows(engine, anomaly_point, ()))
    duplicate = point_records(event_records(1))
    duplicate.append(duplicate[0])  # violates the primary key after the deletes ran
    with pytest.raises(DataError, match="rolled back"):
        write_partition(engine, run_record(), event_records(1), duplicate)
    assert (rows(engine, anomaly_event, ()), rows(engine, anomaly_point, ())) == before
    assert latest_run(engine, "pumps", DAY)["id"] == good and count(engine, detection_run) == 1


def test_records_of_another_partition_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="does not belong"):
        write_partition(engine, run_record(), event_records(1, "fans"), [])
    assert count(engine, detection_run) == 0


def test_timestamps_read_back_tz_aware_utc(engine: Engine) -> None:
    plus2 = timezone(timedelta(hours=2))
    event = dataclasses.replace(event_records(1)[0], start_ts=datetime(2026, 11, 20, 3, 0,
                                                                       tzinfo=plus2))
    write_partition(engine, run_record(), [event], [])
    (got,) = read_events(engine, "pumps", DAY)
    assert got["start_ts"] == datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
    assert all(got[k].tzinfo == UTC for k in ("start_ts", "end_ts", "peak_ts"))
    assert got["partition_date"] == DAY and got["top_channels_json"][0]["channel"] == "flow"
    run = latest_run(engine, "pumps", DAY)
    assert run["started_at"].tzinfo == UTC and run["quality_json"] == {"nan_ratio": {"flow": 0.0}}
    with pytest.raises(ValueError, match="tz-aware"):
        dataclasses.replace(event, end_ts=datetime(2026, 11, 20, 4, 0))


def test_queries_across_days(engine: Engine) -> None:
    for offset, n in ((0, 2), (1, 1), (3, 4)):
        day = DAY + timedelta(days=offset)
        write_partition(engine, run_record(day=day), event_records(n, day=day), [])
    write_partition(engine, run_record("fans"), event_records(1, "fans"), [])
    window = events_between(engine, DAY, DAY + timedelta(days=1))
    assert [(e["partition_date"], e["sensor_group"]) for e in window] == [
        (DAY, "fans"), (DAY, "pumps"), (DAY, "pumps"), (DAY + timedelta(days=1), "pumps")]
    assert len(events_between(engine, DAY, DAY + timedelta(days=3), "pumps")) == 7
    per_day = events_per_day(engine)
    assert per_day[0] == {"partition_date": DAY, "sensor_group": "fans", "n_events": 1,
                          "max_severity": 3.0}
    assert per_day[-1]["n_events"] == 4 and per_day[-1]["max_severity"] == pytest.approx(9.0)
    assert latest_run(engine, "pumps", DAY + timedelta(days=2)) is None


def test_record_run_alone_keeps_anomalies(engine: Engine) -> None:
    write_partition(engine, run_record(), event_records(2), [])
    failed = record_run(engine, run_record(status="failed", message="source table empty"))
    assert latest_run(engine, "pumps", DAY)["status"] == "failed"
    assert latest_run(engine, "pumps", DAY)["id"] == failed
    assert len(read_events(engine, "pumps", DAY)) == 2


def model(**kw: object) -> ModelVersionRecord:
    base = dict(id="pumps/v0001", sensor_group="pumps", version=1, detector_kind="conv1d",
                config_json={"window": {"length": 32}}, config_sha256="c" * 64,
                artifact_uri="models/pumps/v0001", manifest_sha256="a" * 64,
                training_start=DAY - timedelta(days=7), training_end=DAY - timedelta(days=1),
                threshold_strategy="quantile", threshold=0.5, created_at=T0,
                metrics_json={"val_error": 0.1, "persistence_error": 0.3})
    base.update(kw)
    return ModelVersionRecord(**base)  # type: ignore[arg-type]


def test_model_versions_are_immutable(engine: Engine) -> None:
    record_model_version(engine, model())
    record_model_version(engine, model())  # same manifest: a no-op
    with pytest.raises(ModelError, match="immutable"):
        record_model_version(engine, model(manifest_sha256="b" * 64))
    with pytest.raises(ModelError, match="another id"):
        record_model_version(engine, model(id="pumps/v1"))


def test_concurrent_writers_serialize(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer(group: str) -> None:
        try:
            for i in range(15):
                events = event_records(1 + i % 3, group)
                write_partition(engine, run_record(group), events, point_records(events))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(g,)) for g in ("pumps", "fans", "mills")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(engine, detection_run) == 45


def test_concurrent_writers_of_one_partition_leave_one_record_set(engine: Engine) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                events = event_records(1 + (n + i) % 3)
                write_partition(engine, run_record(n_events=len(events)), events,
                                point_records(events))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    latest = latest_run(engine, "pumps", DAY)
    current = read_events(engine, "pumps", DAY)
    assert {e["detection_run_id"] for e in current} == {latest["id"]}
    assert len(current) == latest["n_events"] and count(engine, anomaly_point) == 6 * len(current)
    assert count(engine, detection_run) == 32


def test_postgres_other_days_never_wait_and_the_same_day_waits(pg_url: str) -> None:
    engine = get_engine(pg_url)
    create_schema(engine)
    events = event_records(2)
    done: dict[str, float] = {}

    def write(name: str, day: date) -> None:
        evs = event_records(2, day=day)
        write_partition(engine, run_record(day=day), evs, point_records(evs))
        done[name] = 1.0

    with engine.connect() as holder, holder.begin():
        lock_partition(holder, "pumps", DAY)  # a writer of (pumps, DAY) in mid-transaction
        other = threading.Thread(target=write, args=("other", DAY + timedelta(days=1)))
        same = threading.Thread(target=write, args=("same", DAY))
        other.start()
        same.start()
        other.join(20)
        same.join(1.0)
        assert "other" in done and "same" not in done  # another day went through; this one waits
    same.join(20)
    assert "same" in done
    assert len(read_events(engine, "pumps", DAY)) == len(events)


def test_engine_settings(db_url: str) -> None:
    eng = get_engine(db_url)
    assert get_engine(db_url) is eng
    if eng.dialect.name == "sqlite":
        with eng.connect() as conn:
            pragmas = [conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                       for p in ("journal_mode", "foreign_keys", "busy_timeout")]
        assert pragmas == ["wal", 1, 30000]


def test_airflow_style_postgres_url_gets_an_installed_driver() -> None:
    pytest.importorskip("psycopg2")
    eng = get_engine("postgres://tsad:s3cret@127.0.0.1:1/tsad")  # engines connect lazily
    assert eng.dialect.name == "postgresql" and eng.dialect.driver in ("psycopg", "psycopg2")
    dispose_all()


def test_describe_hides_password() -> None:
    assert describe("postgresql://tsad:s3cret@db:5432/tsad") == "postgresql://tsad:***@db:5432/tsad"
    with pytest.raises(ConfigError) as info:
        get_engine("nosuchdb://tsad:s3cret@db/tsad")
    assert "s3cret" not in str(info.value)
