"""A detector is a scaler, an autoencoder, a score rule and a threshold, fitted together on normal data.

``fit`` holds out the last part of the training range for early stopping, the channel weights and
the threshold. It also measures the model against the persistence baseline (x[t] = x[t-1]) and
checks that it does not copy its input; both go into ``metrics`` and the training log.

Score rule (``threshold.*`` settings; stored with the model, so an old model keeps its rule):

1. Channels are standardised with the training scaler, the network reconstructs every window
   and squared errors become per-timestamp, per-channel errors (``tsad.windows``). With
   ``model.cross_channel`` > 0 the reconstruction blends the autoencoder's with a linear
   prediction of each channel from the others at the same timestep
   (``tsad.model.networks.CrossChannelBlend``: the autoencoder is trained alone, the prediction is
   fitted by least squares on the same training rows), so a channel that leaves the others
   keeps an error the autoencoder's window code would have rebuilt away.
2. Weights: ``normalise: mean`` divides each channel by its mean held-out error, so a one-channel
   anomaly is not drowned by noisier channels. When the training range is shorter than
   ``short_range_seconds`` (one day by default; ``discount_samples``), a channel whose training
   rows hold few independent values, n_eff = n / (2 R) with persistence factor
   R = var(x) / (var(x[t] - x[t-1]) / 2), is also divided by (effective_samples / n_eff)² when
   n_eff < effective_samples: a slow channel (a temperature over minutes of a test bench) has
   not shown its normal range yet, so its later levels are weak evidence. A day or more of
   training has seen the daily cycle; discounting there would hide sustained level shifts.
3. Smoothing: centred moving power mean over ``smoothing_seconds`` (rows = that / the group's
   ``sampling_seconds``; NaN ignored, uncovered points stay NaN): sustained departures stand
   out. With ``smoothing_power`` p < 1 it averages errors**p and raises the mean back to 1/p:
   p = 0.5 averages the errors' amplitude rather than their energy, so a short, strong burst
   does not lift the normal rows beside it above a long, weaker anomaly (docs/quality.md).
4. Aggregate: ``max`` over channels (default) or ``mean``.
5. Threshold: fitted on held-out single-point scores shrunk toward their mean (in the space
   the rule averages in, scores**p) by sqrt(max(1, rows / window length)), the factor by which
   averaging rows / length independent windows narrows a normal score's spread.
   ``scope: channel`` fits one threshold per channel, divides each channel by it and takes the
   max (threshold 1).

``score`` returns the processed per-channel scores and aggregate (``window_scores`` stay raw);
``postprocess`` applies steps 2-5 to raw scores (e.g. from ``tsad.model.streaming``); ``check_drift``
tells a day that moved away from training as a whole from an event.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsad.config import GroupConfig, ThresholdConfig
from tsad.model.device import resolve_device
from tsad.errors import DataError
from tsad.model.networks import CrossChannelBlend, autoencoder_of, build_detector_network
from tsad.model.scaling import ChannelScaler
from tsad.model.scoring import Scores, score_series
from tsad.model.smoothing import apply_rule, moving_average  # noqa: F401 (re-exported: step 3)
from tsad.model.thresholds import (ChannelThresholds, FixedThreshold, Threshold, make_threshold,
                             threshold_from_dict)
from tsad.model.training import train
from tsad.windows import valid_starts, window_view

log = logging.getLogger(__name__)

SPIKE_SIZE = 6.0  # in training standard deviations
MIN_WINDOWS = 64
LEGACY_RULE = {"normalise": "none", "smoothing_rows": 1, "aggregate": "mean", "scope": "aggregate"}


@dataclass(frozen=True)
class DriftCheck:
    """Whether a scored day moved away from the training data as a whole."""

    flagged_share: float
    drift: bool
    message: str


class Detector:
    """Fit on normal data, then score any frame with the same channels."""

    def __init__(self, group: GroupConfig, scaler: ChannelScaler, network: torch.nn.Module,
                 threshold: Threshold, metrics: dict[str, Any], rule: dict[str, Any] | None = None,
                 weights: np.ndarray | None = None,
                 channel_thresholds: ChannelThresholds | None = None) -> None:
        self.group = group
        self.scaler_ = scaler
        self.network_ = network
        self.threshold_ = threshold
        self.metrics_ = metrics
        self.rule_ = dict(rule or LEGACY_RULE)
        self.weights_ = np.ones(len(group.channels)) if weights is None else np.asarray(weights)
        self.channel_thresholds_ = channel_thresholds

    @property
    def channels(self) -> list[str]:
        return list(self.group.channels)

    @property
    def threshold(self) -> float:
        return float(self.threshold_.value_)

    @classmethod
    def fit(cls, group: GroupConfig, frame: pd.DataFrame, device: torch.device | None = None,
            checkpoint: bool = True) -> Detector:
        """Train on ``frame`` (normal data, config channels); rule and threshold on held-out rows.

        ``checkpoint=False`` skips per-epoch checkpoints (short evaluation fits).
        """
        device = device or resolve_device()
        length, model_cfg, cfg = group.window.length, group.model, group.threshold
        raw = _channel_array(frame, group.channels, "training data")
        scaler = ChannelScaler.fit(raw)
        series = scaler.transform(raw)
        split = int(len(series) * (1 - model_cfg.validation_fraction))
        starts = valid_starts(series, np.arange(max(len(series) - length + 1, 0)), length)
        train_starts, val_starts = starts[starts + length <= split], starts[starts >= split]
        if len(train_starts) < MIN_WINDOWS or len(val_starts) < MIN_WINDOWS // 8:
            raise DataError(f"group {group.name!r}: only {len(train_starts)} training and "
                            f"{len(val_starts)} validation windows of length {length}; extend "
                            "'training.days' or fix the gaps")
        torch.manual_seed(model_cfg.seed)
        network = build_detector_network(model_cfg, len(group.channels), length).to(device)
        autoencoder = autoencoder_of(network)
        key = f"{group.name}:{frame.index[0]}:{frame.index[-1]}" if checkpoint else None
        report = train(autoencoder, series, train_starts, val_starts, length, model_cfg, device,
                       checkpoint_key=key)
        network = network.cpu().eval()
        if isinstance(network, CrossChannelBlend):  # trained apart: the autoencoder alone
            network.fit_predictor(series[:split])
        detector = cls(group, scaler, network, make_threshold(cfg), {})
        raw_errors = detector.calibrate(series, split, pd.DatetimeIndex(frame.index))
        model_error = float(np.mean(raw_errors))
        detector.metrics_ = {
            "device": str(device), "epochs_run": report.epochs_run, "best_epoch": report.best_epoch,
            "train_loss": report.train_losses[report.best_epoch - 1],
            "val_loss": report.best_val_loss, "train_seconds": round(report.seconds, 3),
            "n_train_windows": int(len(train_starts)), "n_val_windows": int(len(val_starts)),
            "val_error_median": float(np.median(raw_errors)),
            "persistence_factor": persistence_factor(series[:split]).round(3).tolist(),
            **_baseline_checks(network, series[split:], length, model_cfg.seed, model_error),
        }
        _log_checks(group.name, detector.metrics_)
        return detector

    def calibrate(self, series: np.ndarray, split: int, timestamps: pd.DatetimeIndex) -> np.ndarray:
        """Steps 2-5 of the rule fitted on the held-out rows ``series[split:]`` of a scaled
        training range (channel weights from ``series[:split]``); returns their raw errors."""
        group, cfg = self.group, self.group.threshold
        rows = smoothing_rows(cfg, group.sampling_seconds)
        samples = discount_samples(cfg, training_seconds(timestamps, group.sampling_seconds))
        self.rule_ = {"normalise": cfg.normalise, "effective_samples": samples,
                      "smoothing_rows": rows, "smoothing_power": cfg.smoothing_power,
                      "aggregate": cfg.aggregate, "scope": cfg.scope}
        self.threshold_, self.channel_thresholds_ = make_threshold(cfg), None
        held_raw = self.score_raw(series[split:], timestamps[split:])
        raw_errors = held_raw.point_scores[np.isfinite(held_raw.point_scores).all(axis=1)]
        persistence = persistence_factor(series[:split])
        self.weights_ = channel_weights(raw_errors, persistence, split, cfg.normalise, samples)
        self.rule_["shrink"] = shrink = math.sqrt(max(1.0, rows / group.window.length))
        weighted = raw_errors * self.weights_
        if cfg.scope == "channel":
            self.channel_thresholds_ = ChannelThresholds(cfg).fit(
                narrowed(weighted, shrink, cfg.smoothing_power))
            self.threshold_ = FixedThreshold(1.0).fit(np.ones(1))
        else:
            self.threshold_.fit(narrowed(self._aggregate(weighted), shrink, cfg.smoothing_power))
        return raw_errors

    def score(self, frame: pd.DataFrame) -> Scores:
        """Scores of ``frame`` (wide, config channels) under the score rule (module docstring)."""
        raw = _channel_array(frame, self.channels, "scored data")
        return self.postprocess(self.score_raw(self.scaler_.transform(raw),
                                               pd.DatetimeIndex(frame.index)), inplace=True)

    def score_raw(self, series: np.ndarray, timestamps: pd.DatetimeIndex) -> Scores:
        """The model's reconstruction errors of a scaled series (steps 1 of the rule only)."""
        window = self.group.window
        return score_series(self.network_, series, timestamps, window.length, window.stride)

    def postprocess(self, raw: Scores, inplace: bool = False) -> Scores:
        """Steps 2-5 of the score rule on raw errors (e.g. from ``tsad.model.streaming``).

        ``inplace=True`` overwrites ``raw.point_scores`` (float32) instead of copying them: the
        rule then adds a few MB whatever the day's size (``tsad.model.smoothing``)."""
        points = raw.point_scores if inplace else np.array(raw.point_scores, dtype=np.float32)
        if points.shape[0] == 0:
            return replace(raw, point_scores=points, aggregate=np.empty(0))
        use_max = self.rule_["aggregate"] == "max" or self.channel_thresholds_ is not None
        divisors = None if self.channel_thresholds_ is None else self.channel_thresholds_.values_
        aggregate = apply_rule(points, self.weights_, int(self.rule_["smoothing_rows"]), divisors,
                               use_max, power=float(self.rule_.get("smoothing_power", 1.0)))
        return replace(raw, point_scores=points, aggregate=aggregate)

    def _aggregate(self, channel_scores: np.ndarray) -> np.ndarray:
        if channel_scores.shape[0] == 0:
            return np.empty(0)
        use_max = self.rule_["aggregate"] == "max" or self.channel_thresholds_ is not None
        with np.errstate(invalid="ignore"):
            out = channel_scores.max(axis=1) if use_max else channel_scores.mean(axis=1)
        return out.astype(np.float64)

    def check_drift(self, scores: Scores, limit: float | None = None) -> DriftCheck:
        """Drift: more than ``limit`` (default ``events.drift_share``) of the scored points lie
        above the threshold.

        Such a day is not one endless event but data that moved away from the training
        distribution as a whole (a new operating point, a recalibrated sensor, the season): it is
        recorded as "drift: retrain" and the next run retrains on recent data.
        """
        finite = np.isfinite(scores.aggregate)
        share = float((scores.aggregate[finite] > self.threshold).mean()) if finite.any() else 0.0
        limit = self.group.events.drift_share if limit is None else limit
        message = (f"drift: retrain. {share:.0%} of the day is above the threshold (limit "
                   f"{limit:.0%}): the data has moved away from the training range; the next run "
                   "retrains") if share > limit else ""
        return DriftCheck(share, share > limit, message)

    def state(self) -> dict[str, Any]:
        """Everything but the weights, as JSON types."""
        return {
            "channels": self.channels,
            "scaler": self.scaler_.to_dict(),
            "threshold": self.threshold_.to_dict(),
            "score_rule": self.rule_,
            "channel_weights": self.weights_.tolist(),
            "channel_thresholds": (None if self.channel_thresholds_ is None
                                   else self.channel_thresholds_.to_dict()),
            "metrics": self.metrics_,
        }

    @classmethod
    def from_state(cls, group: GroupConfig, state: dict[str, Any],
                   weights: dict[str, torch.Tensor]) -> Detector:
        """Rebuild a saved detector; a model saved before score rules existed keeps the old one."""
        model = group.model
        if model.cross_channel > 0 and not any(k.startswith("autoencoder.") for k in weights):
            model = replace(model, cross_channel=0.0)  # saved before the blend existed
        network = build_detector_network(model, len(group.channels), group.window.length)
        network.load_state_dict(weights)
        stored = state.get("channel_thresholds")
        return cls(group, ChannelScaler.from_dict(state["scaler"]), network.eval(),
                   threshold_from_dict(state["threshold"]), dict(state["metrics"]),
                   state.get("score_rule", LEGACY_RULE), state.get("channel_weights"),
                   None if stored is None else ChannelThresholds.from_dict(stored))


