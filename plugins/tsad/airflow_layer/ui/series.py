"""The data behind the event page's interactive chart: readings, reconstruction and score.

Recomputed from what the run used, so the chart shows what the PNG and the alert showed: the
day's partition, scored by the event's model version (its ``model_version.artifact_uri``) as the
nightly scores (``Detector.score_partition``), and the top channels reconstructed as
``tsad.detection.plots`` does, over the same neighbourhood of the event. A sharded group's top
channel owned by another shard is reconstructed by that shard's model for the day
(``registry.select_version``, as the run chose it). Units: the config has no unit setting, so
channels carry ``unit: null`` and the chart names them only.

torch and pandas are imported inside the functions: the API server imports this at start.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from tsad.config import GroupConfig, TsadConfig

if TYPE_CHECKING:
    import numpy as np

    from tsad.model.detector import Detector

#: The most points one chart gets; a longer neighbourhood keeps, per bucket, the row with the
#: highest score (an anomaly's peak is never dropped) and says so (``step``).
MAX_POINTS = 3000
CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


class SeriesUnavailable(Exception):
    """The chart cannot be recomputed (partition or model gone); the message says why (404)."""


def event_series(config: TsadConfig, engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    """The chart's JSON for a current event (a ``queries.get_event`` row), cached per event,
    model version and run (a re-run gives new event ids)."""
    key = (event["event_id"], event["detection_run_id"], event["model_version_id"],
           str(event["start_ts"]), config.data_dir, config.site_timezone)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = _compute(config, engine, event)
    with _lock:
        _cache[key] = value
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _compute(config: TsadConfig, engine: Engine, event: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from tsad import fs
    from tsad.detection.plots import neighbourhood
    from tsad.ingest.partitions import partition_path, read_partition

    group = next((g for g in config.groups if g.name == event["sensor_group"]), None)
    if group is None:
        raise SeriesUnavailable(f"group {event['sensor_group']!r} is no longer configured")
    day = _as_date(event["partition_date"])
    detector = _event_detector(engine, event)
    path = partition_path(config.data_dir, group.name, day)
    if not fs.is_file(path):
        raise SeriesUnavailable(f"the readings of {group.name} on {day} are gone ({path} does not "
                                "exist: removed by retention?); re-run extract for that day")
    scores = detector.score_partition(path)
    times = scores.timestamps
    start = int(times.searchsorted(_utc(event["start_ts"])))
    stop = max(int(times.searchsorted(_utc(event["end_ts"]), side="right")), start + 1)
    owners = _owners(config, group, day, detector, _top(event, detector, group))
    length = max(d.config.window.length for d in owners.values())
    lo, hi = neighbourhood(len(times), start, stop, length)
    needed = [c for c in group.channels if any(c in d.channels for d in set(owners.values()))]
    frame = read_partition(config.data_dir, group.name, day, needed)
    if len(frame) != len(times):
        raise SeriesUnavailable(f"the partition {path} changed since it was scored ("
                                f"{len(frame)} rows, scores of {len(times)}); re-run the day")
    rows = _thin(np.asarray(scores.aggregate[lo:hi], dtype=np.float64))
    channels = []
    for name, owner in owners.items():
        raw = frame[owner.channels].to_numpy(dtype=np.float64)[lo:hi]
        recon = owner.reconstruct(raw)[:, owner.channels.index(name)]
        channels.append({"name": name, "unit": None, "reading": _floats(frame[name].to_numpy(
            dtype=np.float64)[lo:hi][rows]), "reconstruction": _floats(recon[rows])})
    ms = times[lo:hi].as_unit("ms").asi8[rows]
    return {
        "event_id": event["event_id"], "group": group.name, "day": day.isoformat(),
        "site_timezone": config.site_timezone, "model_version_id": event["model_version_id"],
        "times": [int(t) for t in ms], "step": _step(hi - lo),
        "event": {"start": _ms(event["start_ts"]), "end": _ms(event["end_ts"]),
                  "peak": _ms(event["peak_ts"])},
        "channels": channels,
        "score": _floats(np.asarray(scores.aggregate[lo:hi], dtype=np.float64)[rows]),
        "threshold": float(event["threshold"]),
    }


def _event_detector(engine: Engine, event: dict[str, Any]) -> Detector:
    """The event's own model version, as recorded (``model_version.artifact_uri``)."""
    from tsad.airflow_layer.ui.queries import get_model
    from tsad.errors import TsadError
    from tsad.model.registry import load_detector, version_at

    version_id = event["model_version_id"]
    model = get_model(engine, version_id)
    if model is None:
        raise SeriesUnavailable(f"model version {version_id!r} of the event is not recorded")
    try:
        return load_detector(version_at(model["artifact_uri"]))
    except TsadError as exc:
        raise SeriesUnavailable(f"model version {version_id} cannot be loaded: {exc}") from None


def _top(event: dict[str, Any], detector: Detector, group: GroupConfig) -> list[str]:
    """The event's top channels that the group still has; the model's first when none."""
    names = [t["channel"] for t in event["top_channels_json"] or []]
    return [n for n in names if n in group.channels] or detector.channels[:1]


def _owners(config: TsadConfig, group: GroupConfig, day: date, detector: Detector,
            top: list[str]) -> dict[str, Detector]:
    """Each shown channel's detector: the event's, or the day's model of its shard."""
    from tsad.config.shards import shard_channels
    from tsad.errors import TsadError
    from tsad.model.registry import load_detector, select_version

    owners: dict[str, Detector] = {}
    loaded: dict[int | None, Detector] = {}
    for name in top:
        if name in detector.channels:
            owners[name] = detector
            continue
        shard = next((s for s, cs in shard_channels(group).items() if name in cs), None)
        if shard not in loaded:
            version = select_version(config.models_dir, group.name, day, shard)
            try:
                if version is not None:
                    loaded[shard] = load_detector(version)
            except TsadError:
                pass
        if shard in loaded and name in loaded[shard].channels:
            owners[name] = loaded[shard]
    return owners


def _thin(score: np.ndarray) -> np.ndarray:
    """Row indices to send: all, or per bucket of ``_step`` rows the highest-scoring one."""
    import numpy as np

    n, step = len(score), _step(len(score))
    if step == 1:
        return np.arange(n)
    filled = np.where(np.isfinite(score), score, -np.inf)
    picks = [lo + int(np.argmax(filled[lo:lo + step])) for lo in range(0, n, step)]
    return np.asarray(picks, dtype=np.int64)


def _step(n: int) -> int:
    return max(1, -(-n // MAX_POINTS))


def _floats(values: np.ndarray) -> list[float | None]:
    """JSON numbers; NaN (no window covered the row, a gap) as null."""
    import numpy as np

    return [float(v) if np.isfinite(v) else None for v in values]


def _utc(ts: datetime) -> Any:
    import pandas as pd

    return pd.Timestamp(ts).tz_convert("UTC") if ts.tzinfo else pd.Timestamp(ts, tz="UTC")


def _ms(ts: datetime) -> int:
    return int(ts.astimezone(timezone.utc).timestamp() * 1000)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
