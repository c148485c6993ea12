"""Channel shards of a large group: config, one model per shard, merged records, the DAG.

A small plant's ``pumps`` group (4 channels) is split into two shards, ``[flow, pressure]`` and
``[current, temp]``; a level shift is written into ``temp`` (shard 2) in the historian. Real
parts throughout: the simulator's SQLite historian, the registry on disk, SQLite records,
``dag.test()`` of the real DAG.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import small_plant
from tsad import pipeline
from tsad.model import registry
from tsad.config import TsadConfig, from_dict, load_config
from tsad.errors import ConfigError
from tsad.ingest.partitions import partition_path
from tsad.pipeline import GroupDay, RunInfo
from tsad.evaluation.simulator import simulate

from conftest import REPO  # noqa: E402
START = date(2026, 3, 2)
DAY = date(2026, 3, 5)  # trains on the 3 days before
SHARDS = [["flow", "pressure"], ["current", "temp"]]
SHIFT = (time(9, 0), time(11, 0))  # UTC, on DAY, channel temp


# ---------------------------------------------------------------- config

def _group(shards: Any) -> dict[str, Any]:
    return {"name": "g", "channels": ["a", "b", "c", "d", "e"], "shards": shards,
            "source": {"kind": "files", "path": "x/{date}.csv"}}


def test_shards_config_splits_and_round_trips() -> None:
    from tsad.config.shards import shard_channels, shard_numbers, unit_group

    config = from_dict(TsadConfig, {"groups": [_group({"max_channels": 2}),
                                               {**_group({"channels": [["e", "a"], ["b", "c", "d"]]}),
                                                "name": "h"},
                                               {**_group({"max_channels": 5}), "name": "one"},
                                               {**_group(None), "name": "plain"}]})
    assert from_dict(TsadConfig, config.to_dict()) == config
    g, h, one, plain = config.groups
    assert shard_channels(g) == {1: ["a", "b"], 2: ["c", "d"], 3: ["e"]}
    assert shard_channels(h) == {1: ["e", "a"], 2: ["b", "c", "d"]}
    assert shard_numbers(one) == shard_numbers(plain) == [None]  # one shard = the whole group
    assert unit_group(h, 1).channels == ["e", "a"] and unit_group(h, 1).shards is None
    assert unit_group(plain, None) is plain
    with pytest.raises(ConfigError, match=r"group 'h' has no shard 3; its units are \['h/s01', "
                                          r"'h/s02'\]"):
        unit_group(h, 3)


@pytest.mark.parametrize(("shards", "message"), [
    ({}, r"groups\[0\].shards: set exactly one of 'max_channels' or 'channels'"),
    ({"max_channels": 2, "channels": [["a"]]}, r"groups\[0\].shards: set exactly one of"),
    ({"max_channels": 0}, r"groups\[0\].shards: 'max_channels' must be >= 1, got 0"),
    ({"max_channels": "2"}, r"groups\[0\].shards.max_channels: expected an integer"),
    ({"channels": [["a", "b"], []]}, r"groups\[0\].shards: 'channels\[1\]' is empty"),
    ({"channels": "a"}, r"groups\[0\].shards.channels: expected a list"),
    ({"channels": [["a", "b", "c"], ["d"]]},
     r"groups\[0\]: 'shards.channels' leaves out \['e'\]: every channel of the group must be"),
    ({"channels": [["a", "b", "c"], ["c", "d", "e"]]},
     r"groups\[0\]: 'shards.channels\[1\]' lists 'c', already in 'shards.channels\[0\]'"),
    ({"channels": [["a", "b", "c"], ["d", "e", "x"]]},
     r"groups\[0\]: 'shards.channels\[1\]' lists 'x', which is not in 'channels'"),
    ({"size": 2}, (r"groups\[0\].shards.size: unknown key; expected one of \['channels', "
                   r"'max_channels'\]")),
])
def test_bad_shards_are_rejected_naming_the_key(shards: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_dict(TsadConfig, {"groups": [_group(shards)]})


# ---------------------------------------------------------------- the core pipeline

def sharded_plant(tmp: Path, *, broken: bool = False) -> dict[str, Any]:
    """The small plant with pumps in two shards (slow channels: no effective-sample discount);
    ``broken`` adds a group whose source table does not exist."""
    data = small_plant(tmp)
    pumps = data["groups"][0]
    pumps["shards"] = {"channels": SHARDS}
    pumps["threshold"] = {"effective_samples": 0}
    if broken:
        data["groups"].append({**data["groups"][1], "name": "broken",
                               "source": {**data["groups"][1]["source"], "table": "no_such_table"}})
    return data


def _write(tmp: Path, data: dict[str, Any]) -> TsadConfig:
    (tmp / "tsad.yaml").write_text(yaml.safe_dump(data))
    return load_config(tmp / "tsad.yaml")


def simulate_with_shift(config: TsadConfig) -> tuple[datetime, datetime]:
    """Simulate the plant, then shift ``temp`` up by 10 standard deviations of its day for two
    hours of DAY, in the historian (so every extract sees it). Returns the shifted range."""
    simulate(config, START, 4, seed=3)
    lo, hi = (datetime.combine(DAY, t) for t in SHIFT)
    engine = sa.create_engine(config.group("pumps").source.url)
    with engine.begin() as conn:
        values = [r[0] for r in conn.execute(sa.text(
            "SELECT value FROM pump_readings WHERE sensor = 'temp' AND ts >= :a AND ts < :b"),
            {"a": datetime.combine(DAY, time()), "b": datetime.combine(DAY, time()) +
             timedelta(days=1)})]
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
        conn.execute(sa.text("UPDATE pump_readings SET value = value + :shift "
                             "WHERE sensor = 'temp' AND ts >= :a AND ts < :b"),
                     {"shift": 10 * sd, "a": lo, "b": hi})
    engine.dispose()
    return lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)


def rows(db_url: str, table: str, **where: Any) -> list[dict[str, Any]]:
    from tsad.storage.schema import metadata

    engine = sa.create_engine(db_url)
    t = metadata.tables[table]  # tsad's own types: timestamps come back tz-aware UTC
    with engine.connect() as conn:
        query = sa.select(t).where(*(t.c[k] == v for k, v in where.items()))
        out = [dict(r) for r in conn.execute(query).mappings()]
    engine.dispose()
    return out


def content(db_url: str, table: str, group: str) -> list[tuple]:
    """A table's rows of a group without ids (what must not change on a re-run)."""
    drop = {"id", "detection_run_id"}
    found = [tuple(v for k, v in sorted(r.items()) if k not in drop)
             for r in rows(db_url, table, sensor_group=group)]
    return sorted(found, key=repr)


