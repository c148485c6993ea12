"""Rows a person marked normal join the threshold's calibration.

A false-alarm verdict says the rows of that event are normal. ``tsad.pipeline.history`` keeps
them in the next training range (they are not masked like other events) and passes their mask
here: the new model scores them, and its threshold's level is raised, when needed, to their
highest aggregate score, so the threshold keeps its ``margin`` above what a person called
normal. The held-out tail alone cannot do this: a rare normal manoeuvre (a start-up, a jump
between the extreme load levels) seldom falls in it, and its scores are a different population
from the tail's (docs/quality.md, *Rare normal manoeuvres*).

The rows are scored with the windows around them, as a day is scored; a model with per-channel
thresholds (``scope: channel``) is left as it is (its thresholds are per channel, the floor is
on the aggregate).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsad.runs import runs

if TYPE_CHECKING:
    from tsad.model.detector import Detector

log = logging.getLogger(__name__)


def known_normal_peak(detector: Detector, series: np.ndarray, timestamps: pd.DatetimeIndex,
                      periods: list[tuple[int, int]]) -> float | None:
    """The highest aggregate score of the rows of ``periods`` (``[start, stop)`` rows of
    ``series``, scaled, in time order), each scored with a window of context on either side,
    its windows on the range's stride grid; None when none of them could be scored (no
    gap-free window covers them)."""
    length, stride = detector.config.window.length, detector.config.window.stride
    peak = None
    for start, stop in periods:
        # windows start on the stride grid of the whole range, as when its days are scored
        lo, hi = max(0, (start - length) // stride * stride), min(len(series), stop + length)
        scores = detector.postprocess(detector.score_raw(series[lo:hi], timestamps[lo:hi]),
                                      inplace=True)
        inside = scores.aggregate[start - lo: stop - lo]
        inside = inside[np.isfinite(inside)]
        if inside.size:
            top = float(inside.max())
            peak = top if peak is None else max(peak, top)
    return peak


def floor_on_known_normal(detector: Detector, series: np.ndarray, timestamps: pd.DatetimeIndex,
                          mask: np.ndarray | None) -> dict[str, Any] | None:
    """Raise ``detector``'s threshold so the known-normal rows of ``mask`` score below it by
    its margin; returns what was done (``metrics_json.known_normal``), None without such rows."""
    if mask is None or not np.any(mask):
        return None
    periods = list(zip(*(r.tolist() for r in runs(mask))))
    if detector.channel_thresholds_ is not None:
        log.info("group %s: %d known-normal period(s) kept in training; per-channel thresholds "
                 "are not raised for them", detector.name, len(periods))
        return {"periods": len(periods), "rows": int(np.sum(mask)), "peak": None,
                "raised_from": None}
    before = detector.threshold
    peak = known_normal_peak(detector, series, timestamps, periods)
    raised = peak is not None and detector.threshold_.raise_to(
        peak, f"raised so {len(periods)} period(s) marked false alarm score below it by its "
        "margin")
    if raised:
        log.warning("group %s: threshold raised from %.4g to %.4g: %d period(s) a person marked "
                    "false alarm peak at %.4g", detector.name, before, detector.threshold,
                    len(periods), peak)
    return {"periods": len(periods), "rows": int(np.sum(mask)), "peak": peak,
            "raised_from": before if raised else None}
