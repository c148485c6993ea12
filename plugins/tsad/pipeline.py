"""The nightly steps for one (group, day), shared by the ``tsad`` CLI and the Airflow DAG.

Each step reads and writes one partition and returns a small JSON-able dict (paths and counts,
never data), so it can be an Airflow task whose result travels through XCom. Every step is
idempotent: running it again for the same (group, day) gives the same files and rows, which is
what lets database and source calls be retried (``tsad.retry``: transient failures back off and
try again, permanent ones fail at once with what to fix).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from tsad.config import GroupConfig, TsadConfig
from tsad.dates import day_bounds, training_days
from tsad.errors import ConfigError

log = logging.getLogger("tsad.pipeline")


@dataclass(frozen=True)
class RunInfo:
    """Who is running: Airflow's dag and run ids, or the CLI's stand-ins."""

    dag_id: str = "tsad-cli"
    run_id: str = "manual"


def database_url(config: TsadConfig, override: str | None = None) -> str:
    """tsad's records database; a ``conn_id`` needs the Airflow layer to resolve it first."""
    url = override or config.database.url
    if url is None:
        raise ConfigError(
            f"database.conn_id={config.database.conn_id!r} can only be resolved inside Airflow; "
            "outside it set database.url (or TSAD_DATABASE_URL)")
    return url


def _engine(config: TsadConfig, db_url: str | None) -> Any:
    from tsad.storage.engine import get_engine
    from tsad.storage.schema import create_schema
    from tsad.storage.views import create_views

    engine = get_engine(database_url(config, db_url))

    def prepare() -> None:
        create_schema(engine)  # migrations to head: a no-op once seen current in this process
        create_views(engine)

    _retrying(prepare, f"preparing database {_shown(engine)}")
    return engine


def _retrying(fn: Any, what: str) -> Any:
    from tsad import retry

    return retry.call(fn, what)


def _shown(engine: Any) -> str:
    return engine.url.render_as_string(hide_password=True)


# ---------------------------------------------------------------------- 1. extract

def extract(config: TsadConfig, group_name: str, day: date, source_url: str | None = None) -> dict[str, Any]:
    """Pull the day's readings from the source into the group's Parquet partition."""
    from tsad.extract import extract_day

    group = config.group(group_name)
    result = _retrying(lambda: extract_day(group, day, config.site_timezone, config.data_dir,
                                           source_url=source_url),
                       f"extracting group {group_name} {day}")
    _write_json(_with_name(result.path, "quality.json"), result.quality)
    log.info("group %s %s: extracted %d rows to %s", group_name, day, result.rows, result.path)
    return result.to_dict()


# ---------------------------------------------------------------------- 2. train or load

def ensure_model(config: TsadConfig, group_name: str, day: date, *, force_retrain: bool = False,
                 source_url: str | None = None, db_url: str | None = None,
                 run: RunInfo = RunInfo()) -> dict[str, Any]:
    """Reuse the newest model trained before ``day``, or train and publish a new version."""
    from tsad import registry

    group = config.group(group_name)
    current = registry.select_version(config.models_dir, group.name, day)
    reason = registry.retrain_reason(current, group, day, force_retrain)
    if reason is None and _drifted_before(config, group, day, current, source_url):
        reason = f"drift on {day - timedelta(days=1)}: retrain on recent data"
    if reason is None:
        assert current is not None
        log.info("group %s %s: using model %s", group.name, day, current.id)
        return {"model_version_id": current.id, "path": str(current.path), "trained": False}
    log.info("group %s %s: training a new model (%s)", group.name, day, reason)
    version = _train(config, group, day, source_url, run)
    engine = _engine(config, db_url)
    _retrying(lambda: _record_version(engine, version), f"recording model {version.id}")
    return {"model_version_id": version.id, "path": str(version.path), "trained": True, "reason": reason}


