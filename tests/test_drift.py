"""Drift: a day that moved away from training as a whole is recorded as drift, and the next day
retrains, whatever order the days run in."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from conftest import detect
from tsad import pipeline
from tsad.pipeline import GroupDay
from tsad.config import load_config
from tsad.evaluation.simulator import simulate
from tsad.storage.engine import get_engine
from tsad.storage.records import latest_run

DRIFT_FROM = date(2026, 3, 5)


def shift_levels(historian_url: str, since: date) -> None:
    """Every pump reading from ``since`` on moves far above its normal level."""
    engine = sa.create_engine(historian_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE pump_readings SET value = value * 3 + 500 WHERE ts >= :since"),
                     {"since": datetime(since.year, since.month, since.day)})
    engine.dispose()


def test_drift_is_recorded_and_the_next_day_retrains(plant_config_file: Path) -> None:
    config = load_config(plant_config_file)  # training.days = 3
    simulate(config, date(2026, 3, 1), 6, [], seed=4)
    shift_levels(config.groups[0].source.url, DRIFT_FROM)
    day4, day6 = date(2026, 3, 4), date(2026, 3, 6)

    base = pipeline.ensure_model(GroupDay.of(config, "pumps", day4))
    assert base["trained"] and base["model_version_id"] == "pumps/v0001"

    # the day after the drift retrains, even before the drifted day itself has run:
    # the decision comes from the data, not from the order in which runs finish
    after = pipeline.ensure_model(GroupDay.of(config, "pumps", day6))
    assert after["trained"] and "drift on 2026-03-05" in after["reason"]

    during = pipeline.ensure_model(GroupDay.of(config, "pumps", DRIFT_FROM))
    assert during["model_version_id"] == "pumps/v0001" and not during["trained"]
    pipeline.extract(GroupDay.of(config, "pumps", DRIFT_FROM))
    summary = detect(GroupDay.of(config, "pumps", DRIFT_FROM), during["path"])
    assert summary["drift"] is True and summary["n_events"] == 0
    run = latest_run(get_engine(config.database.url), "pumps", DRIFT_FROM)
    assert run["status"] == "drift" and "drift: retrain" in run["message"]

    again = pipeline.ensure_model(GroupDay.of(config, "pumps", day6))
    assert again["model_version_id"] == after["model_version_id"] and not again["trained"]
