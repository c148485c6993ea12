"""The FastAPI app behind the "Anomalies" nav entry (mounted at :data:`URL_PREFIX`).

Routes (all behind Airflow's auth, see ``auth``):

- ``GET /overview``: the landing page, groups x data days (``overview``);
- ``GET /``: events, filterable by group, channel, day range, minimum severity and verdict;
- ``GET /events/{id}``: the event's plot, numbers, model version, raw-data SQL and verdicts;
- ``GET /events/{id}/plot.png``: the plot (only files under ``{data_dir}/plots``);
- ``GET /api/events/{id}/series``: the event page's chart data (``series``);
- ``GET /static/{name}``: the chart's script, shipped in the package (``chart``);
- ``POST /events/{id}/feedback``: record a verdict (``FEEDBACK_LABELS``), back to the event page;
- ``POST /events/{id}/snooze``: snooze the event's group or a channel (``alert_snooze``);
- ``POST /snoozes/{id}/remove``: end a snooze set here, back to the page it was removed on;
- ``GET /api/events``: the filtered list as JSON; ``GET /api/snoozes``: the snoozes in force.
"""

from __future__ import annotations

import math
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import (FileResponse, HTMLResponse, JSONResponse, RedirectResponse,
                               Response)

from tsad.airflow_layer.ui import auth, chart, overview, pages, queries, snoozing
from tsad.config import TsadConfig

URL_PREFIX = "/tsad"
CONFIG_TTL_S = 30.0

app = FastAPI(title="tsad anomalies", docs_url=None, redoc_url=None, openapi_url=None)
_config_cache: dict[str, Any] = {}


@app.exception_handler(auth.LoginRequired)
async def _to_login(_request: Request, exc: auth.LoginRequired) -> RedirectResponse:
    return RedirectResponse(exc.login_url, status_code=307)


def config() -> TsadConfig:
    """tsad's config, re-read at most every :data:`CONFIG_TTL_S` seconds (no restart to edit it)."""
    from tsad.config import load_config

    now = time.monotonic()
    if now - _config_cache.get("at", -math.inf) > CONFIG_TTL_S:
        _config_cache.update(value=load_config(), at=now)
    return _config_cache["value"]


def _airflow_root(request: Request) -> str:
    return request.scope.get("root_path", "").removesuffix(URL_PREFIX)


def _filters(group: str | None = None, channel: str | None = None, start: str | None = None,
             end: str | None = None, min_severity: str | None = None,
             verdict: str | None = None) -> queries.EventFilter:
    """The list's filters from the query string; anything unusable is a 400 naming the parameter."""
    try:
        severity = float(min_severity) if min_severity else None
    except ValueError:
        raise HTTPException(400, f"'min_severity' must be a number, got {min_severity!r}") from None
    if severity is not None and not math.isfinite(severity):
        raise HTTPException(400, f"'min_severity' must be a finite number (or left empty for no "
                                 f"minimum), got {min_severity!r}")
    if verdict and verdict not in queries.VERDICT_FILTERS:
        raise HTTPException(400, f"'verdict' must be one of {', '.join(queries.VERDICT_FILTERS)}, "
                                 f"got {verdict!r}")
    return queries.EventFilter(group=group or None, channel=channel or None,
                               start=_day(start, "start"), end=_day(end, "end"),
                               min_severity=severity, verdict=verdict or None)


