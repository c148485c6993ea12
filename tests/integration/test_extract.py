"""Extract: one day from SQL tables or dropped files onto the regular grid, with clear errors."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tsad.config import GroupConfig, TsadConfig, from_dict
from tsad.errors import ConfigError, DataError, SourceError
from tsad.ingest.extract import ExtractResult, extract_day
from tsad.ingest.partitions import partition_path, read_partition
from tsad.evaluation.simulator import simulate

PUMPS = [
    "flow",
    "suction_pressure",
    "discharge_pressure",
    "motor_current",
    "motor_temp",
    "vibration",
]
BOILER = ["steam_flow", "feedwater_flow", "drum_level", "steam_pressure", "flue_temp"]
DAY = date(2024, 1, 2)


def group(
    source: dict[str, Any], channels: list[str] | None = None, name: str = "g"
) -> GroupConfig:
    data = {"name": name, "channels": channels or ["a", "b"], "source": source}
    return from_dict(GroupConfig, data, "group")


def plant(db: Path, start: date, days: int, site_timezone: str = "UTC") -> TsadConfig:
    """Simulated pumps (long) and boiler (wide) tables in ``db``."""
    url = f"sqlite:///{db}"
    config = from_dict(
        TsadConfig,
        {
            "site_timezone": site_timezone,
            "groups": [
                {
                    "name": "pumps",
                    "channels": PUMPS,
                    "source": {
                        "kind": "sql",
                        "url": url,
                        "table": "pump_readings",
                        "timestamp_column": "ts",
                    },
                },
                {
                    "name": "boiler",
                    "channels": BOILER,
                    "source": {
                        "kind": "sql",
                        "url": url,
                        "table": "boiler_readings",
                        "layout": "wide",
                        "timestamp_column": "ts",
                    },
                },
            ],
        },
    )
    simulate(config, start, days)
    return config


def source_frame(db: Path, table: str) -> pd.DataFrame:
    """What the simulator wrote, as a UTC wide frame."""
    with sa.create_engine(f"sqlite:///{db}").connect() as conn:
        rows = pd.read_sql(f"SELECT * FROM {table}", conn)
    rows["ts"] = pd.to_datetime(rows["ts"]).dt.tz_localize("UTC")
    if "sensor" in rows:
        rows = rows.pivot(index="ts", columns="sensor", values="value")
    return rows.set_index("ts") if "ts" in rows else rows


def long_table(db: Path, rows: list[tuple[datetime, str, Any]], value_type: Any = sa.Float) -> str:
    """A hand-made long table ``readings(ts DateTime, sensor, value)``; returns its URL."""
    engine = sa.create_engine(f"sqlite:///{db}")
    metadata = sa.MetaData()
    table = sa.Table(
        "readings",
        metadata,
        sa.Column("ts", sa.DateTime()),
        sa.Column("sensor", sa.String(32)),
        sa.Column("value", value_type),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [{"ts": t, "sensor": s, "value": v} for t, s, v in rows])
    engine.dispose()
    return f"sqlite:///{db}"


def minute(day: date, m: int, seconds: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day) + timedelta(minutes=m, seconds=seconds)


# ---------------------------------------------------------------- SQL sources


def test_long_table_matches_the_source(tmp_path: Path) -> None:
    config = plant(tmp_path / "h.db", date(2024, 1, 1), 3)
    result = extract_day(config.group("pumps"), DAY, "UTC", tmp_path / "data")

    assert isinstance(result, ExtractResult) and result.rows == 1440
    assert result.path == str(partition_path(tmp_path / "data", "pumps", DAY))
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
    q = result.quality
    assert q["rows_read"] == 1440 * 6 and q["grid_points"] == 1440
    assert (
        q["missing_points"]
        == q["nan_points"]
        == q["duplicate_timestamps"]
        == q["extra_channels"]
        == 0
    )

    frame = read_partition(tmp_path / "data", "pumps", DAY, PUMPS)
    expected = source_frame(tmp_path / "h.db", "pump_readings").loc["2024-01-02", PUMPS]
    np.testing.assert_array_equal(frame.to_numpy(), expected.to_numpy())
    assert (
        frame.index[0] == pd.Timestamp("2024-01-02", tz="UTC") and frame.index.name == "timestamp"
    )
    assert list(frame.dtypes.astype(str)) == ["float64"] * 6


def test_wide_table_matches_the_source(tmp_path: Path) -> None:
    config = plant(tmp_path / "h.db", date(2024, 1, 1), 3)
    result = extract_day(config.group("boiler"), DAY, "UTC", tmp_path / "data")
    assert result.rows == 1440 and result.quality["rows_read"] == 1440
    frame = read_partition(tmp_path / "data", "boiler", DAY, BOILER)
    expected = source_frame(tmp_path / "h.db", "boiler_readings").loc["2024-01-02", BOILER]
    np.testing.assert_array_equal(frame.to_numpy(), expected.to_numpy())


def test_rows_at_midnight_belong_to_the_day_that_starts_then(tmp_path: Path) -> None:
    url = long_table(
        tmp_path / "h.db",
        [
            (minute(date(2024, 1, 1), 1439), "a", 0.0),
            (minute(DAY, 0), "a", 1.0),
            (minute(DAY, 720), "a", 2.0),
            (minute(DAY, 1439), "a", 3.0),
            (minute(date(2024, 1, 3), 0), "a", 4.0),
        ],
    )
    g = group({"kind": "sql", "url": url, "table": "readings", "timestamp_column": "ts"}, ["a"])
    result = extract_day(g, DAY, "UTC", tmp_path / "data")
    assert result.quality["rows_read"] == 3  # the query itself is bounded to the day
    a = read_partition(tmp_path / "data", "g", DAY, ["a"])["a"]
    assert a.iloc[0] == 1.0 and a.iloc[720] == 2.0 and a.iloc[-1] == 3.0
    assert a.index[-1] == pd.Timestamp("2024-01-02 23:59", tz="UTC")
    extract_day(g, date(2024, 1, 3), "UTC", tmp_path / "data")
    assert read_partition(tmp_path / "data", "g", date(2024, 1, 3), ["a"])["a"].iloc[0] == 4.0


def test_text_timestamps_in_sqlite_keep_the_midnight_row(tmp_path: Path) -> None:
    # Text compares character by character: '2024-01-02 00:00:00' < '2024-01-02 00:00:00.000000'.
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE text_readings (ts TEXT, sensor TEXT, value REAL)")
        conn.exec_driver_sql(
            "INSERT INTO text_readings VALUES ('2024-01-01 23:59:00', 'a', 0), "
            "('2024-01-02 00:00:00', 'a', 1), ('2024-01-02T23:59:00', 'a', 3), "
            "('2024-01-03 00:00:00', 'a', 4)"
        )
    g = group(
        {"kind": "sql", "url": url, "table": "text_readings", "timestamp_column": "ts"}, ["a"]
    )
    result = extract_day(g, DAY, "UTC", tmp_path / "data")
    a = read_partition(tmp_path / "data", "g", DAY, ["a"])["a"]
    assert a.iloc[0] == 1.0 and a.iloc[-1] == 3.0 and result.quality["rows_outside_day"] == 2


def test_non_utc_site_day_and_dst_day(tmp_path: Path) -> None:
    config = plant(tmp_path / "h.db", date(2024, 3, 8), 5)
    boiler = config.group("boiler")
    source = source_frame(tmp_path / "h.db", "boiler_readings")[BOILER]

    result = extract_day(boiler, date(2024, 3, 9), "America/New_York", tmp_path / "data")
    frame = read_partition(tmp_path / "data", "boiler", date(2024, 3, 9), BOILER)
    assert result.rows == 1440 and frame.index[0] == pd.Timestamp("2024-03-09 05:00", tz="UTC")
    np.testing.assert_array_equal(frame.to_numpy(), source.loc[frame.index].to_numpy())

    result = extract_day(boiler, date(2024, 3, 10), "America/New_York", tmp_path / "data")
    assert result.rows == 23 * 60  # spring forward: a 23-hour day
    frame = read_partition(tmp_path / "data", "boiler", date(2024, 3, 10), BOILER)
    assert frame.index[-1] == pd.Timestamp("2024-03-11 03:59", tz="UTC")


def test_re_extracting_overwrites_the_same_partition(tmp_path: Path) -> None:
    config = plant(tmp_path / "h.db", DAY, 1)
    first = extract_day(config.group("pumps"), DAY, "UTC", tmp_path / "data")
    before = read_partition(tmp_path / "data", "pumps", DAY, PUMPS)
    second = extract_day(config.group("pumps"), DAY, "UTC", tmp_path / "data")
    assert first == second
    pd.testing.assert_frame_equal(read_partition(tmp_path / "data", "pumps", DAY, PUMPS), before)
    assert [p.name for p in Path(first.path).parent.iterdir()] == ["readings.parquet"]


def test_source_url_overrides_and_conn_id_needs_one(tmp_path: Path) -> None:
    plant(tmp_path / "h.db", DAY, 1)
    g = group(
        {"kind": "sql", "conn_id": "historian", "table": "pump_readings", "timestamp_column": "ts"},
        PUMPS,
        "pumps",
    )
    with pytest.raises(ConfigError, match="conn_id 'historian'.*Airflow.*URL"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    result = extract_day(
        g, DAY, "UTC", tmp_path / "data", source_url=f"sqlite:///{tmp_path / 'h.db'}"
    )
    assert result.rows == 1440


# ---------------------------------------------------------------- file sources


def test_csv_comma_long_and_semicolon_wide(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-01-02", periods=1440, freq="60s")
    a, b = np.arange(1440) * 0.5, 100 + np.arange(1440) * 0.25
    long = pd.DataFrame(
        {
            "time": np.repeat(stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), 2),
            "tag": ["a", "b"] * 1440,
            "val": np.column_stack([a, b]).ravel(),
        }
    )
    (tmp_path / "long").mkdir()
    long.to_csv(tmp_path / "long" / "g-2024-01-02.csv", index=False)
    wide = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "a": a, "b": b})
    (tmp_path / "wide-2024-01-02.csv").write_text(
        wide.to_csv(sep=";", index=False, decimal=","), encoding="utf-8-sig"
    )

    g_long = group(
        {
            "kind": "files",
            "path": str(tmp_path / "long" / "{group}-{date}.csv"),
            "timestamp_column": "time",
            "sensor_column": "tag",
            "value_column": "val",
        }
    )
    g_wide = group({"kind": "files", "layout": "wide", "path": str(tmp_path / "wide-{date}.csv")})
    for g in (g_long, g_wide):
        result = extract_day(g, DAY, "UTC", tmp_path / g.source.layout)
        frame = read_partition(tmp_path / g.source.layout, "g", DAY, ["a", "b"])
        assert result.rows == 1440 and result.quality["nan_points"] == 0
        np.testing.assert_allclose(frame["a"].to_numpy(), a)
        np.testing.assert_allclose(frame["b"].to_numpy(), b)


def test_parquet_long_and_wide(tmp_path: Path) -> None:
    stamps = pd.date_range("2024-01-02", periods=1440, freq="60s", tz="UTC")
    wide = pd.DataFrame({"timestamp": stamps, "a": np.arange(1440.0), "b": np.ones(1440), "z": 0.0})
    wide.to_parquet(tmp_path / "wide-2024-01-02.parquet", index=False)
    wide.melt(id_vars="timestamp", var_name="sensor").to_parquet(
        tmp_path / "long-2024-01-02.parquet"
    )
    for layout in ("wide", "long"):
        g = group(
            {
                "kind": "files",
                "format": "parquet",
                "layout": layout,
                "path": str(tmp_path / (layout + "-{date}.parquet")),
            }
        )
        result = extract_day(g, DAY, "UTC", tmp_path / layout)
        assert result.quality["extra_channels"] == 1
        frame = read_partition(tmp_path / layout, "g", DAY, ["a", "b"])
        np.testing.assert_array_equal(frame["a"].to_numpy(), np.arange(1440.0))


def test_simulated_files_in_a_local_time_zone_round_trip(tmp_path: Path) -> None:
    groups = [
        {
            "name": f"{fmt}-{layout}",
            "channels": ["a", "b"],
            "source": {
                "kind": "files",
                "format": fmt,
                "layout": layout,
                "timestamps_timezone": "Europe/Berlin",
                "path": str(tmp_path / "drop" / ("{group}-{date}." + fmt)),
            },
        }
        for fmt in ("csv", "parquet")
        for layout in ("long", "wide")
    ]
    config = from_dict(TsadConfig, {"site_timezone": "Europe/Berlin", "groups": groups})
    day = date(2024, 10, 27)  # 25 hours in Berlin
    simulate(config, day, 1)
    frames = []
    for g in config.groups:
        result = extract_day(g, day, "Europe/Berlin", tmp_path / "data")
        assert result.rows == 25 * 60 and result.quality["nan_points"] == 0, g.name
        frames.append(read_partition(tmp_path / "data", g.name, day, ["a", "b"]))
    assert frames[0].index[0] == pd.Timestamp("2024-10-26 22:00", tz="UTC")
    for frame in frames[1:]:  # the same group-independent grid; values differ per group
        pd.testing.assert_index_equal(frame.index, frames[0].index)


def test_naive_timestamps_are_read_in_the_source_time_zone(tmp_path: Path) -> None:
    # Berlin local times for the Berlin day 2024-01-02 = UTC 2024-01-01 23:00 .. 2024-01-02 23:00.
    local = pd.date_range("2024-01-02", periods=1440, freq="60s")
    pd.DataFrame(
        {"timestamp": local.strftime("%Y-%m-%d %H:%M:%S"), "a": np.arange(1440.0), "b": 1.0}
    ).to_csv(tmp_path / "2024-01-02.csv", index=False)
    g = group(
        {
            "kind": "files",
            "layout": "wide",
            "path": str(tmp_path / "{date}.csv"),
            "timestamps_timezone": "Europe/Berlin",
        }
    )
    result = extract_day(g, DAY, "Europe/Berlin", tmp_path / "data")
    frame = read_partition(tmp_path / "data", "g", DAY, ["a", "b"])
    assert result.quality["nan_points"] == 0 and result.quality["rows_outside_day"] == 0
    assert frame.index[0] == pd.Timestamp("2024-01-01 23:00", tz="UTC")
    assert frame["a"].iloc[0] == 0.0 and frame["a"].iloc[-1] == 1439.0


def test_naive_local_long_rows_across_the_autumn_fold(tmp_path: Path) -> None:
    # 2024-10-27 in Berlin has 25 hours; 02:00-02:59 local appears twice, in file order.
    utc = pd.date_range(
        "2024-10-26 22:00", "2024-10-27 23:00", freq="60s", inclusive="left", tz="UTC"
    )
    local = utc.tz_convert("Europe/Berlin").tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    values = np.arange(len(utc), dtype=float)
    pd.DataFrame(
        {
            "timestamp": np.repeat(local, 2),
            "sensor": ["a", "b"] * len(utc),
            "value": np.repeat(values, 2),
        }
    ).to_csv(tmp_path / "2024-10-27.csv", index=False)
    g = group(
        {
            "kind": "files",
            "path": str(tmp_path / "{date}.csv"),
            "timestamps_timezone": "Europe/Berlin",
        }
    )
    result = extract_day(g, date(2024, 10, 27), "Europe/Berlin", tmp_path / "data")
    assert result.rows == 25 * 60 and result.quality["ambiguous_timestamps"] == 0
    frame = read_partition(tmp_path / "data", "g", date(2024, 10, 27), ["a", "b"])
    np.testing.assert_array_equal(frame["b"].to_numpy(), values)


def test_grid_snapping_duplicates_and_gap_filling(tmp_path: Path) -> None:
    rows = []
    for m in range(60):
        if 10 <= m <= 12 or 30 <= m <= 39:
            continue  # a 3-step gap (filled) and a 10-step gap (left NaN)
        rows.append((minute(DAY, m, 10 if m == 5 else 0), float(m), 100.0 + m, 7.0))
    rows.insert(18, (minute(DAY, 20), 22.0, 120.0, 7.0))  # minute 20 again: a averages to 21
    rows[-2], rows[-1] = rows[-1], rows[-2]  # one row out of order
    frame = pd.DataFrame(rows, columns=["timestamp", "a", "b", "z"])
    frame["timestamp"] = frame["timestamp"].astype(str)
    frame.to_csv(tmp_path / "2024-01-02.csv", index=False)
    g = group({"kind": "files", "layout": "wide", "path": str(tmp_path / "{date}.csv")})

    q = extract_day(g, DAY, "UTC", tmp_path / "data").quality
    assert q["rows_read"] == 48 and q["duplicate_timestamps"] == 1 and q["out_of_order"] == 1
    assert q["extra_channels"] == 1 and q["grid_points"] == 1440
    assert q["missing_points"] == 2 * (1440 - 47)
    assert q["filled_points"] == 2 * 3 and q["nan_points"] == 2 * (10 + 1380)
    a = read_partition(tmp_path / "data", "g", DAY, ["a", "b"])["a"]
    assert a.iloc[5] == 5.0  # 10 s late, snapped onto 00:05
    assert list(a.iloc[10:13]) == [9.0, 9.0, 9.0]
    assert a.iloc[20] == 21.0
    assert a.iloc[30:40].isna().all() and a.iloc[40] == 40.0 and a.iloc[60:].isna().all()


# ---------------------------------------------------------------- errors


def test_missing_table_names_table_and_database(tmp_path: Path) -> None:
    plant(tmp_path / "h.db", DAY, 1)
    g = group(
        {
            "kind": "sql",
            "url": f"sqlite:///{tmp_path / 'h.db'}",
            "table": "nope",
            "timestamp_column": "ts",
        }
    )
    with pytest.raises(SourceError) as err:
        extract_day(g, DAY, "UTC", tmp_path / "data")
    assert "'nope'" in str(err.value) and str(tmp_path / "h.db") in str(err.value)


def test_missing_database_file_is_not_created(tmp_path: Path) -> None:
    g = group({"kind": "sql", "url": f"sqlite:///{tmp_path / 'absent.db'}", "table": "t"})
    with pytest.raises(SourceError, match="does not exist"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    assert not (tmp_path / "absent.db").exists()


def test_unreachable_database_hides_the_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg2")
    g = group(
        {"kind": "sql", "url": "postgresql://tsad:s3cret@127.0.0.1:1/historian", "table": "t"}
    )
    with pytest.raises(SourceError) as err:
        extract_day(g, DAY, "UTC", tmp_path / "data")
    assert "s3cret" not in str(err.value) and "tsad:***@127.0.0.1:1" in str(err.value)


def test_missing_file_names_path_and_day(tmp_path: Path) -> None:
    g = group({"kind": "files", "path": str(tmp_path / "{group}-{date}.csv")})
    with pytest.raises(SourceError) as err:
        extract_day(g, DAY, "UTC", tmp_path / "data")
    assert str(tmp_path / "g-2024-01-02.csv") in str(err.value) and "2024-01-02" in str(err.value)


def test_no_rows_for_the_day(tmp_path: Path) -> None:
    plant(tmp_path / "h.db", date(2024, 1, 1), 1)
    g = group(
        {
            "kind": "sql",
            "url": f"sqlite:///{tmp_path / 'h.db'}",
            "table": "pump_readings",
            "timestamp_column": "ts",
        },
        PUMPS,
        "pumps",
    )
    with pytest.raises(DataError, match="no rows for group 'pumps' on 2024-01-02.*'pump_readings'"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    (tmp_path / "2024-01-02.csv").write_text("timestamp,sensor,value\n")
    g = group({"kind": "files", "path": str(tmp_path / "{date}.csv")})
    with pytest.raises(DataError, match="no rows for group 'g' on 2024-01-02.*2024-01-02.csv"):
        extract_day(g, DAY, "UTC", tmp_path / "data")


def test_absent_channel_lists_what_was_found(tmp_path: Path) -> None:
    plant(tmp_path / "h.db", DAY, 1)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    for table, layout, channels in (
        ("pump_readings", "long", PUMPS),
        ("boiler_readings", "wide", BOILER),
    ):
        g = group(
            {"kind": "sql", "url": url, "table": table, "layout": layout, "timestamp_column": "ts"},
            [*channels, "bearing_temp"],
            "plant",
        )
        with pytest.raises(DataError) as err:
            extract_day(g, DAY, "UTC", tmp_path / "data")
        message = str(err.value)
        assert "'bearing_temp'" in message and "'plant'" in message and "2024-01-02" in message
        assert all(repr(c) in message for c in channels)


def test_non_numeric_value_is_shown(tmp_path: Path) -> None:
    (tmp_path / "2024-01-02.csv").write_text(
        "timestamp,a,b\n2024-01-02 00:00:00,1.5,2\n2024-01-02 00:01:00,ERR#17,2\n"
    )
    g = group({"kind": "files", "layout": "wide", "path": str(tmp_path / "{date}.csv")})
    with pytest.raises(DataError, match="column 'a'.*'ERR#17'"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    url = long_table(
        tmp_path / "h.db",
        [(minute(DAY, 0), "a", "1.5"), (minute(DAY, 1), "a", "bad!")],
        value_type=sa.Text,
    )
    g = group({"kind": "sql", "url": url, "table": "readings", "timestamp_column": "ts"}, ["a"])
    with pytest.raises(DataError, match="column 'value'.*'readings'.*'bad!'"):
        extract_day(g, DAY, "UTC", tmp_path / "data")


def test_bad_timestamp_is_shown(tmp_path: Path) -> None:
    (tmp_path / "2024-01-02.csv").write_text("timestamp,a,b\n02.01.2024 00:00,1,2\n")
    g = group({"kind": "files", "layout": "wide", "path": str(tmp_path / "{date}.csv")})
    with pytest.raises(DataError, match="timestamp column 'timestamp'.*'02.01.2024 00:00'"):
        extract_day(g, DAY, "UTC", tmp_path / "data")


def test_missing_columns_are_named_with_file_or_table(tmp_path: Path) -> None:
    (tmp_path / "2024-01-02.csv").write_text("time,a,b\n2024-01-02 00:00:00,1,2\n")
    g = group({"kind": "files", "layout": "wide", "path": str(tmp_path / "{date}.csv")})
    with pytest.raises(DataError, match="column 'timestamp' not found in file .*2024-01-02.csv"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    url = long_table(tmp_path / "h.db", [(minute(DAY, 0), "a", 1.0)])
    g = group(
        {
            "kind": "sql",
            "url": url,
            "table": "readings",
            "timestamp_column": "ts",
            "sensor_column": "tag",
        },
        ["a"],
    )
    with pytest.raises(DataError, match="column 'tag' not found in table 'readings'"):
        extract_day(g, DAY, "UTC", tmp_path / "data")


def test_corrupt_files_are_source_errors(tmp_path: Path) -> None:
    (tmp_path / "2024-01-02.parquet").write_bytes(b"PAR1 this is not parquet")
    g = group({"kind": "files", "format": "parquet", "path": str(tmp_path / "{date}.parquet")})
    with pytest.raises(SourceError, match="2024-01-02.parquet"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
    (tmp_path / "2024-01-02.csv").write_bytes(b"")
    g = group({"kind": "files", "path": str(tmp_path / "{date}.csv")})
    with pytest.raises(SourceError, match="2024-01-02.csv"):
        extract_day(g, DAY, "UTC", tmp_path / "data")
