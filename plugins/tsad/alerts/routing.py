"""Which events are alerted, and to whom: new events, snoozes, severity routes.

In order: an event that only continues yesterday's is not new (:func:`new_events`); a snoozed
group or channel holds events back (:func:`split_snoozed`); every remaining event goes to the
group's ``email_to`` and to each severity route it reaches (:func:`plan_emails`), one email per
recipient set. Everything here is pure: the events are rows read back from SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tsad.config import SeverityRoute, Snooze

SNOOZE_SHARE = 0.5  # an event is held back when snoozed channels carry at least this share

Event = dict[str, Any]  # a row of ``anomaly_event`` (see tsad.storage.schema)


def new_events(
    today: list[Event],
    yesterday: list[Event],
    day_start: datetime,
    sampling_seconds: int,
    tolerance_steps: int = 1,
) -> list[Event]:
    """Today's events minus one that only continues yesterday's last event across midnight.

    A sustained event (the day as a whole moved away) is always new: it is alerted every day
    the departure lasts, until it ends or a person confirms it as a new operating point.

    An event is a continuation when it starts within ``tolerance_steps`` sampling steps of
    ``day_start`` and an event of yesterday ends within as many steps of it: it was already
    alerted on. The pipeline passes ``merge_gap + 1``, the gap that would merge the two halves
    into one event had they fallen on the same day.
    """
    if day_start.utcoffset() is None:
        raise ValueError(f"day_start {day_start.isoformat()} has no time zone")
    step = timedelta(seconds=sampling_seconds) * tolerance_steps
    ongoing = any(abs(e["end_ts"] - day_start) <= step for e in yesterday
                  if e.get("kind") != "sustained")
    if not ongoing:
        return list(today)
    return [e for e in today
            if e.get("kind") == "sustained" or abs(e["start_ts"] - day_start) > step]


def severity_level(severity: float, routes: Sequence[SeverityRoute]) -> str | None:
    """The name of the highest route ``severity`` reaches; None below every route."""
    reached = [r for r in routes if severity >= r.min_severity]
    return max(reached, key=lambda r: r.min_severity).name if reached else None


def slack_mention(severity: float, routes: Sequence[SeverityRoute]) -> str | None:
    """The Slack mention of the highest route ``severity`` reaches that has one."""
    mentions = [r for r in routes if severity >= r.min_severity and r.slack_mention]
    return max(mentions, key=lambda r: r.min_severity).slack_mention if mentions else None


def split_snoozed(events: Sequence[Event], snoozes: Sequence[Snooze],
                  day: date) -> tuple[list[Event], list[tuple[Event, Snooze]]]:
    """``(to alert, held back)``. A snooze holds back events of days before its ``until``:
    all of them when it names no channels, else those whose snoozed channels carry at least
    half of the event's contribution (a broken sensor's events, not the plant's)."""
    active = [s for s in snoozes if day < s.until_day]
    keep: list[Event] = []
    held: list[tuple[Event, Snooze]] = []
    for e in events:
        match = next((s for s in active if not s.channels
                      or _share(e, set(s.channels)) >= SNOOZE_SHARE), None)
        if match is None:
            keep.append(e)
        else:
            held.append((e, match))
    return keep, held


def top_channels(event: Event) -> list[dict[str, Any]]:
    """The event's ``[{"channel", "contribution"}]``, largest first."""
    return list(event.get("top_channels_json") or event.get("top_channels") or [])


def _share(event: Event, channels: set[str]) -> float:
    return sum(float(c["contribution"]) for c in top_channels(event) if c["channel"] in channels)


@dataclass(frozen=True)
class EmailPlan:
    """One email: who gets it and which events it lists."""

    recipients: tuple[str, ...]
    events: tuple[Event, ...]


def plan_emails(events: Sequence[Event], email_to: Sequence[str],
                routes: Sequence[SeverityRoute]) -> list[EmailPlan]:
    """One email per distinct set of events: ``email_to`` gets every event, each route's
    ``email_to`` the events at or above its ``min_severity``. Recipients are de-duplicated."""
    per_recipient: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        who = list(email_to) + [a for r in routes if float(e["severity"]) >= r.min_severity
                                for a in r.email_to]
        for address in dict.fromkeys(who):
            per_recipient.setdefault(address, []).append(i)
    by_events: dict[tuple[int, ...], list[str]] = {}
    for address, idx in per_recipient.items():
        by_events.setdefault(tuple(idx), []).append(address)
    return [EmailPlan(tuple(who), tuple(events[i] for i in idx))
            for idx, who in sorted(by_events.items(), key=lambda kv: (len(kv[0]), kv[0]))]
