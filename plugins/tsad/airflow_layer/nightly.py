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
backfills from the UI or ``airflow backfill create`` are safe. This file imports neither torch
nor pandas (nor Kubernetes, unless $TSAD_TRAIN_EXECUTOR_CONFIG is set): the scheduler parses it
often.
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

LABEL = "{{ sensor_group }}"  # names each mapped task instance after its group (or unit) in the UI
AFTER_ALL = TriggerRule.ALL_DONE  # a failed group or unit must not stop the others


def labelled(group: str, shard: int | None = None) -> dict:
    """The task's context, carrying the name (``pumps``, ``pumps/s01``) that
    ``map_index_template`` shows."""
    from tsad.config.shards import unit_label

    context = get_current_context()
    context["sensor_group"] = unit_label(group, shard)  # type: ignore[typeddict-unknown-key]
    return context


def nightly_dag(dag_id: str = "tsad_nightly") -> DAG:
    """Build the nightly DAG. ``dags/tsad_nightly.py`` calls this; the definition lives in the
    package so a pip-installed tsad needs only that one line in the DAGs folder.

    The deployment settings are read from the environment here, at every parse, not at import:
    ``TSAD_TRAIN_QUEUE`` / ``TSAD_TRAIN_POOL`` (default ``gpu``), ``TSAD_TRAIN_EXECUTOR_CONFIG``
    (the KubernetesExecutor's pod_override for training), ``TSAD_SCHEDULE`` and
    ``TSAD_SCHEDULE_TIMEZONE``, ``TSAD_TASK_RETRIES``."""
    train_queue = os.environ.get("TSAD_TRAIN_QUEUE", "gpu")
    train_pool = os.environ.get("TSAD_TRAIN_POOL", "gpu")
    train_executor = train_executor_config()  # None unless the variable is set
    schedule = os.environ.get("TSAD_SCHEDULE", "30 1 * * *")
    timezone = os.environ.get("TSAD_SCHEDULE_TIMEZONE", "UTC")
    retries = int(os.environ.get("TSAD_TASK_RETRIES", "2"))

    @dag(
        dag_id=dag_id,
        schedule=CronTriggerTimetable(schedule, timezone=timezone, interval=timedelta(days=1)),
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=4,
        default_args={"retries": retries, "retry_delay": timedelta(minutes=5),
                      "execution_timeout": timedelta(hours=2),
                      "on_failure_callback": failure_notifiers()},
        params={
            "force_retrain": Param(False, type="boolean",
                                   description="Train a new model version even if the current one is fresh."),
            "groups": Param([], type="array",
                            description="Only these sensor groups (empty: all configured groups)."),
            "partition_date": Param(None, type=["null", "string"], format="date",
                                    description="Override the data day (YYYY-MM-DD); normally derived "
                                                "from the run's data interval."),
        },
        tags=["tsad", "anomaly-detection"],
        doc_md=__doc__,
    )
    def tsad_nightly() -> None:
        @task
        def db_upgrade() -> dict:
            from tsad.airflow_layer import tasks

            return tasks.db_upgrade(get_current_context())

        @task
        def list_groups() -> list[str]:
            from tsad.airflow_layer import tasks

            return tasks.list_groups(get_current_context())

        @task
        def list_units(groups: list[str]) -> list[dict]:
            from tsad.airflow_layer import tasks

            return tasks.list_units(groups, get_current_context())

        @task_group(group_id="sensor_group")
        def per_group(groups: list[str], units: list[dict]) -> None:
            @task(map_index_template=LABEL)
            def extract(group: str) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.extract(group, labelled(group))

            @task(queue=train_queue, pool=train_pool, executor_config=train_executor,
                  map_index_template=LABEL, trigger_rule=AFTER_ALL)
            def ensure_model(group: str, shard: int | None) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.ensure_model(group, shard, labelled(group, shard))

            @task(map_index_template=LABEL, trigger_rule=AFTER_ALL)
            def score(model: dict) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.score(model, labelled(model["group"], model["shard"]))

            @task(map_index_template=LABEL, outlets=[RECORDS], trigger_rule=AFTER_ALL)
            def detect(group: str) -> dict:
                from tsad.airflow_layer import tasks
                from tsad.config import load_config

                context = labelled(group)
                result = tasks.detect(group, context)
                day = tasks.run_day(context, load_config())
                context["outlet_events"][RECORDS].extra = {"sensor_group": group,
                                                           "partition_date": day.isoformat()}
                return result

            @task(map_index_template=LABEL, trigger_rule=AFTER_ALL)
            def alert(group: str) -> dict:
                from tsad.airflow_layer import tasks

                return tasks.alert(group, labelled(group))

            @task(trigger_rule=TriggerRule.NONE_FAILED)
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
