"""Reading one day's raw rows from a group's source: a SQL table, or a dropped CSV/Parquet file.

Nothing is cleaned here (that is :mod:`tsad.ingest.extract`); this module only finds the day's rows,
bounded in SQL with bound parameters or read from the day's file, and says plainly what is wrong
with a source that is missing, unreadable or mis-shaped. A source that is down right now raises a
:class:`tsad.retry.TransientSourceError`, which the pipeline retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from tsad.config import GroupConfig
from tsad.errors import ConfigError, DataError, SourceError
from tsad.retry import TransientSourceError, is_transient

MISSING_TEXT = ("", "nan", "na", "n/a", "null", "none")  # empty readings, not bad ones
_DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class RawRows:
    """Rows as read from the source, before any cleaning; ``where`` names the table or file."""

    frame: pd.DataFrame
    where: str
    found_channels: list[str] | None = None  # wide SQL: channel columns the table has
    decimal_comma: bool = False  # ';' csv exports often write 12,5
    typed: bool = True  # the source declares column types (SQL, Parquet), unlike csv text


def source_url(group: GroupConfig, source_url: str | None) -> str:
    if source_url:
        return source_url
    if group.source.url:
        return group.source.url
    raise ConfigError(
        f"group {group.name!r}: source uses conn_id {group.source.conn_id!r}, which needs Airflow "
        "to resolve it; run the task in Airflow or pass an explicit source URL "
        "(source_url / source.url)"
    )


def _engine(url: str) -> sa.Engine:
    from tsad.storage.engine import get_engine  # lazy: the one place that creates engines

    return get_engine(url)


def read_sql(group: GroupConfig, start: datetime, end: datetime, url: str) -> RawRows:
    """The day's rows, bounded in SQL with bound parameters; the table is checked first."""
    src = group.source
    assert src.table is not None
    engine = _engine(url)
    shown = engine.url.render_as_string(hide_password=True)
    database = engine.url.database
    if (
        engine.dialect.name == "sqlite"
        and database
        and database != ":memory:"
        and not Path(database).exists()
    ):
        raise SourceError(
            f"source database {shown} does not exist (file {database}); "
            f"check the URL of group {group.name!r} or run simulate first"
        )
    where = f"table {src.table!r} in {shown}"
    try:
        inspector = sa.inspect(engine)
        if not inspector.has_table(src.table):
            raise SourceError(
                f"source table {src.table!r} not found in {shown}; "
                f"check 'table' of group {group.name!r} or run simulate first"
            )
        types = {c["name"]: c["type"] for c in inspector.get_columns(src.table)}
        needed = [
            src.timestamp_column,
            *((src.sensor_column, src.value_column) if src.layout == "long" else ()),
        ]
        require_columns(list(types), needed, where, group)
        found = None
        if src.layout == "long":
            selected = needed
        else:
            found = [c for c in types if c != src.timestamp_column]
            selected = [src.timestamp_column, *(c for c in group.channels if c in types)]
        lo, hi, bind_type = _sql_bounds(
            types[src.timestamp_column], start, end, src.timestamps_timezone, engine.dialect.name
        )
        table = sa.table(src.table, *(sa.column(c) for c in selected))
        ts = table.c[src.timestamp_column]
        query = sa.select(*table.c).where(
            ts >= sa.bindparam("start", lo, type_=bind_type),
            ts < sa.bindparam("end", hi, type_=bind_type),
        )
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        message = f"cannot read {where}: {type(reason).__name__}: {str(reason).strip()}"
        if is_transient(exc):
            raise TransientSourceError(message) from None
        raise SourceError(f"{message}; check the source URL, its credentials and the table") \
            from None
    return RawRows(pd.DataFrame(rows, columns=selected), where, found)


