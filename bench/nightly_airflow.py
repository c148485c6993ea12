"""The nightly DAG once under a real scheduler and the LocalExecutor, as production runs it.

Started the way ``tests/system/test_backfill.py`` starts it (``tests/procs.py``): an api-server,
a scheduler with the LocalExecutor and a dag-processor, on SQLite, with ``TSAD_CONFIG`` pointing
at a plant whose models night 1 trained. One run is triggered through the REST API for the
scored day (``partition_date``); each task instance's wall time (Airflow's start/end) is held
against the same step's own time for the same group in night 2 (models loaded): the difference
is Airflow's overhead per task. The fixed cost of a task process's imports is measured apart, in
fresh processes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "tsad_nightly"
#: Airflow's task -> the bench's step (night 2's timing of the same group).
STEP_OF = {"extract": "extract", "ensure_model": "load", "score": "score", "detect": "records",
           "alert": "alert"}
IMPORTS = {
    "python itself": "pass",
    "airflow.sdk": "import airflow.sdk",
    "+ tsad.airflow_layer.tasks": "import airflow.sdk, tsad.airflow_layer.tasks",
    "+ the score step (torch, pandas, pyarrow)":
        "import airflow.sdk, tsad.airflow_layer.tasks, tsad.pipeline.scoring, "
        "tsad.pipeline.modelling",
}


def import_costs() -> dict[str, float]:
    """Seconds a fresh process takes for each import line (median of 3)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    costs = {}
    for label, code in IMPORTS.items():
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            runs.append(time.perf_counter() - t)
        costs[label] = sorted(runs)[1]
    return costs


def _api(base: str, path: str, body: dict | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/v2{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _env(home: Path, config_file: str, port: int, preload: bool) -> dict[str, str]:
    from tsad.airflow_layer.demo import airflow_environment

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TSAD_"))}
    env.update(airflow_environment(REPO, home))
    env.update({
        "PYTHONPATH": str(REPO / "plugins"), "TSAD_CONFIG": config_file,
        "TSAD_PRELOAD": "1" if preload else "0",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1", "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
    })
    return env


def _seconds(ti: dict[str, Any]) -> float:
    start, end = (datetime.fromisoformat(ti[k].replace("Z", "+00:00"))
                  for k in ("start_date", "end_date"))
    return (end - start).total_seconds()


def airflow_run(plant: dict[str, Any], day: date, home: Path,
                preload: bool = True) -> dict[str, Any]:
    """One DAG run of the plant's day, the scheduler preloading the tasks' modules or not
    (``tsad.airflow_layer.preload``); prints the overhead rows and returns them."""
    sys.path.insert(0, str(REPO / "tests"))
    from procs import Processes, free_port, http_ok, wait_for

    label = (f"{plant['groups']} groups x {plant['channels']} ch, preload "
             f"{'on' if preload else 'off'}")
    costs = import_costs()
    for what, seconds in costs.items():
        print(f"task process imports | {what}: {seconds:.2f} s (fresh process)", flush=True)
    home.mkdir(parents=True, exist_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    port = free_port()
    env = _env(home, plant["config"], port, preload)
    base = f"http://127.0.0.1:{port}"
    procs = Processes(home / "logs")
    try:
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        for name in ("api-server", "scheduler", "dag-processor"):
            procs.start(name, [airflow, name], env)
        wait_for("the api-server", lambda: http_ok(f"{base}/api/v2/monitor/health"), 180, procs)
        _api(base, "/pools", {"name": "gpu", "slots": 1, "description": "training"})
        wait_for(f"{DAG_ID} to be parsed", lambda: http_ok(f"{base}/api/v2/dags/{DAG_ID}"),
                 180, procs)
        run_id = _api(base, f"/dags/{DAG_ID}/dagRuns", {
            "logical_date": None, "conf": {"partition_date": day.isoformat()}})["dag_run_id"]
        run_path = f"/dags/{DAG_ID}/dagRuns/{run_id}"

        def finished() -> dict | None:
            try:
                got = _api(base, run_path)
            except OSError:
                return None
            return got if got["state"] in ("success", "failed") else None

        t = time.perf_counter()
        dag_run = wait_for("the DAG run", finished, 3600, procs, interval=2)
        waited = time.perf_counter() - t
        tis = _api(base, f"{run_path}/taskInstances?limit=1000")["task_instances"]
    finally:
        procs.stop_all()
    assert isinstance(dag_run, dict)
    night2 = plant["models loaded"]["per_group"]
    rows: list[dict[str, Any]] = []
    for ti in tis:
        task = ti["task_id"].split(".")[-1]
        group = ti.get("rendered_map_index") or ""
        own = night2.get(group, {}).get(STEP_OF.get(task, ""), 0.0)
        rows.append({"task": task, "group": group, "state": ti["state"],
                     "wall_s": _seconds(ti), "own_s": own})
    per_task: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_task.setdefault(row["task"], []).append(row)
    print(f"Airflow ({label}, LocalExecutor, parallelism 2): run {dag_run['state']} in "
          f"{_seconds(dag_run):.1f} s (start to end; {waited:.0f} s from the trigger), "
          f"{len(rows)} task instances = {len(STEP_OF)} per group-day x {plant['groups']} + "
          f"{len(rows) - len(STEP_OF) * plant['groups']} per run; in-process night 2: "
          f"{plant['models loaded']['seconds']:.1f} s", flush=True)
    for task, items in per_task.items():
        wall = sum(r["wall_s"] for r in items) / len(items)
        own = sum(r["own_s"] for r in items) / len(items)
        print(f"Airflow task {task} (x{len(items)}): wall {wall:.2f} s, step's own {own:.2f} s, "
              f"overhead {wall - own:.2f} s per task", flush=True)
    overhead = sum(r["wall_s"] - r["own_s"] for r in rows)
    print(f"Airflow overhead: {overhead:.1f} s of task time in all, "
          f"{overhead / plant['groups']:.1f} s per group-day (per-run tasks included)",
          flush=True)
    return {"state": dag_run["state"], "run_seconds": _seconds(dag_run), "tasks": rows,
            "imports": costs, "overhead_s": overhead}
