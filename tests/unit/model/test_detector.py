"""Detector: trains on seeded synthetic data, finds injected anomalies, and survives save -> load."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from conftest import REPO
from tsad.config import (DetectorConfig, ModelConfig, ThresholdConfig, TrainingConfig,
                         WindowConfig)
from tsad.detection.drift import check_drift
from tsad.errors import ModelError
from tsad.evaluation.metrics import average_precision
from tsad.model import registry
from tsad.model.detector import Detector
from tsad.model.networks import CrossChannelBlend, build_detector_network
from tsad.model.score_rule import (ScoreRule, is_short_range, persistence_factor,
                                   smoothing_rows, training_seconds)
from tsad.model.smoothing import moving_average

FIXTURES = REPO / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSAD_THREADS", "1")  # 2 shared cores: one thread each is faster


def synthetic(n: int, seed: int) -> pd.DataFrame:
    """Three correlated channels driven by one cycle, plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    drive = np.sin(2 * np.pi * t / 144) + 0.3 * np.sin(2 * np.pi * t / 37)
    data = np.stack([10 + 3 * drive, 50 - 5 * drive, 2 * drive**2], axis=1)
    data += rng.normal(0, 0.1, data.shape)
    index = pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC", name="timestamp")
    return pd.DataFrame(data, index=index, columns=["a", "b", "c"])


def group(kind: str = "conv1d", epochs: int = 30, **threshold: object) -> DetectorConfig:
    return DetectorConfig(
        name="g", channels=["a", "b", "c"],
        window=WindowConfig(length=16, stride=4),
        model=ModelConfig(kind=kind, hidden=16, latent=4, epochs=epochs, batch_size=64,
                          learning_rate=3e-3, patience=5, seed=1),
        threshold=ThresholdConfig(**threshold),  # type: ignore[arg-type]
    )


def with_anomalies(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    frame = frame.copy()
    labels = np.zeros(len(frame), dtype=bool)
    frame.iloc[300:320, 0] += 4.0  # level shift on one channel
    frame.iloc[600:640, 1] = frame.iloc[600, 1]  # stuck sensor
    frame.iloc[800:805, 2] += 8.0  # spikes
    labels[300:320] = labels[600:640] = labels[800:805] = True
    return frame, labels


@pytest.fixture(scope="module")
def fitted() -> Detector:
    return Detector.fit(group(), synthetic(3000, seed=0), checkpoint=False)


def test_injected_anomalies_score_high(fitted: Detector) -> None:
    frame, labels = with_anomalies(synthetic(1000, seed=5))
    scores = fitted.score(frame)
    assert scores.window_scores.shape[1] == 3 and scores.point_scores.shape == (1000, 3)
    assert average_precision(scores.aggregate, labels) > 0.6
    assert (scores.aggregate[~labels] > fitted.threshold).mean() < 0.02
    assert check_drift(scores.aggregate, fitted.threshold, 0.5).drift is False


def test_metrics_record_the_baseline_and_copy_checks(fitted: Detector) -> None:
    m = fitted.metrics_
    for key in ("persistence_error", "model_error", "beats_persistence", "spike_error_ratio",
                "copies_input", "persistence_factor"):
        assert key in m
    assert m["copies_input"] is False  # the bottleneck stops it from reconstructing spikes


def test_a_weak_model_is_named_in_the_training_log(caplog: pytest.LogCaptureFixture) -> None:
    """One epoch of a 1-number code cannot beat x[t] = x[t-1] on a smooth series: say so."""
    smooth = synthetic(1500, seed=4).rolling(5, min_periods=1).mean()
    with caplog.at_level(logging.INFO, logger="tsad.model.checks"):
        detector = Detector.fit(dataclasses.replace(group(epochs=1), model=ModelConfig(
            kind="dense", hidden=4, latent=1, epochs=1, seed=0)), smooth, checkpoint=False)
    assert detector.metrics_["beats_persistence"] is False
    assert "not below the persistence baseline" in caplog.text
    assert "held-out error" in caplog.text  # the figures are logged even when they pass


@pytest.mark.parametrize("kind", ["dense", "lstm", "seq2seq"])
def test_other_network_kinds_train_and_score(kind: str) -> None:
    detector = Detector.fit(group(kind, epochs=3), synthetic(1500, seed=2), checkpoint=False)
    scores = detector.score(synthetic(300, seed=3))
    assert np.isfinite(scores.aggregate).all() and detector.threshold > 0


def test_per_channel_scope_puts_scores_in_threshold_units() -> None:
    detector = Detector.fit(group(epochs=5, scope="channel"), synthetic(1500, seed=2),
                            checkpoint=False)
    assert detector.threshold == 1.0 and detector.channel_thresholds_ is not None
    frame, labels = with_anomalies(synthetic(1000, seed=5))
    scores = detector.score(frame)
    np.testing.assert_allclose(scores.aggregate, scores.point_scores.max(axis=1))
    assert average_precision(scores.aggregate, labels) > 0.4


def test_a_sustained_departure_is_a_day_mostly_above_threshold(fitted: Detector) -> None:
    shifted = synthetic(600, seed=6) + np.array([15.0, 0.0, 0.0])  # the whole day moved
    aggregate = fitted.score(shifted).aggregate
    check = check_drift(aggregate, fitted.threshold, 0.5)
    assert check.drift and check.flagged_share > 0.5 and check.message.startswith("sustained departure")
    assert not check_drift(aggregate, fitted.threshold, 1.0).drift


def test_persistence_factor_and_moving_average_by_hand() -> None:
    rng = np.random.default_rng(0)
    white, walk = rng.normal(size=5000), np.cumsum(rng.normal(size=5000))
    factor = persistence_factor(np.stack([white, walk], axis=1))
    assert factor[0] == pytest.approx(1.0, abs=0.1) and factor[1] > 100
    values = np.array([[1.0], [2.0], [np.nan], [4.0], [5.0]])
    np.testing.assert_allclose(moving_average(values, 3)[:, 0], [1.5, 1.5, np.nan, 4.5, 4.5])
    np.testing.assert_array_equal(moving_average(values, 1), values)


def test_save_load_gives_identical_scores(fitted: Detector, tmp_path: Path) -> None:
    version = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run",
                               group="g")
    assert version.id == "g/v0001"
    loaded = registry.load_detector(version)
    frame = synthetic(500, seed=9)
    np.testing.assert_array_equal(fitted.score(frame).point_scores, loaded.score(frame).point_scores)
    assert loaded.threshold == fitted.threshold and loaded.rule_ == fitted.rule_
    again = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run",
                               group="g")
    assert again.id == "g/v0002" and version.path.is_dir()  # never overwritten
    assert not list(tmp_path.glob("g/.tmp-*"))


