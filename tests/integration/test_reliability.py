"""Re-runs, backfills, kills and outages lose nothing and write nothing twice.

Real parts throughout: a simulated plant in an SQLite historian, real (tiny) torch training, the
records in SQLite and in a throwaway PostgreSQL server, real processes killed with SIGKILL.
Sampling is 10 minutes (144 points a day) and the models are tiny and trained once per module
(``plant`` copies them), so each day takes a blink. Event pictures are drawn by a stub here
(``tsad.detection.plots.render`` is what costs: test_plots covers it); the records do not depend on them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from conftest import REPO, detect, small_plant
from tsad import pipeline, retry
from tsad.model import registry
from tsad.config import TsadConfig, load_config
from tsad.errors import ConfigError
from tsad.ingest.partitions import partition_path
from tsad.pipeline import GroupDay, RunInfo
from tsad.evaluation.simulator import simulate
from tsad.storage.engine import dispose_all, get_engine
from tsad.storage.records import latest_run, write_partition
from tsad.storage.schema import anomaly_event, anomaly_point, detection_run

TESTS = REPO / "tests"  # conftest, procs: what a child process imports
D0 = date(2026, 3, 1)
FIRST = D0 + timedelta(days=3)  # the first scored day: models train on D0 .. D0+2
DAYS = 33
EVENT_DAY = FIRST + timedelta(days=4)  # injected anomalies that the tiny models find
ANOMALY_DAYS = (FIRST, EVENT_DAY, FIRST + timedelta(days=18))
GROUPS = ("pumps", "boiler")


def stub_render(picture: Any, path: str | Path) -> Path:
    """Stands in for the PNG renderer (slow, and not what these tests are about)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(picture.title.encode())
    return out


@pytest.fixture(autouse=True)
def _cheap_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tsad.detection.plots.render", stub_render)


def plant_dict(tmp: Path, db_url: str) -> dict[str, Any]:
    """The test plant (``conftest.small_plant``) sampled every 10 minutes, with tiny dense models."""
    data = small_plant(tmp, days=3, sampling_seconds=600)
    data["database"] = {"url": db_url}
    for group in data["groups"]:
        group.update({
            "window": {"length": 12, "stride": 3},
            "model": {"kind": "dense", "hidden": 16, "latent": 4, "epochs": 30, "batch_size": 64},
            "training": {"days": 3, "max_model_age_days": 90},
            # headroom: a day flagged over half would be a sustained departure, kept out of the
            # next model's training, which makes a concurrent backfill depend on its order
            "threshold": {"strategy": "quantile", "q": 0.995, "margin": 3.0},
        })
    return data


def write_config(tmp: Path, db_url: str, epochs: int | None = None) -> TsadConfig:
    data = plant_dict(tmp, db_url)
    for group in data["groups"]:
        group["model"]["epochs"] = epochs or group["model"]["epochs"]
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(data))
    return load_config(file)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated historian of DAYS days and one trained model version per group."""
    tmp = tmp_path_factory.mktemp("plant")
    config = write_config(tmp, f"sqlite:///{tmp / 'tsad.db'}")
    simulate(config, D0, DAYS, list(ANOMALY_DAYS), seed=1)
    for group in GROUPS:
        pipeline.ensure_model(GroupDay.of(config, group, FIRST), force_retrain=True)
    dispose_all()
    return tmp


def plant(template: Path, tmp: Path, db_url: str, epochs: int | None = None) -> TsadConfig:
    """The template's historian and models, with the records in ``db_url``."""
    shutil.copy(template / "historian.db", tmp / "historian.db")
    shutil.copytree(template / "models", tmp / "models")
    return write_config(tmp, db_url, epochs)


def _rows(db_url: str, table: sa.Table, group: str, day: date, drop: tuple[str, ...]) -> list:
    with get_engine(db_url).connect() as conn:
        found = conn.execute(sa.select(table).where(table.c.sensor_group == group,
                                                    table.c.partition_date == day)).mappings()
        return sorted(({k: v for k, v in r.items() if k not in drop} for r in found), key=repr)


