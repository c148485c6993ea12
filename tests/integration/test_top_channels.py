"""Top channels only among channels whose reading departed (issue 15, item 5).

With shared codes and the cross-channel blend, a channel that breaks moves the reconstruction
of channels that did not, and those get errors too. Before, such a channel could lead an
event's top channels; now events and their points rank only channels whose reading left its
training range, and say when they fell back to the error alone. Real torch models, the real
scratch file, merge and records, and the whole pipeline on a simulated plant.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import small_plant
from tsad.config import (DetectorConfig, EventConfig, ModelConfig, TsadConfig, WindowConfig,
                         from_dict, load_config)
from tsad.detection.day_records import DayRecords, build_records
from tsad.detection.events import Event, find_events
from tsad.detection.merge import merge
from tsad.detection.unit_scores import UnitScores, read_scratch, scratch_path, write_scratch
from tsad.ingest.partitions import write_partition
from tsad.model.departure import MARGIN, ReadingRange
from tsad.model.detector import Detector

DAY = date(2026, 3, 5)
STARTED = datetime(2026, 3, 6, 1, 30, tzinfo=UTC)
CHANNELS = ["a", "b", "c"]
EVENTS = EventConfig(min_points=3, merge_gap=10, top_channels=3)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_THREADS", "1")


def correlated(n: int, seed: int) -> pd.DataFrame:
    """Three channels driven by one cycle: b mirrors a, so the blend predicts each from the
    other."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    drive = np.sin(2 * np.pi * t / 144) + 0.3 * np.sin(2 * np.pi * t / 37)
    data = np.stack([10 + 3 * drive, 50 - 5 * drive, 2 * drive**2], axis=1)
    data += rng.normal(0, 0.1, data.shape)
    index = pd.date_range("2026-03-01", periods=n, freq="60s", tz="UTC", name="timestamp")
    return pd.DataFrame(data, index=index, columns=CHANNELS)


@pytest.fixture(scope="module")
def blended() -> Detector:
    """A conv1d autoencoder blended with the cross-channel prediction (the default)."""
    config = DetectorConfig(
        name="g", channels=CHANNELS, window=WindowConfig(length=16, stride=4),
        model=ModelConfig(kind="conv1d", hidden=16, latent=4, epochs=10, batch_size=64,
                          learning_rate=3e-3, patience=5, seed=1, cross_channel=0.5))
    return Detector.fit(config, correlated(2000, seed=0), checkpoint=False)


def broken(shift: float = 12.0) -> pd.DataFrame:
    """A day where a jumps far outside anything it did in training; b and c stay normal."""
    frame = correlated(600, seed=5)
    frame.iloc[300:330, 0] += shift
    return frame


def test_a_channel_whose_reconstruction_moved_is_not_a_top_channel(blended: Detector) -> None:
    """a breaks; the blend predicts b from a, so b's error is as large as a's (it led the
    event before). Only a's reading departed: a is the only top channel."""
    scores = blended.score(broken())
    assert scores.departed is not None and scores.departed.shape == scores.point_scores.shape
    assert scores.departed[:, 1:].sum() == 0 and scores.departed[300:330, 0].all()
    (event,) = find_events(scores.timestamps, scores.aggregate, scores.point_scores, CHANNELS,
                           blended.threshold, EVENTS, scores.departed)
    assert event.top_departed is True
    assert [name for name, _ in event.top_channels] == ["a"]
    # the contribution is still a's share of the whole event's error, b's being large too
    (_, share_a), = event.top_channels
    (by_error,) = find_events(scores.timestamps, scores.aggregate, scores.point_scores,
                              CHANNELS, blended.threshold, EVENTS)
    shares = dict(by_error.top_channels)
    assert share_a == pytest.approx(shares["a"]) and shares["b"] > 0.25
    assert by_error.top_departed is False  # nothing known about departures: today's ranking


def test_no_reading_departed_falls_back_to_the_error_and_says_so(blended: Detector) -> None:
    """a breaks inside its training range (a broken correlation): no reading departed, so the
    top channels are ranked by their share of the error as before, marked as such."""
    frame = correlated(600, seed=5)
    frame.iloc[300:330, 0] = frame.iloc[300, 0]  # stuck at a normal value
    scores = blended.score(frame)
    assert not scores.departed.any()
    with_departures = find_events(scores.timestamps, scores.aggregate, scores.point_scores,
                                  CHANNELS, blended.threshold, EVENTS, scores.departed)
    without = find_events(scores.timestamps, scores.aggregate, scores.point_scores, CHANNELS,
                          blended.threshold, EVENTS)
    assert with_departures and [e.top_channels for e in with_departures] == [
        e.top_channels for e in without]
    assert all(e.top_departed is False for e in with_departures)
    entry = with_departures[0].to_dict()["top_channels"][0]
    assert entry["departed"] is False


