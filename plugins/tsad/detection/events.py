"""Flags -> events: the rule that turns per-timestamp scores into what an operator reviews.

1. A point is flagged when its aggregate score is strictly above the threshold (NaN: never).
2. Consecutive flagged points form a run.
3. Two runs separated by at most ``merge_gap`` unflagged points (rows, not seconds) are one event.
4. An event with fewer than ``min_points`` flagged points is dropped (isolated blips are noise).
5. An event spans its first to its last flagged timestamp; its peak is its highest score and its
   severity is peak / threshold. A channel's contribution is its share of the summed per-channel
   score over the event's flagged points. Top channels are the largest contributions (at most
   ``top_channels``) among the channels whose *reading departed* at one of those points: it lay
   more than half a training standard deviation outside the range it spanned in training
   (``tsad.model.departure``). The error alone cannot say which readings moved: with shared
   codes and the cross-channel blend, a channel that breaks moves the reconstruction of
   channels that did not, and those get errors too; a reading outside anything the model was
   trained on is the reading's own doing. When no channel departed (a break inside the normal
   ranges, such as a broken correlation, or a model saved before ranges existed) the ranking
   falls back to the contributions of all channels, and the event says so (``top_departed``
   False; ``"departed": false`` in each ``top_channels_json`` entry). Its stored points rank
   their channels among the same channels.
6. What an operator is shown, and what evaluation counts, is every point from an event's first
   to its last flagged point (``event_mask``); stored points are the flagged ones inside events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from tsad.config import EventConfig
from tsad.runs import runs


@dataclass(frozen=True)
class Event:
    """One anomaly episode; times are UTC and ``end`` is the last flagged timestamp (inclusive)."""

    start: pd.Timestamp
    end: pd.Timestamp
    peak_time: pd.Timestamp
    peak_score: float
    threshold: float
    severity: float
    n_points: int
    top_channels: tuple[tuple[str, float], ...]
    kind: str = "transient"  # or "sustained": the day as a whole (tsad.detection.sustained)
    since: date | None = None  # sustained: the departure's first data day
    # True: top channels ranked among the channels whose reading departed; False: none
    # departed (or it is not known), ranked by contribution alone (rule 5)
    top_departed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO-8601 times, plain floats and ints."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "peak_time": self.peak_time.isoformat(),
            "peak_score": self.peak_score,
            "threshold": self.threshold,
            "severity": self.severity,
            "n_points": self.n_points,
            "top_channels": [{"channel": c, "contribution": s, "departed": self.top_departed}
                             for c, s in self.top_channels],
            "kind": self.kind,
            "since": None if self.since is None else self.since.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            start=pd.Timestamp(d["start"]).tz_convert("UTC"),
            end=pd.Timestamp(d["end"]).tz_convert("UTC"),
            peak_time=pd.Timestamp(d["peak_time"]).tz_convert("UTC"),
            peak_score=float(d["peak_score"]),
            threshold=float(d["threshold"]),
            severity=float(d["severity"]),
            n_points=int(d["n_points"]),
            top_channels=tuple((str(t["channel"]), float(t["contribution"]))
                               for t in d["top_channels"]),
            kind=str(d.get("kind", "transient")),
            since=date.fromisoformat(d["since"]) if d.get("since") else None,
            top_departed=any(bool(t.get("departed", False)) for t in d["top_channels"]),
        )


def _segments(aggregate: np.ndarray, threshold: float,
              cfg: EventConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flags and kept events as ``[start, stop)`` index ranges, plus flagged counts per event."""
    if not (np.isfinite(threshold) and threshold > 0):
        raise ValueError(f"event threshold must be finite and > 0 (severity is peak / threshold), "
                         f"got {threshold!r}")
    flags = np.asarray(aggregate, dtype=float) > threshold  # NaN > x is False
    if flags.ndim != 1:
        raise ValueError(f"aggregate scores must be 1-D, got shape {flags.shape}")
    run_starts, run_stops = runs(flags)
    if run_starts.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return flags, empty, empty, empty
    gaps = run_starts[1:] - run_stops[:-1]  # unflagged points between consecutive runs
    breaks = np.flatnonzero(gaps > cfg.merge_gap)
    first_run = np.concatenate(([0], breaks + 1))
    last_run = np.concatenate((breaks, [run_starts.size - 1]))
    counts = np.add.reduceat(run_stops - run_starts, first_run)
    keep = counts >= cfg.min_points
    return flags, run_starts[first_run][keep], run_stops[last_run][keep], counts[keep]


def flagged_points(aggregate: np.ndarray, threshold: float, cfg: EventConfig) -> np.ndarray:
    """Indices of flagged points inside kept events, so stored points match the stored events."""
    flags, starts, stops, _ = _segments(aggregate, threshold, cfg)
    marks = np.zeros(flags.size + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, stops, -1)
    inside = np.cumsum(marks[:-1]) > 0
    return np.flatnonzero(flags & inside)


def event_mask(aggregate: np.ndarray, threshold: float, cfg: EventConfig) -> np.ndarray:
    """Boolean mask of the points an operator is shown as anomalous: every point of every kept
    event, first to last flagged point inclusive (merged gaps included). Evaluation counts these."""
    flags, starts, stops, _ = _segments(aggregate, threshold, cfg)
    marks = np.zeros(flags.size + 1, dtype=np.int64)
    np.add.at(marks, starts, 1)
    np.add.at(marks, stops, -1)
    return np.cumsum(marks[:-1]) > 0


