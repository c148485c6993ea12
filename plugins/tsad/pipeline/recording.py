"""Step 4: the group's unit scores merged and its day's records replaced in one transaction."""

from __future__ import annotations

from typing import Any

from tsad.config.shards import unit_label
from tsad.detection.day_records import build_records
from tsad.detection.merge import merge
from tsad.detection.plots import remove_other_plots
from tsad.detection.unit_scores import read_scratch, remove_scratch, scratch_path
from tsad.ingest.partitions import read_quality
from tsad.model import registry
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.pipeline.modelling import version_record
from tsad.storage.past_days import sustained_since
from tsad.errors import WarmingUp
from tsad.storage.records import RunRecord, latest_run, record_model_version, write_partition


def record(ctx: GroupDay) -> dict[str, Any]:
    """Merge the scores this run's score steps left for the group (``tsad.detection.merge``)
    and replace the (group, day)'s anomaly records in one transaction, once per (group, day)
    however many shards; then remove the scratch files and the plots no committed row names."""
    config = ctx.config
    paths = {s: scratch_path(config.data_dir, ctx.name, ctx.day, ctx.run.run_id, s)
             for s in ctx.shards}
    units = [retrying(lambda p=p, s=s: read_scratch(p, ctx.label(s)),
                      f"reading the scores of {ctx.label(s)}") for s, p in paths.items()]
    merged = merge(ctx.group, units)
    engine = ctx.records()
    for unit in units:
        version = registry.version_at(unit.model_path)
        retrying(lambda v=version: record_model_version(engine, version_record(v)),
                 f"recording model {version.id}")
    started = min(u.started_at for u in units)
    since = (retrying(lambda: sustained_since(engine, ctx.name, ctx.day),
                      f"reading the day before {ctx.label()}") if merged.drifted else None)
    built = build_records(config, ctx.group, ctx.day, merged, ctx.run.dag_id, ctx.run.run_id,
                          started, read_quality(config.data_dir, ctx.name, ctx.day), since)
    if built.run.drift or built.run.status in ("no_data", "partial"):
        log.warning("group %s: %s", ctx.label(), built.run.message)
    shown = engine.url.render_as_string(hide_password=True)
    run_pk = retrying(lambda: write_partition(engine, built.run, built.events, built.points),
                      f"writing {ctx.label()} to {shown}")
    remove_other_plots(config.data_dir, ctx.name, ctx.day, [e.plot_path for e in built.events])
    try:
        remove_scratch(list(paths.values()))
    except Exception:  # noqa: BLE001 - the records are written; leftovers are only disk space
        log.warning("group %s: could not remove the scratch scores %s", ctx.label(),
                    [unit_label(ctx.name, s) for s in paths], exc_info=True)
    summary = {"detection_run_id": run_pk, "n_events": len(built.events),
               "n_points": len(built.points), "drift": built.run.drift,
               "status": built.run.status,
               "model_version_id": built.run.model_version_id, "threshold": built.run.threshold}
    log.info("group %s: %d events, %d anomalous points, drift=%s (threshold %.4f, model %s)",
             ctx.label(), summary["n_events"], summary["n_points"], summary["drift"],
             summary["threshold"], summary["model_version_id"])
    return summary


def records_written_by(ctx: GroupDay) -> bool:
    """Whether the (group, day)'s current records come from this run (the alert step checks
    it, so a failed write never re-sends an earlier run's events)."""
    engine = ctx.records()
    latest = retrying(lambda: latest_run(engine, ctx.name, ctx.day),
                      f"reading the runs of {ctx.label()}")
    return latest is not None and latest["run_id"] == ctx.run.run_id


def record_warming_up(ctx: GroupDay, reason: WarmingUp) -> dict[str, Any]:
    """A day a new deployment cannot score yet (too little history for a first model): a run
    row with status ``warming_up`` and the reason, replacing the day's records (re-run safe)."""
    from datetime import datetime, timezone

    from tsad.dates import day_bounds

    start, end = day_bounds(ctx.day, ctx.config.site_timezone)
    now = datetime.now(timezone.utc)
    run = RunRecord(dag_id=ctx.run.dag_id, run_id=ctx.run.run_id, sensor_group=ctx.name,
                    partition_date=ctx.day, site_timezone=ctx.config.site_timezone,
                    data_start=start, data_end=end, status="warming_up", message=str(reason),
                    quality_json=read_quality(ctx.config.data_dir, ctx.name, ctx.day) or {},
                    started_at=now, finished_at=now)
    engine = ctx.records()
    run_pk = retrying(lambda: write_partition(engine, run, [], []),
                      f"writing {ctx.label()}'s warming-up run")
    log.warning("%s: the day is recorded as warming_up, not scored", reason)
    return {"detection_run_id": run_pk, "n_events": 0, "n_points": 0, "drift": False,
            "status": "warming_up", "model_version_id": None, "threshold": None}
