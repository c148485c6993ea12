"""Step 2: reuse the newest model trained before the day, or train and publish a new version."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tsad import fs
from tsad.config import DetectorConfig
from tsad.config.shards import unit_label
from tsad.dates import training_days
from tsad.detection.drift import check_drift
from tsad.ingest.partitions import partition_path, read_days
from tsad.model import registry
from tsad.model.detector import Detector
from tsad.model.registry import ModelVersion
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.pipeline.extracting import extract
from tsad.storage.dialect import exclusive
from tsad.storage.records import ModelVersionRecord, record_model_version


def ensure_model(ctx: GroupDay, shard: int | None = None, *,
                 force_retrain: bool = False) -> dict[str, Any]:
    """The model a unit (the group, or its channel ``shard``: each shard has its own registry,
    and retraining is decided per shard) scores the day with; trained when there is none
    trained before the day, it is too old, the settings changed, the day before drifted, or
    ``force_retrain``.

    One training per (unit, day): two runs of the same day that both need a model (a backfill
    beside the nightly run) queue on a lock, and the second uses the version the first
    published instead of training another."""
    known = {v.version for v in registry.list_versions(ctx.config.models_dir, ctx.name, shard)}
    config = ctx.detector_config(shard)
    current, reason = _retrain_reason(ctx, config, shard, force_retrain)
    if reason is None:
        return _reused(ctx, shard, current)
    engine = ctx.records()
    with exclusive(engine, "train", unit_label(ctx.name, shard), ctx.day.toordinal()):
        current, again = _retrain_reason(ctx, config, shard, force_retrain)
        if again is None or _published_meanwhile(current, ctx.day, known):
            return _reused(ctx, shard, current)
        log.info("group %s: training a new model (%s)", ctx.label(shard), reason)
        version = _train(ctx, config, shard)
    retrying(lambda: record_model_version(engine, version_record(version)),
             f"recording model {version.id}")
    return {"model_version_id": version.id, "path": str(version.path), "trained": True,
            "reason": reason}


def _retrain_reason(ctx: GroupDay, config: DetectorConfig, shard: int | None,
                    force: bool) -> tuple[ModelVersion | None, str | None]:
    """The unit's current version for the day, and why it will not do (None: it will)."""
    current = registry.select_version(ctx.config.models_dir, ctx.name, ctx.day, shard)
    reason = registry.retrain_reason(current, config, ctx.group.training, ctx.day, force)
    if reason is None and _drifted_before(ctx, config, current):
        reason = f"drift on {ctx.day - timedelta(days=1)}: retrain on recent data"
    return current, reason


def _published_meanwhile(version: ModelVersion | None, day: date, known: set[int]) -> bool:
    """Whether another run trained ``version`` for ``day`` while this one waited for the lock
    (it was not among the ``known`` versions before): a forced retrain then uses it rather
    than training a second one."""
    return (version is not None and version.version not in known
            and version.manifest.get("trained_for") == day.isoformat())


def _reused(ctx: GroupDay, shard: int | None, version: ModelVersion | None) -> dict[str, Any]:
    assert version is not None
    log.info("group %s: using model %s", ctx.label(shard), version.id)
    return {"model_version_id": version.id, "path": str(version.path), "trained": False}


def _train(ctx: GroupDay, config: DetectorConfig, shard: int | None) -> ModelVersion:
    days = training_days(ctx.day, ctx.group.training.days)
    for past in days:  # a fresh deployment has no partitions yet: extract what training needs
        if not fs.is_file(partition_path(ctx.config.data_dir, ctx.name, past)):
            extract(ctx.at(past))
    frame = read_days(ctx.config.data_dir, ctx.name, days, config.channels)
    detector = Detector.fit(config, frame)
    version = registry.publish(ctx.config.models_dir, detector, days[0], days[-1],
                               ctx.run.run_id, group=ctx.name, shard=shard, trained_for=ctx.day)
    metrics = detector.metrics_
    log.info("group %s: published %s (threshold %.4f, held-out error %.4f vs persistence %.4f, "
             "%s)", config.name, version.id, detector.threshold, metrics["model_error"],
             metrics["persistence_error"],
             "beats persistence" if metrics["beats_persistence"] else "does NOT beat persistence")
    return version


def version_record(version: ModelVersion) -> ModelVersionRecord:
    """A registry version as its ``model_version`` row."""
    m = version.manifest
    return ModelVersionRecord(
        id=version.id, sensor_group=version.owner, version=version.version,
        detector_kind=m["detector_kind"], config_json=version.read_json("config.json"),
        config_sha256=m["config_sha256"], artifact_uri=str(version.path),
        manifest_sha256=version.manifest_sha256,
        training_start=date.fromisoformat(m["training_start"]),
        training_end=date.fromisoformat(m["training_end"]),
        threshold_strategy=m["threshold_strategy"], threshold=float(m["threshold"]),
        metrics_json=m["metrics"], code_version=m["code_version"],
        created_by_run=m["created_by_run"],
        created_at=datetime.fromisoformat(m["created_at"]), status="published")


def _drifted_before(ctx: GroupDay, config: DetectorConfig, version: ModelVersion | None) -> bool:
    """Did the day before drift away from ``version``'s training data?

    Decided from the data (that day's partition scored by the same version), not from the run
    table, so concurrent backfills that finish in any order still choose the same model.
    """
    previous = ctx.day - timedelta(days=1)
    if version is None or previous <= version.training_end:
        return False  # the previous day was training data for this version
    path = partition_path(ctx.config.data_dir, ctx.name, previous)
    if not fs.is_file(path):
        extract(ctx.at(previous))
    detector = registry.load_detector(version, config.channels)
    scores = detector.score_partition(path)
    return check_drift(scores.aggregate, detector.threshold, ctx.group.events.drift_share).drift
