"""The one place that creates SQLAlchemy engines.

One engine per URL per process, so connection pools are shared by every caller. What each
database needs to let several writers (a backfill, a manual re-run) queue instead of failing is
in ``tsad.storage.dialect``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
from pathlib import PurePath
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from tsad.errors import ConfigError
from tsad.storage import dialect

#: Re-exported: SQLite's ``BEGIN IMMEDIATE`` execution options (``tsad.storage.dialect``).
IMMEDIATE = dialect.IMMEDIATE
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
    parsed = dialect.with_driver(parsed)
    try:
        engine = create_engine(parsed, json_serializer=dumps, **dialect.engine_options(parsed))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(f"cannot open database {describe(url)}: {exc}") from None
    dialect.configure(engine)
    return engine


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
