"""Flags -> events on hand-made score sequences, plus a check against a plain-loop reference."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsad.config import EventConfig
from tsad.detection.events import Event, event_mask, find_events, flagged_points

CHANNELS = ["a", "b", "c"]


def stamps(n: int, tz: str = "UTC") -> pd.DatetimeIndex:
    return pd.date_range("2024-03-01", periods=n, freq="min", tz=tz, name="timestamp")


def run(agg: list[float], cfg: EventConfig, threshold: float = 1.0,
        channel_scores: np.ndarray | None = None) -> list[Event]:
    a = np.asarray(agg, dtype=float)
    cs = np.tile(np.nan_to_num(a)[:, None], (1, 3)) if channel_scores is None else channel_scores
    return find_events(stamps(a.size), a, cs, CHANNELS, threshold, cfg)


def test_single_run() -> None:
    (ev,) = run([0, 0, 2, 3, 2, 0, 0], EventConfig(min_points=3, merge_gap=0))
    t = stamps(7)
    assert (ev.start, ev.end, ev.peak_time) == (t[2], t[4], t[3])
    assert (ev.peak_score, ev.threshold, ev.severity, ev.n_points) == (3.0, 1.0, 3.0, 3)
    assert str(ev.start.tz) == "UTC"


def test_two_runs_merged_by_gap_rule() -> None:
    agg = [0, 0, 2, 2, 2, 0, 0, 5, 2, 0]  # runs [2..4] and [7..8], 2 unflagged points between
    (ev,) = run(agg, EventConfig(min_points=1, merge_gap=2))
    t = stamps(10)
    assert (ev.start, ev.end, ev.peak_time, ev.n_points) == (t[2], t[8], t[7], 5)
    split = run(agg, EventConfig(min_points=1, merge_gap=1))
    assert [(e.start, e.end) for e in split] == [(t[2], t[4]), (t[7], t[8])]


def test_short_run_dropped_by_min_points_and_not_in_flagged_points() -> None:
    agg = [2, 2, 0, 0, 0, 0, 3, 3, 3, 0]
    cfg = EventConfig(min_points=3, merge_gap=2)
    (ev,) = run(agg, cfg)
    assert ev.n_points == 3 and ev.start == stamps(10)[6]
    np.testing.assert_array_equal(flagged_points(np.asarray(agg, float), 1.0, cfg), [6, 7, 8])


def test_nan_is_never_flagged() -> None:
    agg = [0, 2, np.nan, 2, 0, np.nan, np.nan]
    assert run(agg, EventConfig(min_points=2, merge_gap=0)) == []
    (ev,) = run(agg, EventConfig(min_points=2, merge_gap=1))
    assert ev.n_points == 2 and ev.peak_score == 2.0
    np.testing.assert_array_equal(flagged_points(np.asarray(agg), 1.0, EventConfig(2, 1)), [1, 3])
    assert run([np.nan] * 5, EventConfig(min_points=1)) == []


def test_runs_at_the_very_start_and_end() -> None:
    agg = [2, 2, 0, 0, 0, 0, 0, 2, 2]
    events = run(agg, EventConfig(min_points=2, merge_gap=1))
    t = stamps(9)
    assert [(e.start, e.end) for e in events] == [(t[0], t[1]), (t[7], t[8])]
    np.testing.assert_array_equal(flagged_points(np.asarray(agg, float), 1.0, EventConfig(2, 1)),
                                  [0, 1, 7, 8])


def test_top_channels_shares_and_order() -> None:
    agg = [0, 2, 2, 0, 2, 0]
    cs = np.array([[0, 0, 0], [1, 3, 0], [1, 3, 0], [0, 0, 99], [2, 2, 0], [0, 0, 50]], float)
    (ev,) = run(agg, EventConfig(min_points=1, merge_gap=1, top_channels=3), channel_scores=cs)
    # only flagged rows count (the unflagged gap row with c=99 does not): a=4, b=8, c=0
    assert [c for c, _ in ev.top_channels] == ["b", "a"]
    assert ev.top_channels[0][1] == pytest.approx(8 / 12)
    shares = [s for _, s in ev.top_channels]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1 + 1e-12
    (top1,) = run(agg, EventConfig(min_points=1, merge_gap=1, top_channels=1), channel_scores=cs)
    assert len(top1.top_channels) == 1


def test_empty_input() -> None:
    assert run([], EventConfig()) == []
    assert flagged_points(np.zeros(0), 1.0, EventConfig()).size == 0


def test_all_flagged() -> None:
    (ev,) = run([2.0] * 20, EventConfig(min_points=3, merge_gap=0))
    assert (ev.start, ev.end, ev.n_points, ev.peak_time) == (stamps(20)[0], stamps(20)[-1], 20,
                                                             stamps(20)[0])


def test_to_dict_is_json_and_round_trips() -> None:
    (ev,) = run([0, 2, 4, 2, 0], EventConfig(min_points=1))
    d = json.loads(json.dumps(ev.to_dict()))
    assert d["start"] == "2024-03-01T00:01:00+00:00"
    assert Event.from_dict(d) == ev


def test_timestamps_in_another_zone_become_utc() -> None:
    t = stamps(5, tz="Europe/Paris")
    agg = np.array([0, 2, 2, 2, 0.0])
    (ev,) = find_events(t, agg, np.ones((5, 3)), CHANNELS, 1.0, EventConfig())
    assert str(ev.start.tz) == "UTC" and ev.start == t[1]


def test_bad_inputs() -> None:
    naive = pd.date_range("2024-03-01", periods=3, freq="min")
    with pytest.raises(ValueError, match="tz-aware"):
        find_events(naive, np.zeros(3), np.zeros((3, 3)), CHANNELS, 1.0, EventConfig())
    with pytest.raises(ValueError, match="lengths differ"):
        find_events(stamps(4), np.zeros(3), np.zeros((3, 3)), CHANNELS, 1.0, EventConfig())
    with pytest.raises(ValueError, match="columns"):
        find_events(stamps(3), np.zeros(3), np.zeros((3, 2)), CHANNELS, 1.0, EventConfig())
    with pytest.raises(ValueError, match="threshold"):
        find_events(stamps(3), np.zeros(3), np.zeros((3, 3)), CHANNELS, np.nan, EventConfig())


def reference(flags: list[bool], min_points: int, merge_gap: int) -> list[tuple[int, int, int]]:
    """Plain-loop version of the rule: (first flagged index, last flagged index, n flagged)."""
    events: list[list[int]] = []
    last = None
    for i, f in enumerate(flags):
        if not f:
            continue
        if last is not None and i - last - 1 <= merge_gap:
            events[-1][1], events[-1][2] = i, events[-1][2] + 1
        else:
            events.append([i, i, 1])
        last = i
    return [(s, e, n) for s, e, n in events if n >= min_points]


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.sampled_from([0.0, 2.0, np.nan]), max_size=60),
       st.integers(1, 4), st.integers(0, 4))
def test_matches_plain_loop_reference(agg: list[float], min_points: int, merge_gap: int) -> None:
    cfg = EventConfig(min_points=min_points, merge_gap=merge_gap)
    expected = reference([x > 1.0 for x in agg], min_points, merge_gap)
    t = stamps(len(agg))
    got = run(agg, cfg)
    assert [(e.start, e.end, e.n_points) for e in got] == [(t[s], t[e], n) for s, e, n in expected]
    assert flagged_points(np.asarray(agg), 1.0, cfg).size == sum(n for _, _, n in expected)


def test_event_mask_covers_kept_events_gaps_included() -> None:
    agg = np.array([2, 0, 2, 2, 0, 0, 0, 0, 2, 0, 2.0])
    cfg = EventConfig(min_points=3, merge_gap=1)
    # runs [0], [2..3] merge (gap 1) into one event of 3 points; [8] and [10] merge but hold 2 points
    np.testing.assert_array_equal(event_mask(agg, 1.0, cfg), [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert event_mask(agg, 1.0, EventConfig(min_points=1, merge_gap=0)).sum() == 5
    assert not event_mask(np.full(4, np.nan), 1.0, cfg).any()
