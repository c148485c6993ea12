"""``make demo``: simulate a plant, then run the real nightly DAG through Airflow for four days.

The first day trains (``force_retrain``), the later days load that model; the third day carries
injected anomalies. Everything lives in the repository: ``data/`` (historian, Parquet extracts,
records database), ``models/`` (the registry) and ``.airflow/`` (Airflow's home).
"""

from __future__ import annotations

import argparse
import warnings
import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SIM_START = date(2026, 11, 1)
SIM_DAYS = 11
RUN_DAYS = [date(2026, 11, 8), date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)]
ANOMALY_DAY = date(2026, 11, 10)


def airflow_environment(repo: Path, airflow_home: Path) -> dict[str, str]:
    """The variables that point Airflow at this repository's DAGs and plugins."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(repo / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(repo / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "TSAD_TASK_RETRIES": "0",  # dag.test() would sit out each retry delay
        "TSAD_CONFIG": os.environ.get("TSAD_CONFIG", str(repo / "tsad.yaml")),
    }


def prepare_airflow(env: dict[str, str]) -> None:
    """Migrate Airflow's metadata database and create the training pool (both idempotent)."""
    os.environ.update(env)
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run([str(airflow), "db", "migrate"], check=True, env=os.environ,
                   stdout=subprocess.DEVNULL)
    subprocess.run([str(airflow), "pools", "set", "gpu", "1", "training on the GPU worker"],
                   check=True, env=os.environ, stdout=subprocess.DEVNULL)


def run_dag_for_day(day: date, conf: dict | None = None) -> str:
    """``dag.test()`` of the real DAG for the run that covers ``day``; returns the run's state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags["tsad_nightly"]
    logical = datetime.combine(day + timedelta(days=1), time(1, 30), tzinfo=timezone.utc)
    started = datetime.now(timezone.utc)
    dag_run = dag.test(logical_date=logical, run_conf=conf or {})
    _stamp_real_start(dag_run.id, started)
    return str(dag_run.state)


def _stamp_real_start(run_pk: int, started: datetime) -> None:
    """``dag.test()`` records a run's start as its logical date, so the UI shows a demo run of
    November, run in December, lasting weeks; put the wall-clock start back."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagRun).where(DagRun.id == run_pk).values(start_date=started))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup-only", action="store_true", help="simulate and migrate, run nothing")
    args = parser.parse_args(argv)
    prepare_airflow(airflow_environment(REPO, REPO / ".airflow"))
    import airflow  # noqa: F401  (sets its own warning filters on import; ours go after)

    # Airflow's and its libraries' own deprecation notices (ignore-file syntax, test client)
    # are not the demo's to act on; tsad's warnings still show.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(airflow|fastapi)")
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")

    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate

    config = load_config()
    injected = simulate(config, SIM_START, SIM_DAYS, [ANOMALY_DAY], seed=7)
    print(f"simulated {SIM_DAYS} days from {SIM_START} into the historian; "
          f"{len(injected)} anomalies injected on {ANOMALY_DAY}")
    if args.setup_only:
        return 0
    for n, day in enumerate(RUN_DAYS):
        conf = {"force_retrain": True} if n == 0 else {}
        state = run_dag_for_day(day, conf)
        print(f"  DAG run for data day {day}: {state}")
        if state != "success":
            print("the DAG run failed; see the task logs above", file=sys.stderr)
            return 1
    print_summary(config, injected)
    return 0


def print_summary(config, injected) -> None:
    from tsad.cli import format_events
    from tsad.pipeline import database_url
    from tsad.storage.engine import describe, get_engine
    from tsad.storage.records import events_between, latest_run

    url = database_url(config)
    engine = get_engine(url)
    events = events_between(engine, RUN_DAYS[0], RUN_DAYS[-1])
    print(f"\nrecords: {describe(url)} (tables model_version, detection_run, anomaly_event, anomaly_point)")
    print(f"models:  {config.models_dir}/<group>/vNNNN\n")
    print(f"{'day':<12}" + "".join(f"{g.name:>12}" for g in config.groups) + "   (events per group)")
    for day in RUN_DAYS:
        counts = []
        for g in config.groups:
            run = latest_run(engine, g.name, day)
            counts.append("-" if run is None else str(run["n_events"]) + (
                "" if run["status"] == "ok" else f" {run['status']}"))
        marker = "   <- injected anomalies" if day == ANOMALY_DAY else ""
        print(f"{day!s:<12}" + "".join(f"{c:>12}" for c in counts) + marker)
    missed = [a for a in injected
              if not any(e["sensor_group"] == a.group and e["start_ts"] <= a.end
                         and e["end_ts"] >= a.start for e in events)]
    print(f"\ninjected anomalies overlapped by an event: {len(injected) - len(missed)} of "
          f"{len(injected)}")
    for a in missed:
        print(f"  missed: {a.group:<10} {a.start:%Y-%m-%d %H:%M} .. {a.end:%H:%M} UTC  "
              f"{a.kind:<18} {', '.join(a.channels)}")
    print()
    print(format_events(events))
    print("\nread them with SQL, e.g.:\n  sqlite3 data/tsad.db \"SELECT sensor_group, start_ts, end_ts, "
          "severity, top_channels_json FROM anomaly_event ORDER BY start_ts\"")
    print(where_to_look(REPO / ".airflow"))


def where_to_look(airflow_home: Path, port: int = 8080) -> str:
    """The closing lines of ``make demo``: how to see these runs and events in Airflow's UI."""
    from tsad.airflow_layer.standalone import PASSWORDS, admin_password

    password = admin_password(airflow_home)
    login = (f"user admin, password {password}" if password else
             f"user admin; `make ui` prints the password (kept in {airflow_home / PASSWORDS})")
    return (f"\nsee them in Airflow: `make ui`, then http://localhost:{port} ({login});\n"
            "  the events: Browse -> Anomalies; the runs: Dags -> tsad_nightly")


if __name__ == "__main__":
    sys.exit(main())