def test_sharded_group_end_to_end_on_sqlite(tmp_path: Path) -> None:
    config = _write(tmp_path, sharded_plant(tmp_path))
    shifted = simulate_with_shift(config)
    db = config.database.url

    results = pipeline.run_day(config, DAY, ["pumps"], force_retrain=True,
                               run=RunInfo(run_id="first"))
    assert [m["model_version_id"] for m in results[0]["models"]] == [
        "pumps/s01/v0001", "pumps/s02/v0001"]

    # one registry per shard, each model trained on its shard's channels only
    models = Path(config.models_dir)
    assert sorted(p.relative_to(models).as_posix() for p in models.glob("pumps/**/v*")) == [
        "pumps/s01/v0001", "pumps/s02/v0001"]
    for shard, channels in enumerate(SHARDS, start=1):
        (version,) = registry.list_versions(config.models_dir, "pumps", shard)
        assert version.manifest["shard"] == shard
        assert registry.version_at(str(version.path)) == version
        assert registry.load_detector(version, channels).channels == channels
    assert registry.list_versions(config.models_dir, "pumps") == []  # no unsharded model
    recorded = {r["id"]: r["sensor_group"] for r in rows(db, "model_version")}
    assert recorded == {"pumps/s01/v0001": "pumps/s01", "pumps/s02/v0001": "pumps/s02"}

    # records once per (group, day): one run row that names both shards' models
    (run,) = rows(db, "detection_run", sensor_group="pumps")
    assert run["partition_date"] == DAY and run["status"] == "ok"
    assert run["message"] == "shards: pumps/s01/v0001, pumps/s02/v0001"
    assert run["model_version_id"] == "pumps/s02/v0001"  # the shift is the day's worst

    # the shift in temp (shard 2) is an event led by shard 2, with temp among its top channels
    events = rows(db, "anomaly_event", sensor_group="pumps")
    hits = [e for e in events if e["start_ts"] < shifted[1] and e["end_ts"] >= shifted[0]]
    assert hits, events
    event = max(hits, key=lambda e: e["severity"])
    tops = [t["channel"] for t in event["top_channels_json"]]
    assert "temp" in tops and set(tops) <= set(SHARDS[1]), tops  # shard 1 is quiet there
    assert event["model_version_id"] == "pumps/s02/v0001"
    s02 = registry.list_versions(config.models_dir, "pumps", 2)[0]
    assert event["threshold"] == pytest.approx(s02.manifest["threshold"])
    assert event["severity"] == pytest.approx(event["peak_score"] / event["threshold"])
    assert event["plot_path"] and Path(event["plot_path"]).is_file()
    points = rows(db, "anomaly_point", sensor_group="pumps")
    assert {p["channel"] for p in points if shifted[0] <= p["ts"] < shifted[1]} >= {"temp"}
    assert all(p["severity"] == pytest.approx(p["score"] / p["threshold"]) for p in points)

    # a re-run loads both models and replaces the partition: same rows, history kept
    first = {t: content(db, t, "pumps") for t in ("anomaly_event", "anomaly_point")}
    again = pipeline.run_day(config, DAY, ["pumps"], run=RunInfo(run_id="second"))
    assert not any(m["trained"] for m in again[0]["models"])
    assert {t: content(db, t, "pumps") for t in first} == first
    assert len(rows(db, "detection_run", sensor_group="pumps")) == 2
    assert len(list(models.glob("pumps/**/v0002"))) == 0


