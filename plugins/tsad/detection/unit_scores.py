"""One unit's scores of a day (a whole group, or one channel shard), and its scratch file.

In the DAG a unit is scored by one task and the group's records are written by another, on any
worker: the scores travel through a scratch Parquet file, never through XCom. Its path holds the
Airflow run, so concurrent runs of the same day (a backfill beside the nightly run) never read
each other's scores:

    {data_dir}/scores/group={group}/date={YYYY-MM-DD}/run={run}/{unit}.parquet

with ``unit`` = ``all`` (unsharded) or ``s01``, ``s02``, ... Columns: ``timestamp``,
``aggregate`` (float64), ``score:{channel}`` (float32, the processed per-channel scores) and,
when the model has a training range, ``departed:{channel}`` (bool, the reading left it:
``tsad.model.departure``); everything else (model, threshold, drift check, window counts, missing and implausible readings
per channel) is JSON in the schema metadata. Writes
are atomic (a temp file renamed into place; object storage: one PUT), so a re-run replaces a
file whole, and the writer of the records removes the run's files once they are committed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tsad import fs
from tsad.errors import DataError
from tsad.ingest.partitions import TIMESTAMP, write_table_atomic
from tsad.config.shards import shard_folder, unit_label

META_KEY = b"tsad.detection.unit_scores"
SCORE_PREFIX = "score:"
DEPARTED_PREFIX = "departed:"


@dataclass
class UnitScores:
    """What the records writer needs from one unit: scores in the unit's channel order, the
    model that made them, and whether the day drifted away from that model."""

    group: str
    shard: int | None
    channels: list[str]
    model_version_id: str
    model_path: str
    threshold: float
    timestamps: pd.DatetimeIndex
    aggregate: np.ndarray  # [n] float64, the unit's score rule; NaN where no window covered
    point_scores: np.ndarray  # [n, len(channels)] float32, processed per-channel scores
    n_windows: int
    drift: bool
    drift_message: str
    started_at: datetime
    run_id: str
    possible_windows: int = 0  # windows of the day's grid, gap-free or not
    missing: dict[str, int] = field(default_factory=dict)  # NaN readings per channel
    implausible: dict[str, dict[str, Any]] = field(default_factory=dict)  # clipped (count, first)
    # [n, len(channels)] bool: readings outside their training range; None: not known (a model
    # saved before ranges existed, or a scratch file written before them)
    departed: np.ndarray | None = None

    @property
    def label(self) -> str:
        return unit_label(self.group, self.shard)


def scratch_dir(data_dir: str | Path, group: str, day: date, run_id: str) -> fs.Location:
    """The folder of one run's unit scores for a (group, day)."""
    return fs.location(data_dir, "scores", f"group={group}", f"date={day.isoformat()}",
                       f"run={_run_slug(run_id)}")


def scratch_path(data_dir: str | Path, group: str, day: date, run_id: str,
                 shard: int | None) -> fs.Location:
    name = "all" if shard is None else shard_folder(shard)
    return fs.location(scratch_dir(data_dir, group, day, run_id), f"{name}.parquet")


def write_scratch(scores: UnitScores, path: fs.Location) -> None:
    """Write ``scores`` to ``path`` atomically (object storage: one upload)."""
    write_table_atomic(_to_arrow(scores), path)


