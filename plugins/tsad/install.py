"""``tsad init`` and ``tsad config check``: set up and verify an installed tsad.

``init`` writes the two files a pip-installed tsad needs next to Airflow: the config (the demo
plant, to edit) at ``$AIRFLOW_HOME/tsad/tsad.yaml`` and a DAG file of a few lines in the DAGs
folder that calls the DAG factory. ``check`` loads a config and tries everything it names (the
records database, each group's source, the alert connections) without writing anything, so a
wrong URL, table or connection shows up before the first nightly run, one line per item.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tsad.config import TsadConfig, load_config
from tsad.config.loading import DEFAULT_CONFIG, installed_config_path
from tsad.errors import ConfigError, TsadError

TEMPLATES = Path(__file__).resolve().parent / "templates"

DAG_FILE = '''\
"""tsad's nightly anomaly detection, one run per data day (written by `tsad init`).

The DAG is built by tsad's package (tsad.airflow_layer.nightly); its docs are in the Airflow UI.
Settings: TSAD_CONFIG (the config file), TSAD_OWNER, TSAD_TRAIN_QUEUE / TSAD_TRAIN_POOL, ...
"""

from tsad.airflow_layer.nightly import nightly_dag

dag = nightly_dag()
'''


def dags_folder() -> Path:
    """Airflow's DAGs folder: ``$AIRFLOW__CORE__DAGS_FOLDER``, else ``$AIRFLOW_HOME/dags``."""
    if os.environ.get("AIRFLOW__CORE__DAGS_FOLDER"):
        return Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    return Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "dags"


def scaffold(config_file: Path | None = None, dag_dir: Path | None = None,
             force: bool = False) -> list[tuple[Path, str]]:
    """Write the config and the DAG file; ``(path, "written" | "kept")`` each. An existing file
    is kept unless ``force``: a plant's edited config must never be overwritten by accident."""
    targets = [(config_file or installed_config_path(), DEFAULT_CONFIG.read_text()),
               ((dag_dir or dags_folder()) / "tsad_nightly.py", DAG_FILE)]
    done = []
    for path, text in targets:
        if path.exists() and not force:
            done.append((path, "kept"))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        done.append((path, "written"))
    return done


@dataclass(frozen=True)
class Check:
    """One item of ``tsad config check``: what was tried, and the problem (None: fine)."""

    what: str
    problem: str | None = None
    note: str = ""

    def line(self) -> str:
        status = "ok    " if self.problem is None else "FAILED"
        detail = self.problem if self.problem is not None else self.note
        return f"{status} {self.what}" + (f": {detail}" if detail else "")


def _attempt(what: str, probe: Callable[[], str]) -> Check:
    """Run ``probe`` (returns a note); a tsad error or a refused connection is the problem."""
    from tsad.retry import RetryPolicy, call

    try:
        return Check(what, note=call(probe, what, policy=RetryPolicy(attempts=1)))
    except (TsadError, OSError) as exc:
        return Check(what, problem=str(exc))


def _url(url: str | None, conn_id: str | None, what: str) -> str:
    """A configured URL, or the one behind an Airflow connection (needs Airflow installed)."""
    if url is not None or conn_id is None:
        return url or ""
    try:
        from tsad.airflow_layer.connections import optional_url
    except ImportError:
        raise ConfigError(f"{what} names Airflow connection {conn_id!r}, but Airflow is not "
                          "installed here; run the check on an Airflow host") from None
    try:
        return str(optional_url(None, conn_id))
    except Exception as exc:  # AirflowNotFoundException and friends: say which connection
        raise ConfigError(f"{what}: Airflow connection {conn_id!r}: {exc}") from None


def _sqlite_file(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_records_db(config: TsadConfig) -> Check:
    from tsad.storage.engine import describe, get_engine
    from tsad.storage.migrate import current, head

    def probe() -> str:
        url = _url(config.database.url, config.database.conn_id, "database")
        file = _sqlite_file(url)
        if file is not None and not file.exists():
            return f"{describe(url)} not created yet (the first run or `tsad db upgrade` does)"
        revision, newest = current(get_engine(url)), head()
        state = "current" if revision == newest else \
            f"at {revision or 'no revision'}, newest {newest}: run `tsad db upgrade`"
        return f"{describe(url)}, schema {state}"

    return _attempt("records database", probe)


def check_source(config: TsadConfig, name: str) -> Check:
    from tsad import fs
    from tsad.storage.engine import describe, get_engine

    source = config.group(name).source

    def probe() -> str:
        if source.kind == "files":
            folder = str(source.path).split("{", 1)[0].rsplit("/", 1)[0] or "."
            if not fs.is_remote(folder) and not Path(folder).is_dir():
                raise ConfigError(f"folder {folder} of path {source.path} does not exist")
            return f"files {source.path}"
        import sqlalchemy as sa

        url = _url(source.url, source.conn_id, f"group {name} source")
        file = _sqlite_file(url)
        if file is not None and not file.exists():
            raise ConfigError(f"{file} does not exist (for the demo plant: `tsad simulate`)")
        with get_engine(url).connect() as conn:
            if not sa.inspect(conn).has_table(source.table):
                raise ConfigError(f"no table {source.table!r} in {describe(url)}")
        return f"table {source.table} in {describe(url)}"

    return _attempt(f"group {name} source", probe)


def check_alerts(config: TsadConfig, name: str) -> list[Check]:
    routes = config.group(name).alerts
    checks = []
    if routes.email_conn_id:
        def smtp() -> str:
            from tsad.airflow_layer.connections import smtp_endpoint

            host, port = smtp_endpoint(routes.email_conn_id or "")
            with socket.create_connection((host, port), timeout=5):
                return f"mail server {host}:{port} answers"

        checks.append(_attempt(f"group {name} email ({routes.email_conn_id})", _airflow(smtp)))
    if routes.slack_conn_id:
        def slack() -> str:
            from tsad.airflow_layer.connections import slack_host

            return f"webhook on {slack_host(routes.slack_conn_id or '')} (not posted to)"

        checks.append(_attempt(f"group {name} Slack ({routes.slack_conn_id})", _airflow(slack)))
    return checks


def _airflow(probe: Callable[[], str]) -> Callable[[], str]:
    """``probe``, with a missing Airflow or connection reported as a ConfigError."""
    def wrapped() -> str:
        try:
            return probe()
        except ImportError:
            raise ConfigError("Airflow is not installed here; run the check on an Airflow "
                              "host") from None
        except (TsadError, OSError):
            raise
        except Exception as exc:  # AirflowNotFoundException: the connection does not exist
            raise ConfigError(f"{type(exc).__name__}: {exc}") from None

    return wrapped


def check(config_file: str | Path | None) -> tuple[list[Check], TsadConfig | None]:
    """Every check of a config, in order; the config is None when it does not load."""
    try:
        config = load_config(config_file)
    except TsadError as exc:
        return [Check("config", problem=str(exc))], None
    checks = [Check("config", note=f"{len(config.groups)} groups: "
                                   f"{', '.join(g.name for g in config.groups)}")]
    checks.append(check_records_db(config))
    for group in config.groups:
        checks.append(check_source(config, group.name))
        checks.extend(check_alerts(config, group.name))
    return checks, config
