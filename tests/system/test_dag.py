"""The real DAG: it imports cleanly, stays light at parse time, and runs end to end in Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import REPO  # noqa: E402


def test_dagbag_imports_without_errors() -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["tsad_nightly"]
    ids = set(dag.task_ids)
    assert {"list_groups", "list_units", "sensor_group.extract", "sensor_group.ensure_model",
            "sensor_group.score", "sensor_group.detect", "sensor_group.alert",
            "sensor_group.outcome"} <= ids
    train = dag.get_task("sensor_group.ensure_model")
    assert (train.queue, train.pool) == ("gpu", "gpu")
    assert not train.executor_config  # TSAD_TRAIN_EXECUTOR_CONFIG unset (test_shards sets it)
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"  # not @daily: a real interval
    assert set(dag.params.keys()) >= {"force_retrain", "groups", "partition_date"}


def test_dag_speaks_to_operators_and_its_trigger_form_is_optional(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tsad.config import load_config

    bag = DagBag(dag_folder=str(REPO / "dags"))
    dag = bag.dags["tsad_nightly"]
    assert "Failures and retries" in dag.doc_md and "``" not in dag.doc_md
    for task in dag.tasks:  # every task explains itself and what its failure means
        assert "If it fails" in (task.doc_md or "") or task.task_id.endswith("outcome"), task
        assert task.doc_md, task.task_id
        assert task.owner == "tsad"
    schema = {name: dag.params.get_param(name).schema for name in dag.params}
    for name, field in schema.items():  # the UI marks a field required unless null is allowed
        assert "null" in field["type"], (name, field)
        assert field.get("format") != "date", name  # the picker shows the browser's mm/dd/yyyy
    configured = [g.name for g in load_config().groups]
    assert schema["groups"]["items"]["enum"] == configured  # a pick list, not free text
    assert schema["groups"]["examples"] == configured  # what the UI's multi-select offers
    assert "YYYY-MM-DD" in schema["partition_date"]["title"]

    from tsad.airflow_layer.nightly import nightly_dag

    monkeypatch.setenv("TSAD_OWNER", "plant-data-team")
    assert {t.owner for t in nightly_dag("tsad_owner_check").tasks} == {"plant-data-team"}
    monkeypatch.setenv("TSAD_CONFIG", "/nowhere/tsad.yaml")  # the DAG still parses ...
    unreadable = nightly_dag("tsad_unreadable_config")
    assert "could not be read" in unreadable.doc_md  # ... and says why its runs will fail
    assert "enum" not in unreadable.params.get_param("groups").schema["items"]


@pytest.mark.parametrize("path", ["dags/tsad_nightly.py", "plugins/tsad/airflow_layer/tasks.py"])
def test_parse_time_imports_no_torch_or_pandas(path: str) -> None:
    code = (f"import runpy, sys; runpy.run_path({str(REPO / path)!r}); "
            "heavy = [m for m in ('torch', 'pandas') if m in sys.modules]; "
            "sys.exit(f'imported at module level: {heavy}' if heavy else 0)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def _last_run_duration() -> timedelta:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == "tsad_nightly") \
            .order_by(DagRun.id.desc()).first()
        return run.end_date - run.start_date


def _rows(db_url: str, table: str) -> list[tuple]:
    engine = sa.create_engine(db_url)
    drop = {"id", "detection_run_id"}
    with engine.connect() as conn:
        t = sa.Table(table, sa.MetaData(), autoload_with=conn)
        cols = [c for c in t.c if c.name not in drop]
        rows = conn.execute(sa.select(*cols).order_by(*cols)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_dag_test_runs_the_nightly_pipeline_and_reruns_identically(
        airflow_ready: Path, plant_config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsad.airflow_layer.demo import run_dag_for_day
    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate

    monkeypatch.setenv("TSAD_CONFIG", str(plant_config_file))
    config = load_config(plant_config_file)
    day = date(2026, 3, 5)
    injected = simulate(config, date(2026, 3, 2), 4, [day], seed=3)
    assert injected

    assert run_dag_for_day(day, {"force_retrain": True}) == "success"
    assert _last_run_duration() < timedelta(minutes=10)  # not "since the logical date"
    db = config.database.url
    first = {t: _rows(db, t) for t in ("anomaly_event", "anomaly_point")}
    runs = _rows(db, "detection_run")
    assert {r[2] for r in runs} == {"pumps", "boiler"}  # one run row per group
    assert len(first["anomaly_event"]) >= 1
    assert len(list(Path(config.models_dir).glob("*/v0001"))) == 2

    assert run_dag_for_day(day) == "success"  # re-run: loads the model, replaces the partition
    second = {t: _rows(db, t) for t in ("anomaly_event", "anomaly_point")}
    assert second == first
    assert len(_rows(db, "detection_run")) == 2 * len(runs)  # run history is kept
    assert len(list(Path(config.models_dir).glob("*/v0002"))) == 0  # no retrain on a re-run


def _tries(run_id: str) -> dict[tuple[str, str], tuple[str, int]]:
    """``(task_id, rendered map index) -> (state, try_number)`` of a run, from Airflow's DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == "tsad_nightly",
                                                 TaskInstance.run_id == run_id).all()
        return {(t.task_id, t.rendered_map_index or str(t.map_index)): (str(t.state), t.try_number)
                for t in tis}


