"""The one place that creates SQLAlchemy engines.

One engine per URL per process, so connection pools are shared by every caller. SQLite gets the
settings that make several writers (a backfill, a manual re-run) queue instead of failing: WAL,
a 30 s busy timeout, foreign keys on, and SQLAlchemy (not ``sqlite3``) emitting ``BEGIN`` so a
writer can ask for ``BEGIN IMMEDIATE`` with :data:`IMMEDIATE`. PostgreSQL gets ``pool_pre_ping``
because nightly jobs find connections that the server or a firewall closed hours ago.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import re
import threading
from pathlib import PurePath
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tsad.errors import ConfigError

#: Execution options that make the next transaction on SQLite start with ``BEGIN IMMEDIATE``
#: (take the write lock up front, so two writers wait on the busy timeout instead of one failing
#: with "database is locked" when it upgrades a read lock). Ignored by other backends.
IMMEDIATE: dict[str, Any] = {"tsad_sqlite_begin": "IMMEDIATE"}

BUSY_TIMEOUT_S = 30
_BEGIN_MODES = {"", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"}
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url``, created on first use."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
        return engine


def describe(url: str) -> str:
    """``url`` with its password hidden: safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def dispose_all() -> None:
    """Close every pooled connection and forget the engines (tests, forked workers)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database URL {describe(url)!r} is not a SQLAlchemy URL") from None
    parsed = _with_driver(parsed)
    options: dict[str, Any] = {"json_serializer": dumps}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
    else:
        options["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot open database {describe(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _with_driver(url: URL) -> URL:
    """Accept Airflow's ``postgres://`` and pick an installed PostgreSQL driver.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3; tsad installs psycopg2, so a
    bare URL uses whichever of the two is present (psycopg 3 first).
    """
    if url.drivername == "postgres":
        url = url.set(drivername="postgresql")
    if url.drivername == "postgresql":
        for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"postgresql+{driver}")
    return url


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


def dumps(value: Any) -> str:
    """JSON for json columns: numpy scalars become numbers, NaN/inf become null (PostgreSQL's
    jsonb rejects them), dates become ISO strings."""
    return json.dumps(_jsonable(value), allow_nan=False, sort_keys=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()  # numpy / torch scalar
        except (TypeError, ValueError):
            pass
        if hasattr(value, "tolist"):
            return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return value
