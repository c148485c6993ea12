"""A group's digest of a day's new anomaly events: subject, text table, HTML, email and Slack JSON.

The digest is built from records read back from SQL (so re-running the alert task sends the same
message); :mod:`tsad.alerts.routing` decides which events it lists, :mod:`tsad.alerts.delivery`
sends it. Each event links to its page in the Airflow UI (``alerts.ui_base_url``) and shows its
times in the site's zone beside UTC. The HTML email carries the plots inline (``cid:`` images in
a ``multipart/related`` part); the text, the log and Slack carry nothing attached and say so by
saying nothing: their plots are the event pages and, for Slack, published image URLs.
"""

from __future__ import annotations

import email.policy
import html
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tsad.alerts.routing import Event, severity_level, slack_mention, top_channels
from tsad.config import SeverityRoute

EVENT_PAGE = "/tsad/events/{event_id}"  # the UI's event page (tsad.airflow_layer.ui.app)
MAX_PLOTS = 10  # plots shown inline in one email, most severe events first
SLACK_SECTION_LIMIT = 3000  # characters in one Slack section block
SLACK_MAX_IMAGES = 5  # image blocks per post; the rest are on the event pages
# Python's folding at 78 characters splits a subject starting with "[tsad]" right after
# "Subject:", which some clients show as a leading blank; RFC 5322 allows lines up to 998.
HEADER_POLICY = email.policy.default.clone(max_line_length=998)


@dataclass(frozen=True)
class InlinePlot:
    """An event's plot shown in the HTML email, referenced there as ``cid:{cid}``."""

    cid: str
    path: Path
    caption: str
    href: str | None = None  # the event's page


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str  # table, notes and event page URLs: the log and the email's text part
    html: str  # the email's HTML part; it shows ``plots`` by Content-ID
    table: str = ""  # ``text`` without the URLs: Slack's code block (its links are separate)
    plots: tuple[InlinePlot, ...] = ()
    links: tuple[tuple[str, str], ...] = ()  # (label, event page URL), one per linked event
    images: tuple[tuple[str, str], ...] = ()  # (alt text, public URL) of plots, for Slack
    mention: str | None = None  # Slack mention for the highest severity route reached


def event_page_url(ui_base_url: str, event_id: int) -> str:
    """Where the UI shows event ``event_id`` (the Airflow UI's address + :data:`EVENT_PAGE`)."""
    return ui_base_url.rstrip("/") + EVENT_PAGE.format(event_id=int(event_id))


def plot_files(events: Sequence[Event], limit: int = MAX_PLOTS) -> list[Path]:
    """The events' plots that exist on disk, most severe first (an email shows ``limit``)."""
    return [path for _, path in _with_plots(events)][:limit]