def test_permanent_errors_fail_at_once_and_transient_ones_are_retried(
        airflow_ready: Path, plant_config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate

    simulate(load_config(plant_config_file), date(2026, 3, 2), 4, [], seed=3)
    with socket.socket() as s:  # a port nobody listens on: "connection refused", transient
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    data = yaml.safe_load(plant_config_file.read_text())
    data["groups"][0]["source"]["url"] = f"postgresql+psycopg2://tsad@127.0.0.1:{closed_port}/plant"
    data["groups"][1]["source"]["table"] = "no_such_table"  # permanent: a SourceError
    plant_config_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("TSAD_CONFIG", str(plant_config_file))
    for name, value in {"TSAD_TASK_RETRIES": "2", "TSAD_TASK_RETRY_DELAY": "0.5",
                        "TSAD_RETRY_ATTEMPTS": "1"}.items():
        monkeypatch.setenv(name, value)
    logical = datetime(2026, 3, 6, 1, 30, tzinfo=timezone.utc)

    def dag():  # parsed afresh for each run: in one process, dag.test() leaves its conf behind
        return DagBag(dag_folder=str(REPO / "dags")).dags["tsad_nightly"]

    run = dag().test(logical_date=logical, run_conf={"partition_date": "2026-02-30"})
    tries = _tries(run.run_id)
    assert str(run.state) == "failed"
    for group in ("pumps", "boiler"):  # a ConfigError: failed on its first try, no retries
        assert tries[("sensor_group.extract", group)] == ("failed", 1), tries

    run = dag().test(logical_date=logical + timedelta(days=1))
    tries = _tries(run.run_id)
    assert tries[("sensor_group.extract", "boiler")] == ("failed", 1), tries  # missing table
    assert tries[("sensor_group.extract", "pumps")] == ("failed", 3), tries  # 1 + 2 retries


def test_a_fresh_deployment_s_first_night_succeeds_and_records_warming_up(
        airflow_ready: Path, plant_config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 item 4: no history yet is not a failure: the run succeeds, the training and
    scoring tasks are skipped, and each group's day has a 'warming_up' run row saying why."""
    from tsad.airflow_layer.demo import run_dag_for_day
    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate

    monkeypatch.setenv("TSAD_CONFIG", str(plant_config_file))
    config = load_config(plant_config_file)
    day = date(2026, 3, 5)
    simulate(config, day, 1, [], seed=3)  # the source starts on the first day
    assert run_dag_for_day(day) == "success"
    engine = sa.create_engine(config.database.url)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT sensor_group, status, message FROM detection_run")).all()
    engine.dispose()
    assert sorted((g, s) for g, s, _ in runs) == [("boiler", "warming_up"), ("pumps", "warming_up")]
    assert all("training.min_days" in m for _, _, m in runs)
