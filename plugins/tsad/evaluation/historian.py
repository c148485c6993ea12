"""Writing simulated readings where tsad reads them: a SQL "historian" or dropped files.

Timestamps are written in ``source.timestamps_timezone`` (UTC by default): naive in SQL
(SQLAlchemy ``DateTime``), tz-aware in parquet, and in csv as naive text for UTC or ISO 8601
with the UTC offset otherwise (naive local text is ambiguous on DST days). The injected
anomalies' labels go to ``ANOMALY_TABLE`` beside a SQL source's readings.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tsad.config import GroupConfig
from tsad.dates import day_bounds
from tsad.errors import ConfigError

if TYPE_CHECKING:
    from tsad.evaluation.simulator import InjectedAnomaly

ANOMALY_TABLE = "tsad_injected_anomalies"
_CHUNK = 20_000


def _source_times(index: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    return index.tz_convert(tz).tz_localize(None)


def _engine(url: str) -> sa.Engine:
    from tsad.storage.engine import get_engine

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return get_engine(url)


def _readings_table(group: GroupConfig, metadata: sa.MetaData) -> sa.Table:
    src = group.source
    assert src.table is not None
    if src.layout == "long":
        cols = [
            sa.Column(src.timestamp_column, sa.DateTime(), nullable=False),
            sa.Column(src.sensor_column, sa.String(128), nullable=False),
            sa.Column(src.value_column, sa.Float()),
        ]
    else:
        cols = [
            sa.Column(src.timestamp_column, sa.DateTime(), nullable=False),
            *(sa.Column(c, sa.Float()) for c in group.channels),
        ]
    table = sa.Table(src.table, metadata, *cols)
    sa.Index(f"ix_{src.table}_{src.timestamp_column}", table.c[src.timestamp_column])
    return table


def _anomaly_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        ANOMALY_TABLE,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sensor_group", sa.String(64), nullable=False, index=True),
        sa.Column("start_ts", sa.DateTime(), nullable=False),
        sa.Column("end_ts", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channels", sa.Text(), nullable=False),
    )


def _write_sql(
    frame: pd.DataFrame,
    group: GroupConfig,
    url: str,
    start: datetime,
    end: datetime,
    labels: list[InjectedAnomaly],
) -> None:
    """Replace the range's readings and labels of ``group`` in one transaction."""
    from tsad.storage.engine import IMMEDIATE

    src = group.source
    engine = _engine(url)
    metadata = sa.MetaData()
    readings, anomalies = _readings_table(group, metadata), _anomaly_table(metadata)
    metadata.create_all(engine, checkfirst=True)
    _check_columns(engine, readings)
    stamps = _source_times(frame.index, src.timestamps_timezone).to_pydatetime()
    rows = (
        _long_rows(frame, stamps, src) if src.layout == "long" else _wide_rows(frame, stamps, src)
    )
    ts = readings.c[src.timestamp_column]
    lo, hi = (
        _source_times(pd.DatetimeIndex([start, end]), src.timestamps_timezone)
    ).to_pydatetime()
    utc_lo, utc_hi = (t.astimezone(timezone.utc).replace(tzinfo=None) for t in (start, end))
    with engine.connect() as conn:
        conn.execution_options(**IMMEDIATE)
        with conn.begin():
            conn.execute(sa.delete(readings).where(ts >= lo, ts < hi))
            for i in range(0, len(rows), _CHUNK):
                conn.execute(sa.insert(readings), rows[i : i + _CHUNK])
            conn.execute(
                sa.delete(anomalies).where(
                    anomalies.c.sensor_group == group.name,
                    anomalies.c.start_ts >= utc_lo,
                    anomalies.c.start_ts < utc_hi,
                )
            )
            if labels:
                conn.execute(
                    sa.insert(anomalies),
                    [
                        {
                            "sensor_group": a.group,
                            "kind": a.kind,
                            "channels": ",".join(a.channels),
                            "start_ts": a.start.astimezone(timezone.utc).replace(tzinfo=None),
                            "end_ts": a.end.astimezone(timezone.utc).replace(tzinfo=None),
                        }
                        for a in labels
                    ],
                )


def _check_columns(engine: sa.Engine, table: sa.Table) -> None:
    """An existing table must have the columns this config writes (a clear error, not SQL's)."""
    found = {c["name"] for c in sa.inspect(engine).get_columns(table.name)}
    missing = [c.name for c in table.columns if c.name not in found]
    if missing:
        raise ConfigError(
            f"historian table {table.name!r} exists without column {missing[0]!r}; "
            f"drop the table or fix the group's channels/columns (it has {sorted(found)})"
        )


def _long_rows(frame: pd.DataFrame, stamps: np.ndarray, src: Any) -> list[dict[str, Any]]:
    values = frame.to_numpy()
    names = list(frame.columns)
    return [
        {src.timestamp_column: t, src.sensor_column: name, src.value_column: float(v)}
        for t, row in zip(stamps, values.tolist(), strict=True)
        for name, v in zip(names, row, strict=True)
    ]


def _wide_rows(frame: pd.DataFrame, stamps: np.ndarray, src: Any) -> list[dict[str, Any]]:
    names = list(frame.columns)
    return [
        {src.timestamp_column: t, **dict(zip(names, row, strict=True))}
        for t, row in zip(stamps, frame.to_numpy().tolist(), strict=True)
    ]


def _write_files(frame: pd.DataFrame, group: GroupConfig, days: list[date], tz: str) -> None:
    """One file per site-local day at ``source.path`` (overwritten on re-runs)."""
    src = group.source
    assert src.path is not None
    for day in days:
        lo, hi = day_bounds(day, tz)
        part = frame[(frame.index >= lo) & (frame.index < hi)]
        local = part.index.tz_convert(src.timestamps_timezone)
        stamps: pd.DatetimeIndex | pd.Index = local
        if src.format == "csv" and src.timestamps_timezone == "UTC":
            stamps = pd.Index(local.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S"))
        elif src.format == "csv":
            stamps = pd.Index([t.isoformat() for t in local])
        if src.layout == "long":  # rows in time order, one per (timestamp, channel)
            names = [str(c) for c in part.columns]
            out = pd.DataFrame(
                {
                    src.timestamp_column: stamps.repeat(len(names)),
                    src.sensor_column: np.tile(names, len(part)),
                    src.value_column: part.to_numpy().ravel(),
                }
            )
        else:
            out = part.set_axis(stamps, axis=0).rename_axis(src.timestamp_column).reset_index()
        path = Path(src.path.format(date=day.isoformat(), group=group.name))
        path.parent.mkdir(parents=True, exist_ok=True)
        if src.format == "csv":
            out.to_csv(path, index=False)
        else:
            out.to_parquet(path, index=False)
