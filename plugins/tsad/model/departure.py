"""Which readings left their normal range: the reading side of an anomaly, apart from the model.

A channel's reconstruction error can grow for two reasons: its reading moved, or its
reconstruction did. With shared codes and the cross-channel blend
(``tsad.model.networks.CrossChannelBlend``) a channel that breaks moves the reconstruction of
channels that did not, so the error alone cannot tell an operator which readings to look at.
The readings can: a reading *departed* when its scaled value lies more than ``MARGIN``
training standard deviations outside the range that channel spanned in the training data (the
rows its scaler was fitted on, implausible readings masked). Events rank their top channels
among the channels that departed (``tsad.detection.events``).

The range is part of a model version (``Detector.state``, ``reading_range``); a model saved
before it existed has none, and then no reading counts as departed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

#: How far outside its training range (in training standard deviations) a scaled reading must
#: lie to count as departed. The training range is already its extremes over days of rows, so
#: a normal reading rarely leaves it; half a standard deviation beyond keeps the rare edge
#: reading of a normal day from counting, while any break worth an event clears it.
MARGIN = 0.5


@dataclass(frozen=True)
class ReadingRange:
    """Per channel, the lowest and highest scaled training reading."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def fit(cls, series: np.ndarray) -> ReadingRange:
        """The range of scaled training ``series [n, c]``, NaN (gaps, masked readings) ignored;
        a channel without a reading gets an empty range (every reading departs)."""
        values = np.asarray(series)  # its own dtype: a float64 copy would double the range
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel
            low, high = (np.nanmin(values, axis=0).astype(np.float64),
                         np.nanmax(values, axis=0).astype(np.float64))
        return cls(low=np.nan_to_num(low, nan=np.inf), high=np.nan_to_num(high, nan=-np.inf))

    def departed(self, scaled: np.ndarray) -> np.ndarray:
        """``[rows, c]`` bool: the scaled readings more than ``MARGIN`` outside the range (a
        missing reading never departs)."""
        values = np.asarray(scaled)
        with np.errstate(invalid="ignore"):
            return (values < self.low - MARGIN) | (values > self.high + MARGIN)

    def to_dict(self) -> dict[str, list[float | None]]:
        """JSON-ready; an empty range's infinite ends are stored as null."""
        def listed(a: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in a]
        return {"low": listed(self.low), "high": listed(self.high)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ReadingRange | None:
        """The stored range (None: a model saved before ranges existed)."""
        if not data:
            return None
        low = [np.inf if v is None else float(v) for v in data["low"]]
        high = [-np.inf if v is None else float(v) for v in data["high"]]
        return cls(low=np.asarray(low, dtype=np.float64), high=np.asarray(high, dtype=np.float64))
