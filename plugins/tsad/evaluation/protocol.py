"""The evaluation protocols: which rows each detector is fitted on and which it is judged on.

- ``per-file`` (the SKAB benchmark's): every labelled file separately, unshuffled; scaler, model
  and threshold are fitted on its first ``train_rows`` rows and the remaining rows are scored.
- ``train-file`` (deployment style): every detector is fitted once on a normal file (e.g. SKAB's
  ``anomaly-free.csv``) and scores every row of every labelled file.

In both, each file's figures are kept (``Row.files``) and pooled: TP/FP/FN/TN and event counts
summed over the scored rows of all files, AUC-PR computed per file and averaged. No test row and
no label is seen before a threshold is fixed. Whatever fitting or scoring logs, warns or raises
names the file (the training file for a fit on it) and the detector (``context.about``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol as TypingProtocol

import numpy as np
import pandas as pd

from tsad.errors import DataError
from tsad.evaluation.context import about
from tsad.evaluation.datasets import LabelledSeries
from tsad.evaluation.metrics import (Confusion, EventCounts, average_precision, confusion,
                                     event_counts)

log = logging.getLogger(__name__)

BENCHMARK_TRAIN_ROWS = 400


class Fitted(TypingProtocol):
    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per-row scores (higher = more anomalous) and boolean flags."""


class Method(TypingProtocol):
    name: str

    def fit(self, train: pd.DataFrame) -> Fitted:
        """Fit on normal rows only."""


TRAIN_ROWS_HELP = ("a row count (an integer >= 1, e.g. 400) or a share of each file's rows (a "
                   "fraction strictly between 0 and 1, e.g. 0.15)")


def parse_train_rows(text: str) -> int | float:
    """``--train-rows``: ``"400"`` -> 400 rows, ``"0.15"`` -> the first 15 % of each file."""
    value: int | float
    try:
        value = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    try:
        return Protocol(train_rows=value).train_rows
    except ValueError:
        raise ValueError(f"--train-rows {text!r}: expected {TRAIN_ROWS_HELP}") from None


@dataclass(frozen=True)
class Protocol:
    """``train_file`` set: train once on it; otherwise on each file's first ``train_rows`` rows,
    or, when ``train_rows`` is a fraction (0 < x < 1), on that share of each file's rows."""

    train_rows: int | float = BENCHMARK_TRAIN_ROWS
    train_file: LabelledSeries | None = None

    def __post_init__(self) -> None:
        rows = self.train_rows
        if isinstance(rows, bool) or not isinstance(rows, (int, float, np.integer, np.floating)):
            raise ValueError(f"train_rows must be {TRAIN_ROWS_HELP}, got {rows!r}")
        if isinstance(rows, (int, np.integer)):
            if rows < 1:
                raise ValueError(f"train_rows must be {TRAIN_ROWS_HELP}, got {rows!r}")
            object.__setattr__(self, "train_rows", int(rows))
        elif not 0.0 < rows < 1.0:  # NaN fails here too
            raise ValueError(f"train_rows must be {TRAIN_ROWS_HELP}, got {rows!r}")
        else:
            object.__setattr__(self, "train_rows", float(rows))

    def rows_for(self, total: int) -> int:
        """Training rows of a file with ``total`` rows: the count, or the share rounded down."""
        if isinstance(self.train_rows, int):
            return self.train_rows
        return int(math.floor(self.train_rows * total))

    def describe(self) -> str:
        if self.train_file is not None:
            return f"trained on {self.train_file.name}, every row of every labelled file scored"
        if isinstance(self.train_rows, float):
            return (f"per file: fitted on the first {100 * self.train_rows:.4g} % of its rows, "
                    "the remaining rows scored")
        return f"per file: fitted on the first {self.train_rows} rows, the remaining rows scored"


@dataclass(frozen=True)
class FileOutput:
    """What a detector gave one file's scored rows: for breakdowns (``tsad.evaluation.kinds``)."""

    name: str
    scores: np.ndarray
    flags: np.ndarray


