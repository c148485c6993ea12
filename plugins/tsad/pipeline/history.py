"""The days a model may learn from: recent normal data, never a fault nobody confirmed.

Looking back from the day before the scored one, at most twice ``training.days`` days:

- a day whose newest run was a *sustained* departure is skipped (unless a person marked it a
  false alarm): a failing machine looks just like a new operating point, and only a person
  can tell them apart. When a person confirmed
  it (verdict ``new_operating_point``) or it lasted ``training.adopt_after_days``, the model is
  retrained on the new level: the days from the departure's first day on (``since``);
- the rows of every recorded event, widened by one window on each side, are masked (NaN, so no
  training or calibration window covers them), unless a person marked the event a false alarm:
  those rows are known normal and stay, so the next model learns what fooled the last one, and
  its threshold is raised, when needed, so they score below it (``known_normal``:
  ``tsad.model.known_normal``);
- a day without source data (a new deployment, an outage) is skipped and named.

With fewer days than ``training.days`` the model is *provisional*; with fewer than
``training.min_days`` there is nothing to train on yet: ``WarmingUp``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from tsad import fs
from tsad.config import DetectorConfig
from tsad.errors import DataError, SourceError, WarmingUp
from tsad.ingest.partitions import partition_path, read_days
from tsad.pipeline.context import GroupDay, log, retrying
from tsad.pipeline.extracting import extract
from tsad.storage.past_days import PastDay, past_days

KNOWN_NORMAL = "false_alarm"


@dataclass(frozen=True)
class TrainingHistory:
    """Which days a model trained on, and why the others were left out."""

    days: list[date]
    skipped: dict[str, str] = field(default_factory=dict)  # ISO day -> reason
    masked_rows: int = 0
    known_normal_events: int = 0
    provisional: bool = False
    since: date | None = None  # retrained on a confirmed new level that began on this day
    #: bool per training row: inside an event a person marked a false alarm (not stored)
    known_normal: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: when the records (events, verdicts) were read: a verdict given later was not seen
    read_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"days": [d.isoformat() for d in self.days], "skipped": self.skipped,
                "masked_rows": self.masked_rows, "known_normal_events": self.known_normal_events,
                "provisional": self.provisional,
                "since": None if self.since is None else self.since.isoformat(),
                "read_at": None if self.read_at is None else self.read_at.isoformat()}


def training_frame(ctx: GroupDay, config: DetectorConfig,
                   since: date | None = None) -> tuple[pd.DataFrame, TrainingHistory]:
    """The training rows for ``ctx.day`` (module docstring) and what was left out; ``since``:
    retrain on a confirmed new level that began that day (its sustained days are wanted)."""
    training = ctx.group.training
    wanted, needed = training.days, min(training.min_days, training.days)
    first = since or ctx.day - timedelta(days=2 * wanted)
    engine = ctx.records()
    read_at = datetime.now(timezone.utc)
    records = retrying(lambda: past_days(engine, ctx.name, first, ctx.day - timedelta(days=1)),
                       f"reading the past days of {ctx.label()}")
    days, skipped = [], {}
    for day in sorted(records, reverse=True):
        if len(days) == wanted:
            break
        reason = _unusable(ctx, records[day], adopting=since is not None)
        if reason:
            skipped[day.isoformat()] = reason
        else:
            days.append(day)
    days.sort()
    if len(days) < needed:
        raise WarmingUp(
            f"group {ctx.label()}: {len(days)} usable day(s) of history before "
            f"{ctx.day.isoformat()}, training needs {needed} (training.min_days); "
            + (f"left out: {_listed(skipped)}" if skipped else "no earlier data"))
    frame = read_days(ctx.config.data_dir, ctx.name, days, config.channels)
    margin = pd.Timedelta(seconds=config.window.length * config.sampling_seconds)
    masked, known_normal = _mask_events(frame, [records[d] for d in days], margin)
    normal = len(_known_normal_events([records[d] for d in days]))
    history = TrainingHistory(days, skipped, masked, normal, len(days) < wanted, since,
                              known_normal if known_normal.any() else None, read_at)
    if skipped or masked:
        log.info("group %s: training on %d day(s) %s..%s; left out %s; %d row(s) of recorded "
                 "events masked", ctx.label(), len(days), days[0], days[-1],
                 _listed(skipped) or "none", masked)
    return frame, history


def _unusable(ctx: GroupDay, past: PastDay, adopting: bool) -> str | None:
    """Why a day may not be learned from (None: it may)."""
    known_normal = past.sustained and all(e.get("verdict") == KNOWN_NORMAL
                                          for e in past.sustained)
    if past.status == "sustained" and not (adopting or known_normal):
        return "a sustained departure nobody confirmed as a new operating point"
    if not fs.is_file(partition_path(ctx.config.data_dir, ctx.name, past.day)):
        try:
            extract(ctx.at(past.day))
        except (SourceError, DataError) as exc:
            return f"no usable source data ({exc})"
    return None


def _known_normal_events(days: list[PastDay]) -> list[dict[str, Any]]:
    return [e for past in days for e in past.events if e.get("verdict") == KNOWN_NORMAL]


def _mask_events(frame: pd.DataFrame, days: list[PastDay],
                 margin: pd.Timedelta) -> tuple[int, np.ndarray]:
    """NaN the rows of recorded events (± ``margin``) in place, except those marked false
    alarms; returns the rows masked and the rows of transient events marked false alarms
    (their first to last timestamp: the rows a person called normal)."""
    keep = np.ones(len(frame), dtype=bool)
    known_normal = np.zeros(len(frame), dtype=bool)
    for past in days:
        for event in past.events:
            start, end = pd.Timestamp(event["start_ts"]), pd.Timestamp(event["end_ts"])
            if event.get("verdict") == KNOWN_NORMAL:
                if event.get("kind") != "sustained":  # a whole day: nothing to floor on
                    known_normal |= (frame.index >= start) & (frame.index <= end)
                continue
            if event.get("kind") == "sustained":
                continue  # only on a confirmed new level (its days are the training days)
            keep &= ~((frame.index >= start - margin) & (frame.index <= end + margin))
    frame.loc[~keep, :] = np.nan
    return int((~keep).sum()), known_normal & keep


def _listed(skipped: dict[str, str]) -> str:
    return "; ".join(f"{day}: {why}" for day, why in sorted(skipped.items()))
