"""A SQL source's day as Arrow record batches: ADBC on SQLite and PostgreSQL, SQLAlchemy elsewhere.

ADBC (``adbc-driver-sqlite``, ``adbc-driver-postgresql``) reads rows straight into Arrow columns,
some 30x faster than Python row tuples. Every other database, and SQLite or PostgreSQL where the
driver is not installed (a warning names the package), is read through SQLAlchemy in chunks
turned into the same batches. Either way identifiers are quoted by the database's own rules and
the day's bounds are bound parameters (on PostgreSQL through ADBC: typed literals of tsad's own
datetimes, because the streaming COPY path takes no parameters; with parameters libpq would hold
the whole result in memory first).

SQLite types each value, not each column, and ADBC types a column from its first values: so
numbers and text of a reading column are selected apart (``CASE typeof(...)``), a first row of
the right types leads the result, and a batch holding text gets its numbers as their shortest
decimal text, which reads back to the same float, as the DB-API driver's Python values did.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from tsad.errors import SourceError
from tsad.ingest.sources.base import ReadWholeDay

log = logging.getLogger(__name__)

#: the driver module and the package that provides it, per SQLAlchemy dialect
DRIVERS = {"sqlite": ("adbc_driver_sqlite.dbapi", "adbc-driver-sqlite"),
           "postgresql": ("adbc_driver_postgresql.dbapi", "adbc-driver-postgresql")}
SQLITE_BATCH_ROWS = 1 << 16
FALLBACK_CHUNK_ROWS = 1 << 16
_FIRST = "tsad:first-row"  # the typed first row of a SQLite result, dropped before use
_warned: set[str] = set()


@dataclass(frozen=True)
class Query:
    """What to select: ``selected`` columns of ``table`` with ``ts`` in [lo, hi) (``bounds``:
    lo, hi and the SQLAlchemy type they bind as); ``text`` columns are names (sensor),
    ``values`` hold readings."""

    table: str
    selected: list[str]
    ts: str
    text: set[str] = field(default_factory=set)
    values: list[str] = field(default_factory=list)
    bounds: tuple[Any, Any, Any] = (None, None, None)
    numeric: dict[str, str] = field(default_factory=dict)  # reading -> '0' / '0.0' as declared


def read(engine: sa.Engine, query: Query, where: str, whole: bool) -> Iterator[pa.RecordBatch]:
    """The rows as record batches (``whole``: one batch); errors said as ``SourceError``."""
    dialect = engine.dialect.name
    module = adbc_module(dialect)
    if module is None or (dialect == "sqlite" and engine.url.database in (None, "", ":memory:")):
        batches = _sqlalchemy(engine, query, where)
    else:
        batches = _adbc(module, engine, query, where, exact=whole)
    if not whole:
        return batches
    return _one_batch(list(batches), query.selected)


def _one_batch(batches: list[pa.RecordBatch], names: list[str]) -> Iterator[pa.RecordBatch]:
    """The batches as one; a column typed differently between batches (SQLite: text in some)
    becomes text throughout, as a pandas object column was."""
    if not batches:
        return iter([])
    columns = []
    for i in range(len(names)):
        parts = [b.column(i) for b in batches]
        if len({p.type for p in parts}) > 1:
            parts = [p if pa.types.is_string(p.type) else pc.cast(p, pa.string()) for p in parts]
        columns.append(pa.concat_arrays(parts))
    return iter([pa.RecordBatch.from_arrays(columns, names=names)])


def adbc_module(dialect: str) -> ModuleType | None:
    """The ADBC DB-API module for ``dialect``, or None (not a supported database, or the
    package is not installed: warned once, naming it)."""
    if dialect not in DRIVERS:
        return None
    name, package = DRIVERS[dialect]
    try:
        return importlib.import_module(name)
    except ImportError:
        if package not in _warned:
            _warned.add(package)
            log.warning("%s is not installed: reading %s sources through SQLAlchemy, row by "
                        "row (much slower); pip install %s", package, dialect, package)
        return None


def source_error(exc: BaseException, where: str) -> SourceError:
    """A database error as tsad says it: transient (retried) or permanent, password hidden."""
    from tsad.retry import (_PERMANENT_TEXT, _TRANSIENT_STATES, _TRANSIENT_TEXT,
                            TransientSourceError, is_transient, sqlstate)

    reason = getattr(exc, "orig", None) or exc
    message = f"cannot read {where}: {type(reason).__name__}: {str(reason).strip()}"
    if isinstance(exc, sa.exc.SQLAlchemyError):
        transient = is_transient(exc)
    else:  # ADBC: a SQLSTATE when the server answered, else what the message says
        state, text = sqlstate(exc), str(exc).lower()
        if state and state != "00000":
            transient = state.startswith(_TRANSIENT_STATES)
        elif any(t in text for t in _PERMANENT_TEXT):
            transient = False
        else:
            transient = (any(t in text for t in _TRANSIENT_TEXT)
                         or type(exc).__name__ == "OperationalError")
    if transient:
        return TransientSourceError(message)
    return SourceError(f"{message}; check the source URL, its credentials and the table")


# ---------------------------------------------------------------- ADBC


def _adbc(module: ModuleType, engine: sa.Engine, query: Query, where: str,
          exact: bool = False) -> Iterator[pa.RecordBatch]:
    url = engine.url
    password = url.password
    try:
        if engine.dialect.name == "sqlite":
            yield from _sqlite(module, engine, query, exact)
            return
        target = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with module.connect(target) as conn, conn.cursor() as cursor:
            cursor.execute(_postgres_sql(engine, query))
            yield from _nonempty(cursor.fetch_record_batch())
    except module.Error as exc:
        error = source_error(exc, where)
        if password:
            error = type(error)(str(error).replace(str(password), "***"))
        raise error from None


def _nonempty(reader: Any) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        if batch.num_rows:
            yield batch


def _sqlite(module: ModuleType, engine: sa.Engine, query: Query,
            exact: bool) -> Iterator[pa.RecordBatch]:
    """The plain query, led by a first row typed as the columns are declared, while the readings
    come back as numbers; the exact one (numbers and text apart) where they do not, or
    ``exact``."""
    from tsad.storage.dialect import BUSY_TIMEOUT_S

    with module.connect(engine.url.database) as conn, conn.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")  # wait for writers
        cursor.fetchall()
        cursor.adbc_statement.set_options(
            **{"adbc.sqlite.query.batch_rows": str(SQLITE_BATCH_ROWS)})
        plain = not exact and all(query.numeric.get(c) for c in query.values)
        if plain:
            cursor.execute(*_sqlite_sql(engine, query, exact=False))
            reader, sent = cursor.fetch_record_batch(), 0
            try:
                for batch in reader:
                    batch = _sqlite_batch(batch, query, first=not sent, exact=False)
                    if batch is None:  # text among the first readings: read exactly instead
                        break
                    sent += 1
                    if batch.num_rows:
                        yield batch
                else:
                    return
            except (OSError, pa.ArrowException) as exc:
                if "type mismatch" not in str(exc).lower():
                    raise
                if sent:  # text or other numbers further down: read the day again, exactly
                    raise ReadWholeDay() from None
        cursor.execute(*_sqlite_sql(engine, query, exact=True))
        first = True
        for batch in cursor.fetch_record_batch():
            batch = _sqlite_batch(batch, query, first, exact=True)
            first = False
            if batch is not None and batch.num_rows:
                yield batch


def _bound_text(bound: Any) -> Any:
    """A bound as SQLAlchemy's SQLite dialect writes DateTime values (and compares text)."""
    return bound.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(bound, datetime) else bound


