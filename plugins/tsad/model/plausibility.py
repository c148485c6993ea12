"""Readings no process gives: clipped when scored, masked when trained on, always counted.

A reading of 1e16 in a channel that trained between 20 and 40 is a broken source (a unit
mix-up, an uninitialised register), not a bigger anomaly than a reading of 60. Left alone it
breaks the arithmetic of the score rule: its squared error (1e32, or inf in float32 beyond
~1.8e19 standard deviations) swamps the running sums of the smoothing, so the neighbours'
scores cancel to noise or NaN, a real anomaly later in the day disappears and severities become
infinite. So, relative to the channel's *training* range (the model's scaler):

- **scoring** clips a scaled reading beyond ``PLAUSIBLE_Z`` training standard deviations to
  ``±PLAUSIBLE_Z`` (``ChannelScaler.transform``): the windows around it stay far above any
  threshold, but its error is bounded, so everything else in the day scores as before. Each
  clipped reading is counted per channel with the first one's row (``ReadingCounts``); the run
  records the count (``quality_json.implausible_values``) and its message names the channels;
- **training** masks (NaN) readings more than ``TRAINING_SPREADS`` robust spreads from the
  channel's median before the scaler is fitted (``mask_implausible``), so one 1e308 cannot
  make the scaler's mean 1e305 and its scale infinite (a channel blind for the model's
  lifetime). The count goes into the model's metrics; a channel left with no reading at all is
  a ``DataError``, a scaler that is still not finite a ``ModelError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsad.errors import DataError, ModelError

log = logging.getLogger(__name__)

#: Scaled readings beyond this many training standard deviations are clipped to it when scored.
#: Any real anomaly is far below it; the squared error of a clipped reading (at most ~1e6 before
#: the network's gain) keeps the score rule's float32 and float64 sums exact.
PLAUSIBLE_Z = 1e3
#: Training readings further than this many robust spreads from the channel's median are masked.
TRAINING_SPREADS = 1e3
#: The robust spread is never below this share of max(|median|, 1): a channel that is constant
#: most of the time (a valve at 0) keeps its rare real readings.
SPREAD_FLOOR = 1e-2
_STATS_ROWS = 100_000  # rows sampled for the medians (a bound needs no exact quantiles)


@dataclass
class ReadingCounts:
    """Per channel, of the readings scaled so far: how many were missing (NaN), how many were
    implausible (clipped) and the row of the first implausible one (-1: none)."""

    missing: np.ndarray
    implausible: np.ndarray
    first_implausible: np.ndarray

    @classmethod
    def empty(cls, n_channels: int) -> ReadingCounts:
        return cls(np.zeros(n_channels, np.int64), np.zeros(n_channels, np.int64),
                   np.full(n_channels, -1, np.int64))

    def implausible_by_channel(self, channels: list[str],
                               timestamps: pd.DatetimeIndex) -> dict[str, dict[str, Any]]:
        """``{channel: {"count", "first"}}`` (ISO time of the first) for channels with any."""
        return {name: {"count": int(self.implausible[j]),
                       "first": timestamps[int(self.first_implausible[j])].isoformat()}
                for j, name in enumerate(channels) if self.implausible[j]}

    def missing_by_channel(self, channels: list[str]) -> dict[str, int]:
        return {name: int(self.missing[j]) for j, name in enumerate(channels)}


def clip_scaled(scaled: np.ndarray, counts: ReadingCounts | None, first_row: int = 0,
                j: int | None = None) -> None:
    """Clip ``scaled`` (rows from ``first_row``: one channel ``j``'s column, or all channels
    ``[rows, c]``) to ``±PLAUSIBLE_Z`` in place, counting into ``counts`` (None: no counts)
    what it clipped and what is missing. ``±inf`` (a reading that overflowed) is clipped too."""
    if counts is not None:
        axis_missing = np.count_nonzero(np.isnan(scaled), axis=0)
        if j is None:
            counts.missing += axis_missing
        else:
            counts.missing[j] += int(axis_missing)
    # the usual case, nothing beyond the bound, in two NaN-ignoring reductions without copies
    if scaled.size == 0 or (np.fmax.reduce(scaled, axis=None) <= PLAUSIBLE_Z
                            and np.fmin.reduce(scaled, axis=None) >= -PLAUSIBLE_Z):
        return
    if np.isnan(np.fmax.reduce(scaled, axis=None)):  # nothing but missing readings
        return
    with np.errstate(invalid="ignore"):
        over = np.abs(scaled) > PLAUSIBLE_Z  # NaN compares False: missing stays missing
    if counts is not None:
        columns = [j] if j is not None else range(scaled.shape[1])
        for k, column in enumerate(columns):
            hits = over if j is not None else over[:, k]
            n = int(hits.sum())
            if n and counts.first_implausible[column] < 0:
                counts.first_implausible[column] = first_row + int(np.argmax(hits))
            counts.implausible[column] += n
    np.clip(scaled, -PLAUSIBLE_Z, PLAUSIBLE_Z, out=scaled)


def mask_implausible(raw: np.ndarray, timestamps: pd.DatetimeIndex, channels: list[str],
                     group: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``raw [n, c]`` training readings with the implausible ones NaN (module docstring), and
    what was masked, for the model's metrics: ``{"implausible_training_values": n,
    "implausible_training": {channel: {"count", "first", "value"}}}``. A warning names each
    channel, its first masked time and value; a channel with no reading left is a DataError."""
    raw = np.array(raw, dtype=np.float64)
    step = max(1, len(raw) // _STATS_ROWS)
    sample = raw[::step]
    found: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(channels):
        column, values = raw[:, j], sample[:, j]
        values = values[np.isfinite(values)]
        if values.size == 0 and not np.isinf(column).any():
            raise DataError(f"group {group!r}: channel {name!r} has no reading in the training "
                            f"range {_span(timestamps)}; fix its source or remove the channel "
                            "from 'channels'")
        bad = np.isinf(column)
        if values.size:
            median = float(np.median(values))
            low, high = np.percentile(values, [25.0, 75.0])
            spread = max(1.4826 * float(np.median(np.abs(values - median))),
                         float(high - low) / 1.349, SPREAD_FLOOR * max(abs(median), 1.0))
            with np.errstate(invalid="ignore", over="ignore"):
                bad |= np.abs(column - median) > TRAINING_SPREADS * spread
        n = int(bad.sum())
        if not n:
            continue
        first = int(np.argmax(bad))
        found[name] = {"count": n, "first": timestamps[first].isoformat(),
                       "value": float(column[first])}
        column[bad] = np.nan
        log.warning("group %s: %d training reading(s) of channel %r are implausible (the first "
                    "at %s: %g, more than %g robust spreads from the channel's median): masked "
                    "before the scaler is fitted; check the source", group, n, name,
                    found[name]["first"], found[name]["value"], TRAINING_SPREADS)
        if not np.isfinite(column).any():
            raise DataError(f"group {group!r}: every training reading of channel {name!r} in "
                            f"{_span(timestamps)} is implausible or missing (first implausible "
                            f"at {found[name]['first']}); fix its source or remove the channel "
                            "from 'channels'")
    total = sum(f["count"] for f in found.values())
    return raw, {"implausible_training_values": total, "implausible_training": found}


def check_scaler(mean: np.ndarray, scale: np.ndarray, channels: list[str], group: str) -> None:
    """A ModelError naming the channel whose fitted mean or scale is not finite (readings so
    large that their statistics overflow): such a scaler would blind the channel."""
    for j, name in enumerate(channels):
        if not (np.isfinite(mean[j]) and np.isfinite(scale[j]) and scale[j] > 0):
            raise ModelError(f"group {group!r}: the scaler of channel {name!r} is not finite "
                             f"(mean {mean[j]:g}, scale {scale[j]:g}): its training readings "
                             "overflow float64 statistics; check the channel's source and units")


def _span(timestamps: pd.DatetimeIndex) -> str:
    if len(timestamps) == 0:
        return "(no rows)"
    return f"{timestamps[0].isoformat()}..{timestamps[-1].isoformat()}"
