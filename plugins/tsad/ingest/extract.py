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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsad.config import GroupConfig, QualityConfig
from tsad.dates import day_bounds
from tsad.errors import DataError
from tsad.ingest.partitions import TIMESTAMP, partition_path, write_partition
from tsad.ingest.sources import MISSING_TEXT, RawRows, needed_columns, require_columns, source_for

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
    raw = source_for(group, source_url).read(day, start, end)
    frame, quality = _clean(raw, group, day, start, end)
    path = partition_path(data_dir, group.name, day)
    write_partition(frame, path)
    return ExtractResult(path=str(path), rows=len(frame), quality=quality)


# ---------------------------------------------------------------- cleaning


def _clean(
    raw: RawRows, group: GroupConfig, day: date, start: datetime, end: datetime
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Raw rows -> the day's wide frame on the regular grid, plus quality counts."""
    src = group.source
    frame = raw.frame
    require_columns(list(frame.columns), needed_columns(src), raw.where, group)
    quality = {k: 0 for k in QUALITY_KEYS}
    quality["rows_read"] = len(frame)
    keys = frame[src.sensor_column].astype(str) if src.layout == "long" else None
    ts, quality["ambiguous_timestamps"] = _to_utc(
        frame[src.timestamp_column], src.timestamps_timezone, keys, src.timestamp_column, raw.where
    )
    quality["null_timestamps"] = int(frame[src.timestamp_column].isna().sum())
    step = ts.diff()
    quality["out_of_order"] = int((step < pd.Timedelta(0)).sum())
    keep = (ts >= start) & (ts < end)
    quality["rows_outside_day"] = int((ts.notna() & ~keep).sum())
    frame, stamps = frame[keep.to_numpy()], pd.DatetimeIndex(ts[keep], name=TIMESTAMP)
    if frame.empty:
        raise DataError(
            f"no rows for group {group.name!r} on {day.isoformat()} "
            f"({start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC) in {raw.where}"
        )
    if src.layout == "long":
        wide = _pivot_long(frame, stamps, group, day, raw, quality)
    else:
        wide = _dedup_wide(frame, stamps, group, day, raw, quality)
    return _to_grid(wide, group, day, start, end, quality, raw.where)


def _to_utc(
    values: pd.Series, tz: str, keys: pd.Series | None, column: str, where: str
) -> tuple[pd.Series, int]:
    """Parse timestamps; naive ones are local to ``tz``. Returns UTC stamps and how many were
    dropped (NaT) as ambiguous (a DST fold not inferable from row order) or nonexistent."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
        values.dtype
    ):
        parsed = values
    else:
        _refuse_mixed_zones(values, column, where)
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):  # mixed UTC offsets (e.g. across a DST change)
            parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
        bad = parsed.isna() & values.notna()
        if bad.any():
            raise DataError(
                f"timestamp column {column!r} in {where} has a value that is not an ISO 8601 "
                f"date-time: {values[bad].iloc[0]!r}; fix the source export"
            )
    ambiguous = 0
    if parsed.dt.tz is None:
        naive = parsed
        parsed = _localize(naive, tz, keys)
        ambiguous = int((parsed.isna() & naive.notna()).sum())
    return parsed.dt.tz_convert("UTC").dt.as_unit("us"), ambiguous


#: an ISO 8601 date-time that carries its offset ('Z', '+01:00', '-0500', '+01')
ZONED = r"[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"


def _refuse_mixed_zones(values: pd.Series, column: str, where: str) -> None:
    """Text stamps with an offset and without one in the same column: the naive ones would be
    read as UTC (not ``timestamps_timezone``) next to the zoned ones, shifting them silently."""
    text = values[values.notna()].astype(str).str.strip()
    zoned = text.str.contains(ZONED, regex=True).to_numpy()
    if zoned.any() and not zoned.all():
        raise DataError(
            f"timestamp column {column!r} in {where} mixes time stamps with a UTC offset "
            f"({text[zoned].iloc[0]!r}) and without one ({text[~zoned].iloc[0]!r}); export them "
            "all with an offset, or all without one (read in source.timestamps_timezone)")


def _localize(naive: pd.Series, tz: str, keys: pd.Series | None) -> pd.Series:
    """Attach ``tz``; a DST fold is resolved from row order (per sensor for long rows)."""
    if tz == "UTC":
        return naive.dt.tz_localize("UTC")
    try:
        return naive.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
    except ValueError:
        pass
    if keys is not None:
        try:
            return naive.groupby(keys.to_numpy(), sort=False).transform(
                lambda s: s.dt.tz_localize(tz, ambiguous="infer", nonexistent="NaT")
            )
        except ValueError:
            pass
    return naive.dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")


def _numeric(
    values: pd.Series,
    stamps: pd.DatetimeIndex,
    column: str,
    raw: RawRows,
    group: GroupConfig,
    quality: dict[str, int],
) -> np.ndarray:
    """Floats, with the policy for text, NaN and inf applied and counted (``stamps`` aligned)."""
    policy = group.quality
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        number = values.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    else:
        if raw.typed and values.notna().any():
            quality["retyped_columns"] += 1  # a typed source sent text (or booleans) here
        text = values.astype("string").str.strip()
        parsed = pd.to_numeric(text, errors="coerce")
        if raw.decimal_comma:
            parsed = parsed.fillna(
                pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
            )
        bad = (parsed.isna() & text.notna() & ~text.str.lower().isin(MISSING_TEXT)).to_numpy()
        if bad.any():
            if policy.non_numeric == "error":
                first = int(np.flatnonzero(bad)[0])
                value = values.iloc[first]
                value = value.item() if isinstance(value, np.generic) else value
                raise DataError(
                    f"column {column!r} in {raw.where} has a non-numeric value "
                    f"{value!r} at {_show(stamps[first])} (group {group.name!r}); "
                    "fix the source, drop the channel, or set quality.non_numeric: missing"
                )
            quality["non_numeric_values"] += int(bad.sum())
        number = parsed.to_numpy(dtype="float64", na_value=np.nan, copy=True)
        number[bad] = np.nan
        return _non_finite(number, stamps, column, raw, group, quality, exempt=bad)
    return _non_finite(number, stamps, column, raw, group, quality)


def _non_finite(
    number: np.ndarray,
    stamps: pd.DatetimeIndex,
    column: str,
    raw: RawRows,
    group: GroupConfig,
    quality: dict[str, int],
    exempt: np.ndarray | None = None,
) -> np.ndarray:
    """NaN and inf readings (not ``exempt``: text already counted) -> missing, or the error."""
    nan, inf = np.isnan(number), np.isinf(number)
    if exempt is not None:
        nan &= ~exempt
    if group.quality.non_finite == "error" and (nan | inf).any():
        first = int(np.flatnonzero(nan | inf)[0])
        raise DataError(
            f"column {column!r} in {raw.where} has a missing or infinite reading "
            f"({number[first]}) at {_show(stamps[first])} (group {group.name!r}); fix the "
            "source or set quality.non_finite: missing"
        )
    quality["nan_values"] += int(nan.sum())
    quality["inf_values"] += int(inf.sum())
    number[inf] = np.nan
    return number


def _show(stamp: Any) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def _missing_channel(
    channel: str, group: GroupConfig, day: date, where: str, found: list[str]
) -> DataError:
    return DataError(
        f"channel {channel!r} of group {group.name!r} not found for {day.isoformat()} in "
        f"{where}; channels found: {sorted(found)}; fix 'channels' in the config or the source"
    )


def _check_channels(
    found: list[str], group: GroupConfig, day: date, raw: RawRows, quality: dict[str, int]
) -> None:
    for channel in group.channels:
        if channel not in found:
            raise _missing_channel(channel, group, day, raw.where, found)
    extra = sorted(set(found) - set(group.channels))
    if extra and group.quality.extra_channels == "error":
        raise DataError(
            f"{raw.where} has channel(s) {extra} that group {group.name!r} does not list "
            f"({day.isoformat()}); add them to 'channels' or set quality.extra_channels: ignore"
        )
    quality["extra_channels"] = len(extra)


def _duplicate_error(
    group: GroupConfig, day: date, raw: RawRows, stamp: Any, channel: str | None
) -> DataError:
    what = f" of channel {channel!r}" if channel is not None else ""
    return DataError(
        f"{raw.where} has several readings{what} at {_show(stamp)} (group {group.name!r}, "
        f"{day.isoformat()}); fix the source or set quality.duplicates to mean, first or last"
    )


def _pivot_long(
    frame: pd.DataFrame,
    ts: pd.DatetimeIndex,
    group: GroupConfig,
    day: date,
    raw: RawRows,
    quality: dict[str, int],
) -> pd.DataFrame:
    src = group.source
    sensors = frame[src.sensor_column].astype(str).to_numpy()
    _check_channels(sorted(set(sensors)), group, day, raw, quality)
    mine = np.isin(sensors, group.channels)
    stamps = ts[mine]
    values = _numeric(frame[src.value_column][mine], stamps, src.value_column, raw, group,
                      quality)
    rows = pd.DataFrame({TIMESTAMP: stamps, "sensor": sensors[mine], "value": values})
    dup = rows.duplicated([TIMESTAMP, "sensor"]).to_numpy()
    quality["duplicate_timestamps"] = int(dup.sum())
    policy = group.quality.duplicates
    if dup.any() and policy == "error":
        first = int(np.flatnonzero(dup)[0])
        raise _duplicate_error(group, day, raw, rows[TIMESTAMP].iloc[first],
                               rows["sensor"].iloc[first])
    if policy in ("first", "last"):
        rows = rows.drop_duplicates([TIMESTAMP, "sensor"], keep=policy)
    return rows.groupby([TIMESTAMP, "sensor"], sort=True)["value"].mean().unstack("sensor")


def _dedup_wide(
    frame: pd.DataFrame,
    ts: pd.DatetimeIndex,
    group: GroupConfig,
    day: date,
    raw: RawRows,
    quality: dict[str, int],
) -> pd.DataFrame:
    src = group.source
    found = raw.found_channels
    if found is None:
        found = [c for c in frame.columns if c != src.timestamp_column]
    _check_channels(found, group, day, raw, quality)
    data = {c: _numeric(frame[c], ts, c, raw, group, quality) for c in group.channels}
    rows = pd.DataFrame(data, index=ts)
    dup = rows.index.duplicated()
    quality["duplicate_timestamps"] = int(dup.sum())
    policy = group.quality.duplicates
    if not dup.any():
        return rows.sort_index(kind="stable")
    if policy == "error":
        raise _duplicate_error(group, day, raw, rows.index[int(np.flatnonzero(dup)[0])], None)
    if policy in ("first", "last"):
        return rows[~rows.index.duplicated(keep=policy)].sort_index(kind="stable")
    return rows.groupby(level=0, sort=True).mean()


def _to_grid(
    wide: pd.DataFrame,
    group: GroupConfig,
    day: date,
    start: datetime,
    end: datetime,
    quality: dict[str, int],
    where: str,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Snap onto the day's grid (nearest within half a step), fill short gaps, count the rest."""
    from tsad.windows import valid_starts, window_starts

    policy = group.quality
    step = pd.Timedelta(seconds=group.sampling_seconds)
    grid = pd.date_range(
        pd.Timestamp(start),
        pd.Timestamp(end),
        freq=step,
        inclusive="left",
        unit="us",
        name=TIMESTAMP,
    )
    wide = wide.reindex(columns=group.channels)
    wide.index = pd.DatetimeIndex(wide.index).tz_convert("UTC").as_unit("us")
    snapped = wide.reindex(grid, method="nearest", tolerance=step / 2).astype("float64")
    filled = _fill_short_gaps(snapped, policy.max_fill_steps)
    missing = int(snapped.isna().to_numpy().sum())
    values = filled.to_numpy()
    nan = int(np.isnan(values).sum())
    length, stride = group.window.length, group.window.stride
    starts = window_starts(len(grid), length, stride)
    quality.update(
        grid_points=len(grid),
        missing_points=missing,
        filled_points=missing - nan,
        nan_points=nan,
        masked_windows=int(len(starts) - len(valid_starts(values, starts, length))),
    )
    cells = max(1, values.size)
    if nan / cells > policy.max_missing_fraction:
        raise DataError(
            f"group {group.name!r} on {day.isoformat()}: {nan / cells:.0%} of the day's readings "
            f"are missing after filling gaps of up to {policy.max_fill_steps} steps "
            f"(quality.max_missing_fraction={policy.max_missing_fraction}) in {where}; check that "
            "the source delivered the whole day, or raise quality.max_missing_fraction"
        )
    return filled, {k: int(quality[k]) for k in QUALITY_KEYS}


def _fill_short_gaps(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Forward-fill NaN runs of at most ``limit`` steps; a longer run stays NaN end to end."""
    values = frame.to_numpy(copy=True)
    carried = frame.ffill().to_numpy()
    for j in range(values.shape[1]):
        gaps = np.diff(np.concatenate([[0], np.isnan(values[:, j]).astype(np.int8), [0]]))
        for lo, hi in zip(np.flatnonzero(gaps == 1), np.flatnonzero(gaps == -1), strict=True):
            if hi - lo <= limit:
                values[lo:hi, j] = carried[lo:hi, j]
    return pd.DataFrame(values, index=frame.index, columns=[str(c) for c in frame.columns])
