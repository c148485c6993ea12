"""Labelled benchmark files (SKAB format first) read into tsad's in-memory shape.

A labelled file is a ``;``-separated CSV with a header, a first column of timestamps, numeric
channel columns and a label column (``anomaly``: 1 on anomalous rows). Other label columns SKAB
ships (``changepoint``) are dropped, never used as channels. Timestamps become a UTC
``DatetimeIndex`` named ``timestamp``; rows must strictly increase in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tsad.errors import DataError

LABEL_COLUMN = "anomaly"
OTHER_LABELS = ("changepoint",)
SEPARATOR = ";"


@dataclass(frozen=True)
class LabelledSeries:
    """One file: its readings (wide, UTC index) and a boolean label per row."""

    name: str
    frame: pd.DataFrame
    labels: np.ndarray


def read_series(path: str | Path, label_column: str = LABEL_COLUMN,
                require_labels: bool = True) -> LabelledSeries:
    """Read one file; ``labels`` is all False when it has no label column and none is required."""
    file = Path(path)
    try:
        raw = pd.read_csv(file, sep=SEPARATOR)
    except (OSError, ValueError) as exc:
        raise DataError(f"{file}: cannot read it as a '{SEPARATOR}'-separated CSV: {exc}") from None
    if raw.shape[1] < 2:
        raise DataError(f"{file}: expected a timestamp column and channel columns separated by "
                        f"'{SEPARATOR}', found columns {list(raw.columns)}")
    if label_column in raw.columns:
        labels = _labels(raw[label_column], file, label_column)
    elif require_labels:
        raise DataError(f"{file}: no '{label_column}' column; columns are {list(raw.columns)}")
    else:
        labels = np.zeros(len(raw), dtype=bool)
    time_column = raw.columns[0]
    stamps = pd.to_datetime(raw[time_column], errors="coerce")
    if stamps.isna().any():
        row = int(np.flatnonzero(stamps.isna())[0])
        raise DataError(f"{file}: column {time_column!r} row {row + 2} is not a timestamp")
    index = pd.DatetimeIndex(stamps, name="timestamp")
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise DataError(f"{file}: timestamps in {time_column!r} must strictly increase")
    dropped = {time_column, label_column, *OTHER_LABELS}
    channels = [c for c in raw.columns if c not in dropped]
    frame = raw[channels].apply(pd.to_numeric, errors="coerce").astype(np.float64)
    bad = [c for c in channels if frame[c].isna().all()]
    if bad:
        raise DataError(f"{file}: column(s) {bad} hold no numbers; remove them or fix the file")
    frame.index = index
    return LabelledSeries(name=str(file), frame=frame, labels=labels)


def _labels(column: pd.Series, file: Path, name: str) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").to_numpy()
    if np.isnan(values).any() or not np.isin(values, (0, 1)).all():
        raise DataError(f"{file}: column {name!r} must hold only 0 and 1")
    return values.astype(bool)


def _has_label(file: Path, label_column: str) -> bool:
    with open(file, encoding="utf-8", errors="replace") as handle:
        header = handle.readline().strip().split(SEPARATOR)
    return label_column in header


def load_labelled_dir(root: str | Path, label_column: str = LABEL_COLUMN) -> list[LabelledSeries]:
    """Every labelled CSV under ``root`` (any depth), sorted by relative path, named by it."""
    base = Path(root)
    if not base.is_dir():
        raise DataError(f"{base}: not a directory of labelled CSV files")
    files = sorted((f for f in base.rglob("*.csv") if f.is_file() and _has_label(f, label_column)),
                   key=lambda f: _natural(f.relative_to(base)))
    if not files:
        raise DataError(f"{base}: no CSV file with a '{label_column}' column found under it")
    out = []
    for file in files:
        series = read_series(file, label_column)
        out.append(LabelledSeries(str(file.relative_to(base)), series.frame, series.labels))
    return out


def _natural(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key so ``valve1/2.csv`` comes before ``valve1/10.csv``."""
    import re

    parts = re.split(r"(\d+)", str(path))
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)
