"""A new deployment's first two weeks, scored night by night from the first day of data.

    .venv/bin/python bench/first_week.py [--days 14] [--anomaly-days 9 12] [--seed 11]
        [--review] [--list-false]

The demo config's sensor groups (tsad.yaml) on simulated data that begins on the first day
(no history), ``tsad.pipeline.run_day`` each night in order, as the nightly DAG would: the
first days are ``warming_up``, then provisional models, then full ones. Printed per day and
group: the run status, events, false events (touching no injected anomaly), and on the days
with injected anomalies the point F1 of the rows an operator is shown (every row inside an
event) against the injected rows. Seed 11 and these anomaly days were never used to choose a
default (docs/quality.md, *A new deployment's first weeks*). ``--review`` plays the operator
who gives every event a verdict the next morning, so false alarms feed the next model
(``tsad.model.known_normal``); ``--list-false`` prints each false event.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from tsad.config import DEFAULT_CONFIG, DatabaseConfig, load_config  # noqa: E402
from tsad.evaluation.simulator import simulate  # noqa: E402
from tsad.pipeline import run_day  # noqa: E402
from tsad.storage.engine import get_engine  # noqa: E402
from tsad.storage.records import latest_run, read_events  # noqa: E402

START = date(2027, 1, 4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--anomaly-days", type=int, nargs="*", default=[9, 12],
                        help="day numbers (1 = the first day) with injected anomalies")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--review", action="store_true",
                        help="an operator reviews each morning: every event gets a verdict "
                             "(false_alarm when it touches no injected anomaly, else true_alarm)")
    parser.add_argument("--list-false", action="store_true",
                        help="print each false event (times, points, severity, kind, channels)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="tsad-first-week-") as tmp:
        base = load_config(DEFAULT_CONFIG)
        groups = [dataclasses.replace(g, source=dataclasses.replace(
            g.source, url=f"sqlite:///{tmp}/historian.db", conn_id=None)) for g in base.groups]
        config = dataclasses.replace(base, groups=groups, data_dir=f"{tmp}/data",
                                     models_dir=f"{tmp}/models",
                                     database=DatabaseConfig(url=f"sqlite:///{tmp}/tsad.db"))
        anomaly_days = [START + timedelta(days=d - 1) for d in args.anomaly_days]
        injected = simulate(config, START, args.days, anomaly_days, seed=args.seed)
        engine = get_engine(config.database.url)
        print(f"{'day':<11} {'group':<8} {'status':<11} {'events':>6} {'false':>5} {'F1':>6}")
        totals = {"false_after_warmup": 0, "f1": []}
        for k in range(args.days):
            day = START + timedelta(days=k)
            run_day(config, day)  # raises on any failure: the bench exits non-zero
            for group in config.groups:
                run = latest_run(engine, group.name, day)
                events = read_events(engine, group.name, day)
                truth = [a for a in injected if a.group == group.name]
                false = sum(not any(e["start_ts"] <= a.end and e["end_ts"] >= a.start
                                    for a in truth) for e in events)
                f1 = _point_f1(config, group, day, events, truth) if day in anomaly_days else None
                if run["status"] != "warming_up":
                    totals["false_after_warmup"] += false
                if f1 is not None:
                    totals["f1"].append(f1)
                print(f"{day!s:<11} {group.name:<8} {run['status']:<11} {len(events):>6} "
                      f"{false:>5} {'' if f1 is None else f'{f1:.3f}':>6}")
                if args.list_false:
                    _list_false(events, truth)
                if args.review:
                    _review(engine, events, truth)
        print(f"false events once scoring: {totals['false_after_warmup']}; point F1 on the "
              f"anomalous days: {', '.join(f'{f:.3f}' for f in totals['f1'])}")
    return 0


def _review(engine, events, truth) -> None:
    """What an operator does in the Anomalies page the next morning (``add_verdict``)."""
    from tsad.airflow_layer.ui.queries import add_verdict

    for e in events:
        real = any(e["start_ts"] <= a.end and e["end_ts"] >= a.start for a in truth)
        add_verdict(engine, {**e, "event_id": e["id"]}, "true_alarm" if real else "false_alarm",
                    None, "first_week bench")


def _list_false(events, truth) -> None:
    """One line per false event: what an operator would have been shown."""
    for e in events:
        if any(e["start_ts"] <= a.end and e["end_ts"] >= a.start for a in truth):
            continue
        print(f"    false: {e['start_ts']:%H:%M}-{e['end_ts']:%H:%M} {e['kind']} "
              f"points={e['n_points']} severity={e['severity']:.2f} "
              f"model={e['model_version_id']} top={e['top_channels_json']}")


def _point_f1(config, group, day, events, truth) -> float:
    """F1 of the rows inside events against the injected rows, on the day's grid."""
    from tsad.dates import day_bounds

    start, end = day_bounds(day, config.site_timezone)
    grid = pd.date_range(start, end, freq=f"{group.sampling_seconds}s", inclusive="left")
    shown = np.zeros(len(grid), dtype=bool)
    label = np.zeros(len(grid), dtype=bool)
    for e in events:
        shown |= (grid >= e["start_ts"]) & (grid <= e["end_ts"])
    for a in truth:
        label |= (grid >= a.start) & (grid < a.end)
    tp = int((shown & label).sum())
    precision = tp / max(int(shown.sum()), 1)
    recall = tp / max(int(label.sum()), 1)
    return 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)


if __name__ == "__main__":
    raise SystemExit(main())
