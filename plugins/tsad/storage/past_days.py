"""What the records say about a group's past days: the facts that decide what a model may
learn (``tsad.pipeline.history``) and how long a sustained departure has lasted.

A day's state is its newest run's status, its current events and each event's newest verdict
(``anomaly_feedback``, matched by group and event start, so a verdict survives re-runs that
renumber the events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from tsad.storage.schema import anomaly_event, anomaly_feedback, detection_run

NEW_OPERATING_POINT = "new_operating_point"
FALSE_ALARM = "false_alarm"


@dataclass(frozen=True)
class PastDay:
    """One data day as the records hold it."""

    day: date
    status: str | None = None  # the newest run's status; None: never scored
    events: list[dict[str, Any]] = field(default_factory=list)  # with a "verdict" key

    @property
    def sustained(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("kind") == "sustained"]


def past_days(engine: Engine, group: str, start: date, end: date) -> dict[date, PastDay]:
    """Every day ``start..end`` (both included) of ``group``, never-scored days included."""
    runs = select(detection_run.c.partition_date, detection_run.c.status).where(
        detection_run.c.sensor_group == group,
        detection_run.c.partition_date.between(start, end)).order_by(detection_run.c.id)
    events = select(anomaly_event).where(
        anomaly_event.c.sensor_group == group,
        anomaly_event.c.partition_date.between(start, end)).order_by(anomaly_event.c.start_ts)
    verdicts = select(anomaly_feedback.c.event_start_ts, anomaly_feedback.c.label).where(
        anomaly_feedback.c.sensor_group == group,
        anomaly_feedback.c.partition_date.between(start, end)).order_by(anomaly_feedback.c.id)
    with engine.connect() as conn:
        status = {row.partition_date: row.status for row in conn.execute(runs)}
        rows = [dict(r) for r in conn.execute(events).mappings()]
        label = {row.event_start_ts: row.label for row in conn.execute(verdicts)}
    by_day: dict[date, list[dict[str, Any]]] = {}
    for row in rows:
        row["verdict"] = label.get(row["start_ts"])
        by_day.setdefault(row["partition_date"], []).append(row)
    days = (start + timedelta(days=k) for k in range((end - start).days + 1))
    return {d: PastDay(d, status.get(d), by_day.get(d, [])) for d in days}


def sustained_since(engine: Engine, group: str, day: date) -> date | None:
    """The first day of the sustained departure that ``day`` continues: the since-date of the
    day before's sustained event (None: the day before had none)."""
    before = past_days(engine, group, day - timedelta(days=1), day - timedelta(days=1))
    lasting = next(iter(before.values())).sustained
    if not lasting:
        return None
    return min(e.get("since_date") or e["partition_date"] for e in lasting)


def confirmed_since(engine: Engine, group: str, since: date, until: date) -> bool:
    """Whether a person marked a sustained event of ``since..until`` a new operating point."""
    query = select(func.count()).select_from(anomaly_feedback).where(
        anomaly_feedback.c.sensor_group == group,
        anomaly_feedback.c.partition_date.between(since, until),
        anomaly_feedback.c.label == NEW_OPERATING_POINT)
    with engine.connect() as conn:
        return bool(conn.execute(query).scalar())



def false_alarms_since(engine: Engine, group: str, after: datetime, first: date,
                       last: date) -> int:
    """How many false-alarm verdicts on events of ``first..last`` were given after ``after``
    (UTC): rows a model trained before them still masks, and could learn."""
    f = anomaly_feedback.c
    query = select(func.count()).select_from(anomaly_feedback).where(
        f.sensor_group == group, f.partition_date.between(first, last),
        f.label == FALSE_ALARM, f.created_at > after)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)
