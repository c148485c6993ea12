"""Step 3: one unit's scores of the day, left in the run's scratch file for the records step.

Scores travel between workers as a file (``tsad.detection.unit_scores``), never through XCom.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tsad import fs
from tsad.config.shards import unit_label
from tsad.detection.drift import check_drift
from tsad.detection.unit_scores import UnitScores, remove_scratch, scratch_path, write_scratch
from tsad.errors import DataError, ModelError
from tsad.ingest.partitions import partition_path
from tsad.model import registry
from tsad.model.plausibility import PLAUSIBLE_Z, ReadingCounts
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.windows import window_starts


def score(ctx: GroupDay, model_path: str, shard: int | None = None) -> dict[str, Any]:
    """Score the unit's columns of the day's partition, streamed from Parquet batch by batch
    (memory bounded by the day's output, not its input), with the model at ``model_path``."""
    version = registry.version_at(model_path)
    if (version.group, version.shard) != (ctx.name, shard):
        label = unit_label(ctx.name, shard)
        raise ModelError(f"model {version.id} at {model_path} is not a model of {label}; run "
                         f"ensure_model for {label} and score with the path it returns")
    detector = registry.load_detector(version, ctx.detector_config(shard).channels)
    path = partition_path(ctx.config.data_dir, ctx.name, ctx.day)
    if not fs.is_file(path):
        raise DataError(f"no extracted partition for group {ctx.name!r} on {ctx.day}: {path} "
                        "does not exist; run extract for that day first")
    out = scratch_path(ctx.config.data_dir, ctx.name, ctx.day, ctx.run.run_id, shard)
    remove_scratch([out])  # an earlier attempt's file must not outlive a failure of this one
    started = datetime.now(timezone.utc)
    scores = detector.score_partition(path)
    drift = check_drift(scores.aggregate, detector.threshold, ctx.group.events.drift_share)
    readings = scores.readings or ReadingCounts.empty(len(detector.channels))
    implausible = readings.implausible_by_channel(detector.channels, scores.timestamps)
    for channel, found in implausible.items():
        log.warning("group %s: %d reading(s) of channel %r more than %g training standard "
                    "deviations from its training mean (the first at %s) were clipped to that "
                    "bound: they stay anomalous but cannot swamp the rest of the day; check the "
                    "source", ctx.label(shard), found["count"], channel, PLAUSIBLE_Z,
                    found["first"])
    window = detector.config.window
    unit = UnitScores(
        group=ctx.name, shard=shard, channels=detector.channels, model_version_id=version.id,
        model_path=str(version.path), threshold=detector.threshold, timestamps=scores.timestamps,
        aggregate=scores.aggregate, point_scores=scores.point_scores,
        n_windows=len(scores.window_starts), drift=drift.drift, drift_message=drift.message,
        started_at=started, run_id=ctx.run.run_id,
        possible_windows=len(window_starts(len(scores.timestamps), window.length, window.stride)),
        missing=readings.missing_by_channel(detector.channels), implausible=implausible,
        departed=scores.departed)
    retrying(lambda: write_scratch(unit, out), f"writing the scores of {ctx.label(shard)}")
    log.info("group %s: scored %d rows with %s (%d windows) -> %s", ctx.label(shard),
             len(unit.timestamps), unit.model_version_id, unit.n_windows, out)
    return {"group": ctx.name, "shard": shard, "path": str(out),
            "model_version_id": unit.model_version_id, "n_windows": unit.n_windows,
            "drift": unit.drift}


def unscored_units(ctx: GroupDay) -> list[str]:
    """The group's units without scratch scores from this run (what ``record`` lacks)."""
    return [unit_label(ctx.name, s) for s in ctx.shards
            if not fs.is_file(scratch_path(ctx.config.data_dir, ctx.name, ctx.day,
                                           ctx.run.run_id, s))]