@dataclass(frozen=True)
class FileResult:
    """One detector's figures on one file's scored rows."""

    name: str
    train_rows: int
    confusion: Confusion
    events: EventCounts
    auc_pr: float
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.name, "train_rows": self.train_rows,
                **_figures(self.confusion, self.events, self.auc_pr),
                "seconds": round(self.seconds, 2)}


@dataclass
class Row:
    """One detector's result: per file, and pooled over all files (counts summed)."""

    detector: str
    files: list[FileResult] = field(default_factory=list)
    outputs: list[FileOutput] = field(default_factory=list, repr=False)

    @property
    def total(self) -> Confusion:
        return sum((f.confusion for f in self.files), Confusion())

    @property
    def events(self) -> EventCounts:
        return sum((f.events for f in self.files), EventCounts())

    @property
    def auc_prs(self) -> list[float]:
        return [f.auc_pr for f in self.files]

    @property
    def auc_pr(self) -> float:
        finite = [a for a in self.auc_prs if not math.isnan(a)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def seconds(self) -> float:
        return sum(f.seconds for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"detector": self.detector, **_figures(self.total, self.events, self.auc_pr),
                "files": len(self.files), "seconds": round(self.seconds, 2),
                "per_file": [f.to_dict() for f in self.files]}


def _figures(c: Confusion, e: EventCounts, auc_pr: float) -> dict[str, Any]:
    return {"f1": _round(c.f1), "far": _round(c.far), "mar": _round(c.mar),
            "auc_pr": _round(auc_pr), "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
            "events_labelled": e.labelled, "events_found": e.found, "events_missed": e.missed,
            "false_events": e.false, "event_f1": _round(e.f1)}


def _round(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 4)


def _split(series: LabelledSeries,
           protocol: Protocol) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    if protocol.train_file is not None:
        train = protocol.train_file.frame
        missing = [c for c in train.columns if c not in series.frame.columns]
        if missing:
            raise DataError(f"{series.name}: lacks channel(s) {missing} of the training file "
                            f"{protocol.train_file.name}")
        return train, series.frame[list(train.columns)], series.labels
    total = len(series.frame)
    n = protocol.rows_for(total)
    if n < 1:
        raise DataError(f"{series.name}: {total} rows, a share of {protocol.train_rows:g} of them "
                        f"is no row to train on; give a larger --train-rows")
    if total <= n:
        share = "" if isinstance(protocol.train_rows, int) else f" ({protocol.train_rows:g})"
        raise DataError(f"{series.name}: {total} rows, the protocol trains on the first {n}"
                        f"{share}: nothing would be left to score")
    return series.frame.iloc[:n], series.frame.iloc[n:], series.labels[n:]


def evaluate_methods(files: Sequence[LabelledSeries], methods: Sequence[Method],
                     protocol: Protocol = Protocol()) -> list[Row]:
    """Fit and score every method under ``protocol``; one row per method, in the given order."""
    if not files:
        raise DataError("no labelled files to evaluate on")
    rows = [Row(m.name) for m in methods]
    shared: dict[int, Fitted] = {}
    for series in files:
        with about(series.name):
            train, test, labels = _split(series, protocol)
        for i, method in enumerate(methods):
            began = time.perf_counter()
            if protocol.train_file is None or i not in shared:
                trained_on = protocol.train_file.name if protocol.train_file else series.name
                with about(f"{trained_on}, {method.name}"):  # what fitting says is about its rows
                    shared[i] = method.fit(train)
            with about(f"{series.name}, {method.name}"):
                scores, flags = shared[i].score(test)
                scores, flags = np.asarray(scores, dtype=float), np.asarray(flags, dtype=bool)
                rows[i].files.append(FileResult(
                    series.name, len(train), confusion(labels, flags),
                    event_counts(labels, flags), average_precision(scores, labels),
                    time.perf_counter() - began))
            rows[i].outputs.append(FileOutput(series.name, scores, flags))
        log.info("%s: scored %d rows (%d anomalous)", series.name, len(test), int(labels.sum()))
    return rows
