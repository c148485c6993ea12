"""The processes that fork tasks preload the steps' modules; no other Airflow process does.

The decision is checked as a function, then for real: a Python process that imports Airflow
the way ``airflow scheduler`` / ``airflow dag-processor`` start (Airflow imports
``plugins/airflow_local_settings.py`` itself, from the plugins folder) has torch and the
pipeline loaded, or not. ``bench/nightly.py --airflow-preload both`` measures what it saves.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tsad.airflow_layer.preload import forks_tasks, preload

from conftest import REPO  # noqa: E402

LOCAL, CELERY, OFF = "LocalExecutor", "CeleryExecutor", {"TSAD_PRELOAD": "0"}


@pytest.mark.parametrize(("argv", "executor", "environ", "expected"), [
    (["/usr/bin/airflow", "scheduler"], LOCAL, {}, True),
    (["/usr/bin/airflow", "scheduler"], "CeleryExecutor,LocalExecutor", {}, True),  # multi
    (["/usr/bin/airflow", "scheduler"],
     "CeleryExecutor,fast:airflow.executors.local_executor.LocalExecutor", {}, True),  # alias
    ([f"{Path(sys.prefix)}/lib/airflow/__main__.py", "scheduler"], LOCAL, {}, True),  # python -m
    (["/usr/bin/airflow", "scheduler"], CELERY, {}, False),  # Celery tasks run on the workers
    (["/usr/bin/airflow", "celery", "worker", "--queues", "gpu"], CELERY, {}, True),
    (["/usr/bin/airflow", "celery", "flower"], CELERY, {}, False),
    (["/usr/bin/airflow", "dag-processor"], LOCAL, {}, False),
    (["/usr/bin/airflow", "api-server"], LOCAL, {}, False),
    (["/usr/bin/airflow", "triggerer"], LOCAL, {}, False),
    (["/usr/bin/airflow", "scheduler"], LOCAL, OFF, False),
    (["/usr/bin/airflow", "celery", "worker"], CELERY, {"TSAD_PRELOAD": "off"}, False),
    (["/x/bin/pytest", "tests"], LOCAL, {}, False),  # dag.test() in a test process
])
def test_only_the_processes_that_fork_tasks_preload(argv: list[str], executor: str,
                                                    environ: dict[str, str],
                                                    expected: bool) -> None:
    assert forks_tasks(argv, environ, executor) is expected


def test_a_module_that_fails_to_import_is_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tsad.airflow_layer.preload"):
        took = preload(["json", "tsad_no_such_module"])
    assert list(took) == ["json"]
    assert "could not import tsad_no_such_module" in caplog.text


def _airflow_imported_as(command: str, tmp_path: Path, **env: str) -> list[str]:
    """The heavy modules loaded once Airflow is imported by a process started as ``airflow
    <command>`` with this checkout's plugins folder (the only path Airflow is given) and the
    executor in its ``airflow.cfg``."""
    code = (f"import sys; sys.argv = ['/usr/bin/airflow', {command!r}]; import airflow; "
            "print(' '.join(m for m in ('torch', 'pandas', 'tsad.pipeline.scoring') "
            "if m in sys.modules))")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AIRFLOW", "TSAD_", "PYTHONPATH"))}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**clean, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
             "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
             **env})
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.split()


def test_the_scheduler_starts_with_the_steps_loaded_and_the_dag_processor_without(
        tmp_path: Path) -> None:
    (tmp_path / "airflow.cfg").write_text("[core]\nexecutor = LocalExecutor\n")
    assert _airflow_imported_as("scheduler", tmp_path) == ["torch", "pandas",
                                                           "tsad.pipeline.scoring"]
    assert _airflow_imported_as("dag-processor", tmp_path) == []
    assert _airflow_imported_as("scheduler", tmp_path, TSAD_PRELOAD="0") == []
    (tmp_path / "airflow.cfg").write_text("[core]\nexecutor = CeleryExecutor\n")
    assert _airflow_imported_as("scheduler", tmp_path) == []  # its tasks run on the workers