def _train(config: TsadConfig, group: GroupConfig, day: date, source_url: str | None,
           run: RunInfo) -> Any:
    from tsad import fs, registry
    from tsad.detector import Detector
    from tsad.partitions import partition_path, read_days

    days = training_days(day, group.training.days)
    for past in days:  # a fresh deployment has no partitions yet: extract what training needs
        if not fs.is_file(partition_path(config.data_dir, group.name, past)):
            extract(config, group.name, past, source_url)
    frame = read_days(config.data_dir, group.name, days, group.channels)
    detector = Detector.fit(group, frame)
    version = registry.publish(config.models_dir, detector, days[0], days[-1], run.run_id)
    metrics = detector.metrics_
    log.info("group %s: published %s (threshold %.4f, held-out error %.4f vs persistence %.4f, %s)",
             group.name, version.id, detector.threshold, metrics["model_error"],
             metrics["persistence_error"],
             "beats persistence" if metrics["beats_persistence"] else "does NOT beat persistence")
    return version


def _record_version(engine: Any, version: Any) -> None:
    from tsad.storage.records import ModelVersionRecord, record_model_version

    m = version.manifest
    record_model_version(engine, ModelVersionRecord(
        id=version.id, sensor_group=version.group, version=version.version,
        detector_kind=m["detector_kind"], config_json=version.read_json("config.json"),
        config_sha256=m["config_sha256"], artifact_uri=str(version.path),
        manifest_sha256=version.manifest_sha256,
        training_start=date.fromisoformat(m["training_start"]),
        training_end=date.fromisoformat(m["training_end"]),
        threshold_strategy=m["threshold_strategy"], threshold=float(m["threshold"]),
        metrics_json=m["metrics"], code_version=m["code_version"],
        created_by_run=m["created_by_run"],
        created_at=datetime.fromisoformat(m["created_at"]), status="published"))


def _drifted_before(config: TsadConfig, group: GroupConfig, day: date, version: Any,
                    source_url: str | None) -> bool:
    """Did the day before ``day`` drift away from ``version``'s training data?

    Decided from the data (that day's partition scored by the same version), not from the run
    table, so concurrent backfills that finish in any order still choose the same model.
    """
    from tsad import fs, registry
    from tsad.partitions import partition_path, read_partition

    previous = day - timedelta(days=1)
    if version is None or previous <= version.training_end:
        return False  # the previous day was training data for this version
    if not fs.is_file(partition_path(config.data_dir, group.name, previous)):
        extract(config, group.name, previous, source_url)
    detector = registry.load_detector(version)
    frame = read_partition(config.data_dir, group.name, previous, detector.channels)
    return detector.check_drift(detector.score(frame)).drift


# ---------------------------------------------------------------------- 3+4. score and record

def detect(config: TsadConfig, group_name: str, day: date, model_path: str, *,
           db_url: str | None = None, run: RunInfo = RunInfo()) -> dict[str, Any]:
    """Score the day's partition and replace its anomaly records in one transaction."""
    from tsad import registry
    from tsad.partitions import read_partition

    group = config.group(group_name)
    version = registry.version_at(model_path)
    detector = registry.load_detector(version, group.channels)
    started = datetime.now(timezone.utc)
    frame = read_partition(config.data_dir, group.name, day, detector.channels)
    scores = detector.score(frame)
    engine = _engine(config, db_url)
    _retrying(lambda: _record_version(engine, version), f"recording model {version.id}")
    summary = _write_records(engine, config, group, day, detector, version.id, scores, run, started,
                             frame=frame)
    log.info("group %s %s: %d events, %d anomalous points, drift=%s (threshold %.4f, model %s)",
             group.name, day, summary["n_events"], summary["n_points"], summary["drift"],
             detector.threshold, version.id)
    return summary


