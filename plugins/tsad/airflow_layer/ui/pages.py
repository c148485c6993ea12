"""HTML for the Anomalies pages: plain server-rendered markup, every value escaped.

No template engine and no JavaScript framework: the pages are small, load inside Airflow's iframe
for external views, and work with any browser the Airflow UI supports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timezone
from html import escape
from typing import Any
from urllib.parse import quote

from tsad.airflow_layer.ui.backfill import backfill_hint
from tsad.airflow_layer.ui.chart import chart_block
from tsad.airflow_layer.ui.queries import VERDICT_FILTERS, EventFilter

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:16px 20px;
color:#1a202c}
h1{font-size:20px;margin:0 0 12px}h2{font-size:16px;margin:20px 0 8px}
a{color:#0b66c3}table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e2e8f0;text-align:left;vertical-align:top}
th{background:#f7fafc;font-weight:600}tr:hover td{background:#f7fafc}
form.filters{display:flex;flex-wrap:wrap;gap:8px;align-items:end;margin-bottom:12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:#4a5568}
input,select,button{font:inherit;padding:3px 6px}
button{cursor:pointer;border:1px solid #a0aec0;border-radius:4px;background:#fff}
.verdicts{display:flex;flex-wrap:wrap;gap:8px;margin-top:8px}
button.verdict{display:flex;flex-direction:column;align-items:flex-start;text-align:left;
max-width:15em;padding:6px 10px;color:#1a202c;background:#f7fafc;border-color:#718096}
button.verdict:hover{background:#edf2f7}button.verdict span{font-size:12px;color:#4a5568}
button.verdict.current{border-width:2px;border-color:#2d3748}
.sev{font-weight:600}.lvl-high{color:#c53030}.lvl-mid{color:#c05621}
.note{color:#4a5568;font-size:12px}
tr.event td:first-child{white-space:nowrap}
.mark{display:inline-block;font-size:11px;font-weight:600;padding:0 5px;border-radius:8px;
border:1px solid #4a5568;color:#2d3748;background:#fff;margin-left:4px;white-space:nowrap}
.mark.ongoing{border-style:dashed}.mark.sustained{background:#2d3748;color:#fff}
.grid{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}
pre{background:#f7fafc;border:1px solid #e2e8f0;padding:8px;overflow:auto}
img.plot{max-width:100%;border:1px solid #e2e8f0}
.verdict-label{font-weight:600}
form.inline{display:inline}#snoozes li{margin:2px 0}
"""


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body>{body}</body></html>")


def _utc(ts: datetime | None) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def _severity(value: float) -> str:
    kind = "lvl-high" if value >= 5 else "lvl-mid" if value >= 2 else ""
    return f'<span class="sev {kind}">{value:.2f}</span>'


def _channels(event: dict[str, Any]) -> str:
    return ", ".join(f"{escape(c['channel'])} {100 * float(c['contribution']):.0f}%"
                     for c in event["top_channels_json"] or []) or "-"


#: The verdict buttons, in order: stored label -> (button text, what it tells the team). Neutral
#: colours all: which answer is "good" depends on the plant, and red/green read backwards to some.
VERDICTS = {
    "true_alarm": ("Real fault", "the plant had a problem here"),
    "false_alarm": ("False alarm", "nothing was wrong; the model should not have flagged this"),
    "new_operating_point": ("New operating point", "the plant now runs like this on purpose; "
                                                   "the model should learn it as normal"),
}


def _verdict(label: str | None) -> str:
    if not label:
        return '<span class="note">not reviewed</span>'
    name = VERDICTS[label][0].lower() if label in VERDICTS else label.replace("_", " ")
    return f'<span class="verdict-label verdict-{escape(label)}">{escape(name)}</span>'


def _options(values: Sequence[str], selected: str | None, empty: str) -> str:
    items = [f'<option value="">{escape(empty)}</option>']
    items += [f'<option value="{escape(v)}"{" selected" if v == selected else ""}>{escape(v)}'
              f"</option>" for v in values]
    return "".join(items)


