"""A throwaway PostgreSQL server for the tests, and ``db_url`` over SQLite and PostgreSQL.

Loaded from ``conftest.py`` (``pytest_plugins``). The server starts on first use (about 2 s): the
Debian packages are installed first where they are missing and we are root (CI runs ``make test``
on a fresh machine as root), then ``initdb`` runs as the ``postgres`` user (it refuses root) into a
temporary folder, and ``pg_ctl`` starts the server on a free loopback port, with durability off
(``fsync=off``: the data is thrown away). Each test gets a database of its own; the server is
stopped and its folder removed at the end of the session.

``TSAD_TEST_POSTGRES_URL`` (a server URL, e.g. ``postgresql://user:pw@host:5432/postgres``) uses an
existing server instead. Where PostgreSQL can be neither found nor installed (not root), the
PostgreSQL cases are skipped with the reason.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from procs import free_port

_counter = itertools.count(1)
#: An explicit driver, so plain ``sqlalchemy.create_engine`` works on these URLs too.
DRIVER = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"


def _pg_bin() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl`` (Debian's versioned folder first), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def ensure_installed() -> Path:
    """PostgreSQL's bin folder, installing Debian's ``postgresql`` package if missing (root)."""
    found = _pg_bin()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or set "
                    "TSAD_TEST_POSTGRES_URL); PostgreSQL cases skipped")
    print("\ninstalling PostgreSQL (apt-get install postgresql) for the tests...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = _pg_bin()
    if found is None:
        pytest.fail("apt-get installed postgresql but no pg_ctl was found")
    return found




class PgServer:
    """One throwaway server: ``initdb``, ``start``/``stop`` (tests stop it on purpose), URLs."""

    def __init__(self, bin_dir: Path, base: Path) -> None:
        self.bin_dir = bin_dir
        self.base = base
        self.data = base / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(base, pw.pw_uid, pw.pw_gid)
        self._run("initdb", "-D", str(self.data), "--auth=trust", "--username=postgres",
                  "--no-sync", "--encoding=UTF8", "--locale=C")
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.base)
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text()[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed: {result.stderr[-2000:]}\n{tail}")

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.base / "server.log"), "-w",
                  "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        auth = f"postgres:{password}" if password else "postgres"
        return f"postgresql+{DRIVER}://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "tsad") -> str:
        """A new empty database; returns its URL."""
        return _create_database(self.url(), prefix)

    def destroy(self) -> None:
        """Stop at once and delete the folder in the background (a database per test makes
        tens of thousands of files; waiting for them would cost seconds)."""
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        subprocess.Popen(["rm", "-rf", str(self.base)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _create_database(server_url: str, prefix: str) -> str:
    import sqlalchemy as sa

    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)


def new_server() -> PgServer:
    """A server of its own (for tests that stop it); the caller destroys it."""
    bin_dir = ensure_installed()
    # The postgres user must reach the folder: under root, $TMPDIR may be private; /tmp is not.
    parent = "/tmp" if os.geteuid() == 0 and os.path.isdir("/tmp") else None
    return PgServer(bin_dir, Path(tempfile.mkdtemp(prefix="tsad-pg-", dir=parent)))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the session's PostgreSQL server (maintenance database ``postgres``)."""
    external = os.environ.get("TSAD_TEST_POSTGRES_URL")
    if external:
        yield external
        return
    server = new_server()
    try:
        yield server.url()
    finally:
        from tsad.storage.engine import dispose_all

        dispose_all()
        server.destroy()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    yield _create_database(pg_server_url, "tsad")
    from tsad.storage.engine import dispose_all

    dispose_all()


@pytest.fixture
def pg_factory() -> Iterator[object]:
    """Make servers of one's own (``pg_factory()``): for tests that stop and restart them."""
    made: list[PgServer] = []

    def make() -> PgServer:
        made.append(new_server())
        return made[-1]

    yield make
    from tsad.storage.engine import dispose_all

    dispose_all()
    for server in made:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty records database: an SQLite file, then a PostgreSQL database."""
    from tsad.storage.engine import dispose_all

    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tsad.db'}"
    else:
        yield request.getfixturevalue("pg_url")
    dispose_all()
