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
    from tsad.ingest.extract import extract_day

    group = config.group(group_name)
    result = _retrying(lambda: extract_day(group, day, config.site_timezone, config.data_dir,
                                           source_url=source_url),
                       f"extracting group {group_name} {day}")
    _write_json(_with_name(result.path, "quality.json"), result.quality)
    log.info("group %s %s: extracted %d rows to %s", group_name, day, result.rows, result.path)
    return result.to_dict()


# ---------------------------------------------------------------------- 2. train or load

def ensure_model(config: TsadConfig, group_name: str, day: date, *, shard: int | None = None,
                 force_retrain: bool = False, source_url: str | None = None,
                 db_url: str | None = None, run: RunInfo = RunInfo()) -> dict[str, Any]:
    """Reuse the newest model trained before ``day``, or train and publish a new version.

    ``shard`` picks one channel shard of a sharded group (``tsad.config.shards``): each shard has its
    own registry, and retraining is decided per shard (drift in one subsystem retrains only its
    shard)."""
    from tsad.model import registry
    from tsad.config.shards import unit_group, unit_label

    group = config.group(group_name)
    unit, label = unit_group(group, shard), unit_label(group.name, shard)
    current = registry.select_version(config.models_dir, group.name, day, shard)
    reason = registry.retrain_reason(current, unit, day, force_retrain)
    if reason is None and _drifted_before(config, unit, day, current, source_url):
        reason = f"drift on {day - timedelta(days=1)}: retrain on recent data"
    if reason is None:
        assert current is not None
        log.info("group %s %s: using model %s", label, day, current.id)
        return {"model_version_id": current.id, "path": str(current.path), "trained": False}
    log.info("group %s %s: training a new model (%s)", label, day, reason)
    version = _train(config, unit, day, source_url, run, shard)
    engine = _engine(config, db_url)
    _retrying(lambda: _record_version(engine, version), f"recording model {version.id}")
    return {"model_version_id": version.id, "path": str(version.path), "trained": True, "reason": reason}


def _train(config: TsadConfig, group: GroupConfig, day: date, source_url: str | None,
           run: RunInfo, shard: int | None = None) -> Any:
    from tsad import fs
    from tsad.model import registry
    from tsad.model.detector import Detector
    from tsad.ingest.partitions import partition_path, read_days

    days = training_days(day, group.training.days)
    for past in days:  # a fresh deployment has no partitions yet: extract what training needs
        if not fs.is_file(partition_path(config.data_dir, group.name, past)):
            extract(config, group.name, past, source_url)
    frame = read_days(config.data_dir, group.name, days, group.channels)  # the unit's columns
    detector = Detector.fit(group, frame)
    version = registry.publish(config.models_dir, detector, days[0], days[-1], run.run_id, shard)
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
        id=version.id, sensor_group=version.owner, version=version.version,
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
    from tsad import fs
    from tsad.model import registry
    from tsad.ingest.partitions import partition_path
    from tsad.model.streaming import score_partition

    previous = day - timedelta(days=1)
    if version is None or previous <= version.training_end:
        return False  # the previous day was training data for this version
    path = partition_path(config.data_dir, group.name, previous)
    if not fs.is_file(path):
        extract(config, group.name, previous, source_url)
    detector = registry.load_detector(version)
    return detector.check_drift(score_partition(detector, path)).drift


# ---------------------------------------------------------------------- 3. score