def _day(value: str | None, name: str) -> date | None:
    """A day filter; the last representable date is refused because the backfill hint names
    the run that starts the day after."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        raise HTTPException(400, f"'{name}' must be a date YYYY-MM-DD, got {value!r}") from None
    if day is not None and day >= date.max:
        raise HTTPException(400, f"'{name}' must be a date before {date.max.isoformat()}, "
                                 f"got {value!r}")
    return day


Filters = Annotated[queries.EventFilter, Depends(_filters)]
Viewer = Annotated[Any, Depends(auth.viewer)]
Editor = Annotated[Any, Depends(auth.editor)]


def _engine() -> Any:
    engine = queries.records_engine(config())
    if engine is None:
        raise HTTPException(404, "tsad has not written any records yet: run the nightly DAG first")
    return engine


def _event(engine: Any, event_id: int) -> dict[str, Any]:
    event = queries.get_event(engine, event_id)
    if event is None:
        raise HTTPException(404, f"no current anomaly event with id {event_id} (a re-run of its "
                                 "day replaces event ids: search the list again)")
    return event


def _list_events(cfg: TsadConfig, f: queries.EventFilter) -> tuple[list[dict[str, Any]], bool]:
    rows, truncated = queries.list_events(_engine(), f)
    queries.mark_ongoing(rows, {g.name: queries.ongoing_slack(g) for g in cfg.groups})
    return rows, truncated


@app.get("/", response_class=HTMLResponse)
def events(request: Request, user: Viewer, f: Filters) -> HTMLResponse:
    cfg = config()
    rows, truncated = _list_events(cfg, f)
    groups = {g.name: list(g.channels) for g in cfg.groups}
    snoozes = snoozing.snooze_list(_snoozes(cfg, f.group), back="")
    return HTMLResponse(pages.events_page(rows, truncated, f, groups, _airflow_root(request),
                                          auth.DAG_ID, cfg.site_timezone, snoozes))


@app.get("/overview", response_class=HTMLResponse)
def fleet(user: Viewer, start: str | None = None, end: str | None = None) -> HTMLResponse:
    """The landing page (the nav entry): groups x data days, each cell linking to its events."""
    engine = _engine()
    try:
        first, last = overview.day_range(_day(start, "start"), _day(end, "end"),
                                         overview.newest_day(engine), date.today())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    cells = overview.fleet_cells(engine, first, last)
    configured = [g.name for g in config().groups]
    groups = configured + sorted({g for g, _ in cells} - set(configured))
    return HTMLResponse(overview.overview_page(groups, cells, first, last))


@app.get("/api/events")
def events_json(user: Viewer, f: Filters) -> JSONResponse:
    rows, truncated = _list_events(config(), f)
    return JSONResponse({"events": [_jsonable(r) for r in rows], "truncated": truncated})


@app.get("/events/{event_id}", response_class=HTMLResponse)
def event(request: Request, event_id: int, user: Viewer) -> HTMLResponse:
    from tsad.alerts import severity_level

    cfg = config()
    engine = _engine()
    e = _event(engine, event_id)
    group = next((g for g in cfg.groups if g.name == e["sensor_group"]), None)
    queries.mark_ongoing([e], {group.name: queries.ongoing_slack(group)} if group else {})
    channels = [t["channel"] for t in e["top_channels_json"] or []]
    sql = (queries.raw_data_sql(group, e["start_ts"], e["end_ts"], channels or list(group.channels))
           if group else f"-- group {e['sensor_group']} is no longer configured")
    level = severity_level(e["severity"], group.alerts.routes) if group else None
    snoozes = (snoozing.snooze_list(_snoozes(cfg, e["sensor_group"]), back=str(event_id))
               + snoozing.snooze_form(e, group, date.today()))
    return HTMLResponse(pages.event_page(e, queries.get_model(engine, e["model_version_id"]),
                                         queries.verdicts(engine, e), sql, _airflow_root(request),
                                         level, auth.DAG_ID, cfg.site_timezone, snoozes))


@app.get("/events/{event_id}/plot.png")
def plot(event_id: int, user: Viewer) -> FileResponse:
    e = _event(_engine(), event_id)
    root = (Path(config().data_dir) / "plots").resolve()
    path = Path(e["plot_path"] or "/nonexistent").resolve()
    if root not in path.parents or not path.is_file():
        raise HTTPException(404, f"the plot of event {event_id} is not under {root}")
    return FileResponse(path, media_type="image/png")


@app.get("/api/events/{event_id}/series")
def series(event_id: int, user: Viewer) -> JSONResponse:
    """The chart's readings, reconstruction and score, recomputed with the event's model."""
    from tsad.airflow_layer.ui.series import SeriesUnavailable, event_series

    engine = _engine()
    try:
        data = event_series(config(), engine, _event(engine, event_id))
    except SeriesUnavailable as exc:
        raise HTTPException(404, str(exc)) from None
    return JSONResponse(_jsonable(data))


@app.get("/static/{name}")
def static(name: str, user: Viewer) -> Response:
    found = chart.static_file(name)
    if found is None:
        raise HTTPException(404, f"no static file {name!r}")
    body, media_type = found
    return Response(body, media_type=media_type, headers={"Cache-Control": "private, max-age=300"})


@app.post("/events/{event_id}/feedback")
def feedback(request: Request, event_id: int, user: Editor,
             label: Annotated[str, Form()], note: Annotated[str | None, Form()] = None
             ) -> RedirectResponse:
    engine = _engine()
    try:
        queries.add_verdict(engine, _event(engine, event_id), label, note, user.get_name())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(str(request.url_for("event", event_id=event_id)), status_code=303)


@app.post("/events/{event_id}/snooze")
def snooze(request: Request, event_id: int, user: Editor, until: Annotated[str, Form()],
           channel: Annotated[str | None, Form()] = None,
           reason: Annotated[str | None, Form()] = None) -> RedirectResponse:
    """Hold back the alerts of the event's group (or of the events ``channel`` leads) for data
    days before ``until``."""
    from tsad.storage.snoozes import OUTDATED, add_snooze, has_table

    engine = _engine()
    if not has_table(engine):
        raise HTTPException(409, OUTDATED)
    e = _event(engine, event_id)
    group = next((g for g in config().groups if g.name == e["sensor_group"]), None)
    if group is None:
        raise HTTPException(400, f"group {e['sensor_group']!r} is no longer configured")
    if channel and channel not in group.channels:
        raise HTTPException(400, f"'channel' must be one of group {group.name}'s channels "
                                 f"{list(group.channels)} (or empty for the whole group), "
                                 f"got {channel!r}")
    try:
        add_snooze(engine, group.name, channel or None, _until(until), reason, user.get_name())
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    return RedirectResponse(str(request.url_for("event", event_id=event_id)), status_code=303)


@app.post("/snoozes/{snooze_id}/remove")
def unsnooze(request: Request, snooze_id: int, user: Editor,
             back: Annotated[str | None, Form()] = None) -> RedirectResponse:
    """End a snooze set on these pages; back to the event page (``back``: its id) or the list."""
    from tsad.storage.snoozes import OUTDATED, has_table, remove_snooze

    engine = _engine()
    if not has_table(engine):
        raise HTTPException(409, OUTDATED)
    if remove_snooze(engine, snooze_id, user.get_name()) is None:
        raise HTTPException(404, f"no snooze {snooze_id} in force (already removed?)")
    target = (request.url_for("event", event_id=int(back)) if back and back.isdigit()
              else request.url_for("events"))
    return RedirectResponse(str(target), status_code=303)


@app.get("/api/snoozes")
def snoozes_json(user: Viewer, group: str | None = None) -> JSONResponse:
    """The snoozes holding back tonight's alerts: set here (with ``id``) or in the config."""
    shown = _snoozes(config(), group or None)
    return JSONResponse({"snoozes": [_jsonable({
        "id": s.id, "group": s.group, "channels": list(s.channels), "until": s.until,
        "reason": s.reason, "created_by": s.by, "source": "ui" if s.id else "config"})
        for s in shown]})


def _snoozes(cfg: TsadConfig, group: str | None) -> list[snoozing.Shown]:
    """Snoozes in force for yesterday's data day (what tonight's run alerts) and later."""
    from tsad.storage.snoozes import active_snoozes, has_table

    engine, day = _engine(), date.today() - timedelta(days=1)
    rows = active_snoozes(engine, group, day) if has_table(engine) else []
    return snoozing.in_force(rows, list(cfg.groups), day, group)


def _until(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"'until' must be a date YYYY-MM-DD, got {value!r}") from None


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy: dates as ISO text, and non-finite numbers (an infinite severity: the
    threshold was 0 or the score overflowed) as null, since JSON has no infinity."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else value