def narrowed(single: np.ndarray, shrink: float, power: float = 1.0) -> np.ndarray:
    """Held-out single-point scores as the smoothed scores of normal data would spread: shrunk
    toward their mean by ``shrink`` in the space the rule averages in (``score ** power``),
    per column. The max over channels commutes with the power, so aggregates qualify too."""
    lifted = np.power(np.asarray(single, dtype=np.float64), power)
    centre = lifted.mean(axis=0)
    return np.power(np.maximum(centre + (lifted - centre) / shrink, 0.0), 1.0 / power)


def smoothing_rows(cfg: ThresholdConfig, sampling_seconds: float) -> int:
    """Rows in the smoothing average: ``smoothing_seconds`` over the sampling step, at least 1."""
    return max(1, int(round(cfg.smoothing_seconds / max(sampling_seconds, 1e-9))))


def training_seconds(timestamps: pd.DatetimeIndex, sampling_seconds: float) -> float:
    """How long a training range lasts: first to last timestamp plus one sampling step."""
    if len(timestamps) == 0:
        return 0.0
    return float((timestamps[-1] - timestamps[0]).total_seconds()) + float(sampling_seconds)


def discount_samples(cfg: ThresholdConfig, seconds: float) -> float:
    """The ``effective_samples`` a training range of ``seconds`` gets: the configured value
    below ``short_range_seconds``, else 0 (a day or more has shown slow channels' daily cycle)."""
    return float(cfg.effective_samples) if seconds < cfg.short_range_seconds else 0.0


