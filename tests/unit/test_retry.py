"""Retries around database and source calls: transient failures (a locked SQLite file, a refused
connection, a deadlock) are retried with exponential backoff, permanent ones (a missing table, a
bad password) fail at once with the fix, and the messages name the step that failed.

The errors are real: SQLite really locked by a second connection, psycopg2 really refused by a
closed port, and SQLAlchemy's own wrappers. Waits go through ``call``'s ``sleep`` argument (its
default is ``time.sleep``, bound when the module is imported, so patching ``time.sleep`` would
not reach it), so no test waits."""

from __future__ import annotations

import errno
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from tsad import retry
from tsad.errors import ConfigError, DataError
from tsad.retry import RetryPolicy, TransientError, TransientSourceError

NO_JITTER = RetryPolicy(attempts=5, base_delay=1.0, max_delay=5.0, jitter=0.0)


class Flaky:
    """Raise each of ``errors`` in turn on successive calls, then return ``result``."""

    def __init__(self, errors: list[BaseException], result: Any = "done") -> None:
        self.errors, self.result, self.calls = list(errors), result, 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


def no_wait(seconds: float) -> None:
    pytest.fail(f"a permanent error was retried (waited {seconds} s)")


def sa_error(message: str, cls: type[sa_exc.DBAPIError] = sa_exc.OperationalError,
             orig: Exception | None = None) -> sa_exc.DBAPIError:
    """SQLAlchemy's wrapper around a sqlite3 driver error, as a failed statement raises it."""
    return cls("SELECT 1", {}, orig or sqlite3.OperationalError(message))


