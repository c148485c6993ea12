"""The throughput benchmark's shared set-up: the profiles, the data files, the trained detector.

Every section of ``bench/throughput.py`` takes the ``Setup`` that ``prepare`` returns, so each
one reads as its measurement alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from plant import BASE_US, CHANNELS, LENGTH, channel_names, plant, write_plant
from tsad.config import DetectorConfig, ModelConfig, WindowConfig
from tsad.model.detector import Detector
from tsad.model.streaming import score_parquet

DAY_CHANNELS, DAY_STEPS, DAY_GROUP = 1000, 86_400, 50
PROFILES: dict[str, dict[str, Any]] = {  # smoke: a seconds-long check that the script runs
    "full": {"n_train": 200_000, "epochs": 8, "small": 100_000, "large": 1_000_000,
             "tutorial_cap": None, "pyod_epochs": 10, "pyod_windows": 40_000,
             "day_steps": DAY_STEPS, "epoch_n": 1_000_000, "rss_big": 10_000_000, "repeats": 5},
    "quick": {"n_train": 50_000, "epochs": 3, "small": 100_000, "large": 1_000_000,
              "tutorial_cap": 100_000, "pyod_epochs": 3, "pyod_windows": 10_000,
              "day_steps": DAY_STEPS // 4, "epoch_n": 100_000, "rss_big": 3_000_000, "repeats": 3},
    "smoke": {"n_train": 5_000, "epochs": 1, "small": 10_000, "large": 30_000,
              "tutorial_cap": 10_000, "pyod_epochs": 1, "pyod_windows": 1_000,
              "day_steps": 2_000, "epoch_n": 10_000, "rss_big": 60_000, "repeats": 1},
}


@dataclass
class Setup:
    """What every section shares: the profile, the data files and the trained detector."""

    profile: dict[str, Any]
    repeats: int
    threads: int
    work: Path
    names: list[str]
    train_raw: np.ndarray
    files: dict[int, Path]  # test files by length: profile["small"], profile["large"]
    labels: dict[int, np.ndarray]
    warmup: Path  # 20k normal rows, scored first by every RSS child
    group: DetectorConfig
    detector: Detector
    model_dir: Path

    @property
    def small_n(self) -> int:
        return self.profile["small"]

    @property
    def large_n(self) -> int:
        return self.profile["large"]

    @property
    def half(self) -> int:  # repeats of the slower measurements
        return max(1, self.repeats // 2)

    def tsad(self, path: Path) -> Any:  # Parquet -> streamed errors -> the detector's score rule
        return self.detector.score_partition(path)

    def raw(self, path: Path, net: torch.nn.Module | None = None, stride: int | None = None) -> Any:
        """The streamed errors alone, with the trained network or another one."""
        return score_parquet(net or self.detector.network_, path, self.names, LENGTH,
                             stride or self.group.window.stride, self.detector.scaler_)


def prepare(profile: dict[str, Any], repeats: int, threads: int, work: Path) -> Setup:
    """Write the plant data and fit a detector with tsad's defaults (window 64) on normal data."""
    n_train, names = profile["n_train"], channel_names(CHANNELS)
    began = time.perf_counter()
    train_raw, _ = plant(n_train, CHANNELS, seed=1, anomalies=False)
    files = {n: work / f"test-{n}.parquet" for n in (profile["small"], profile["large"])}
    labels = {n: write_plant(path, n, CHANNELS, seed=2, anomalies=True)
              for n, path in files.items()}
    warmup = work / "warmup.parquet"
    write_plant(warmup, 20_000, CHANNELS, seed=3, anomalies=False)
    print(f"  data written in {time.perf_counter() - began:.0f}s under {work}")

    group = DetectorConfig(name="bench", channels=names, sampling_seconds=1,
                           window=WindowConfig(length=LENGTH),
                           model=ModelConfig(epochs=profile["epochs"]))
    stamps = pd.to_datetime(BASE_US + np.arange(n_train) * 1_000_000, unit="us", utc=True)
    index = pd.DatetimeIndex(stamps, name="timestamp")
    began = time.perf_counter()
    detector = Detector.fit(group, pd.DataFrame(train_raw, index=index, columns=names),
                            checkpoint=False)
    model_cfg = group.model
    print(f"  trained {model_cfg.kind} (hidden {model_cfg.hidden}, latent {model_cfg.latent}, "
          f"stride {group.window.stride}) in {time.perf_counter() - began:.0f}s, "
          f"{detector.metrics_['epochs_run']} epochs")
    model_dir = work / "model"
    model_dir.mkdir(exist_ok=True)
    detector.save(model_dir)
    return Setup(profile, repeats, threads, work, names, train_raw, files, labels, warmup, group,
                 detector, model_dir)


def kinds(s: Setup, *first: str) -> list[str]:
    """Model kinds measured: ``first``, then the default kind if it is not among them."""
    return list(dict.fromkeys((*first, s.group.model.kind)))
