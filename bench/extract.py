"""Extract benchmark: a long source table of C channels x 1 day at 1 Hz into one partition.

For each workload (SQLite, and PostgreSQL where a server can be started the way the tests start
one, ``tests/pg_fixture.py``) it builds the table, then measures in the same run, each in a fresh
child process (time after imports; peak RSS from ``resource.getrusage``):

- ``DB-API fetchall``: the old-style read (``sqlite3`` / ``psycopg2`` rows, no pivot);
- ``ADBC + numpy pivot``: the columnar reference: ADBC -> Arrow, stamps cast, sensors coded,
  values scattered onto the grid (no quality rules, no Parquet write);
- ``tsad extract_day``: the real thing (quality policy, counts, partition written);
- ``tsad extract_day (baseline)``: the same with ``--baseline-plugins DIR`` (an older checkout's
  ``plugins/``, e.g. ``git archive <commit> plugins | tar -x -C /tmp/old``), if given.

Prints rows/s, the ratio to the ADBC reference, and peak RSS against the bound of 3x the day's
wide float32 size + 512 MB. ``--quick``: 3 channels at 10 s, seconds in all (the test runs it).
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
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAY = "2024-01-02"
START = "2024-01-02 00:00:00"
LO, HI = "2024-01-01 23:59:59.000000", "2024-01-03 00:00:00.000000"  # tsad's SQLite bounds
CONSTANT_MB = 512


# ---------------------------------------------------------------- tables


def _long_table(channels: int, step: int) -> Any:
    """The day's long rows as Arrow: stamps in time order, channels ``ch0000``.., N(0, 1) values."""
    import numpy as np
    import pyarrow as pa

    n = 86_400 // step
    stamps = np.datetime64(START, "us") + np.arange(n, dtype=np.int64) * step * 1_000_000
    names = np.array([f"ch{j:04d}" for j in range(channels)], dtype=object)
    values = np.random.default_rng(0).standard_normal(n * channels)
    return pa.table({"ts": pa.array(np.repeat(stamps, channels)),
                     "sensor": pa.array(np.tile(names, n), pa.string()),
                     "value": pa.array(values)})


def build_sqlite(path: Path, channels: int, step: int) -> str:
    """``readings(ts DATETIME, sensor VARCHAR, value FLOAT)`` as SQLAlchemy writes it (text stamps
    with microseconds), filled through ADBC's bulk ingest."""
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _long_table(channels, step)
    text = pc.strftime(table["ts"], format="%Y-%m-%d %H:%M:%S")  # %S: with the microseconds
    table = table.set_column(0, "ts", text.cast(pa.string()))
    path.unlink(missing_ok=True)
    with adbc.connect(str(path)) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE readings (ts DATETIME, sensor VARCHAR(32), value FLOAT)")
        cursor.adbc_ingest("readings", table, mode="append")
        conn.commit()
    return f"sqlite:///{path}"