def test_scratch_scores_round_trip_and_record_once(tmp_path: Path) -> None:
    """What the DAG does between workers: each shard's scores go through a scratch file; the
    group's records are written once from both, and the files are removed after the commit."""
    config = _write(tmp_path, sharded_plant(tmp_path))
    simulate(config, START, 4, seed=3)
    run = RunInfo(dag_id="tsad_nightly", run_id="scheduled__2026-03-06T01:30:00+00:00")
    ctx = GroupDay.of(config, "pumps", DAY, run)
    pipeline.extract(ctx)
    models = [pipeline.ensure_model(ctx, s) for s in (1, 2)]
    partition = partition_path(config.data_dir, "pumps", DAY)
    in_memory = [registry.load_detector(registry.version_at(m["path"])).score_partition(partition)
                 for m in models]
    scored = [pipeline.score(ctx, m["path"], s) for s, m in zip((1, 2), models, strict=True)]
    assert all(Path(s["path"]).is_file() for s in scored)

    from tsad.detection.unit_scores import read_scratch

    for memory, item, model in zip(in_memory, scored, models, strict=True):
        back = read_scratch(Path(item["path"]), "test")
        assert back.timestamps.equals(memory.timestamps)
        assert back.model_version_id == model["model_version_id"] == item["model_version_id"]
        assert back.aggregate.tobytes() == memory.aggregate.tobytes()
        assert back.point_scores.tobytes() == memory.point_scores.tobytes()

    summary = pipeline.record(ctx)
    assert not any(Path(s["path"]).exists() for s in scored)
    assert not Path(scored[0]["path"]).parent.exists()  # the run's folder is gone too
    db = config.database.url
    assert len(rows(db, "detection_run", sensor_group="pumps")) == 1
    assert summary["detection_run_id"] == rows(db, "detection_run")[0]["id"]
    with pytest.raises(Exception, match=r"no scores of pumps/s01 2026-03-05 at .*did not finish"):
        pipeline.record(ctx)  # nothing scored for this run now
    with pytest.raises(Exception, match=r"model pumps/s01/v0001 .* is not a model of pumps/s02"):
        pipeline.score(ctx, models[0]["path"], 2)


# ---------------------------------------------------------------- the DAG

