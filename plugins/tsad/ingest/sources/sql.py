"""``kind: sql``: one day's rows from a table, bounded in SQL (never text from the config).

The table and its columns are checked first through SQLAlchemy (a missing table, column or
database file is named with the URL, password hidden). The rows are then streamed into Arrow
record batches by a columnar ADBC driver on SQLite and PostgreSQL (``adbc-driver-sqlite``,
``adbc-driver-postgresql``), and through SQLAlchemy for any other database or where the driver
is not installed (:mod:`tsad.ingest.sql_batches`). A database that is down right now is a
:class:`tsad.retry.TransientSourceError`.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsad.config.schema import IDENTIFIER
from tsad.errors import ConfigError, SourceError
from tsad.ingest.sources.base import RawRows, Source, needed_columns, require_columns

if TYPE_CHECKING:
    import sqlalchemy as sa

    from tsad.config.schema import SourceConfig


class SqlSource(Source):
    """A table in a database reached by SQLAlchemy ``url`` or an Airflow ``conn_id``."""

    kind = "sql"

    @classmethod
    def check(cls, src: SourceConfig) -> None:
        if (src.url is None) == (src.conn_id is None):
            raise ValueError("a 'sql' source needs exactly one of 'url' or 'conn_id'")
        if src.table is None:
            raise ValueError("a 'sql' source needs 'table'")
        if not IDENTIFIER.fullmatch(src.table):
            raise ValueError(
                f"'table' must be a plain identifier (letters, digits, _), got {src.table!r}")

    def url(self) -> str:
        """The database URL: the resolved connection, else ``source.url``."""
        if self.source_url:
            return self.source_url
        if self.config.url:
            return self.config.url
        raise ConfigError(
            f"group {self.group.name!r}: source uses conn_id {self.config.conn_id!r}, which "
            "needs Airflow to resolve it; run the task in Airflow or pass an explicit source URL "
            "(source_url / source.url)"
        )

    def read(self, day: date, start: datetime, end: datetime, whole: bool = False) -> RawRows:
        """The day's rows, bounded in SQL; the table and its columns are checked first."""
        import sqlalchemy as sa
        from sqlalchemy.exc import SQLAlchemyError

        from tsad.ingest import sql_batches
        from tsad.storage.engine import get_engine  # the one place that creates engines

        src, group = self.config, self.group
        assert src.table is not None
        engine = get_engine(self.url())
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
        except SQLAlchemyError as exc:
            raise sql_batches.source_error(exc, where) from None
        needed = needed_columns(src)
        require_columns(list(types), needed, where, group)
        found = None
        if src.layout == "long":
            selected, values = needed, [src.value_column]
        else:
            found = [c for c in types if c != src.timestamp_column]
            values = [c for c in group.channels if c in types]
            selected = [src.timestamp_column, *values]
        bounds = sql_bounds(types[src.timestamp_column], start, end, src.timestamps_timezone,
                            engine.dialect.name)
        numeric = {c: "0" if isinstance(types[c], sa.Integer) else "0.0" for c in values
                   if isinstance(types[c], (sa.Integer, sa.Float, sa.Numeric))}
        query = sql_batches.Query(src.table, selected, src.timestamp_column,
                                  text={src.sensor_column} if src.layout == "long" else set(),
                                  values=values, bounds=bounds, numeric=numeric)
        batches = sql_batches.read(engine, query, where, whole)
        return RawRows(batches, where, selected, found, float32_as_text=True)


def sql_bounds(
    ts_type: Any, start: datetime, end: datetime, source_tz: str, dialect: str = ""
) -> tuple[Any, Any, sa.types.TypeEngine[Any]]:
    """Bounds as the column stores time: aware for timestamptz, naive in the source zone otherwise.

    A column that is not a DateTime (text) gets a day of slack each side, because text compares
    character by character; the exact day is cut after parsing either way. SQLite keeps even a
    DateTime column as text, and other tools write it without SQLAlchemy's microseconds
    ('00:00:00' sorts before '00:00:00.000000'), so there the lower bound gets a second of slack
    to keep the row at the day's first instant.
    """
    import pandas as pd
    import sqlalchemy as sa

    if isinstance(ts_type, sa.DateTime) and ts_type.timezone:
        return start, end, sa.DateTime(timezone=True)
    lo, hi = (
        pd.Timestamp(t).tz_convert(source_tz).tz_localize(None).to_pydatetime()
        for t in (start, end)
    )
    if not isinstance(ts_type, sa.DateTime):
        return lo - timedelta(days=1), hi + timedelta(days=1), sa.Text()
    if dialect == "sqlite":
        lo = lo - timedelta(seconds=1)
    return lo, hi, sa.DateTime()
