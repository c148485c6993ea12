"""What the Anomalies pages read and write: the reporting views' queries, typed, plus verdicts.

Events come from the ``v_current_events`` definition used as a typed subquery (so timestamps come
back as UTC datetimes on SQLite too); verdicts go to ``anomaly_feedback``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, Select, insert, inspect, select
from sqlalchemy.engine import Dialect

from tsad.config import GroupConfig, TsadConfig
from tsad.storage.engine import describe
from tsad.storage.schema import (
    FEEDBACK_LABELS,
    anomaly_event,
    anomaly_feedback,
    detection_run,
    model_version,
)
from tsad.storage.views import create_views, current_events

MAX_ROWS = 500
#: The ``verdict`` filter's values: the latest verdict's label, or none yet.
VERDICT_FILTERS = ("unreviewed", *FEEDBACK_LABELS)


def records_engine(config: TsadConfig) -> Engine | None:
    """tsad's records database, or None while it has no tables (nothing has run yet)."""
    from tsad.airflow_layer.connections import optional_url
    from tsad.storage.engine import get_engine

    engine = get_engine(optional_url(config.database.url, config.database.conn_id) or "")
    if not inspect(engine).has_table("anomaly_event"):
        return None
    create_views(engine)
    return engine


@dataclass(frozen=True)
class EventFilter:
    group: str | None = None
    channel: str | None = None
    start: date | None = None
    end: date | None = None
    min_severity: float | None = None
    verdict: str | None = None  # one of VERDICT_FILTERS


def list_events(engine: Engine, f: EventFilter) -> tuple[list[dict[str, Any]], bool]:
    """Matching events, worst first; and whether more than :data:`MAX_ROWS` matched."""
    query, c = _events(engine)
    if f.group:
        query = query.where(c.sensor_group == f.group)
    if f.start:
        query = query.where(c.partition_date >= f.start)
    if f.end:
        query = query.where(c.partition_date <= f.end)
    if f.min_severity is not None:
        query = query.where(c.severity >= f.min_severity)
    if f.verdict == "unreviewed":
        query = query.where(c.feedback_label.is_(None))
    elif f.verdict in FEEDBACK_LABELS:
        query = query.where(c.feedback_label == f.verdict)
    query = query.order_by(c.partition_date.desc(), c.severity.desc(), c.event_id)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    if f.channel:  # JSON containment differs by dialect; the list is small after the SQL filters
        rows = [r for r in rows
                if any(t["channel"] == f.channel for t in r["top_channels_json"] or [])]
    return rows[:MAX_ROWS], len(rows) > MAX_ROWS


def mark_ongoing(rows: list[dict[str, Any]], slack: dict[str, timedelta]) -> None:
    """Set each row's ``ongoing``: the event lasted until the end of its data day, give or take
    the group's ``slack`` (the last readings no window covers), so the next day may go on with it.
    """
    for row in rows:
        end, day_end = row.get("end_ts"), row.get("data_end")
        row["ongoing"] = bool(end and day_end
                              and end >= day_end - slack.get(row["sensor_group"], timedelta(0)))


def ongoing_slack(group: GroupConfig) -> timedelta:
    """How close to the day's end an event must end to count as ongoing: one window stride (the
    readings after the day's last window start are scored by fewer windows, or none)."""
    return timedelta(seconds=group.sampling_seconds * max(group.window.stride, 1))


def get_event(engine: Engine, event_id: int) -> dict[str, Any] | None:
    query, c = _events(engine)
    with engine.connect() as conn:
        row = conn.execute(query.where(c.event_id == event_id)).mappings().first()
    return dict(row) if row else None


def _events(engine: Engine) -> tuple[Select[Any], Any]:
    """Current events (``v_current_events``) with their kind (transient or sustained) and the end
    of their run's data day; and the event columns to filter on."""
    events = current_events(engine.dialect.name).subquery("ev")
    c, a, r = events.c, anomaly_event.c, detection_run.c
    return (select(events, a.kind, a.since_date, r.data_end)
            .select_from(events.join(anomaly_event, a.id == c.event_id)
                         .join(detection_run, r.id == c.detection_run_id))), c