def _sql_bounds(
    ts_type: Any, start: datetime, end: datetime, source_tz: str, dialect: str = ""
) -> tuple[Any, Any, Any]:
    """Bounds as the column stores time: aware for timestamptz, naive in the source zone otherwise.

    A column that is not a DateTime (text) gets a day of slack each side, because text compares
    character by character; the exact day is cut after parsing either way. SQLite keeps even a
    DateTime column as text, and other tools write it without SQLAlchemy's microseconds
    ('00:00:00' sorts before '00:00:00.000000'), so there the lower bound gets a second of slack
    to keep the row at the day's first instant.
    """
    if isinstance(ts_type, sa.DateTime) and ts_type.timezone:
        return start, end, sa.DateTime(timezone=True)
    lo, hi = (
        pd.Timestamp(t).tz_convert(source_tz).tz_localize(None).to_pydatetime()
        for t in (start, end)
    )
    if not isinstance(ts_type, sa.DateTime):
        lo, hi = lo - timedelta(days=1), hi + timedelta(days=1)
    elif dialect == "sqlite":
        lo = lo - timedelta(seconds=1)
    return lo, hi, sa.DateTime()


def read_file(group: GroupConfig, day: date) -> RawRows:
    """The day's dropped file, csv (',' or ';', sniffed from the header) or parquet."""
    src = group.source
    assert src.path is not None
    path = Path(src.path.format(date=day.isoformat(), group=group.name))
    if not path.is_file():
        raise SourceError(
            f"no source file for group {group.name!r} on {day.isoformat()}: {path} "
            "does not exist; check 'path' in the config or that the day's file was delivered"
        )
    where = f"file {path}"
    sep = ","
    try:
        if src.format == "parquet":
            frame = pd.read_parquet(path)
        else:
            sep = _check_csv(path, group, day)
            frame = pd.read_csv(path, sep=sep, dtype=str, encoding="utf-8-sig")
    except OSError as exc:
        message = f"cannot read source {where} (group {group.name!r}, {day.isoformat()}): {exc}"
        if is_transient(exc):
            raise TransientSourceError(message) from None
        raise SourceError(f"{message}; check the file and its permissions") from None
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        OSError,
        ValueError,
    ) as exc:
        raise SourceError(
            f"cannot read source {where} (group {group.name!r}, {day.isoformat()}): "
            f"{type(exc).__name__}: {exc}; the file is corrupt or not {src.format}"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawRows(frame, where, decimal_comma=src.format == "csv" and sep == ";",
                typed=src.format != "csv")


def _check_csv(path: Path, group: GroupConfig, day: date) -> str:
    """The file's delimiter (',' or ';', from the header), after checking that the data rows use
    the same one and that the file was not cut off in the middle of its last line."""
    with path.open("rb") as handle:
        head = handle.read(64 * 1024)
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        tail = handle.read()
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    if not lines:
        return ","
    header = lines[0]
    counts = {d: header.count(d) for d in _DELIMITERS}
    sep = max(_DELIMITERS, key=lambda d: counts[d])
    where = f"source file {path} (group {group.name!r}, {day.isoformat()})"
    if counts[sep] == 0:
        sep = ","
    elif sep not in (",", ";"):
        raise SourceError(
            f"{where} is delimited by {sep!r} (header {header[:80]!r}); tsad reads ',' or ';' "
            "csv: export with ',' or use format: parquet")
    if len(lines) > 1 and lines[1].strip():
        row = lines[1]
        if row.count(sep) == 0 and counts[sep] > 0:
            other = max(_DELIMITERS, key=lambda d: row.count(d))
            if row.count(other) > 0 and other != sep:
                raise SourceError(
                    f"{where}: the header is delimited by {sep!r} but line 2 by {other!r}; "
                    "the export mixes delimiters: re-export the file with one delimiter")
    if size and not tail.endswith(b"\n"):
        last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
        if last.count(sep) < counts[sep]:
            raise SourceError(
                f"{where} looks truncated: its last line {last[:60]!r} stops after "
                f"{last.count(sep) + 1} of {counts[sep] + 1} fields with no newline; re-deliver "
                "the complete file (the day is not extracted from a partial file)")
    return sep


def require_columns(present: list[str], needed: list[str], where: str, group: GroupConfig) -> None:
    for column in needed:
        if column not in present:
            raise DataError(
                f"column {column!r} not found in {where} (group {group.name!r}); it has "
                f"{present}; fix the source or the group's timestamp/sensor/value_column"
            )
