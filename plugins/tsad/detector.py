"""A detector is a scaler, an autoencoder and a threshold, fitted together on normal data.

``fit`` holds out the last part of the training range: early stopping and the threshold both use
errors on those unseen windows. It also measures the model against the persistence baseline
(x[t] = x[t-1]) and checks that it does not simply copy its input; both go into ``metrics``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsad.config import GroupConfig
from tsad.device import resolve_device
from tsad.errors import DataError
from tsad.networks import build_network
from tsad.scaling import ChannelScaler
from tsad.thresholds import Threshold, make_threshold, threshold_from_dict
from tsad.training import train
from tsad.scoring import Scores, score_series
from tsad.windows import valid_starts, window_view

log = logging.getLogger(__name__)

SPIKE_SIZE = 6.0  # in training standard deviations
MIN_WINDOWS = 64


class Detector:
    """Fit on normal data, then score any frame with the same channels."""

    def __init__(self, group: GroupConfig, scaler: ChannelScaler, network: torch.nn.Module,
                 threshold: Threshold, metrics: dict[str, Any]) -> None:
        self.group = group
        self.scaler_ = scaler
        self.network_ = network
        self.threshold_ = threshold
        self.metrics_ = metrics

    @property
    def channels(self) -> list[str]:
        return list(self.group.channels)

    @property
    def threshold(self) -> float:
        return float(self.threshold_.value_)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, group: GroupConfig, frame: pd.DataFrame, device: torch.device | None = None) -> Detector:
        """Train on ``frame`` (normal data, config channels); threshold on held-out errors."""
        device = device or resolve_device()
        length, model_cfg = group.window.length, group.model
        raw = _channel_array(frame, group.channels, "training data")
        scaler = ChannelScaler.fit(raw)
        series = scaler.transform(raw)
        split = int(len(series) * (1 - model_cfg.validation_fraction))
        starts = valid_starts(series, np.arange(max(len(series) - length + 1, 0)), length)
        train_starts, val_starts = starts[starts + length <= split], starts[starts >= split]
        if len(train_starts) < MIN_WINDOWS or len(val_starts) < MIN_WINDOWS // 8:
            raise DataError(
                f"group {group.name!r}: only {len(train_starts)} training and {len(val_starts)} "
                f"validation windows of length {length}; extend 'training.days' or fix the gaps"
            )
        torch.manual_seed(model_cfg.seed)
        network = build_network(model_cfg, len(group.channels), length).to(device)
        report = train(network, series, train_starts, val_starts, length, model_cfg, device)
        network = network.cpu().eval()
        detector = cls(group, scaler, network, make_threshold(group.threshold), {})
        held_out = detector._score_scaled(series[split:], pd.DatetimeIndex(frame.index[split:]))
        errors = held_out.aggregate[np.isfinite(held_out.aggregate)]
        detector.threshold_.fit(errors)
        detector.metrics_ = {
            "device": str(device),
            "epochs_run": report.epochs_run,
            "best_epoch": report.best_epoch,
            "train_loss": report.train_losses[report.best_epoch - 1],
            "val_loss": report.best_val_loss,
            "train_seconds": round(report.seconds, 3),
            "n_train_windows": int(len(train_starts)),
            "n_val_windows": int(len(val_starts)),
            "val_error_median": float(np.median(errors)),
            **_baseline_checks(network, series[split:], length, model_cfg.seed, float(np.mean(errors))),
        }
        _warn_if_weak(group.name, detector.metrics_)
        return detector

    # ------------------------------------------------------------------ scoring

    def score(self, frame: pd.DataFrame) -> Scores:
        """Per-window, per-timestamp and per-channel errors of ``frame`` (wide, config channels)."""
        raw = _channel_array(frame, self.channels, "scored data")
        return self._score_scaled(self.scaler_.transform(raw), pd.DatetimeIndex(frame.index))

    def _score_scaled(self, series: np.ndarray, timestamps: pd.DatetimeIndex) -> Scores:
        window = self.group.window
        return score_series(self.network_, series, timestamps, window.length, window.stride)

    # ------------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """Everything but the weights, as JSON types."""
        return {
            "channels": self.channels,
            "scaler": self.scaler_.to_dict(),
            "threshold": self.threshold_.to_dict(),
            "metrics": self.metrics_,
        }

    @classmethod
    def from_state(cls, group: GroupConfig, state: dict[str, Any],
                   weights: dict[str, torch.Tensor]) -> Detector:
        network = build_network(group.model, len(group.channels), group.window.length)
        network.load_state_dict(weights)
        return cls(group, ChannelScaler.from_dict(state["scaler"]), network.eval(),
                   threshold_from_dict(state["threshold"]), dict(state["metrics"]))


def _channel_array(frame: pd.DataFrame, channels: list[str], what: str) -> np.ndarray:
    missing = [c for c in channels if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks channel(s) {missing}; it has {list(frame.columns)}")
    return frame[channels].to_numpy(dtype=np.float64)


def _baseline_checks(network: torch.nn.Module, held_out: np.ndarray, length: int, seed: int,
                     model_error: float) -> dict[str, Any]:
    """Persistence-baseline error and the copy-the-input check on held-out data (scaled units)."""
    finite = held_out[np.isfinite(held_out).all(axis=1)]
    persistence = float(np.mean((finite[1:] - finite[:-1]) ** 2)) if len(finite) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    starts = valid_starts(held_out, np.arange(max(len(held_out) - length + 1, 0)), length)
    picked = rng.choice(starts, size=min(256, len(starts)), replace=False)
    windows = window_view(held_out, length)[picked].copy()
    rows = np.arange(len(picked))
    at, channel = rng.integers(1, length - 1, len(picked)), rng.integers(0, held_out.shape[1], len(picked))
    windows[rows, at, channel] += SPIKE_SIZE
    with torch.inference_mode():
        recon = network(torch.from_numpy(windows)).numpy()
    residual = windows[rows, at, channel] - recon[rows, at, channel]
    spike_error_ratio = float(np.mean(residual**2) / SPIKE_SIZE**2)
    return {
        "persistence_error": persistence,
        "model_error": model_error,
        "beats_persistence": bool(model_error < persistence),
        "spike_error_ratio": spike_error_ratio,
        "copies_input": bool(spike_error_ratio < 0.5),
    }


def _warn_if_weak(group: str, metrics: dict[str, Any]) -> None:
    if not metrics["beats_persistence"]:
        log.warning(
            "group %s: the autoencoder's held-out error %.4f is not below the persistence baseline "
            "x[t]=x[t-1] (%.4f): it predicts no better than repeating the last reading",
            group, metrics["model_error"], metrics["persistence_error"])
    if metrics["copies_input"]:
        log.warning(
            "group %s: the autoencoder reconstructs %.0f%% of injected spikes: it copies its input "
            "and will miss anomalies; shrink 'model.latent'", group, 100 * (1 - metrics["spike_error_ratio"]))
