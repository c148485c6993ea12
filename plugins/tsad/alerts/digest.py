"""A group's digest of a day's new anomaly events: subject, text table and HTML.

The digest is built from records read back from SQL (so re-running the alert task sends the same
message); :mod:`tsad.alerts.routing` decides which events it lists, :mod:`tsad.alerts.delivery`
sends it.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tsad.alerts.routing import Event, severity_level, top_channels
from tsad.config import SeverityRoute

MAX_ATTACHMENTS = 10  # plots attached to one email, most severe events first


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    images: tuple[tuple[str, str], ...] = ()  # (alt text, public URL) of plots, for Slack
    mention: str | None = None  # Slack mention for the highest severity route reached


def plot_files(events: Sequence[Event], limit: int = MAX_ATTACHMENTS) -> list[Path]:
    """The events' plots that exist on disk, most severe first (an email carries ``limit``)."""
    ranked = sorted(events, key=lambda e: -float(e["severity"]))
    found = [Path(e["plot_path"]) for e in ranked if e.get("plot_path")]
    return [p for p in found if p.is_file()][:limit]


def published_plot_url(base_url: str, data_dir: str | Path, plot_path: str | None) -> str | None:
    """Where a plot under ``{data_dir}/plots`` is published (``plot_base_url`` + relative path)."""
    if not plot_path:
        return None
    try:
        relative = Path(plot_path).resolve().relative_to((Path(data_dir) / "plots").resolve())
    except ValueError:
        return None
    return f"{base_url.rstrip('/')}/{urllib.parse.quote(relative.as_posix())}"


def build_digest(
    sensor_group: str,
    day: date,
    events: Sequence[Event],
    attachments: Sequence[Path] = (),
    *,
    routes: Sequence[SeverityRoute] = (),
    plot_url: Callable[[Event], str | None] | None = None,
    adopt_after_days: int = 0,
) -> Digest | None:
    """A short digest of ``events`` (rows of ``anomaly_event``); None when there are none.

    With ``routes`` each event shows its severity level and the subject the highest one;
    ``plot_url`` gives the public URL of an event's plot (Slack image blocks). A sustained
    event adds what tsad does about it (``adopt_after_days``: ``training.adopt_after_days``).
    """
    if not events:
        return None
    events = sorted(events, key=lambda e: e["start_ts"])
    worst = max(float(e["severity"]) for e in events)
    n = len(events)
    level = severity_level(worst, routes)
    subject = (f"[tsad] {level.upper() + ' ' if level else ''}{sensor_group} {day.isoformat()}: "
               f"{n} anomaly event{'s' if n != 1 else ''} (max severity {worst:.1f})")
    header = ["start (UTC)", "end (UTC)", "duration", "severity", "top channels", "model"]
    if routes:
        header.insert(4, "level")
    rows = []
    for e in events:
        row = [
            _utc(e["start_ts"]),
            _utc(e["end_ts"]),
            _duration(e["end_ts"] - e["start_ts"]),
            f"{float(e['severity']):.1f}",
            _channels(e),
            str(e.get("model_version_id") or "-"),
        ]
        if routes:
            row.insert(4, severity_level(float(e["severity"]), routes) or "-")
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    intro = (f"{n} new anomaly event{'s' if n != 1 else ''} for sensor group {sensor_group} "
             f"on {day.isoformat()} (severity = peak score / threshold; >= 1 is anomalous).")
    footer = [*(_sustained_note(e, day, adopt_after_days) for e in events
                if e.get("kind") == "sustained")]
    if attachments:
        footer.append(f"Attached: {', '.join(Path(a).name for a in attachments)}")
    text = "\n".join([intro, "", *lines, *([""] + footer if footer else [])]) + "\n"
    images = []
    if plot_url is not None:
        for e in sorted(events, key=lambda e: -float(e["severity"])):
            url = plot_url(e)
            if url:
                images.append((f"{sensor_group} {_utc(e['start_ts'])} severity "
                               f"{float(e['severity']):.1f}", url))
    mentions = [r for r in routes if worst >= r.min_severity and r.slack_mention]
    mention = max(mentions, key=lambda r: r.min_severity).slack_mention if mentions else None
    return Digest(subject=subject, text=text, html=_html(intro, header, rows, footer),
                  images=tuple(images), mention=mention)


def _sustained_note(event: Event, day: date, adopt_after_days: int) -> str:
    """What a sustained event means and what tsad will do about it (README, *Sustained
    departures*)."""
    since = event.get("since_date") or day
    lasted = (day - since).days + 1
    note = (f"SUSTAINED since {since.isoformat()} (day {lasted}): the whole day moved away from "
            "what the model learned as normal; a new operating point or a failing machine. "
            "tsad keeps alerting it daily and does not learn it as normal until someone marks "
            "the event 'New operating point' on its event page")
    if adopt_after_days:
        when = since + timedelta(days=adopt_after_days)
        note += (f", or until it has lasted {adopt_after_days} days (training.adopt_after_days): "
                 f"from {when.isoformat()} tsad retrains on it")
    return note + "."


def _utc(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def _channels(event: Event) -> str:
    return ", ".join(f"{c['channel']} {100 * float(c['contribution']):.0f}%"
                     for c in top_channels(event)) or "-"


def _html(intro: str, header: list[str], rows: list[list[str]], footer: list[str]) -> str:
    cell = 'style="padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"'
    head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows
    )
    notes = "".join(f"<p>{html.escape(f)}</p>" for f in footer)
    return (f"<html><body><p>{html.escape(intro)}</p>"
            f'<table style="border-collapse:collapse;font-family:monospace">'
            f"<tr>{head}</tr>{body}</table>{notes}</body></html>")


