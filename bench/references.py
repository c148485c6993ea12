"""The throughput benchmark's references: what tsad's scoring is measured against.

Both are implemented here, as their usual users write them, so that the ratios in the table
compare like with like (same data, same windows, the same trained model for the tutorial).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from plant import LENGTH

if TYPE_CHECKING:
    from tsad.model.scaling import ChannelScaler


def tutorial(network: torch.nn.Module, path: Path, channels: list[str], scaler: ChannelScaler,
             rows: int | None = None, batch: int = 256) -> np.ndarray:
    """The tutorial pipeline: pandas read, a Python loop of window slices, ``np.stack``, then the
    model in eval mode; each timestamp gets the error of the window ending at it."""
    frame = pd.read_parquet(path, columns=channels)
    series = scaler.transform(frame.to_numpy()[:rows])
    windows = []
    for i in range(len(series) - LENGTH + 1):
        windows.append(series[i: i + LENGTH])
    x = np.stack(windows)
    network.eval()
    errors = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = torch.from_numpy(x[i: i + batch])
            errors.append(((network(xb) - xb) ** 2).mean(dim=(1, 2)).numpy())
    scores = np.full(len(series), np.nan)
    scores[LENGTH - 1:] = np.concatenate(errors)
    return scores


def pyod_fit(train_raw: np.ndarray, epochs: int, max_windows: int) -> Any:
    """PyOD's AutoEncoder (its defaults but epochs) on flattened training windows."""
    from pyod.models.auto_encoder import AutoEncoder

    step = max(1, (len(train_raw) - LENGTH + 1) // max_windows)
    flat = flat_windows(train_raw)[::step]
    model = AutoEncoder(epoch_num=epochs, verbose=0, random_state=0)
    model.fit(flat)
    return model


def flat_windows(raw: np.ndarray) -> np.ndarray:
    """Stride-1 windows flattened to ``[n - L + 1, L * c]`` (one copy, vectorised: fair to PyOD)."""
    view = np.lib.stride_tricks.sliding_window_view(raw, LENGTH, axis=0).transpose(0, 2, 1)
    return view.reshape(len(view), -1)


def pyod_score(model: Any, path: Path, channels: list[str]) -> np.ndarray:
    """PyOD's scores per timestamp: each gets the score of the window ending at it."""
    raw = pd.read_parquet(path, columns=channels).to_numpy()
    scores = np.full(len(raw), np.nan)
    scores[LENGTH - 1:] = model.decision_function(flat_windows(raw))
    return scores
