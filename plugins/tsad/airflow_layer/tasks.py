"""Task bodies for ``dags/tsad_nightly.py``: context in, one ``tsad.pipeline`` call, small dict out.

Every task derives its data day from the run's data interval through ``tsad.dates.data_day``;
params only carry optional overrides, because backfills may drop or keep stale params.

Every task body is wrapped in :func:`fail_fast`: a :class:`tsad.errors.TsadError` that is not a
:class:`tsad.retry.TransientError` (a wrong setting, a missing table, bad data, a broken model)
will not pass by waiting, so it fails the task at once instead of sitting out the retries;
transient errors and unexpected exceptions keep Airflow's retries.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from tsad.config import TsadConfig, load_config
from tsad.dates import data_day
from tsad.errors import ConfigError, TsadError
from tsad.retry import TransientError

T = TypeVar("T")


def fail_fast(fn: Callable[..., T]) -> Callable[..., T]:
    """Re-raise permanent tsad errors as ``AirflowFailException`` (no retries); the message
    is the error's own, which names what to fix."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except TsadError as exc:
            if isinstance(exc, TransientError):
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{exc} [{type(exc).__name__}: not retried, waiting will not fix it; fix the "
                "cause, then clear this task]") from exc

    return wrapper


def run_day(context: Any, config: TsadConfig) -> date:
    """The data day of the run in ``context`` (a ``partition_date`` param overrides)."""
    dag_run = context["dag_run"]
    override = (context.get("params") or {}).get("partition_date") or None
    start = dag_run.data_interval_start or dag_run.logical_date or dag_run.run_after
    end = dag_run.data_interval_end or dag_run.logical_date or dag_run.run_after
    try:
        return data_day(start, end, config.site_timezone, override)
    except ValueError as exc:
        raise ConfigError(f"param 'partition_date': {exc}; trigger the run again with a real "
                          "day, or leave it empty for the run's own data day") from None


def group_day(group: str, context: Any, config: TsadConfig | None = None) -> Any:
    """The ``tsad.pipeline.GroupDay`` a task works on: the group, the run's data day, the run's
    ids and the URLs behind the config's Airflow connections."""
    from tsad.airflow_layer.connections import optional_url
    from tsad.pipeline import GroupDay, RunInfo

    config = config or load_config()
    source = config.group(group).source
    return GroupDay.of(config, group, run_day(context, config),
                       RunInfo(dag_id=context["dag"].dag_id, run_id=context["run_id"]),
                       db_url=optional_url(config.database.url, config.database.conn_id),
                       source_url=optional_url(source.url, source.conn_id))


@fail_fast
def db_upgrade(context: Any) -> dict[str, Any]:
    """Migrate tsad's records database to the newest schema (an explicit task, never at parse
    time); idempotent and serialized, so concurrent runs and backfills may all run it."""
    from tsad import retry
    from tsad.airflow_layer.connections import optional_url
    from tsad.pipeline import database_url
    from tsad.storage.migrate import upgrade

    config = load_config()
    url = database_url(config, optional_url(config.database.url, config.database.conn_id))
    return {"revision": retry.call(lambda: upgrade(url), "migrating tsad's records database")}


@fail_fast
def list_groups(context: Any) -> list[str]:
    """The configured groups, or the subset named in the ``groups`` param."""
    config = load_config()
    names = [g.name for g in config.groups]
    wanted = list((context.get("params") or {}).get("groups") or names)
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(f"param 'groups' names unknown group(s) {unknown}; configured: {names}")
    return [n for n in names if n in wanted]


@fail_fast
def list_units(groups: list[str], context: Any) -> list[dict[str, Any]]:
    """The units of work of the selected groups, ``{"group", "shard"}`` each (shard ``None``
    for an unsharded group), in config order: ensure_model and score map over them."""
    from tsad.config.shards import shard_numbers

    config = load_config()
    return [{"group": name, "shard": shard}
            for name in groups for shard in shard_numbers(config.group(name))]


@fail_fast
def extract(group: str, context: Any) -> dict[str, Any]:
    from tsad import pipeline

    return pipeline.extract(group_day(group, context))


def _skip(message: str) -> None:
    """End the task as skipped: its group already failed upstream (notified there, once)."""
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(message)


@fail_fast
def ensure_model(group: str, shard: int | None, context: Any) -> dict[str, Any]:
    """One unit's model; the result carries the unit, so score can map over these results.
    Skipped when the group's extract did not produce the day's partition."""
    from tsad import fs, pipeline
    from tsad.errors import WarmingUp
    from tsad.ingest.partitions import partition_path

    ctx = group_day(group, context)
    if not fs.is_file(partition_path(ctx.config.data_dir, group, ctx.day)):
        _skip(f"group {group} {ctx.day}: no extracted partition (its extract failed); "
              "not training")
    force = bool((context.get("params") or {}).get("force_retrain", False))
    try:
        result = pipeline.ensure_model(ctx, shard, force_retrain=force)
    except WarmingUp as exc:  # a new deployment: recorded, and the rest of the group skipped
        pipeline.record_warming_up(ctx, exc)
        _skip(str(exc))
    return {**result, "group": group, "shard": shard}


@fail_fast
def score(model: dict[str, Any], context: Any) -> dict[str, Any]:
    """One unit's scores of the day, left in the run's scratch file (path in the result)."""
    from tsad import pipeline

    return pipeline.score(group_day(model["group"], context), model["path"], model["shard"])


@fail_fast
def detect(group: str, context: Any) -> dict[str, Any]:
    """Merge the group's unit scores of this run and write its records in one transaction, and
    name the partition in the records Asset's event. Skipped (nothing written: a group's records
    are all its units or none) when a unit has no scores from this run because its ensure_model
    or score failed."""
    from tsad import pipeline
    from tsad.airflow_layer.assets import RECORDS

    ctx = group_day(group, context)
    missing = pipeline.unscored_units(ctx)
    if missing:
        _skip(f"group {group} {ctx.day}: no scores of {missing} from this run (their "
              "ensure_model or score task failed); records left as they were")
    result = pipeline.record(ctx)
    context["outlet_events"][RECORDS].extra = {"sensor_group": group,
                                               "partition_date": ctx.day.isoformat()}
    return result


@fail_fast
def alert(group: str, context: Any) -> dict[str, Any]:
    """The group's digest; skipped when this run did not write the group's records (its detect
    failed or skipped), so an earlier run's events are never sent again."""
    from tsad import pipeline
    from tsad.airflow_layer.connections import hook_transports

    ctx = group_day(group, context)
    if not pipeline.records_written_by(ctx):
        _skip(f"group {group} {ctx.day}: this run wrote no records; nothing to alert")
    routes = ctx.group.alerts
    return pipeline.alert(ctx, hook_transports(routes.email_conn_id, routes.slack_conn_id))