def _states(run_id: str) -> dict[tuple[str, str], str]:
    """``(task_id, rendered map index) -> state`` of a DAG run, from Airflow's database."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == "tsad_nightly",
                                                 TaskInstance.run_id == run_id).all()
        return {(t.task_id, t.rendered_map_index or str(t.map_index)): str(t.state) for t in tis}


def test_dag_fans_out_over_shards_and_one_broken_group_stops_no_other(
        airflow_ready: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    config = _write(tmp_path, sharded_plant(tmp_path))
    simulate_with_shift(config)  # the historian of pumps and boiler
    full = _write(tmp_path, sharded_plant(tmp_path, broken=True))
    monkeypatch.setenv("TSAD_CONFIG", str(tmp_path / "tsad.yaml"))

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["tsad_nightly"]
    logical = datetime.combine(DAY + timedelta(days=1), time(1, 30), tzinfo=UTC)
    dag_run = dag.test(logical_date=logical, run_conf={"force_retrain": True})
    states = _states(dag_run.run_id)

    assert str(dag_run.state) == "failed"  # the broken group failed, once, at its extract ...
    assert states[("sensor_group.extract", "broken")] == "failed"
    for task in ("ensure_model", "detect", "alert"):  # its later tasks skip (no second alarm)
        assert states[(f"sensor_group.{task}", "broken")] == "skipped", states
    assert states[("sensor_group.outcome", "-1")] == "upstream_failed"
    for label in ("pumps/s01", "pumps/s02", "boiler"):  # ... and stopped nothing else
        assert states[("sensor_group.ensure_model", label)] == "success", states
        assert states[("sensor_group.score", label)] == "success", states
    for group in ("pumps", "boiler"):
        assert states[("sensor_group.detect", group)] == "success", states
        assert states[("sensor_group.alert", group)] == "success", states

    db = full.database.url
    runs = rows(db, "detection_run")
    assert sorted(r["sensor_group"] for r in runs) == ["boiler", "pumps"]  # once per group
    assert {r["run_id"] for r in runs} == {dag_run.run_id}
    assert {r["id"] for r in rows(db, "model_version")} == {
        "pumps/s01/v0001", "pumps/s02/v0001", "boiler/v0001"}
    events = rows(db, "anomaly_event", sensor_group="pumps")
    assert any("temp" in [t["channel"] for t in e["top_channels_json"]] for e in events), events
    assert not list(Path(full.data_dir).glob("scores/**/*.parquet"))  # scratch consumed


# ---------------------------------------------------------------- executor_config

def _parse_train_task(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Parse the DAG in a fresh interpreter (the variable is read at import), serialize it as the
    dag-processor does, and print the deserialized training task's executor_config."""
    code = ("from airflow.dag_processing.dagbag import DagBag\n"
            "from airflow.serialization.serialized_objects import DagSerialization as S\n"
            f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
            "assert not bag.import_errors, bag.import_errors\n"
            "dag = S.from_dict(S.to_dict(bag.dags['tsad_nightly']))\n"
            "assert not dag.get_task('sensor_group.score').executor_config\n"
            "task = dag.get_task('sensor_group.ensure_model')\n"
            "pod = (task.executor_config or {}).get('pod_override')\n"
            "print(repr(task.executor_config) if pod is None else\n"
            "      [type(pod).__name__, pod.spec.containers[0].name,\n"
            "       pod.spec.containers[0].resources.limits, pod.spec.node_selector])\n")
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, check=False,
                          capture_output=True, text=True, timeout=120)


POD = ('{"pod_override": {"spec": {"containers": [{"name": "base", "resources": {"limits": '
       '{"nvidia.com/gpu": "1"}}}], "nodeSelector": {"nvidia.com/gpu.present": "true"}}}}')


def test_train_executor_config_is_none_when_unset() -> None:
    from tsad.airflow_layer.executor_config import train_executor_config

    assert train_executor_config({}) is None
    result = _parse_train_task({"TSAD_TRAIN_EXECUTOR_CONFIG": ""})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] in ("{}", "None")


@pytest.mark.parametrize(("value", "message"), [
    ("{not json", "TSAD_TRAIN_EXECUTOR_CONFIG is not valid JSON"),
    ('{"spec": {}}', "TSAD_TRAIN_EXECUTOR_CONFIG must be a JSON object with one key"),
])
def test_train_executor_config_rejects_bad_values(value: str, message: str) -> None:
    from tsad.airflow_layer.executor_config import train_executor_config

    with pytest.raises(ConfigError, match=message):
        train_executor_config({"TSAD_TRAIN_EXECUTOR_CONFIG": value})


def test_train_executor_config_reaches_the_parsed_dags_training_task() -> None:
    result = _parse_train_task({"TSAD_TRAIN_EXECUTOR_CONFIG": POD})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == ("['V1Pod', 'base', {'nvidia.com/gpu': '1'}, "
                                     "{'nvidia.com/gpu.present': 'true'}]")


def test_train_executor_config_without_kubernetes_names_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tsad.airflow_layer.executor_config import train_executor_config

    for name in ("kubernetes", "kubernetes.client", "kubernetes.client.models"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` then raises ImportError
    with pytest.raises(ConfigError, match="kubernetes client is not installed; install "
                                          "apache-airflow-providers-cncf-kubernetes"):
        train_executor_config({"TSAD_TRAIN_EXECUTOR_CONFIG": POD})
