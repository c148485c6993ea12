"""Partitions: path layout, atomic writes, and reading days back in the shared frame shape."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tsad.errors import DataError
from tsad.ingest.partitions import partition_path, read_days, read_partition, write_partition

CHANNELS = ["flow", "pressure", "temp"]


def day_frame(day: date, periods: int = 1440, seed: int = 0) -> pd.DataFrame:
    index = pd.date_range(
        pd.Timestamp(day, tz="UTC"), periods=periods, freq="60s", name="timestamp", unit="us"
    )
    values = np.random.default_rng(seed).normal(100.0, 5.0, (periods, len(CHANNELS)))
    values[10:20, 1] = np.nan
    return pd.DataFrame(values, index=index, columns=CHANNELS)


def test_partition_path_layout(tmp_path: Path) -> None:
    path = partition_path(tmp_path, "pumps", date(2024, 3, 5))
    assert path == tmp_path / "extracts" / "group=pumps" / "date=2024-03-05" / "readings.parquet"


def test_round_trip_keeps_shape_types_and_nans(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    frame = day_frame(day)
    path = partition_path(tmp_path, "pumps", day)
    write_partition(frame, path)

    schema = pq.read_schema(path)
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert all(schema.field(c).type == pa.float64() for c in CHANNELS)

    back = read_partition(tmp_path, "pumps", day, CHANNELS)
    pd.testing.assert_frame_equal(back, frame, check_freq=False)
    assert back.index.name == "timestamp" and str(back.index.tz) == "UTC"
    assert back["pressure"].isna().sum() == 10


def test_read_partition_selects_and_orders_channels(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    write_partition(day_frame(day), partition_path(tmp_path, "g", day))
    back = read_partition(tmp_path, "g", day, ["temp", "flow"])
    assert list(back.columns) == ["temp", "flow"]


def test_non_utc_index_is_stored_as_utc(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    frame = day_frame(day)
    local = frame.tz_convert("Europe/Berlin")
    path = partition_path(tmp_path, "g", day)
    write_partition(local, path)
    pd.testing.assert_frame_equal(
        read_partition(tmp_path, "g", day, CHANNELS), frame, check_freq=False
    )


def test_overwrite_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    path = partition_path(tmp_path, "g", day)
    write_partition(day_frame(day, seed=1), path)
    write_partition(day_frame(day, seed=2), path)
    back = read_partition(tmp_path, "g", day, CHANNELS)
    pd.testing.assert_frame_equal(back, day_frame(day, seed=2), check_freq=False)
    assert [p.name for p in path.parent.iterdir()] == ["readings.parquet"]


def test_failed_write_keeps_the_old_partition(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    path = partition_path(tmp_path, "g", day)
    write_partition(day_frame(day), path)
    naive = day_frame(day).tz_localize(None)
    with pytest.raises(DataError, match="tz-aware"):
        write_partition(naive, path)
    pd.testing.assert_frame_equal(
        read_partition(tmp_path, "g", day, CHANNELS), day_frame(day), check_freq=False
    )
    assert [p.name for p in path.parent.iterdir()] == ["readings.parquet"]


def test_missing_partition_says_run_extract(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        read_partition(tmp_path, "pumps", date(2024, 1, 2), CHANNELS)
    message = str(err.value)
    assert str(partition_path(tmp_path, "pumps", date(2024, 1, 2))) in message
    assert "run extract for that day first" in message


def test_missing_channel_is_named(tmp_path: Path) -> None:
    day = date(2024, 1, 2)
    write_partition(day_frame(day), partition_path(tmp_path, "g", day))
    with pytest.raises(DataError, match="'vibration'"):
        read_partition(tmp_path, "g", day, ["flow", "vibration"])


def test_corrupt_partition_names_the_file(tmp_path: Path) -> None:
    path = partition_path(tmp_path, "g", date(2024, 1, 2))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable") as err:
        read_partition(tmp_path, "g", date(2024, 1, 2), CHANNELS)
    assert str(path) in str(err.value)


def test_read_days_concatenates_in_time_order(tmp_path: Path) -> None:
    days = [date(2024, 1, d) for d in (1, 2, 3)]
    for i, day in enumerate(days):
        write_partition(day_frame(day, seed=i), partition_path(tmp_path, "g", day))
    out = read_days(tmp_path, "g", [days[2], days[0], days[1]], CHANNELS)
    assert len(out) == 3 * 1440
    assert out.index.is_monotonic_increasing and out.index.is_unique
    pd.testing.assert_frame_equal(
        out.loc["2024-01-02"], day_frame(days[1], seed=1), check_freq=False
    )


def test_read_days_equals_the_days_concatenated_gaps_and_channel_order_kept(
        tmp_path: Path) -> None:
    days = [date(2024, 1, d) for d in (1, 2, 3)]
    frames = []
    for i, day in enumerate(days):
        frame = day_frame(day, seed=i)
        frame.iloc[100 * i: 100 * i + 7, i % len(CHANNELS)] = np.nan  # a gap on each day
        frames.append(frame if i != 1 else frame.iloc[:900])  # a short day
        write_partition(frames[-1], partition_path(tmp_path, "g", day))
    order = CHANNELS[::-1]
    out = read_days(tmp_path, "g", days, order)
    expected = pd.concat([f[order] for f in frames])
    pd.testing.assert_frame_equal(out, expected, check_freq=False)
    assert str(out.index.dtype) == "datetime64[us, UTC]" and out.index.name == "timestamp"


def test_a_corrupt_day_among_several_names_its_file(tmp_path: Path) -> None:
    write_partition(day_frame(date(2024, 1, 1)), partition_path(tmp_path, "g", date(2024, 1, 1)))
    bad = partition_path(tmp_path, "g", date(2024, 1, 2))
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="unreadable") as err:
        read_days(tmp_path, "g", [date(2024, 1, 1), date(2024, 1, 2)], CHANNELS)
    assert str(bad) in str(err.value) and "2024-01-02" in str(err.value)


def test_read_days_names_every_missing_day(tmp_path: Path) -> None:
    write_partition(day_frame(date(2024, 1, 2)), partition_path(tmp_path, "g", date(2024, 1, 2)))
    with pytest.raises(DataError) as err:
        read_days(tmp_path, "g", [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)], CHANNELS)
    message = str(err.value)
    assert "2024-01-01" in message and "2024-01-03" in message and "2024-01-02" not in message
    assert "run extract" in message
