"""Bad input, one test per case: a clear error naming the file, column, day or key, or the
documented data-quality policy with its counts recorded. The table is docs/bad-inputs.md (a test
below keeps the two in step)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from tsad.config import GroupConfig, from_dict, load_config
from tsad.errors import ConfigError, DataError, SourceError
from tsad.ingest.extract import ExtractResult, extract_day
from tsad.ingest.partitions import partition_path, read_partition
from tsad.retry import TransientSourceError

from conftest import REPO  # noqa: E402
DAY = date(2024, 1, 2)
STEP = 600  # ten-minute grid: 144 points a day
N = 86_400 // STEP


def group(tmp: Path, *, layout: str = "wide", fmt: str = "csv",
          channels: tuple[str, ...] = ("a", "b"), quality: dict[str, Any] | None = None,
          **source: Any) -> GroupConfig:
    data = {"name": "g", "channels": list(channels), "sampling_seconds": STEP,
            "window": {"length": 6, "stride": 3},
            "source": {"kind": "files", "layout": layout, "format": fmt,
                       "path": str(tmp / ("{date}." + fmt)), **source}}
    if quality:
        data["quality"] = quality
    return from_dict(GroupConfig, data, "group")


def stamps(day: date = DAY, n: int = N, tz: str | None = None) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(day), periods=n, freq=f"{STEP}s", tz=tz)


def wide(n: int = N, day: date = DAY) -> pd.DataFrame:
    """A clean day: ``a`` counts up, ``b`` is constant; timestamps as naive UTC text."""
    return pd.DataFrame({"timestamp": stamps(day, n).strftime("%Y-%m-%d %H:%M:%S"),
                         "a": np.arange(n, dtype=float), "b": 5.0})


def write_csv(tmp: Path, frame: pd.DataFrame, day: date = DAY) -> Path:
    path = tmp / f"{day.isoformat()}.csv"
    frame.to_csv(path, index=False)
    return path


def run(g: GroupConfig, tmp: Path, day: date = DAY, tz: str = "UTC") -> ExtractResult:
    return extract_day(g, day, tz, tmp / "data")


def partition(g: GroupConfig, tmp: Path, day: date = DAY) -> pd.DataFrame:
    return read_partition(tmp / "data", g.name, day, list(g.channels))


# ---------------------------------------------------------------- days and rows


def test_missing_day(tmp_path: Path) -> None:
    """SourceError naming the expected file and the day (file source); DataError naming the
    table and the day's UTC bounds (SQL source)."""
    with pytest.raises(SourceError) as err:
        run(group(tmp_path), tmp_path)
    assert str(tmp_path / "2024-01-02.csv") in str(err.value) and "2024-01-02" in str(err.value)
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE readings (ts TIMESTAMP, sensor TEXT, value REAL)")
        conn.exec_driver_sql("INSERT INTO readings VALUES ('2024-01-01 12:00:00', 'a', 1.0)")
    g = from_dict(GroupConfig, {"name": "g", "channels": ["a"], "source": {
        "kind": "sql", "url": url, "table": "readings", "timestamp_column": "ts"}}, "group")
    with pytest.raises(DataError, match=r"no rows for group 'g' on 2024-01-02 .*'readings'"):
        run(g, tmp_path)


def test_empty_day(tmp_path: Path) -> None:
    """DataError 'no rows for group ... on <day>' naming the file; nothing is written."""
    write_csv(tmp_path, wide(0))
    with pytest.raises(DataError, match=r"no rows for group 'g' on 2024-01-02.*2024-01-02\.csv"):
        run(group(tmp_path), tmp_path)
    assert not partition_path(tmp_path / "data", "g", DAY).exists()


def test_duplicate_timestamps(tmp_path: Path) -> None:
    """Policy quality.duplicates (mean, first, last; counted as duplicate_timestamps), or error
    naming the file, timestamp and channel."""
    frame = wide()
    extra = frame.iloc[[10]].assign(a=100.0)
    write_csv(tmp_path, pd.concat([frame, extra]))
    result = run(group(tmp_path), tmp_path)
    assert result.quality["duplicate_timestamps"] == 1
    assert partition(group(tmp_path), tmp_path)["a"].iloc[10] == 55.0  # mean of 10 and 100
    for policy, expected in (("first", 10.0), ("last", 100.0)):
        g = group(tmp_path, quality={"duplicates": policy})
        run(g, tmp_path)
        assert partition(g, tmp_path)["a"].iloc[10] == expected
    with pytest.raises(DataError, match=r"several readings at 2024-01-02 01:40:00 UTC"):
        run(group(tmp_path, quality={"duplicates": "error"}), tmp_path)
    long = pd.DataFrame({"timestamp": ["2024-01-02 00:00:00"] * 3, "sensor": ["a", "a", "b"],
                         "value": [1.0, 2.0, 3.0]})
    write_csv(tmp_path, long)
    with pytest.raises(DataError, match=r"several readings of channel 'a' at 2024-01-02 00:00"):
        run(group(tmp_path, layout="long", quality={"duplicates": "error"}), tmp_path)


