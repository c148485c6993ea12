"""A detector is a scaler, an autoencoder, a score rule and a threshold, fitted together on normal data.

``Detector.fit`` holds out the last part of the training range for early stopping, the channel
weights and the threshold, and measures the model against the persistence baseline and the
copy-the-input check (``tsad.model.checks``). Everything it learns is an attribute ending in
``_`` (PyOD's convention); everything else uses its public methods:

- ``score(frame)`` / ``score_partition(path)``: ``Scores`` (per window and channel, per
  timestamp and channel, an aggregate per timestamp; higher = more anomalous) of a frame in
  memory or of a Parquet partition streamed batch by batch (``tsad.model.streaming``), with
  which readings left their training range (``tsad.model.departure``);
- ``reconstruct(raw)``: the model's reconstruction in raw units (event plots);
- ``save(folder)`` / ``load(folder)``: ``config.json`` (its ``DetectorConfig``),
  ``weights.safetensors`` (the ``state_dict``) and ``state.json`` (scaler, rule, threshold,
  metrics); no pickles. The registry adds checksums and versions (``tsad.model.registry``).

Step 1 of the score rule (scaled windows, reconstruction errors folded onto timestamps) is
``tsad.model.scoring``; steps 2-5 (weights, smoothing, aggregate, threshold) are
``tsad.model.score_rule``. With ``model.cross_channel`` > 0 the reconstruction blends the
autoencoder's with a linear prediction of each channel from the others at the same timestep
(``tsad.model.networks.CrossChannelBlend``: the autoencoder is trained alone, the prediction is
fitted by least squares on the same training rows).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsad import fs
from tsad.config import DetectorConfig, ModelConfig
from tsad.errors import DataError, ModelError
from tsad.model.checks import baseline_checks, log_checks
from tsad.model.departure import ReadingRange
from tsad.model.device import resolve_device
from tsad.model.known_normal import floor_on_known_normal
from tsad.model.networks import (CrossChannelBlend, autoencoder_of, bottleneck_latent,
                                 build_detector_network)
from tsad.model.scaling import ChannelScaler, fit_training_scaler
from tsad.model.score_rule import (ScoreRule, channel_weights, error_scale,
                                   persistence_factor)
from tsad.model.scoring import Scores, score_series
from tsad.model.plausibility import ReadingCounts
from tsad.model.stuck import StuckLimits, repeats
from tsad.model.thresholds import (ChannelThresholds, FixedThreshold, Threshold, make_threshold,
                                   strategy_class, threshold_from_dict)
from tsad.model.training import train
from tsad.windows import PointAccumulator, valid_starts, window_starts, window_view

log = logging.getLogger(__name__)

MIN_WINDOWS = 64
MAX_SHRINKS = 2  # a model that copies its input is retrained with latent / 2, then / 4
CONFIG_FILE, WEIGHTS_FILE, STATE_FILE = "config.json", "weights.safetensors", "state.json"


class Detector:
    """Fit on normal data, then score any frame with the same channels."""

    def __init__(self, config: DetectorConfig, scaler: ChannelScaler, network: torch.nn.Module,
                 threshold: Threshold, rule: ScoreRule | None = None,
                 weights: np.ndarray | None = None,
                 channel_thresholds: ChannelThresholds | None = None,
                 metrics: dict[str, Any] | None = None,
                 reading_range: ReadingRange | None = None,
                 stuck: StuckLimits | None = None) -> None:
        self.config = config
        self.scaler_ = scaler
        self.network_ = network
        self.threshold_ = threshold
        self.rule_ = rule or ScoreRule()
        self.weights_ = (np.ones(len(config.channels)) if weights is None
                         else np.asarray(weights, dtype=np.float64))
        self.channel_thresholds_ = channel_thresholds
        self.metrics_ = dict(metrics or {})
        self.reading_range_ = reading_range  # None: saved before ranges existed
        self.stuck_ = stuck  # None: saved before stuck sensors were watched
        #: each channel's persistence factor on the training rows (set by ``calibrate``; kept
        #: in ``metrics_["persistence_factor"]``, not reloaded)
        self.persistence_: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def channels(self) -> list[str]:
        return list(self.config.channels)

    @property
    def threshold(self) -> float:
        return float(self.threshold_.value_)

    # ------------------------------------------------------------------ fitting

    @classmethod
    def fit(cls, config: DetectorConfig, frame: pd.DataFrame, device: torch.device | None = None,
            checkpoint: bool = True, known_normal: np.ndarray | None = None) -> Detector:
        """Train on ``frame`` (normal data, the config's channels); the rule and the threshold
        on its held-out last rows. ``checkpoint=False`` skips per-epoch checkpoints (short
        evaluation fits). ``known_normal`` (bool per row): rows a person marked false alarms;
        the threshold is raised, when needed, so they score below it by its margin
        (``tsad.model.known_normal``).

        The bottleneck is ``model.latent`` narrowed so the code holds at most half a window
        (``tsad.model.networks.bottleneck_latent``); a model that still copies its input
        (``tsad.model.checks``) is retrained with half the latent, twice at most, and a
        ModelError says so when it keeps copying: a copying model is never returned."""
        device = device or resolve_device()
        length, model_cfg = config.window.length, config.model
        raw = _channel_array(frame, config.channels, "training data")
        scaler, raw, implausible = fit_training_scaler(raw, pd.DatetimeIndex(frame.index),
                                                       config.channels, config.name)
        series = scaler.transform(raw, overwrite=True)  # raw is the masked copy: scaled in place
        del raw  # training needs only the float32 series
        stuck_rows = config.threshold.stuck_rows
        stuck = StuckLimits.fit(series, length if stuck_rows is None else stuck_rows)
        split = int(len(series) * (1 - model_cfg.validation_fraction))
        starts = valid_starts(series, np.arange(max(len(series) - length + 1, 0)), length)
        train_starts, val_starts = starts[starts + length <= split], starts[starts >= split]
        if len(train_starts) < MIN_WINDOWS or len(val_starts) < MIN_WINDOWS // 8:
            raise DataError(f"group {config.name!r}: only {len(train_starts)} training and "
                            f"{len(val_starts)} validation windows of length {length}; extend "
                            "'training.days' or fix the gaps")
        key = f"{config.name}:{frame.index[0]}:{frame.index[-1]}" if checkpoint else None
        latent = bottleneck_latent(model_cfg, len(config.channels), length)
        for shrinks in range(MAX_SHRINKS + 1):
            model = replace(model_cfg, latent=latent)
            detector = cls._fit_network(config, model, scaler, series, split,
                                        (train_starts, val_starts), frame.index, device, key)
            detector.stuck_ = stuck
            detector.metrics_.update(latent=latent, bottleneck_shrinks=shrinks, **implausible,
                                     stuck_watched=[c for c, limit in zip(config.channels,
                                                                          stuck.limits)
                                                    if limit is not None])
            log_checks(config.name, detector.metrics_)
            if not detector.metrics_["copies_input"]:
                floor = floor_on_known_normal(detector, series, pd.DatetimeIndex(frame.index),
                                              known_normal)
                if floor is not None:
                    detector.metrics_["known_normal"] = floor
                return detector
            if latent == 1 or shrinks == MAX_SHRINKS:
                break
            latent = max(1, latent // 2)
            log.warning("group %s: retraining with a narrower bottleneck (model.latent %d)",
                        config.name, latent)
        raise ModelError(
            f"group {config.name!r}: the {model_cfg.kind} autoencoder copies its input even with "
            f"model.latent={latent} (it reconstructs {1 - detector.metrics_['spike_error_ratio']:.0%}"
            " of injected spikes), so it would miss anomalies; not published. Use a longer "
            "'window.length' or another 'model.kind'")

    @classmethod
    def _fit_network(cls, config: DetectorConfig, model: ModelConfig, scaler: ChannelScaler,
                     series: np.ndarray, split: int, starts: tuple[np.ndarray, np.ndarray],
                     index: pd.Index, device: torch.device, key: str | None) -> Detector:
        """One training with ``model`` (its latent chosen by ``fit``), calibrated and checked."""
        length, (train_starts, val_starts) = config.window.length, starts
        torch.manual_seed(model.seed)
        network = build_detector_network(model, len(config.channels), length).to(device)
        report = train(autoencoder_of(network), series, train_starts, val_starts, length,
                       model, device, checkpoint_key=key)
        network = network.cpu().eval()
        if isinstance(network, CrossChannelBlend):  # trained apart: the autoencoder alone
            network.fit_predictor(series[:split])
        detector = cls(config, scaler, network, make_threshold(config.threshold),
                       reading_range=ReadingRange.fit(series))
        raw_errors = detector.calibrate(series, split, pd.DatetimeIndex(index))
        model_error = float(np.mean(raw_errors))
        detector.metrics_ |= {
            "device": str(device), "epochs_run": report.epochs_run, "best_epoch": report.best_epoch,
            "train_loss": report.train_losses[report.best_epoch - 1],
            "val_loss": report.best_val_loss, "train_seconds": round(report.seconds, 3),
            "n_train_windows": int(len(train_starts)), "n_val_windows": int(len(val_starts)),
            "val_error_median": float(np.median(raw_errors)),
            "persistence_factor": np.round(detector.persistence_, 3).tolist(),
            **baseline_checks(network, series[split:], length, model.seed, model_error),
        }
        return detector

    def calibrate(self, series: np.ndarray, split: int, timestamps: pd.DatetimeIndex) -> np.ndarray:
        """Steps 2-5 of the rule fitted on the held-out rows ``series[split:]`` of a scaled
        training range (channel weights from ``series[:split]``); returns their raw errors."""
        cfg = self.config.threshold
        self.rule_ = rule = ScoreRule.for_training(cfg, self.config.sampling_seconds, timestamps,
                                                   self.config.window.length)
        self.threshold_, self.channel_thresholds_ = make_threshold(cfg), None
        held_raw = self.score_raw(series[split:], timestamps[split:])
        self._patch_degenerate(held_raw.point_scores, series, split, timestamps)
        raw_errors = held_raw.point_scores[np.isfinite(held_raw.point_scores).all(axis=1)]
        self.persistence_ = persistence_factor(series[:split])  # one pass over the range
        self.weights_ = channel_weights(raw_errors, self.persistence_, split,
                                        rule.normalise, rule.effective_samples)
        fitted_on = None  # the aggregate scores a single threshold is fitted on, in time order
        if strategy_class(cfg.strategy).on_smoothed:
            self._fit_on_smoothed(held_raw.point_scores)
        elif rule.scope == "channel":
            self.channel_thresholds_ = ChannelThresholds(lambda: make_threshold(cfg)).fit(
                rule.narrowed(raw_errors * self.weights_))
            self.threshold_ = FixedThreshold(1.0).fit(np.ones(1))
        else:
            fitted_on = rule.narrowed(rule.combine(raw_errors * self.weights_))
            self.threshold_.fit(fitted_on)
        self._record_range(fitted_on)
        return raw_errors

    def _record_range(self, fitted_on: np.ndarray | None) -> None:
        """Store how far the threshold could have come out on other held-out rows of the same
        process (``tsad.model.block_threshold.level_range``) in ``metrics_["threshold_range"]``
        (model_version.metrics_json, the event page), and warn when the held-out rows hold too
        few independent blocks to say. ``block`` reports its own bootstrap bounds; per-channel
        thresholds (``scope: channel``) get none."""
        from tsad.model.block_threshold import BlockThreshold, level_range

        found: dict[str, Any] | None = None
        t = self.threshold_
        if isinstance(t, BlockThreshold) and t.n_blocks_ is not None:
            few = t.n_blocks_ < t.MIN_BLOCKS
            found = {"confidence": t.confidence, "block_rows": t.block_rows_,
                     "n_blocks": t.n_blocks_,
                     "lower": None if few or t.lower_ is None else t.lower_ * t.margin,
                     "upper": None if few or t.upper_ is None else t.upper_ * t.margin,
                     "note": t.note_ if few else None}
        elif fitted_on is not None and fitted_on.size:
            found = level_range(t, fitted_on, self.config.window.length)
        self.metrics_.pop("threshold_range", None)
        if found is None:
            return
        self.metrics_["threshold_range"] = found
        if found["note"]:
            log.warning("group %s: the threshold %.4g %s", self.name, self.threshold,
                        found["note"])
        else:
            log.info("group %s: threshold %.4g; %.0f%% range %.4g .. %.4g over %d independent "
                     "blocks of held-out rows", self.name, self.threshold,
                     100 * found["confidence"], found["lower"], found["upper"],
                     found["n_blocks"])

    def _patch_degenerate(self, held: np.ndarray, series: np.ndarray, split: int,
                          timestamps: pd.DatetimeIndex) -> None:
        """A channel constant or reconstructed exactly in the held-out rows (its mean error
        below ``error_scale``'s floor) would be divided by ~0 and get a threshold of ~0, so any
        later wiggle alarms: its held-out errors are replaced, in place, by its errors on as
        many training rows just before the held-out part (their floor), with a warning
        naming it."""
        normalise = self.rule_.normalise
        _, degenerate = error_scale(held[np.isfinite(held).all(axis=1)], normalise)
        if degenerate.size == 0 or normalise == "none":
            return
        start = max(0, split - len(held))
        reference = self.score_raw(series[start:split], timestamps[start:split]).point_scores
        if len(reference) == 0:
            return
        picks = np.arange(len(held)) % len(reference)
        held[:, degenerate] = reference[picks][:, degenerate]
        names = [self.channels[j] for j in degenerate]
        log.warning("group %s: channel(s) %s were constant or reconstructed exactly in the "
                    "held-out rows; their threshold is calibrated on their errors in the training "
                    "rows before them instead (a floor), not on ~0", self.name, names)
        self.metrics_["degenerate_channels"] = names

    def _fit_on_smoothed(self, held_raw_points: np.ndarray) -> None:
        """Fit the threshold(s) on held-out scores as the rule scores a day: weighted,
        smoothed, combined, in time order (rows no window covered dropped). A held-out part
        too short for enough independent blocks of smoothed scores (a training range of a
        few hundred rows) is fitted on its single-point scores narrowed to the spread smoothed
        ones would have (``ScoreRule.narrowed``), and the threshold's note says so."""
        cfg, rule = self.config.threshold, self.rule_
        smoothed = np.array(held_raw_points, dtype=np.float32)
        aggregate = rule.apply(smoothed, self.weights_)
        finite = np.isfinite(aggregate)
        single = np.asarray(held_raw_points)[finite] * self.weights_
        span = max(int(rule.smoothing_rows), self.config.window.length)

        def spanning() -> Threshold:
            made = make_threshold(cfg)
            made.min_block_rows = span  # type: ignore[attr-defined]
            return made

        if rule.scope == "channel":
            self.channel_thresholds_ = ChannelThresholds(spanning).fit(smoothed[finite])
            if any(_too_few_blocks(t) for t in self.channel_thresholds_.thresholds_):
                self.channel_thresholds_ = ChannelThresholds(
                    lambda: make_threshold(cfg)).fit(rule.narrowed(single))
            self.threshold_ = FixedThreshold(1.0).fit(np.ones(1))
            return
        self.threshold_ = spanning().fit(aggregate[finite])
        if _too_few_blocks(self.threshold_):
            note = self.threshold_.note_
            self.threshold_ = make_threshold(cfg).fit(rule.narrowed(rule.combine(single)))
            self.threshold_.note_ = (f"{note}; fitted instead on single-point held-out scores "
                                     "narrowed as smoothing would (few independent rows)")

    # ------------------------------------------------------------------ scoring

    def score(self, frame: pd.DataFrame) -> Scores:
        """Scores of ``frame`` (wide, the config's channels) under the score rule."""
        raw = _channel_array(frame, self.channels, "scored data")
        counts = ReadingCounts.empty(len(self.channels))
        scaled = self.scaler_.transform(raw, counts)
        departed = None if self.reading_range_ is None else self.reading_range_.departed(scaled)
        scored = self.score_raw(scaled, pd.DatetimeIndex(frame.index))
        if self._watches_stuck():
            scored.repeats = repeats(scaled)
        return replace(self.postprocess(scored, inplace=True), readings=counts, departed=departed)

    def score_partition(self, path: str | Path, read_rows: int | None = None) -> Scores:
        """``score`` of a Parquet partition, read ``read_rows`` rows at a time: only the outputs
        are day-sized (``tsad.model.streaming``)."""
        from tsad.model.streaming import READ_ROWS, score_parquet

        window = self.config.window
        raw = score_parquet(self.network_, path, self.channels, window.length, window.stride,
                            self.scaler_, read_rows or READ_ROWS, self.reading_range_,
                            repeats=self._watches_stuck())
        return self.postprocess(raw, inplace=True)

    def _watches_stuck(self) -> bool:
        return self.stuck_ is not None and self.stuck_.watched

    def score_raw(self, series: np.ndarray, timestamps: pd.DatetimeIndex) -> Scores:
        """The model's reconstruction errors of a scaled series (step 1 of the rule only)."""
        window = self.config.window
        return score_series(self.network_, series, timestamps, window.length, window.stride)

    def postprocess(self, raw: Scores, inplace: bool = False) -> Scores:
        """Steps 2-5 of the score rule on raw errors. ``inplace=True`` overwrites
        ``raw.point_scores`` (float32) instead of copying them (``tsad.model.smoothing``)."""
        points = raw.point_scores if inplace else np.array(raw.point_scores, dtype=np.float32)
        if points.shape[0] == 0:
            return replace(raw, point_scores=points, aggregate=np.empty(0))
        divisors = None if self.channel_thresholds_ is None else self.channel_thresholds_.values_
        aggregate = self.rule_.apply(points, self.weights_, divisors)
        if raw.repeats is not None and self.stuck_ is not None:
            self._raise_stuck(points, aggregate, self.stuck_.severity(raw.repeats))
        return replace(raw, point_scores=points, aggregate=aggregate)

    def _raise_stuck(self, points: np.ndarray, aggregate: np.ndarray,
                     severity: np.ndarray) -> None:
        """Where a channel is stuck (``severity`` > 0: 1 + its run / its limit), its score and
        the aggregate become at least threshold x severity (the scores after the rule are in
        the aggregate's units), so the row is flagged and the channel is among its event's top
        channels (``tsad.model.stuck``). A row no gap-free window covered keeps no score, as
        any other: it is never flagged."""
        rows = np.flatnonzero((severity.max(axis=1) > 0) & np.isfinite(aggregate))
        if rows.size == 0:
            return
        level = self.threshold * severity[rows]  # [rows, c], 0 where not stuck
        points[rows] = np.fmax(points[rows], level.astype(points.dtype))
        aggregate[rows] = np.fmax(aggregate[rows], level.max(axis=1))

    def reconstruct(self, raw: np.ndarray) -> np.ndarray:
        """The model's reconstruction of ``raw [n, c]`` (its channels, raw units): each point
        the mean of the network's outputs over the windows covering it (the scoring rule on
        outputs instead of errors); NaN where no gap-free window covers a point."""
        length, stride = self.config.window.length, self.config.window.stride
        scaled = self.scaler_.transform(np.asarray(raw, dtype=np.float64))
        n, c = scaled.shape
        sums = PointAccumulator(n, c)
        starts = valid_starts(scaled, window_starts(n, length, stride), length)
        if len(starts):
            windows = torch.from_numpy(np.ascontiguousarray(window_view(scaled, length)[starts]))
            with torch.inference_mode():
                outputs = self.network_.eval()(windows).numpy().astype(np.float64)
            sums.add(starts, outputs)
        return self.scaler_.inverse(sums.result())

    # ------------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """Everything but the weights and the config, as JSON types (``state.json``)."""
        return {
            "channels": self.channels,
            "scaler": self.scaler_.to_dict(),
            "threshold": self.threshold_.to_dict(),
            "score_rule": self.rule_.to_dict(),
            "channel_weights": self.weights_.tolist(),
            "channel_thresholds": (None if self.channel_thresholds_ is None
                                   else self.channel_thresholds_.to_dict()),
            "metrics": self.metrics_,
            "reading_range": (None if self.reading_range_ is None
                              else self.reading_range_.to_dict()),
            "stuck": None if self.stuck_ is None else self.stuck_.to_dict(),
            "latent": int(self.metrics_.get("latent", self.config.model.latent)),
        }

    def save(self, folder: Path) -> list[str]:
        """Write the detector's three files into ``folder``; returns their names."""
        from safetensors.torch import save_file

        fs.write_json(folder / CONFIG_FILE, self.config.to_dict())
        weights = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(weights, str(folder / WEIGHTS_FILE))
        fs.write_json(folder / STATE_FILE, self.state())
        return [CONFIG_FILE, WEIGHTS_FILE, STATE_FILE]

    @classmethod
    def load(cls, folder: Path) -> Detector:
        """Rebuild a saved detector (this or an earlier tsad's save), on the CPU."""
        from safetensors.torch import load_file

        config = DetectorConfig.from_stored(_read_json(folder / CONFIG_FILE))
        state = _read_json(folder / STATE_FILE)
        return cls.from_state(config, state, load_file(str(folder / WEIGHTS_FILE)))

    @classmethod
    def from_state(cls, config: DetectorConfig, state: dict[str, Any],
                   weights: dict[str, torch.Tensor]) -> Detector:
        """A detector from its ``state()`` and ``state_dict``; a model saved before score rules
        existed keeps the old rule, one saved before the blend existed has none."""
        model = replace(config.model, latent=int(state.get("latent", config.model.latent)))
        if model.cross_channel > 0 and not any(k.startswith("autoencoder.") for k in weights):
            model = replace(model, cross_channel=0.0)
            config = replace(config, model=replace(config.model, cross_channel=0.0))
        network = build_detector_network(model, len(config.channels), config.window.length)
        network.load_state_dict(weights)
        stored = state.get("channel_thresholds")
        return cls(config, ChannelScaler.from_dict(state["scaler"]), network.eval(),
                   threshold_from_dict(state["threshold"]), ScoreRule.from_dict(
                       state.get("score_rule")), state.get("channel_weights"),
                   None if stored is None else ChannelThresholds.from_dict(stored),
                   state.get("metrics"), ReadingRange.from_dict(state.get("reading_range")),
                   StuckLimits.from_dict(state.get("stuck")))


def _too_few_blocks(threshold: Threshold) -> bool:
    return getattr(threshold, "n_blocks_", None) is not None and \
        threshold.n_blocks_ < threshold.MIN_BLOCKS  # type: ignore[attr-defined]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON ({exc})") from None


def _channel_array(frame: pd.DataFrame, channels: list[str], what: str) -> np.ndarray:
    missing = [c for c in channels if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks channel(s) {missing}; it has {list(frame.columns)}")
    return frame[channels].to_numpy(dtype=np.float64)
