"""Detector: trains on seeded synthetic data, finds injected anomalies, and survives save -> load."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsad import registry
from tsad.config import GroupConfig, ModelConfig, SourceConfig, WindowConfig
from tsad.detector import Detector
from tsad.errors import ModelError


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Three correlated channels driven by one cycle, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    drive = np.sin(2 * np.pi * t / 144) + 0.3 * np.sin(2 * np.pi * t / 37)
    data = np.stack([10 + 3 * drive, 50 - 5 * drive, 2 * drive**2], axis=1)
    data += rng.normal(0, 0.1, data.shape)
    index = pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC", name="timestamp")
    return pd.DataFrame(data, index=index, columns=["a", "b", "c"])


def group(kind: str = "conv1d", epochs: int = 30) -> GroupConfig:
    return GroupConfig(
        name="g", channels=["a", "b", "c"],
        source=SourceConfig(kind="sql", url="sqlite:///x.db", table="t"),
        window=WindowConfig(length=16, stride=4),
        model=ModelConfig(kind=kind, hidden=16, latent=4, epochs=epochs, batch_size=64,
                          learning_rate=3e-3, seed=1),
    )


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    order = np.argsort(-scores)
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


@pytest.fixture(scope="module")
def fitted() -> Detector:
    return Detector.fit(group(), synthetic(3000, seed=0))


def test_injected_anomalies_score_high(fitted: Detector) -> None:
    frame = synthetic(1000, seed=5)
    labels = np.zeros(len(frame), dtype=bool)
    frame.iloc[300:320, 0] += 4.0  # level shift on one channel
    frame.iloc[600:640, 1] = frame.iloc[600, 1]  # stuck sensor
    frame.iloc[800:805, 2] += 8.0  # spikes
    labels[300:320] = labels[600:640] = labels[800:805] = True
    scores = fitted.score(frame)
    assert scores.window_scores.shape[1] == 3 and scores.point_scores.shape == (1000, 3)
    assert auc_pr(np.nan_to_num(scores.aggregate), labels) > 0.55
    normal = scores.aggregate[~labels]
    assert (normal > fitted.threshold).mean() < 0.02


def test_metrics_record_the_baseline_and_copy_checks(fitted: Detector) -> None:
    m = fitted.metrics_
    for key in ("persistence_error", "model_error", "beats_persistence", "spike_error_ratio", "copies_input"):
        assert key in m
    assert m["copies_input"] is False  # the bottleneck stops it from reconstructing spikes


@pytest.mark.parametrize("kind", ["dense", "lstm"])
def test_other_network_kinds_train_and_score(kind: str) -> None:
    detector = Detector.fit(group(kind, epochs=5), synthetic(1500, seed=2))
    scores = detector.score(synthetic(300, seed=3))
    assert np.isfinite(scores.aggregate).all() and detector.threshold > 0


def test_save_load_gives_identical_scores(fitted: Detector, tmp_path: Path) -> None:
    version = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run")
    assert version.id == "g/v0001"
    loaded = registry.load_detector(version)
    frame = synthetic(500, seed=9)
    np.testing.assert_array_equal(fitted.score(frame).point_scores, loaded.score(frame).point_scores)
    assert loaded.threshold == fitted.threshold
    again = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run")
    assert again.id == "g/v0002" and version.path.is_dir()  # never overwritten
    assert not list(tmp_path.glob("g/.tmp-*"))


def test_tampered_or_missing_artifact_is_refused(fitted: Detector, tmp_path: Path) -> None:
    version = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run")
    weights = version.path / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelError, match="does not match its manifest checksum"):
        registry.load_detector(version)
    weights.unlink()
    with pytest.raises(ModelError, match="is missing"):
        registry.load_detector(version)


def test_version_selection_never_uses_a_model_trained_on_the_scored_day(fitted: Detector, tmp_path: Path) -> None:
    registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 7), "r1")
    registry.publish(tmp_path, fitted, date(2026, 1, 3), date(2026, 1, 9), "r2")
    assert registry.select_version(tmp_path, "g", date(2026, 1, 8)).version == 1
    assert registry.select_version(tmp_path, "g", date(2026, 1, 10)).version == 2
    assert registry.select_version(tmp_path, "g", date(2026, 1, 7)) is None
    current = registry.select_version(tmp_path, "g", date(2026, 1, 10))
    assert registry.retrain_reason(current, fitted.group, date(2026, 1, 10)) is None
    assert "days old" in registry.retrain_reason(current, fitted.group, date(2026, 1, 30))
    assert registry.retrain_reason(current, fitted.group, date(2026, 1, 10), force=True)
