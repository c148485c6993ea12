"""Results per anomaly kind (spikes, level shifts, ...), for labelled data that names its kinds.

Overall figures hide which faults a detector misses. Per kind, from the same run's outputs:

- AUC-PR: per file, the normal rows and that kind's rows only (the other anomalies left out),
  then averaged over the files holding that kind, like the overall AUC-PR;
- recall: the share of that kind's rows that were flagged (inside an event for tsad), counted
  over all files. False alarms are not per kind: read FAR in the overall table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsad.evaluation.metrics import average_precision
from tsad.evaluation.protocol import Row


@dataclass
class KindResult:
    """One detector's figures for one kind of anomaly."""

    auc_prs: list[float] = field(default_factory=list)
    rows: int = 0
    flagged: int = 0

    @property
    def auc_pr(self) -> float:
        finite = [a for a in self.auc_prs if not math.isnan(a)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def recall(self) -> float:
        return self.flagged / self.rows if self.rows else math.nan


def read_kinds(path: str | Path) -> dict[str, np.ndarray]:
    """``{file name: kind of each row}`` from a ``kinds.json`` (``tsad.evaluation.simulated``)."""
    data = json.loads(Path(path).read_text())
    return {name: np.asarray(kinds, dtype=object) for name, kinds in data.items()}


def by_kind(row: Row, kinds: Mapping[str, np.ndarray]) -> dict[str, KindResult]:
    """Per kind (sorted by name) figures of ``row``; every scored file must be in ``kinds``."""
    out: dict[str, KindResult] = {}
    for output in row.outputs:
        labels = kinds[output.name]
        if len(labels) != len(output.scores):
            raise ValueError(f"{output.name}: {len(labels)} kinds for {len(output.scores)} rows")
        normal = labels == ""
        for kind in sorted(set(labels[~normal].tolist())):
            result = out.setdefault(kind, KindResult())
            these = labels == kind
            keep = normal | these
            result.auc_prs.append(average_precision(output.scores[keep], these[keep]))
            result.rows += int(these.sum())
            result.flagged += int(output.flags[these].sum())
    return dict(sorted(out.items()))


def add_kinds(total: dict[str, KindResult], more: Mapping[str, KindResult]) -> None:
    """Add ``more`` (e.g. another sensor group's) into ``total``."""
    for kind, result in more.items():
        into = total.setdefault(kind, KindResult())
        into.auc_prs += result.auc_prs
        into.rows += result.rows
        into.flagged += result.flagged


def format_kinds_markdown(detectors: Sequence[str],
                          results: Sequence[Mapping[str, KindResult]]) -> str:
    """A Markdown table: one line per kind, AUC-PR / recall for each detector."""
    names = sorted({k for result in results for k in result})
    lines = ["| kind | " + " | ".join(f"{d} AUC-PR / recall" for d in detectors) + " |",
             "|---|" + "---:|" * len(detectors)]
    for name in names:
        cells = []
        for result in results:
            k = result.get(name, KindResult())
            cells.append(f"{_fmt(k.auc_pr)} / {_fmt(k.recall)}")
        lines.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"