def score(config: TsadConfig, group_name: str, day: date, model_path: str, *,
          shard: int | None = None, run: RunInfo = RunInfo()) -> Any:
    """One unit's scores of the day (``tsad.detection.unit_scores.UnitScores``): the partition streamed
    from Parquet batch by batch (``tsad.model.streaming``; only the unit's columns are read), so
    memory is bounded by the day's output, not by its input."""
    from tsad import fs
    from tsad.model import registry
    from tsad.errors import DataError, ModelError
    from tsad.ingest.partitions import partition_path
    from tsad.config.shards import unit_group, unit_label
    from tsad.model.streaming import score_partition
    from tsad.detection.unit_scores import UnitScores

    group = config.group(group_name)
    unit, label = unit_group(group, shard), unit_label(group.name, shard)
    version = registry.version_at(model_path)
    if (version.group, version.shard) != (group.name, shard):
        raise ModelError(f"model {version.id} at {model_path} is not a model of {label}; run "
                         f"ensure_model for {label} and score with the path it returns")
    detector = registry.load_detector(version, unit.channels)
    path = partition_path(config.data_dir, group.name, day)
    if not fs.is_file(path):
        raise DataError(f"no extracted partition for group {group.name!r} on {day.isoformat()}: "
                        f"{path} does not exist; run extract for that day first")
    started = datetime.now(timezone.utc)
    scores = score_partition(detector, path)
    drift = detector.check_drift(scores, group.events.drift_share)  # rule: tsad/detector.py
    return UnitScores(
        group=group.name, shard=shard, channels=detector.channels, model_version_id=version.id,
        model_path=str(version.path), threshold=detector.threshold, timestamps=scores.timestamps,
        aggregate=scores.aggregate, point_scores=scores.point_scores,
        n_windows=len(scores.window_starts), drift=drift.drift, drift_message=drift.message,
        started_at=started, run_id=run.run_id, detector=detector)


def score_unit(config: TsadConfig, group_name: str, day: date, model_path: str, *,
               shard: int | None = None, run: RunInfo = RunInfo()) -> dict[str, Any]:
    """``score``, left in the run's scratch file for ``record_units`` (the DAG's score task:
    scores travel between workers as a file, never through XCom)."""
    from tsad.detection.unit_scores import remove_scratch, scratch_path, write_scratch

    path = scratch_path(config.data_dir, config.group(group_name).name, day, run.run_id, shard)
    remove_scratch([path])  # an earlier attempt's file must not outlive a failure of this one
    scores = score(config, group_name, day, model_path, shard=shard, run=run)
    _retrying(lambda: write_scratch(scores, path), f"writing the scores of {scores.label} {day}")
    log.info("group %s %s: scored %d rows with %s (%d windows) -> %s", scores.label, day,
             len(scores.timestamps), scores.model_version_id, scores.n_windows, path)
    return {"group": scores.group, "shard": shard, "path": str(path),
            "model_version_id": scores.model_version_id, "n_windows": scores.n_windows,
            "drift": scores.drift}


# ---------------------------------------------------------------------- 4. record

def record(config: TsadConfig, group_name: str, day: date, units: list[Any], *,
           db_url: str | None = None, run: RunInfo = RunInfo()) -> dict[str, Any]:
    """Merge the group's unit scores (``tsad.detection.merge``) and replace the (group, day)'s anomaly
    records in one transaction: once per (group, day), however many shards."""
    from tsad.model import registry
    from tsad.errors import DataError
    from tsad.detection.merge import merge
    from tsad.config.shards import shard_numbers, unit_label

    group = config.group(group_name)
    expected, got = shard_numbers(group), [u.shard for u in units]
    if got != expected:
        raise DataError(f"group {group.name} {day}: scores of "
                        f"{[unit_label(group.name, s) for s in got]}, but the group's units are "
                        f"{[unit_label(group.name, s) for s in expected]}; score every unit")
    merged = merge(group, units)
    engine = _engine(config, db_url)
    for unit in units:
        version = registry.version_at(unit.model_path)
        _retrying(lambda v=version: _record_version(engine, v), f"recording model {version.id}")
    started = min(u.started_at for u in units)
    summary = _write_records(engine, config, group, day, merged, run, started)
    log.info("group %s %s: %d events, %d anomalous points, drift=%s (threshold %.4f, model %s)",
             group.name, day, summary["n_events"], summary["n_points"], summary["drift"],
             summary["threshold"], summary["model_version_id"])
    return summary


