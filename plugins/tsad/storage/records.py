"""Write one (sensor group, day) partition in one transaction; read records back.

Writing replaces the partition's events and points wholesale (delete, then insert) inside the
transaction that also adds the run row, so a re-run that flags fewer points leaves nothing stale,
and a failure midway (or a writer killed with SIGKILL) leaves the previous rows untouched. Runs are
never overwritten: each run is a new ``detection_run`` row, and events and points point at the run
that produced them.

Concurrency: two writers of the same (group, day) serialize on a lock taken first thing in the
transaction (SQLite: ``BEGIN IMMEDIATE``, one writer at a time; PostgreSQL: a transaction-scoped
advisory lock keyed by group and day), so the second one replaces the first one's rows instead of
colliding with them. On PostgreSQL writers of different days or groups never wait for each other,
and since the lock comes before any row lock, writers cannot deadlock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.exc import IntegrityError

from tsad.errors import DataError, ModelError
from tsad.storage import dialect
from tsad.storage.engine import IMMEDIATE, describe
from tsad.storage.schema import anomaly_event, anomaly_point, detection_run, model_version


def _check_day(name: str, value: Any) -> None:
    if not isinstance(value, date) or isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}: {value!r}")


def _check_utc(name: str, value: Any, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a tz-aware datetime, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One detection run of one group's day (a row of ``detection_run``, without its id)."""

    sensor_group: str
    partition_date: date
    site_timezone: str
    status: str
    started_at: datetime
    finished_at: datetime | None = None
    dag_id: str | None = None
    run_id: str | None = None
    data_start: datetime | None = None
    data_end: datetime | None = None
    model_version_id: str | None = None
    threshold: float | None = None
    n_rows: int = 0
    n_windows: int = 0
    n_anomalous_points: int = 0
    n_events: int = 0
    quality_json: dict[str, Any] = field(default_factory=dict)
    drift: bool = False
    message: str | None = None

    def __post_init__(self) -> None:
        _check_day("partition_date", self.partition_date)
        _check_utc("started_at", self.started_at)
        for name in ("finished_at", "data_start", "data_end"):
            _check_utc(name, getattr(self, name), optional=True)


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """One anomaly event; ``top_channels_json`` is ``[{"channel", "contribution", "departed"}]``
    (contribution 0..1; departed: ranked among channels whose reading left its training range,
    ``tsad.detection.events``)."""

    sensor_group: str
    partition_date: date
    start_ts: datetime
    end_ts: datetime
    peak_ts: datetime
    peak_score: float
    threshold: float
    severity: float
    n_points: int
    top_channels_json: list[dict[str, Any]] = field(default_factory=list)
    model_version_id: str | None = None
    plot_path: str | None = None
    kind: str = "transient"
    since_date: date | None = None

    def __post_init__(self) -> None:
        _check_day("partition_date", self.partition_date)
        for name in ("start_ts", "end_ts", "peak_ts"):
            _check_utc(name, getattr(self, name))


@dataclass(frozen=True, kw_only=True)
class PointRecord:
    """One flagged (channel, timestamp) score, interpretable without joins."""

    sensor_group: str
    partition_date: date
    channel: str
    ts: datetime
    score: float
    threshold: float
    severity: float
    contribution: float | None = None
    model_version_id: str | None = None

    def __post_init__(self) -> None:
        _check_day("partition_date", self.partition_date)
        _check_utc("ts", self.ts)


@dataclass(frozen=True, kw_only=True)
class ModelVersionRecord:
    """An immutable model version (``id`` like ``pumps/v0003``)."""

    id: str
    sensor_group: str
    version: int
    detector_kind: str
    config_json: dict[str, Any]
    config_sha256: str
    artifact_uri: str
    manifest_sha256: str
    training_start: date
    training_end: date
    threshold_strategy: str
    threshold: float
    created_at: datetime
    metrics_json: dict[str, Any] = field(default_factory=dict)
    code_version: str | None = None
    created_by_run: str | None = None
    status: str = "active"

    def __post_init__(self) -> None:
        _check_day("training_start", self.training_start)
        _check_day("training_end", self.training_end)
        _check_utc("created_at", self.created_at)


def _row(record: Any, **extra: Any) -> dict[str, Any]:
    """Plain Python values for the driver (numpy scalars become int/float/bool)."""
    out = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if type(value).__module__ == "numpy" and hasattr(value, "item"):
            value = value.item()
        out[f.name] = value
    out.update(extra)
    return out


# ---------------------------------------------------------------- writing


