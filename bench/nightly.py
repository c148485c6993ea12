"""Nightly benchmark: a plant of N groups x C channels at 1 Hz, from PostgreSQL to records and alerts.

A throwaway PostgreSQL server (started the way the tests start one, ``tests/pg_fixture.py``)
holds one long source table per group (``ts timestamptz, sensor, value``: the synthetic plant of
``bench/plant.py``) for two data days, and tsad's records database. Each night runs in a fresh
child process (peak RSS from ``getrusage``), through the steps ``tsad run`` calls
(``tsad.pipeline``), each step timed for each group:

- night 1, with training: the history day is extracted, then extract -> ensure_model (trains:
  ``training.days: 1``) -> score -> record -> alert (the log digest only);
- night 2, models loaded: the same day again (its partition removed first), the models reused.

Then (``--airflow-groups`` x ``--airflow-channels``, smaller: the scheduler's tasks share the
same two cores) the DAG once under a real scheduler with the LocalExecutor
(``bench/nightly_airflow.py``): each task's wall time (Airflow's start/end) against the step's own
time in night 2, and the fixed cost of a task process's imports. ``--growth`` adds plants with
half the channels and half the groups, to show how time and memory grow.
``--quick``: 2 groups x 5 channels at 10 s, a minute or two (the test runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = date(2024, 1, 3)  # scored; the day before is the training history
STEPS = ("extract", "train", "score", "records", "alert")


# ---------------------------------------------------------------- the plant


def plant_config(root: Path, source_url: str, records_url: str, groups: int, channels: int,
                 step: int, epochs: int) -> Path:
    """The tsad.yaml of the plant: groups ``g00``.. of channels ``c000``.., tsad's defaults
    but ``training.days: 1`` (one history day) and the epochs."""
    import yaml

    plant = {"site_timezone": "UTC", "data_dir": str(root / "data"),
             "models_dir": str(root / "models"), "database": {"url": records_url},
             "groups": [{"name": f"g{g:02d}", "channels": [f"c{j:03d}" for j in range(channels)],
                         "sampling_seconds": step,
                         "source": {"kind": "sql", "url": source_url, "table": f"readings_g{g:02d}",
                                    "layout": "long", "timestamp_column": "ts"},
                         "model": {"epochs": epochs},
                         "training": {"days": 1, "min_days": 1}} for g in range(groups)]}
    root.mkdir(parents=True, exist_ok=True)
    file = root / "tsad.yaml"
    file.write_text(yaml.safe_dump(plant))
    return file


def build_sources(url: str, groups: int, channels: int, step: int) -> int:
    """One long table per group, two days (normal history, then a day with anomalies); rows."""
    import adbc_driver_postgresql.dbapi as adbc
    import numpy as np
    import pyarrow as pa
    import sqlalchemy as sa

    sys.path.insert(0, str(Path(__file__).parent))
    from plant import plant

    n = 86_400 // step
    start = np.datetime64((DAY - timedelta(days=1)).isoformat(), "us")
    stamps = start + np.arange(2 * n, dtype=np.int64) * step * 1_000_000
    names = np.array([f"c{j:03d}" for j in range(channels)], dtype=object)
    plain = sa.engine.make_url(url).set(drivername="postgresql")
    rows = 0
    with adbc.connect(plain.render_as_string(hide_password=False)) as conn, \
            conn.cursor() as cursor:
        for g in range(groups):
            normal, _ = plant(n, channels, seed=g, anomalies=False)
            faulty, _ = plant(n, channels, seed=g + 100, anomalies=True, t0=n)
            values = np.concatenate([normal, faulty]).astype(np.float64).ravel()
            table = pa.table({"ts": pa.array(np.repeat(stamps, channels)).cast(
                                  pa.timestamp("us", tz="UTC")),
                              "sensor": pa.array(np.tile(names, 2 * n), pa.string()),
                              "value": pa.array(values)})
            cursor.execute(f"CREATE TABLE readings_g{g:02d} (ts timestamptz, sensor text, "
                           "value float8)")
            cursor.adbc_ingest(f"readings_g{g:02d}", table, mode="append")
            cursor.execute(f"CREATE INDEX ON readings_g{g:02d} (ts)")
            conn.commit()
            rows += table.num_rows
    return rows


# ---------------------------------------------------------------- one night, in a child


def night(config_file: str, train: bool) -> dict[str, Any]:
    """The steps of ``tsad.pipeline.run_day`` for every group, each timed; the models' training
    metrics; this process's peak RSS."""
    import shutil

    from tsad.config import load_config
    from tsad.ingest.partitions import partition_path
    from tsad.pipeline import GroupDay, alert, ensure_model, extract, record, score

    config = load_config(config_file)
    began = time.perf_counter()
    per_group: dict[str, dict[str, float]] = {}
    models: list[dict[str, Any]] = []
    for group in config.groups:
        ctx = GroupDay.of(config, group.name, DAY)
        times: dict[str, float] = {}
        if train:
            t = time.perf_counter()
            extract(ctx.at(DAY - timedelta(days=1)))
            times["extract history"] = time.perf_counter() - t
        else:
            shutil.rmtree(Path(partition_path(config.data_dir, group.name, DAY)),
                          ignore_errors=True)
        t = time.perf_counter()
        extract(ctx)
        times["extract"] = time.perf_counter() - t
        t = time.perf_counter()
        model = ensure_model(ctx)
        times["train" if model["trained"] else "load"] = time.perf_counter() - t
        t = time.perf_counter()
        score(ctx, model["path"])
        times["score"] = time.perf_counter() - t
        t = time.perf_counter()
        profiled(lambda: record(ctx), f"records-{group.name}")
        times["records"] = time.perf_counter() - t
        t = time.perf_counter()
        alerted = alert(ctx)
        times["alert"] = time.perf_counter() - t
        per_group[group.name] = times
        manifest = json.loads((Path(model["path"]) / "manifest.json").read_text())
        metrics = manifest["metrics"]
        models.append({"group": group.name, "trained": model["trained"],
                       "epochs_run": metrics.get("epochs_run"),
                       "train_seconds": metrics.get("train_seconds"),
                       "n_train_windows": metrics.get("n_train_windows"),
                       "events_new": alerted["n_new"]})
    return {"seconds": time.perf_counter() - began, "per_group": per_group, "models": models,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def profiled(fn: Any, name: str) -> Any:
    """``fn()``; with ``$TSAD_BENCH_PROFILE`` (a folder) its cProfile goes there."""
    folder = os.environ.get("TSAD_BENCH_PROFILE")
    if not folder:
        return fn()
    import cProfile

    profile = cProfile.Profile()
    try:
        return profile.runcall(fn)
    finally:
        profile.dump_stats(str(Path(folder) / f"{name}.prof"))


def child(*args: str) -> dict[str, Any]:
    """``args`` in a fresh process with this worktree's plugins first (so peak RSS is its own)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "plugins")}
    run = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, env=env, timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{run.stderr[-4000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- the run


def stage_sums(result: dict[str, Any]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for times in result["per_group"].values():
        for stage, seconds in times.items():
            sums[stage] = sums.get(stage, 0.0) + seconds
    return sums


def one_plant(server: Any, work: Path, groups: int, channels: int, step: int,
              epochs: int) -> dict[str, Any]:
    """Build, then night 1 (training) and night 2 (models loaded); prints the rows."""
    label = f"{groups} groups x {channels} ch ({groups * channels:,} channels)"
    root = work / f"plant_{groups}x{channels}"
    source = server.create_database("source")
    records = server.create_database("records")
    t = time.perf_counter()
    built = child("build", source, str(groups), str(channels), str(step))
    print(f"{label}: source tables built, {built['rows']:,} rows over 2 days in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    config = plant_config(root, source, records, groups, channels, step, epochs)
    out: dict[str, Any] = {"groups": groups, "channels": channels, "config": str(config),
                           "rows_per_day": built["rows"] // 2}
    for name, train in (("with training", True), ("models loaded", False)):
        result = child("night", str(config), "1" if train else "0")
        sums = stage_sums(result)
        out[name] = {**result, "stages": sums}
        parts = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in sums.items())
        print(f"{label} | night {name}: {result['seconds']:.1f} s = {parts}; "
              f"peak RSS {result['peak_mb']:.0f} MB", flush=True)
    trained = [m for m in out["with training"]["models"] if m["trained"]]
    if trained:
        epochs_run = [m["epochs_run"] for m in trained]
        seconds = [m["train_seconds"] for m in trained]
        print(f"{label} | training: epochs run {min(epochs_run)}-{max(epochs_run)} "
              f"(cap {epochs}), {sum(seconds) / len(seconds):.1f} s per group-day of training "
              f"data ({trained[0]['n_train_windows']:,} windows), "
              f"{sum(seconds) / len(seconds) / channels:.3f} s per channel-day", flush=True)
    return out


def growth(plants: list[dict[str, Any]]) -> None:
    """How time and memory grow between the plants (same groups or same channels per group)."""
    for a in plants:
        for b in plants:
            same_g = a["groups"] == b["groups"] and b["channels"] > a["channels"]
            same_c = a["channels"] == b["channels"] and b["groups"] > a["groups"]
            if not (same_g or same_c):
                continue
            what = "channels per group" if same_g else "groups"
            factor = b["channels"] / a["channels"] if same_g else b["groups"] / a["groups"]
            for name in ("models loaded", "with training"):
                ta, tb = a[name]["seconds"], b[name]["seconds"]
                ma, mb = a[name]["peak_mb"], b[name]["peak_mb"]
                print(f"growth, {factor:.0f}x the {what} ({a['groups']}x{a['channels']} -> "
                      f"{b['groups']}x{b['channels']}), {name}: time {tb / ta:.2f}x "
                      f"({ta:.1f} -> {tb:.1f} s), peak RSS {mb / ma:.2f}x "
                      f"({ma:.0f} -> {mb:.0f} MB)", flush=True)


def run(args: argparse.Namespace) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "tests"))
    import pg_fixture

    step = 10 if args.quick else 1
    groups, channels = (2, 5) if args.quick else (args.groups, args.channels)
    sizes = [(groups, channels)]
    if args.growth:
        sizes = [(groups, max(1, channels // 2)), (max(1, groups // 2), channels), *sizes]
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tsad-bench-nightly-"))
    server = pg_fixture.new_server()
    results: dict[str, Any] = {"plants": []}
    try:
        for g, c in sizes:
            results["plants"].append(one_plant(server, work, g, c, step, args.epochs))
        growth(results["plants"])
        if not args.no_airflow:
            from nightly_airflow import airflow_run

            ag, ac = (groups, channels) if args.quick else (args.airflow_groups,
                                                           args.airflow_channels)
            plant = next((p for p in results["plants"] if (p["groups"], p["channels"]) ==
                          (ag, ac)), None) or one_plant(server, work, ag, ac, step, args.epochs)
            modes = {"on": [True], "off": [False], "both": [False, True]}[args.airflow_preload]
            for preload in modes:
                label = "airflow" if preload else "airflow_no_preload"
                results[label] = airflow_run(plant, DAY, work / label, preload)
    finally:
        server.destroy()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--channels", type=int, default=50, help="per group")
    parser.add_argument("--epochs", type=int, default=3, help="model.epochs (a cap: early stop)")
    parser.add_argument("--quick", action="store_true", help="2 groups x 5 channels at 10 s")
    parser.add_argument("--growth", action="store_true",
                        help="also half the channels and half the groups")
    parser.add_argument("--airflow-groups", type=int, default=4)
    parser.add_argument("--airflow-channels", type=int, default=50)
    parser.add_argument("--no-airflow", action="store_true")
    parser.add_argument("--airflow-preload", choices=("on", "off", "both"), default="on",
                        help="TSAD_PRELOAD for the scheduler (tsad.airflow_layer.preload); "
                             "both: one run without, then one with")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    if args.child:
        kind, *rest = args.child
        if kind == "build":
            print(json.dumps({"rows": build_sources(rest[0], *map(int, rest[1:]))}))
        else:
            print(json.dumps(night(rest[0], rest[1] == "1")))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; python {platform.python_version()}", flush=True)
    results = run(args)
    print(f"load at the end {os.getloadavg()[0]:.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
