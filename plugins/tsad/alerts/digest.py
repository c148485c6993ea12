"""A group's digest of a day's new anomaly events, and its delivery by email, webhook and log.

The digest is built from records read back from SQL (so re-running the alert task sends the same
message). Connections are resolved by the caller (the Airflow layer or the CLI): these functions
take plain settings and use only the standard library.

Routing, in order: an event that only continues yesterday's is not new (:func:`new_events`);
a snoozed group or channel holds events back (:func:`split_snoozed`); every remaining event goes
to the group's ``email_to`` and to each severity route it reaches (:func:`plan_emails`), one
email per recipient set, with the events' plots attached.
"""

from __future__ import annotations

import html
import json
import logging
import mimetypes
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tsad.config import SeverityRoute, Snooze
from tsad.errors import TsadError

SLACK_SECTION_LIMIT = 3000  # characters in one Slack section block
SLACK_MAX_IMAGES = 5  # image blocks per post; the rest are reachable from the digest table
MAX_ATTACHMENTS = 10  # plots attached to one email, most severe events first
SNOOZE_SHARE = 0.5  # an event is held back when snoozed channels carry at least this share

Event = dict[str, Any]  # a row of ``anomaly_event`` (see tsad.storage.schema)


class AlertError(TsadError):
    """An alert could not be delivered; the message names the server or host, never a secret."""


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
    html: str
    images: tuple[tuple[str, str], ...] = ()  # (alt text, public URL) of plots, for Slack
    mention: str | None = None  # Slack mention for the highest severity route reached


def new_events(
    today: list[dict[str, Any]],
    yesterday: list[dict[str, Any]],
    day_start: datetime,
    sampling_seconds: int,
    tolerance_steps: int = 1,
) -> list[dict[str, Any]]:
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


def _share(event: Event, channels: set[str]) -> float:
    return sum(float(c["contribution"]) for c in _top(event) if c["channel"] in channels)


@dataclass(frozen=True)
class Delivery:
    """One email: who gets it and which events it lists."""

    recipients: tuple[str, ...]
    events: tuple[Event, ...]


def plan_emails(events: Sequence[Event], email_to: Sequence[str],
                routes: Sequence[SeverityRoute]) -> list[Delivery]:
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
    return [Delivery(tuple(who), tuple(events[i] for i in idx))
            for idx, who in sorted(by_events.items(), key=lambda kv: (len(kv[0]), kv[0]))]


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


def _top(event: Event) -> list[dict[str, Any]]:
    return list(event.get("top_channels_json") or event.get("top_channels") or [])


def _channels(event: Event) -> str:
    return ", ".join(f"{c['channel']} {100 * float(c['contribution']):.0f}%"
                     for c in _top(event)) or "-"


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


def send_email(
    digest: Digest,
    *,
    host: str,
    port: int,
    sender: str,
    recipients: Sequence[str],
    username: str | None = None,
    password: str | None = None,
    starttls: bool = False,
    use_ssl: bool = False,
    attachments: Sequence[Path] = (),
    timeout: float = 30,
) -> None:
    """Send the digest as text + HTML, with files attached (PNG plots); ``use_ssl`` is port 465."""
    if not recipients:
        raise ValueError("send_email needs at least one recipient")
    msg = EmailMessage()
    msg["Subject"] = digest.subject
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg.set_content(digest.text)
    msg.add_alternative(digest.html, subtype="html")
    for path in map(Path, attachments):
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        maintype, subtype = kind.split("/", 1)
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype,
                           filename=path.name)
    context = ssl.create_default_context()
    try:
        smtp_cls = smtplib.SMTP_SSL if use_ssl else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if use_ssl else {}
        with smtp_cls(host, port, timeout=timeout, **kwargs) as smtp:
            if starttls and not use_ssl:
                smtp.starttls(context=context)
            if username:
                smtp.login(username, password or "")
            smtp.send_message(msg, from_addr=sender, to_addrs=list(recipients))
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError(f"sending the digest through SMTP server {host}:{port} failed: "
                         f"{type(exc).__name__}: {exc}") from exc


def post_webhook(digest: Digest, url: str, timeout: float = 10) -> None:
    """POST the digest as Slack-compatible JSON; errors name the host, never the secret path."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.scheme not in ("http", "https"):
        raise AlertError(f"webhook URL for host {host} must be http or https, not {parts.scheme!r}")
    body = json.dumps(_webhook_payload(digest)).encode()
    request = urllib.request.Request(
        url, data=body, method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "tsad"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise AlertError(f"webhook at {host} answered HTTP {exc.code} {exc.reason}: {detail}") \
            from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AlertError(f"webhook at {host} could not be reached: {reason}") from None


def _webhook_payload(digest: Digest) -> dict[str, Any]:
    # Slack's mrkdwn treats & < > as control characters.
    table = digest.text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    mention = f"{digest.mention} " if digest.mention else ""
    limit = SLACK_SECTION_LIMIT - 10 - len(mention)
    if len(table) > limit:
        table = table[: limit - 20] + "\n... (truncated)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": digest.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{mention}```{table}```"}},
    ]
    for alt, url in digest.images[:SLACK_MAX_IMAGES]:
        blocks.append({"type": "image", "image_url": url, "alt_text": alt[:2000],
                       "title": {"type": "plain_text", "text": alt[:150]}})
    return {"text": f"{mention}{digest.subject}", "blocks": blocks}


def log_digest(digest: Digest, logger: logging.Logger) -> None:
    """Write the digest to the task log: the one route that always works."""
    logger.info("%s\n%s", digest.subject, digest.text)