def _with_plots(events: Sequence[Event]) -> list[tuple[Event, Path]]:
    ranked = sorted(events, key=lambda e: -float(e["severity"]))
    found = [(e, Path(e["plot_path"])) for e in ranked if e.get("plot_path")]
    return [(e, p) for e, p in found if p.is_file()]


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
    *,
    routes: Sequence[SeverityRoute] = (),
    site_timezone: str = "UTC",
    ui_base_url: str | None = None,
    plot_url: Callable[[Event], str | None] | None = None,
    adopt_after_days: int = 0,
    model_notes: Sequence[str] = (),
) -> Digest | None:
    """A short digest of ``events`` (rows of ``anomaly_event``); None when there are none.

    With ``routes`` each event shows its severity level and the subject the highest one;
    ``ui_base_url`` links each event (its ``id``) to its page; ``plot_url`` gives the public URL
    of an event's plot (Slack image blocks). A sustained event adds what tsad does about it
    (``adopt_after_days``: ``training.adopt_after_days``).
    """
    if not events:
        return None
    events = sorted(events, key=lambda e: e["start_ts"])
    site = ZoneInfo(site_timezone)
    local = site_timezone != "UTC"
    worst = max(float(e["severity"]) for e in events)
    n = len(events)
    level = severity_level(worst, routes)
    subject = (f"[tsad] {level.upper() + ' ' if level else ''}{sensor_group} {day.isoformat()}: "
               f"{n} anomaly event{'s' if n != 1 else ''} (max severity {worst:.1f})")
    header = [*([f"start ({site_timezone})", f"end ({site_timezone})"] if local else []),
              "start (UTC)", "end (UTC)", "duration", "severity",
              *(["level"] if routes else []), "top channels", "model"]
    rows = [[*([_at(e["start_ts"], site), _at(e["end_ts"], site)] if local else []),
             _utc(e["start_ts"]), _utc(e["end_ts"]), _duration(e["end_ts"] - e["start_ts"]),
             f"{float(e['severity']):.1f}",
             *([severity_level(float(e["severity"]), routes) or "-"] if routes else []),
             _channels(e), str(e.get("model_version_id") or "-")] for e in events]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    table = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    intro = (f"{n} new anomaly event{'s' if n != 1 else ''} for sensor group {sensor_group} "
             f"on {day.isoformat()} (severity = peak score / threshold; >= 1 is anomalous).")
    notes = [*(_sustained_note(e, day, adopt_after_days) for e in events
               if e.get("kind") == "sustained"), *model_notes]
    hrefs = [event_page_url(ui_base_url, e["id"]) if ui_base_url and e.get("id") is not None
             else None for e in events]
    links = tuple((f"{_when(e, site, local)}, severity {float(e['severity']):.1f}", url)
                  for e, url in zip(events, hrefs, strict=True) if url)
    pages = ["Event pages:", *(f"  {label}: {url}" for label, url in links)] if links else []
    body = "\n".join([intro, "", *table, *([""] + notes if notes else [])]) + "\n"
    text = body + ("\n" + "\n".join(pages) + "\n" if pages else "")

    page = {id(e): url for e, url in zip(events, hrefs, strict=True)}
    with_plots = _with_plots(events)
    plots = tuple(InlinePlot(cid=f"{sensor_group}.{day.isoformat()}.{i}@tsad", path=path,
                             caption=f"{_when(e, site, local)}, severity "
                                     f"{float(e['severity']):.1f}: {_channels(e)}",
                             href=page[id(e)])
                  for i, (e, path) in enumerate(with_plots[:MAX_PLOTS], start=1))
    if len(with_plots) > MAX_PLOTS:
        notes = [*notes, f"Plots of the {MAX_PLOTS} most severe events are shown; the others "
                         "are on their event pages."]
    images = []
    if plot_url is not None:
        for e in sorted(events, key=lambda e: -float(e["severity"])):
            url = plot_url(e)
            if url:
                images.append((f"{sensor_group} {_utc(e['start_ts'])} severity "
                               f"{float(e['severity']):.1f}", url))
    return Digest(subject=subject, text=text, table=body,
                  html=_html(intro, header, rows, hrefs, notes, plots),
                  plots=plots, links=links, images=tuple(images),
                  mention=slack_mention(worst, routes))


def provisional_note(version_id: str, history: dict[str, Any], wanted_days: int) -> str:
    """What a provisional model's events are worth (docs/quality.md, *Does the default
    threshold keep its promise on new normal days*)."""
    days = len(history.get("days") or [])
    return (f"PROVISIONAL model {version_id}: trained on {days} of the {wanted_days} days "
            "training.days asks for. A young model has not seen how normal days vary, and normal "
            "days it has not seen often score above its threshold: weigh these events "
            "accordingly. tsad retrains it daily until it has the full range.")


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


