"""tsad's nightly anomaly detection DAG: one run per data day, fanned out over groups and shards.

db_upgrade (the records database's migrations, a no-op when current), then per sensor group
extract -> ensure_model (queue/pool ``gpu``) -> score -> detect -> alert. A large group split into
channel shards (``groups[].shards``) trains and scores one unit per shard; an unsharded group is
one unit. Airflow cannot map inside a mapped task group, so the chain is flat: extract, detect
and alert map over groups, ensure_model and score over units (``list_units``), and detect
merges its group's units and writes the records once per (group, day). The tasks after extract
run when their upstreams are done whatever their outcome (``all_done``), so one group's failure
never stops the others: each checks its own group's inputs and skips, naming them, when an
earlier task of its group failed (notified once, there); the leaf ``outcome`` then fails the run.

The run covers the previous day (an explicit daily timetable, not ``@daily``, whose data
interval is empty in Airflow 3). Every task is idempotent per (group, day), so re-runs and
backfills from the UI or ``airflow backfill create`` are safe. Permanent errors fail the task
at once (``tasks.fail_fast``); transient ones use the retries. This file imports neither torch
nor pandas (nor Kubernetes, unless $TSAD_TRAIN_EXECUTOR_CONFIG is set): the scheduler parses it
often. The UI's texts (``doc_md``) are in ``task_docs``, written for operators.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import (
    DAG,
    CronTriggerTimetable,
    Param,
    TriggerRule,
    dag,
    get_current_context,
    task,
    task_group,
)

from tsad.airflow_layer.assets import RECORDS
from tsad.airflow_layer.executor_config import train_executor_config
from tsad.airflow_layer.notifiers import failure_notifiers
from tsad.airflow_layer.task_docs import DAG_DOC, TASK_DOCS

LABEL = "{{ sensor_group }}"  # names each mapped task instance after its group (or unit) in the UI
AFTER_ALL = TriggerRule.ALL_DONE  # a failed group or unit must not stop the others


def labelled(group: str, shard: int | None = None) -> dict:
    """The task's context, carrying the name (``pumps``, ``pumps/s01``) that
    ``map_index_template`` shows."""
    from tsad.config.shards import unit_label

    context = get_current_context()
    context["sensor_group"] = unit_label(group, shard)  # type: ignore[typeddict-unknown-key]
    return context


def configured_groups() -> tuple[list[str] | None, str]:
    """The configured group names for the trigger form's pick list, or None and the reason
    when the config cannot be read here (the DAG still parses; ``list_groups`` then fails,
    naming the problem, instead of the whole DAG vanishing behind an import error)."""
    from tsad.config import load_config
    from tsad.errors import TsadError

    try:
        return [g.name for g in load_config().groups], ""
    except (TsadError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def run_params(groups: list[str] | None) -> dict[str, Param]:
    """The trigger form: every field optional (``null`` allowed), the groups picked from the
    configured ones, the data day typed as text in the one format tsad uses (a ``date`` field
    shows the browser's locale format, e.g. mm/dd/yyyy, beside a description in YYYY-MM-DD)."""
    pick = {"items": {"type": "string", "enum": groups}, "examples": groups} if groups else \
        {"items": {"type": "string"}}
    return {
        "groups": Param(None, type=["null", "array"], uniqueItems=True, title="Sensor groups",
                        description="Only these sensor groups; leave empty for all of them.",
                        **pick),
        "force_retrain": Param(False, type=["null", "boolean"], title="Force retrain",
                               description="Train new model versions even if the current "
                                           "ones are still fresh."),
        "partition_date": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                                title="Data day (YYYY-MM-DD)",
                                description="Score this day, e.g. 2026-11-08, instead of the "
                                            "day before the run's date. Leave empty normally."),
    }


