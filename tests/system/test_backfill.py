"""A backfill as users start it: Airflow's "Run Backfill" form, run by a real scheduler.

The deployment in one temp folder: the api-server (the REST API the form calls, and the execution
API tasks report to), a scheduler with the LocalExecutor, and a dag-processor, on SQLite. The
backfill is created with the form's request (``POST /api/v2/backfills`` with the DAG's param
defaults as ``dag_run_conf``, one active run), over the window the Anomalies page's backfill hint
gives for two data days of a small simulated plant. It must write exactly what the nightly
runs write: the same days are run with ``tsad.pipeline.run_day`` (what ``tsad run`` does) into a
separate folder from the same historian, and the events, points and run statuses must agree.
Then the same range again, with the ``airflow backfill create`` command the hint prints
(reprocessing completed runs), must leave the event and point tables unchanged and add run rows
only.

Skip with ``TSAD_SKIP_BACKFILL=1``. About 3 minutes on two idle cores: each task is a process
of its own that imports tsad, pandas and torch again (2-4 s here), 13 tasks a run.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import REPO, small_plant
from procs import Processes, free_port, http_ok, wait_for
from tsad.airflow_layer.demo import airflow_environment
from tsad.airflow_layer.ui.backfill import backfill_command, backfill_window
from tsad.dates import data_day

pytestmark = pytest.mark.skipif(os.environ.get("TSAD_SKIP_BACKFILL") == "1",
                                reason="TSAD_SKIP_BACKFILL=1")

DAG_ID = "tsad_nightly"
SIM_START = date(2026, 3, 2)  # three training days before the first backfilled day
DAYS = [date(2026, 3, 5), date(2026, 3, 6)]  # the first trains, the second reuses its model
ANOMALY_DAY = DAYS[1]
GROUPS = ("pumps", "boiler")
UI_CONF = {"force_retrain": False, "groups": [], "partition_date": None}  # the params' defaults
BACKFILL_TIMEOUT_S = 300


def _api(base: str, path: str, body: dict | None = None) -> Any:
    """One REST call (``simple_auth_manager_all_admins`` lets it through without a token)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/api/v2{path}", data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{request.method} {path}: {exc.code} {exc.read()[:2000]!r}") from None


