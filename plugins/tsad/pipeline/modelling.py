"""Step 2: reuse the newest model trained before the day, or train and publish a new version."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from tsad.config import DetectorConfig
from tsad.config.shards import unit_label
from tsad.errors import WarmingUp
from tsad.model import registry
from tsad.model.detector import Detector
from tsad.model.promotion import compare
from tsad.model.registry import ModelVersion
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.pipeline.history import training_frame
from tsad.storage.dialect import exclusive
from tsad.storage.past_days import confirmed_since, false_alarms_since, sustained_since
from tsad.storage.records import ModelVersionRecord, record_model_version


def ensure_model(ctx: GroupDay, shard: int | None = None, *,
                 force_retrain: bool = False) -> dict[str, Any]:
    """The model a unit (the group, or its channel ``shard``: each shard has its own registry,
    and retraining is decided per shard) scores the day with; trained when there is none
    trained before the day, it is too old or provisional, the settings changed, a person
    confirmed a sustained departure as a new operating point (or it lasted
    ``training.adopt_after_days``), or ``force_retrain``. Raises ``WarmingUp`` when there is no
    model and too little history to train one (``tsad.pipeline.history``).

    One training per (unit, day): two runs of the same day that both need a model (a backfill
    beside the nightly run) queue on a lock, and the second uses the version the first
    published instead of training another."""
    known = {v.version for v in registry.list_versions(ctx.config.models_dir, ctx.name, shard)}
    config = ctx.detector_config(shard)
    current, reason, since = _retrain_reason(ctx, config, shard, force_retrain)
    if reason is None:
        return _reused(ctx, shard, current)
    engine = ctx.records()
    with exclusive(engine, "train", unit_label(ctx.name, shard), ctx.day.toordinal()):
        current, again, since = _retrain_reason(ctx, config, shard, force_retrain)
        if again is None or _published_meanwhile(current, ctx.day, known):
            return _reused(ctx, shard, current)
        log.info("group %s: training a new model (%s)", ctx.label(shard), reason)
        try:
            version = _train(ctx, config, shard, since, current)
        except WarmingUp as exc:
            if current is None:
                raise
            log.warning("%s; scoring with %s meanwhile", exc, current.id)
            return _reused(ctx, shard, current)
    retrying(lambda: record_model_version(engine, version_record(version)),
             f"recording model {version.id}")
    if registry.is_rejected(version) and current is not None:
        result = _reused(ctx, shard, current)
        return {**result, "rejected": version.id, "reason": reason}
    return {"model_version_id": version.id, "path": str(version.path), "trained": True,
            "reason": reason}


def _retrain_reason(ctx: GroupDay, config: DetectorConfig, shard: int | None, force: bool
                    ) -> tuple[ModelVersion | None, str | None, date | None]:
    """The unit's current version for the day, why it will not do (None: it will), and the
    first day of a new level to train on (None: the usual recent days)."""
    current = registry.select_version(ctx.config.models_dir, ctx.name, ctx.day, shard)
    adopted = _adopted_level(ctx, current)
    if adopted is not None:
        since, why = adopted
        return current, f"sustained departure since {since} {why}: retrain on the new level", since
    reason = registry.retrain_reason(current, config, ctx.group.training, ctx.day, force)
    if reason is None and current is not None:
        reason = _new_false_alarms(ctx, shard)
    tried = None if force or reason is None else registry.rejected_for(
        ctx.config.models_dir, ctx.name, ctx.day, shard)
    if tried is not None and current is not None:  # a re-run keeps the day's decision
        log.info("group %s: %s was trained for this day and not promoted; keeping %s",
                 ctx.label(shard), tried.id, current.id)
        return current, None, None
    return current, reason, None


def _adopted_level(ctx: GroupDay, current: ModelVersion | None) -> tuple[date, str] | None:
    """A sustained departure that continued up to the day before and that the model may now
    learn: a person marked it a new operating point, or it lasted ``adopt_after_days``.
    Never otherwise: a failing machine looks exactly like a new operating point."""
    if current is None:
        return None
    engine = ctx.records()
    since = retrying(lambda: sustained_since(engine, ctx.name, ctx.day),
                     f"reading the day before {ctx.label()}")
    if since is None or current.training_end >= since:
        return None
    yesterday = ctx.day - timedelta(days=1)
    if retrying(lambda: confirmed_since(engine, ctx.name, since, yesterday),
                f"reading the verdicts of {ctx.label()}"):
        return since, "confirmed as a new operating point"
    adopt = ctx.group.training.adopt_after_days
    if adopt and (ctx.day - since).days >= adopt:
        return since, f"lasted {adopt} days (training.adopt_after_days)"
    return None


def _new_false_alarms(ctx: GroupDay, shard: int | None) -> str | None:
    """Why to retrain when a person marked events of the training days false alarms after the
    unit's last training (promoted or not): the next model keeps those rows and raises its
    threshold above them (``tsad.pipeline.history``), instead of flagging the same manoeuvre
    until the model ages out. Only for a day after the newest model's training days: a
    backfill of older days does not retrain for a verdict (the nightly run does)."""
    versions = registry.list_versions(ctx.config.models_dir, ctx.name, shard)
    if not versions or ctx.day <= versions[-1].training_end:
        return None  # a backfill behind the newest model: its version would outrank tonight's
    history = (versions[-1].manifest.get("metrics") or {}).get("history") or {}
    # the moment that training read the verdicts (older manifests: when it was published)
    trained_at = datetime.fromisoformat(history.get("read_at")
                                        or versions[-1].manifest["created_at"])
    first = ctx.day - timedelta(days=ctx.group.training.days)
    engine = ctx.records()
    count = retrying(lambda: false_alarms_since(engine, ctx.name, trained_at, first,
                                                ctx.day - timedelta(days=1)),
                     f"reading the verdicts of {ctx.label()}")
    if not count:
        return None
    return (f"{count} event(s) since {first} marked false alarm after {versions[-1].id} was "
            "trained: retrain so the model keeps those rows and its threshold clears them")


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


def _train(ctx: GroupDay, config: DetectorConfig, shard: int | None, since: date | None,
           current: ModelVersion | None) -> ModelVersion:
    """Fit on the unit's usable history, compare with ``current`` and publish (a rejected
    candidate is published too, marked so: the registry keeps every attempt)."""
    frame, history = training_frame(ctx, config, since)
    detector = Detector.fit(config, frame, known_normal=history.known_normal)
    detector.metrics_["history"] = history.to_dict()
    _check_promotion(ctx, detector, frame, current, shard)
    version = registry.publish(ctx.config.models_dir, detector, history.days[0],
                               history.days[-1], ctx.run.run_id, group=ctx.name, shard=shard,
                               trained_for=ctx.day)
    metrics = detector.metrics_
    log.info("group %s: published %s%s (threshold %.4f, held-out error %.4f vs persistence "
             "%.4f, %s)", config.name, version.id, " (provisional)" if history.provisional
             else "", detector.threshold, metrics["model_error"], metrics["persistence_error"],
             "beats persistence" if metrics["beats_persistence"] else "does NOT beat persistence")
    return version


def _check_promotion(ctx: GroupDay, candidate: Detector, frame: Any,
                     current: ModelVersion | None, shard: int | None) -> None:
    """Compare ``candidate`` with ``current`` on the candidate's held-out rows; the result goes
    into its metrics (``promotion``). No comparison without a current model on the same
    channels (a first model, or changed settings)."""
    if current is None:
        return
    try:  # other channels (changed settings) or an unreadable file: nothing to compare with
        before = registry.load_detector(current, candidate.channels)
    except Exception as exc:  # noqa: BLE001 - an old model cannot block a new one
        log.info("group %s: not comparing with %s (%s)", ctx.label(shard), current.id, exc)
        return
    split = int(len(frame) * (1 - candidate.config.model.validation_fraction))
    comparison = compare(candidate, before, frame.iloc[split:])
    candidate.metrics_["promotion"] = {**comparison.to_dict(), "against": current.id}
    (log.info if comparison.promoted else log.warning)(
        "group %s: the new model %s %s: %s", ctx.label(shard),
        "replaces" if comparison.promoted else "is NOT promoted over", current.id,
        comparison.reason)


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
        created_at=datetime.fromisoformat(m["created_at"]),
        status="rejected" if registry.is_rejected(version) else "published")