def top_channels(scores: np.ndarray, channels: Sequence[str], limit: int,
                 among: np.ndarray | None = None) -> tuple[tuple[str, float], ...]:
    """Shares of the summed per-channel score, largest first, of the channels in ``among``
    (bool ``[c]``; None: all); NaN counts as 0, negatives are clipped to 0. The shares stay
    shares of every channel's score."""
    sums = np.clip(np.nansum(scores, axis=0), 0.0, None)
    total = float(sums.sum())
    if not (total > 0 and np.isfinite(total)):
        return ()
    shares = sums / total
    ranked = shares if among is None else np.where(among, shares, 0.0)
    order = np.argsort(-ranked, kind="stable")[:limit]
    return tuple((channels[i], float(shares[i])) for i in order if ranked[i] > 0)


def departed_channels(scores: np.ndarray, departed: np.ndarray | None) -> np.ndarray | None:
    """Bool ``[c]``: the channels top channels are ranked among (rule 5), from the flagged
    points' channel scores and departures ``[m, c]``: those whose reading departed at one of
    them and that carry some of the score. None: no such channel, rank them all."""
    if departed is None or len(departed) == 0:
        return None
    sums = np.nansum(np.asarray(scores, dtype=float), axis=0)
    among = np.asarray(departed, dtype=bool).any(axis=0) & (sums > 0)
    return among if among.any() else None


def ranked_top_channels(scores: np.ndarray, departed: np.ndarray | None,
                        channels: Sequence[str],
                        limit: int) -> tuple[tuple[tuple[str, float], ...], bool]:
    """An event's top channels by rule 5, and whether they were ranked among departed ones."""
    among = departed_channels(scores, departed)
    return top_channels(scores, channels, limit, among), among is not None


def point_channels(aggregate: np.ndarray, threshold: float, cfg: EventConfig,
                   channel_scores: np.ndarray, departed: np.ndarray | None) -> np.ndarray | None:
    """Bool ``[len(flagged_points), c]``: per stored point, the channels its top channels are
    ranked among, its event's (rule 5; all channels where the event fell back). None when no
    departures are known."""
    if departed is None:
        return None
    _, starts, stops, _ = _segments(aggregate, threshold, cfg)
    idx = flagged_points(aggregate, threshold, cfg)
    scores, moved = np.asarray(channel_scores), np.asarray(departed, dtype=bool)
    allowed = np.ones((idx.size, moved.shape[1]), dtype=bool)
    for start, stop in zip(starts.tolist(), stops.tolist()):
        lo, hi = np.searchsorted(idx, [start, stop])
        among = departed_channels(scores[idx[lo:hi]], moved[idx[lo:hi]])
        if among is not None:
            allowed[lo:hi] = among
    return allowed


def find_events(timestamps: pd.DatetimeIndex, aggregate: np.ndarray, channel_scores: np.ndarray,
                channels: Sequence[str], threshold: float, cfg: EventConfig,
                departed: np.ndarray | None = None) -> list[Event]:
    """Events in time order, following the rule in the module docstring; ``departed``
    (bool, the shape of ``channel_scores``) marks the readings that left their training range
    (None: not known, every event falls back)."""
    agg = np.asarray(aggregate, dtype=float)
    per_channel = np.asarray(channel_scores, dtype=float)
    if not isinstance(timestamps, pd.DatetimeIndex) or timestamps.tz is None:
        raise ValueError("timestamps must be a tz-aware pandas DatetimeIndex (UTC)")
    if agg.ndim != 1 or per_channel.ndim != 2:
        raise ValueError(f"aggregate must be 1-D and channel_scores 2-D, got shapes "
                         f"{agg.shape} and {per_channel.shape}")
    if not (len(timestamps) == agg.size == per_channel.shape[0]):
        raise ValueError(f"lengths differ: {len(timestamps)} timestamps, "
                         f"{agg.size} aggregate scores, "
                         f"{per_channel.shape[0]} rows of channel scores")
    if per_channel.shape[1] != len(channels):
        raise ValueError(f"channel_scores has {per_channel.shape[1]} columns "
                         f"for {len(channels)} channels")
    if departed is not None and np.shape(departed) != per_channel.shape:
        raise ValueError(f"departed has shape {np.shape(departed)}, channel_scores "
                         f"{per_channel.shape}")
    flags, starts, stops, counts = _segments(agg, threshold, cfg)
    times = timestamps.tz_convert("UTC")
    events = []
    for start, stop, count in zip(starts.tolist(), stops.tolist(), counts.tolist()):
        peak = start + int(np.nanargmax(agg[start:stop]))
        in_event = flags[start:stop]
        peak_score = float(agg[peak])
        top, top_departed = ranked_top_channels(
            per_channel[start:stop][in_event],
            None if departed is None else np.asarray(departed)[start:stop][in_event],
            channels, cfg.top_channels)
        events.append(Event(
            start=times[start],
            end=times[stop - 1],
            peak_time=times[peak],
            peak_score=peak_score,
            threshold=float(threshold),
            severity=peak_score / float(threshold),
            n_points=int(count),
            top_channels=top,
            top_departed=top_departed,
        ))
    return events
