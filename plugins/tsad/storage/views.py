"""Reporting views for downstream SQL (tables: ``tsad.storage.schema``).

The views are the stable surface analysts query (documented in ``docs/reporting.md``): their names
and columns change only additively. Each is a SQLAlchemy ``select`` compiled for the engine's
dialect, so one definition serves SQLite and PostgreSQL; the only dialect-specific parts are the
duration arithmetic and JSON extraction, which SQLAlchemy and :func:`_seconds_between` handle.

"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import (
    Engine,
    and_,
    case,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Select

from tsad.storage.dialect import seconds_between
from tsad.storage.schema import (
    anomaly_event,
    anomaly_feedback,
    anomaly_point,
    detection_run,
    model_version,
)

QUALITY_COUNTS = ("rows_read", "rows_outside_day", "null_timestamps", "ambiguous_timestamps",
                  "duplicate_timestamps", "out_of_order", "extra_channels", "grid_points",
                  "missing_points", "filled_points", "nan_points")
METRICS = {"epochs_run": "integer", "best_epoch": "integer", "train_loss": "float",
           "val_loss": "float", "model_error": "float", "persistence_error": "float",
           "beats_persistence": "boolean", "spike_error_ratio": "float", "copies_input": "boolean",
           "train_seconds": "float", "n_train_windows": "integer", "n_val_windows": "integer",
           "val_error_median": "float", "device": "string"}


def _json(column: Any, key: Any, kind: str) -> Any:
    element = column[key]
    return {"integer": element.as_integer, "float": element.as_float,
            "boolean": element.as_boolean, "string": element.as_string}[kind]()


def _latest_feedback() -> Any:
    f = anomaly_feedback.alias("f")
    return (select(func.max(f.c.id))
            .where(f.c.sensor_group == anomaly_event.c.sensor_group,
                   f.c.event_start_ts == anomaly_event.c.start_ts)
            .scalar_subquery())


def current_events(dialect: str) -> Select[Any]:
    """One row per current event with everything needed to read it, plus the latest verdict."""
    e, r, f = anomaly_event.c, detection_run.c, anomaly_feedback.c
    return (
        select(
            e.id.label("event_id"), e.sensor_group, e.partition_date, e.start_ts, e.end_ts,
            e.peak_ts, seconds_between(dialect, e.start_ts, e.end_ts).label("duration_seconds"),
            e.n_points, e.peak_score, e.threshold, e.severity,
            _json(e.top_channels_json, (0, "channel"), "string").label("top_channel"),
            _json(e.top_channels_json, (0, "contribution"), "float").label("top_contribution"),
            e.top_channels_json, e.model_version_id, e.detection_run_id, r.dag_id, r.run_id,
            e.plot_path, f.label.label("feedback_label"), f.note.label("feedback_note"),
            f.created_by.label("feedback_by"), f.created_at.label("feedback_at"),
        )
        .select_from(
            anomaly_event.join(detection_run, r.id == e.detection_run_id)
            .outerjoin(anomaly_feedback, f.id == _latest_feedback()))
    )


def _latest_run_ids() -> Any:
    return (select(func.max(detection_run.c.id).label("id"))
            .group_by(detection_run.c.sensor_group, detection_run.c.partition_date)
            .subquery("latest"))


def daily_group_summary(dialect: str) -> Select[Any]:
    """One row per (day, group) that ran: its newest run and its current events."""
    r, e = detection_run.c, anomaly_event.c
    latest = _latest_run_ids()
    events = (select(e.sensor_group, e.partition_date, func.count().label("n"),
                     func.max(e.severity).label("max_severity"),
                     func.sum(seconds_between(dialect, e.start_ts, e.end_ts)).label("seconds"))
              .group_by(e.sensor_group, e.partition_date).subquery("ev"))
    return (
        select(
            r.partition_date, r.sensor_group, r.id.label("detection_run_id"), r.status, r.drift,
            r.model_version_id, r.threshold, r.n_rows, r.n_anomalous_points,
            func.coalesce(events.c.n, 0).label("n_events"),
            events.c.max_severity,
            func.coalesce(events.c.seconds, 0).label("event_seconds"),
            r.finished_at,
        )
        .select_from(
            detection_run.join(latest, latest.c.id == r.id)
            .outerjoin(events, and_(events.c.sensor_group == r.sensor_group,
                                    events.c.partition_date == r.partition_date)))
    )


def daily_summary(dialect: str) -> Select[Any]:
    """One row per (day, group, channel) with anomalous points: how much and how bad."""
    p, e = anomaly_point.c, anomaly_event.c
    top = _json(e.top_channels_json, (0, "channel"), "string")
    led = (select(e.sensor_group, e.partition_date, top.label("channel"),
                  func.count().label("n"))
           .group_by(e.sensor_group, e.partition_date, top).subquery("led"))
    points = (select(p.partition_date, p.sensor_group, p.channel,
                     func.count().label("n_anomalous_points"),
                     func.max(p.severity).label("max_severity"),
                     func.avg(p.contribution).label("mean_contribution"),
                     func.min(p.ts).label("first_anomaly_ts"),
                     func.max(p.ts).label("last_anomaly_ts"))
              .group_by(p.partition_date, p.sensor_group, p.channel).subquery("pts"))
    return (
        select(points.c.partition_date, points.c.sensor_group, points.c.channel,
               points.c.n_anomalous_points, points.c.max_severity, points.c.mean_contribution,
               points.c.first_anomaly_ts, points.c.last_anomaly_ts,
               func.coalesce(led.c.n, 0).label("n_events_led"))
        .select_from(points.outerjoin(led, and_(led.c.sensor_group == points.c.sensor_group,
                                                led.c.partition_date == points.c.partition_date,
                                                led.c.channel == points.c.channel)))
    )


def run_history(dialect: str) -> Select[Any]:
    """Every detection run (history is kept), with its data-quality counts as columns."""
    r = detection_run.c
    latest = _latest_run_ids()
    quality = [_json(r.quality_json, key, "integer").label(key) for key in QUALITY_COUNTS]
    return (
        select(
            r.id.label("detection_run_id"), r.sensor_group, r.partition_date, r.dag_id, r.run_id,
            r.status, r.drift, r.message, r.model_version_id, r.threshold, r.n_rows, r.n_windows,
            r.n_anomalous_points, r.n_events, *quality,
            case((latest.c.id.is_(None), False), else_=True).label("is_latest"),
            r.started_at, r.finished_at,
            seconds_between(dialect, r.started_at, r.finished_at).label("duration_seconds"),
        )
        .select_from(detection_run.outerjoin(latest, latest.c.id == r.id))
    )


def model_versions(dialect: str) -> Select[Any]:
    """Every model version with its training metrics as columns, and how often it was used."""
    m, r = model_version.c, detection_run.c
    usage = (select(r.model_version_id, func.count().label("n"),
                    func.min(r.partition_date).label("first_day"),
                    func.max(r.partition_date).label("last_day"))
             .group_by(r.model_version_id).subquery("used"))
    metrics = [_json(m.metrics_json, key, kind).label(key) for key, kind in METRICS.items()]
    return (
        select(
            m.id.label("model_version_id"), m.sensor_group, m.version, m.detector_kind,
            m.status, m.training_start, m.training_end, m.threshold_strategy, m.threshold,
            *metrics, m.config_sha256, m.manifest_sha256, m.artifact_uri, m.code_version,
            m.created_by_run, m.created_at,
            func.coalesce(usage.c.n, 0).label("n_runs"),
            usage.c.first_day.label("first_used_day"), usage.c.last_day.label("last_used_day"),
        )
        .select_from(model_version.outerjoin(usage, usage.c.model_version_id == m.id))
    )


#: name -> definition; the public contract documented in docs/reporting.md.
VIEWS = {
    "v_current_events": current_events,
    "v_daily_group_summary": daily_group_summary,
    "v_daily_summary": daily_summary,
    "v_run_history": run_history,
    "v_model_versions": model_versions,
}

_created: set[str] = set()
_lock = threading.Lock()


def view_sql(name: str, dialect: Any) -> str:
    """The ``SELECT`` behind view ``name`` for a SQLAlchemy dialect, with literals inlined."""
    query = VIEWS[name](dialect.name)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def create_views(engine: Engine, *, replace: bool = False) -> None:
    """Create ``anomaly_feedback`` and the views that are missing (all of them with ``replace``).

    Cheap to call on every engine use: after the first call per process and database it does
    nothing. ``replace`` is for deployments that change a view (drop, then create).
    """
    key = str(engine.url)
    with _lock:
        if key in _created and not replace:
            return
        anomaly_feedback.create(engine, checkfirst=True)
        try:
            with engine.begin() as conn:
                existing = set(conn.dialect.get_view_names(conn))
                for name in VIEWS:
                    if name in existing and not replace:
                        continue
                    if name in existing:
                        conn.execute(text(f"DROP VIEW {name}"))
                    conn.execute(text(f"CREATE VIEW {name} AS {view_sql(name, conn.dialect)}"))
        except DBAPIError:
            # Another process created them first (two tasks starting together): fine if complete.
            with engine.connect() as conn:
                if not set(VIEWS) <= set(conn.dialect.get_view_names(conn)):
                    raise
        _created.add(key)


def drop_views(engine: Engine) -> None:
    """Drop every reporting view (the table stays): for migrations that rebuild them."""
    with _lock, engine.begin() as conn:
        for name in VIEWS:
            conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
        _created.discard(str(engine.url))