def _write_records(engine: Any, config: TsadConfig, group: GroupConfig, day: date, detector: Any,
                   version_id: str, scores: Any, run: RunInfo, started: datetime,
                   frame: Any = None) -> dict[str, Any]:
    import numpy as np

    from tsad.events import find_events, flagged_points
    from tsad.storage.records import RunRecord, write_partition

    threshold = detector.threshold
    drift_check = detector.check_drift(scores, group.events.drift_share)  # rule: tsad/detector.py
    drift = drift_check.drift
    channels = detector.channels
    if drift:
        events, point_idx = [], np.empty(0, dtype=np.int64)
        message = drift_check.message
        log.warning("group %s %s: %s", group.name, day, message)
    else:
        events = find_events(scores.timestamps, scores.aggregate, scores.point_scores, channels,
                             threshold, group.events)
        point_idx = flagged_points(scores.aggregate, threshold, group.events)
        message = ""
    start, end = day_bounds(day, config.site_timezone)
    run_record = RunRecord(
        dag_id=run.dag_id, run_id=run.run_id, sensor_group=group.name, partition_date=day,
        site_timezone=config.site_timezone, data_start=start, data_end=end,
        model_version_id=version_id, threshold=threshold, n_rows=len(scores.timestamps),
        n_windows=len(scores.window_starts), n_anomalous_points=int(len(point_idx)),
        n_events=len(events), quality_json=_quality(config, group, day), drift=drift,
        status="drift" if drift else "ok", message=message, started_at=started,
        finished_at=datetime.now(timezone.utc))
    plots = _plots(config, group, day, detector, version_id, frame, scores, events)
    event_records = [_event_record(e, group.name, day, version_id, plot)
                     for e, plot in zip(events, plots, strict=True)]
    points = _point_records(scores, point_idx, channels, threshold, group, day, version_id)
    run_pk = _retrying(lambda: write_partition(engine, run_record, event_records, points),
                       f"writing {group.name} {day} to {_shown(engine)}")
    return {"detection_run_id": run_pk, "n_events": len(events), "n_points": len(points),
            "drift": drift, "model_version_id": version_id, "threshold": threshold}


def _plots(config: TsadConfig, group: GroupConfig, day: date, detector: Any, version_id: str,
           frame: Any, scores: Any, events: list[Any]) -> list[str | None]:
    """One PNG per event (see ``tsad.plots``); a plot that fails is logged, never loses records."""
    from tsad.plots import plot_events

    if frame is None:
        return [None] * len(events)
    try:
        return list(plot_events(detector, frame, scores, events, data_dir=config.data_dir,
                                group=group.name, day=day, model_version=version_id))
    except Exception:  # noqa: BLE001 - a picture must not block the records
        log.exception("group %s %s: rendering the event plots failed; events keep no plot",
                      group.name, day)
        return [None] * len(events)


def _event_record(event: Any, group: str, day: date, version_id: str,
                  plot_path: str | None = None) -> Any:
    from tsad.storage.records import EventRecord

    return EventRecord(
        sensor_group=group, partition_date=day, start_ts=event.start.to_pydatetime(),
        end_ts=event.end.to_pydatetime(), peak_ts=event.peak_time.to_pydatetime(),
        peak_score=float(event.peak_score), threshold=float(event.threshold),
        severity=float(event.severity), n_points=int(event.n_points),
        top_channels_json=[{"channel": c, "contribution": round(float(w), 6)}
                           for c, w in event.top_channels],
        model_version_id=version_id, plot_path=plot_path)


def _point_records(scores: Any, idx: Any, channels: list[str], threshold: float,
                   group: GroupConfig, day: date, version_id: str) -> list[Any]:
    """One row per anomalous timestamp and top contributing channel (public contract: README)."""
    import numpy as np

    from tsad.storage.records import PointRecord

    if len(idx) == 0:
        return []
    per_channel = scores.point_scores[idx]
    share = per_channel / np.maximum(per_channel.sum(axis=1, keepdims=True), 1e-12)
    top = np.argsort(-per_channel, axis=1)[:, : group.events.top_channels]
    records = []
    for row, i in enumerate(idx):
        ts = scores.timestamps[i].to_pydatetime()
        score = float(scores.aggregate[i])
        for c in top[row]:
            records.append(PointRecord(
                sensor_group=group.name, partition_date=day, channel=channels[c], ts=ts,
                score=score, threshold=threshold, severity=score / threshold,
                contribution=round(float(share[row, c]), 6), model_version_id=version_id))
    return records


def _quality(config: TsadConfig, group: GroupConfig, day: date) -> dict[str, Any]:
    from tsad import fs
    from tsad.partitions import partition_path

    sidecar = fs.with_name(partition_path(config.data_dir, group.name, day), "quality.json")
    return _read_json(sidecar) if fs.is_file(sidecar) else {}


# ---------------------------------------------------------------------- 5. alert

