"""Promote a retrained model only if it is no worse than the current one.

A retrain can go wrong in ways its own metrics hide: a fault that slipped into the training
days raises the threshold (fewer alarms, more misses), a short or odd range gives a model that
flags normal rows. So before a candidate becomes current it is compared with the current
version on the candidate's held-out normal rows (the newest training rows, which no network
trained on):

- **false alarms**: the share of those rows each model flags;
- **injected anomalies**: ``N_INJECTED`` level shifts on one channel for two windows each, of
  graded sizes (``SHIFT_SIGMAS`` training standard deviations: the small ones tell a model
  whose threshold rose from one that kept it), placed at random in a copy of those rows; how
  many each model flags at least once.

The candidate is promoted when its false-alarm share is at most the current one's (or within
``FAR_SLACK`` of the threshold's own promise) and it finds at least as many injected anomalies
as the current one, less one. A candidate whose threshold was raised over rows a person marked
false alarms (``tsad.model.known_normal``) is judged at the threshold its training gave, before
that raise (``judged_threshold``): the comparison guards against a training that learned a
fault nobody confirmed, and the raise is a person's decision, not the training's. The
comparison is stored in the candidate's metrics (``promotion``); a rejected version stays in
the registry, is never selected, and the day keeps the current model.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsad.model.detector import Detector
from tsad.model.thresholds import FixedThreshold

N_INJECTED = 8
SHIFT_SIGMAS = (0.5, 1.0, 2.0, 4.0)
FAR_SLACK = 0.02  # a candidate flagging at most 2 % of normal rows is never rejected for it


@dataclass(frozen=True)
class Comparison:
    """How a candidate and the current model did on the candidate's held-out rows."""

    candidate_far: float
    current_far: float
    candidate_found: int
    current_found: int
    injected: int
    promoted: bool
    reason: str
    judged_threshold: float | None = None  # the candidate's before a known-normal raise

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare(candidate: Detector, current: Detector, held_out: pd.DataFrame,
            seed: int = 0) -> Comparison:
    """Both models on ``held_out`` (raw readings, the candidate's channels) and on a copy with
    injected level shifts; the verdict by the rule in the module docstring."""
    injected, segments = _inject(held_out, candidate, seed)
    judged = as_trained(candidate)
    far = [_flagged_share(d, held_out) for d in (judged, current)]
    found = [_found(d, injected, segments) for d in (judged, current)]
    worse_far = far[0] > max(far[1], FAR_SLACK)
    worse_recall = found[0] < found[1] - 1
    if worse_far or worse_recall:
        reason = (f"flags {far[0]:.1%} of held-out normal rows against {far[1]:.1%}"
                  if worse_far else
                  f"finds {found[0]} of {len(segments)} injected anomalies against {found[1]}")
    else:
        reason = (f"flags {far[0]:.1%} of held-out normal rows ({far[1]:.1%} before) and finds "
                  f"{found[0]} of {len(segments)} injected anomalies ({found[1]} before)")
    return Comparison(far[0], far[1], found[0], found[1], len(segments),
                      not (worse_far or worse_recall), reason,
                      None if judged is candidate else judged.threshold)


def as_trained(detector: Detector) -> Detector:
    """``detector`` as its training left it: a shallow copy at the threshold before a
    known-normal raise, or ``detector`` itself when there was none."""
    raised_from = (detector.metrics_.get("known_normal") or {}).get("raised_from")
    if raised_from is None:
        return detector
    judged = copy.copy(detector)
    judged.threshold_ = FixedThreshold(float(raised_from)).fit(np.ones(1))
    return judged


def _flagged_share(detector: Detector, frame: pd.DataFrame) -> float:
    aggregate = detector.score(frame).aggregate
    finite = np.isfinite(aggregate)
    return float((aggregate[finite] > detector.threshold).mean()) if finite.any() else 0.0


def _found(detector: Detector, frame: pd.DataFrame, segments: list[tuple[int, int]]) -> int:
    flags = detector.score(frame).aggregate > detector.threshold
    return sum(bool(flags[a:b].any()) for a, b in segments)


def _inject(frame: pd.DataFrame, detector: Detector,
            seed: int) -> tuple[pd.DataFrame, list[tuple[int, int]]]:
    """A copy of ``frame`` with level shifts on random channels, and their row ranges."""
    length = 2 * detector.config.window.length
    n, channels = len(frame), detector.channels
    slots = n // (2 * length)
    if slots == 0:
        return frame, []
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(slots, size=min(N_INJECTED, slots), replace=False))
    out = frame.copy()
    scale = np.asarray(detector.scaler_.scale, dtype=np.float64)
    segments = []
    for k, slot in enumerate(picked):
        start = int(slot) * 2 * length + length // 2
        column = int(rng.integers(len(channels)))
        sign = 1.0 if rng.random() < 0.5 else -1.0
        position = out.columns.get_loc(channels[column])
        size = SHIFT_SIGMAS[k % len(SHIFT_SIGMAS)]
        out.iloc[start:start + length, position] += sign * size * scale[column]
        segments.append((start, start + length))
    return out, segments
