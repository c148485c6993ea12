"""Rows a person marked normal join the calibration (``tsad.model.known_normal``).

A rare normal manoeuvre in the training range that the held-out tail never shows scores above
a threshold fitted on that tail; marked known normal, it raises the threshold so it scores
below it by the margin, and the model says so. Without the mark nothing changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tsad.model.detector import Detector
from tsad.runs import runs
from tsad.model.thresholds import QuantileThreshold

from test_detector import group, synthetic  # noqa: E402

MANOEUVRE = slice(1000, 1040)


def with_manoeuvre() -> pd.DataFrame:
    """Three channels whose correlation bends for 40 rows once: normal, but never held out."""
    frame = synthetic(3000, seed=0)
    frame.iloc[MANOEUVRE, 0] += 0.8
    frame.iloc[MANOEUVRE, 1] -= 0.5
    return frame


@pytest.fixture(scope="module")
def plain_and_floored() -> tuple[Detector, Detector]:
    mask = np.zeros(3000, dtype=bool)
    mask[MANOEUVRE] = True
    config = group(epochs=8, margin=1.2)
    plain = Detector.fit(config, with_manoeuvre(), checkpoint=False)
    floored = Detector.fit(config, with_manoeuvre(), checkpoint=False, known_normal=mask)
    return plain, floored


def test_runs_of_a_mask() -> None:
    starts, stops = runs(np.array([0, 1, 1, 0, 1], dtype=bool))
    assert list(zip(starts.tolist(), stops.tolist())) == [(1, 3), (4, 5)]
    assert [r.size for r in runs(np.zeros(3, dtype=bool))] == [0, 0]


def test_raise_to_only_raises_and_says_why() -> None:
    threshold = QuantileThreshold(q=0.9, margin=2.0).fit(np.arange(100.0))
    before = threshold.value_
    assert not threshold.raise_to(1.0, "lower: ignored")
    assert threshold.value_ == before and threshold.note_ is None
    assert threshold.raise_to(500.0, "known normal")
    assert threshold.value_ == 1000.0 and threshold.note_ == "known normal"
    with pytest.raises(RuntimeError, match="not fitted"):
        QuantileThreshold(q=0.9).raise_to(1.0, "x")


def test_a_marked_manoeuvre_raises_the_threshold_above_it(
        plain_and_floored: tuple[Detector, Detector]) -> None:
    plain, floored = plain_and_floored
    around = with_manoeuvre().iloc[960:1080]
    peak = float(np.nanmax(plain.score(around).aggregate[40:80]))
    assert peak > plain.threshold, "the held-out tail never saw the manoeuvre"
    assert "known_normal" not in plain.metrics_

    known = floored.metrics_["known_normal"]
    assert known["periods"] == 1 and known["rows"] == 40
    assert known["raised_from"] == pytest.approx(plain.threshold)  # same seed, same network
    assert floored.threshold == pytest.approx(known["peak"] * 1.2)  # the margin above it
    assert np.nanmax(floored.score(around).aggregate[40:80]) < floored.threshold
    assert "false alarm" in floored.threshold_.note_
    assert floored.state()["threshold"]["value"] == floored.threshold  # stored with the model


def test_a_stronger_anomaly_is_still_flagged(plain_and_floored: tuple[Detector, Detector]
                                             ) -> None:
    _, floored = plain_and_floored
    frame = synthetic(1000, seed=5)
    frame.iloc[500:520, 2] += 10.0
    assert (floored.score(frame).aggregate[500:520] > floored.threshold).any()

