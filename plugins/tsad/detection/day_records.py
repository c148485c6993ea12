"""One group-day's anomaly records, built from its merged scores: the run row, events, points.

What the public tables hold (README, *Tables*): every event and anomalous point carries the
score, threshold and model version of the unit that leads it, so severity = score / threshold
holds row by row for sharded groups too. Events and their points name as top channels only
channels whose reading departed, where any did (``tsad.detection.events``, rule 5). The run's status and message say how much of the day
could be scored (``tsad.detection.coverage``). ``tsad.pipeline`` writes them in one transaction,
then removes the partition's plots that the committed rows do not name (``tsad.detection.plots``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from tsad.config import GroupConfig, TsadConfig
from tsad.dates import day_bounds
from tsad.detection.coverage import coverage
from tsad.detection.events import Event, find_events, flagged_points, point_channels
from tsad.detection.merge import Merged
from tsad.detection.sustained import sustained_event
from tsad.detection.unit_scores import UnitScores
from tsad.storage.records import EventRecord, PointRecord, RunRecord

if TYPE_CHECKING:
    from tsad.model.detector import Detector

log = logging.getLogger("tsad.pipeline")


@dataclass(frozen=True)
class DayRecords:
    """What replaces a (group, day)'s records."""

    run: RunRecord
    events: list[EventRecord]
    points: list[PointRecord]


def build_records(config: TsadConfig, group: GroupConfig, day: date, merged: Merged, dag_id: str,
                  run_id: str, started: datetime, quality: dict[str, Any],
                  since: date | None = None) -> DayRecords:
    """The run row, events (with plots) and points of ``merged`` (``tsad.detection.merge``)
    scores. A unit whose day moved away as a whole gives one sustained event instead of
    transient ones (``tsad.detection.sustained``); ``since`` is the first day of a departure
    that the day before already had (None: it starts today)."""
    sustained = _sustained_events(group, day, merged, since or day)
    if len(merged.drifted) == len(merged.units):  # the whole group moved: no transient events
        events, point_idx, allowed = [], np.empty(0, dtype=np.int64), None
    else:
        events = find_events(merged.timestamps, merged.aggregate, merged.point_scores,
                             merged.channels, merged.threshold, group.events, merged.departed)
        point_idx = flagged_points(merged.aggregate, merged.threshold, group.events)
        allowed = point_channels(merged.aggregate, merged.threshold, group.events,
                                 merged.point_scores, merged.departed)
    lead = _day_lead(merged)
    start, end = day_bounds(day, config.site_timezone)
    drift = bool(merged.drifted)
    covered = coverage(merged.units)
    status = ("no_data" if covered.status == "no_data" else "sustained" if drift
              else covered.status)
    message = "; ".join(m for m in (_run_message(merged, since or day), covered.message) if m)
    run = RunRecord(
        dag_id=dag_id, run_id=run_id, sensor_group=group.name, partition_date=day,
        site_timezone=config.site_timezone, data_start=start, data_end=end,
        model_version_id=lead.model_version_id, threshold=lead.threshold,
        n_rows=len(merged.timestamps), n_windows=sum(u.n_windows for u in merged.units),
        n_anomalous_points=int(len(point_idx)), n_events=len(events) + len(sustained),
        quality_json={**quality, "implausible_values": covered.implausible_values},
        drift=drift, status=status, message=message, started_at=started,
        finished_at=datetime.now(timezone.utc))
    plots = _plots(config, group, day, merged, events)
    event_records = []
    for event, plot in zip(events, plots, strict=True):
        score, threshold, version_id = merged.source(merged.timestamps.get_loc(event.peak_time))
        stored = dataclasses.replace(event, peak_score=score, threshold=threshold)
        event_records.append(_event_record(stored, group.name, day, version_id, plot))
    sustained_plots = (_plots(config, group, day, merged, [e for _, e in sustained])
                       if len(merged.units) == 1 else [None] * len(sustained))
    for (unit, event), plot in zip(sustained, sustained_plots, strict=True):
        event_records.append(_event_record(event, group.name, day, unit.model_version_id, plot))
    points = _point_records(merged, point_idx, merged.channels, merged.threshold, group, day,
                            lead.model_version_id, source=merged.source, allowed=allowed)
    return DayRecords(run, sorted(event_records, key=lambda e: e.start_ts), points)


def _sustained_events(group: GroupConfig, day: date, merged: Merged,
                      since: date) -> list[tuple[UnitScores, Event]]:
    """One sustained event per unit whose day moved away as a whole."""
    found = []
    for unit in merged.drifted:
        event = sustained_event(unit.timestamps, unit.aggregate, unit.point_scores,
                                unit.channels, unit.threshold, group.events, since,
                                unit.departed)
        if event is not None:
            found.append((unit, event))
    return found


def _day_lead(merged: Merged) -> UnitScores:
    """The unit named on the run row: the only one, or the shard with the day's highest
    severity (a shard that drifted is not considered unless all did)."""
    if len(merged.units) == 1:
        return merged.units[0]
    candidates = [u for u in merged.units if not u.drift] or merged.units

    def peak(unit: UnitScores) -> float:
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = unit.aggregate / unit.threshold
        finite = ratio[np.isfinite(ratio)]
        return float(finite.max()) if finite.size else -np.inf

    return max(candidates, key=peak)


