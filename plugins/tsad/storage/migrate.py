"""Schema migrations (Alembic) for tsad's records database, run by ``tsad db upgrade`` or a task.

The scripts live in the ``tsad.storage.migrations`` package, so they install with tsad; the version is
kept in tsad's own table, :data:`VERSION_TABLE`, so tsad can share a database (or a schema) with
other Alembic users without either seeing the other's revision. Nothing here runs at import or at
DAG parse time.

An upgrade is one transaction, serialized across processes: ``BEGIN IMMEDIATE`` on SQLite and an
advisory lock on PostgreSQL, so two tasks starting at once do not both create tables. A database
made by the pre-Alembic ``create_all`` is adopted: the first revision only creates what is missing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData

from tsad.storage import dialect
from tsad.storage.engine import IMMEDIATE, describe, get_engine

VERSION_TABLE = "tsad_alembic_version"
SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_current: set[str] = set()  # URLs seen at head in this process
_guard = threading.Lock()


def load_metadata() -> MetaData:
    """Every table tsad defines, at head (``tsad.storage.schema``)."""
    from tsad.storage.schema import metadata

    return metadata


def head() -> str:
    """The newest revision the installed scripts know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config())
    revision = script.get_current_head()
    assert revision is not None, "tsad.storage.migrations has no revisions"
    return revision


def current(target: str | Engine) -> str | None:
    """The database's revision (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    engine = _engine(target)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(target: str | Engine, revision: str = "head") -> str:
    """Migrate the database to ``revision`` in one serialized transaction; return the revision."""
    from alembic import command

    engine = _engine(target)
    with engine.connect() as conn:
        conn.execution_options(**IMMEDIATE)
        with conn.begin():
            dialect.lock(conn, "tsad.storage.migrate")
            command.upgrade(_config(conn), revision)
    reached = current(engine)
    if reached == head():
        with _guard:
            _current.add(_key(engine))
    return reached or "base"


def ensure_current(target: str | Engine) -> None:
    """Upgrade to head unless this process already saw the database there (cheap after once)."""
    engine = _engine(target)
    with _guard:
        if _key(engine) in _current:
            return
    if current(engine) != head():
        upgrade(engine)
    with _guard:
        _current.add(_key(engine))


def forget() -> None:
    """Forget which databases were seen at head (tests that drop or recreate databases)."""
    with _guard:
        _current.clear()


def _engine(target: str | Engine) -> Engine:
    return get_engine(target) if isinstance(target, str) else target


def _key(engine: Engine) -> str:
    return describe(engine.url.render_as_string(hide_password=False))


def _config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config
