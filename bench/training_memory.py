"""Peak memory of training one model (``Detector.fit``) against the size of its training range.

    .venv/bin/python bench/training_memory.py [--days 2 7] [--channels 50] [--epochs 1] [--read]

For each range (days x channels at 1 Hz, a smooth daily cycle plus noise), two child processes
measure the peak RSS above what the process held with the range in memory (sampled every 3 ms):
``Detector.fit`` (tsad), and, as the reference in the same run, numpy's whole-array statistics
of the same range that tsad computed before it worked a block at a time (``np.nanmean`` /
``np.nanstd`` of the float64 range, ``np.diff`` and ``np.nanvar`` of its steps, ``np.cov`` of
its complete rows: what ``tsad.model.moments`` replaced). Both are printed as multiples of the
range's wide float32 size, the unit issue 14 states memory goals in. Training runs ``--epochs``
epochs: memory, not the model, is measured.

``--read`` measures reading the range back from its day partitions instead (the step before
``Detector.fit`` in the nightly): ``tsad.ingest.partitions.read_days`` against, as the same-run
reference, reading each day's frame and ``pd.concat`` (what ``read_days`` did before
2026-12-07). The peak includes the frame that is returned.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _range(days: int, channels: int):  # noqa: ANN202 - pandas imported here, in the child
    import numpy as np
    import pandas as pd

    n, rng = days * 86_400, np.random.default_rng(0)
    cycle = np.sin(2 * np.pi * np.arange(n) / 86_400.0)
    frame = pd.DataFrame({f"c{j}": cycle * rng.uniform(0.5, 2.0) + rng.normal(0, 0.1, n)
                          for j in range(channels)},
                         index=pd.date_range("2027-01-04", periods=n, freq="1s", tz="UTC",
                                             name="timestamp"))
    return frame


def _numpy_statistics(frame) -> None:  # noqa: ANN001
    import numpy as np

    x = frame.to_numpy(dtype=np.float64)
    np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    steps = np.diff(x, axis=0)
    np.nanvar(steps[np.isfinite(steps).all(axis=1)], axis=0), np.nanvar(x, axis=0)
    complete = x[np.isfinite(x).all(axis=1)]
    np.cov(complete - complete.mean(axis=0), rowvar=False)


def child(what: str, days: int, channels: int, epochs: int) -> dict[str, float]:
    """Peak RSS above the baseline while ``what`` runs on a range held in memory."""
    from tsad.config import DetectorConfig
    from tsad.model.detector import Detector

    frame = _range(days, channels)
    if what in ("read", "concat"):
        import tempfile

        folder = tempfile.mkdtemp(prefix="tsad-read-memory-")
        day_list = _write_days(frame, folder)
        del frame
    gc.collect()
    baseline = _rss_mb()
    peak = [baseline]

    def sample() -> None:
        while True:
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.003)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    if what == "tsad":
        config = DetectorConfig(name="memory", channels=list(frame.columns), sampling_seconds=1)
        config = dataclasses.replace(config, model=dataclasses.replace(config.model,
                                                                       epochs=epochs))
        Detector.fit(config, frame, checkpoint=False)
    elif what == "read":
        from tsad.ingest.partitions import read_days

        read_days(folder, "g", day_list, [f"c{j}" for j in range(channels)])
    elif what == "concat":
        import pandas as pd

        from tsad.ingest.partitions import read_partition

        names = [f"c{j}" for j in range(channels)]
        pd.concat([read_partition(folder, "g", d, names) for d in day_list])
    else:
        _numpy_statistics(frame)
    seconds = time.perf_counter() - start
    time.sleep(0.02)
    return {"above_mb": peak[0] - baseline, "seconds": seconds, "baseline_mb": baseline}


def _write_days(frame, folder: str) -> list:  # noqa: ANN001
    """The range as day partitions of group ``g`` under ``folder``; returns the days."""
    from tsad.ingest.partitions import partition_path, write_partition

    days = sorted(set(frame.index.date))
    for day in days:
        write_partition(frame[frame.index.date == day], partition_path(folder, "g", day))
    return days


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[2, 7])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--read", action="store_true",
                        help="measure reading the range from day partitions instead of fitting")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, days, channels, epochs = args.child
        print(json.dumps(child(what, int(days), int(channels), int(epochs))))
        return 0
    print(f"{'range (1 Hz)':<16} {'float32 MB':>10} {'what':<34} {'peak above MB':>13} "
          f"{'x float32':>9} {'s':>6}")
    for days in args.days:
        wide = days * 86_400 * args.channels * 4 / 2**20
        modes = ((("concat", "reference: day frames + pd.concat"),
                  ("read", "tsad read_days")) if args.read else
                 (("numpy", "reference: numpy whole-array stats"),
                  ("tsad", "tsad Detector.fit (all of it)")))
        for what, label in modes:
            out = subprocess.run([sys.executable, __file__, "--child", what, str(days),
                                  str(args.channels), str(args.epochs)], check=True,
                                 capture_output=True, text=True).stdout
            got = json.loads(out.strip().splitlines()[-1])
            print(f"{f'{days} d x {args.channels} ch':<16} {wide:>10.0f} {label:<34} "
                  f"{got['above_mb']:>13.0f} {got['above_mb'] / wide:>9.2f} "
                  f"{got['seconds']:>6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
