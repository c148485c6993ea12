"""Alembic environment: runs on the connection :mod:`tsad.storage.migrate` hands over.

The caller opens the connection, starts the transaction and takes the lock, so every revision of
one upgrade commits together. Run from the ``alembic`` command line instead, it connects to the
``sqlalchemy.url`` option through tsad's engine factory.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from tsad.storage.migrate import VERSION_TABLE, load_metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=load_metadata(),
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE through copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                          target_metadata=load_metadata(), version_table=VERSION_TABLE,
                          literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from tsad.storage.engine import get_engine

    with get_engine(context.config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
        conn.commit()


if hasattr(context, "config"):  # only inside Alembic; importing this file elsewhere does nothing
    main()