def test_a_locked_database_is_retried_until_the_lock_is_released(tmp_path: Path) -> None:
    file = tmp_path / "records.db"
    holder = sqlite3.connect(file, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # a backfill writing: readers get "database is locked"
    engine = sa.create_engine(f"sqlite:///{file}", connect_args={"timeout": 0})
    calls, waits = [], []

    def read() -> int:
        calls.append(1)
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one())

    def wait(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            holder.execute("COMMIT")  # the backfill finishes during the second wait

    try:
        assert retry.call(read, "reading the records", policy=NO_JITTER, sleep=wait) == 0
    finally:
        holder.close()
        engine.dispose()
    assert len(calls) == 3 and waits == [1.0, 2.0]  # exponential backoff


def test_backoff_doubles_up_to_the_cap_and_stops_after_the_attempts(
        caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    always = Flaky([sa_error("database is locked") for _ in range(10)])
    with caplog.at_level(logging.WARNING, logger="tsad.retry"), \
            pytest.raises(TransientError) as raised:
        retry.call(always, "writing pumps 2026-03-05", policy=NO_JITTER, sleep=waits.append)
    assert always.calls == 5 and waits == [1.0, 2.0, 4.0, 5.0]  # capped at max_delay
    message = str(raised.value)
    assert message.startswith("writing pumps 2026-03-05 still failing after 5 attempts over ")
    assert "OperationalError: database is locked" in message and "re-run the task" in message
    assert isinstance(raised.value.__cause__, sa_exc.OperationalError)
    assert "writing pumps 2026-03-05 failed (attempt 1 of 5, transient)" in caplog.text
    assert "retrying in 1.0 s" in caplog.text


def test_one_attempt_means_no_retry() -> None:
    waits: list[float] = []
    once = Flaky([ConnectionResetError("reset by peer")])
    with pytest.raises(TransientError, match="after 1 attempts"):
        retry.call(once, "extracting", policy=RetryPolicy(attempts=1), sleep=waits.append)
    assert once.calls == 1 and waits == []


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(base_delay=10.0, max_delay=60.0, jitter=0.2)
    third = [policy.delay(3) for _ in range(200)]
    assert all(32.0 <= w <= 48.0 for w in third)
    assert len(set(third)) > 100  # spread, so parallel backfills do not retry in lockstep


@pytest.mark.parametrize("error", [
    sa_error("database is locked"),
    sa_error("disk I/O error"),
    sa_exc.DisconnectionError("gone"),
    sa_exc.TimeoutError("QueuePool limit reached"),
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    TimeoutError("timed out"),
    OSError(errno.EIO, "input/output error"),
    TransientSourceError("historian busy"),
], ids=lambda e: type(e).__name__ + ":" + str(e)[:20])
def test_transient_failures_are_retried_then_succeed(error: BaseException) -> None:
    waits: list[float] = []
    flaky = Flaky([error], result=42)
    assert retry.call(flaky, "step", policy=NO_JITTER, sleep=waits.append) == 42
    assert flaky.calls == 2 and waits == [1.0]


def test_a_refused_postgresql_connection_is_transient_and_hides_the_password() -> None:
    engine = sa.create_engine("postgresql+psycopg2://tsad:s3cret-pw@127.0.0.1:1/tsad",
                              connect_args={"connect_timeout": 2})
    waits: list[float] = []
    try:
        with pytest.raises(TransientError) as raised:
            retry.call(lambda: engine.connect(), "connecting to tsad's records database",
                       policy=RetryPolicy(attempts=2, jitter=0.0), sleep=waits.append)
    finally:
        engine.dispose()
    assert len(waits) == 1
    message = str(raised.value)
    assert "connecting to tsad's records database still failing after 2 attempts" in message
    assert "Connection refused" in message and "s3cret-pw" not in message


def test_a_missing_table_fails_at_once_with_the_fix(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'tsad.db'}")
    calls: list[int] = []

    def query() -> None:
        calls.append(1)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM detection_run"))

    waits: list[float] = []
    try:
        with pytest.raises(ConfigError, match=r"^reading runs: the schema is missing or out of "
                                              r"date \(OperationalError: no such table: "
                                              r"detection_run\); run `tsad db upgrade`"):
            retry.call(query, "reading runs", policy=NO_JITTER, sleep=waits.append)
    finally:
        engine.dispose()
    assert calls == [1] and waits == []


def test_a_database_file_that_cannot_be_opened_fails_at_once(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'tsad.db'}")
    waits: list[float] = []
    with pytest.raises(ConfigError, match="^opening: the database does not exist"):
        retry.call(lambda: engine.connect(), "opening", policy=NO_JITTER, sleep=waits.append)
    assert waits == []


class DriverError(Exception):
    """A DBAPI error with a SQLSTATE, as psycopg2 sets ``pgcode`` on errors from the server."""

    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@pytest.mark.parametrize(("state", "transient"), [
    ("40P01", True),  # deadlock detected
    ("40001", True),  # serialization failure
    ("57P01", True),  # admin shutdown (server restarting)
    ("08006", True),  # connection failure
    ("55P03", True),  # lock not available
    ("42P01", False),  # undefined table
    ("28P01", False),  # invalid password
    ("23505", False),  # unique violation
])
def test_sqlstate_decides_for_postgresql_errors(state: str, transient: bool) -> None:
    error = sa_exc.DBAPIError("UPDATE t", {}, DriverError("server says no", state))
    assert retry.is_transient(error) is transient


@pytest.mark.parametrize(("message", "fix"), [
    ('FATAL:  password authentication failed for user "tsad"', "cannot log in"),
    ('FATAL:  database "tsad" does not exist', "the database does not exist"),
    ('relation "detection_run" does not exist', "the schema is missing"),
])
def test_permanent_server_errors_name_the_step_and_the_fix(message: str, fix: str) -> None:
    error = sa_exc.OperationalError("SELECT * FROM t WHERE pw = %(pw)s", {"pw": "hunter2"},
                                    Exception(message))
    flaky = Flaky([error])
    with pytest.raises(ConfigError) as raised:
        retry.call(flaky, "writing records", policy=NO_JITTER, sleep=no_wait)
    assert flaky.calls == 1
    text = str(raised.value)
    assert text.startswith(f"writing records: {fix}") and message.splitlines()[0] in text
    assert "hunter2" not in text and "SELECT" not in text  # no statement, no parameters
    assert raised.value.__cause__ is error


@pytest.mark.parametrize("error", [
    ValueError("a bug"), KeyError("x"), FileNotFoundError(errno.ENOENT, "missing"),
    DataError("the day is empty"), OSError(errno.ENOSPC, "disk full"),
], ids=lambda e: type(e).__name__)
def test_other_errors_pass_through_untouched_at_once(error: Exception) -> None:
    flaky = Flaky([error])
    with pytest.raises(type(error)) as raised:
        retry.call(flaky, "step", policy=NO_JITTER, sleep=no_wait)
    assert raised.value is error and flaky.calls == 1


def test_the_policy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("TSAD_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("TSAD_RETRY_MAX_DELAY", "")  # blank: the default
    assert RetryPolicy.from_env() == RetryPolicy(attempts=3, base_delay=0.01, max_delay=60.0)
    always = Flaky([sa_error("database is locked") for _ in range(5)])
    started = time.monotonic()
    with pytest.raises(TransientError, match="after 3 attempts"):
        retry.call(always, "step")  # the real sleep: 0.01 + 0.02 s, give or take the jitter
    assert always.calls == 3 and time.monotonic() - started >= 0.02
    monkeypatch.setenv("TSAD_RETRY_ATTEMPTS", "0")
    assert RetryPolicy.from_env().attempts == 1


@pytest.mark.parametrize(("value", "message"), [
    ("soon", r"environment variable TSAD_RETRY_BASE_DELAY='soon' is not a number"),
    ("-1", r"environment variable TSAD_RETRY_BASE_DELAY='-1' must be >= 0"),
])
def test_a_bad_policy_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str,
                                                 message: str) -> None:
    monkeypatch.setenv("TSAD_RETRY_BASE_DELAY", value)
    with pytest.raises(ConfigError, match=message):
        RetryPolicy.from_env()


def test_sqlstate_reads_psycopg2_and_psycopg3_spellings() -> None:
    class Psycopg3Error(Exception):
        sqlstate = "57P03"

    assert retry.sqlstate(sa_exc.DBAPIError("x", {}, DriverError("m", "40P01"))) == "40P01"
    assert retry.sqlstate(sa_exc.DBAPIError("x", {}, Psycopg3Error("m"))) == "57P03"
    assert retry.sqlstate(sa_error("database is locked")) is None