def write_partition(
    engine: Engine,
    run: RunRecord,
    events: Sequence[EventRecord],
    points: Sequence[PointRecord],
) -> int:
    """Replace the (group, day) partition's events and points and add the run; return its id."""
    key = (run.sensor_group, run.partition_date)
    for rec in (*events, *points):
        if (rec.sensor_group, rec.partition_date) != key:
            raise ValueError(
                f"{type(rec).__name__} for {rec.sensor_group} {rec.partition_date} does not belong "
                f"to the run's partition {run.sensor_group} {run.partition_date}"
            )
    try:
        with engine.connect() as conn:
            conn.execution_options(**IMMEDIATE)
            with conn.begin():
                lock_partition(conn, run.sensor_group, run.partition_date)
                for table in (anomaly_point, anomaly_event):
                    conn.execute(
                        table.delete().where(
                            table.c.sensor_group == run.sensor_group,
                            table.c.partition_date == run.partition_date,
                        )
                    )
                run_id = _insert_run(conn, run)
                if events:
                    conn.execute(insert(anomaly_event),
                                 [_row(e, detection_run_id=run_id) for e in events])
                if points:
                    conn.execute(insert(anomaly_point),
                                 [_row(p, detection_run_id=run_id) for p in points])
    except IntegrityError as exc:
        raise DataError(
            f"writing {run.sensor_group} {run.partition_date} to {describe(str(engine.url))} "
            f"failed and was rolled back (previous rows kept): {exc.orig}"
        ) from exc
    return run_id


def lock_partition(conn: Connection, sensor_group: str, partition_date: date) -> None:
    """Hold the (group, day) write lock until ``conn``'s transaction ends."""
    dialect.lock(conn, sensor_group, partition_date.toordinal())


def record_run(engine: Engine, run: RunRecord) -> int:
    """Add a run row only, keeping the partition's anomalies (a failed or skipped run)."""
    with engine.connect() as conn:
        conn.execution_options(**IMMEDIATE)
        with conn.begin():
            return _insert_run(conn, run)


def _insert_run(conn: Connection, run: RunRecord) -> int:
    result = conn.execute(insert(detection_run).values(**_row(run)))
    return int(result.inserted_primary_key[0])


def record_model_version(engine: Engine, rec: ModelVersionRecord) -> None:
    """Insert a model version once; the same id with another manifest is an error (immutable)."""
    existing = _manifest_of(engine, rec.id)
    if existing is None:
        try:
            with engine.connect() as conn:
                conn.execution_options(**IMMEDIATE)
                with conn.begin():
                    conn.execute(insert(model_version).values(**_row(rec)))
            return
        except IntegrityError:
            existing = _manifest_of(engine, rec.id)  # lost a race, or (group, version) is taken
            if existing is None:
                raise ModelError(
                    f"model version {rec.sensor_group} v{rec.version} is already recorded under "
                    f"another id than {rec.id!r}; versions are immutable"
                ) from None
    if existing != rec.manifest_sha256:
        raise ModelError(
            f"model version {rec.id!r} is already recorded with manifest sha256 "
            f"{existing[:12]}..., not {rec.manifest_sha256[:12]}...; versions are immutable, "
            "train a new version"
        )


def _manifest_of(engine: Engine, version_id: str) -> str | None:
    with engine.connect() as conn:
        query = select(model_version.c.manifest_sha256).where(model_version.c.id == version_id)
        return conn.execute(query).scalar_one_or_none()


# ---------------------------------------------------------------- reading


def read_events(engine: Engine, sensor_group: str, partition_date: date) -> list[dict[str, Any]]:
    """The partition's current events, oldest first."""
    query = (
        select(anomaly_event)
        .where(anomaly_event.c.sensor_group == sensor_group,
               anomaly_event.c.partition_date == partition_date)
        .order_by(anomaly_event.c.start_ts, anomaly_event.c.id)
    )
    return _all(engine, query)


def events_between(
    engine: Engine, start: date, end: date, sensor_group: str | None = None
) -> list[dict[str, Any]]:
    """Events of the data days ``start..end`` (both included), by day, group and start."""
    query = select(anomaly_event).where(anomaly_event.c.partition_date.between(start, end))
    if sensor_group is not None:
        query = query.where(anomaly_event.c.sensor_group == sensor_group)
    query = query.order_by(anomaly_event.c.partition_date, anomaly_event.c.sensor_group,
                           anomaly_event.c.start_ts, anomaly_event.c.id)
    return _all(engine, query)


def events_per_day(engine: Engine) -> list[dict[str, Any]]:
    """Event count and max severity per (day, group); days without events do not appear."""
    e = anomaly_event.c
    query = (
        select(e.partition_date, e.sensor_group,
               func.count().label("n_events"), func.max(e.severity).label("max_severity"))
        .group_by(e.partition_date, e.sensor_group)
        .order_by(e.partition_date, e.sensor_group)
    )
    return _all(engine, query)


def model_metrics(engine: Engine, version_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``metrics_json`` of each recorded model version among ``version_ids``, by id."""
    if not version_ids:
        return {}
    mv = model_version.c
    with engine.connect() as conn:
        rows = conn.execute(select(mv.id, mv.metrics_json)
                            .where(mv.id.in_(sorted(set(version_ids))))).all()
    return {r.id: dict(r.metrics_json or {}) for r in rows}


def latest_run(engine: Engine, sensor_group: str, partition_date: date) -> dict[str, Any] | None:
    """The newest run of the partition (highest id), or None when it never ran."""
    query = (
        select(detection_run)
        .where(detection_run.c.sensor_group == sensor_group,
               detection_run.c.partition_date == partition_date)
        .order_by(detection_run.c.id.desc())
        .limit(1)
    )
    rows = _all(engine, query)
    return rows[0] if rows else None


def _all(engine: Engine, query: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
