"""The throughput benchmark runs end to end and prints every row its issue asks for.

Speeds are never asserted here (they live in ``bench/RESULTS.md``, measured on a quiet machine):
this runs the script's seconds-long ``--smoke`` profile, so a change that breaks the benchmark
(an API it calls, a reference it builds, a child process it spawns) fails CI instead of the next
person's measurement.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pg_fixture
import pytest
from conftest import REPO  # noqa: E402
EXPECTED_ROWS = (
    "tsad e2e 30,000 x 30: values/s", "pyarrow Parquet read 30,000 x 30: values/s",
    "tsad / tutorial, 30,000 x 30", "conv1d: fraction of measured matmul FLOP/s",
    "dense: fraction of measured matmul FLOP/s", "training s/epoch, conv1d",
    "tsad peak RSS 60,000 x 30 (streamed + score rule)", "tutorial peak RSS 10,000 x 30",
    "GPU training s/epoch",
)


def test_throughput_benchmark_smoke_run_prints_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = {**os.environ, "TSAD_THREADS": "1"}
    run = subprocess.run([sys.executable, str(REPO / "bench" / "throughput.py"), "--smoke",
                          "--workdir", str(tmp_path / "work"), "--json", str(out)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(out.read_text())
    names = [row[0] for row in results["table"]]
    for expected in EXPECTED_ROWS:
        assert any(name.startswith(expected) for name in names), (expected, names)
    tsad = results["tsad_30000"]
    assert tsad["values_per_s"] > 0 and 0.0 <= tsad["auc_pr"] <= 1.0
    assert results["tutorial_30000"]["ratio"] > 0
    for kind in ("conv1d", "dense"):
        flops = results[f"flops_{kind}"]
        assert flops["flops_per_window"] > 0 and math.isfinite(flops["windows_per_s"])
    rss = results["rss_tsad_60000"]
    assert rss["peak_mb"] >= rss["base_mb"] > 0


def test_extract_benchmark_quick_run_prints_its_rows(tmp_path: Path) -> None:
    """``bench/extract.py --quick``: the SQLite table is built and every method is measured."""
    out = tmp_path / "extract.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "extract.py"), "--quick",
                          "--workdir", str(tmp_path / "work"), "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for method in ("DB-API fetchall", "ADBC + numpy pivot", "tsad extract_day"):
        assert f"SQLite 3 ch x 1 day (25,920 rows) | {method}: " in run.stdout, run.stdout
    rows = json.loads(out.read_text())
    assert {r["method"] for r in rows} == {"DB-API fetchall", "ADBC + numpy pivot",
                                           "tsad extract_day"}
    assert all(r["rows"] == 25_920 and r["rows_per_s"] > 0 and r["peak_mb"] > 0 for r in rows)


def test_nightly_benchmark_quick_run_prints_every_stage(tmp_path: Path) -> None:
    """``bench/nightly.py --quick --no-airflow``: the plant is built in PostgreSQL and both
    nights print their per-stage rows, peak RSS and the training epochs (the scheduler part,
    ``bench/nightly_airflow.py``, needs minutes: it is run by hand, bench/RESULTS.md)."""
    if pg_fixture._pg_bin() is None and os.geteuid() != 0:
        pytest.skip("PostgreSQL is not installed (bench/nightly.py needs a server)")
    out = tmp_path / "nightly.json"
    run = subprocess.run([sys.executable, str(REPO / "bench" / "nightly.py"), "--quick",
                          "--no-airflow", "--workdir", str(tmp_path / "work"), "--json", str(out)],
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    label = "2 groups x 5 ch (10 channels)"
    assert f"{label}: source tables built, 172,800 rows over 2 days" in run.stdout, run.stdout
    for night, stages in (("with training", ("extract history", "extract", "train", "score",
                                             "records", "alert")),
                          ("models loaded", ("extract", "load", "score", "records", "alert"))):
        line = next(x for x in run.stdout.splitlines() if f"| night {night}: " in x)
        assert all(f" {stage} " in line for stage in stages) and "peak RSS" in line, line
    assert f"{label} | training: epochs run " in run.stdout, run.stdout
    plant = json.loads(out.read_text())["plants"][0]
    models = plant["with training"]["models"]
    assert [m["trained"] for m in models] == [True, True]
    assert all(m["epochs_run"] >= 1 and m["train_seconds"] > 0 for m in models)
    assert not any(m["trained"] for m in plant["models loaded"]["models"])


def test_first_week_benchmark_short_run_prints_every_day(tmp_path: Path) -> None:
    """``bench/first_week.py`` over 4 days with the operator's review: two warming-up days,
    then provisional models; every (day, group) row and the summary are printed."""
    run = subprocess.run([sys.executable, str(REPO / "bench" / "first_week.py"), "--days", "4",
                          "--anomaly-days", "4", "--review", "--list-false"],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "TSAD_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    rows = [line.split() for line in run.stdout.splitlines() if line.startswith("2027-01-")]
    assert [(r[0], r[1]) for r in rows] == [(f"2027-01-0{d}", g) for d in (4, 5, 6, 7)
                                           for g in ("pumps", "boiler")], run.stdout
    assert [r[2] for r in rows] == ["warming_up"] * 4 + ["ok"] * 4, run.stdout
    assert "point F1 on the anomalous days:" in run.stdout.splitlines()[-1]
