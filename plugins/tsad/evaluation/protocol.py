"""The evaluation protocols: which rows each detector is fitted on and which it is judged on.

- ``per-file`` (the SKAB benchmark's): every labelled file separately, unshuffled; scaler, model
  and threshold are fitted on its first ``train_rows`` rows and the remaining rows are scored.
- ``train-file`` (deployment style): every detector is fitted once on a normal file (e.g. SKAB's
  ``anomaly-free.csv``) and scores every row of every labelled file.

In both, TP/FP/FN/TN are summed over the scored rows of all files, and AUC-PR is computed per file
and averaged. No test row and no label is seen before a threshold is fixed.
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
from tsad.evaluation.datasets import LabelledSeries
from tsad.evaluation.metrics import Confusion, average_precision, confusion

log = logging.getLogger(__name__)

BENCHMARK_TRAIN_ROWS = 400


class Fitted(TypingProtocol):
    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Per-row scores (higher = more anomalous) and boolean flags."""


class Method(TypingProtocol):
    name: str

    def fit(self, train: pd.DataFrame) -> Fitted:
        """Fit on normal rows only."""


@dataclass(frozen=True)
class Protocol:
    """``train_file`` set: train once on it; otherwise on each file's first ``train_rows`` rows."""

    train_rows: int = BENCHMARK_TRAIN_ROWS
    train_file: LabelledSeries | None = None

    def describe(self) -> str:
        if self.train_file is not None:
            return f"trained on {self.train_file.name}, every row of every labelled file scored"
        return f"per file: fitted on the first {self.train_rows} rows, the remaining rows scored"


@dataclass(frozen=True)
class FileOutput:
    """What a detector gave one file's scored rows: for breakdowns (``tsad.evaluation.kinds``)."""

    name: str
    scores: np.ndarray
    flags: np.ndarray


@dataclass
class Row:
    """One detector's result over all files."""

    detector: str
    total: Confusion = field(default_factory=Confusion)
    auc_prs: list[float] = field(default_factory=list)
    seconds: float = 0.0
    outputs: list[FileOutput] = field(default_factory=list, repr=False)

    @property
    def auc_pr(self) -> float:
        finite = [a for a in self.auc_prs if not math.isnan(a)]
        return float(np.mean(finite)) if finite else math.nan

    def to_dict(self) -> dict[str, Any]:
        c = self.total
        return {"detector": self.detector, "f1": _round(c.f1), "far": _round(c.far),
                "mar": _round(c.mar), "auc_pr": _round(self.auc_pr), "tp": c.tp, "fp": c.fp,
                "fn": c.fn, "tn": c.tn, "files": len(self.auc_prs),
                "seconds": round(self.seconds, 2)}


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
    n = protocol.train_rows
    if len(series.frame) <= n:
        raise DataError(f"{series.name}: {len(series.frame)} rows, the protocol trains on the "
                        f"first {n}: nothing would be left to score")
    return series.frame.iloc[:n], series.frame.iloc[n:], series.labels[n:]


def evaluate_methods(files: Sequence[LabelledSeries], methods: Sequence[Method],
                     protocol: Protocol = Protocol()) -> list[Row]:
    """Fit and score every method under ``protocol``; one row per method, in the given order."""
    if not files:
        raise DataError("no labelled files to evaluate on")
    rows = [Row(m.name) for m in methods]
    shared: dict[int, Fitted] = {}
    for series in files:
        train, test, labels = _split(series, protocol)
        for i, method in enumerate(methods):
            began = time.perf_counter()
            if protocol.train_file is None or i not in shared:
                shared[i] = method.fit(train)
            scores, flags = shared[i].score(test)
            rows[i].seconds += time.perf_counter() - began
            rows[i].total += confusion(labels, flags)
            rows[i].auc_prs.append(average_precision(scores, labels))
            rows[i].outputs.append(FileOutput(series.name, np.asarray(scores, dtype=float),
                                              np.asarray(flags, dtype=bool)))
        log.info("%s: scored %d rows (%d anomalous)", series.name, len(test), int(labels.sum()))
    return rows
