"""The ``tsad`` console script: the nightly steps outside Airflow, for people and tests.

    tsad simulate --start 2026-11-01 --days 14 --anomaly-day 2026-11-12
    tsad run --day 2026-11-10 [--to 2026-11-13] [--group pumps] [--force-retrain]
    tsad events [--from 2026-11-01] [--to 2026-11-30] [--group pumps]
    tsad evaluate DATA_DIR [--train-rows 400|0.15] [--train-file FILE] [--format json]
    tsad db upgrade [--revision head]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date, timedelta
from typing import Any, Sequence

from tsad.config import TsadConfig, load_config
from tsad.dates import parse_day
from tsad.errors import TsadError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        return int(args.handler(config, args) or 0)
    except (TsadError, ValueError) as exc:
        print(f"tsad: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsad", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: $TSAD_CONFIG, else tsad.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    sim = sub.add_parser("simulate", help="fill the configured SQL sources with simulated plant data")
    sim.add_argument("--start", type=parse_day, required=True, help="first day, YYYY-MM-DD")
    sim.add_argument("--days", type=int, default=14)
    sim.add_argument("--anomaly-day", type=parse_day, action="append", default=[],
                     help="inject labelled anomalies on this day (repeatable)")
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(handler=_simulate)

    run = sub.add_parser("run", help="extract, train or load, detect and alert for day(s)")
    run.add_argument("--day", type=parse_day, required=True, help="data day, YYYY-MM-DD")
    run.add_argument("--to", type=parse_day, help="last day of a range (inclusive)")
    run.add_argument("--group", action="append", help="only this sensor group (repeatable)")
    run.add_argument("--force-retrain", action="store_true")
    run.set_defaults(handler=_run)

    events = sub.add_parser("events", help="show recorded anomaly events")
    events.add_argument("--from", dest="start", type=parse_day)
    events.add_argument("--to", dest="end", type=parse_day)
    events.add_argument("--group")
    events.add_argument("--json", action="store_true", help="print JSON instead of a table")
    events.set_defaults(handler=_events)

    ev = sub.add_parser("evaluate", help="run the detector over labelled CSV files (SKAB format) "
                        "and print F1, FAR, MAR and AUC-PR beside baselines")
    ev.add_argument("directory", help="folder searched (any depth) for ';'-separated CSV files "
                    "with an 'anomaly' column")
    ev.add_argument("--train-file", help="train once on this normal file (e.g. anomaly-free.csv) "
                    "instead of on each file's first --train-rows rows")
    ev.add_argument("--train-rows", default="400", metavar="N|FRACTION",
                    help="fit on each file's first N rows, or on that share of them when "
                         "0 < FRACTION < 1 (default 400: the benchmark protocol)")
    ev.add_argument("--group", help="this configured group's detector settings (default: tsad's)")
    ev.add_argument("--kind", action="append", default=[], help="also evaluate this network kind")
    ev.add_argument("--format", choices=["table", "json", "markdown"], default="table")
    ev.set_defaults(handler=_evaluate)

    db = sub.add_parser("db", help="manage tsad's records database")
    db_sub = db.add_subparsers(required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="migrate the records database (Alembic) to the "
                                "newest schema; safe to run again and from several places at once")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=_db_upgrade)
    return parser


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
    from tsad.pipeline import database_url
    from tsad.storage.engine import get_engine
    from tsad.storage.records import events_between
    from tsad.storage.schema import create_schema

    engine = get_engine(database_url(config))
    create_schema(engine)
    end = args.end or date.max
    start = args.start or date.min
    rows = events_between(engine, start, end, args.group)
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