def events_page(rows: list[dict[str, Any]], truncated: bool, f: EventFilter,
                groups: dict[str, list[str]], airflow_root: str, dag_id: str,
                site_timezone: str = "UTC", snoozes: str = "") -> str:
    """The event list; ``snoozes``: the snoozes in force (``snoozing.snooze_list``)."""
    channels = sorted({c for g, cs in groups.items() if not f.group or g == f.group for c in cs})
    form = (
        '<form class="filters" method="get" action="">'
        f'<label>group<select name="group">{_options(sorted(groups), f.group, "all")}'
        "</select></label>"
        f'<label>channel<select name="channel">{_options(channels, f.channel, "all")}'
        "</select></label>"
        f'<label>from<input type="date" name="start" value="{f.start or ""}"></label>'
        f'<label>to<input type="date" name="end" value="{f.end or ""}"></label>'
        f'<label>min severity<input type="number" step="0.5" min="0" name="min_severity" '
        f'value="{"" if f.min_severity is None else f.min_severity}" style="width:6em"></label>'
        f'<label>verdict<select name="verdict">'
        f'{_options(VERDICT_FILTERS, f.verdict, "any")}</select></label>'
        '<button id="apply" type="submit">Filter</button>'
        '<a href="?" class="note">reset</a></form>')
    head = ("<tr><th>day</th><th>group</th><th>start (UTC)</th><th>end</th><th>peak</th>"
            "<th>duration</th><th>severity</th><th>top channels</th><th>model</th><th>run</th>"
            "<th>verdict</th></tr>")
    body = "".join(
        f'<tr class="event" data-event-id="{r["event_id"]}">'
        f'<td>{r["partition_date"]}</td><td>{escape(r["sensor_group"])}</td>'
        f'<td class="start"><a href="events/{r["event_id"]}">{_utc(r["start_ts"])}</a>'
        f'{_sustained(r)}</td>'
        f'<td class="end">{_clock(r["end_ts"], r["start_ts"])}{_ongoing(r)}</td>'
        f'<td class="peak">{_clock(r["peak_ts"], r["start_ts"])}</td>'
        f'<td>{_duration(r["duration_seconds"])}</td><td>{_severity(r["severity"])}</td>'
        f'<td>{_channels(r)}</td><td>{escape(r["model_version_id"] or "-")}</td>'
        f'<td class="run">{_run_link(r, airflow_root, short=True)}</td>'
        f'<td>{_verdict(r["feedback_label"])}</td></tr>' for r in rows)
    summary = (f'<p class="note" id="count">{len(rows)} event{"s" if len(rows) != 1 else ""}'
               f'{" (first 500 shown: narrow the filters)" if truncated else ""}; '
               "severity = peak score / threshold, worst first per day.</p>")
    days = sorted({r["partition_date"] for r in rows})
    start, end = f.start or (days[0] if days else None), f.end or (days[-1] if days else None)
    backfill = (backfill_hint(start, end, airflow_root, dag_id, site_timezone)
                if start and end and start <= end else "")
    table = f'<table id="events">{head}{body}</table>' if rows else "<p>No events match.</p>"
    return page("Anomalies", '<p><a id="overview" href="overview">&larr; fleet overview</a></p>'
                f"<h1>Anomalies</h1>{form}{summary}{table}{backfill}"
                f'{"<h2>Snoozed alerts</h2>" + snoozes if snoozes else ""}')


def event_page(event: dict[str, Any], model: dict[str, Any] | None, history: list[dict[str, Any]],
               sql: str, airflow_root: str, level: str | None, dag_id: str = "tsad_nightly",
               site_timezone: str = "UTC", snoozes: str = "") -> str:
    """The event page; ``snoozes``: the snooze section's HTML (``snoozing``)."""
    e = event
    facts = [
        ("group", escape(e["sensor_group"])), ("data day", str(e["partition_date"])),
        ("start (UTC)", _utc(e["start_ts"]) + _sustained(e)),
        ("end (UTC)", _utc(e["end_ts"]) + _ongoing(e)),
        ("peak (UTC)", _utc(e["peak_ts"])), ("duration", _duration(e["duration_seconds"])),
        ("flagged points", str(e["n_points"])),
        ("peak score / threshold", f"{e['peak_score']:.4f} / {e['threshold']:.4f}"),
        ("severity", _severity(e["severity"]) + (f" ({escape(level)})" if level else "")),
        ("top channels", _channels(e)),
        ("run", _run_link(e, airflow_root)),
    ]
    grid = "".join(f"<div>{k}</div><div>{v}</div>" for k, v in facts)
    plot = chart_block(e, site_timezone)
    buttons = (f'<form method="post" action="{e["event_id"]}/feedback" id="feedback">'
               '<input type="text" name="note" placeholder="note (optional)" size="40">'
               f'<div class="verdicts">{_verdict_buttons(e["feedback_label"])}</div></form>')
    past = "".join(f"<li>{_verdict(v['label'])} by {escape(v['created_by'] or '?')} at "
                   f"{_utc(v['created_at'])}{': ' + escape(v['note']) if v['note'] else ''}</li>"
                   for v in history)
    verdict = (f'<p id="verdict">Current verdict: {_verdict(e["feedback_label"])}</p>{buttons}'
               f'{"<ul>" + past + "</ul>" if past else ""}')
    title = f"{e['sensor_group']} event {_utc(e['start_ts'])}"
    day = e["partition_date"]
    day = day if isinstance(day, date) else date.fromisoformat(str(day))
    body = (f'<p><a href="../">&larr; all anomalies</a></p><h1>{escape(title)}</h1>{plot}'
            f'<h2>Numbers</h2><div class="grid">{grid}</div>'
            f"<h2>Verdict</h2>{verdict}"
            f'{"<h2>Snooze alerts</h2>" + snoozes if snoozes else ""}'
            f"<h2>Model</h2>{_model(model, e['model_version_id'])}"
            f'<h2>Raw data</h2><pre id="sql">{escape(sql)}</pre>'
            f"{backfill_hint(day, day, airflow_root, dag_id, site_timezone)}")
    return page(title, body)


