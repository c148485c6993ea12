"""Retries for database and source calls: transient failures wait and try again, permanent ones
fail at once with a message that says what to fix.

A nightly job meets a database that is restarting, a lock held by a backfill, a network blip: those
pass by themselves, so :func:`call` retries them with exponential backoff (plus jitter, so four
backfill runs do not retry in lockstep). A wrong password, a database or table that does not exist,
or bad data will not pass by waiting, so they are raised straight away, as a :class:`TsadError`
whose message names the database (password hidden) and the fix. Only idempotent steps are wrapped:
every tsad write is one transaction that replaces a partition, so doing it twice is harmless.

The policy comes from the environment (``TSAD_RETRY_ATTEMPTS``, ``TSAD_RETRY_BASE_DELAY``,
``TSAD_RETRY_MAX_DELAY``, seconds) or is passed explicitly.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tsad.errors import ConfigError, SourceError, TsadError

log = logging.getLogger("tsad.retry")
T = TypeVar("T")


class TransientError(TsadError):
    """A failure that may pass by itself (server restarting, lock timeout, network); retried."""


class TransientSourceError(SourceError, TransientError):
    """The source system is unreachable or busy right now; the day's data may well be fine."""


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits ``base_delay * 2**n`` (capped at ``max_delay``) between."""

    attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    jitter: float = 0.2  # +- this fraction of each wait

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        wait = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(0.0, wait * (1 + random.uniform(-self.jitter, self.jitter)))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        def number(name: str, default: float) -> float:
            raw = os.environ.get(name)
            if raw is None or raw.strip() == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ConfigError(f"environment variable {name}={raw!r} is not a number") from None
            if value < 0:
                raise ConfigError(f"environment variable {name}={raw!r} must be >= 0")
            return value

        base = cls()
        return cls(attempts=max(1, int(number("TSAD_RETRY_ATTEMPTS", base.attempts))),
                   base_delay=number("TSAD_RETRY_BASE_DELAY", base.base_delay),
                   max_delay=number("TSAD_RETRY_MAX_DELAY", base.max_delay))


def call(fn: Callable[[], T], what: str, *, policy: RetryPolicy | None = None,
         sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, retried while it fails transiently; ``what`` names the step in messages.

    Permanent database errors come out as :class:`ConfigError` (connection settings) or
    :class:`TsadError` subclasses with a fix; other exceptions (bugs) pass through untouched.
    """
    policy = policy or RetryPolicy.from_env()
    started = time.monotonic()
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                permanent = explain_permanent(exc, what)
                if permanent is None:
                    raise
                raise permanent from exc
            reason = _reason(exc)
            if attempt == policy.attempts:
                waited = time.monotonic() - started
                raise TransientError(
                    f"{what} still failing after {attempt} attempts over {waited:.0f} s: {reason}; "
                    "check that the server is up and reachable, then re-run the task (it is "
                    "idempotent)") from exc
            wait = policy.delay(attempt)
            log.warning("%s failed (attempt %d of %d, transient): %s; retrying in %.1f s",
                        what, attempt, policy.attempts, reason, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- classification

# SQLSTATE classes and codes (PostgreSQL) that pass by themselves.
_TRANSIENT_STATES = ("08", "40001", "40P01", "53300", "53400", "55P03", "57P01", "57P02", "57P03",
                     "58000", "58030")
# Connection-level messages without a SQLSTATE (libpq, sqlite3).
_PERMANENT_TEXT = ("password authentication failed", "authentication failed", "no pg_hba.conf",
                   "does not exist", "permission denied", "role ", "invalid dsn",
                   "unable to open database file", "no such table", "no such column",
                   "not a database", "malformed")
_TRANSIENT_TEXT = ("database is locked", "database table is locked", "busy", "connection refused",
                   "could not connect", "timeout", "timed out", "server closed the connection",
                   "terminating connection", "starting up", "shutting down", "connection reset",
                   "connection already closed", "connection is closed", "ssl syscall", "eof",
                   "could not receive data", "could not send data", "broken pipe",
                   "no route to host", "network is unreachable", "temporary failure",
                   "could not translate host name", "disk i/o error", "recovery mode")
_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED,
                     errno.EHOSTUNREACH, errno.ENETUNREACH, getattr(errno, "ESTALE", -1)}


def is_transient(exc: BaseException) -> bool:
    """Whether waiting and trying again may help."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, TsadError):
        return False
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        state = sqlstate(exc)
        if state:
            return state.startswith(_TRANSIENT_STATES)
        if not isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return False
        text = str(exc.orig).lower()
        if any(t in text for t in _PERMANENT_TEXT):
            return False
        if exc.orig.__class__.__module__.startswith("sqlite3"):
            return any(t in text for t in _TRANSIENT_TEXT)
        return True  # connection-level OperationalError: the server went away or is not there yet
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError,
                                                         IsADirectoryError, NotADirectoryError)):
        return exc.errno in _TRANSIENT_ERRNOS
    return False


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a DBAPI error (psycopg2 ``pgcode``, psycopg 3 ``sqlstate``), if any."""
    orig = getattr(exc, "orig", exc)
    for name in ("pgcode", "sqlstate"):
        value = getattr(orig, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def explain_permanent(exc: BaseException, what: str) -> TsadError | None:
    """A TsadError telling the operator what to fix, or None for errors that are not ours."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, TsadError) or not isinstance(exc, sa_exc.DBAPIError):
        return None
    reason = _reason(exc)
    state = sqlstate(exc) or ""
    text = reason.lower()
    if state.startswith("28") or "authentication" in text or "pg_hba" in text or "role " in text:
        return ConfigError(f"{what}: cannot log in ({reason}); fix the user or password in the "
                           "Airflow connection or the database URL (TSAD_DATABASE_URL)")
    if state == "3D000" or ("database" in text and "does not exist" in text) \
            or "unable to open database file" in text:
        return ConfigError(f"{what}: the database does not exist ({reason}); create it or fix "
                           "the database name in the Airflow connection or the URL")
    if state in ("42P01", "42703") or "no such table" in text or "no such column" in text \
            or ("relation" in text and "does not exist" in text):
        return ConfigError(f"{what}: the schema is missing or out of date ({reason}); run "
                           "`tsad db upgrade` (or the DAG's db_upgrade task)")
    return ConfigError(f"{what}: database error that retrying will not fix: {reason}")


def _reason(exc: BaseException) -> str:
    """One line: the driver's message without SQL text or parameters (which may be large)."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return f"{type(orig).__name__}: {first}"
