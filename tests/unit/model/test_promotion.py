"""A retrained model becomes current only if it is no worse than the current one (issue 12,
item 3): fewer or as many false alarms on held-out normal rows, and it still finds the
anomalies injected into them. The comparison is stored with the candidate."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsad.config import DetectorConfig, ModelConfig
from tsad.model.detector import Detector
from tsad.model.promotion import compare
from tsad.model.thresholds import FixedThreshold


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None]
    values = np.sin(t / 40 + np.arange(3)) + 0.2 * rng.normal(size=(n, 3))
    return pd.DataFrame(values, columns=["a", "b", "c"],
                        index=pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC",
                                            name="timestamp"))


@pytest.fixture(scope="module")
def current() -> Detector:
    config = DetectorConfig(name="g", channels=["a", "b", "c"], model=ModelConfig(epochs=15))
    return Detector.fit(config, frame(4000, 0), checkpoint=False)


def with_threshold(detector: Detector, factor: float) -> Detector:
    other = copy.copy(detector)
    other.threshold_ = FixedThreshold(detector.threshold * factor).fit(np.ones(1))
    return other


def test_a_candidate_like_the_current_model_is_promoted(current: Detector) -> None:
    result = compare(with_threshold(current, 1.0), current, frame(2000, 1))
    assert result.promoted and result.injected == 8
    assert result.candidate_found == result.current_found >= 6


def test_a_candidate_that_learned_a_fault_misses_anomalies_and_is_rejected(
        current: Detector) -> None:
    """A fault in the training days lifts the threshold: the injected shifts go unseen."""
    result = compare(with_threshold(current, 8.0), current, frame(2000, 1))
    assert not result.promoted and result.candidate_found < result.current_found - 1
    assert "injected anomalies" in result.reason


def test_a_raise_a_person_asked_for_is_not_held_against_the_candidate(
        current: Detector) -> None:
    """Raised over rows marked false alarms (``tsad.model.known_normal``), the candidate is
    judged at the threshold its training gave: the same threshold as a fault-lifted one would
    be rejected, this one is promoted."""
    raised = with_threshold(current, 8.0)
    raised.metrics_ = {**current.metrics_,
                       "known_normal": {"raised_from": current.threshold, "periods": 1}}
    result = compare(raised, current, frame(2000, 1))
    assert result.promoted and result.candidate_found == result.current_found
    assert result.judged_threshold == pytest.approx(current.threshold)
    assert raised.threshold == pytest.approx(8.0 * current.threshold)  # the candidate keeps it
    assert compare(with_threshold(current, 1.0), current, frame(2000, 1)).judged_threshold is None


def test_a_candidate_that_flags_normal_rows_is_rejected(current: Detector) -> None:
    result = compare(with_threshold(current, 0.3), current, frame(2000, 1))
    assert not result.promoted and result.candidate_far > max(result.current_far, 0.02)
    assert "held-out normal rows" in result.reason


def test_a_rejected_retrain_keeps_the_current_model_and_a_rerun_keeps_the_decision(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's side: the rejected version is published (every attempt is kept) with its
    comparison, recorded as 'rejected', never selected; a re-run of the day does not retrain."""
    import yaml

    from conftest import small_plant
    from tsad import pipeline
    from tsad.config import load_config
    from tsad.evaluation.simulator import simulate
    from tsad.model import registry
    from tsad.model.promotion import Comparison
    from tsad.storage.engine import get_engine
    import tsad.pipeline.modelling as modelling

    data = small_plant(tmp_path)
    data["groups"] = data["groups"][:1]
    (tmp_path / "tsad.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "tsad.yaml")
    simulate(config, date(2026, 3, 1), 12, [], seed=2)
    first = pipeline.ensure_model(pipeline.GroupDay.of(config, "pumps", date(2026, 3, 4)))
    assert first["model_version_id"] == "pumps/v0001"

    def worse(candidate: Detector, current: Detector, held_out: pd.DataFrame,
              seed: int = 0) -> Comparison:
        return Comparison(0.0, 0.0, 1, 8, 8, False, "finds 1 of 8 injected anomalies against 8")

    monkeypatch.setattr(modelling, "compare", worse)
    aged = pipeline.GroupDay.of(config, "pumps", date(2026, 3, 12))  # older than 7 days: retrain
    result = pipeline.ensure_model(aged)
    assert result["model_version_id"] == "pumps/v0001" and result["rejected"] == "pumps/v0002"
    rejected = registry.list_versions(config.models_dir, "pumps")[-1]
    assert rejected.manifest["metrics"]["promotion"]["against"] == "pumps/v0001"
    assert registry.select_version(config.models_dir, "pumps", date(2026, 3, 13)).id == \
        "pumps/v0001"
    with get_engine(config.database.url).connect() as conn:
        status = conn.exec_driver_sql(
            "SELECT status FROM model_version WHERE id = 'pumps/v0002'").scalar()
    assert status == "rejected"
    again = pipeline.ensure_model(aged)  # a re-run: the day already tried
    assert again["model_version_id"] == "pumps/v0001" and not again["trained"]
    assert len(registry.list_versions(config.models_dir, "pumps")) == 2
