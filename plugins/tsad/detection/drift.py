"""Whether a scored day moved away from its model's training data as a whole.

More than ``limit`` (``events.drift_share``) of the scored points above the threshold is not
one endless event but data that moved away from the training distribution as a whole (a new
operating point, a recalibrated sensor, the season, or a failing machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DriftCheck:
    """The share of a day's scored points above the threshold, and what it means."""

    flagged_share: float
    drift: bool
    message: str


def check_drift(aggregate: np.ndarray, threshold: float, limit: float) -> DriftCheck:
    """Drift when more than ``limit`` of the finite scores lie above ``threshold``."""
    finite = np.isfinite(aggregate)
    share = float((aggregate[finite] > threshold).mean()) if finite.any() else 0.0
    message = (f"drift: retrain. {share:.0%} of the day is above the threshold (limit "
               f"{limit:.0%}): the data has moved away from the training range; the next run "
               "retrains") if share > limit else ""
    return DriftCheck(share, share > limit, message)