def test_out_of_order_timestamps(tmp_path: Path) -> None:
    """Sorted; counted as out_of_order (steps backwards in the order the source sent rows)."""
    frame = wide()
    write_csv(tmp_path, frame.sample(frac=1.0, random_state=3))
    result = run(group(tmp_path), tmp_path)
    assert result.quality["out_of_order"] > 0
    np.testing.assert_array_equal(partition(group(tmp_path), tmp_path)["a"], frame["a"])


def test_long_gap(tmp_path: Path) -> None:
    """Gaps up to quality.max_fill_steps are forward-filled; longer ones stay NaN and the windows
    over them are not scored (masked_windows); over quality.max_missing_fraction: DataError."""
    frame = wide()
    write_csv(tmp_path, frame.drop(index=[*range(20, 23), *range(60, 90)]))  # 3 and 30 steps
    q = run(group(tmp_path), tmp_path).quality
    a = partition(group(tmp_path), tmp_path)["a"]
    assert list(a.iloc[20:23]) == [19.0] * 3 and a.iloc[60:90].isna().all()
    assert q["filled_points"] == 2 * 3 and q["nan_points"] == 2 * 30 and q["masked_windows"] >= 10
    with pytest.raises(DataError, match=r"group 'g' on 2024-01-02: 21% of the day's readings are "
                                        r"missing.*max_missing_fraction=0.1"):
        run(group(tmp_path, quality={"max_missing_fraction": 0.1}), tmp_path)
    q = run(group(tmp_path, quality={"max_fill_steps": 0}), tmp_path).quality
    assert q["filled_points"] == 0 and q["nan_points"] == 2 * 33


def test_nan_readings(tmp_path: Path) -> None:
    """Missing readings (empty, NaN, null) count as nan_values and are filled like gaps; with
    quality.non_finite: error, DataError naming the column and timestamp."""
    frame = wide().astype({"a": object})
    frame.loc[5, "a"], frame.loc[6, "a"], frame.loc[7, "b"] = "", "NaN", None
    write_csv(tmp_path, frame)
    q = run(group(tmp_path), tmp_path).quality
    assert q["nan_values"] == 3 and q["nan_points"] == 0 and q["filled_points"] == 3
    with pytest.raises(DataError, match=r"column 'a' .*missing or infinite.*00:50:00 UTC"):
        run(group(tmp_path, quality={"non_finite": "error"}), tmp_path)


def test_inf_readings(tmp_path: Path) -> None:
    """inf and -inf become missing (inf_values) and are filled like gaps; with
    quality.non_finite: error, DataError naming the column and timestamp."""
    frame = wide()
    frame["b"] = frame["b"].astype(object)
    frame.loc[3, "b"], frame.loc[4, "b"] = "inf", "-inf"
    write_csv(tmp_path, frame)
    q = run(group(tmp_path), tmp_path).quality
    b = partition(group(tmp_path), tmp_path)["b"]
    assert q["inf_values"] == 2 and np.isfinite(b).all()
    parquet = wide().assign(timestamp=stamps(tz="UTC"), a=lambda f: f["a"].replace(7.0, np.inf))
    parquet.to_parquet(tmp_path / "2024-01-02.parquet")
    assert run(group(tmp_path, fmt="parquet"), tmp_path).quality["inf_values"] == 1
    with pytest.raises(DataError, match=r"column 'a' .*parquet.*infinite.*01:10:00 UTC"):
        run(group(tmp_path, fmt="parquet", quality={"non_finite": "error"}), tmp_path)


def test_text_in_numeric_column(tmp_path: Path) -> None:
    """DataError naming the file, column, value and timestamp; or with quality.non_numeric:
    missing, counted as non_numeric_values."""
    frame = wide().astype({"a": object})
    frame.loc[9, "a"] = "ERR#17"
    write_csv(tmp_path, frame)
    with pytest.raises(DataError) as err:
        run(group(tmp_path), tmp_path)
    message = str(err.value)
    assert "column 'a'" in message and "'ERR#17'" in message and "01:30:00 UTC" in message
    assert "2024-01-02.csv" in message
    q = run(group(tmp_path, quality={"non_numeric": "missing"}), tmp_path).quality
    assert q["non_numeric_values"] == 1 and q["filled_points"] == 1
    q = run(group(tmp_path, quality={"non_numeric": "missing", "non_finite": "error"}),
            tmp_path).quality  # the policies are separate: text made missing is not a NaN reading
    assert q["non_numeric_values"] == 1 and q["nan_values"] == 0


