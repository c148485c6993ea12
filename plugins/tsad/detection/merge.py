"""Merging the units of a group's day into one set of scores, before events and records.

One unit (an unsharded group) passes through unchanged: its aggregate, threshold and channel
scores are the records' as they always were. Several shards merge by this rule
(docs/deployment.md, *Scale-out*):

- a timestamp's score is its **severity**, the maximum over shards of shard score / shard
  threshold, so the merged threshold is 1 and a point is flagged when any shard flags it;
- the shard with that maximum *leads* the timestamp: the point's stored score, threshold and
  ``model_version_id`` are the lead shard's;
- channel scores are divided by their own shard's threshold, so channels of different shards
  compare in units of their own threshold when top channels are picked; which readings left
  their training range (``tsad.model.departure``) is carried per channel as it is;
- a shard whose day moved away as a whole (``tsad.detection.drift``) is left out of the merge
  and gives one sustained event of its own (``tsad.detection.sustained``), so one departing
  subsystem neither floods the day with events nor hides the others'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsad.config import GroupConfig
from tsad.errors import DataError
from tsad.detection.unit_scores import UnitScores


@dataclass
class Merged:
    """A group's day of scores over all its channels (group order), ready for events."""

    timestamps: pd.DatetimeIndex
    channels: list[str]
    aggregate: np.ndarray  # [n]: the unit's aggregate, or the severity across shards
    point_scores: np.ndarray  # [n, c]
    threshold: float  # the unit's threshold, or 1.0 across shards
    lead: np.ndarray  # [n] index into ``units`` of the unit that leads each timestamp
    units: list[UnitScores]  # every unit, in shard order
    drifted: list[UnitScores]  # units left out because their day drifted
    departed: np.ndarray | None = None  # [n, c] bool, readings outside their training range

    def source(self, i: int) -> tuple[float, float, str]:
        """``(score, threshold, model_version_id)`` stored for timestamp ``i``: its lead's."""
        unit = self.units[int(self.lead[i])]
        return float(unit.aggregate[i]), float(unit.threshold), unit.model_version_id


def merge(group: GroupConfig, units: list[UnitScores]) -> Merged:
    """The group's merged scores (rule in the module docstring)."""
    if not units:
        raise ValueError(f"group {group.name!r}: no unit scores to merge")
    first = units[0]
    for unit in units[1:]:
        if not unit.timestamps.equals(first.timestamps):
            raise DataError(
                f"scores of {first.label} and {unit.label} cover different timestamps "
                f"({len(first.timestamps)} and {len(unit.timestamps)} rows): the partition "
                "changed between their score tasks; re-run the group's score tasks")
    lead = np.zeros(len(first.timestamps), dtype=np.int64)
    if len(units) == 1:
        drifted = [first] if first.drift else []
        return Merged(first.timestamps, list(first.channels), first.aggregate, first.point_scores,
                      float(first.threshold), lead, units, drifted, first.departed)
    drifted = [u for u in units if u.drift]
    active = [k for k, u in enumerate(units) if not u.drift]
    n, position = len(first.timestamps), {c: j for j, c in enumerate(group.channels)}
    points = np.zeros((n, len(group.channels)), dtype=np.float32)
    known = any(units[k].departed is not None for k in active)
    departed = np.zeros((n, len(group.channels)), dtype=bool) if known else None
    severity = np.full((len(units), n), -np.inf)
    for k in active:
        unit = units[k]
        with np.errstate(invalid="ignore"):
            ratio = unit.aggregate / unit.threshold
            scaled = unit.point_scores / np.float32(unit.threshold)
        severity[k] = np.where(np.isfinite(ratio), ratio, -np.inf)
        columns = [position[c] for c in unit.channels]
        points[:, columns] = np.where(np.isfinite(scaled), scaled, 0)
        if departed is not None and unit.departed is not None:
            departed[:, columns] = unit.departed
    if active:
        lead = np.argmax(severity, axis=0)
    merged = severity[lead, np.arange(n)]
    merged[~np.isfinite(merged)] = np.nan  # no shard covered it (or every shard drifted)
    return Merged(first.timestamps, list(group.channels), merged, points, 1.0, lead, units,
                  drifted, departed)