def record_set(db_url: str, config: TsadConfig, group: str, day: date) -> bytes:
    """The partition's records (without generated ids), newest run, Parquet and quality bytes."""
    ids = ("id", "detection_run_id")
    run = latest_run(get_engine(db_url), group, day) or {}
    run = {k: v for k, v in run.items() if k not in ("id", "run_id", "started_at", "finished_at")}
    partition = partition_path(config.data_dir, group, day)
    return json.dumps({
        "events": _rows(db_url, anomaly_event, group, day, ids),
        "points": _rows(db_url, anomaly_point, group, day, ids),
        "run": run,
        "parquet": partition.read_bytes().hex(),
        "quality": partition.with_name("quality.json").read_text(),
    }, default=str, sort_keys=True).encode()


def count(db_url: str, table: sa.Table, **where: Any) -> int:
    query = sa.select(sa.func.count()).select_from(table)
    for name, value in where.items():
        query = query.where(table.c[name] == value)
    with get_engine(db_url).connect() as conn:
        return int(conn.execute(query).scalar_one())


# ---------------------------------------------------------------- re-runs and backfills


def test_one_day_rerun_ten_times_gives_byte_identical_records(
        db_url: str, template: Path, tmp_path: Path) -> None:
    day = EVENT_DAY
    config = plant(template, tmp_path, db_url)
    pipeline.run_day(config, day, run=RunInfo(run_id="first"))
    sets = []
    for i in range(10):
        pipeline.run_day(config, day, run=RunInfo(run_id=f"rerun-{i}"))
        sets.append({g: record_set(db_url, config, g, day) for g in GROUPS})
    assert all(s == sets[0] for s in sets[1:])
    assert count(db_url, anomaly_event) >= 1  # the injected anomalies were found
    for group in GROUPS:
        assert count(db_url, detection_run, sensor_group=group) == 11  # history is kept
        assert [v.version for v in registry.list_versions(config.models_dir, group)] == [1]


def _backfill_one(job: tuple[str, str]) -> str:
    """One backfill run in a process of its own, as an Airflow worker would run it."""
    import torch

    import tsad.detection.plots

    torch.set_num_threads(1)
    tsad.detection.plots.render = stub_render
    file, day = job
    config = load_config(file)
    pipeline.run_day(config, date.fromisoformat(day),
                     run=RunInfo(dag_id="tsad_nightly", run_id=f"backfill__{day}"))
    return day


def test_thirty_day_backfill_four_runs_at_once_on_postgres(
        pg_url: str, template: Path, tmp_path: Path) -> None:
    days = [FIRST + timedelta(days=i) for i in range(30)]
    config = plant(template, tmp_path, pg_url)  # one model per group, trained before day 1
    twice = days[1::3]  # ten days (the event day too) run twice, at times concurrently
    jobs = [(str(tmp_path / "tsad.yaml"), d.isoformat()) for d in [*days, *twice]]
    dispose_all()
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = list(pool.map(_backfill_one, jobs))  # re-raises any run's error
    assert sorted(done) == sorted(j[1] for j in jobs)

    engine = get_engine(pg_url)
    for group in GROUPS:
        for day in days:
            runs = count(pg_url, detection_run, sensor_group=group, partition_date=day)
            assert runs == (2 if day in twice else 1), (group, day)
            latest = latest_run(engine, group, day)
            events = _rows(pg_url, anomaly_event, group, day, ())
            points = _rows(pg_url, anomaly_point, group, day, ())
            # exactly one record set: every row is the newest run's, and all of it is there
            assert {e["detection_run_id"] for e in events} <= {latest["id"]}
            assert {p["detection_run_id"] for p in points} <= {latest["id"]}
            assert len(events) == latest["n_events"], (group, day)
    assert count(pg_url, anomaly_event) >= 1
    for group in GROUPS:  # no run retrained: every day used the one model
        assert [v.version for v in registry.list_versions(config.models_dir, group)] == [1]
    for day in twice[:2]:  # a serial re-run reproduces what the concurrent backfill wrote
        before = {g: record_set(pg_url, config, g, day) for g in GROUPS}
        pipeline.run_day(config, day, run=RunInfo(dag_id="tsad_nightly", run_id="check"))
        assert {g: record_set(pg_url, config, g, day) for g in GROUPS} == before


# ---------------------------------------------------------------- killed processes

_KILLED_WRITER = """
import sys, time
from sqlalchemy import event
from tsad.storage.engine import get_engine
from tsad.storage.records import write_partition
from test_storage import event_records, point_records, run_record

engine = get_engine(sys.argv[1])

@event.listens_for(engine, "before_cursor_execute")
def pause(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip().upper().startswith("INSERT INTO ANOMALY_POINT"):
        print("MIDWAY", flush=True)  # old rows deleted, run row added, points half way
        time.sleep(600)

events = event_records(1)
write_partition(engine, run_record(run_id="killed", n_events=1), events, point_records(events))
"""


