"""Typed, validated, serialisable configuration for tsad.

Config is data: frozen dataclasses built from a YAML file. Every unknown key and every wrong type
is rejected with the key's full path (``groups[0].model.kind``) and what was expected, so a typo
never silently falls back to a default. ``to_dict`` round-trips through ``from_dict``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from tsad.config.detector_config import (DetectorConfig, ModelConfig, ThresholdConfig,
                                         WindowConfig, check, check_channels, within)
from tsad.errors import ConfigError

# matched whole (``fullmatch``): ``$`` would also match before a final newline ("pumps\n")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ROUTE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


@dataclass(frozen=True)
class DatabaseConfig:
    """Where tsad writes its records: a SQLAlchemy URL, or an Airflow connection id."""

    url: str | None = None
    conn_id: str | None = None

    def __post_init__(self) -> None:
        check((self.url is None) != (self.conn_id is None), "set exactly one of 'url' or 'conn_id'")


@dataclass(frozen=True)
class SourceConfig:
    """Where a group's raw readings come from.

    ``kind`` names a source class of ``tsad.ingest.sources``, which checks the keys it needs:
    ``sql`` reads ``table`` (``url`` or ``conn_id``); ``files`` reads ``path``, a pattern with
    ``{date}`` (YYYY-MM-DD) and optionally ``{group}``.
    ``layout: long`` is (timestamp, sensor, value) rows; ``wide`` is timestamp + one column per sensor.
    """

    kind: str
    layout: Literal["long", "wide"] = "long"
    url: str | None = None
    conn_id: str | None = None
    table: str | None = None
    path: str | None = None
    format: Literal["csv", "parquet"] = "csv"
    timestamp_column: str = "timestamp"
    sensor_column: str = "sensor"
    value_column: str = "value"
    timestamps_timezone: str = "UTC"

    def __post_init__(self) -> None:
        check_timezone("timestamps_timezone", self.timestamps_timezone)
        for name in ("timestamp_column", "sensor_column", "value_column"):
            check(bool(IDENTIFIER.fullmatch(getattr(self, name))),
                   f"'{name}' must be a plain identifier (letters, digits, _), got {getattr(self, name)!r}")
        from tsad.ingest.sources import check_source  # light: the kinds import nothing heavy

        check_source(self)


@dataclass(frozen=True)
class TrainingConfig:
    """Training range: the ``days`` days before the data day; retrain when the model is older.

    Days a model may not learn from are skipped and older ones taken instead, looking back at
    most twice ``days`` (``tsad.pipeline.history``). A new deployment with fewer days of
    history trains once ``min_days`` are there (a *provisional* model, retrained daily until it
    has ``days``); before that a day's run is ``warming_up``. A sustained departure is learned
    as the new normal only when a person marks it a new operating point, or (when
    ``adopt_after_days`` > 0) once it has lasted that many days; 0 means never automatically.
    """

    days: int = 7
    max_model_age_days: int = 7
    min_days: int = 2
    adopt_after_days: int = 0

    def __post_init__(self) -> None:
        within("days", self.days, 1, 366)
        within("max_model_age_days", self.max_model_age_days, 1, 3650)
        within("min_days", self.min_days, 1, 366)  # more than days acts as days
        within("adopt_after_days", self.adopt_after_days, 0, 3650)


@dataclass(frozen=True)
class QualityConfig:
    """What extract does with messy input (docs/bad-inputs.md); each fix is counted in the run.

    Readings are snapped to the grid; gaps of at most ``max_fill_steps`` steps are forward-filled,
    longer ones stay missing and every window still holding a missing point is not scored
    (``masked_windows``). A day with more than ``max_missing_fraction`` of its cells missing after
    filling is refused. ``duplicates``: ``mean``, ``first`` or ``last`` reading per timestamp, or
    ``error``. ``non_finite`` (NaN, inf) and ``non_numeric`` (text in a number column): treat as
    ``missing``, or ``error`` naming the column and value. ``extra_channels``: ``ignore`` or ``error``.
    """

    max_fill_steps: int = 5
    max_missing_fraction: float = 1.0
    duplicates: Literal["mean", "first", "last", "error"] = "mean"
    non_finite: Literal["missing", "error"] = "missing"
    non_numeric: Literal["error", "missing"] = "error"
    extra_channels: Literal["ignore", "error"] = "ignore"

    def __post_init__(self) -> None:
        within("max_fill_steps", self.max_fill_steps, 0, 100_000)
        check(0.0 <= self.max_missing_fraction <= 1.0, "'max_missing_fraction' must be in [0, 1]")


@dataclass(frozen=True)
class EventConfig:
    """Flags -> events: drop runs shorter than ``min_points``, merge runs closer than ``merge_gap``.

    A day with more than ``drift_share`` of its points above the threshold moved away as a
    whole: one sustained event, alerted every day it lasts (``tsad.detection.sustained``).
    """

    min_points: int = 3
    merge_gap: int = 10
    top_channels: int = 3
    drift_share: float = 0.5

    def __post_init__(self) -> None:
        within("min_points", self.min_points, 1, 1_000_000)
        within("merge_gap", self.merge_gap, 0, 1_000_000)
        within("top_channels", self.top_channels, 1, 100)
        check(0.0 < self.drift_share <= 1.0, "'drift_share' must be in (0, 1]")


@dataclass(frozen=True)
class SeverityRoute:
    """A severity level: events with severity (peak / threshold) >= ``min_severity`` are ``name``
    and are also mailed to ``email_to``; ``slack_mention`` (e.g. ``<!channel>``) heads the Slack post."""

    name: str
    min_severity: float
    email_to: list[str] = field(default_factory=list)
    slack_mention: str | None = None

    def __post_init__(self) -> None:
        check(bool(ROUTE_NAME.fullmatch(self.name)),
               f"'name' must be a short lowercase word, got {self.name!r}")
        check(self.min_severity >= 1.0, "'min_severity' must be >= 1 (severity 1 = threshold)")


@dataclass(frozen=True)
class Snooze:
    """No alerts for the group (or only for events led by ``channels``) on data days before ``until``."""

    until: str
    channels: list[str] = field(default_factory=list)
    reason: str = ""

    def __post_init__(self) -> None:
        try:
            date.fromisoformat(self.until)
        except ValueError:
            raise ValueError(f"'until' must be a date YYYY-MM-DD, got {self.until!r}") from None

    @property
    def until_day(self) -> date:
        return date.fromisoformat(self.until)


@dataclass(frozen=True)
class AlertConfig:
    """Alert routes; each is optional. A log line is always written.

    ``email_to`` receives every new event; ``routes`` add recipients by severity. ``plot_base_url``
    is where ``{data_dir}/plots`` is published for Slack to fetch images (webhooks cannot upload).
    ``ui_base_url`` is the Airflow UI's address as operators reach it (``https://airflow.plant``):
    each event in a digest links to its page there (``/tsad/events/<id>``).
    """

    email_conn_id: str | None = None
    email_to: list[str] = field(default_factory=list)
    slack_conn_id: str | None = None
    routes: list[SeverityRoute] = field(default_factory=list)
    snooze: list[Snooze] = field(default_factory=list)
    plot_base_url: str | None = None
    ui_base_url: str | None = None

    def __post_init__(self) -> None:
        routed = self.email_to or any(r.email_to for r in self.routes)
        check(self.email_conn_id is None or bool(routed),
               "'email_to' must list recipients when 'email_conn_id' is set")
        names = [r.name for r in self.routes]
        check(len(set(names)) == len(names), f"'routes' has duplicate names: {names}")
        check(self.plot_base_url is None or self.plot_base_url.startswith(("http://", "https://")),
               f"'plot_base_url' must be an http(s) URL, got {self.plot_base_url!r}")
        check(self.ui_base_url is None or self.ui_base_url.startswith(("http://", "https://")),
               f"'ui_base_url' must be the Airflow UI's http(s) URL, got {self.ui_base_url!r}")


@dataclass(frozen=True)
class ShardConfig:
    """A large group split into channel shards, each with a model, scaler and threshold of its own.

    ``max_channels: N`` cuts the group's channel list, in order, into chunks of at most N (a
    deterministic split); ``channels: [[...], ...]`` lists the shards, which is better: a model
    only learns structure between channels that share a shard, so shard by plant subsystem. The
    lists must partition the group's channels exactly (checked by ``GroupConfig``). A split that
    yields one shard is the unsharded group (docs/deployment.md, *Scale-out*).
    """

    max_channels: int | None = None
    channels: list[list[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        check((self.max_channels is None) != (not self.channels),
               "set exactly one of 'max_channels' or 'channels'")
        check(self.max_channels is None or self.max_channels >= 1,
               f"'max_channels' must be >= 1, got {self.max_channels}")
        for i, shard in enumerate(self.channels):
            check(len(shard) >= 1, f"'channels[{i}]' is empty; list its channels or drop it")

    def split(self, channels: list[str]) -> list[list[str]]:
        """The shards' channel lists, in shard order (shard ``sNN`` is item NN - 1)."""
        if self.max_channels is not None:
            size = self.max_channels
            return [list(channels[i: i + size]) for i in range(0, len(channels), size)]
        return [list(shard) for shard in self.channels]