def get_model(engine: Engine, version_id: str | None) -> dict[str, Any] | None:
    if not version_id:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(model_version).where(model_version.c.id == version_id)) \
            .mappings().first()
    return dict(row) if row else None


def verdicts(engine: Engine, event: dict[str, Any]) -> list[dict[str, Any]]:
    """Every verdict on the event (by its stable key), newest first."""
    f = anomaly_feedback.c
    query = (select(anomaly_feedback)
             .where(f.sensor_group == event["sensor_group"], f.event_start_ts == event["start_ts"])
             .order_by(f.id.desc()))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def add_verdict(engine: Engine, event: dict[str, Any], label: str, note: str | None,
                user: str) -> None:
    if label not in FEEDBACK_LABELS:
        raise ValueError(f"verdict must be one of {FEEDBACK_LABELS}, got {label!r}")
    with engine.begin() as conn:
        conn.execute(insert(anomaly_feedback).values(
            sensor_group=event["sensor_group"], partition_date=event["partition_date"],
            event_start_ts=event["start_ts"], event_id=event["event_id"], label=label,
            note=(note or "").strip()[:2000] or None, created_by=user,
            created_at=datetime.now(timezone.utc)))


def raw_data_sql(group: GroupConfig, start: datetime, end: datetime,
                 channels: list[str], pad: timedelta = timedelta(hours=1)) -> str:
    """The SQL that pulls the event's raw readings (padded) from the group's source.

    Identifiers are quoted the way the source's dialect does (a table ``order`` or a column
    ``user`` are reserved words; mixed case is kept), as tsad's own reads quote them.
    """
    from zoneinfo import ZoneInfo

    src = group.source
    zone = ZoneInfo(src.timestamps_timezone)
    lo = (start - pad).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    hi = (end + pad).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    minutes = int(pad.total_seconds() // 60)
    origin = f"connection {src.conn_id}" if src.conn_id else describe(src.url or "?")
    where = (f"-- on the source of group {group.name} ({origin}): the event and {minutes} "
             f"minutes either side,\n-- timestamps in {src.timestamps_timezone}")
    if src.kind != "sql":
        return (f"-- group {group.name} reads files, not SQL: {src.path}\n"
                f"-- (layout {src.layout}) between {lo} and {hi} ({src.timestamps_timezone})")
    q = _source_dialect(src.url, src.conn_id).identifier_preparer.quote
    ts, table = q(src.timestamp_column), q(src.table or "")
    if src.layout == "long":
        sensor, value = q(src.sensor_column), q(src.value_column)
        names = ", ".join(_literal(c) for c in channels)
        return (f"{where}\nSELECT {ts}, {sensor}, {value}\n"
                f"FROM {table}\nWHERE {ts} >= '{lo}' AND {ts} < '{hi}'\n"
                f"  AND {sensor} IN ({names})\nORDER BY {ts}, {sensor};")
    columns = ", ".join(q(c) for c in channels)
    return (f"{where}\nSELECT {ts}, {columns}\nFROM {table}\n"
            f"WHERE {ts} >= '{lo}' AND {ts} < '{hi}'\nORDER BY {ts};")


def _source_dialect(url: str | None, conn_id: str | None) -> Dialect:
    """The source's SQLAlchemy dialect (no connection is made); the SQL standard's when the
    connection cannot be resolved or its dialect is not installed here."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.engine.default import DefaultDialect

    from tsad.airflow_layer.connections import optional_url

    try:
        return make_url(optional_url(url, conn_id) or "").get_dialect()()
    except Exception:  # an unknown connection or driver: the SQL is advice, not run here
        return DefaultDialect()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
