"""Snoozes set from the UI, in ``alert_snooze``: written by the event page, read by the alerts.

A snooze holds back a group's alerts, or those of the events a channel leads, for data days
before ``until_date``: the meaning of a config ``alerts.snooze`` entry (``tsad.alerts.routing``),
so :func:`snoozes_for` hands them to the alerts as ``Snooze`` values beside the config's.
Removing one stamps ``removed_at`` / ``removed_by`` and keeps the row as history.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, insert, inspect, select, update

from tsad.config import Snooze
from tsad.storage.schema import alert_snooze

MAX_REASON = 500
OUTDATED = ("the records database predates snoozes (schema revision 0003): run `tsad db upgrade` "
            "or let the nightly DAG's db_upgrade task run")


def has_table(engine: Engine) -> bool:
    """Whether the database has ``alert_snooze`` (a UI may read it before the next nightly run
    migrated it)."""
    return inspect(engine).has_table(alert_snooze.name)


def add_snooze(engine: Engine, group: str, channel: str | None, until: date, reason: str | None,
               user: str, today: date | None = None) -> int:
    """Record a snooze; returns its id. ValueError (naming the field) for an ``until`` before
    ``today``: it would hold back no data day still to be alerted (tonight's run alerts
    yesterday's, which ``until`` = today holds back)."""
    today = today or date.today()
    if until < today:
        raise ValueError(f"'until' must be today ({today}) or later: alerts are held back for "
                         f"data days before it, got {until}")
    with engine.begin() as conn:
        result = conn.execute(insert(alert_snooze).values(
            sensor_group=group, channel=channel or None, until_date=until,
            reason=(reason or "").strip()[:MAX_REASON] or None, created_by=user,
            created_at=datetime.now(timezone.utc)))
        return int(result.inserted_primary_key[0])


def remove_snooze(engine: Engine, snooze_id: int, user: str) -> dict[str, Any] | None:
    """End a snooze now (the row stays, stamped); returns it, or None when there is no snooze
    in force with that id."""
    c = alert_snooze.c
    with engine.begin() as conn:
        row = conn.execute(select(alert_snooze).where(c.id == snooze_id, c.removed_at.is_(None))) \
            .mappings().first()
        if row is None:
            return None
        conn.execute(update(alert_snooze).where(c.id == snooze_id).values(
            removed_by=user, removed_at=datetime.now(timezone.utc)))
    return dict(row)


def active_snoozes(engine: Engine, group: str | None = None,
                   day: date | None = None) -> list[dict[str, Any]]:
    """Snoozes in force (not removed) that hold back data day ``day`` (default: yesterday's,
    the one tonight's run alerts), of one group or all, by group and soonest end first."""
    c = alert_snooze.c
    day = day or date.today() - timedelta(days=1)
    query = (select(alert_snooze)
             .where(c.removed_at.is_(None), c.until_date > day)
             .order_by(c.sensor_group, c.until_date, c.id))
    if group is not None:
        query = query.where(c.sensor_group == group)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def snoozes_for(engine: Engine, group: str, day: date) -> list[Snooze]:
    """The UI's snoozes of ``group`` that hold back data day ``day``, as config ``Snooze``
    values (their reason says who set them)."""
    return [Snooze(until=row["until_date"].isoformat(),
                   channels=[row["channel"]] if row["channel"] else [],
                   reason=f"{row['reason'] or 'no reason given'}; set by "
                          f"{row['created_by'] or '?'} in the UI")
            for row in active_snoozes(engine, group, day)]
