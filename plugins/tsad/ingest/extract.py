"""One site-local day from the source (SQL table or dropped file) into one Parquet partition.

Everything downstream reads partitions, never the source, so this is where messy input is made
regular, following the group's ``quality`` policy (:class:`tsad.config.QualityConfig`): long rows
are pivoted to wide, timestamps are made UTC, duplicates are merged, NaN/inf and unparsable
readings become missing (or are refused), and the day is snapped onto a regular grid of
``sampling_seconds`` starting at the day's UTC start. Short gaps are forward-filled; longer gaps
stay NaN so scoring skips the windows they touch. What was done is counted in ``quality`` so a run
records how clean its input was. Input that cannot be made regular raises a ``DataError`` or
``SourceError`` naming the file or table, column, day and value; a source that is down right now
raises a :class:`tsad.retry.TransientSourceError`, which the pipeline retries.

The source streams Arrow record batches; each is made into stamps, channel codes and floats in
Arrow and numpy and written into the day's grid (:mod:`tsad.ingest.grid`) before the next is read,
so memory is the grid plus a batch, whatever the row count. Errors the old whole-frame code raised
first are still raised first: a bad stamp at once, then (after the last batch) an empty day,
missing or extra channels, bad readings, duplicates, too many gaps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tsad.config import GroupConfig, QualityConfig
from tsad.dates import day_bounds
from tsad.errors import DataError
from tsad.ingest.grid import Grid
from tsad.ingest.numbers import Readings, show
from tsad.ingest.partitions import partition_path, write_grid
from tsad.ingest.sources import RawRows, needed_columns, require_columns, source_for
from tsad.ingest.sources.base import ReadWholeDay
from tsad.ingest.stamps import NAT, Stamps

#: Default forward-fill limit in grid steps (``quality.max_fill_steps``); longer gaps stay NaN.
MAX_FILL_STEPS = QualityConfig().max_fill_steps
QUALITY_KEYS = (
    "rows_read",
    "rows_outside_day",
    "null_timestamps",
    "ambiguous_timestamps",
    "duplicate_timestamps",
    "out_of_order",
    "extra_channels",
    "grid_points",
    "missing_points",
    "filled_points",
    "nan_points",
    "nan_values",
    "inf_values",
    "non_numeric_values",
    "retyped_columns",
    "masked_windows",
)


@dataclass(frozen=True)
class ExtractResult:
    """Where the partition went, how many grid rows it has, and the data-quality counts."""

    path: str
    rows: int
    quality: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for Airflow XCom."""
        return {
            "path": str(self.path),
            "rows": int(self.rows),
            "quality": {str(k): int(v) for k, v in self.quality.items()},
        }


def extract_day(
    group: GroupConfig,
    day: date,
    site_timezone: str,
    data_dir: str | Path,
    source_url: str | None = None,
) -> ExtractResult:
    """Extract ``day`` (site-local) of ``group`` into its partition; re-running overwrites it.

    ``source_url`` overrides ``group.source.url`` (the Airflow layer resolves ``conn_id`` to it).
    Quality counts: rows_read, rows_outside_day, null_timestamps, ambiguous_timestamps (DST
    fold or gap, dropped), duplicate_timestamps, out_of_order (in the order the source returned
    rows), extra_channels, grid_points; missing_points, filled_points and nan_points count cells
    (grid point x channel) on the grid; nan_values, inf_values and non_numeric_values count source
    readings made missing; retyped_columns counts typed columns that held text; masked_windows
    counts the windows scoring will skip because they still hold a missing point.
    """
    start, end = day_bounds(day, site_timezone)
    source = source_for(group, source_url)
    try:
        day_grid = _Day(group, day, start, end, whole=False).read(source.read(day, start, end))
    except ReadWholeDay:  # a DST fold in naive stamps, or a csv the streaming reader refuses
        day_grid = _Day(group, day, start, end, whole=True).read(
            source.read(day, start, end, whole=True))
    grid, quality = day_grid
    path = partition_path(data_dir, group.name, day)
    write_grid(path, grid.start, grid.step, list(group.channels), grid.values)
    return ExtractResult(path=str(path), rows=grid.n, quality=quality)


def _micros(moment: datetime) -> int:
    """An aware instant (``day_bounds`` gives UTC) as microseconds since the epoch."""
    since = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