def test_the_range_is_saved_with_the_model_and_streamed_scores_agree(
        blended: Detector, tmp_path: Path) -> None:
    state = json.loads(json.dumps(blended.state()))
    again = Detector.from_state(blended.config, state, blended.network_.state_dict())
    np.testing.assert_array_equal(again.reading_range_.low, blended.reading_range_.low)
    np.testing.assert_array_equal(again.reading_range_.high, blended.reading_range_.high)
    frame = broken()
    path = tmp_path / "day.parquet"
    write_partition(frame, path)
    streamed = again.score_partition(path, read_rows=100)  # batches cut through the break
    np.testing.assert_array_equal(streamed.departed, blended.score(frame).departed)
    # a model saved before ranges existed scores as before, knowing no departures
    del state["reading_range"]
    old = Detector.from_state(blended.config, state, blended.network_.state_dict())
    assert old.reading_range_ is None and old.score(frame).departed is None


def test_a_reading_departs_beyond_its_training_range_plus_the_margin() -> None:
    training = np.array([[-1.0, 0.0], [2.0, 0.0], [np.nan, 0.0]])
    reading_range = ReadingRange.fit(training)
    scaled = np.array([[2.0 + MARGIN, MARGIN], [2.0 + MARGIN + 0.01, -MARGIN - 0.01],
                       [-1.0 - MARGIN - 0.01, np.nan]], dtype=np.float32)
    assert reading_range.departed(scaled).tolist() == [[False, False], [True, True],
                                                       [True, False]]
    stored = ReadingRange.from_dict(json.loads(json.dumps(reading_range.to_dict())))
    assert stored is not None and ReadingRange.from_dict(None) is None
    np.testing.assert_array_equal(stored.low, reading_range.low)
    np.testing.assert_array_equal(stored.high, reading_range.high)


# ------------------------------------------------------- scratch file, merge and records


STAMPS = pd.date_range("2026-03-05 06:00", periods=12, freq="300s", tz="UTC", name="timestamp")
PUMPS = ["flow", "pressure", "current", "temp"]
#: one event of 3 flagged points (4, 5, 6)
ONE_EVENT = [0.1, 0.2, 0.1, 0.3, 1.5, 3.0, 2.0, 0.1, 0.2, 0.1, 0.1, 0.1]


def unit(shard: int | None, channels: list[str], departed: dict[str, list[int]] | None,
         threshold: float = 1.0) -> UnitScores:
    """Channel j scores (j + 1) / 10 of ONE_EVENT: the last channel has the largest error."""
    weights = np.arange(1, len(channels) + 1, dtype=np.float32) / 10
    moved = None
    if departed is not None:
        moved = np.zeros((len(STAMPS), len(channels)), dtype=bool)
        for name, rows in departed.items():
            moved[rows, channels.index(name)] = True
    label = "all" if shard is None else f"s{shard:02d}"
    return UnitScores(
        group="pumps", shard=shard, channels=channels, model_version_id=f"pumps/{label}/v0001",
        model_path=f"/nowhere/{label}", threshold=threshold, timestamps=STAMPS,
        aggregate=np.array(ONE_EVENT) * threshold,
        point_scores=np.outer(ONE_EVENT, weights).astype(np.float32) * threshold,
        n_windows=9, drift=False, drift_message="", started_at=STARTED, run_id="run-1",
        possible_windows=9, departed=moved)


def plant(tmp: Path, shards: list[list[str]] | None = None) -> TsadConfig:
    raw = small_plant(tmp)  # pumps: top_channels 2
    if shards is not None:
        raw["groups"][0]["shards"] = {"channels": shards}
    return from_dict(TsadConfig, raw)


def records(config: TsadConfig, units: list[UnitScores]) -> DayRecords:
    group = config.group("pumps")
    logging.getLogger("tsad.pipeline").setLevel(logging.CRITICAL)  # no model: plots fail
    return build_records(config, group, DAY, merge(group, units), "tsad_nightly", "run-1",
                         STARTED, {})


def test_the_departed_mask_round_trips_through_the_scratch_file(tmp_path: Path) -> None:
    written = unit(2, ["temp", "flow"], {"flow": [4, 5]})
    path = scratch_path(tmp_path, "pumps", DAY, "run-1", 2)
    write_scratch(written, path)
    read = read_scratch(path, "pumps/s02")
    assert read.departed is not None and read.departed.dtype == bool
    np.testing.assert_array_equal(read.departed, written.departed)
    unknown = dataclasses.replace(written, departed=None)
    write_scratch(unknown, path)
    assert read_scratch(path, "pumps/s02").departed is None


