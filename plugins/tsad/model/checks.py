"""The guards every trained model is measured against, on its held-out normal rows.

- **Persistence baseline**: x[t] = x[t-1]. An autoencoder whose reconstruction error is not
  below the error of repeating the last reading predicts nothing; the training log says so.
- **Copying its input**: spikes of ``SPIKE_SIZE`` training standard deviations are added to
  held-out windows; a model that reconstructs most of a spike has no real bottleneck and will
  reconstruct anomalies too.

Both go into the model's metrics (``model_version.metrics_json``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from tsad.windows import valid_starts, window_view

log = logging.getLogger(__name__)

SPIKE_SIZE = 6.0  # in training standard deviations
SPIKE_WINDOWS = 256  # held-out windows the copy check injects into


def baseline_checks(network: torch.nn.Module, held_out: np.ndarray, length: int, seed: int,
                     model_error: float) -> dict[str, Any]:
    """Persistence-baseline error and the copy-the-input check on held-out data (scaled units)."""
    finite = held_out[np.isfinite(held_out).all(axis=1)]
    persistence = float(np.mean((finite[1:] - finite[:-1]) ** 2)) if len(finite) > 1 else float("nan")
    rng = np.random.default_rng(seed)
    starts = valid_starts(held_out, np.arange(max(len(held_out) - length + 1, 0)), length)
    picked = rng.choice(starts, size=min(SPIKE_WINDOWS, len(starts)), replace=False)
    windows, rows = window_view(held_out, length)[picked].copy(), np.arange(len(picked))
    at, channel = rng.integers(1, length - 1, len(picked)), rng.integers(0, held_out.shape[1], len(picked))
    windows[rows, at, channel] += SPIKE_SIZE
    with torch.inference_mode():
        recon = network(torch.from_numpy(windows)).numpy()
    residual = windows[rows, at, channel] - recon[rows, at, channel]
    ratio = float(np.mean(residual**2) / SPIKE_SIZE**2)
    return {"persistence_error": persistence, "model_error": model_error,
            "beats_persistence": bool(model_error < persistence), "spike_error_ratio": ratio,
            "copies_input": bool(ratio < 0.5)}


def log_checks(group: str, metrics: dict[str, Any]) -> None:
    """The training guards in the training log: always the figures, a warning when one fails."""
    log.info("group %s: held-out error %.4f vs persistence x[t]=x[t-1] %.4f; injected spikes "
             "kept %.0f%% of their error", group, metrics["model_error"],
             metrics["persistence_error"], 100 * metrics["spike_error_ratio"])
    if not metrics["beats_persistence"]:
        log.warning("group %s: the autoencoder's held-out error %.4f is not below the persistence "
                    "baseline x[t]=x[t-1] (%.4f): it predicts no better than repeating the last "
                    "reading", group, metrics["model_error"], metrics["persistence_error"])
    if metrics["copies_input"]:
        log.warning("group %s: the autoencoder reconstructs %.0f%% of injected spikes: it copies "
                    "its input and will miss anomalies", group,
                    100 * (1 - metrics["spike_error_ratio"]))