@dataclass
class _Day:
    """One day's extraction: batches in, the grid and the quality counts out."""

    group: GroupConfig
    day: date
    start: datetime
    end: datetime
    whole: bool
    quality: dict[str, int] = field(default_factory=lambda: dict.fromkeys(QUALITY_KEYS, 0))
    found: set[str] = field(default_factory=set)

    def read(self, raw: RawRows) -> tuple[Grid, dict[str, int]]:
        src, group = self.group.source, self.group
        require_columns(list(raw.columns), needed_columns(src), raw.where, group)
        start_us, end_us = _micros(self.start), _micros(self.end)
        step_us = group.sampling_seconds * 1_000_000
        long = src.layout == "long"
        grid = Grid(start_us, end_us, step_us, len(group.channels), long)
        stamps = Stamps(src.timestamps_timezone, src.timestamp_column, raw.where)
        readings = Readings(raw.typed, raw.decimal_comma, raw.float32_as_text,
                            group.quality.non_numeric, group.quality.non_finite)
        channels = pa.array(list(group.channels), pa.string())
        q, row0, last, in_day = self.quality, 0, NAT, 0
        present = np.zeros(len(group.channels), dtype=bool)  # long: configured channels seen
        for batch in raw.batches:
            m = batch.num_rows
            sensors = _names(batch.column(src.sensor_column), raw.null_text) if long else None
            keys = sensors.to_numpy(zero_copy_only=False) if long and self.whole else None
            ts, ambiguous = stamps.to_utc(batch.column(src.timestamp_column), keys, self.whole)
            q["rows_read"] += m
            q["null_timestamps"] += batch.column(src.timestamp_column).null_count
            q["ambiguous_timestamps"] += ambiguous
            if m:
                valid = ts != NAT
                before = np.concatenate(([last], ts[:-1]))
                q["out_of_order"] += int((valid & (before != NAT) & (ts < before)).sum())
                last = int(ts[-1])
            keep = (ts >= start_us) & (ts < end_us)
            q["rows_outside_day"] += int((ts != NAT).sum() - keep.sum())
            rows = np.arange(row0, row0 + m, dtype=np.int64)
            row0 += m
            if not keep.any():
                continue
            in_day += int(keep.sum())
            day_ts, day_rows = ts[keep], rows[keep]
            if long:
                assert sensors is not None
                day_sensors = _take(sensors, keep)
                codes = pc.index_in(day_sensors, value_set=channels).fill_null(-1).to_numpy(
                    zero_copy_only=False)
                mine = codes >= 0
                present |= np.bincount(codes[mine], minlength=len(present)) > 0
                if not mine.all():  # sensors the group does not list: named for the counts
                    self.found.update(pc.unique(_take(day_sensors, ~mine)).to_pylist())
                values = readings.floats(_take(batch.column(src.value_column),
                                               _widen(keep, mine)), src.value_column, day_ts[mine])
                grid.add(day_ts[mine], values, day_rows[mine], codes[mine])
            else:
                matrix = np.full((len(day_ts), len(group.channels)), np.nan)
                names = set(batch.schema.names)
                for j, channel in enumerate(group.channels):
                    if channel in names:
                        matrix[:, j] = readings.floats(_take(batch.column(channel), keep),
                                                       channel, day_ts)
                grid.add(day_ts, matrix, day_rows)
        if not in_day:
            raise DataError(
                f"no rows for group {group.name!r} on {self.day.isoformat()} "
                f"({self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC) in {raw.where}"
            )
        self.found.update(c for c, seen in zip(group.channels, present, strict=True) if seen)
        found = sorted(self.found) if long else (
            raw.found_channels if raw.found_channels is not None
            else [c for c in raw.columns if c != src.timestamp_column])
        self._check_channels(found, raw.where)
        readings.raise_first([src.value_column] if long else list(group.channels), raw.where,
                             group.name)
        q.update(readings.counts, retyped_columns=readings.retyped())
        self._duplicates(grid, raw.where)
        return grid, self._fill(grid, raw.where)

    def _check_channels(self, found: list[str], where: str) -> None:
        group = self.group
        for channel in group.channels:
            if channel not in found:
                raise DataError(
                    f"channel {channel!r} of group {group.name!r} not found for "
                    f"{self.day.isoformat()} in {where}; channels found: {sorted(found)}; fix "
                    "'channels' in the config or the source")
        extra = sorted(set(found) - set(group.channels))
        if extra and group.quality.extra_channels == "error":
            raise DataError(
                f"{where} has channel(s) {extra} that group {group.name!r} does not list "
                f"({self.day.isoformat()}); add them to 'channels' or set "
                "quality.extra_channels: ignore")
        self.quality["extra_channels"] = len(extra)

    def _duplicates(self, grid: Grid, where: str) -> None:
        count, first = grid.duplicates()
        self.quality["duplicate_timestamps"] = count
        policy = self.group.quality.duplicates
        if first is not None and policy == "error":
            stamp, code = first
            what = f" of channel {self.group.channels[code]!r}" if code >= 0 else ""
            raise DataError(
                f"{where} has several readings{what} at {show(stamp)} (group "
                f"{self.group.name!r}, {self.day.isoformat()}); fix the source or set "
                "quality.duplicates to mean, first or last")
        grid.settle(policy)

    def _fill(self, grid: Grid, where: str) -> dict[str, int]:
        """Fill short gaps, count the rest, refuse a day with too much missing."""
        policy, group = self.group.quality, self.group
        missing, nan = grid.fill(policy.max_fill_steps)
        self.quality.update(grid_points=grid.n, missing_points=missing,
                            filled_points=missing - nan, nan_points=nan,
                            masked_windows=grid.masked_windows(group.window.length,
                                                               group.window.stride))
        cells = max(1, grid.values.size)
        if nan / cells > policy.max_missing_fraction:
            raise DataError(
                f"group {group.name!r} on {self.day.isoformat()}: {nan / cells:.0%} of the day's "
                f"readings are missing after filling gaps of up to {policy.max_fill_steps} steps "
                f"(quality.max_missing_fraction={policy.max_missing_fraction}) in {where}; check "
                "that the source delivered the whole day, or raise quality.max_missing_fraction"
            )
        return {k: int(self.quality[k]) for k in QUALITY_KEYS}


def _names(values: pa.Array, null_text: str) -> pa.Array:
    """Sensor names as text (numbers as their text), a null as pandas' ``astype(str)`` wrote it."""
    if isinstance(values.type, pa.ExtensionType):
        values = values.storage
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    return values.fill_null(null_text) if values.null_count else values


def _take(values: pa.Array, mask: np.ndarray) -> pa.Array:
    return values if mask.all() else values.filter(pa.array(mask))


def _widen(keep: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """``mine`` (over the kept rows) as a mask over all rows."""
    out = np.zeros(len(keep), dtype=bool)
    out[keep] = mine
    return out