def read_scratch(path: fs.Location, what: str) -> UnitScores:
    """The unit scores at ``path``; a missing file names ``what`` was expected and the fix."""
    if not fs.is_file(path):
        raise DataError(f"no scores of {what} at {path}: its ensure_model or score task did not "
                        "finish in this run; fix that task, then clear it with its downstream "
                        "tasks")
    source: Any = path if isinstance(path, Path) else pa.BufferReader(fs.read_bytes(path))
    try:
        table = pq.read_table(source)
        meta = json.loads(table.schema.metadata[META_KEY])
    except (pa.ArrowException, OSError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"scores of {what} at {path} are unreadable ({exc}); re-run its score "
                        "task") from None
    channels = list(meta["channels"])
    stamps = pd.DatetimeIndex(table.column(TIMESTAMP).to_pandas()).tz_convert("UTC").as_unit("us")
    points = np.empty((table.num_rows, len(channels)), dtype=np.float32)
    for j, name in enumerate(channels):
        points[:, j] = table.column(SCORE_PREFIX + name).to_numpy(zero_copy_only=False)
    departed = None
    if all(DEPARTED_PREFIX + name in table.column_names for name in channels):
        departed = np.empty((table.num_rows, len(channels)), dtype=bool)
        for j, name in enumerate(channels):
            departed[:, j] = table.column(DEPARTED_PREFIX + name).to_numpy(zero_copy_only=False)
    return UnitScores(
        group=meta["group"], shard=meta["shard"], channels=channels,
        model_version_id=meta["model_version_id"], model_path=meta["model_path"],
        threshold=float(meta["threshold"]), timestamps=stamps.rename(TIMESTAMP),
        aggregate=table.column("aggregate").to_numpy(zero_copy_only=False).astype(np.float64),
        point_scores=points, n_windows=int(meta["n_windows"]), drift=bool(meta["drift"]),
        drift_message=str(meta["drift_message"]),
        started_at=datetime.fromisoformat(meta["started_at"]), run_id=str(meta["run_id"]),
        possible_windows=int(meta.get("possible_windows", 0)),
        missing=dict(meta.get("missing", {})), implausible=dict(meta.get("implausible", {})),
        departed=departed)


def remove_scratch(paths: list[fs.Location]) -> None:
    """Remove consumed scratch files (and the run's folder once empty, when local)."""
    for path in paths:
        if fs.is_remote(path):
            if fs.is_file(path):
                fs.remove(str(path))
            continue
        Path(path).unlink(missing_ok=True)
        try:
            Path(path).parent.rmdir()
        except OSError:
            pass  # not empty: another unit's file, or a temp file of a running writer


def _to_arrow(scores: UnitScores) -> pa.Table:
    n = len(scores.timestamps)
    shape = (n, len(scores.channels))
    if scores.aggregate.shape != (n,) or scores.point_scores.shape != shape or (
            scores.departed is not None and scores.departed.shape != shape):
        departed = "" if scores.departed is None else f", {scores.departed.shape}"
        raise ValueError(f"scores of {scores.label}: shapes {scores.aggregate.shape} and "
                         f"{scores.point_scores.shape}{departed} for {n} timestamps and "
                         f"{len(scores.channels)} channels")
    columns: dict[str, pa.Array] = {
        TIMESTAMP: pa.array(scores.timestamps.tz_convert("UTC").as_unit("us"),
                            type=pa.timestamp("us", tz="UTC")),
        "aggregate": pa.array(np.asarray(scores.aggregate, dtype=np.float64)),
    }
    for j, name in enumerate(scores.channels):
        columns[SCORE_PREFIX + name] = pa.array(
            np.ascontiguousarray(scores.point_scores[:, j], dtype=np.float32))
    if scores.departed is not None:
        for j, name in enumerate(scores.channels):
            columns[DEPARTED_PREFIX + name] = pa.array(
                np.ascontiguousarray(scores.departed[:, j], dtype=bool))
    meta = {"group": scores.group, "shard": scores.shard, "channels": scores.channels,
            "model_version_id": scores.model_version_id, "model_path": scores.model_path,
            "threshold": scores.threshold, "n_windows": scores.n_windows, "drift": scores.drift,
            "drift_message": scores.drift_message, "started_at": scores.started_at.isoformat(),
            "run_id": scores.run_id, "possible_windows": scores.possible_windows,
            "missing": scores.missing, "implausible": scores.implausible}
    table = pa.table(columns)
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def _run_slug(run_id: str) -> str:
    """A path-safe name for an Airflow run id (``scheduled__2026-03-06T01:30:00+00:00``), with a
    short hash so two run ids never share a folder."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)[:60]
    return f"{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"