def record_units(config: TsadConfig, group_name: str, day: date, *, db_url: str | None = None,
                 run: RunInfo = RunInfo()) -> dict[str, Any]:
    """``record`` of the scores this run's score tasks left for the group (the DAG's detect
    task); the scratch files are removed once the records are committed."""
    from tsad.config.shards import shard_numbers, unit_label
    from tsad.detection.unit_scores import read_scratch, remove_scratch, scratch_path

    group = config.group(group_name)
    paths = {s: scratch_path(config.data_dir, group.name, day, run.run_id, s)
             for s in shard_numbers(group)}
    units = [_retrying(lambda p=p, s=s: read_scratch(p, f"{unit_label(group.name, s)} {day}"),
                       f"reading the scores of {unit_label(group.name, s)} {day}")
             for s, p in paths.items()]
    summary = record(config, group_name, day, units, db_url=db_url, run=run)
    try:
        remove_scratch(list(paths.values()))
    except Exception:  # noqa: BLE001 - the records are written; leftovers are only disk space
        log.warning("group %s %s: could not remove the scratch scores %s", group.name, day,
                    list(paths.values()), exc_info=True)
    return summary


def unscored_units(config: TsadConfig, group_name: str, day: date,
                   run: RunInfo = RunInfo()) -> list[str]:
    """The group's units that have no scratch scores from ``run`` (what ``record_units`` lacks)."""
    from tsad import fs
    from tsad.config.shards import shard_numbers, unit_label
    from tsad.detection.unit_scores import scratch_path

    group = config.group(group_name)
    return [unit_label(group.name, s) for s in shard_numbers(group)
            if not fs.is_file(scratch_path(config.data_dir, group.name, day, run.run_id, s))]


def detect(config: TsadConfig, group_name: str, day: date, model_path: str, *,
           db_url: str | None = None, run: RunInfo = RunInfo()) -> dict[str, Any]:
    """Score the day's partition and replace its anomaly records in one transaction (an
    unsharded group; a sharded one goes through ``score`` per shard, then ``record``)."""
    from tsad.config.shards import shard_numbers

    units = shard_numbers(config.group(group_name))
    if units != [None]:
        raise ConfigError(f"group {group_name!r} has {len(units)} channel shards: score each "
                          "with score(..., shard=N) and write them with record(), or use run_day")
    scores = score(config, group_name, day, model_path, run=run)
    return record(config, group_name, day, [scores], db_url=db_url, run=run)


def records_written_by(config: TsadConfig, group_name: str, day: date, run_id: str, *,
                       db_url: str | None = None) -> bool:
    """Whether the (group, day)'s current records come from run ``run_id`` (alert checks it, so
    a failed write never re-sends an earlier run's events)."""
    from tsad.storage.records import latest_run

    engine = _engine(config, db_url)
    latest = _retrying(lambda: latest_run(engine, group_name, day),
                       f"reading the runs of {group_name} {day}")
    return latest is not None and latest["run_id"] == run_id


def _write_records(engine: Any, config: TsadConfig, group: GroupConfig, day: date, merged: Any,
                   run: RunInfo, started: datetime) -> dict[str, Any]:
    """Build the group-day's records (``tsad.detection.day_records``) and write them in one transaction."""
    from tsad.detection.day_records import build_records
    from tsad.storage.records import write_partition

    built = build_records(config, group, day, merged, run.dag_id, run.run_id, started,
                          _quality(config, group, day))
    if built.run.drift:
        log.warning("group %s %s: %s", group.name, day, built.run.message)
    run_pk = _retrying(lambda: write_partition(engine, built.run, built.events, built.points),
                       f"writing {group.name} {day} to {_shown(engine)}")
    return {"detection_run_id": run_pk, "n_events": len(built.events),
            "n_points": len(built.points), "drift": built.run.drift,
            "model_version_id": built.run.model_version_id, "threshold": built.run.threshold}


def _quality(config: TsadConfig, group: GroupConfig, day: date) -> dict[str, Any]:
    from tsad import fs
    from tsad.ingest.partitions import partition_path

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
    """Every step for every selected group, in order: what the DAG does, without Airflow (a
    sharded group's shards one after the other, in this process)."""
    from tsad.config.shards import shard_numbers

    results = []
    for name in groups or [g.name for g in config.groups]:
        extracted = extract(config, name, day)
        numbers = shard_numbers(config.group(name))
        models = [ensure_model(config, name, day, shard=s, force_retrain=force_retrain, run=run)
                  for s in numbers]
        units = [score(config, name, day, m["path"], shard=s, run=run)
                 for s, m in zip(numbers, models, strict=True)]
        detected = record(config, name, day, units, run=run)
        alerted = alert(config, name, day)
        model = models[0] if numbers == [None] else {"models": models}
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
