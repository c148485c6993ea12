"""Scoring a day's partition straight from Parquet, row group by row group.

``Detector.score_partition`` runs this. Scoring ``read_partition(...)`` in memory would hold
the day three times over (Arrow float64, the DataFrame, the scaled float32 copy) before the
first window is scored. Here only the outputs
are day-sized (float32 point scores, per-window scores, timestamps): the readings go through in
record batches of ``READ_ROWS`` rows, each scaled to float32 and scored with the last
``length - 1`` rows of the batch before it, so windows across batch and row-group boundaries are
scored exactly as in memory. Peak memory (bench/RESULTS.md) is 1.5-2.5x the float32 size of the
day plus a constant, whatever the window length; ``Detector.postprocess`` then works in place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from torch import nn

from tsad import fs
from tsad.errors import DataError
from tsad.ingest.partitions import TIMESTAMP
from tsad.model.departure import ReadingRange
from tsad.model.plausibility import ReadingCounts
from tsad.model.scaling import ChannelScaler
from tsad.model.scoring import Scores, SeriesScorer

READ_ROWS = 1 << 13  # rows per record batch read from the file
READ_BUFFER = 1 << 16  # bytes per column: column chunks are read through buffered streams


def score_parquet(network: nn.Module, path: str | Path, channels: list[str], length: int,
                  stride: int, scaler: ChannelScaler, read_rows: int = READ_ROWS,
                  reading_range: ReadingRange | None = None, repeats: bool = False) -> Scores:
    """Score the wide Parquet file at ``path``, scaled by the model's ``scaler``; the scores
    carry the counts of missing and clipped readings (``tsad.model.plausibility``) and, given
    the model's ``reading_range``, which readings departed from it (``tsad.model.departure``,
    one bool per reading: a quarter of the point scores' size) and, with ``repeats``, which
    readings repeat the one before (``tsad.model.stuck``, another bool per reading)."""
    file = open_partition(path, channels)
    n = file.metadata.num_rows
    scorer = SeriesScorer(network, n, len(channels), length, stride)
    counts = ReadingCounts.empty(len(channels))
    departed = None if reading_range is None else np.zeros((n, len(channels)), dtype=bool)
    repeated = np.zeros((n, len(channels)), dtype=bool) if repeats else None
    for first_row, chunk in overlapping_chunks(file, channels, length - 1, scaler, read_rows,
                                               counts):
        scorer.add(first_row, chunk)
        if departed is not None:  # the overlap's rows are written again, to the same values
            departed[first_row: first_row + len(chunk)] = reading_range.departed(chunk)
        if repeated is not None:  # the chunk's first row is compared with nothing: row 0, or
            # an overlap row whose own comparison an earlier chunk wrote
            np.equal(chunk[1:], chunk[:-1], out=repeated[first_row + 1: first_row + len(chunk)])
    scores = scorer.result(read_timestamps(file))
    scores.readings, scores.departed, scores.repeats = counts, departed, repeated
    return scores


def open_partition(path: str | Path, channels: list[str]) -> pq.ParquetFile:
    """The Parquet file, checked to hold a timestamp column and every channel.

    ``path`` is a local path (or ``file://`` URL), or an object storage URL (``s3://...``, see
    ``tsad.fs``): that one is opened through fsspec as a seekable file, and Arrow's pre-buffering
    fetches only the footer and the requested columns' chunks, in a few coalesced ranged GETs per
    row group instead of one request per 64 KB read (memory: those columns' compressed chunks
    of the row group being read, never the whole object).
    """
    location = fs.location(path)
    if not fs.is_file(location):
        raise DataError(f"partition {path} does not exist; run extract for that day first")
    remote = not isinstance(location, Path)
    try:
        source = _open_remote(str(location)) if remote else location
        file = pq.ParquetFile(source, pre_buffer=remote, buffer_size=READ_BUFFER)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(
            f"partition {path} is unreadable ({exc}); re-run extract for that day") from None
    names = file.schema_arrow.names
    missing = [c for c in [TIMESTAMP, *channels] if c not in names]
    if missing:
        found = [name for name in names if name != TIMESTAMP]
        raise DataError(f"partition {path} has no column {missing[0]!r}; it has channels {found}; "
                        "re-run extract for that day with the current config")
    return file


def _open_remote(url: str) -> Any:
    """A read-only, seekable fsspec file for ``url``: each read is one ranged GET (no cache;
    Arrow asks for whole coalesced ranges)."""
    filesystem, key = fs.filesystem(url)
    return filesystem.open(key, "rb", cache_type="none")


def overlapping_chunks(file: pq.ParquetFile, channels: list[str], overlap: int,
                       scaler: ChannelScaler, read_rows: int = READ_ROWS,
                       counts: ReadingCounts | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_row, scaled [rows, c])`` per record batch, each led by ``overlap`` earlier rows;
    each reading's scaling counted once into ``counts``."""
    carry = np.empty((0, len(channels)), dtype=np.float32)
    row = 0
    for batch in file.iter_batches(batch_size=read_rows, columns=channels, use_threads=False):
        chunk = np.empty((len(carry) + batch.num_rows, len(channels)), dtype=np.float32)
        chunk[: len(carry)] = carry
        # by name (Arrow keeps the file's column order), scaled column by column into place
        scaler.transform_columns([batch.column(name).to_numpy(zero_copy_only=False)
                                  for name in channels], chunk[len(carry):], counts, row)
        yield row - len(carry), chunk
        row += batch.num_rows
        carry = chunk[len(chunk) - min(overlap, len(chunk)):].copy()


def read_timestamps(file: pq.ParquetFile) -> pd.DatetimeIndex:
    """The timestamp column as the shared index type (UTC, microseconds, named ``timestamp``)."""
    column = file.read(columns=[TIMESTAMP]).column(TIMESTAMP)
    index = pd.DatetimeIndex(column.to_pandas())
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("us").rename(TIMESTAMP)
