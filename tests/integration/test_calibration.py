"""Issue 12, item 1: on normal data nobody chose a default on, does the default threshold keep
its promise? ``threshold.q`` 0.99 promises that 1 % of normal rows score above the threshold.
On new normal days of a simulator seed never used for anything else (seed 41), every setting
at its default, a model trained on 3 days (a new deployment's provisional model) does NOT keep
it: 4.4 % (pumps) and 8.2 % (boiler) of the next two days' rows score above it (docs/quality.md,
*Does the threshold keep its promise*). The test states the requirement and is marked as an
expected failure (strict: it fails the suite the day it starts to pass, so the docs get
updated)."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsad.config import DEFAULT_CONFIG, DetectorConfig, SourceConfig, load_config
from tsad.evaluation.simulated import _read_day
from tsad.evaluation.simulator import simulate
from tsad.model.detector import Detector

SEED, TRAIN_DAYS, TEST_DAYS = 41, 3, 2
START = date(2027, 5, 3)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_THREADS", "1")


def normal_days(tmp: Path) -> dict[str, list[pd.DataFrame]]:
    base = load_config(DEFAULT_CONFIG)
    groups = [dataclasses.replace(g, source=SourceConfig(
        kind="files", layout="wide", format="parquet", path=f"{tmp}/{g.name}/{{date}}.parquet"))
        for g in base.groups]
    simulate(dataclasses.replace(base, groups=groups), START, TRAIN_DAYS + TEST_DAYS, [],
             seed=SEED)
    days = [START + timedelta(days=i) for i in range(TRAIN_DAYS + TEST_DAYS)]
    return {g.name: [_read_day(tmp / g.name / f"{d}.parquet") for d in days] for g in groups}


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="issue 12 open: a 3-day model's threshold is exceeded by 4-8x its "
                          "promise on the next normal days (docs/quality.md)")
def test_the_default_threshold_keeps_its_false_alarm_promise_on_new_normal_days(
        tmp_path: Path) -> None:
    promised = 1 - 0.99
    for name, frames in normal_days(tmp_path).items():
        config = DetectorConfig(name=name, channels=list(frames[0].columns))
        config = dataclasses.replace(config, model=dataclasses.replace(config.model, epochs=15))
        detector = Detector.fit(config, pd.concat(frames[:TRAIN_DAYS]), checkpoint=False)
        assert detector.config.threshold.params == {} and detector.threshold_.params() == {
            "q": 0.99}  # the default strategy and its default
        above = np.concatenate([detector.score(f).aggregate for f in frames[TRAIN_DAYS:]])
        above = above[np.isfinite(above)] > detector.threshold
        assert above.mean() <= 1.5 * promised, (name, above.mean())
        found = detector.metrics_["threshold_range"]  # the range says so only in part
        assert found["n_blocks"] >= 5 and found["lower"] <= detector.threshold <= found["upper"]