def build_postgres(server_url: str, channels: int, step: int) -> str:
    """The same rows in ``readings(ts timestamptz, sensor text, value float8)``."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa
    import sqlalchemy as sa

    sys.path.insert(0, str(REPO / "tests"))
    from pg_fixture import _create_database

    url = _create_database(server_url, "bench")
    table = _long_table(channels, step)
    table = table.set_column(0, "ts", table["ts"].cast(pa.timestamp("us", tz="UTC")))
    plain = sa.engine.make_url(url).set(drivername="postgresql")
    with adbc.connect(plain.render_as_string(hide_password=False)) as conn, \
            conn.cursor() as cursor:
        cursor.execute("CREATE TABLE readings (ts timestamptz, sensor text, value float8)")
        cursor.adbc_ingest("readings", table, mode="append")
        conn.commit()
    return url


# ---------------------------------------------------------------- measured in a child


def measure(kind: str, url: str, channels: int, step: int, workdir: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process: the imports first, then the timed work.

    The parent builds nothing itself: Linux carries a process's peak RSS across ``exec``, so a
    child forked from a big parent would report the parent's peak as its own."""
    import numpy as np
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    query = ("SELECT ts, sensor, value FROM readings WHERE ts >= ? AND ts < ?" if sqlite else
             "SELECT ts, sensor, value FROM readings WHERE ts >= %s AND ts < %s")
    bounds = (LO, HI) if sqlite else ("2024-01-02 00:00:00+00", "2024-01-03 00:00:00+00")
    if kind == "fetchall":
        import sqlite3

        import psycopg2

        conn = (sqlite3.connect(parsed.database) if sqlite
                else psycopg2.connect(parsed.set(drivername="postgresql").render_as_string(
                    hide_password=False)))
        start = time.perf_counter()
        rows = conn.cursor().execute(query, bounds) if sqlite else None
        if sqlite:
            rows = rows.fetchall()
        else:
            cursor = conn.cursor()
            cursor.execute(query, bounds)
            rows = cursor.fetchall()
        count = len(rows)
    elif kind == "adbc":
        import pyarrow as pa
        import pyarrow.compute as pc

        module = __import__("adbc_driver_sqlite.dbapi" if sqlite else
                            "adbc_driver_postgresql.dbapi", fromlist=["connect"])
        target = parsed.database if sqlite else parsed.set(drivername="postgresql") \
            .render_as_string(hide_password=False)
        start = time.perf_counter()
        with module.connect(target) as conn, conn.cursor() as cursor:
            if sqlite:
                cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
                cursor.execute(query, bounds)
            else:
                cursor.execute(query.replace("%s", "$1", 1).replace("%s", "$2"),
                               (datetime(2024, 1, 2, tzinfo=timezone.utc),
                                datetime(2024, 1, 3, tzinfo=timezone.utc)))
            table = cursor.fetch_arrow_table()
        ts = pc.cast(table["ts"], pa.timestamp("us")) if sqlite else table["ts"]
        micros = pc.cast(ts, pa.int64())
        slot = (micros.to_numpy() - np.datetime64(START, "us").astype(np.int64)) // (step * 10**6)
        coded = table["sensor"].combine_chunks().dictionary_encode()
        codes = coded.indices.to_numpy()
        grid = np.full((len(coded.dictionary), 86_400 // step), np.nan)
        grid[codes, slot] = table["value"].to_numpy()
        count = table.num_rows
    else:
        sys.path.insert(0, kind.split("=", 1)[1] if "=" in kind else str(REPO / "plugins"))
        from datetime import date

        from tsad.config import GroupConfig, from_dict
        from tsad.ingest.extract import extract_day

        group = from_dict(GroupConfig, {
            "name": "bench", "channels": [f"ch{j:04d}" for j in range(channels)],
            "sampling_seconds": step, "window": {"length": 60, "stride": 30},
            "source": {"kind": "sql", "url": url, "table": "readings",
                       "timestamp_column": "ts"}}, "group")
        start = time.perf_counter()
        result = extract_day(group, date.fromisoformat(DAY), "UTC", workdir)
        count = result.quality["rows_read"]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rows": count, "peak_mb": peak}


def child(kind: str, url: str, channels: int, step: int, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, __file__, "--child", kind, url, str(channels),
                          str(step), str(workdir)], capture_output=True, text=True, env=env,
                         timeout=3600)
    if run.returncode != 0:
        raise RuntimeError(f"{kind} failed:\n{run.stderr[-3000:]}")
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    step = 10 if args.quick else 1
    sizes = [3] if args.quick else args.channels
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tsad-bench-extract-"))
    work.mkdir(parents=True, exist_ok=True)
    databases: list[tuple[str, Any]] = [("SQLite", None)]
    server = None
    if args.postgres:
        sys.path.insert(0, str(REPO / "tests"))
        try:
            import pg_fixture

            external = os.environ.get("TSAD_TEST_POSTGRES_URL")
            server = None if external else pg_fixture.new_server()
            databases.append(("PostgreSQL", external or server.url()))  # type: ignore[union-attr]
        except BaseException as exc:  # pytest.skip raises a BaseException
            print(f"PostgreSQL rows skipped: {exc}", flush=True)
    kinds = [("DB-API fetchall", "fetchall"), ("ADBC + numpy pivot", "adbc"),
             ("tsad extract_day", "tsad")]
    if args.baseline_plugins:
        kinds.append(("tsad extract_day (baseline)", f"tsad={args.baseline_plugins}"))
    rows: list[dict[str, Any]] = []
    try:
        for database, server_url in databases:
            for channels in sizes:
                url = child("build", server_url or "sqlite", channels, step,
                            work / f"h{channels}.db")["url"]
                wide_mb = 4 * channels * 86_400 / step / 2**20
                reference = None
                for label, kind in kinds:
                    m = child(kind, url, channels, step, work / "data")
                    if kind == "adbc":
                        reference = m["seconds"]
                    row = {"database": database, "channels": channels, "method": label,
                           "rows": m["rows"], "seconds": round(m["seconds"], 3),
                           "rows_per_s": round(m["rows"] / m["seconds"]),
                           "peak_mb": round(m["peak_mb"]),
                           "bound_mb": round(3 * wide_mb + CONSTANT_MB),
                           "vs_adbc": (round(m["seconds"] / reference, 2) if reference else None)}
                    rows.append(row)
                    bound = f" (bound {row['bound_mb']} MB)" if kind.startswith("tsad") else ""
                    print(f"{database} {channels} ch x 1 day ({m['rows']:,} rows) | {label}: "
                          f"{row['seconds']:.2f} s, {row['rows_per_s'] / 1e6:.2f} M rows/s, "
                          f"peak RSS {row['peak_mb']} MB{bound}"
                          + (f", {row['vs_adbc']}x the ADBC time" if row["vs_adbc"] else ""),
                          flush=True)
    finally:
        if server is not None:
            server.destroy()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 channels at 10 s: seconds")
    parser.add_argument("--channels", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--postgres", action="store_true",
                        help="also PostgreSQL (a throwaway server as the tests start one)")
    parser.add_argument("--baseline-plugins", help="an older checkout's plugins/ to compare")
    parser.add_argument("--workdir")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    if args.child:
        kind, url, channels, step, workdir = args.child
        if kind == "build":  # in a child too: a forked parent's RSS would count in the next
            built = (build_sqlite(Path(workdir), int(channels), int(step)) if url == "sqlite"
                     else build_postgres(url, int(channels), int(step)))
            print(json.dumps({"url": built}))
            return
        print(json.dumps(measure(kind, url, int(channels), int(step), workdir)))
        return
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; python {platform.python_version()}", flush=True)
    rows = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
