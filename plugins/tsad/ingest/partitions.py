"""Where extracted partitions live, and reading one day or a range of days back.

A partition is one (group, site-local day) of readings: the wide frame described in
``docs/architecture.md``, stored as
``{data_dir}/extracts/group={group}/date={YYYY-MM-DD}/readings.parquet`` (column ``timestamp``
as ``timestamp[us, tz=UTC]``, one float64 column per channel). Writes are atomic so a crashed
extract never leaves a half-written file for training or scoring to read.

``data_dir`` may also be an object storage URL (``s3://bucket/tsad/data``, see ``tsad.fs``): a
partition is then written locally and uploaded in one PUT, which S3 makes visible all at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tsad import fs
from tsad.errors import DataError

TIMESTAMP = "timestamp"


def partition_path(data_dir: str | Path, group: str, day: date) -> fs.Location:
    """The one path of a (group, day) partition; extract writes it, everything else reads it.

    A ``Path`` for a local ``data_dir``, a URL string for object storage.
    """
    return fs.location(
        data_dir, "extracts", f"group={group}", f"date={day.isoformat()}", "readings.parquet"
    )


def write_partition(frame: pd.DataFrame, path: fs.Location) -> None:
    """Write ``frame`` to ``path`` atomically (``write_table_atomic``)."""
    write_table_atomic(_to_arrow(frame), path)


def write_grid(path: fs.Location, start_us: int, step_us: int, channels: list[str],
               values: np.ndarray) -> None:
    """Write a day's grid (``values [channel, point]`` float64, points ``start + k * step`` us)
    as the partition, column by column without a copy."""
    n = values.shape[1] if values.ndim == 2 else 0
    stamps = start_us + np.arange(n, dtype=np.int64) * step_us
    columns: dict[str, pa.Array] = {TIMESTAMP: pa.array(stamps, type=pa.timestamp("us", tz="UTC"))}
    for j, name in enumerate(channels):
        columns[str(name)] = pa.array(values[j], type=pa.float64())
    # readings are seldom repeated: a dictionary per column is tried and dropped, at 2x the time
    write_table_atomic(pa.table(columns), path, use_dictionary=False)


def write_table_atomic(table: pa.Table, path: fs.Location, **options: Any) -> None:
    """Write ``table`` as Parquet at ``path`` atomically (``tsad.fs.atomic_output``);
    ``options`` go to ``pyarrow.parquet.write_table``."""
    with fs.atomic_output(path) as tmp:
        pq.write_table(table, tmp, **options)


def quality_path(data_dir: str | Path, group: str, day: date) -> fs.Location:
    """The partition's data-quality counts (``quality.json`` beside ``readings.parquet``)."""
    return fs.with_name(partition_path(data_dir, group, day), "quality.json")


def write_quality(data_dir: str | Path, group: str, day: date, quality: dict[str, int]) -> None:
    fs.write_json(quality_path(data_dir, group, day), quality)


def read_quality(data_dir: str | Path, group: str, day: date) -> dict[str, int]:
    """The counts extract recorded for the partition; {} when it recorded none."""
    path = quality_path(data_dir, group, day)
    return dict(fs.read_json(path)) if fs.is_file(path) else {}


def read_partition(
    data_dir: str | Path, group: str, day: date, channels: list[str]
) -> pd.DataFrame:
    """One day's wide frame with exactly ``channels`` (in that order)."""
    return _from_arrow(_read_table(data_dir, group, day, channels), channels)


def _read_table(data_dir: str | Path, group: str, day: date, channels: list[str]) -> pa.Table:
    """One day's partition as Arrow, its timestamp and ``channels`` columns; a DataError
    naming the file and what to do when it is missing, unreadable or lacks a channel."""
    path = partition_path(data_dir, group, day)
    if not fs.is_file(path):
        raise DataError(
            f"no extracted partition for group {group!r} on {day.isoformat()}: {path} does not "
            "exist; run extract for that day first"
        )
    source: Path | pa.BufferReader = path if isinstance(path, Path) else (
        pa.BufferReader(fs.read_bytes(path)))  # one GET; a day's partition is small
    try:
        schema = pq.read_schema(source)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"partition {path} is unreadable ({exc}); re-run extract for that day"
        ) from None
    missing = [c for c in [TIMESTAMP, *channels] if c not in schema.names]
    if missing:
        found = [n for n in schema.names if n != TIMESTAMP]
        raise DataError(
            f"partition {path} has no column {missing[0]!r} (group {group!r}, {day.isoformat()}); "
            f"it has channels {found}; re-run extract for that day with the current config"
        )
    if isinstance(source, pa.BufferReader):
        source.seek(0)
    return pq.read_table(source, columns=[TIMESTAMP, *channels])