def test_type_change_in_a_column(tmp_path: Path) -> None:
    """A typed source (Parquet, SQL) sending text in a number column: numbers in text are parsed
    and counted as retyped_columns; anything else is text in a numeric column (above)."""
    frame = wide().assign(timestamp=stamps(tz="UTC"))
    frame["a"] = frame["a"].map(lambda v: f"{v:.1f}")  # yesterday float64, today strings
    frame.to_parquet(tmp_path / "2024-01-02.parquet")
    g = group(tmp_path, fmt="parquet")
    assert run(g, tmp_path).quality["retyped_columns"] == 1
    np.testing.assert_array_equal(partition(g, tmp_path)["a"], np.arange(N, dtype=float))
    frame["b"] = True
    frame.to_parquet(tmp_path / "2024-01-02.parquet")
    with pytest.raises(DataError, match=r"column 'b' .*non-numeric value True at 2024-01-02"):
        run(g, tmp_path)


def test_null_timestamps(tmp_path: Path) -> None:
    """Rows without a timestamp are dropped and counted as null_timestamps."""
    frame = wide()
    frame.loc[[4, 8], "timestamp"] = None
    write_csv(tmp_path, frame)
    q = run(group(tmp_path), tmp_path).quality
    assert q["null_timestamps"] == 2 and q["filled_points"] == 4


def test_unparsable_timestamp(tmp_path: Path) -> None:
    """DataError naming the timestamp column, the file and the value."""
    frame = wide()
    frame.loc[3, "timestamp"] = "02.01.2024 00:30"
    write_csv(tmp_path, frame)
    with pytest.raises(DataError, match=r"timestamp column 'timestamp' in file .*2024-01-02.csv "
                                        r"has a value that is not an ISO 8601 .*'02.01.2024"):
        run(group(tmp_path), tmp_path)


# ---------------------------------------------------------------- channels


def test_missing_channel(tmp_path: Path) -> None:
    """DataError naming the channel, group, day, file and the channels found."""
    write_csv(tmp_path, wide().drop(columns="b"))
    with pytest.raises(DataError) as err:
        run(group(tmp_path), tmp_path)
    assert re.search(r"channel 'b' of group 'g' not found for 2024-01-02 in file .*2024-01-02.csv;"
                     r" channels found: \['a'\]", str(err.value))


def test_extra_channel(tmp_path: Path) -> None:
    """Ignored and counted as extra_channels; with quality.extra_channels: error, DataError
    listing them."""
    write_csv(tmp_path, wide().assign(z=1.0, y=2.0))
    assert run(group(tmp_path), tmp_path).quality["extra_channels"] == 2
    with pytest.raises(DataError, match=r"has channel\(s\) \['y', 'z'\] that group 'g' does not"):
        run(group(tmp_path, quality={"extra_channels": "error"}), tmp_path)


# ---------------------------------------------------------------- time zones


def test_timezone_naive_timestamps(tmp_path: Path) -> None:
    """Read in source.timestamps_timezone (UTC unless set); stored as UTC."""
    local = pd.date_range("2024-01-02", periods=N, freq=f"{STEP}s")
    write_csv(tmp_path, wide().assign(timestamp=local.strftime("%Y-%m-%d %H:%M:%S")))
    g = group(tmp_path, timestamps_timezone="Europe/Berlin")
    q = run(g, tmp_path, tz="Europe/Berlin").quality
    frame = partition(g, tmp_path)
    assert frame.index[0] == pd.Timestamp("2024-01-01 23:00", tz="UTC")
    assert q["nan_points"] == 0 and frame["a"].iloc[-1] == N - 1


