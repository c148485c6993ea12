"""Bad readings (issue 16, items 4, 5 and 7), one test each; every one failed before its fix.

Huge finite readings when scoring (4) and training (5), and days with nothing (or too little)
to score (7): the whole pipeline on a simulated plant, real SQLite and real torch.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from conftest import small_plant
from tsad import pipeline
from tsad.config import load_config
from tsad.errors import DataError
from tsad.evaluation.simulator import simulate
from tsad.model import registry
from tsad.pipeline import GroupDay
from tsad.storage.engine import dispose_all, get_engine
from tsad.storage.records import latest_run, read_events

START, DAY = date(2026, 3, 1), date(2026, 3, 4)
Trained = tuple[Path, float, list]  # the plant's folder, the fault's severity, the day's events
FAULT = (f"{DAY} 18:00:00", f"{DAY} 19:00:00")  # a real fault late in the scored day


def plant(tmp: Path, **group: Any) -> Path:
    data = small_plant(tmp)
    data["groups"] = data["groups"][:1]
    data["groups"][0].update(group)
    file = tmp / "tsad.yaml"
    file.write_text(yaml.safe_dump(data))
    return file


def historian(tmp: Path, sql: str, **params: Any) -> int:
    engine = sa.create_engine(f"sqlite:///{tmp / 'historian.db'}")
    with engine.begin() as conn:
        changed = conn.execute(sa.text(sql), params).rowcount
    engine.dispose()
    return changed


def set_reading(tmp: Path, channel: str, at: str, value: float) -> None:
    """One reading of ``channel`` at ``at`` (site time = UTC) becomes ``value``."""
    stamp = datetime.fromisoformat(at)
    assert historian(tmp, "UPDATE pump_readings SET value = :v WHERE sensor = :c AND ts >= :a "
                          "AND ts < :b", v=value, c=channel, a=at,
                     b=f"{stamp.date()} {stamp.hour:02d}:{stamp.minute:02d}:01") == 1


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A plant with a model for DAY, the severity of the day's real fault when the day has no
    bad reading, and the spans of that clean day's events."""
    tmp = tmp_path_factory.mktemp("readings")
    config = load_config(plant(tmp))
    simulate(config, START, 4, seed=3)
    historian(tmp, "UPDATE pump_readings SET value = value + 50 WHERE sensor = 'flow' "
                   "AND ts >= :a AND ts < :b", a=FAULT[0], b=FAULT[1])
    pipeline.run_day(config, DAY, ["pumps"])
    fault = [e for e in read_events(get_engine(config.database.url), "pumps", DAY)
             if e["start_ts"] <= utc(f"{DAY} 18:30") <= e["end_ts"]]
    assert len(fault) == 1
    clean = [(e["start_ts"], e["end_ts"])
             for e in read_events(get_engine(config.database.url), "pumps", DAY)]
    dispose_all()
    (tmp / "tsad.db").unlink()
    shutil.rmtree(tmp / "data")
    return tmp, float(fault[0]["severity"]), clean


def copy(trained: Path, tmp: Path, **group: Any) -> Any:
    for name in ("models", "historian.db"):
        source = trained / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp / name)
    return load_config(plant(tmp, **group))


# ---------------------------------------------------------------- item 4: scoring