def _postgres_sql(engine: sa.Engine, query: Query) -> str:
    """The day's query for COPY, the driver's streaming binary path. COPY takes no parameters,
    so the bounds (tsad's own datetimes, never text from the config or the source) are written
    as typed literals, checked to be nothing but a date-time; identifiers are quoted."""
    q = engine.dialect.identifier_preparer.quote
    lo, hi, bind_type = query.bounds
    if not isinstance(bind_type, sa.DateTime):
        cast = ""  # text stamps compare as text
    else:
        cast = "::timestamptz" if bind_type.timezone else "::timestamp"
    bounds = []
    for bound in (lo, hi):
        if not isinstance(bound, datetime):
            raise TypeError(f"a day bound must be a datetime, got {bound!r}")  # a bug in tsad
        text = bound.isoformat(sep=" ") if cast else _bound_text(bound)
        bounds.append(f"'{text}'{cast}")
    columns = ", ".join(q(c) for c in query.selected)
    ts = q(query.ts)
    return (f"SELECT {columns} FROM {q(query.table)} "
            f"WHERE {ts} >= {bounds[0]} AND {ts} < {bounds[1]}")


def _sqlite_sql(engine: sa.Engine, query: Query, exact: bool) -> tuple[str, tuple[Any, Any]]:
    """The day's query, led by a row of the right types (ADBC types a column from its first
    values). ``exact``: each reading column as a number part and a text part."""
    q = engine.dialect.identifier_preparer.quote
    first, rows = [], []
    for i, column in enumerate(query.selected):
        if column in query.values and exact:
            first += [f"0.0 AS n{i}", f"'' AS t{i}"]
            rows += [f"CASE WHEN typeof({q(column)}) IN ('integer', 'real') "
                     f"THEN CAST({q(column)} AS REAL) END",
                     f"CASE WHEN typeof({q(column)}) IN ('text', 'blob') "
                     f"THEN CAST({q(column)} AS TEXT) END"]
        elif column in query.values:
            first.append(f"{query.numeric[column]} AS c{i}")
            rows.append(q(column))
        else:
            first.append(f"'{_FIRST}' AS c{i}")
            rows.append(f"CAST({q(column)} AS TEXT)" if exact else q(column))
    ts = q(query.ts)
    sql = (f"SELECT {', '.join(first)} UNION ALL SELECT {', '.join(rows)} "
           f"FROM {q(query.table)} WHERE {ts} >= ? AND {ts} < ?")
    lo, hi, _ = query.bounds
    return sql, (_bound_text(lo), _bound_text(hi))


