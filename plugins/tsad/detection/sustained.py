"""A day that moved away as a whole, as one *sustained* event of that day.

A sustained departure (``tsad.detection.drift``) is not cut into transient episodes, which
would flood the day, nor dropped, which would hide a failing machine: it is one event spanning
the day's first to last flagged point, with the channels that moved most (ranked as a transient
event's, among the channels whose reading departed: ``tsad.detection.events``), the peak severity
and ``since``, the first data day of the departure (carried over from the day before's
sustained event), so the alert can say how long it has lasted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd

from tsad.config import EventConfig
from tsad.detection.events import Event, ranked_top_channels


def sustained_event(timestamps: pd.DatetimeIndex, aggregate: np.ndarray,
                    channel_scores: np.ndarray, channels: Sequence[str], threshold: float,
                    cfg: EventConfig, since: date,
                    departed: np.ndarray | None = None) -> Event | None:
    """The day's sustained event (None when no point is above ``threshold``); ``departed``
    marks the readings outside their training range (None: not known)."""
    agg = np.asarray(aggregate, dtype=float)
    with np.errstate(invalid="ignore"):
        flags = agg > threshold
    flagged = np.flatnonzero(flags)
    if flagged.size == 0:
        return None
    peak = int(np.nanargmax(np.where(flags, agg, -np.inf)))
    times = timestamps.tz_convert("UTC")
    top, top_departed = ranked_top_channels(
        np.asarray(channel_scores, dtype=float)[flags],
        None if departed is None else np.asarray(departed, dtype=bool)[flags],
        channels, cfg.top_channels)
    return Event(start=times[flagged[0]], end=times[flagged[-1]], peak_time=times[peak],
                 peak_score=float(agg[peak]), threshold=float(threshold),
                 severity=float(agg[peak]) / float(threshold), n_points=int(flagged.size),
                 top_channels=top, top_departed=top_departed, kind="sustained", since=since)