def test_a_model_saved_before_score_rules_keeps_its_old_rule(fitted: Detector) -> None:
    state = fitted.state()
    for key in ("score_rule", "channel_weights", "channel_thresholds"):
        state.pop(key)
    old = Detector.from_state(fitted.config, state, fitted.network_.state_dict())
    assert old.rule_ == ScoreRule() and old.rule_.smoothing_rows == 1
    scores = old.score(synthetic(300, seed=3))
    raw = old.score_raw(old.scaler_.transform(synthetic(300, seed=3).to_numpy()), scores.timestamps)
    np.testing.assert_allclose(scores.aggregate, raw.point_scores.mean(axis=1), rtol=1e-6)


def test_a_model_saved_before_the_power_mean_keeps_the_plain_mean(fitted: Detector) -> None:
    """``smoothing_power`` came later: a stored rule without it smooths with the plain mean."""
    assert fitted.rule_.smoothing_power == ThresholdConfig().smoothing_power == 0.75
    state = fitted.state()
    state["score_rule"] = {k: v for k, v in state["score_rule"].items() if k != "smoothing_power"}
    old = Detector.from_state(fitted.config, state, fitted.network_.state_dict())
    frame = synthetic(300, seed=3)
    raw = old.score_raw(old.scaler_.transform(frame.to_numpy()), old.score(frame).timestamps)
    rows = int(old.rule_.smoothing_rows)
    expected = moving_average(raw.point_scores * old.weights_, rows).max(axis=1)
    np.testing.assert_allclose(old.score(frame).aggregate, expected, rtol=1e-5)
    assert not np.allclose(fitted.score(frame).aggregate, expected, rtol=1e-3)


def test_tampered_or_missing_artifact_is_refused(fitted: Detector, tmp_path: Path) -> None:
    version = registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 2), "test-run",
                               group="g")
    weights = version.path / "weights.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # flip the last byte
    with pytest.raises(ModelError, match="does not match its manifest checksum"):
        registry.load_detector(version)
    weights.unlink()
    with pytest.raises(ModelError, match="is missing"):
        registry.load_detector(version)