def check_timezone(name: str, zone: str) -> None:
    """``zone`` must be an IANA time zone name (``Europe/Berlin``, ``UTC``)."""
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"'{name}' {zone!r} is not an IANA time zone (e.g. 'Europe/Berlin', "
                         "'UTC')") from None


def _check_partition(channels: list[str], shards: ShardConfig) -> None:
    """Explicit shards must name every channel of the group exactly once."""
    known, seen = set(channels), {}
    for i, shard in enumerate(shards.channels):
        for name in shard:
            check(name in known, f"'shards.channels[{i}]' lists {name!r}, which is not in "
                                  f"'channels' {channels}")
            check(name not in seen, f"'shards.channels[{i}]' lists {name!r}, already in "
                                     f"'shards.channels[{seen.get(name)}]': a channel belongs "
                                     "to exactly one shard")
            seen[name] = i
    left_out = [c for c in channels if c not in seen]
    check(not left_out, f"'shards.channels' leaves out {left_out}: every channel of the group "
                         "must be in exactly one shard")


@dataclass(frozen=True)
class GroupConfig:
    """One sensor group: its source, channels and detector; ``shards`` splits a large group."""

    name: str
    source: SourceConfig
    channels: list[str]
    sampling_seconds: int = 60
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    events: EventConfig = field(default_factory=EventConfig)
    alerts: AlertConfig = field(default_factory=AlertConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    shards: ShardConfig | None = None

    def __post_init__(self) -> None:
        check(bool(GROUP_NAME.fullmatch(self.name)),
               f"'name' must be lowercase letters, digits, '_' or '-', got {self.name!r}")
        check_channels(self.channels)
        within("sampling_seconds", self.sampling_seconds, 1, 86_400)
        if self.shards is not None and self.shards.channels:
            _check_partition(self.channels, self.shards)

    def detector_config(self, channels: list[str] | None = None,
                        name: str | None = None) -> DetectorConfig:
        """What shapes this group's model (or a shard's: its ``channels`` and ``name``)."""
        return DetectorConfig(name=name or self.name, channels=list(channels or self.channels),
                              sampling_seconds=self.sampling_seconds, window=self.window,
                              model=self.model, threshold=self.threshold)


@dataclass(frozen=True)
class TsadConfig:
    """The whole deployment: where things live and the sensor groups.

    Relative paths (and relative SQLite URLs) are resolved against the config file's folder.
    """

    groups: list[GroupConfig]
    database: DatabaseConfig = field(default_factory=lambda: DatabaseConfig(url="sqlite:///tsad.db"))
    data_dir: str = "data"
    models_dir: str = "models"
    site_timezone: str = "UTC"

    def __post_init__(self) -> None:
        names = [g.name for g in self.groups]
        check(len(names) >= 1, "'groups' must list at least one sensor group")
        check(len(set(names)) == len(names), f"'groups' has duplicate names: {names}")
        check_timezone("site_timezone", self.site_timezone)

    def group(self, name: str) -> GroupConfig:
        for g in self.groups:
            if g.name == name:
                return g
        raise ConfigError(f"no sensor group named {name!r}; configured: {[g.name for g in self.groups]}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
