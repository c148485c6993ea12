"""Detection metrics: point-wise exactly as the SKAB benchmark counts them, and per event.

Counts are summed over the test rows of all files before the ratios are taken (a long file weighs
more than a short one); the threshold-free figure, average precision (AUC-PR), is computed per
file and then averaged, because a score scale need not be comparable across files.

Events (what an operator reviews): a flagged event is a maximal run of flagged rows, a labelled
event a maximal run of labelled rows. A labelled event is *found* when any flagged row falls
inside it, else *missed*; a flagged event is *false* when no labelled row falls inside it.
Event F1 = found / (found + (missed + false) / 2), the point formula with events as units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsad.runs import runs


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


@dataclass(frozen=True)
class EventCounts:
    """Labelled events found and missed, flagged events that are false (see the module doc)."""

    labelled: int = 0
    found: int = 0
    flagged: int = 0
    false: int = 0

    def __add__(self, other: EventCounts) -> EventCounts:
        return EventCounts(self.labelled + other.labelled, self.found + other.found,
                           self.flagged + other.flagged, self.false + other.false)

    @property
    def missed(self) -> int:
        return self.labelled - self.found

    @property
    def f1(self) -> float:
        """found / (found + (missed + false) / 2); NaN with nothing labelled and nothing flagged."""
        denominator = self.found + (self.missed + self.false) / 2
        return self.found / denominator if denominator else math.nan


def event_counts(labels: np.ndarray, flags: np.ndarray) -> EventCounts:
    """Events of boolean ``flags`` against the labelled events of ``labels`` (same length)."""
    y, f = _pair(labels, flags)
    label_starts, label_stops = runs(y)
    flag_starts, flag_stops = runs(f)
    flagged_before = np.concatenate(([0], np.cumsum(f)))
    labelled_before = np.concatenate(([0], np.cumsum(y)))
    found = flagged_before[label_stops] - flagged_before[label_starts] > 0
    true = labelled_before[flag_stops] - labelled_before[flag_starts] > 0
    return EventCounts(labelled=int(label_starts.size), found=int(found.sum()),
                       flagged=int(flag_starts.size), false=int((~true).sum()))


def _pair(labels: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    if y.shape != f.shape or y.ndim != 1:
        raise ValueError(f"labels and flags must be 1-D of one length, got {y.shape} and {f.shape}")
    return y, f


def confusion(labels: np.ndarray, flags: np.ndarray) -> Confusion:
    """Counts of boolean ``flags`` against boolean ``labels`` (same length)."""
    y, f = _pair(labels, flags)
    return Confusion(tp=int(np.sum(y & f)), fp=int(np.sum(~y & f)), fn=int(np.sum(y & ~f)),
                     tn=int(np.sum(~y & ~f)))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as a step sum, as scikit-learn's
    ``average_precision_score`` computes it: AP = sum over thresholds of (R_k - R_k-1) * P_k.

    - Ties: one threshold per distinct score (all rows of a tied score are flagged together), so
      the result does not depend on the order of the rows; a constant score gives the share of
      positive rows.
    - NaN scores (e.g. rows without a full window) count as the lowest score: they are tied with
      each other (and with any -inf score) below every finite score.
    - +inf and -inf are ordinary scores (ties among each).
    - No positive label (or no row at all): NaN, which ``Row.auc_pr`` leaves out of the average
      (scikit-learn returns 0 with a warning there, which would drag an average down).
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
    # the last row of each run of equal scores; comparing (not subtracting) keeps inf == inf a tie
    last_of_tie = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    tp = np.cumsum(y)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_step = np.diff(np.r_[0, tp]) / positives
    return float(np.sum(recall_step * precision))
