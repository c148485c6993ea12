"""Honest evaluation of tsad's detector on labelled data (``tsad evaluate``).

    from tsad.evaluation import evaluate, format_table
    rows = evaluate("../shared/datasets/skab/data")            # SKAB's benchmark protocol
    rows = evaluate(folder, train_file=".../anomaly-free.csv")  # train once on a normal file
    print(format_table(rows))

The first row is tsad's default detector (or the given group settings), then any extra network
kinds, then the baselines computed in the same run: flag everything, PCA T²+Q, persistence and
a rolling z-score given tsad's events rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from tsad.config import DetectorConfig, GroupConfig
from tsad.evaluation.baselines import FlagAll, PcaT2Q, Persistence, RollingZScore
from tsad.evaluation.datasets import LabelledSeries, load_labelled_dir, read_series
from tsad.evaluation.methods import DetectorMethod, default_settings
from tsad.evaluation.metrics import (Confusion, EventCounts, average_precision, confusion,
                                    event_counts)
from tsad.evaluation.protocol import (BENCHMARK_TRAIN_ROWS, FileOutput, FileResult, Protocol, Row,
                                     evaluate_methods)
from tsad.evaluation.report import (format_files_markdown, format_files_table, format_markdown,
                                    format_table, to_json)

__all__ = [
    "Confusion", "DetectorMethod", "EventCounts", "FileOutput", "FileResult", "LabelledSeries",
    "Protocol", "Row", "average_precision", "confusion", "default_settings", "evaluate",
    "evaluate_methods", "event_counts", "format_files_markdown", "format_files_table",
    "format_markdown", "format_table",
    "load_labelled_dir", "merge_rows", "read_series", "to_json",
]


def evaluate(directory: str | Path, *, settings: GroupConfig | DetectorConfig | None = None,
             kinds: Sequence[str] = (), train_rows: int | float = BENCHMARK_TRAIN_ROWS,
             train_file: str | Path | None = None, baselines: bool = True) -> list[Row]:
    """Evaluate tsad (``settings`` or the defaults, plus ``kinds``) and the baselines on every
    labelled CSV under ``directory``: per file on its first ``train_rows`` rows (a fraction
    0 < x < 1: that share of each file's rows), or once on the normal ``train_file``."""
    protocol = Protocol(train_rows=train_rows)  # a bad train_rows fails before any file is read
    files = load_labelled_dir(directory)
    normal = read_series(train_file, require_labels=False) if train_file is not None else None
    tsad = DetectorMethod(settings)
    methods: list = [tsad] + [tsad.with_kind(k) for k in kinds if k != tsad.settings.model.kind]
    if baselines:
        methods += [FlagAll(), PcaT2Q(), Persistence(), RollingZScore(tsad.events)]
    return evaluate_methods(files, methods,
                            dataclasses.replace(protocol, train_file=normal))


def merge_rows(*tables: Sequence[Row]) -> list[Row]:
    """Rows of several runs of the same methods (e.g. one per sensor group) added together."""
    merged = [Row(r.detector) for r in tables[0]]
    for table in tables:
        if [r.detector for r in table] != [m.detector for m in merged]:
            raise ValueError("tables to merge must list the same detectors in the same order")
        for m, r in zip(merged, table):
            m.files += r.files
            m.outputs += r.outputs
    return merged