def test_records_name_only_departed_channels_for_the_event_and_its_points(
        tmp_path: Path) -> None:
    """temp and current have the largest errors (they led before); only flow departed."""
    day = records(plant(tmp_path), [unit(None, PUMPS, {"flow": [5]})])
    (event,) = day.events
    assert event.top_channels_json == [
        {"channel": "flow", "contribution": pytest.approx(0.1), "departed": True}]
    assert {p.channel for p in day.points} == {"flow"} and len(day.points) == 3
    assert all(p.contribution == pytest.approx(0.1) for p in day.points)


def test_an_event_keeps_how_its_top_channels_were_ranked_through_json() -> None:
    at = pd.Timestamp("2026-03-05 06:00", tz="UTC")
    event = Event(start=at, end=at, peak_time=at, peak_score=2.0, threshold=1.0, severity=2.0,
                  n_points=1, top_channels=(("flow", 0.4),), top_departed=True)
    stored = json.loads(json.dumps(event.to_dict()))
    assert stored["top_channels"] == [{"channel": "flow", "contribution": 0.4,
                                       "departed": True}]
    assert Event.from_dict(stored) == event
    del stored["top_channels"][0]["departed"]  # stored before departures existed
    assert Event.from_dict(stored).top_departed is False


def test_records_fall_back_when_no_reading_departed(tmp_path: Path) -> None:
    for departed in ({}, None, {"flow": [1]}):  # none, not known, only outside the event
        day = records(plant(tmp_path), [unit(None, PUMPS, departed)])
        (event,) = day.events
        assert [(t["channel"], t["departed"]) for t in event.top_channels_json] == [
            ("temp", False), ("current", False)]
        assert len(day.points) == 3 * 2 and {p.channel for p in day.points} == {"temp",
                                                                                 "current"}


def test_shards_carry_their_departures_under_the_group_channels(tmp_path: Path) -> None:
    config = plant(tmp_path, [["temp", "flow"], ["pressure", "current"]])
    group = config.group("pumps")
    units = [unit(1, ["temp", "flow"], {"flow": [4]}), unit(2, ["pressure", "current"], None)]
    merged = merge(group, units)
    assert merged.departed[:, group.channels.index("flow")].tolist() == [
        i == 4 for i in range(len(STAMPS))]
    assert merged.departed.sum() == 1
    (event,) = records(config, units).events
    assert [t["channel"] for t in event.top_channels_json] == ["flow"]


# ------------------------------------------------------- the whole pipeline


def test_a_simulated_fault_names_only_the_channel_that_broke(tmp_path: Path) -> None:
    """flow reads 50 too high for an hour: other channels' reconstructions move with it (the
    blend predicts them from flow), but the fault's event and its points name flow alone."""
    import sqlalchemy as sa

    from tsad import pipeline
    from tsad.evaluation.simulator import simulate
    from tsad.storage.engine import dispose_all, get_engine
    from tsad.storage.records import read_events

    data = small_plant(tmp_path)
    data["groups"] = data["groups"][:1]
    (tmp_path / "tsad.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "tsad.yaml")
    day = date(2026, 3, 4)
    simulate(config, date(2026, 3, 1), 4, seed=3)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'historian.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE pump_readings SET value = value + 50 WHERE sensor = 'flow' "
                             "AND ts >= :a AND ts < :b"),
                     {"a": f"{day} 18:00:00", "b": f"{day} 19:00:00"})
    engine.dispose()
    pipeline.run_day(config, day, ["pumps"])
    store = get_engine(config.database.url)
    fault = [e for e in read_events(store, "pumps", day)
             if e["start_ts"] <= datetime(2026, 3, 4, 18, 30, tzinfo=UTC) <= e["end_ts"]]
    assert len(fault) == 1
    assert fault[0]["top_channels_json"] == [
        {"channel": "flow", "contribution": pytest.approx(fault[0]["top_channels_json"][0][
            "contribution"]), "departed": True}]
    with store.connect() as conn:
        channels = conn.execute(sa.text(
            "SELECT DISTINCT channel FROM anomaly_point WHERE ts BETWEEN :a AND :b"),
            {"a": fault[0]["start_ts"], "b": fault[0]["end_ts"]}).scalars().all()
    assert channels == ["flow"]
    dispose_all()