def test_version_selection_never_uses_a_model_trained_on_the_scored_day(fitted: Detector, tmp_path: Path) -> None:
    registry.publish(tmp_path, fitted, date(2026, 1, 1), date(2026, 1, 7), "r1", group="g")
    registry.publish(tmp_path, fitted, date(2026, 1, 3), date(2026, 1, 9), "r2", group="g")
    assert registry.select_version(tmp_path, "g", date(2026, 1, 8)).version == 1
    assert registry.select_version(tmp_path, "g", date(2026, 1, 10)).version == 2
    assert registry.select_version(tmp_path, "g", date(2026, 1, 7)) is None
    current = registry.select_version(tmp_path, "g", date(2026, 1, 10))
    training = TrainingConfig()
    assert registry.retrain_reason(current, fitted.config, training, date(2026, 1, 10)) is None
    assert "days old" in registry.retrain_reason(current, fitted.config, training,
                                                 date(2026, 1, 30))
    assert registry.retrain_reason(current, fitted.config, training, date(2026, 1, 10),
                                   force=True)
    changed = dataclasses.replace(fitted.config, window=WindowConfig(length=8))
    assert "settings changed" in registry.retrain_reason(current, changed, training,
                                                         date(2026, 1, 10))


def broken_correlation(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Channel ``b`` mirrored about its mean for 120 rows: every value stays in its normal range,
    only its relation to ``a`` and ``c`` breaks."""
    frame = frame.copy()
    labels = np.zeros(len(frame), dtype=bool)
    segment = frame.iloc[400:520, 1]
    frame.iloc[400:520, 1] = 2 * segment.mean() - segment
    labels[400:520] = True
    return frame, labels


def test_a_broken_correlation_scores_high(fitted: Detector) -> None:
    assert isinstance(fitted.network_, CrossChannelBlend)  # the default blends in the prediction
    frame, labels = broken_correlation(synthetic(1000, seed=7))
    scores = fitted.score(frame)
    assert average_precision(scores.aggregate, labels) > 0.85
    assert (scores.aggregate[~labels] > fitted.threshold).mean() < 0.02


def test_cross_channel_prediction_by_hand() -> None:
    """b = 2a, c independent. Behind an autoencoder that copies its input (the worst case), a
    shift of b by 3 still leaves half of the prediction's miss: (0.5 * 3)² on b."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    series = np.stack([a, 2 * a + rng.normal(0, 0.01, 5000), rng.normal(size=5000)], axis=1)
    blend = CrossChannelBlend(nn.Identity(), 3, weight=0.5)
    blend.fit_predictor(series)
    matrix = blend.predictor.numpy()
    np.testing.assert_allclose(np.diag(matrix), 0.0, atol=1e-6)
    assert matrix[0, 1] == pytest.approx(2.0, abs=0.01) and abs(matrix[2, 1]) < 0.01
    window = torch.zeros(1, 4, 3)
    window[..., 0], window[..., 1] = 1.0, 2.0  # on the normal relation: nothing to report
    shifted = window.clone()
    shifted[..., 1] += 3.0
    with torch.inference_mode():
        normal_error = ((blend(window) - window) ** 2).mean(dim=(0, 1))
        shifted_error = ((blend(shifted) - shifted) ** 2).mean(dim=(0, 1))
    assert float(normal_error.max()) < 1e-3
    assert float(shifted_error[1]) == pytest.approx((0.5 * 3.0) ** 2, rel=0.02)
    assert float(shifted_error[2]) < 1e-3  # the unrelated channel is not blamed


def test_cross_channel_zero_is_the_plain_autoencoder() -> None:
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="cross_channel"):
            ModelConfig(cross_channel=bad)
    assert isinstance(build_detector_network(ModelConfig(), 3, 16), CrossChannelBlend)
    plain = build_detector_network(ModelConfig(kind="conv1d", cross_channel=0.0), 3, 16)
    assert not isinstance(plain, CrossChannelBlend)
    assert not isinstance(build_detector_network(ModelConfig(), 1, 16), CrossChannelBlend)