def nightly_dag(dag_id: str = "tsad_nightly") -> DAG:
    """Build the nightly DAG. ``dags/tsad_nightly.py`` calls this; the definition lives in the
    package so a pip-installed tsad needs only that one line in the DAGs folder.

    The deployment settings are read from the environment here, at every parse, not at import:
    ``TSAD_TRAIN_QUEUE`` / ``TSAD_TRAIN_POOL`` (default ``gpu``), ``TSAD_TRAIN_EXECUTOR_CONFIG``
    (the KubernetesExecutor's pod_override for training), ``TSAD_SCHEDULE`` and
    ``TSAD_SCHEDULE_TIMEZONE``, ``TSAD_TASK_RETRIES`` and ``TSAD_TASK_RETRY_DELAY`` (seconds),
    ``TSAD_OWNER`` (default ``tsad``). The config file ($TSAD_CONFIG) is read for the group
    names of the trigger form."""
    train_queue = os.environ.get("TSAD_TRAIN_QUEUE", "gpu")
    train_pool = os.environ.get("TSAD_TRAIN_POOL", "gpu")
    train_executor = train_executor_config()  # None unless the variable is set
    schedule = os.environ.get("TSAD_SCHEDULE", "30 1 * * *")
    timezone = os.environ.get("TSAD_SCHEDULE_TIMEZONE", "UTC")
    retries = int(os.environ.get("TSAD_TASK_RETRIES", "2"))
    retry_delay = timedelta(seconds=float(os.environ.get("TSAD_TASK_RETRY_DELAY", "300")))
    owner = os.environ.get("TSAD_OWNER", "").strip() or "tsad"
    groups, unreadable = configured_groups()
    doc = DAG_DOC if groups else (DAG_DOC + f"\n**The config could not be read when this DAG "
                                  f"was parsed** ({unreadable}); the run will fail until it can.")

    @dag(
        dag_id=dag_id,
        schedule=CronTriggerTimetable(schedule, timezone=timezone, interval=timedelta(days=1)),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=4,
        default_args={"owner": owner, "retries": retries, "retry_delay": retry_delay,
                      "execution_timeout": timedelta(hours=2),
                      "on_failure_callback": failure_notifiers()},
        params=run_params(groups),
        tags=["tsad", "anomaly-detection"],
        doc_md=doc,
    )
    def tsad_nightly() -> None:
        @task(doc_md=TASK_DOCS["db_upgrade"])
        def db_upgrade() -> dict:
            from tsad.airflow_layer import tasks

            return tasks.db_upgrade(get_current_context())

        @task(doc_md=TASK_DOCS["list_groups"])
        def list_groups() -> list[str]:
            from tsad.airflow_layer import tasks

            return tasks.list_groups(get_current_context())

        @task(doc_md=TASK_DOCS["list_units"])
        def list_units(groups: list[str]) -> list[dict]:
            from tsad.airflow_layer import tasks

            return tasks.list_units(groups, get_current_context())

        @task_group(group_id="sensor_group")
        def per_group(groups: list[str], units: list[dict]) -> None:
            @task(map_index_template=LABEL, doc_md=TASK_DOCS["extract"])
            def extract(group: str) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.extract(group, labelled(group))

            @task(queue=train_queue, pool=train_pool, executor_config=train_executor,
                  map_index_template=LABEL, trigger_rule=AFTER_ALL,
                  doc_md=TASK_DOCS["ensure_model"])
            def ensure_model(group: str, shard: int | None) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.ensure_model(group, shard, labelled(group, shard))

            @task(map_index_template=LABEL, trigger_rule=AFTER_ALL, doc_md=TASK_DOCS["score"])
            def score(model: dict) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.score(model, labelled(model["group"], model["shard"]))

            @task(map_index_template=LABEL, outlets=[RECORDS], trigger_rule=AFTER_ALL,
                  doc_md=TASK_DOCS["detect"])
            def detect(group: str) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.detect(group, labelled(group))

            @task(map_index_template=LABEL, trigger_rule=AFTER_ALL, doc_md=TASK_DOCS["alert"])
            def alert(group: str) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.alert(group, labelled(group))

            @task(trigger_rule=TriggerRule.NONE_FAILED, doc_md=TASK_DOCS["outcome"])
            def outcome() -> None:
                """Fails (upstream_failed) when any group's task failed: the tasks above run
                ``all_done`` and a failed group's later tasks skip, so without this leaf a run
                with a failed group would end green."""

            extracted = extract.expand(group=groups)
            models = ensure_model.expand_kwargs(units)
            extracted >> models
            scored = score.expand(model=models)  # one per unit whose model is ready
            written = detect.expand(group=groups)
            scored >> written
            alerted = alert.expand(group=groups)
            written >> alerted
            [extracted, models, scored, written, alerted] >> outcome()

        groups = list_groups()
        db_upgrade() >> groups
        per_group(groups, list_units(groups))

    return tsad_nightly()
