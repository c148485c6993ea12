"""The fleet overview, the Anomalies landing page: groups x data days at a glance.

Each cell is a (group, data day): coloured by the day's worst event severity (the same bands as
the list), marked when a sustained event was recorded or the day's newest run did not end ``ok``
(drift, a partial or missing day), and linked to that day's events. A day with no run is blank.
Marks are words and shapes as well as colours, so the page reads without colour too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from html import escape
from urllib.parse import urlencode

from sqlalchemy import Engine, func, select

from tsad.storage.schema import anomaly_event, detection_run
from tsad.storage.views import daily_group_summary

#: Days shown when the query names no range, and the most one page shows.
DEFAULT_DAYS, MAX_DAYS = 14, 92


@dataclass(frozen=True)
class Cell:
    """One (group, data day) with a run."""

    status: str
    n_events: int
    worst: float | None
    n_sustained: int
    since: date | None
    run_id: str | None


def fleet_cells(engine: Engine, start: date, end: date) -> dict[tuple[str, date], Cell]:
    """Every (group, day) in ``start..end`` that has a run: its newest run and current events."""
    runs = daily_group_summary(engine.dialect.name).subquery("days")
    e = anomaly_event.c
    sustained = (select(e.sensor_group, e.partition_date, func.count().label("n"),
                        func.min(e.since_date).label("since"))
                 .where(e.kind == "sustained")
                 .group_by(e.sensor_group, e.partition_date).subquery("sustained"))
    query = (select(runs.c.sensor_group, runs.c.partition_date, runs.c.status, runs.c.n_events,
                    runs.c.max_severity, sustained.c.n, sustained.c.since, detection_run.c.run_id)
             .select_from(runs.join(detection_run, detection_run.c.id == runs.c.detection_run_id)
                          .outerjoin(sustained,
                                     (sustained.c.sensor_group == runs.c.sensor_group)
                                     & (sustained.c.partition_date == runs.c.partition_date)))
             .where(runs.c.partition_date >= start, runs.c.partition_date <= end))
    with engine.connect() as conn:
        return {(r.sensor_group, r.partition_date): Cell(
            status=r.status, n_events=int(r.n_events or 0),
            worst=None if r.max_severity is None else float(r.max_severity),
            n_sustained=int(r.n or 0), since=r.since, run_id=r.run_id)
            for r in conn.execute(query)}


def newest_day(engine: Engine) -> date | None:
    runs = daily_group_summary(engine.dialect.name).subquery("days")
    with engine.connect() as conn:
        return conn.execute(select(func.max(runs.c.partition_date))).scalar_one_or_none()


def day_range(start: date | None, end: date | None, newest: date | None,
              today: date) -> tuple[date, date]:
    """The days to show: as asked, else :data:`DEFAULT_DAYS` ending at the newest data day
    (or starting at ``start``).

    Raises ValueError (a 400) for a reversed range or one longer than :data:`MAX_DAYS`.
    """
    if end is None:
        end = shift(start, DEFAULT_DAYS - 1) if start else (newest or today)
    if start is None:
        start = shift(end, 1 - DEFAULT_DAYS)
    if start > end:
        raise ValueError(f"'start' {start} is after 'end' {end}: swap them")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"the overview shows at most {MAX_DAYS} days; {start} .. {end} is "
                         f"{(end - start).days + 1}: narrow 'start' / 'end'")
    return start, end


def shift(day: date, days: int) -> date:
    """``day`` moved by ``days``, kept inside the calendar (and before its last day, whose next
    day the pages cannot name)."""
    try:
        return min(day + timedelta(days=days), date.max - timedelta(days=1))
    except OverflowError:
        return date.min if days < 0 else date.max - timedelta(days=1)


def band(severity: float | None) -> str:
    """The severity band used for colours and words: the list's 2 and 5 boundaries."""
    if severity is None:
        return "quiet"
    return "high" if severity >= 5 else "mid" if severity >= 2 else "low"