def test_a_model_saved_without_the_blend_loads_as_it_was() -> None:
    old_group = group(epochs=2)
    old_group = dataclasses.replace(old_group, model=dataclasses.replace(old_group.model,
                                                                         cross_channel=0.0))
    old = Detector.fit(old_group, synthetic(1500, seed=2), checkpoint=False)
    loaded = Detector.from_state(group(epochs=2), old.state(), old.network_.state_dict())
    assert not isinstance(loaded.network_, CrossChannelBlend)
    frame = synthetic(300, seed=3)
    np.testing.assert_array_equal(old.score(frame).point_scores, loaded.score(frame).point_scores)


def test_slow_channel_discount_only_for_training_ranges_of_few_windows() -> None:
    cfg = ThresholdConfig()  # fewer than 20 windows' worth of rows
    seconds = pd.date_range("2026-01-01", periods=400, freq="1s", tz="UTC")  # SKAB's protocol
    hours = pd.date_range("2026-01-01", periods=400, freq="3min", tz="UTC")  # 20 hours
    assert is_short_range(cfg, seconds, 1, 32) and is_short_range(cfg, hours, 180, 32)
    coarse = pd.date_range("2026-01-01", periods=3 * 288, freq="5min", tz="UTC")  # 3 days
    assert not is_short_range(cfg, coarse, 300, 32) and is_short_range(cfg, coarse, 300, 64)
    assert not is_short_range(ThresholdConfig(short_range_windows=0), seconds, 1, 32)
    # a span in seconds, when set, replaces the window count
    assert training_seconds(seconds, 1) == 400.0
    assert not is_short_range(ThresholdConfig(short_range_seconds=300), seconds, 1, 32)
    frame = synthetic(1500, seed=2)
    long = Detector.fit(group(epochs=2), frame, checkpoint=False)  # 1500 rows, windows of 16
    assert long.rule_.effective_samples == 0.0
    short = Detector.fit(group(epochs=2), frame.iloc[:300], checkpoint=False)
    assert short.rule_.effective_samples == 100.0


def test_default_spans_are_rows_never_seconds() -> None:
    cfg = ThresholdConfig()
    assert cfg.smoothing_seconds is None and cfg.short_range_seconds is None
    assert smoothing_rows(cfg, 1) == smoothing_rows(cfg, 180) == cfg.smoothing_rows
    assert smoothing_rows(ThresholdConfig(smoothing_seconds=120), 1) == 120
    assert smoothing_rows(ThresholdConfig(smoothing_seconds=120), 60) == 2


@pytest.mark.parametrize("rows", [900, 3000])
def test_the_same_series_at_two_sampling_steps_gets_the_same_flags(rows: int) -> None:
    """Issue 12: no default depends on the sampling step. One series, stamped every minute and
    every three minutes, trains the same model, rule and threshold and flags the same rows."""
    train = synthetic(rows, seed=4)
    test, labels = with_anomalies(synthetic(1000, seed=5))
    flags = []
    for step in (60, 180):
        def restamped(frame: pd.DataFrame) -> pd.DataFrame:
            return frame.set_axis(pd.date_range("2026-01-01", periods=len(frame),
                                                freq=f"{step}s", tz="UTC", name="timestamp"))

        config = dataclasses.replace(group(), sampling_seconds=step)
        detector = Detector.fit(config, restamped(train), checkpoint=False)
        scores = detector.score(restamped(test))
        flags.append(scores.aggregate > detector.threshold)
    assert flags[0][labels].mean() > 0.3  # the check is about flags that exist
    assert (flags[0] == flags[1]).mean() >= 0.99


def test_a_model_published_by_tsad_0_1_loads_and_scores_as_it_did(tmp_path: Path) -> None:
    """A version from before DetectorConfig (its config.json is the whole group, source and
    alerts included; state.json holds the rule as a dict) loads, and scores exactly as the
    code that published it did (expected_scores.json was written by tsad 0.1 at 8bb0b36)."""
    import json
    import shutil

    shutil.copytree(FIXTURES / "registry_v0_1", tmp_path, dirs_exist_ok=True)
    version = registry.select_version(tmp_path, "pumps", date(2026, 12, 1))
    assert version is not None and version.id == "pumps/v0001"
    detector = registry.load_detector(version, ["flow", "suction_pressure",
                                                "discharge_pressure", "motor_current",
                                                "motor_temp", "vibration"])
    expected = json.loads((tmp_path / "pumps" / "expected_scores.json").read_text())
    assert detector.threshold == expected["threshold"]
    mean, scale = detector.scaler_.mean, detector.scaler_.scale
    rng = np.random.default_rng(42)
    t = np.arange(300)
    data = mean + scale * (0.8 * np.sin(2 * np.pi * t / 97)[:, None]
                           + rng.normal(0, 0.3, (300, 6)))
    data[150:160, 4] += 4 * scale[4]
    index = pd.date_range("2026-11-20", periods=300, freq="60s", tz="UTC", name="timestamp")
    scores = detector.score(pd.DataFrame(data, index=index, columns=detector.channels))
    want = np.array([np.nan if v is None else v for v in expected["aggregate"]])
    np.testing.assert_allclose(scores.aggregate, want, rtol=1e-6)
    assert "source" not in detector.config.to_dict()  # nothing of the source is kept