def email_message(subject: str, text: str, html_body: str, recipients: Sequence[str],
                  plots: Sequence[InlinePlot] = ()) -> EmailMessage:
    """Text + HTML alternatives, the HTML with its plots inline (``multipart/related``, each
    image by its Content-ID); ``From`` is left to the sender, which knows the connection."""
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    msg = EmailMessage(policy=HEADER_POLICY)
    msg["Subject"] = subject
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=True)
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    if plots:
        html_part = msg.get_payload()[1]
        for plot in plots:
            html_part.add_related(plot.path.read_bytes(), maintype="image", subtype="png",
                                  cid=f"<{plot.cid}>", filename=plot.path.name,
                                  disposition="inline")
    return msg


def digest_email(digest: Digest, recipients: Sequence[str]) -> EmailMessage:
    """The digest as the email ``recipients`` get."""
    return email_message(digest.subject, digest.text, digest.html, recipients, digest.plots)


def slack_payload(digest: Digest) -> dict[str, Any]:
    """Slack-compatible JSON: the table, a link per event, the published plots as images."""
    mention = f"{digest.mention} " if digest.mention else ""
    table = _mrkdwn(digest.table or digest.text)
    limit = SLACK_SECTION_LIMIT - 10 - len(mention)
    if len(table) > limit:
        table = table[: limit - 20] + "\n... (truncated)"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": digest.subject[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{mention}```{table}```"}},
    ]
    if digest.links:
        lines, used = [], 0
        for i, (label, url) in enumerate(digest.links):
            line = f"• <{url}|{_mrkdwn(label)}>"
            if used + len(line) + 60 > SLACK_SECTION_LIMIT:
                lines.append(f"... and {len(digest.links) - i} more in the tsad UI")
                break
            lines.append(line)
            used += len(line) + 1
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": "*Event pages*\n" + "\n".join(lines)}})
    for alt, url in digest.images[:SLACK_MAX_IMAGES]:
        blocks.append({"type": "image", "image_url": url, "alt_text": alt[:2000],
                       "title": {"type": "plain_text", "text": alt[:150]}})
    return {"text": f"{mention}{digest.subject}", "blocks": blocks}


def _mrkdwn(text: str) -> str:
    # Slack's mrkdwn treats & < > as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _utc(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _at(ts: datetime, site: tzinfo) -> str:
    """Site-local time with the zone's abbreviation (CET or CEST: a DST day repeats an hour)."""
    return ts.astimezone(site).strftime("%Y-%m-%d %H:%M:%S %Z")


def _when(event: Event, site: tzinfo, local: bool) -> str:
    utc = f"{_utc(event['start_ts'])} UTC"
    return f"{_at(event['start_ts'], site)} ({utc})" if local else utc


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


def _html(intro: str, header: list[str], rows: list[list[str]], hrefs: list[str | None],
          notes: list[str], plots: Sequence[InlinePlot]) -> str:
    cell = ('style="padding:2px 8px;text-align:left;border-bottom:1px solid #ddd;'
            'white-space:nowrap"')
    linked = any(hrefs)
    head = "".join(f"<th {cell}>{html.escape(h)}</th>" for h in
                   [*header, *(["event page"] if linked else [])])
    body = "".join("<tr>" + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in r)
                   + (f"<td {cell}>{_link(h, 'open')}</td>" if linked else "") + "</tr>"
                   for r, h in zip(rows, hrefs, strict=True))
    paragraphs = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    figures = "".join(
        f'<figure style="margin:16px 0"><img src="cid:{html.escape(p.cid)}" '
        f'alt="{html.escape(p.caption)}" style="max-width:100%"><figcaption>'
        f"{html.escape(p.caption)}{' - ' + _link(p.href, 'event page') if p.href else ''}"
        "</figcaption></figure>" for p in plots)
    return (f"<html><body><p>{html.escape(intro)}</p>"
            f'<table style="border-collapse:collapse;font-family:monospace">'
            f"<tr>{head}</tr>{body}</table>{paragraphs}{figures}</body></html>")


def _link(href: str | None, label: str) -> str:
    return f'<a href="{html.escape(href)}">{html.escape(label)}</a>' if href else "-"