CSS = """
table#fleet{border-collapse:separate;border-spacing:3px;width:auto}
#fleet th{background:none;font-weight:600;font-size:12px;text-align:center;padding:2px 4px}
#fleet th.group{text-align:right}
#fleet td.cell{width:64px;height:46px;padding:2px;text-align:center;vertical-align:middle;
border:1px solid #cbd5e0;border-radius:4px;font-size:12px;line-height:1.25}
#fleet td.cell a{display:block;color:inherit;text-decoration:none}
#fleet td.norun{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#edf2f7 4px,#edf2f7 8px);
border-style:dashed}
#fleet td.band-quiet{background:#fff}#fleet td.band-low{background:#fef3c7}
#fleet td.band-mid{background:#fdba74}#fleet td.band-high{background:#dc2626;color:#fff}
#fleet td.status-bad{outline:2px solid #2d3748;outline-offset:-4px}
#fleet .worst{font-weight:700;font-size:13px}
.legend span.swatch{display:inline-block;width:14px;height:12px;border:1px solid #cbd5e0;
vertical-align:middle;margin:0 3px 0 10px}
"""


def overview_page(groups: list[str], cells: dict[tuple[str, date], Cell], start: date,
                  end: date) -> str:
    from tsad.airflow_layer.ui.pages import page

    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    head = '<tr><th class="group">group \\ data day</th>' + "".join(
        f'<th title="{d.isoformat()}">{d:%a}<br>{d:%m-%d}</th>' for d in days) + "</tr>"
    body = "".join(
        f'<tr><th class="group">{escape(g)}</th>'
        + "".join(_cell(g, d, cells.get((g, d))) for d in days) + "</tr>" for g in groups)
    n = len(days)
    earlier = {"start": shift(start, -n), "end": shift(start, -1)}
    later = {"start": shift(end, 1), "end": shift(end, n)}
    nav = (f'<a id="earlier" href="?{urlencode(earlier)}">&larr; earlier</a> &middot; '
           f'<a id="later" href="?{urlencode(later)}">later &rarr;</a>')
    form = ('<form class="filters" method="get" action="">'
            f'<label>from<input type="date" name="start" value="{start}"></label>'
            f'<label>to<input type="date" name="end" value="{end}"></label>'
            f'<button id="show" type="submit">Show</button> {nav}</form>')
    legend = ('<p class="note legend">Worst event severity of the day (peak score / threshold):'
              '<span class="swatch" style="background:#fff"></span>no events'
              '<span class="swatch" style="background:#fef3c7"></span>below 2'
              '<span class="swatch" style="background:#fdba74"></span>2 to 5'
              '<span class="swatch" style="background:#dc2626"></span>5 and above'
              '<span class="swatch norun" style="border-style:dashed"></span>no run. '
              '<b>S</b> a sustained event (the whole day moved away from training); a framed '
              "cell and its status word: the day's run did not end ok. Click a day for its "
              "events.</p>")
    table = (f'<table id="fleet">{head}{body}</table>' if groups
             else "<p>No groups are configured.</p>")
    return page("Fleet overview",
                f'<style>{CSS}</style><p><a id="all-events" href="./">all events &rarr;</a></p>'
                f"<h1>Fleet overview</h1>{form}{legend}{table}")


def _cell(group: str, day: date, cell: Cell | None) -> str:
    where = f'data-group="{escape(group)}" data-day="{day.isoformat()}"'
    if cell is None:
        return f'<td class="cell norun" {where} title="{escape(group)} {day}: no run">&nbsp;</td>'
    level = band(cell.worst)
    bad = cell.status != "ok"
    words = [f"{cell.n_events} event{'s' if cell.n_events != 1 else ''}"]
    if cell.worst is not None:
        words.append(f"worst severity {cell.worst:.2f}")
    if cell.n_sustained:
        words.append("sustained" + (f" since {cell.since}" if cell.since else ""))
    words.append(f"run {cell.status}" + (f" ({cell.run_id})" if cell.run_id else ""))
    marks = ('<span class="mark sustained">S</span>' if cell.n_sustained else "") + \
        (f'<span class="mark status">{escape(cell.status)}</span>' if bad else "")
    worst = "&ndash;" if cell.worst is None else f"{cell.worst:.1f}"
    href = "./?" + urlencode({"group": group, "start": day, "end": day})
    classes = (f"cell band-{level}{' status-bad' if bad else ''}"
               f"{' sustained' if cell.n_sustained else ''}")
    return (f'<td class="{classes}" {where} data-status="{escape(cell.status)}" '
            f'title="{escape(group)} {day}: {escape("; ".join(words))}">'
            f'<a href="{escape(href)}"><span class="worst">{worst}</span><br>{marks}</a></td>')
