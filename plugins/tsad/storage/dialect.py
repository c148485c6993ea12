"""Where SQLite and PostgreSQL differ, in one place: callers never branch on the database.

- **Connections** (``engine_options``, ``configure``): SQLite gets WAL, a 30 s busy timeout,
  foreign keys, and SQLAlchemy (not ``sqlite3``) emitting ``BEGIN`` so a writer can ask for
  ``BEGIN IMMEDIATE`` with :data:`IMMEDIATE`; PostgreSQL gets ``pool_pre_ping`` (nightly jobs
  find connections that a server or firewall closed hours ago) and whichever driver is installed.
- **Write locks** (``lock``): a transaction-scoped lock on a key. PostgreSQL takes an advisory
  lock; SQLite needs none, since ``BEGIN IMMEDIATE`` admits one writer at a time.
- **Long locks** (``exclusive``): a lock held across work outside any transaction (a training
  that takes minutes must not hold SQLite's write lock): a session advisory lock on PostgreSQL,
  an ``flock`` on a file beside the SQLite database.
- **Interval arithmetic** (``seconds_between``) for the reporting views.
"""

from __future__ import annotations

import fcntl
import importlib.util
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Integer, cast, event, func, text
from sqlalchemy.engine import URL

#: Execution options that make the next transaction on SQLite start with ``BEGIN IMMEDIATE``
#: (take the write lock up front, so two writers wait on the busy timeout instead of one failing
#: with "database is locked" when it upgrades a read lock). Ignored by other backends.
IMMEDIATE: dict[str, Any] = {"tsad_sqlite_begin": "IMMEDIATE"}
BUSY_TIMEOUT_S = 30
_BEGIN_MODES = {"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"}


def with_driver(url: URL) -> URL:
    """Accept Airflow's ``postgres://`` and pick an installed PostgreSQL driver (SQLAlchemy 2.1
    maps a bare ``postgresql://`` to psycopg 3; tsad installs psycopg2: psycopg 3 first)."""
    if url.drivername == "postgres":
        url = url.set(drivername="postgresql")
    if url.drivername == "postgresql":
        for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"postgresql+{driver}")
    return url


def engine_options(url: URL) -> dict[str, Any]:
    """``create_engine`` options for the URL's database."""
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def configure(engine: Engine) -> None:
    """Connection-level settings a new engine needs (SQLite: pragmas and the begin mode)."""
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)


def lock(conn: Connection, *key: str | int) -> None:
    """Hold a lock on ``key`` until ``conn``'s transaction ends (PostgreSQL: an advisory lock;
    SQLite: ``BEGIN IMMEDIATE`` already admits one writer at a time)."""
    if conn.dialect.name != "postgresql":
        return
    first, second = _keys(key)
    conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": first, "b": second})


@contextmanager
def exclusive(engine: Engine, *key: str | int) -> Iterator[None]:
    """Hold a lock on ``key`` across the block, outside any transaction: one holder at a time
    among every process that uses this database, the others wait (PostgreSQL: a session
    advisory lock on a connection of its own; SQLite: ``flock`` on a file beside the database,
    whose processes share its host)."""
    first, second = _keys(key)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:a, :b)"), {"a": first, "b": second})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), {"a": first, "b": second})
                conn.commit()
        return
    database = engine.url.database
    folder = Path(database).parent if database and database != ":memory:" else None
    if folder is None:  # an in-memory database lives in one process: nothing to share
        yield
        return
    path = folder / f".{Path(database).name}.lock-{first & 0xFFFFFFFF:08x}-{second}"
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def seconds_between(dialect: str, start: Any, end: Any) -> Any:
    """Whole seconds from ``start`` to ``end`` as a SQL expression."""
    if dialect == "sqlite":
        return cast(func.round((func.julianday(end) - func.julianday(start)) * 86400), Integer)
    return cast(func.extract("epoch", end - start), Integer)


def _keys(key: tuple[str | int, ...]) -> tuple[int, int]:
    """Two int4 numbers for a key: a hash of its text parts, and its int part (or 0)."""
    words = "/".join(str(k) for k in key if not isinstance(k, int))
    number = next((k for k in key if isinstance(k, int)), 0)
    return zlib.crc32(words.encode()) - 2**31, number


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Stop sqlite3 from issuing its own (deferred, DML-only) BEGIN; _sqlite_begin takes over.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") == "AUTOCOMMIT":
        return
    mode = str(options.get("tsad_sqlite_begin", "")).upper()
    if mode not in _BEGIN_MODES:
        raise ValueError(f"tsad_sqlite_begin must be one of {sorted(_BEGIN_MODES)}, got {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())
