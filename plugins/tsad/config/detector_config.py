"""What shapes a model: channels, sampling step, windows, network, threshold and score rule.

A ``DetectorConfig`` is everything a detector is built, trained and judged from, and nothing
else: no source, no alert route, no password. The registry stores it with every model version
(``config.json``) and hashes it (``fingerprint``) to tell when a group's settings changed enough
to call for a retrain. A group's detector config comes from ``GroupConfig.detector_config``
(or, for one channel shard, ``tsad.config.shards.unit_detector_config``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


def check(condition: bool, message: str) -> None:
    """A config rule: ``message`` (which names the key and what is allowed) unless it holds."""
    if not condition:
        raise ValueError(message)


def within(name: str, value: float, low: float, high: float) -> None:
    """``value`` of key ``name`` must lie in [low, high]: beyond that it is a typo, and a typo
    such as ``hidden: 1000000000`` must fail at load, not as a garbage model hours later."""
    check(low <= value <= high, f"'{name}' must be between {low:g} and {high:g}, got {value!r}")


#: Longest channel name: the records' ``anomaly_point.channel`` column (String(200)).
MAX_CHANNEL_NAME = 200
RESERVED_CHANNELS = ("timestamp",)  # the partition's time column


def check_channels(channels: list[str]) -> None:
    """Channel names: at least one, unique, printable, not reserved, short enough to store."""
    check(len(channels) >= 1, "'channels' must list at least one channel")
    check(len(set(channels)) == len(channels), "'channels' has duplicates")
    for name in channels:
        check(bool(name.strip()) and name.isprintable(),
              f"'channels' has {name!r}: a channel name must be printable and not blank")
        check(name not in RESERVED_CHANNELS,
              f"'channels' has {name!r}, which tsad reserves for the partition's time column; "
              "rename the channel in the config (the source's column can keep its name only "
              "under another channel name)")
        check(len(name) <= MAX_CHANNEL_NAME,
              f"'channels' has a name of {len(name)} characters ({name[:30]!r}...); at most "
              f"{MAX_CHANNEL_NAME} fit the records")


@dataclass(frozen=True)
class WindowConfig:
    """Sliding windows: ``length`` timesteps, a new window every ``stride`` timesteps.

    ``stride: 0`` (the default) means ``length // 4``: every timestamp is covered by four
    windows, which scores as well as stride 1 at a fraction of the work (bench/RESULTS.md).
    """

    length: int = 32
    stride: int = 0

    def __post_init__(self) -> None:
        within("length", self.length, 2, 4096)
        if self.stride == 0:
            object.__setattr__(self, "stride", max(1, self.length // 4))
        check(1 <= self.stride <= self.length, "'stride' must be between 1 and 'length'")


@dataclass(frozen=True)
class ModelConfig:
    """The autoencoder and how it is trained. ``latent`` is the bottleneck width.

    Defaults (chosen on labelled data, docs/quality.md): a ``conv1d`` autoencoder, cheaper per
    window than the LSTM and better on both benchmarks, trained in batches of 128 windows.

    ``cross_channel`` (0 <= w < 1) blends the autoencoder's reconstruction with a linear
    prediction of each channel from the other channels at the same timestep (least squares on
    the training rows): reconstruction = (1 - w) * autoencoder + w * prediction. A window code
    can hold each channel's level, so an autoencoder alone rebuilds a channel that left the
    others (a level shift, a broken correlation); the prediction cannot. 0 = the autoencoder only.
    A new network kind is a class in ``tsad.model.networks`` and its name here.
    """

    kind: Literal["dense", "conv1d", "lstm", "seq2seq"] = "conv1d"
    hidden: int = 32
    latent: int = 8
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 3e-3
    patience: int = 10
    validation_fraction: float = 0.2
    seed: int = 0
    cross_channel: float = 0.5

    def __post_init__(self) -> None:
        within("hidden", self.hidden, 1, 4096)
        within("latent", self.latent, 1, 4096)
        check(self.latent <= self.hidden, "'latent' must be <= 'hidden' (it is the bottleneck)")
        within("epochs", self.epochs, 1, 10_000)
        within("batch_size", self.batch_size, 1, 65_536)
        within("patience", self.patience, 1, 10_000)
        within("seed", self.seed, 0, 2**32 - 1)
        check(0 < self.learning_rate <= 1, f"'learning_rate' must be in (0, 1], got "
                                           f"{self.learning_rate!r}")
        check(0.05 <= self.validation_fraction <= 0.5, "'validation_fraction' must be in [0.05, 0.5]")
        check(0.0 <= self.cross_channel < 1.0, "'cross_channel' must be in [0, 1)")


@dataclass(frozen=True)
class ThresholdConfig:
    """How the anomaly threshold is learned from held-out normal errors, and the score rule.

    ``strategy`` names a threshold class of ``tsad.model.thresholds``; its own parameters are
    the other keys of the YAML section, collected into ``params`` and checked by that class,
    whose defaults fill what is not given (``quantile``, the default: ``q``; ``block``:
    ``budget``, the share of normal rows allowed above the threshold, met with ``confidence``
    on autocorrelated scores (docs/quality.md, *Calibration*); ``mean_std`` and ``median_mad``: ``k``; ``pot``: ``q`` and ``risk``, a
    generalized Pareto tail above the ``q`` quantile read at the level exceeded with probability
    ``risk``). The threshold is multiplied by ``margin``.
    The score rule (``tsad.model.score_rule``): each channel's error divided by its mean held-out
    error (``normalise``: ``mean``, ``median`` or ``none``) and, for a channel with fewer than
    ``effective_samples`` independent training rows (0: never), by (effective_samples / its
    count)²; smoothed over ``smoothing_rows`` rows as a power mean (``smoothing_power`` p: the
    mean of errors**p, raised back to 1/p); combined by ``aggregate`` (``max`` or ``mean``).
    ``scope: channel`` fits one threshold per channel instead of one on the aggregate. The
    slow-channel discount applies only to a training range of fewer than ``short_range_windows``
    windows' worth of rows.

    ``stuck_rows``: a channel whose readings never repeat in training (an analog measurement)
    is stuck from the first row of a run of identical readings this long (default: one window
    length; at least twice its longest training run, plus one; 0: never); its score and the
    aggregate are raised above the threshold (``tsad.model.stuck``).

    Spans are counted in rows, never in seconds, by default: the same series recorded at another
    sampling step gets the same rule and the same flags (docs/quality.md, *Spans in rows*).
    ``smoothing_seconds`` / ``short_range_seconds``, when set, replace the row counts for a
    group whose spans are known in time (converted with the group's ``sampling_seconds``).
    """

    #: the YAML keys that are not fields here go into this one (``tsad.config.loading``)
    EXTRA_KEYS: ClassVar[str] = "params"

    strategy: str = "quantile"
    params: dict[str, float] = field(default_factory=dict)
    margin: float = 1.0
    normalise: Literal["mean", "median", "none"] = "mean"
    effective_samples: float = 100.0
    short_range_windows: int = 20
    short_range_seconds: float | None = None
    smoothing_rows: int = 2
    smoothing_seconds: float | None = None
    smoothing_power: float = 0.75
    aggregate: Literal["max", "mean"] = "max"
    scope: Literal["aggregate", "channel"] = "aggregate"
    stuck_rows: int | None = None

    def __post_init__(self) -> None:
        from tsad.model.thresholds import check_strategy  # light: numpy only

        check_strategy(self.strategy, self.params)
        check(0 < self.margin <= 100, f"'margin' must be in (0, 100], got {self.margin!r}")
        within("effective_samples", self.effective_samples, 0, 1e9)
        within("smoothing_rows", self.smoothing_rows, 1, 1_000_000)
        within("short_range_windows", self.short_range_windows, 0, 1_000_000)
        if self.smoothing_seconds is not None:
            within("smoothing_seconds", self.smoothing_seconds, 0, 7 * 86_400)
        if self.short_range_seconds is not None:
            within("short_range_seconds", self.short_range_seconds, 0, 366 * 86_400)
        check(0 < self.smoothing_power <= 1, "'smoothing_power' must be in (0, 1]")
        if self.stuck_rows is not None:
            within("stuck_rows", self.stuck_rows, 0, 1_000_000)


@dataclass(frozen=True)
class DetectorConfig:
    """The settings one model is built from: see the module docstring. ``name`` labels logs and
    errors (``pumps``, ``pumps/s01``); it is not part of the fingerprint."""

    name: str
    channels: list[str]
    sampling_seconds: int = 60
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)

    def __post_init__(self) -> None:
        check_channels(self.channels)
        within("sampling_seconds", self.sampling_seconds, 1, 86_400)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """sha256 of every setting that shapes the model (all but ``name``)."""
        shaping = {k: v for k, v in self.to_dict().items() if k != "name"}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> DetectorConfig:
        """Rebuild from a model version's ``config.json``, written by this or an earlier tsad.

        Earlier versions stored the whole group (source, alerts, ...) and threshold keys that
        later became the score rule's or a strategy's parameters; a stored model keeps its
        fitted rule and threshold in ``state.json``, so keys unknown here are dropped, never an
        error: an old model always loads.
        """
        from tsad.config.loading import from_dict

        def known(section: type, values: dict[str, Any]) -> dict[str, Any]:
            names = {f.name for f in dataclasses.fields(section)}
            return {k: v for k, v in values.items() if k in names}

        threshold = dict(data.get("threshold", {}))
        params = {k: threshold.pop(k) for k in ("q", "k", "risk") if k in threshold}
        if threshold.get("strategy") and "params" not in threshold:
            threshold["params"] = {k: v for k, v in params.items()
                                   if _takes(threshold["strategy"], k)}
        picked = {
            "name": data.get("name", "model"), "channels": data["channels"],
            "sampling_seconds": data.get("sampling_seconds", 60),
            "window": known(WindowConfig, data.get("window", {})),
            "model": known(ModelConfig, data.get("model", {})),
            "threshold": known(ThresholdConfig, threshold),
        }
        return from_dict(cls, picked, "config.json")


def _takes(strategy: str, param: str) -> bool:
    from tsad.model.thresholds import strategy_parameters

    return param in strategy_parameters(strategy)
