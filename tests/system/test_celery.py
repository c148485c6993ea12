"""The nightly DAG on the CeleryExecutor: a real Redis, a real scheduler and two real Celery workers.

The production layout (``docker/docker-compose.yml``) in one temp folder: Redis as the broker, the
api-server (which tasks call through the execution API), scheduler and dag-processor, a Celery
worker on queue ``default`` and one on queue ``gpu``. One data day of a small simulated plant is
triggered through the REST API; the task instances must show that ``sensor_group.ensure_model``
ran on the ``gpu`` worker (queue ``gpu``, pool ``gpu``) and every other task on the default one.

Needs Debian's ``redis-server`` (installed here when missing and running as root) and the
``apache-airflow-providers-celery`` of the ``airflow`` extra. Skip with ``TSAD_SKIP_CELERY=1``.
Airflow's metadata database is SQLite: Airflow 3 has no executor check against it, and Celery
workers never touch it (they talk to the api-server), so only the scheduler, dag-processor and
api-server share the file, as in ``airflow standalone``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import REPO, small_plant
from procs import Processes, ensure_debian_package, free_port, http_ok, wait_for

from tsad.airflow_layer.demo import airflow_environment

pytestmark = pytest.mark.skipif(os.environ.get("TSAD_SKIP_CELERY") == "1",
                                reason="TSAD_SKIP_CELERY=1")

DAY = date(2026, 3, 5)  # the data day; its run is the 01:30 UTC tick of the next day
LOGICAL_DATE = "2026-03-06T01:30:00Z"
RUN_ID = "celery_test"
WORKERS = {"default": "default-worker", "gpu": "gpu-worker"}  # queue -> worker hostname
RUN_TIMEOUT_S = 240


def _redis_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _api(base: str, path: str, body: dict | None = None) -> Any:
    """One REST call (``simple_auth_manager_all_admins`` lets it through without a token)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/v2{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _finished_state(base: str) -> str | None:
    """The run's final state, or None while it runs (or while the api-server is busy)."""
    try:
        state = _api(base, f"/dags/tsad_nightly/dagRuns/{RUN_ID}")["state"]
    except OSError:  # URLError, timeouts: ask again on the next poll
        return None
    return state if state in ("success", "failed") else None


def _airflow_env(home: Path, config_file: Path, redis_port: int, api_port: int) -> dict[str, str]:
    """What every Airflow process of the deployment shares (as the compose file's x-airflow-env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TSAD_"))}
    env.update(airflow_environment(REPO, home))
    env.update({
        "TSAD_CONFIG": str(config_file),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run this test triggers
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    return env


def _worker_env(env: dict[str, str], hostname: str) -> dict[str, str]:
    """A worker's own name in ``task_instance.hostname``, as separate containers would have."""
    return {**env, "TSAD_TEST_HOSTNAME": hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "procs.worker_hostname",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"),
                                                        env.get("PYTHONPATH")]))}


def test_celery_routes_training_to_the_gpu_worker(tmp_path: Path) -> None:
    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate

    redis_server = ensure_debian_package("redis-server", "redis-server")
    airflow = str(Path(sys.executable).with_name("airflow"))
    config_file = tmp_path / "tsad.yaml"
    plant = small_plant(tmp_path)
    for group in plant["groups"]:  # what is tested is where tasks run: keep training short
        group["model"] = {**group["model"], "kind": "dense", "epochs": 2}
    config_file.write_text(yaml.safe_dump(plant))
    home = tmp_path / "airflow"
    home.mkdir()
    redis_port, api_port = free_port(), free_port()
    env = _airflow_env(home, config_file, redis_port, api_port)
    base = f"http://127.0.0.1:{api_port}"
    procs = Processes(tmp_path / "logs")
    try:
        procs.start("redis", [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(tmp_path)], env)
        migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True,
                                  text=True)
        assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
        procs.start("api-server", [airflow, "api-server"], env)
        procs.start("scheduler", [airflow, "scheduler"], env)
        procs.start("dag-processor", [airflow, "dag-processor"], env)
        for queue, hostname in WORKERS.items():
            procs.start(f"worker-{queue}",
                        [airflow, "celery", "worker", "--queues", queue, "--concurrency", "1",
                         "--celery-hostname", f"{hostname}@%h", "--skip-serve-logs",
                         "--without-gossip", "--without-mingle"],
                        _worker_env(env, hostname))

        config = load_config(config_file)  # simulate while the processes start
        simulate(config, date(2026, 3, 2), 4, [DAY], seed=3)

        wait_for("redis", lambda: _redis_ping(redis_port), 20, procs)
        wait_for("the api-server", lambda: http_ok(f"{base}/api/v2/monitor/health"), 90, procs)
        _api(base, "/pools", {"name": "gpu", "slots": 1, "description": "training on the GPU worker"})
        wait_for("the dag-processor to register tsad_nightly",
                 lambda: http_ok(f"{base}/api/v2/dags/tsad_nightly"), 90, procs)
        _api(base, "/dags/tsad_nightly/dagRuns",
             {"dag_run_id": RUN_ID, "logical_date": LOGICAL_DATE, "conf": {"force_retrain": True}})
        state = wait_for("the DAG run to finish", lambda: _finished_state(base), RUN_TIMEOUT_S,
                         procs, interval=2)
        tis = _api(base, f"/dags/tsad_nightly/dagRuns/{RUN_ID}/taskInstances?limit=100")
        tis = tis["task_instances"]
        summary = [(t["task_id"], t["rendered_map_index"], t["state"], t["queue"], t["hostname"])
                   for t in tis]
        assert state == "success", f"{summary}\n{procs.tails()}"

        groups = {"pumps", "boiler"}
        by_task: dict[str, list[dict]] = {}
        for t in tis:
            by_task.setdefault(t["task_id"], []).append(t)
        core = {"list_groups": 1, "sensor_group.extract": 2, "sensor_group.ensure_model": 2,
                "sensor_group.detect": 2, "sensor_group.alert": 2}
        assert {k: len(by_task.get(k, [])) for k in core} == core, summary
        assert all(t["state"] == "success" for t in tis), summary
        for t in tis:
            if t["task_id"] == "sensor_group.ensure_model":
                assert (t["queue"], t["pool"], t["hostname"]) == ("gpu", "gpu", WORKERS["gpu"]), t
            else:
                assert (t["queue"], t["hostname"]) == ("default", WORKERS["default"]), t
        assert {t["rendered_map_index"] for t in by_task["sensor_group.ensure_model"]} == groups

        # The workers' own logs agree: each received only its queue's tasks.
        gpu_log, default_log = procs.tail("worker-gpu", 10**7), procs.tail("worker-default", 10**7)
        assert gpu_log.count("task_id='sensor_group.ensure_model'") == 2, gpu_log[-3000:]
        for other in set(by_task) - {"sensor_group.ensure_model"}:
            assert f"task_id='{other}'" not in gpu_log
            assert f"task_id='{other}'" in default_log
        assert "task_id='sensor_group.ensure_model'" not in default_log

        # And the work happened: a model per group, a detection run per group for the day.
        assert {p.parent.name for p in Path(config.models_dir).glob("*/v0001")} == groups
        engine = sa.create_engine(config.database.url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT sensor_group, partition_date, run_id FROM detection_run")).all()
        engine.dispose()
        assert {(r[0], str(r[1]), r[2]) for r in rows} == {(g, str(DAY), RUN_ID) for g in groups}
    finally:
        procs.stop_all()