def test_dst_days(tmp_path: Path) -> None:
    """A site day is 23 or 25 hours on DST changes (grid_points 138 or 150 at 10 minutes); the
    repeated autumn hour is resolved by row order; a local time that does not exist (spring) is
    dropped and counted as ambiguous_timestamps."""
    g = group(tmp_path, timestamps_timezone="Europe/Berlin")
    for day, hours in ((date(2024, 3, 31), 23), (date(2024, 10, 27), 25)):
        utc = pd.date_range(*(pd.Timestamp(day + timedelta(days=d), tz="Europe/Berlin")
                              for d in (0, 1)), freq=f"{STEP}s", inclusive="left")
        local = utc.tz_convert("Europe/Berlin").tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
        frame = pd.DataFrame({"timestamp": local, "a": np.arange(len(utc), dtype=float), "b": 1.0})
        if hours == 23:
            frame = pd.concat([frame, pd.DataFrame({"timestamp": ["2024-03-31 02:30:00"],
                                                    "a": [0.0], "b": [0.0]})])
        write_csv(tmp_path, frame, day)
        q = run(g, tmp_path, day, "Europe/Berlin").quality
        assert q["grid_points"] == hours * 6 and q["nan_points"] == 0
        assert q["ambiguous_timestamps"] == (1 if hours == 23 else 0)
        np.testing.assert_array_equal(partition(g, tmp_path, day)["a"], np.arange(hours * 6.0))


def test_mixed_naive_and_offset_timestamps(tmp_path: Path) -> None:
    """DataError naming the file, the column and an example of each kind (naive ones would
    otherwise be read as UTC, not in source.timestamps_timezone)."""
    frame = wide()
    local = stamps(tz="Europe/Berlin")
    frame["timestamp"] = local.strftime("%Y-%m-%d %H:%M:%S")
    frame.loc[72:, "timestamp"] = local[72:].strftime("%Y-%m-%dT%H:%M:%S%z")
    write_csv(tmp_path, frame)
    with pytest.raises(DataError) as err:
        run(group(tmp_path, timestamps_timezone="Europe/Berlin"), tmp_path, tz="Europe/Berlin")
    message = str(err.value)
    assert "2024-01-02.csv" in message and "'timestamp'" in message
    assert "'2024-01-02T12:00:00+0100'" in message and "'2024-01-02 00:00:00'" in message
    frame["timestamp"] = local.strftime("%Y-%m-%dT%H:%M:%S%z")  # all with an offset: fine
    write_csv(tmp_path, frame)
    q = run(group(tmp_path, timestamps_timezone="Europe/Berlin"), tmp_path, tz="Europe/Berlin")
    assert q.quality["nan_points"] == 0 and q.quality["out_of_order"] == 0


# ---------------------------------------------------------------- files


def test_duplicate_csv_columns(tmp_path: Path) -> None:
    """DataError naming the file and the column written twice (``a,a``, or ``a, a`` once spaces
    are trimmed): which one holds the channel cannot be told."""
    for header in ("timestamp,a,a,b", "timestamp,a, a,b"):
        rows = "".join(f"2024-01-02 00:{m:02d}:00,1,2,3\n" for m in range(0, 60, 10))
        (tmp_path / "2024-01-02.csv").write_text(header + "\n" + rows)
        with pytest.raises(DataError, match=r"2024-01-02.csv has the column 'a' twice \(columns 2 "
                                            r"and 3"):
            run(group(tmp_path), tmp_path)


def test_corrupt_parquet(tmp_path: Path) -> None:
    """SourceError naming the file and the day: 'corrupt or not parquet'."""
    (tmp_path / "2024-01-02.parquet").write_bytes(b"PAR1" + bytes(range(200)) + b"PAR1")
    with pytest.raises(SourceError, match=r"cannot read source file .*2024-01-02.parquet "
                                          r"\(group 'g', 2024-01-02\).*corrupt or not parquet"):
        run(group(tmp_path, fmt="parquet"), tmp_path)


def test_truncated_csv(tmp_path: Path) -> None:
    """SourceError 'looks truncated' naming the file: the day is not extracted from part of a
    file. (A file cut exactly at a line end reads as a shorter day: the gap policy applies.)"""
    text = wide().to_csv(index=False)
    (tmp_path / "2024-01-02.csv").write_text(text[: text.rindex("\n", 0, len(text) - 1) + 12])
    with pytest.raises(SourceError, match=r"2024-01-02.csv .*looks truncated: its last line "
                                          r"'2024-01-02 ' stops after 1 of 3 fields"):
        run(group(tmp_path), tmp_path)


def test_wrong_delimiter(tmp_path: Path) -> None:
    """SourceError naming the file and the delimiter found (tsad reads ',' or ';' csv), or the
    line whose delimiter differs from the header's."""
    (tmp_path / "2024-01-02.csv").write_text(wide().to_csv(index=False, sep="|"))
    with pytest.raises(SourceError, match=r"2024-01-02.csv .*is delimited by '\|'"):
        run(group(tmp_path), tmp_path)
    text = "timestamp,a,b\n" + wide().to_csv(index=False, sep=";", header=False)
    (tmp_path / "2024-01-02.csv").write_text(text)
    with pytest.raises(SourceError, match=r"header is delimited by ',' but line 2 by ';'"):
        run(group(tmp_path), tmp_path)


