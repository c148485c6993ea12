"""Every step for every selected group and day, in this process: what the DAG does (``tsad run``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from tsad.config import TsadConfig
from tsad.pipeline.alerting import alert
from tsad.pipeline.context import GroupDay, RunInfo
from tsad.pipeline.extracting import extract
from tsad.pipeline.modelling import ensure_model
from tsad.errors import WarmingUp
from tsad.pipeline.recording import record, record_warming_up
from tsad.pipeline.scoring import score


def run_day(config: TsadConfig, day: date, groups: list[str] | None = None, *,
            force_retrain: bool = False, run: RunInfo | None = None) -> list[dict[str, Any]]:
    """extract -> ensure_model and score per unit -> record -> alert, group by group (a
    sharded group's shards one after the other), with the same steps the DAG's tasks call. A
    group with too little history for a first model records the day as ``warming_up``."""
    results = []
    for name in groups or [g.name for g in config.groups]:
        ctx = GroupDay.of(config, name, day, run)
        extracted = extract(ctx)
        try:
            models = [ensure_model(ctx, shard, force_retrain=force_retrain)
                      for shard in ctx.shards]
        except WarmingUp as exc:
            results.append({"group": name, "day": day.isoformat(), **extracted,
                            **record_warming_up(ctx, exc), "alert": None})
            continue
        for shard, model in zip(ctx.shards, models, strict=True):
            score(ctx, model["path"], shard)
        detected = record(ctx)
        alerted = alert(ctx)
        model = models[0] if ctx.shards == [None] else {"models": models}
        results.append({"group": name, "day": day.isoformat(), **extracted, **model, **detected,
                        "alert": alerted})
    return results