def read_days(
    data_dir: str | Path, group: str, days: Iterable[date], channels: list[str]
) -> pd.DataFrame:
    """Several days concatenated in time order; every missing day is named at once.

    Local partitions go into one float64 array a day at a time (``_read_local_days``): the
    peak is about one copy of the range plus a day, where day frames and their concatenation
    held two (a training range is the largest thing the nightly reads:
    ``bench/training_memory.py --read``). Partitions in object storage are read day by day
    and concatenated."""
    wanted = sorted(set(days))
    missing = [d for d in wanted if not fs.is_file(partition_path(data_dir, group, d))]
    if missing:
        names = ", ".join(d.isoformat() for d in missing)
        raise DataError(
            f"no extracted partitions for group {group!r} on {names} "
            f"(looked under {fs.location(data_dir, 'extracts', f'group={group}')}); "
            "run extract for those days first"
        )
    if not wanted:
        return _empty(channels)
    paths = [partition_path(data_dir, group, d) for d in wanted]
    if not all(isinstance(p, Path) for p in paths):  # object storage: one GET a day
        out = pd.concat([read_partition(data_dir, group, d, channels) for d in wanted])
    else:
        out = _read_local_days(data_dir, group, wanted, channels, paths)
    if not out.index.is_monotonic_increasing:
        out = out.sort_index(kind="stable")
    return out


def _read_local_days(data_dir: str | Path, group: str, days: list[date], channels: list[str],
                     paths: list[Any]) -> pd.DataFrame:
    """Local partitions straight into one array: row counts from the files' footers, then
    one day's table at a time copied in (Arrow reuses that day's memory for the next)."""
    rows = []
    for day, path in zip(days, paths):
        try:
            rows.append(pq.read_metadata(path).num_rows)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"partition {path} is unreadable ({exc}); re-run extract for "
                            f"{day.isoformat()}") from None
    values = np.empty((sum(rows), len(channels)), dtype=np.float64)
    stamps = np.empty(sum(rows), dtype="datetime64[us]")
    at = 0
    for day, n in zip(days, rows):
        table = _read_table(data_dir, group, day, channels)
        stamps[at:at + n] = _stamps(table)
        for j, name in enumerate(channels):
            values[at:at + n, j] = table.column(name).to_numpy()
        del table
        at += n
    index = pd.DatetimeIndex(stamps, name=TIMESTAMP).tz_localize("UTC")
    return pd.DataFrame(values, index=index, columns=list(channels), copy=False)


def _stamps(table: pa.Table) -> np.ndarray:
    """The timestamp column as naive UTC ``datetime64[us]``."""
    column = table.column(TIMESTAMP).cast(pa.timestamp("us", tz="UTC"))
    return column.cast(pa.timestamp("us")).to_numpy()


def _to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Validate the shared frame shape and fix the on-disk types (us, UTC; float64)."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise DataError("a partition frame needs a tz-aware DatetimeIndex (UTC) named 'timestamp'")
    index = index.tz_convert("UTC").as_unit("us")
    columns: dict[str, pa.Array] = {TIMESTAMP: pa.array(index, type=pa.timestamp("us", tz="UTC"))}
    for name in frame.columns:
        columns[str(name)] = pa.array(frame[name].to_numpy(dtype="float64"), type=pa.float64())
    return pa.table(columns)


def _from_arrow(table: pa.Table, channels: list[str]) -> pd.DataFrame:
    ts = pd.DatetimeIndex(table.column(TIMESTAMP).to_pandas()).tz_convert("UTC").as_unit("us")
    data = {c: table.column(c).to_numpy().astype("float64", copy=False) for c in channels}
    return pd.DataFrame(data, index=ts.rename(TIMESTAMP), columns=list(channels))


def _empty(channels: list[str]) -> pd.DataFrame:
    index = pd.DatetimeIndex([], dtype="datetime64[us, UTC]", name=TIMESTAMP)
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in channels}, index=index)
