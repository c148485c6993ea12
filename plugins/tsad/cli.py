"""The ``tsad`` console script: the nightly steps outside Airflow, for people and tests.

Parsing is strict: a bad date, a reversed range or an unknown group exits 2 with one line
naming it, before anything runs. The steps themselves are the ones the DAG's tasks call.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import typing
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NoReturn, Sequence

from tsad.config import TsadConfig, load_config
from tsad.errors import TsadError

DESCRIPTION = """\
tsad finds unusual behaviour in a plant's sensor data, one data day at a time.

These commands run the same steps as the nightly Airflow job, from a shell: fill a test
historian with simulated data, score a day or a range of days, list the anomaly events found,
measure detection quality on labelled files, and keep the records database up to date.
"""

EPILOG = """\
examples:
  tsad simulate --start 2026-11-01 --days 14 --anomaly-day 2026-11-12
  tsad run --day 2026-11-08 --to 2026-11-14 --group pumps
  tsad events --from 2026-11-01 --group pumps --json
  tsad evaluate /data/skab --train-file /data/skab/anomaly-free/anomaly-free.csv
  tsad db upgrade
  tsad init && tsad config check                  # set up an installed tsad

Days are data days in the site's time zone (site_timezone in the config), written
YYYY-MM-DD. The config file is --config FILE, else $TSAD_CONFIG, else tsad.yaml.
Exit status: 0 done; 2 a problem with the input or the config (one line on stderr names
it); 1 anything else. `tsad COMMAND --help` shows a command's options.
"""

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block would bury the line that matters."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=30)


def day_arg(text: str) -> date:
    """An argparse type: a data day, ``YYYY-MM-DD``, with the reason when it is not one."""
    value = text.strip()
    try:
        if not _DAY.fullmatch(value):
            raise ValueError("not in YYYY-MM-DD form")
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day ({exc}); write YYYY-MM-DD, e.g. 2026-11-08") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        _check_range(args)
        if getattr(args, "without_config", False):  # init, config check: they load it themselves
            return int(args.handler(args) or 0)
        config = load_config(args.config)
        return int(args.handler(config, args) or 0)
    except (TsadError, ValueError) as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return 2


def _check_range(args: argparse.Namespace) -> None:
    """A range whose end comes before its start is a typo, never "no events": say so."""
    first, last = getattr(args, "range_options", (None, None))
    if not first:
        return
    start, end = getattr(args, first.lstrip("-")), getattr(args, last.lstrip("-"))
    if start and end and end < start:
        raise ValueError(f"{last} {end} is before {first} {start}: the range is "
                         f"{first} FIRST {last} LAST, both days included")


def _command(sub: Any, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=summary, description=f"{summary}.\n\n{description}",
                            formatter_class=_formatter)
    parser.set_defaults(prog=parser.prog)
    return parser


def _parser() -> argparse.ArgumentParser:
    from tsad.config.detector_config import ModelConfig

    parser = _Parser(prog="tsad", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=_formatter)
    parser.set_defaults(prog="tsad")
    parser.add_argument("--config", metavar="FILE",
                        help="the plant's config file (default: $TSAD_CONFIG, else tsad.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log each step (extract, train, score, write, alert) as it runs")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", title="commands")

    sim = _command(sub, "simulate", "fill the configured SQL sources with simulated plant data",
                   "For trying tsad without a real historian: writes normal readings for every "
                   "configured group\nand injects labelled anomalies (spikes, level shifts, stuck "
                   "sensors, ...) on the days you name.")
    sim.add_argument("--start", type=day_arg, required=True, metavar="DAY",
                     help="first simulated day, YYYY-MM-DD")
    sim.add_argument("--days", type=positive_int, default=14,
                     help="number of days to simulate (default 14)")
    sim.add_argument("--anomaly-day", type=day_arg, action="append", default=[], metavar="DAY",
                     help="inject labelled anomalies on this day, YYYY-MM-DD (repeatable)")
    sim.add_argument("--seed", type=int, default=0,
                     help="random seed: the same seed gives the same data (default 0)")
    sim.set_defaults(handler=_simulate)

    run = _command(sub, "run", "score day(s): extract, train or load the model, detect, alert",
                   "What the nightly DAG does, without Airflow. Re-running a day replaces its "
                   "records; a model\nis trained only on the days before the day it scores.")
    run.add_argument("--day", type=day_arg, required=True, metavar="DAY",
                     help="the data day to score, YYYY-MM-DD (the first day with --to)")
    run.add_argument("--to", type=day_arg, metavar="DAY",
                     help="score every day from --day to this one, both included")
    run.add_argument("--group", action="append", metavar="NAME",
                     help="only this sensor group (repeatable; default: every configured group)")
    run.add_argument("--force-retrain", action="store_true",
                     help="train a new model version even if the current one is still fresh")
    run.set_defaults(handler=_run, range_options=("--day", "--to"))

    events = _command(sub, "events", "list the anomaly events in the records database",
                      "One line per event: data day, group, start and end (UTC), severity and "
                      "the channels that\ncontributed most.")
    events.add_argument("--from", dest="from", type=day_arg, metavar="DAY",
                        help="first data day, YYYY-MM-DD (default: the oldest on record)")
    events.add_argument("--to", type=day_arg, metavar="DAY",
                        help="last data day, YYYY-MM-DD, included (default: the newest)")
    events.add_argument("--group", metavar="NAME", help="only this sensor group")
    events.add_argument("--json", action="store_true",
                        help="print JSON (every column) instead of a table")
    events.set_defaults(handler=_events, range_options=("--from", "--to"))

    ev = _command(sub, "evaluate", "measure detection quality on labelled CSV files",
                  "Runs the detector over ';'-separated CSV files with an 'anomaly' column (the "
                  "SKAB format)\nand prints F1, false and missed alarm rates and AUC-PR, beside "
                  "simple baselines.")
    ev.add_argument("directory", help="folder searched (any depth) for the labelled CSV files")
    ev.add_argument("--train-file", metavar="FILE",
                    help="train once on this normal file (e.g. anomaly-free.csv) instead of on "
                         "each file's first --train-rows rows")
    ev.add_argument("--train-rows", default="400", metavar="N|FRACTION",
                    help="fit on each file's first N rows, or on that share of them when "
                         "0 < FRACTION < 1 (default 400, as the benchmark does)")
    ev.add_argument("--group", metavar="NAME",
                    help="use this configured group's detector settings (default: tsad's own)")
    ev.add_argument("--kind", action="append", default=[],
                    choices=typing.get_args(typing.get_type_hints(ModelConfig)["kind"]),
                    help="also evaluate this network kind (repeatable)")
    ev.add_argument("--format", choices=["table", "json", "markdown"], default="table",
                    help="output format (default: table)")
    ev.set_defaults(handler=_evaluate)

    db = _command(sub, "db", "manage tsad's records database",
                  "The records database holds model versions, runs, events and points.")
    db_sub = db.add_subparsers(required=True, metavar="ACTION", title="actions")
    upgrade = _command(db_sub, "upgrade", "bring the records database to the newest schema",
                       "Applies the pending migrations (Alembic). Safe to run again, and from "
                       "several places at once;\nthe nightly DAG runs it as its first task.")
    upgrade.add_argument("--revision", default="head",
                         help="target schema revision (default: head, the newest)")
    upgrade.set_defaults(handler=_db_upgrade)

    init = _command(sub, "init", "set up tsad next to Airflow: a config file and the DAG file",
                    "Writes the config (the demo plant, to edit for your sources) to --config, "
                    "else $TSAD_CONFIG,\nelse $AIRFLOW_HOME/tsad/tsad.yaml, and tsad_nightly.py "
                    "(a few lines calling tsad's DAG factory)\nto the DAGs folder. Existing "
                    "files are kept unless --force.")
    init.add_argument("--dags-folder", type=Path, metavar="DIR",
                      help="where the DAG file goes (default: $AIRFLOW__CORE__DAGS_FOLDER, else "
                           "$AIRFLOW_HOME/dags)")
    init.add_argument("--force", action="store_true",
                      help="overwrite existing files (an edited config is lost)")
    init.set_defaults(handler=_init, without_config=True)

    cfg = _command(sub, "config", "validate the config and try what it connects to",
                   "Nothing is written.")
    cfg_sub = cfg.add_subparsers(required=True, metavar="ACTION", title="actions")
    chk = _command(cfg_sub, "check", "validate the config and try each of its connections",
                   "Loads the config (every key checked), then connects to the records "
                   "database, each group's\nsource (its table must exist) and the mail "
                   "servers of the alert routes. One line per item;\nexit status 2 when any "
                   "failed.")
    chk.set_defaults(handler=_config_check, without_config=True)
    return parser


def _init(args: argparse.Namespace) -> int:
    import os

    from tsad.config import config_path
    from tsad.install import scaffold

    chosen = args.config or os.environ.get("TSAD_CONFIG")
    done = scaffold(Path(chosen) if chosen else None, args.dags_folder, force=args.force)
    for path, what in done:
        print(f"{what:<8} {path}" + ("  (exists; --force overwrites it)" if what == "kept" else ""))
    config = done[0][0].resolve()
    export = "" if config == config_path().resolve() else \
        f"  export TSAD_CONFIG={config}   # on every Airflow component\n"
    print(f"\nnext:\n{export}  tsad config check\n"
          "  airflow pools set gpu 1 \"tsad training\"   # the pool training waits for")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from tsad.config import config_path
    from tsad.install import check

    checks, _ = check(args.config)
    print(f"config file: {Path(args.config) if args.config else config_path()}")
    for item in checks:
        print(item.line())
    failed = [c for c in checks if c.problem is not None]
    if failed:
        print(f"{args.prog}: {len(failed)} of {len(checks)} checks failed", file=sys.stderr)
        return 2
    return 0


def _check_groups(config: TsadConfig, names: Sequence[str]) -> None:
    for name in names:
        config.group(name)  # a ConfigError naming the group and the configured ones


def _db_upgrade(config: TsadConfig, args: argparse.Namespace) -> int:
    from tsad import retry
    from tsad.pipeline import database_url
    from tsad.storage.engine import describe
    from tsad.storage.migrate import VERSION_TABLE, current, upgrade

    url = database_url(config)
    before = retry.call(lambda: current(url), f"reading the schema version of {describe(url)}")
    after = retry.call(lambda: upgrade(url, args.revision), f"migrating {describe(url)}")
    change = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    print(f"database {describe(url)}: {change} revision {after} (table {VERSION_TABLE})")
    return 0


def _evaluate(config: TsadConfig, args: argparse.Namespace) -> int:
    from tsad.evaluation.cli import run_evaluate

    if args.group:
        _check_groups(config, [args.group])
    return run_evaluate(config, args)


def _simulate(config: TsadConfig, args: argparse.Namespace) -> int:
    from tsad.evaluation.simulator import simulate

    injected = simulate(config, args.start, args.days, args.anomaly_day, seed=args.seed)
    last = args.start + timedelta(days=args.days - 1)
    print(f"simulated {args.days} days ({args.start} .. {last}) for "
          f"{', '.join(g.name for g in config.groups)}; {len(injected)} anomalies injected")
    for a in injected:
        print(f"  {a.group:<10} {a.start:%Y-%m-%d %H:%M} .. {a.end:%H:%M}  {a.kind:<18} {a.channels}")
    return 0


def _run(config: TsadConfig, args: argparse.Namespace) -> int:
    from tsad.pipeline import run_day
    from tsad.progress import Bar, training_progress

    day, last = args.day, args.to or args.day
    groups = args.group or [g.name for g in config.groups]
    _check_groups(config, groups)
    with Bar(((last - day).days + 1) * len(groups), "days x groups") as bar, \
            training_progress(bar):
        while day <= last:
            for group in groups:
                bar.note = f"{day} {group}"
                for result in run_day(config, day, [group], force_retrain=args.force_retrain):
                    model = (f"{result['model_version_id']} "
                             f"({'trained' if result.get('trained') else 'loaded'})")
                    status = result.get("status", "ok")
                    drift = f"  {status.upper()}" if status != "ok" else ""
                    bar.write(f"{result['day']}  {result['group']:<10} {result['n_events']:>3} "
                              f"events {result['n_points']:>5} points  model {model}{drift}")
                bar.update(1)
            day += timedelta(days=1)
    return 0


def _events(config: TsadConfig, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from tsad import retry
    from tsad.pipeline import database_url
    from tsad.storage.engine import describe, get_engine
    from tsad.storage.records import events_between
    from tsad.storage.schema import anomaly_event, create_schema

    url = database_url(config)
    engine = get_engine(url)

    def read() -> list[dict[str, Any]]:
        create_schema(engine)
        if args.group and args.group not in {g.name for g in config.groups}:
            with engine.connect() as conn:  # a group no longer configured may have records
                recorded = set(conn.execute(select(anomaly_event.c.sensor_group).distinct())
                               .scalars())
            if args.group not in recorded:
                _check_groups(config, [args.group])
        return events_between(engine, getattr(args, "from") or date.min, args.to or date.max,
                              args.group)

    rows = retry.call(read, f"reading events from {describe(url)}")
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
    else:
        print(format_events(rows))
    return 0


def format_events(rows: list[dict[str, Any]]) -> str:
    """A plain text table of events, one line each."""
    if not rows:
        return "no anomaly events recorded"
    lines = [f"{'day':<10}  {'group':<10} {'start (UTC)':<16}  {'end':<5}  {'severity':>8}  top channels"]
    for r in rows:
        channels = ", ".join(f"{c['channel']} {c['contribution']:.0%}" for c in r["top_channels_json"])
        lines.append(f"{r['partition_date']!s:<10}  {r['sensor_group']:<10} "
                     f"{r['start_ts']:%Y-%m-%d %H:%M}  {r['end_ts']:%H:%M}  "
                     f"{r['severity']:>8.2f}  {channels}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