def _backfill_done(base: str, backfill_id: int | None = None) -> list[dict] | None:
    """The backfill runs once all have finished, else None. With ``backfill_id``: wait as well
    for the scheduler to mark that backfill complete (it checks every 30 s), as a new backfill
    of the DAG needs."""
    try:
        runs = _api(base, f"/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        if not all(r["state"] in ("success", "failed") for r in runs):
            return None
        if backfill_id is not None and not _api(base, f"/backfills/{backfill_id}")["completed_at"]:
            return None
    except OSError:  # the api-server is busy: ask again on the next poll
        return None
    return runs


def _airflow_env(home: Path, config_file: Path, api_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TSAD_"))}
    env.update(airflow_environment(REPO, home))
    env.update({
        "TSAD_CONFIG": str(config_file),
        "TSAD_THREADS": "1",  # as in this process: the same floats from the same model
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the backfills' runs
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    })
    return env


def _plant(root: Path, historian: str) -> Path:
    """A config whose records, extracts and models live under ``root``, reading ``historian``."""
    plant = small_plant(root)
    for group in plant["groups"]:
        group["source"]["url"] = historian
        group["model"] = {**group["model"], "epochs": 3}
    root.mkdir(parents=True, exist_ok=True)
    file = root / "tsad.yaml"
    file.write_text(yaml.safe_dump(plant))
    return file


def _table(url: str, table: str, order: tuple[str, ...]) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            t = sa.Table(table, sa.MetaData(), autoload_with=conn)
            rows = conn.execute(sa.select(t).order_by(*(t.c[c] for c in order))).mappings()
            return [dict(r) for r in rows]
    finally:
        engine.dispose()


def _records(url: str) -> dict[str, list[dict]]:
    """The event and point tables, without the generated ids, in a stable order."""
    drop = {"id", "detection_run_id"}
    events = _table(url, "anomaly_event", ("sensor_group", "partition_date", "start_ts"))
    points = _table(url, "anomaly_point", ("sensor_group", "partition_date", "channel", "ts"))
    return {"events": [{k: v for k, v in e.items() if k not in drop} for e in events],
            "points": [{k: v for k, v in p.items() if k not in drop} for p in points]}


def _current_runs(url: str) -> dict[tuple[str, str], str]:
    """(group, day) -> status of its current run (``v_daily_group_summary``: one row each)."""
    rows = _table(url, "v_daily_group_summary", ("sensor_group", "partition_date"))
    keys = [(r["sensor_group"], str(r["partition_date"])) for r in rows]
    assert len(keys) == len(set(keys)), f"more than one current run per (group, day): {keys}"
    return {(r["sensor_group"], str(r["partition_date"])): r["status"] for r in rows}


def _comparable_event(e: dict) -> dict:
    """An event without what differs between two folders (its plot file and floats' last bits)."""
    kept = {k: v for k, v in e.items() if k not in ("plot_path", "peak_score", "threshold",
                                                   "severity", "top_channels_json")}
    channels = [c["channel"] for c in e["top_channels_json"]]
    return {**kept, "channels": channels}


def _same_records(backfilled: dict[str, list[dict]], nightly: dict[str, list[dict]]) -> None:
    got, want = backfilled["events"], nightly["events"]
    assert [_comparable_event(e) for e in got] == [_comparable_event(e) for e in want]
    for g, w in zip(got, want, strict=True):
        for key in ("peak_score", "threshold", "severity"):
            assert g[key] == pytest.approx(w[key], rel=1e-5), (key, g, w)
        assert [c["contribution"] for c in g["top_channels_json"]] == pytest.approx(
            [c["contribution"] for c in w["top_channels_json"]], rel=1e-5, abs=1e-7)
    key = ("sensor_group", "partition_date", "channel", "ts", "model_version_id")
    assert [tuple(p[k] for k in key) for p in backfilled["points"]] == \
        [tuple(p[k] for k in key) for p in nightly["points"]]
    for column in ("score", "threshold", "severity", "contribution"):
        assert [p[column] for p in backfilled["points"]] == pytest.approx(
            [p[column] for p in nightly["points"]], rel=1e-5, abs=1e-7), column


def _create_backfill(base: str, reprocess: str) -> int:
    """What the "Run Backfill" form posts for the hint's window (Airflow 3.3's UI)."""
    since, until = backfill_window(DAYS[0], DAYS[-1], "UTC")
    body = {"dag_id": DAG_ID, "from_date": since.isoformat(), "to_date": until.isoformat(),
            "dag_run_conf": UI_CONF, "reprocess_behavior": reprocess, "max_active_runs": 1,
            "run_backwards": False, "run_on_latest_version": True}
    planned = _api(base, "/backfills/dry_run", body)["backfills"]
    assert [datetime.fromisoformat(p["logical_date"]).date() for p in planned] == DAYS, planned
    return int(_api(base, "/backfills", body)["id"])


def test_backfill_from_the_ui_writes_what_nightly_runs_write_and_reruns_change_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate
    from tsad.pipeline import run_day
    from tsad.storage.engine import dispose_all

    monkeypatch.setenv("TSAD_THREADS", "1")
    airflow = str(Path(sys.executable).with_name("airflow"))
    historian = f"sqlite:///{tmp_path}/historian.db"
    config_file = _plant(tmp_path / "backfill", historian)
    nightly_file = _plant(tmp_path / "nightly", historian)
    home = tmp_path / "airflow"
    home.mkdir()
    api_port = free_port()
    env = _airflow_env(home, config_file, api_port)
    base = f"http://127.0.0.1:{api_port}"
    procs = Processes(tmp_path / "logs")
    try:
        migrated = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True,
                                  text=True)
        assert migrated.returncode == 0, migrated.stdout[-2000:] + migrated.stderr[-2000:]
        procs.start("api-server", [airflow, "api-server"], env)
        procs.start("scheduler", [airflow, "scheduler"], env)
        procs.start("dag-processor", [airflow, "dag-processor"], env)

        # While Airflow starts: the plant, and the nightly runs of the same days in this process.
        config = load_config(config_file)
        injected = simulate(config, SIM_START, (DAYS[-1] - SIM_START).days + 1, [ANOMALY_DAY],
                            seed=3)
        assert injected
        nightly = load_config(nightly_file)
        for day in DAYS:
            run_day(nightly, day)
        dispose_all()
        want = _records(nightly.database.url)
        want_runs = _current_runs(nightly.database.url)
        assert set(want_runs) == {(g, str(d)) for g in GROUPS for d in DAYS}
        assert any(e["partition_date"] == ANOMALY_DAY for e in want["events"]), want["events"]

        wait_for("the api-server", lambda: http_ok(f"{base}/api/v2/monitor/health"), 120, procs)
        _api(base, "/pools", {"name": "gpu", "slots": 1, "description": "training"})
        wait_for(f"the dag-processor to register {DAG_ID}",
                 lambda: http_ok(f"{base}/api/v2/dags/{DAG_ID}"), 120, procs)

        first = _create_backfill(base, "none")
        runs = wait_for("the backfill to finish", lambda: _backfill_done(base, first),
                        BACKFILL_TIMEOUT_S, procs, interval=2)
        assert sorted(r["state"] for r in runs) == ["success"] * len(DAYS), procs.tails()
        # each run covers its data day: the interval starts on it and lasts a day
        intervals = sorted((datetime.fromisoformat(r["data_interval_start"]),
                            datetime.fromisoformat(r["data_interval_end"])) for r in runs)
        assert [data_day(s, e, "UTC") for s, e in intervals] == DAYS
        assert all(e - s == timedelta(days=1) for s, e in intervals)

        db = config.database.url
        got = _records(db)
        _same_records(got, want)
        assert _current_runs(db) == want_runs
        history = _table(db, "detection_run", ("id",))
        assert len(history) == len(GROUPS) * len(DAYS)
        assert {r["run_id"] for r in history} == {r["dag_run_id"] for r in runs}

        # The same range again, with the command the hint prints, re-running the completed runs:
        # nothing changes but the run history.
        command = shlex.split(backfill_command(DAYS[0], DAYS[-1], DAG_ID, "UTC"))
        created = subprocess.run([airflow, *command[1:]], env=env, capture_output=True, text=True)
        assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
        rerun = wait_for("the re-run backfill to finish", lambda: _backfill_done(base),
                         BACKFILL_TIMEOUT_S, procs, interval=2)
        assert sorted(r["state"] for r in rerun) == ["success"] * len(DAYS), procs.tails()
        assert {r["dag_run_id"] for r in rerun} == {r["dag_run_id"] for r in runs}  # cleared
        assert _records(db) == got  # identical content, not merely close
        assert _current_runs(db) == want_runs
        after = _table(db, "detection_run", ("id",))
        assert after[:len(history)] == history  # the first runs' rows are kept as they were
        added = after[len(history):]
        assert sorted((r["sensor_group"], r["partition_date"]) for r in added) == \
            sorted((r["sensor_group"], r["partition_date"]) for r in history)
        assert len(list(Path(config.models_dir).glob("*/v0002"))) == 0  # no retraining
    finally:
        procs.stop_all()
