"""tsad's nightly anomaly detection: one run per data day, one chain of tasks per sensor group.

db_upgrade (the records database's migrations, a no-op when current), then extract ->
ensure_model (queue/pool ``gpu``) -> detect -> alert, mapped over the configured sensor groups.
The run covers the previous day (an explicit daily timetable, not ``@daily``, whose data interval
is empty in Airflow 3). Every task is idempotent per (group, day), so re-runs and
backfills from the UI or ``airflow backfill create`` are safe. This file imports neither torch
nor pandas: the scheduler parses it often.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import (
    Asset,
    CronTriggerTimetable,
    Param,
    dag,
    get_current_context,
    task,
    task_group,
)

from tsad.airflow_layer.notifiers import failure_notifiers

TRAIN_QUEUE = os.environ.get("TSAD_TRAIN_QUEUE", "gpu")
TRAIN_POOL = os.environ.get("TSAD_TRAIN_POOL", "gpu")
SCHEDULE = os.environ.get("TSAD_SCHEDULE", "30 1 * * *")
TIMEZONE = os.environ.get("TSAD_SCHEDULE_TIMEZONE", "UTC")
LABEL = "{{ sensor_group }}"  # names each mapped task instance after its group in the UI
RETRIES = int(os.environ.get("TSAD_TASK_RETRIES", "2"))
#: Updated by every successful detect (extra: the partition); reporting DAGs schedule on it.
RECORDS = Asset(name="tsad_records", uri="tsad://records", group="tsad")


def labelled(group: str) -> dict:
    """The task's context, carrying the group name that ``map_index_template`` shows."""
    context = get_current_context()
    context["sensor_group"] = group  # type: ignore[typeddict-unknown-key]
    return context


@dag(
    dag_id="tsad_nightly",
    schedule=CronTriggerTimetable(SCHEDULE, timezone=TIMEZONE, interval=timedelta(days=1)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    default_args={"retries": RETRIES, "retry_delay": timedelta(minutes=5),
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

    @task_group(group_id="sensor_group")
    def per_group(group: str) -> None:
        @task(map_index_template=LABEL)
        def extract(group: str) -> dict:
            from tsad.airflow_layer import tasks

            return tasks.extract(group, labelled(group))

        @task(queue=TRAIN_QUEUE, pool=TRAIN_POOL, map_index_template=LABEL)
        def ensure_model(group: str) -> dict:
            from tsad.airflow_layer import tasks

            return tasks.ensure_model(group, labelled(group))

        @task(map_index_template=LABEL, outlets=[RECORDS])
        def detect(group: str, model: dict) -> dict:
            from tsad.airflow_layer import tasks
            from tsad.config import load_config

            context = labelled(group)
            result = tasks.detect(group, model, context)
            day = tasks.run_day(context, load_config())
            context["outlet_events"][RECORDS].extra = {"sensor_group": group,
                                                       "partition_date": day.isoformat()}
            return result

        @task(map_index_template=LABEL)
        def alert(group: str) -> dict:
            from tsad.airflow_layer import tasks

            return tasks.alert(group, labelled(group))

        extracted = extract(group)
        model = ensure_model(group)
        extracted >> model
        detected = detect(group, model)
        detected >> alert(group)

    groups = list_groups()
    db_upgrade() >> groups
    per_group.expand(group=groups)


tsad_nightly()