def alert(config: TsadConfig, group_name: str, day: date, *, db_url: str | None = None,
          smtp: dict[str, Any] | None = None, webhook_url: str | None = None) -> dict[str, Any]:
    """Send the day's new events (ongoing ones are not repeated, snoozed ones held back): one
    email per recipient set (severity routes) with the plots attached, one webhook post; always
    log the digest."""
    from functools import partial

    from tsad.alerts import (
        build_digest,
        log_digest,
        new_events,
        plan_emails,
        plot_files,
        post_webhook,
        send_email,
        split_snoozed,
    )
    from tsad.storage.records import read_events

    group = config.group(group_name)
    routes = group.alerts
    engine = _engine(config, db_url)
    today, yesterday = _retrying(
        lambda: (read_events(engine, group.name, day),
                 read_events(engine, group.name, day - timedelta(days=1))),
        f"reading the events of {group.name} {day}")
    fresh = new_events(today, yesterday, day_bounds(day, config.site_timezone)[0],
                       group.sampling_seconds, tolerance_steps=group.events.merge_gap + 1)
    fresh, held = split_snoozed(fresh, routes.snooze, day)
    for event, snooze in held:
        log.info("group %s %s: event at %s snoozed until %s (%s)", group.name, day,
                 event["start_ts"], snooze.until, snooze.reason or "no reason given")
    result: dict[str, Any] = {"n_events": len(today), "n_new": len(fresh), "n_snoozed": len(held),
                              "sent": [], "emails": []}
    plot_url = (partial(_plot_url, routes.plot_base_url, config.data_dir)
                if routes.plot_base_url else None)
    digest = build_digest(group.name, day, fresh, plot_files(fresh), routes=routes.routes,
                          plot_url=plot_url)
    if digest is None:
        log.info("group %s %s: no new anomaly events (%d ongoing, %d snoozed)", group.name, day,
                 len(today), len(held))
        return result
    log_digest(digest, log)
    if smtp:
        for delivery in plan_emails(fresh, routes.email_to, routes.routes):
            files = plot_files(delivery.events)
            mail = build_digest(group.name, day, delivery.events, files, routes=routes.routes)
            assert mail is not None
            send_email(mail, recipients=list(delivery.recipients), attachments=files, **smtp)
            result["emails"].append({"to": list(delivery.recipients),
                                     "n_events": len(delivery.events), "n_plots": len(files)})
        if result["emails"]:
            result["sent"].append("email")
    if webhook_url:
        post_webhook(digest, webhook_url)
        result["sent"].append("webhook")
    return result


def _plot_url(base_url: str, data_dir: str, event: dict[str, Any]) -> str | None:
    from tsad.alerts import published_plot_url

    return published_plot_url(base_url, data_dir, event.get("plot_path"))


# ---------------------------------------------------------------------- all steps (CLI)

def run_day(config: TsadConfig, day: date, groups: list[str] | None = None, *,
            force_retrain: bool = False, run: RunInfo = RunInfo()) -> list[dict[str, Any]]:
    """Every step for every selected group, in order: what the DAG does, without Airflow."""
    results = []
    for name in groups or [g.name for g in config.groups]:
        extracted = extract(config, name, day)
        model = ensure_model(config, name, day, force_retrain=force_retrain, run=run)
        detected = detect(config, name, day, model["path"], run=run)
        alerted = alert(config, name, day)
        results.append({"group": name, "day": day.isoformat(), **extracted, **model, **detected,
                        "alert": alerted})
    return results


def _with_name(path: str, name: str) -> Any:
    """A sibling of a local path or object storage URL (see ``tsad.fs``)."""
    from tsad import fs

    return fs.with_name(fs.location(path), name)


def _write_json(path: Any, data: Any) -> None:
    """Atomically (temp file, then rename; object storage: one PUT): a concurrent re-run never
    reads half a file."""
    import json
    import os
    import threading

    from tsad import fs

    if fs.is_remote(path):
        fs.write_bytes(str(path), json.dumps(data, indent=2, sort_keys=True).encode())
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def _read_json(path: Any) -> Any:
    import json

    from tsad import fs

    return json.loads(fs.read_bytes(path))