def _start_and_kill(code: str, *args: str) -> None:
    """Run ``code`` in a fresh interpreter; SIGKILL it once it prints MIDWAY."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    child = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "MIDWAY", (line, child.stderr.read() if child.stderr else "")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(30)
    assert child.returncode == -signal.SIGKILL


def test_writer_killed_mid_partition_keeps_the_previous_rows(db_url: str) -> None:
    from test_storage import event_records, point_records, run_record

    from tsad.storage.schema import create_schema

    engine = get_engine(db_url)
    create_schema(engine)
    events = event_records(3)
    good = write_partition(engine, run_record(run_id="good", n_events=3), events,
                           point_records(events))
    day = events[0].partition_date
    before = (_rows(db_url, anomaly_event, "pumps", day, ()),
              _rows(db_url, anomaly_point, "pumps", day, ()))
    dispose_all()

    _start_and_kill(_KILLED_WRITER, db_url)

    engine = get_engine(db_url)
    assert (_rows(db_url, anomaly_event, "pumps", day, ()),
            _rows(db_url, anomaly_point, "pumps", day, ())) == before
    assert latest_run(engine, "pumps", day)["id"] == good and count(db_url, detection_run) == 1
    started = time.monotonic()  # the next run is neither blocked nor confused by the dead one
    nxt = write_partition(engine, run_record(run_id="next", n_events=2), events[:2],
                          point_records(events[:2]))
    assert time.monotonic() - started < 10
    assert {e["detection_run_id"] for e in _rows(db_url, anomaly_event, "pumps", day, ())} == {nxt}
    assert count(db_url, anomaly_point) == 12


_KILLED_TRAINING = """
import sys, time
from datetime import date
import safetensors.torch
from tsad import pipeline
from tsad.config import load_config

save = safetensors.torch.save_file

def save_then_hang(*args, **kwargs):
    save(*args, **kwargs)
    print("MIDWAY", flush=True)  # weights written, manifest not yet
    time.sleep(600)

safetensors.torch.save_file = save_then_hang
config = load_config(sys.argv[1])
pipeline.ensure_model(pipeline.GroupDay.of(config, "pumps", date.fromisoformat(sys.argv[2])),
                      force_retrain=True)
