"""What every nightly step works on: one sensor group's data day in one run (``GroupDay``).

A step takes a ``GroupDay`` and returns a small JSON-able dict (paths and counts, never data), so
it can be an Airflow task whose result travels through XCom; the CLI (``tsad run``) and the DAG
call the same steps. Every step is idempotent per (group, day): re-running it gives the same files
and rows, which is what lets database and source calls be retried (``tsad.retry``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

from sqlalchemy import Engine

from tsad import retry
from tsad.config import DetectorConfig, GroupConfig, TsadConfig
from tsad.config.shards import shard_numbers, unit_detector_config, unit_label
from tsad.errors import ConfigError

log = logging.getLogger("tsad.pipeline")
T = TypeVar("T")


@dataclass(frozen=True)
class RunInfo:
    """Who is running: Airflow's dag and run ids, or the CLI's stand-ins."""

    dag_id: str = "tsad-cli"
    run_id: str = "manual"


def database_url(config: TsadConfig, override: str | None = None) -> str:
    """tsad's records database; a ``conn_id`` needs the Airflow layer to resolve it first."""
    url = override or config.database.url
    if url is None:
        raise ConfigError(
            f"database.conn_id={config.database.conn_id!r} can only be resolved inside Airflow; "
            "outside it set database.url (or TSAD_DATABASE_URL)")
    return url


@dataclass(frozen=True)
class GroupDay:
    """One group's data day in one run, with the URLs the Airflow layer resolved from its
    connections (``db_url``, ``source_url``; None: the config's own URLs)."""

    config: TsadConfig
    group: GroupConfig
    day: date
    run: RunInfo = field(default_factory=RunInfo)
    db_url: str | None = None
    source_url: str | None = None

    @classmethod
    def of(cls, config: TsadConfig, group: str, day: date, run: RunInfo | None = None,
           db_url: str | None = None, source_url: str | None = None) -> GroupDay:
        """The group named ``group`` (a ConfigError lists the configured ones)."""
        return cls(config, config.group(group), day, run or RunInfo(), db_url, source_url)

    @property
    def name(self) -> str:
        return self.group.name

    def at(self, day: date) -> GroupDay:
        """The same group and run on another day (training days, the day before)."""
        return GroupDay(self.config, self.group, day, self.run, self.db_url, self.source_url)

    @property
    def shards(self) -> list[int | None]:
        """The group's units of work: ``[None]``, or its shard numbers."""
        return shard_numbers(self.group)

    def label(self, shard: int | None = None) -> str:
        """``pumps`` or ``pumps/s01``, with the day: how logs name a unit's work."""
        return f"{unit_label(self.group.name, shard)} {self.day}"

    def detector_config(self, shard: int | None) -> DetectorConfig:
        return unit_detector_config(self.group, shard)

    def records(self) -> Engine:
        """tsad's records database, migrated to the newest schema with its reporting views
        (cheap after the first call per process)."""
        from tsad.storage.engine import get_engine
        from tsad.storage.schema import create_schema
        from tsad.storage.views import create_views

        engine = get_engine(database_url(self.config, self.db_url))

        def prepare() -> None:
            create_schema(engine)
            create_views(engine)

        retrying(prepare, f"preparing database {engine.url.render_as_string(hide_password=True)}")
        return engine


def retrying(fn: Callable[[], T], what: str) -> T:
    """``fn()`` with transient failures retried (``tsad.retry.call``)."""
    return retry.call(fn, what)