@pytest.mark.parametrize("value", [1e10, 1e16, 5e20, 1e22, -1e300])
def test_a_huge_reading_is_clipped_counted_and_hides_nothing_later(
        trained: Trained, tmp_path: Path, value: float,
        caplog: pytest.LogCaptureFixture) -> None:
    """Item 4: before, 1e16 hid the later fault, 5e20 gave an infinite severity and no top
    channels, 1e22 flagged nothing at 06:00, and no quality count moved. Now the reading is
    clipped to PLAUSIBLE_Z training standard deviations: it is still an event, the rest of the
    day scores as without it, the run counts it and names channel and time."""
    folder, clean_severity, clean = trained
    config = copy(folder, tmp_path)
    set_reading(tmp_path, "flow", f"{DAY} 06:00:00", value)
    with caplog.at_level(logging.WARNING):
        result = pipeline.run_day(config, DAY, ["pumps"])[0]
    engine = get_engine(config.database.url)
    run = latest_run(engine, "pumps", DAY)
    events = read_events(engine, "pumps", DAY)

    assert result["status"] == run["status"] == "ok"
    assert run["quality_json"]["implausible_values"] == 1
    assert "flow (1, first at 2026-03-04T06:00:00+00:00)" in run["message"]
    assert any("channel 'flow'" in r.message and "2026-03-04T06:00:00" in r.message
               for r in caplog.records if r.levelno == logging.WARNING)
    assert all(math.isfinite(e["severity"]) and e["top_channels_json"] for e in events)
    spike = [e for e in events if e["start_ts"] <= utc(f"{DAY} 06:00") <= e["end_ts"]]
    fault = [e for e in events if e["start_ts"] <= utc(f"{DAY} 18:30") <= e["end_ts"]]
    assert len(spike) == 1 and spike[0]["top_channels_json"][0]["channel"] == "flow"
    assert len(fault) == 1 and fault[0]["severity"] == pytest.approx(clean_severity, rel=1e-3)
    # nothing spurious: the clean day's events, and the spike
    others = [(e["start_ts"], e["end_ts"]) for e in events if e not in spike]
    assert others == clean, (others, clean)


# ---------------------------------------------------------------- item 5: training


def test_a_huge_training_reading_is_masked_before_the_scaler_is_fitted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Item 5: one 1e308 in a training day made the scaler's mean 1.2e305 and its scale
    infinite (``Infinity`` in state.json: the channel blind for the model's lifetime). Now it is
    masked with a warning naming channel and time, and counted in the model's metrics."""
    config = load_config(plant(tmp_path))
    simulate(config, START, 4, seed=3)
    set_reading(tmp_path, "flow", "2026-03-02 10:00:00", 1e308)
    with caplog.at_level(logging.WARNING):
        model = pipeline.ensure_model(GroupDay.of(config, "pumps", DAY))
    text = (Path(model["path"]) / "state.json").read_text()
    state = json.loads(text)
    scaler = state["scaler"]
    assert all(math.isfinite(v) for v in scaler["mean"] + scaler["scale"]), scaler
    assert "Infinity" not in text and "NaN" not in json.dumps(scaler)
    metrics = registry.version_at(model["path"]).manifest["metrics"]
    assert metrics["implausible_training_values"] == 1
    assert metrics["implausible_training"]["flow"]["first"] == "2026-03-02T10:00:00+00:00"
    assert any("channel 'flow'" in r.message and "2026-03-02T10:00:00" in r.message
               for r in caplog.records if r.levelno == logging.WARNING)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'historian.db'}")
    with engine.connect() as conn:  # the channel's own spread, as if the reading were absent
        flows = [r[0] for r in conn.execute(sa.text(
            "SELECT value FROM pump_readings WHERE sensor = 'flow' AND value < 1e300 "
            "AND ts >= '2026-03-02' AND ts < '2026-03-04'"))]
    engine.dispose()
    mean = sum(flows) / len(flows)
    std = math.sqrt(sum((v - mean) ** 2 for v in flows) / len(flows))
    flow = state["channels"].index("flow")
    assert scaler["mean"][flow] == pytest.approx(mean, rel=0.05)
    assert scaler["scale"][flow] == pytest.approx(std, rel=0.2)


def test_a_channel_without_any_plausible_training_reading_is_named(tmp_path: Path) -> None:
    """Item 5: a channel with no reading in its training range is a DataError naming it (it
    was 'only 0 training windows', naming nothing)."""
    config = load_config(plant(tmp_path))
    simulate(config, START, 4, seed=3)
    historian(tmp_path, "UPDATE pump_readings SET value = NULL WHERE sensor = 'temp'")
    with pytest.raises(DataError, match="channel 'temp' has no reading in the training range"):
        pipeline.ensure_model(GroupDay.of(config, "pumps", DAY))