def test_corrupt_partition(tmp_path: Path) -> None:
    """DataError naming the partition file: 're-run extract for that day'."""
    path = partition_path(tmp_path / "data", "g", DAY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"partition .*readings.parquet is unreadable.*re-run"):
        partition(group(tmp_path), tmp_path)


def test_unreachable_sql_source(tmp_path: Path) -> None:
    """TransientSourceError (retried by the pipeline) naming the table and the URL with its
    password hidden."""
    pytest.importorskip("psycopg2")
    g = from_dict(GroupConfig, {"name": "g", "channels": ["a"], "source": {
        "kind": "sql", "url": "postgresql://tsad:s3cret@127.0.0.1:1/plant", "table": "readings"}},
        "group")
    with pytest.raises(TransientSourceError) as err:
        run(g, tmp_path)
    assert "table 'readings'" in str(err.value) and "tsad:***@127.0.0.1:1" in str(err.value)
    assert "s3cret" not in str(err.value)


# ---------------------------------------------------------------- config


def test_unknown_config_key(tmp_path: Path) -> None:
    """ConfigError naming the file and the key's full path, with the keys allowed there."""
    file = tmp_path / "tsad.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "g", "channels": ["a"],
                                                "source": {"kind": "files", "path": "{date}.csv"},
                                                "quality": {"max_fil_steps": 3}}]}))
    with pytest.raises(ConfigError, match=r"tsad.yaml: groups\[0\].quality.max_fil_steps: unknown "
                                          r"key; expected one of \['duplicates', "):
        load_config(file)


def test_unknown_policy_value(tmp_path: Path) -> None:
    """ConfigError naming the key and the values allowed."""
    with pytest.raises(ConfigError, match=r"group.quality.duplicates: expected one of \['mean', "
                                          r"'first', 'last', 'error'\], got 'median'"):
        group(tmp_path, quality={"duplicates": "median"})


def test_malicious_table_name(tmp_path: Path) -> None:
    """ConfigError naming 'table' and the value (identifiers must match [A-Za-z_][A-Za-z0-9_]*);
    nothing reaches the database, whose tables stay intact. Column names are checked alike, and
    valid names are quoted (a table called ``order`` works); values are always bound."""
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with sa.create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE y (v INTEGER)")
    for key, value in (("table", "x; DROP TABLE y"), ("timestamp_column", 'ts"; DROP TABLE y; --')):
        source = {"kind": "sql", "url": url, "table": "readings", key: value}
        with pytest.raises(ConfigError) as err:
            from_dict(GroupConfig, {"name": "g", "channels": ["a"], "source": source}, "group")
        assert f"'{key}' must be a plain identifier" in str(err.value) and repr(value) in str(
            err.value)
    assert sa.inspect(sa.create_engine(url)).get_table_names() == ["y"]
    with sa.create_engine(url).begin() as conn:  # valid names are quoted: SQL keywords work
        conn.exec_driver_sql('CREATE TABLE "order" ("select" TIMESTAMP, "from" TEXT, "where" REAL)')
        conn.exec_driver_sql("""INSERT INTO "order" VALUES ('2024-01-02 00:00:00', 'a', 1.5)""")
    g = from_dict(GroupConfig, {"name": "g", "channels": ["a"], "source": {
        "kind": "sql", "url": url, "table": "order", "timestamp_column": "select",
        "sensor_column": "from", "value_column": "where"}}, "group")
    assert run(g, tmp_path).quality["rows_read"] == 1


# ---------------------------------------------------------------- the table


def test_every_case_is_in_the_documented_table() -> None:
    """Every case here and in ``test_bad_models.py`` (bad model artifacts) has its row."""
    import test_bad_models

    table = (REPO / "docs" / "bad-inputs.md").read_text()
    cases = r"`tests/integration/(test_bad_(?:inputs|models))\.py::(test_\w+)`"
    documented = set(re.findall(cases, table))
    here = {("test_bad_inputs", name) for name in globals() if name.startswith("test_")} - {
        ("test_bad_inputs", "test_every_case_is_in_the_documented_table")}
    here |= {("test_bad_models", name) for name in vars(test_bad_models)
             if name.startswith("test_")}
    assert documented == here
    assert len(here) >= 20
