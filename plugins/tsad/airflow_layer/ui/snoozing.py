"""The snooze section of the Anomalies pages: the snoozes in force, a form to add one.

Snoozes set here live in ``alert_snooze`` (``tsad.storage.snoozes``) and are removable here;
those of the config (``alerts.snooze`` in ``tsad.yaml``) are listed beside them, to be ended
by editing the config. Both hold back the alerts of data days before their ``until``: a whole
group's, or those of the events a channel leads (half of the contribution or more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from typing import Any

from tsad.config import GroupConfig

DEFAULT_DAYS = 7  # the form's default: a week from today


@dataclass(frozen=True)
class Shown:
    """One snooze as listed: from the page (``id`` set, removable) or from the config."""

    group: str
    channels: tuple[str, ...]
    until: date
    reason: str
    by: str | None = None
    id: int | None = None


def in_force(db_rows: list[dict[str, Any]], groups: list[GroupConfig], day: date,
             group: str | None = None) -> list[Shown]:
    """The page's and the config's snoozes holding back data day ``day``, of ``group`` or all."""
    shown = [Shown(r["sensor_group"], (r["channel"],) if r["channel"] else (), r["until_date"],
                   r["reason"] or "", r["created_by"], int(r["id"])) for r in db_rows]
    shown += [Shown(g.name, tuple(s.channels), s.until_day, s.reason)
              for g in groups if group in (None, g.name)
              for s in g.alerts.snooze if day < s.until_day]
    return sorted(shown, key=lambda s: (s.group, s.until, s.id is None, s.id or 0))


def snooze_list(snoozes: list[Shown], back: str) -> str:
    """The snoozes in force; each of the page's has a Remove button (``back``: where to return,
    an event id or empty for the list)."""
    if not snoozes:
        return '<p class="note" id="snoozes">No snoozes in force.</p>'
    items = []
    for s in snoozes:
        what = ("every event" if not s.channels
                else "events led by " + ", ".join(escape(c) for c in s.channels))
        head = (f"<b>{escape(s.group)}</b>: {what}, data days before <b>{s.until}</b>"
                f"{': ' + escape(s.reason) if s.reason else ''}")
        if s.id is None:
            items.append(f'<li class="snooze config">{head} <span class="note">(in tsad.yaml: '
                         "edit the config to end it)</span></li>")
            continue
        items.append(
            f'<li class="snooze" data-snooze-id="{s.id}">{head} <span class="note">(by '
            f'{escape(s.by or "?")})</span> <form class="inline" method="post" '
            f'action="{_root(back)}snoozes/{s.id}/remove"><input type="hidden" name="back" '
            f'value="{escape(back)}"><button type="submit" id="remove-snooze-{s.id}">Remove'
            "</button></form></li>")
    return f'<ul id="snoozes">{"".join(items)}</ul>'


def snooze_form(event: dict[str, Any], group: GroupConfig | None, today: date) -> str:
    """Snooze the event's group, or one of its channels (the event's top channel preselected)."""
    if group is None:
        return ""
    top = next((t["channel"] for t in event["top_channels_json"] or []
                if t["channel"] in group.channels), None)
    options = [f'<option value="">every event of {escape(group.name)}</option>']
    options += [f'<option value="{escape(c)}"{" selected" if c == top else ""}>events led by '
                f"{escape(c)}</option>" for c in group.channels]
    until = today + timedelta(days=DEFAULT_DAYS)
    return (f'<form class="filters" id="snooze" method="post" action="{event["event_id"]}/snooze">'
            f'<label>hold back<select name="channel">{"".join(options)}</select></label>'
            f'<label>for data days before<input type="date" name="until" value="{until}" '
            f'min="{today}" required></label>'
            '<label>reason<input type="text" name="reason" size="30" maxlength="500" '
            'placeholder="sensor swap, maintenance..."></label>'
            '<button type="submit" id="snooze-button">Snooze alerts</button></form>'
            '<p class="note">Snoozed events are still scored, recorded and listed here; only '
            "their alerts are held back (a channel's: the events where it carries half of the "
            "contribution or more).</p>")


def _root(back: str) -> str:
    """The plugin's root, relative to the page the form is on (an event page or the list)."""
    return "../" if back else ""
