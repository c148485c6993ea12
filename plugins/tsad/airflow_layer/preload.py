"""Import the task steps' heavy modules once per worker host, not once per task.

Under Airflow 3 every task instance is a process forked from its executor's worker (the
LocalExecutor's workers are forked from the scheduler, a Celery worker's pool from the worker's
main process). A forked process starts with its parent's modules, so what the parent imported
once, no task pays for again; what it did not, every task imports afresh: torch, pandas, pyarrow,
matplotlib and tsad's own steps cost 3-4 s of a task's start (bench/RESULTS.md, *nightly*).

``plugins/airflow_local_settings.py`` (which Airflow imports in each of its processes, from the
plugins folder it puts on ``sys.path``) calls ``preload_for_this_process``: in the processes that
fork tasks (``airflow scheduler`` with a local executor, ``airflow celery worker``) it imports
``TASK_MODULES``; everywhere else (api-server, dag-processor, triggerer, the CLI, ``dag.test()``)
nothing. ``TSAD_PRELOAD=0`` turns it off. The cost is paid once per host: a few seconds at the
scheduler's or worker's start and ~0.3-0.5 GB of memory shared copy-on-write with every task
(docs/deployment.md, *Airflow's fixed cost per task*).

It runs while Airflow itself is being imported: it reads Airflow's configuration (loaded by
then) for the executor, and imports nothing else of Airflow.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)

#: what a task of the nightly DAG imports beyond Airflow, in dependency order; torch and
#: pandas come with the model and pipeline modules
TASK_MODULES: tuple[str, ...] = (
    "numpy", "pandas", "pyarrow", "pyarrow.parquet", "pyarrow.compute", "sqlalchemy", "torch",
    "matplotlib.figure", "matplotlib.backends.backend_agg", "alembic.command",
    "alembic.runtime.migration", "alembic.script", "tsad.config", "tsad.storage.migrate",
    "tsad.ingest.extract", "tsad.model.detector", "tsad.model.registry",
    "tsad.detection.day_records", "tsad.detection.plots", "tsad.storage.records",
    "tsad.alerts", "tsad.pipeline.context", "tsad.pipeline.extracting",
    "tsad.pipeline.history", "tsad.pipeline.modelling", "tsad.pipeline.scoring",
    "tsad.pipeline.recording", "tsad.pipeline.alerting", "tsad.pipeline.nightly",
)

#: executors whose tasks are forked from the scheduler process
LOCAL_EXECUTORS = ("LocalExecutor", "airflow.executors.local_executor.LocalExecutor")


def forks_tasks(argv: Sequence[str], environ: Mapping[str, str], executor: str) -> bool:
    """Whether the Airflow process started with ``argv`` forks task processes: a Celery worker,
    or a scheduler whose ``executor`` (``[core] executor``, a comma-separated list) is local.
    ``TSAD_PRELOAD=0`` in ``environ`` says no to both."""
    if environ.get("TSAD_PRELOAD", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    program = argv[0].replace(os.sep, "/") if argv else ""
    words = ["airflow" if program.endswith("airflow/__main__.py") else
             os.path.basename(program), *argv[1:3]]
    if words[0] != "airflow":
        return False
    if words[1:3] == ["celery", "worker"]:
        return True
    # a list of executors, each maybe "alias:module.Class"
    local = any(name.split(":")[-1].strip() in LOCAL_EXECUTORS for name in executor.split(","))
    return words[1:2] == ["scheduler"] and local


def preload(modules: Sequence[str] = TASK_MODULES) -> dict[str, float]:
    """Import ``modules``; returns seconds per module. A module that fails to import is logged
    and skipped: the task that needs it reports the error itself, with its context."""
    took: dict[str, float] = {}
    for name in modules:
        start = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - never stop Airflow from starting
            log.warning("tsad preload: could not import %s (%s); tasks import it themselves",
                        name, exc)
            continue
        took[name] = time.perf_counter() - start
    return took


def configured_executor() -> str:
    """``[core] executor`` as Airflow's configuration has it (file or environment)."""
    try:
        from airflow.configuration import conf

        return str(conf.get("core", "executor", fallback="LocalExecutor"))
    except Exception:  # noqa: BLE001 - configuration unreadable: Airflow itself will say so
        return os.environ.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")


def preload_for_this_process() -> None:
    """``preload`` when this process forks tasks (``forks_tasks``), else nothing."""
    if not forks_tasks(sys.argv, os.environ, configured_executor()):
        return
    took = preload()
    log.info("tsad preload: %d modules in %.1f s, shared with every task this process forks",
             len(took), sum(took.values()))