def _run_message(merged: Merged, since: date) -> str:
    """The run row's message: a sustained departure (since when), and for a sharded group
    every shard's model version."""
    lasting = f" (since {since.isoformat()})" if merged.drifted else ""
    if len(merged.units) == 1:
        return merged.units[0].drift_message + lasting if merged.drifted else ""
    shards = "shards: " + ", ".join(u.model_version_id for u in merged.units)
    return "; ".join([shards, *(f"{u.label}: {u.drift_message}{lasting}"
                                for u in merged.drifted)])


def _plots(config: TsadConfig, group: GroupConfig, day: date, merged: Merged,
           events: list[Event]) -> list[str | None]:
    """One PNG per event under names of its own (``tsad.detection.plots``); a plot that fails
    is logged, never loses records. The readings are read only when there are events, and
    only the columns of the units the events involve."""
    from tsad.detection.plots import plot_events
    from tsad.ingest.partitions import read_partition

    if not events:
        return []
    try:
        detectors, shown = _plot_detectors(merged, events)
        channels = [c for c in group.channels if any(c in d.channels for d in detectors)]
        frame = read_partition(config.data_dir, group.name, day, channels)
        return list(plot_events(detectors, frame, merged, events, data_dir=config.data_dir,
                                group=group.name, day=day, model_version=shown))
    except Exception:  # noqa: BLE001 - a picture must not block the records
        log.exception("group %s %s: rendering the event plots failed; events keep no plot",
                      group.name, day)
        return [None] * len(events)


def _plot_detectors(merged: Merged, events: list[Event]) -> tuple[list[Detector], str]:
    """The detectors the plots reconstruct with, and the model version(s) their titles name:
    the unit's own, or those of the shards that lead an event or own one of its top channels."""
    from tsad.model.registry import load_detector, version_at

    def loaded(unit: UnitScores) -> Detector:
        return load_detector(version_at(unit.model_path), unit.channels)

    if len(merged.units) == 1:
        return [loaded(merged.units[0])], merged.units[0].model_version_id
    leads = {int(merged.lead[merged.timestamps.get_loc(e.peak_time)]) for e in events}
    tops = {name for e in events for name, _ in e.top_channels}
    needed = [u for k, u in enumerate(merged.units) if k in leads or tops & set(u.channels)]
    shown = ", ".join(merged.units[k].model_version_id for k in sorted(leads))
    return [loaded(u) for u in needed], shown


def _event_record(event: Event, group: str, day: date, version_id: str,
                  plot_path: str | None = None) -> EventRecord:
    return EventRecord(
        sensor_group=group, partition_date=day, start_ts=event.start.to_pydatetime(),
        end_ts=event.end.to_pydatetime(), peak_ts=event.peak_time.to_pydatetime(),
        peak_score=float(event.peak_score), threshold=float(event.threshold),
        severity=float(event.severity), n_points=int(event.n_points),
        top_channels_json=[{"channel": c, "contribution": round(float(w), 6),
                            "departed": event.top_departed} for c, w in event.top_channels],
        model_version_id=version_id, plot_path=plot_path, kind=event.kind,
        since_date=event.since)


def _point_records(scores: Merged, idx: np.ndarray, channels: list[str], threshold: float,
                   group: GroupConfig, day: date, version_id: str,
                   source: Callable[[int], tuple[float, float, str]] | None = None,
                   allowed: np.ndarray | None = None) -> list[PointRecord]:
    """One row per anomalous timestamp and top contributing channel (public contract: README).

    ``source(i)`` gives timestamp ``i``'s stored ``(score, threshold, model_version_id)`` when
    they vary by row (merged shards: the lead shard's); by default they are ``aggregate[i]``,
    ``threshold`` and ``version_id``. ``allowed`` (bool ``[len(idx), c]``, from
    ``point_channels``) limits each point's top channels to its event's departed ones; the
    contribution stays the channel's share of the point's whole score."""
    if len(idx) == 0:
        return []
    per_channel = scores.point_scores[idx]
    share = per_channel / np.maximum(per_channel.sum(axis=1, keepdims=True), 1e-12)
    ranked = per_channel if allowed is None else np.where(allowed, per_channel, -np.inf)
    top = np.argsort(-ranked, axis=1)[:, : group.events.top_channels]
    records = []
    for row, i in enumerate(idx):
        ts = scores.timestamps[i].to_pydatetime()
        score, limit, version = ((float(scores.aggregate[i]), threshold, version_id)
                                 if source is None else source(i))
        for c in top[row]:
            if allowed is not None and not allowed[row, c]:
                continue
            records.append(PointRecord(
                sensor_group=group.name, partition_date=day, channel=channels[c], ts=ts,
                score=score, threshold=limit, severity=score / limit,
                contribution=round(float(share[row, c]), 6), model_version_id=version))
    return records