def channel_weights(errors: np.ndarray, persistence: np.ndarray, n_rows: int,
                    normalise: str = "mean", effective_samples: float = 0.0) -> np.ndarray:
    """Step 2 of the rule: 1 / (error scale x (effective_samples / n_eff)² if n_eff is short)."""
    scale = np.ones(errors.shape[1])
    if normalise != "none":
        scale = np.mean(errors, axis=0) if normalise == "mean" else np.median(errors, axis=0)
    discount = np.ones_like(persistence)
    if effective_samples > 0:
        discount = np.maximum(1.0, effective_samples * 2.0 * persistence / n_rows) ** 2
    return 1.0 / (np.maximum(scale, 1e-12) * discount)


def persistence_factor(series: np.ndarray) -> np.ndarray:
    """Per channel, var(x) / (var(x[t] - x[t-1]) / 2), at least 1 (rows with a NaN skipped)."""
    x = np.asarray(series, dtype=np.float64)
    steps = np.diff(x, axis=0)
    step_var = np.nanvar(steps[np.isfinite(steps).all(axis=1)], axis=0) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.nanvar(x, axis=0) / step_var
    return np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)


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
    windows, rows = window_view(held_out, length)[picked].copy(), np.arange(len(picked))
    at, channel = rng.integers(1, length - 1, len(picked)), rng.integers(0, held_out.shape[1], len(picked))
    windows[rows, at, channel] += SPIKE_SIZE
    with torch.inference_mode():
        recon = network(torch.from_numpy(windows)).numpy()
    residual = windows[rows, at, channel] - recon[rows, at, channel]
    ratio = float(np.mean(residual**2) / SPIKE_SIZE**2)
    return {"persistence_error": persistence, "model_error": model_error,
            "beats_persistence": bool(model_error < persistence), "spike_error_ratio": ratio,
            "copies_input": bool(ratio < 0.5)}


def _log_checks(group: str, metrics: dict[str, Any]) -> None:
    """The training guards in the training log: always the figures, a warning when one fails."""
    log.info("group %s: held-out error %.4f vs persistence x[t]=x[t-1] %.4f; injected spikes "
             "kept %.0f%% of their error", group, metrics["model_error"],
             metrics["persistence_error"], 100 * metrics["spike_error_ratio"])
    if not metrics["beats_persistence"]:
        log.warning("group %s: the autoencoder's held-out error %.4f is not below the persistence "
                    "baseline x[t]=x[t-1] (%.4f): it predicts no better than repeating the last "
                    "reading", group, metrics["model_error"], metrics["persistence_error"])
    if metrics["copies_input"]:
        log.warning("group %s: the autoencoder reconstructs %.0f%% of injected spikes: it copies "
                    "its input and will miss anomalies; shrink 'model.latent'", group,
                    100 * (1 - metrics["spike_error_ratio"]))