def _sqlite_batch(batch: pa.RecordBatch, query: Query, first: bool,
                  exact: bool) -> pa.RecordBatch | None:
    """Drop the typed first row; join each reading's number and text parts into one column
    (``exact``). None: a plain batch whose readings came back as text (ADBC writes the numbers
    among them with six digits), to be read again exactly."""
    if first:  # the stamp leads every query (``Query.selected[0]``)
        if not batch.num_rows or batch.column(0)[0].as_py() != _FIRST:
            raise RuntimeError("SQLite returned the typed first row out of place")  # a bug
        batch = batch.slice(1)
    if not exact:
        batch = batch.rename_columns(query.selected)
        types = [batch.schema.field(n).type for n in query.values]
        if any(not (pa.types.is_floating(t) or pa.types.is_integer(t)) for t in types):
            return None
        return batch
    arrays, position = [], 0
    for column in query.selected:
        if column in query.values:
            number, text = batch.column(position), batch.column(position + 1)
            position += 2
            if text.null_count < len(text):
                number = pc.if_else(pc.is_null(text), pc.cast(number, pa.string()), text)
            arrays.append(number)
        else:
            arrays.append(batch.column(position))
            position += 1
    return pa.RecordBatch.from_arrays(arrays, names=query.selected)


# ---------------------------------------------------------------- SQLAlchemy


def _sqlalchemy(engine: sa.Engine, query: Query, where: str) -> Iterator[pa.RecordBatch]:
    """Any database SQLAlchemy reaches, in chunks of rows turned into Arrow columns."""
    lo, hi, bind_type = query.bounds
    table = sa.table(query.table, *(sa.column(c) for c in query.selected))
    ts = table.c[query.ts]
    statement = sa.select(*table.c).where(
        ts >= sa.bindparam("start", lo, type_=bind_type),
        ts < sa.bindparam("end", hi, type_=bind_type),
    )
    try:
        with engine.connect() as conn:
            result = conn.execution_options(yield_per=FALLBACK_CHUNK_ROWS).execute(statement)
            for rows in result.partitions():
                yield _rows_batch(rows, query.selected)
    except sa.exc.SQLAlchemyError as exc:
        raise source_error(exc, where) from None


def _rows_batch(rows: list[Any], names: list[str]) -> pa.RecordBatch:
    """Python row tuples -> one batch; a column mixing types becomes text (as pandas' object
    columns did: numbers as their repr, which reads back to the same value)."""
    arrays = []
    for values in zip(*rows, strict=True) if rows else [()] * len(names):
        try:
            arrays.append(pa.array(values, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=names)
