"""The throughput benchmark's synthetic plant: labelled readings and the quality measure.

Readings are mixed from shared drivers so that channels correlate as a real plant's do, and the
injected anomalies are labelled, so every speed figure can carry an AUC-PR beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

LENGTH = 64  # tsad's default window; anomalies keep one window clear of either end
CHANNELS = 30
BASE_US = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z in microseconds


def plant(n: int, channels: int, seed: int, anomalies: bool,
          t0: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Readings ``[n, channels]`` mixed from shared drivers (cycles, load regimes, a slow AR
    disturbance), plus labels of injected anomalies: spikes, level shifts, noise bursts, stuck
    sensors and correlation breaks."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(1000 + channels)  # a channel's character does not depend on seed
    t = np.arange(t0, t0 + n, dtype=np.float64)
    regime = np.repeat(rng.choice([0.15, 0.5, 0.9], size=n // 3000 + 2), 3000)[:n]
    load = lfilter([0.02], [1, -0.98], regime, zi=[0.98 * regime[0]])[0]
    drivers = np.stack([
        np.sin(2 * np.pi * t / 1440), np.sin(2 * np.pi * t / 97 + 1.0), load,
        lfilter([1.0], [1, -0.99], 0.05 * rng.standard_normal(n)),
        load * np.sin(2 * np.pi * t / 331 + 2.0)], axis=1)
    weights = mix.normal(size=(drivers.shape[1], channels))
    scale, offset = mix.uniform(0.5, 5, channels), mix.uniform(-10, 10, channels)
    noise = mix.uniform(0.02, 0.1, channels)
    x = (drivers @ weights + noise * rng.standard_normal((n, channels))) * scale + offset
    labels = np.zeros(n, dtype=bool)
    if anomalies:
        sd = x.std(axis=0)
        for _ in range(max(1, n // 4000)):
            kind = rng.integers(5)
            span = int(rng.integers(1, 4) if kind == 0 else rng.integers(30, 250))
            start = int(rng.integers(LENGTH, n - span - LENGTH))
            rows = slice(start, start + span)
            cols = rng.choice(channels, size=int(rng.integers(1, 4)), replace=False)
            if kind == 0:
                x[rows, cols] += rng.choice([-6, 6]) * sd[cols]
            elif kind == 1:
                x[rows, cols] += rng.choice([-2.5, 2.5]) * sd[cols]
            elif kind == 2:
                x[rows, cols] += 1.5 * sd[cols] * rng.standard_normal((span, len(cols)))
            elif kind == 3:
                x[rows, cols] = x[start, cols]
            else:
                x[rows, cols] = 2 * x[:, cols].mean(axis=0) - x[rows, cols]
            labels[rows] = True
    return x, labels


def write_plant(path: Path, n: int, channels: int, seed: int, anomalies: bool,
                chunk: int = 1 << 20) -> np.ndarray:
    """Write a partition-shaped Parquet file (``timestamp[us, UTC]`` + float64 channels) chunk by
    chunk (row groups of ``chunk`` rows, pyarrow's default size); returns the labels."""
    names = channel_names(channels)
    stamp = pa.timestamp("us", tz="UTC")
    schema = pa.schema([("timestamp", stamp)] + [(c, pa.float64()) for c in names])
    labels = []
    with pq.ParquetWriter(path, schema) as writer:
        for lo in range(0, n, chunk):
            m = min(chunk, n - lo)
            x, lab = plant(m, channels, seed * 7919 + lo, anomalies, t0=lo)
            stamps = pa.array(BASE_US + (lo + np.arange(m)) * 1_000_000, type=stamp)
            columns = [stamps, *[pa.array(x[:, j]) for j in range(channels)]]
            writer.write_table(pa.table(columns, schema=schema))
            labels.append(lab)
    return np.concatenate(labels)


def channel_names(channels: int) -> list[str]:
    """The plant's column names, ``c0000`` onwards (the same in every file it writes)."""
    return [f"c{j:04d}" for j in range(channels)]


def auc_pr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision of per-timestamp scores (NaN = never flagged, ranked last)."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    order = np.argsort(-s, kind="stable")
    hits = labels[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / max(hits.sum(), 1))
