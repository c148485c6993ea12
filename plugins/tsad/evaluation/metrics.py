"""Point-wise detection metrics, exactly as the SKAB benchmark counts them.

Counts are summed over the test rows of all files before the ratios are taken (a long file weighs
more than a short one); the threshold-free figure, average precision (AUC-PR), is computed per
file and then averaged, because a score scale need not be comparable across files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Point counts: true/false positives and negatives."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                         self.tn + other.tn)

    @property
    def f1(self) -> float:
        """TP / (TP + (FP + FN) / 2); NaN when there is nothing to find and nothing flagged."""
        denominator = self.tp + (self.fp + self.fn) / 2
        return self.tp / denominator if denominator else math.nan

    @property
    def far(self) -> float:
        """False alarm rate, percent of normal points flagged."""
        normal = self.fp + self.tn
        return 100.0 * self.fp / normal if normal else math.nan

    @property
    def mar(self) -> float:
        """Missed alarm rate, percent of anomalous points not flagged."""
        anomalous = self.fn + self.tp
        return 100.0 * self.fn / anomalous if anomalous else math.nan


def confusion(labels: np.ndarray, flags: np.ndarray) -> Confusion:
    """Counts of boolean ``flags`` against boolean ``labels`` (same length)."""
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    if y.shape != f.shape or y.ndim != 1:
        raise ValueError(f"labels and flags must be 1-D of one length, got {y.shape} and {f.shape}")
    return Confusion(tp=int(np.sum(y & f)), fp=int(np.sum(~y & f)), fn=int(np.sum(y & ~f)),
                     tn=int(np.sum(~y & ~f)))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum (sklearn's ``average_precision``).

    Tied scores are one threshold (so a constant score gets the positive share, not a lucky
    order); NaN scores rank lowest. NaN when ``labels`` has no positive.
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of one length, got {s.shape} and "
                         f"{y.shape}")
    positives = int(y.sum())
    if positives == 0:
        return math.nan
    s = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_step * precision))