"""


def test_training_killed_mid_way_leaves_no_half_version(template: Path, tmp_path: Path) -> None:
    day = FIRST
    db = f"sqlite:///{tmp_path / 'tsad.db'}"
    config = plant(template, tmp_path, db, epochs=2)  # retrains: keep it short
    root = Path(config.models_dir) / "pumps"
    dispose_all()

    _start_and_kill(_KILLED_TRAINING, str(tmp_path / "tsad.yaml"), day.isoformat())

    assert [v.version for v in registry.list_versions(config.models_dir, "pumps")] == [1]
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == ["v0001"]
    leftovers = [p for p in root.iterdir() if p.name.startswith(registry.TMP_PREFIX)]
    assert len(leftovers) == 1 and not (leftovers[0] / "manifest.json").exists()
    with get_engine(db).connect() as conn:  # the killed training recorded nothing
        assert not sa.inspect(conn).has_table("model_version") or conn.execute(
            sa.text("SELECT count(*) FROM model_version")).scalar_one() == 0

    result = pipeline.ensure_model(GroupDay.of(config, "pumps", day), force_retrain=True)
    assert result["model_version_id"] == "pumps/v0002"
    assert not leftovers[0].exists()  # the dead process's folder was cleaned up
    version = registry.list_versions(config.models_dir, "pumps")[-1]
    assert registry.load_detector(version, config.group("pumps").channels).channels == [
        "flow", "pressure", "current", "temp"]


# ---------------------------------------------------------------- outages and retries


def test_database_stopped_during_a_run_retries_and_completes(
        pg_factory: Any, template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    server = pg_factory()
    url = server.create_database()
    day = FIRST
    config = plant(template, tmp_path, url)
    pipeline.extract(GroupDay.of(config, "pumps", day))
    model = pipeline.ensure_model(GroupDay.of(config, "pumps", day))
    detect(GroupDay.of(config, "pumps", day), model["path"])
    reference = record_set(url, config, "pumps", day)
    monkeypatch.setenv("TSAD_RETRY_ATTEMPTS", "40")
    monkeypatch.setenv("TSAD_RETRY_BASE_DELAY", "0.1")
    monkeypatch.setenv("TSAD_RETRY_MAX_DELAY", "0.5")

    server.stop()
    outcome: dict[str, Any] = {}

    def task() -> None:
        try:
            outcome["result"] = detect(GroupDay.of(config, "pumps", day,
                                                   RunInfo(run_id="during-outage")),
                                       model["path"])
        except BaseException as exc:  # noqa: BLE001 - asserted below
            outcome["error"] = exc

    with caplog.at_level("WARNING", logger="tsad.retry"):
        worker = threading.Thread(target=task)
        worker.start()
        time.sleep(2.0)
        assert worker.is_alive() and not outcome  # retrying while the server is down
        server.start()
        worker.join(60)
    assert "error" not in outcome, outcome.get("error")
    assert "retrying" in caplog.text and "transient" in caplog.text
    assert record_set(url, config, "pumps", day) == reference  # no duplicates, nothing lost
    assert count(url, detection_run, sensor_group="pumps") == 2
    assert latest_run(get_engine(url), "pumps", day)["run_id"] == "during-outage"


def test_permanent_database_error_fails_fast_naming_the_fix(
        pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = sa.engine.make_url(pg_server_url).set(database="no_such_db", password="s3cret")
    url = missing.render_as_string(hide_password=False)
    monkeypatch.setenv("TSAD_RETRY_ATTEMPTS", "40")
    monkeypatch.setenv("TSAD_RETRY_BASE_DELAY", "1")
    config = write_config(tmp_path, url)
    started = time.monotonic()
    with pytest.raises(ConfigError) as err:
        pipeline.alert(GroupDay.of(config, "pumps", D0))
    assert time.monotonic() - started < 5  # not retried
    message = str(err.value)
    assert "does not exist" in message and "create it or fix the database name" in message
    assert "s3cret" not in message and "no_such_db" in message


def test_retry_backs_off_on_transient_errors_only() -> None:
    waits: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
        return "ok"

    policy = retry.RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0, jitter=0.0)
    assert retry.call(flaky, "reading", policy=policy, sleep=waits.append) == "ok"
    assert waits == [1.0, 2.0]

    def locked() -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    waits.clear()
    with pytest.raises(retry.TransientError, match="still failing after 4 attempts.*locked"):
        retry.call(locked, "writing", policy=retry.RetryPolicy(4, 1.0, 3.0, 0.0),
                   sleep=waits.append)
    assert waits == [1.0, 2.0, 3.0]

    def bad_login() -> None:
        raise sa.exc.OperationalError(
            "connect", {}, Exception('FATAL: password authentication failed for user "tsad"'))

    with pytest.raises(ConfigError, match="cannot log in.*fix the user or password"):
        retry.call(bad_login, "connecting", policy=policy, sleep=waits.append)
    with pytest.raises(KeyError):  # a bug is not a database problem: untouched, not retried
        retry.call(lambda: {}["x"], "bug", policy=policy, sleep=waits.append)
    assert waits == [1.0, 2.0, 3.0]


def test_secrets_never_reach_records_artifacts_or_logs(
        pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-Pw"
    url = sa.engine.make_url(pg_url).set(password=secret).render_as_string(hide_password=False)
    data = plant_dict(tmp_path, url)
    data["groups"] = data["groups"][:1]
    data["groups"][0]["source"]["url"] = url  # a PostgreSQL historian, password and all
    data["groups"][0]["model"]["epochs"] = 2
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump(data))
    config = load_config(file)
    simulate(config, D0, 4, [FIRST], seed=1)
    with caplog.at_level("DEBUG"):
        pipeline.run_day(config, FIRST, force_retrain=True)
    assert secret not in caplog.text
    engine = get_engine(url)
    with engine.connect() as conn:
        for table in ("model_version", "detection_run", "anomaly_event", "anomaly_point"):
            dump = json.dumps([dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))
                               .mappings()], default=str)
            assert secret not in dump, table
    for folder in (config.models_dir, config.data_dir):
        for path in Path(folder).rglob("*"):
            if path.is_file() and path.suffix in (".json", ".txt", ".yaml"):
                assert secret not in path.read_text(), path
    stored = json.loads((Path(config.models_dir) / "pumps" / "v0001" / "config.json").read_text())
    assert "source" not in stored  # a model's config holds what shapes it, nothing of the source