def _sine_frame(channels: int, n: int = 3000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.arange(n)[:, None]
    values = np.sin(t / 30 + np.arange(channels)) + 0.1 * rng.normal(size=(n, channels))
    return pd.DataFrame(values, columns=[f"c{j}" for j in range(channels)],
                        index=pd.date_range("2026-01-01", periods=n, freq="60s", tz="UTC",
                                            name="timestamp"))


@pytest.mark.parametrize("channels", [1, 50])
def test_the_default_network_does_not_copy_one_channel_or_fifty(channels: int) -> None:
    """Issue 12 item 5: the default conv1d's code (8 x 32/4 = 64 numbers) could hold a whole
    one-channel window; the bottleneck is narrowed, and a model that still copies retrains."""
    frame = _sine_frame(channels)
    config = DetectorConfig(name="g", channels=list(frame.columns),
                            model=ModelConfig(epochs=8 if channels > 1 else 100))
    detector = Detector.fit(config, frame, checkpoint=False)
    assert detector.metrics_["copies_input"] is False
    assert detector.metrics_["latent"] * 8 <= 0.5 * 32 * channels
    again = Detector.from_state(config, json.loads(json.dumps(detector.state())),
                                detector.network_.state_dict())
    np.testing.assert_allclose(again.score(frame).aggregate, detector.score(frame).aggregate)


def test_a_model_that_keeps_copying_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import tsad.model.detector as detector_module

    monkeypatch.setattr(detector_module, "MAX_SHRINKS", 0)  # no narrower retry allowed
    frame = _sine_frame(1)
    with pytest.raises(ModelError, match="copies its input even with model.latent=2.*not "
                                         "published"):
        Detector.fit(DetectorConfig(name="g", channels=["c0"]), frame, checkpoint=False)


def test_a_held_out_part_that_is_all_zeros_gets_a_floor_and_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """Issue 12 item 1: a constant held-out tail once gave a threshold of ~0, so a quarter of
    later normal rows were flagged, silently."""
    rng = np.random.default_rng(0)
    frame = _sine_frame(1)
    frame.iloc[2400:, 0] = 0.0  # the held-out fifth: a flat line
    with caplog.at_level(logging.WARNING, logger="tsad.model.detector"):
        detector = Detector.fit(DetectorConfig(name="g", channels=["c0"]), frame,
                                checkpoint=False)
    assert "['c0'] were constant or reconstructed exactly" in caplog.text
    assert detector.metrics_["degenerate_channels"] == ["c0"] and detector.threshold > 1.0
    later = _sine_frame(1).set_axis(frame.index + pd.Timedelta(days=5))
    later.iloc[:, 0] += 0.02 * rng.normal(size=len(later))
    flagged = np.nanmean(detector.score(later).aggregate > detector.threshold)
    assert flagged < 0.02


def test_the_threshold_range_is_stored_and_a_short_held_out_part_warned(
        caplog: pytest.LogCaptureFixture) -> None:
    from tsad.airflow_layer.ui.pages import _threshold_range

    frame = synthetic(3000, seed=6)
    long = Detector.fit(group(epochs=2), frame, checkpoint=False)
    found = long.state()["metrics"]["threshold_range"]
    assert found["lower"] <= long.threshold <= found["upper"] and found["n_blocks"] >= 5
    assert "independent blocks" in _threshold_range(found)
    with caplog.at_level(logging.WARNING, logger="tsad.model.detector"):
        short = Detector.fit(group(epochs=2), frame.iloc[:420], checkpoint=False)
    found = short.metrics_["threshold_range"]
    assert found["lower"] is None and "is unknown" in found["note"]
    assert any("is unknown" in r.getMessage() and "group g" in r.getMessage()
               for r in caplog.records)
    assert _threshold_range(found).startswith("unknown: the threshold rests on")
