"""Detection quality: reproduce the figures in docs/quality.md.

    .venv/bin/python bench/quality.py [--skab ../shared/datasets/skab/data] [--sim-seeds 1]
                                      [--kind conv1d --kind dense ...] [--markdown docs/quality.md]

Three tables, each with tsad's default detector first and the baselines computed in the same run:

1. SKAB valve1 + valve2, the benchmark's protocol (per file: fit on the first 400 rows, score
   the rest; threshold fixed before any test row is seen).
2. SKAB, deployment style: train once on ``anomaly-free.csv``, score every labelled row.
3. tsad's plant simulator (``tsad.evaluation.simulated``): 7 normal days per sensor group, then
   6 days with injected anomalies; one detector per group, counts summed over both groups.

Data used to choose the defaults: SKAB valve1+valve2 and simulator seed 0. Simulator seeds 1 and 2
were first run after the defaults were frozen. Takes about 10 minutes on one CPU core
(``TSAD_THREADS=1`` is much faster than two threads on a busy two-core machine).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from tsad.evaluation import Row, evaluate, format_markdown, format_table, merge_rows  # noqa: E402
from tsad.evaluation.simulated import write_simulated  # noqa: E402

DEFAULT_SKAB = REPO.parent / "shared" / "datasets" / "skab" / "data"


def simulated(seed: int, kinds: list[str]) -> list[Row]:
    """Both demo groups of one simulator seed, each trained on its normal days, counts summed."""
    with tempfile.TemporaryDirectory(prefix="tsad-quality-") as tmp:
        groups = write_simulated(tmp, seed=seed)
        return merge_rows(*[evaluate(g.labelled_dir, kinds=kinds, train_file=g.train_file)
                            for g in groups])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skab", type=Path, default=DEFAULT_SKAB, help="SKAB's data folder")
    parser.add_argument("--sim-seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--kind", action="append", default=[],
                        help="also this network kind (SKAB benchmark table only)")
    parser.add_argument("--skip-skab", action="store_true")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = parser.parse_args(argv)
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/quality.py",
                                                 *(argv if argv is not None else sys.argv[1:])])
    tables: list[tuple[str, list[Row]]] = []
    began = time.perf_counter()
    if not args.skip_skab:
        valves = [d for d in (args.skab / "valve1", args.skab / "valve2") if d.is_dir()]
        if len(valves) != 2:
            parser.error(f"{args.skab}: expected SKAB's valve1 and valve2 folders")
        tables.append(("SKAB valve1+valve2, benchmark protocol (fit on each file's first 400 rows)",
                       evaluate(args.skab, kinds=args.kind)))
        free = args.skab / "anomaly-free" / "anomaly-free.csv"
        tables.append(("SKAB valve1+valve2, trained once on anomaly-free.csv",
                       evaluate(args.skab, train_file=free)))
    for seed in args.sim_seeds:
        tables.append((f"simulator seed {seed}: 7 normal days, then 6 days with injected "
                       "anomalies (pumps + boiler)", simulated(seed, [])))
    for title, rows in tables:
        print(format_table(rows, title=title), end="\n\n")
    print(f"command: {command}   ({time.perf_counter() - began:.0f} s)")
    if args.markdown:
        parts = [f"### {title}\n\n{format_markdown(rows)}\n" for title, rows in tables]
        args.markdown.write_text(f"Produced by `{command}`.\n\n" + "\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
