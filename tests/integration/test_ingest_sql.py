"""SQL sources through the columnar readers: ADBC on SQLite and PostgreSQL, SQLAlchemy otherwise.

Each case extracts the same table through ADBC and through the SQLAlchemy path (the fallback for
other databases and for a missing driver) and asserts the same partition and counts; the cases
are the ones ADBC types differently from the DB-API drivers.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tsad.config import GroupConfig, from_dict
from tsad.errors import DataError
from tsad.ingest import sql_batches
from tsad.ingest.extract import ExtractResult, extract_day
from tsad.ingest.partitions import read_partition
from tsad.storage.engine import dispose_all

DAY = date(2024, 1, 2)


def group(url: str, channels: tuple[str, ...] = ("a", "b"), quality: dict[str, Any] | None = None,
          **source: Any) -> GroupConfig:
    return from_dict(GroupConfig, {
        "name": "g", "channels": list(channels), "sampling_seconds": 60, "quality": quality or {},
        "source": {"kind": "sql", "url": url, "table": "readings", "timestamp_column": "ts",
                   **source}}, "group")


def both(g: GroupConfig, tmp: Path, monkeypatch: pytest.MonkeyPatch,
         batch_rows: int = 100) -> tuple[ExtractResult, pd.DataFrame]:
    """Extract through ADBC (small batches) and through SQLAlchemy; assert they agree."""
    monkeypatch.setattr(sql_batches, "SQLITE_BATCH_ROWS", batch_rows)
    monkeypatch.setattr(sql_batches, "FALLBACK_CHUNK_ROWS", batch_rows)
    columnar = extract_day(g, DAY, "UTC", tmp / "adbc")
    frame = read_partition(tmp / "adbc", "g", DAY, list(g.channels))
    with monkeypatch.context() as patch:
        patch.setattr(sql_batches, "adbc_module", lambda dialect: None)
        rows = extract_day(g, DAY, "UTC", tmp / "rows")
    assert columnar.quality == rows.quality
    pd.testing.assert_frame_equal(frame, read_partition(tmp / "rows", "g", DAY, list(g.channels)))
    return columnar, frame


def fill(url: str, create: str, rows: list[tuple[Any, ...]]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(create)
        marks = ", ".join(["%s" if engine.dialect.name == "postgresql" else "?"] * len(rows[0]))
        conn.exec_driver_sql(f"INSERT INTO readings VALUES ({marks})", rows)
    engine.dispose()


def minutes(n: int, seconds: int = 0) -> list[datetime]:
    return [datetime(2024, 1, 2) + timedelta(minutes=m, seconds=seconds) for m in range(n)]


def test_sqlite_readings_that_mix_numbers_and_text(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A REAL column holding some text far into the day (ADBC would write the numbers of such a
    batch with six digits), an INTEGER column, and a first batch without any reading."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    rows: list[tuple[Any, ...]] = []
    for i, t in enumerate(minutes(1440)):
        stamp = t.strftime("%Y-%m-%d %H:%M:%S")
        rows.append((stamp, "a", None if i < 300 else 1.0 + i / 7))  # nothing in 2 batches
        rows.append((stamp, "b", "n/a" if i == 1000 else 2.0 + i / 3))  # text late in the day
    fill(url, "CREATE TABLE readings (ts DATETIME, sensor VARCHAR(8), value FLOAT)", rows)
    result, frame = both(group(url, quality={"non_numeric": "missing"}), tmp_path, monkeypatch)
    assert result.quality["retyped_columns"] == 1 and result.quality["nan_values"] == 301
    assert frame["b"].iloc[999] == 2.0 + 999 / 3  # every digit kept
    counts = [(f"2024-01-02 00:{m:02d}:00", m, 7 * m) for m in range(60)]
    fill(f"sqlite:///{tmp_path / 'i.db'}",
         "CREATE TABLE readings (ts TEXT, a INTEGER, b BIGINT)", counts)
    result, frame = both(group(f"sqlite:///{tmp_path / 'i.db'}", layout="wide"), tmp_path / "i",
                         monkeypatch)
    assert frame["b"].iloc[59] == 413.0 and result.quality["retyped_columns"] == 0


def test_sqlite_text_readings_are_refused_as_before(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    rows = [(t.strftime("%Y-%m-%d %H:%M:%S"), "a", "1.5" if i != 500 else "ERR") for i, t in
            enumerate(minutes(1440))]
    fill(url, "CREATE TABLE readings (ts TEXT, sensor TEXT, value TEXT)", rows)
    monkeypatch.setattr(sql_batches, "SQLITE_BATCH_ROWS", 64)
    with pytest.raises(DataError, match=r"column 'value' .*'readings'.*'ERR' at 2024-01-02 08:20"):
        extract_day(group(url, ("a",)), DAY, "UTC", tmp_path / "data")


def test_postgres_types_read_alike(pg_url: str, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """timestamptz and naive timestamps, float4 (read as its decimal text, as psycopg2 does),
    numeric (text to tsad: counted as retyped), integer sensor ids."""
    for ts_type in ("timestamptz", "timestamp"):
        dispose_all()
        with sa.create_engine(pg_url).begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS readings")
        rows = [(t, s, 0.1 * i + s, 1.1 * i) for i, t in enumerate(minutes(1440, 20))
                for s in (1, 2)]
        fill(pg_url, f"CREATE TABLE readings (ts {ts_type}, sensor integer, f real, "
                     "n numeric)", rows)
        for column, retyped, expected in (("f", 0, 2.3), ("n", 1, 3.3)):
            g = group(pg_url, ("1", "2"), sensor_column="sensor", value_column=column)
            result, frame = both(g, tmp_path / ts_type / column, monkeypatch)
            assert result.quality["retyped_columns"] == retyped and result.rows == 1440
            assert frame["2"].iloc[3] == pytest.approx(expected, abs=1e-9)
    dispose_all()


def test_a_connection_url_from_airflow_reads_through_adbc(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``source.conn_id`` resolves (airflow_layer.connections) to a SQLAlchemy URL with a driver
    name; the columnar reader takes it as it is."""
    pytest.importorskip("airflow")
    from tsad.airflow_layer.connections import sqlalchemy_url

    plain = sa.engine.make_url(pg_url).set(drivername="postgresql")
    monkeypatch.setenv("AIRFLOW_CONN_HISTORIAN", plain.render_as_string(hide_password=False))
    fill(pg_url, "CREATE TABLE readings (ts timestamptz, sensor text, value float8)",
         [(t.replace(tzinfo=None), s, 1.0) for t in minutes(30) for s in ("a", "b")])
    used: list[str] = []
    real = sql_batches.adbc_module
    monkeypatch.setattr(sql_batches, "adbc_module", lambda d: used.append(d) or real(d))
    g = from_dict(GroupConfig, {"name": "g", "channels": ["a", "b"], "source": {
        "kind": "sql", "conn_id": "historian", "table": "readings", "timestamp_column": "ts"}},
        "group")
    result = extract_day(g, DAY, "UTC", tmp_path / "data", source_url=sqlalchemy_url("historian"))
    assert used == ["postgresql"] and result.quality["rows_read"] == 60
    dispose_all()


def test_a_missing_driver_falls_back_naming_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    fill(url, "CREATE TABLE readings (ts DATETIME, sensor TEXT, value FLOAT)",
         [(t.strftime("%Y-%m-%d %H:%M:%S"), "a", 1.0) for t in minutes(10)])
    real = sql_batches.importlib.import_module

    def no_adbc(name: str) -> Any:
        if name.startswith("adbc_"):
            raise ImportError(f"No module named {name!r}")
        return real(name)

    monkeypatch.setattr(sql_batches.importlib, "import_module", no_adbc)
    monkeypatch.setattr(sql_batches, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="tsad.ingest.sql_batches"):
        result = extract_day(group(url, ("a",)), DAY, "UTC", tmp_path / "data")
    assert result.quality["rows_read"] == 10
    assert "adbc-driver-sqlite is not installed" in caplog.text
    assert "pip install adbc-driver-sqlite" in caplog.text
    a = read_partition(tmp_path / "data", "g", DAY, ["a"])["a"]
    assert np.isfinite(a.iloc[:10]).all() and a.iloc[10:].isna().all()
