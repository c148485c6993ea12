"""Whether a scored day moved away from its model's training data as a whole.

More than ``limit`` (``events.drift_share``) of the scored points above the threshold is not
one endless event but data that moved away from the training distribution as a whole: a new
operating point, a recalibrated sensor, the season, or a failing machine. tsad cannot tell
them apart, so such a day is recorded and alerted as a *sustained* event every day it lasts
(``tsad.detection.sustained``), and no model is trained on it until a person confirms it as a
new operating point (``tsad.pipeline.history``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DriftCheck:
    """The share of a day's scored points above the threshold, and what it means."""

    flagged_share: float
    drift: bool  # a sustained departure
    message: str


def check_drift(aggregate: np.ndarray, threshold: float, limit: float) -> DriftCheck:
    """A sustained departure when more than ``limit`` of the finite scores lie above
    ``threshold``."""
    finite = np.isfinite(aggregate)
    share = float((aggregate[finite] > threshold).mean()) if finite.any() else 0.0
    message = (f"sustained departure: {share:.0%} of the day is above the threshold (limit "
               f"{limit:.0%}); recorded and alerted as a sustained event. tsad does not retrain "
               "on this level until a person marks it 'new operating point'"
               ) if share > limit else ""
    return DriftCheck(share, share > limit, message)