# ---------------------------------------------------------------- item 7: nothing to score


@pytest.mark.parametrize(("case", "sql", "named"), [
    ("a dead channel", "UPDATE pump_readings SET value = NULL WHERE sensor = 'temp' "
                       "AND ts >= :day", "no reading at all in channel(s) temp"),
    ("an all-NaN day", "UPDATE pump_readings SET value = NULL WHERE ts >= :day",
     "no reading at all in channel(s) flow, pressure, current, temp"),
    ("a single-row day", "DELETE FROM pump_readings WHERE ts >= :day AND ts >= :noon",
     "missing readings in current (>99%), flow (>99%), pressure (>99%), temp (>99%)"),
], ids=["dead-channel", "all-nan-day", "single-row-day"])
def test_a_day_with_nothing_to_score_is_no_data(
        trained: Trained, tmp_path: Path, case: str, sql: str, named: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Item 7: these days scored no window and said ``ok`` with an INFO line. Now the run's
    status is ``no_data``, a warning and the run's message say why and name the channels."""
    config = copy(trained[0], tmp_path)
    historian(tmp_path, sql, day=f"{DAY} 00:00:00", noon=f"{DAY} 00:00:01")
    with caplog.at_level(logging.WARNING):
        result = pipeline.run_day(config, DAY, ["pumps"])[0]
    run = latest_run(get_engine(config.database.url), "pumps", DAY)
    assert result["status"] == run["status"] == "no_data", case
    assert run["n_windows"] == 0 and run["n_events"] == 0
    assert run["message"].startswith("no data: none of the day's 69 windows could be scored")
    assert named in run["message"]
    assert any(r.levelno == logging.WARNING and "no data" in r.message and named in r.message
               for r in caplog.records)


def test_a_day_mostly_skipped_is_partial(trained: Trained, tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Item 7: temp missing until 15:00 skips 45 of 69 windows: ``partial``, with the share."""
    config = copy(trained[0], tmp_path)
    historian(tmp_path, "UPDATE pump_readings SET value = NULL WHERE sensor = 'temp' AND "
                        "ts >= :a AND ts < :b", a=f"{DAY} 00:00:00", b=f"{DAY} 15:00:00")
    with caplog.at_level(logging.WARNING):
        result = pipeline.run_day(config, DAY, ["pumps"])[0]
    run = latest_run(get_engine(config.database.url), "pumps", DAY)
    assert result["status"] == run["status"] == "partial"
    assert run["message"] == ("partial: 45 of 69 windows (65%) skipped for missing readings; "
                              "missing readings in temp (62%)")
    assert any(r.levelno == logging.WARNING and run["message"] in r.message
               for r in caplog.records)
    assert 0 < run["n_windows"] < 69


def test_a_dead_channel_of_a_sharded_group_is_partial(tmp_path: Path) -> None:
    """Item 7: the shard holding a dead channel scores nothing, the other scores: ``partial``."""
    config = load_config(plant(tmp_path, shards={"channels": [["flow", "pressure"],
                                                             ["current", "temp"]]}))
    simulate(config, START, 4, seed=3)
    historian(tmp_path, "UPDATE pump_readings SET value = NULL WHERE sensor = 'temp' "
                        "AND ts >= :day", day=f"{DAY} 00:00:00")
    result = pipeline.run_day(config, DAY, ["pumps"])[0]
    run = latest_run(get_engine(config.database.url), "pumps", DAY)
    assert result["status"] == run["status"] == "partial"
    assert "partial: 69 of 138 windows (50%) skipped" in run["message"]
    assert "no reading at all in channel(s) temp" in run["message"]
