"""Does a threshold keep its false-alarm promise on normal data it never saw?

    .venv/bin/python bench/calibration.py [--seeds 6 7 8] [--train-days 7] [--test-days 6]
                                          [--strategy quantile --strategy block ...]
    .venv/bin/python bench/calibration.py --skab ../shared/datasets/skab/data/valve2

With ``--skab DIR``: every strategy with all other settings at their defaults on a SKAB folder
under the benchmark's protocol (first 400 rows of each file train), as ``tsad evaluate`` does.

For each simulator seed and demo sensor group: one model trained on ``--train-days`` normal
days with every setting at its default (a new group's settings: ``DetectorConfig`` with the
group's channels; ``--demo-settings`` uses the demo config's group settings instead, whose
``margin: 1.5`` and ``q: 0.995`` make it far more conservative), then each threshold strategy
calibrated on the same model's held-out rows and applied to ``--test-days`` later normal days
(no anomaly injected). Printed per strategy: the share of
normal rows above the threshold (the quantity ``block``'s ``budget`` promises), the share an
operator would be shown (event rows, ``tsad.detection.events.event_mask``), false events per
day, and the ratio of the measured point rate to the promised one (1% for both defaults).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from tsad.config import (DEFAULT_CONFIG, DetectorConfig, SourceConfig,  # noqa: E402
                         ThresholdConfig, load_config)
from tsad.config.loading import from_dict  # noqa: E402
from tsad.detection.events import event_mask, find_events  # noqa: E402
from tsad.evaluation.simulated import _read_day  # noqa: E402
from tsad.evaluation.simulator import simulate  # noqa: E402
from tsad.model.detector import Detector  # noqa: E402

START = date(2026, 1, 1)
PROMISED = {"quantile": 0.01, "block": 0.01}  # q=0.99 promises 1%; budget=0.01 promises 1%


def normal_days(seed: int, days: int) -> dict[str, list]:
    """Every demo group's ``days`` simulated normal days, as frames."""
    import pandas as pd

    base = load_config(DEFAULT_CONFIG)
    with tempfile.TemporaryDirectory(prefix="tsad-cal-") as tmp:
        groups = [dataclasses.replace(g, source=SourceConfig(
            kind="files", layout="wide", format="parquet",
            path=f"{tmp}/{g.name}/{{date}}.parquet")) for g in base.groups]
        config = dataclasses.replace(base, groups=groups)
        simulate(config, START, days, [], seed=seed)
        wanted = [START + timedelta(days=i) for i in range(days)]
        return {g.name: (g, [_read_day(Path(tmp) / g.name / f"{d}.parquet") for d in wanted])
                for g in groups}


def measure(detector: Detector, frames: list, events_cfg) -> tuple[float, float, float]:
    """(point rate, shown rate, false events per day) of ``detector`` on normal ``frames``."""
    flagged = shown = rows = n_events = 0
    for frame in frames:
        scores = detector.score(frame)
        agg = scores.aggregate
        finite = np.isfinite(agg)
        flagged += int((agg[finite] > detector.threshold).sum())
        shown += int(event_mask(agg, detector.threshold, events_cfg)[finite].sum())
        rows += int(finite.sum())
        n_events += len(find_events(scores.timestamps, agg, scores.point_scores,
                                    detector.channels, detector.threshold, events_cfg))
    return flagged / rows, shown / rows, n_events / len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[6, 7, 8])
    parser.add_argument("--train-days", type=int, default=7)
    parser.add_argument("--test-days", type=int, default=6)
    parser.add_argument("--strategy", action="append", default=None)
    parser.add_argument("--skab", default=None, help="a SKAB folder: compare on it instead")
    parser.add_argument("--demo-settings", action="store_true",
                        help="the demo config's group settings instead of the defaults")
    args = parser.parse_args()
    strategies = args.strategy or ["quantile", "block"]
    if args.skab:
        return skab(args.skab, strategies)
    print(f"{'seed':>4} {'group':<8} {'strategy':<9} {'threshold':>9} {'points':>7} "
          f"{'shown':>7} {'events/d':>8} {'x promise':>9}")
    totals: dict[str, list[float]] = {s: [] for s in strategies}
    for seed in args.seeds:
        for name, (group, frames) in normal_days(seed, args.train_days + args.test_days).items():
            import pandas as pd

            train = pd.concat(frames[: args.train_days])
            config = (group.detector_config() if args.demo_settings
                      else DetectorConfig(name=name, channels=list(group.channels)))
            detector = Detector.fit(config, train, checkpoint=False)
            raw = train[config.channels].to_numpy(dtype=np.float64)
            series = detector.scaler_.transform(raw)
            split = int(len(series) * (1 - config.model.validation_fraction))
            for strategy in strategies:
                cfg = from_dict(ThresholdConfig, {**_rule_keys(config.threshold),
                                                  "strategy": strategy}, "threshold")
                detector.config = dataclasses.replace(config, threshold=cfg)
                detector.calibrate(series, split, train.index)
                point, shown, per_day = measure(detector, frames[args.train_days:], group.events)
                ratio = point / PROMISED.get(strategy, 0.01)
                totals[strategy].append(ratio)
                print(f"{seed:>4} {name:<8} {strategy:<9} {detector.threshold:>9.3f} "
                      f"{point:>7.2%} {shown:>7.2%} {per_day:>8.2f} {ratio:>9.2f}")
    for strategy, ratios in totals.items():
        print(f"{strategy}: measured / promised point rate, median {np.median(ratios):.2f}, "
              f"worst {max(ratios):.2f}")
    return 0


def skab(folder: str, strategies: list[str]) -> int:
    """Each strategy, every other setting at its default, under SKAB's protocol."""
    from tsad.evaluation import (DetectorMethod, Protocol, default_settings, evaluate_methods,
                                 format_table, load_labelled_dir)

    base = default_settings()
    methods = [DetectorMethod(dataclasses.replace(base, threshold=from_dict(
        ThresholdConfig, {**_rule_keys(base.threshold), "strategy": s}, "threshold")),
        f"tsad {s}") for s in strategies]
    print(format_table(evaluate_methods(load_labelled_dir(folder), methods, Protocol())))
    return 0


def _rule_keys(cfg: ThresholdConfig) -> dict:
    keep = ("margin", "normalise", "effective_samples", "short_range_windows",
            "short_range_seconds", "smoothing_rows", "smoothing_seconds", "smoothing_power",
            "aggregate", "scope")
    return {k: getattr(cfg, k) for k in keep}


if __name__ == "__main__":
    raise SystemExit(main())