def _verdict_buttons(current: str | None) -> str:
    return "".join(
        f'<button type="submit" class="verdict{" current" if label == current else ""}" '
        f'name="label" value="{label}" id="{label.replace("_", "-")}" '
        f'title="{escape(text)}: {escape(meaning)}">{escape(text)}<span>{escape(meaning)}</span>'
        "</button>" for label, (text, meaning) in VERDICTS.items())


def _run_link(e: dict[str, Any], airflow_root: str, short: bool = False) -> str:
    """The Airflow run that wrote the event (``short``: its kind, the full id on hover)."""
    if not e.get("dag_id") or not e.get("run_id") or e["dag_id"] == "tsad-cli":
        return escape(f"{e.get('dag_id') or '-'} {e.get('run_id') or ''}".strip())
    href = f"{airflow_root}/dags/{quote(e['dag_id'])}/runs/{quote(e['run_id'], safe='')}"
    text = e["run_id"].split("__", 1)[0] if short and "__" in e["run_id"] else e["run_id"]
    return (f'<a href="{escape(href)}" target="_top" title="{escape(e["run_id"])}">'
            f"{escape(text)}</a>")


def _clock(ts: datetime | None, start: datetime | None) -> str:
    """A time in UTC, without the date when it is the start's."""
    if ts is None:
        return "-"
    same_day = start is not None and _utc(ts)[:10] == _utc(start)[:10]
    return ts.astimezone(timezone.utc).strftime("%H:%M" if same_day else "%m-%d %H:%M")


def _ongoing(e: dict[str, Any]) -> str:
    if not e.get("ongoing"):
        return ""
    return (' <span class="mark ongoing" title="still anomalous when the data day ended: the '
            'next day may go on with it">ongoing</span>')


def _sustained(e: dict[str, Any]) -> str:
    if e.get("kind") != "sustained":
        return ""
    since = f" since {e['since_date']}" if e.get("since_date") else ""
    return (f' <span class="mark sustained" title="the day as a whole moved away from training'
            f'{escape(since)}">sustained{escape(since)}</span>')


def _model(model: dict[str, Any] | None, version_id: str | None) -> str:
    if model is None:
        return f"<p>{escape(version_id or 'unknown')} (not recorded)</p>"
    metrics = model.get("metrics_json") or {}
    beats = metrics.get("beats_persistence")
    rows = [
        ("version", escape(model["id"])), ("detector", escape(model["detector_kind"])),
        ("trained on", f"{model['training_start']} .. {model['training_end']}"),
        ("threshold", f"{model['threshold']:.4f} ({escape(model['threshold_strategy'])})"),
        ("threshold range", _threshold_range(metrics.get("threshold_range"))),
        ("false alarms learned", _known_normal(metrics.get("known_normal"))),
        ("held-out error", _num(metrics.get("model_error"))),
        ("persistence baseline", _num(metrics.get("persistence_error"))
         + ("" if beats is None else " (beaten)" if beats else " (NOT beaten)")),
        ("created", f"{_utc(model['created_at'])} by {escape(model['created_by_run'] or '?')}"),
    ]
    return '<div class="grid" id="model">' + "".join(
        f"<div>{k}</div><div>{v}</div>" for k, v in rows) + "</div>"


def _threshold_range(found: dict[str, Any] | None) -> str:
    """Where the threshold could have come out on other held-out rows (model/block_threshold.py:
    level_range), or why nobody can say."""
    if not found:
        return "-"
    if found.get("lower") is None or found.get("upper") is None:
        return escape(f"unknown: the threshold {found.get('note') or 'has no range'}")
    return escape(f"{found['lower']:.4f} .. {found['upper']:.4f} "
                  f"({100 * found['confidence']:.0f} % range over {found['n_blocks']} "
                  f"independent blocks of {found['block_rows']} held-out rows)")


def _known_normal(known: dict[str, Any] | None) -> str:
    """What the training kept of the events a person marked false alarms, and whether the
    threshold was raised above them (``tsad.model.known_normal``)."""
    if not known:
        return "-"
    periods = f"{known['periods']} period(s) marked false alarm kept in training"
    if known.get("raised_from") is None:
        return escape(f"{periods}; the threshold already cleared them")
    return escape(f"{periods}; threshold raised from {known['raised_from']:.4f} so they score "
                  f"below it by its margin (their peak {known['peak']:.4f})")


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"

