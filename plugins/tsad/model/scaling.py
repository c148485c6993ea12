"""Per-channel standardisation fitted on training data only and stored with the model.

The scaler is part of a model version: scoring new data with a scaler fitted on that data would
hide exactly the level shifts tsad is meant to find. Readings implausible relative to it are
clipped when scaled, and masked before it is fitted (``tsad.model.plausibility``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from tsad.model.moments import column_moments
from tsad.model.plausibility import ReadingCounts, check_scaler, clip_scaled, mask_implausible


@dataclass(frozen=True)
class ChannelScaler:
    """``(x - mean) / scale`` per channel; constant channels get scale 1 instead of dividing by 0."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, series: np.ndarray) -> ChannelScaler:
        """Fit on ``series [n, c]``, ignoring NaN rows (gaps); a block of rows at a time
        (``tsad.model.moments``), never a copy of the whole range."""
        _, mean, var = column_moments(series)
        std = np.sqrt(var)
        scale = np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return cls(mean=mean.astype(np.float64), scale=scale.astype(np.float64))

    def transform(self, series: np.ndarray, counts: ReadingCounts | None = None,
                  first_row: int = 0, overwrite: bool = False) -> np.ndarray:
        """Scaled float32 ``series``, clipped to ``±PLAUSIBLE_Z`` (counted into ``counts``,
        rows from ``first_row``). ``overwrite=True`` scales a float64 ``series`` in place on
        the way (a training range the caller drops afterwards: one copy fewer)."""
        if overwrite and isinstance(series, np.ndarray) and series.dtype == np.float64:
            scaled = series
            scaled -= self.mean
            scaled /= self.scale
        else:
            scaled = (np.asarray(series, dtype=np.float64) - self.mean) / self.scale
        clip_scaled(scaled, counts, first_row)
        return scaled.astype(np.float32)

    def transform_columns(self, columns: list[np.ndarray], out: np.ndarray,
                          counts: ReadingCounts | None = None, first_row: int = 0) -> None:
        """``transform`` of one column per channel, written into ``out [rows, c]`` (float32).

        For readers that get a file's data column by column: each column is scaled while it
        is in cache and stored once, instead of stacking, scaling and transposing whole tables.
        """
        for j, column in enumerate(columns):
            scaled = (np.asarray(column, dtype=np.float64) - self.mean[j]) / self.scale[j]
            clip_scaled(scaled, counts, first_row, j)
            out[:, j] = scaled

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.scale + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ChannelScaler:
        return cls(mean=np.asarray(data["mean"], dtype=np.float64),
                   scale=np.asarray(data["scale"], dtype=np.float64))


def fit_training_scaler(raw: np.ndarray, timestamps: pd.DatetimeIndex, channels: list[str],
                        group: str) -> tuple[ChannelScaler, np.ndarray, dict[str, Any]]:
    """The scaler of a training range, fitted once its implausible readings are masked
    (``tsad.model.plausibility.mask_implausible``): ``(scaler, masked raw, what was masked)``,
    the masked raw a new float64 array the caller owns. Never a scaler with an infinite or NaN
    mean or scale (a ModelError names the channel)."""
    masked, found = mask_implausible(raw, timestamps, channels, group)
    with np.errstate(over="ignore", invalid="ignore"):
        scaler = ChannelScaler.fit(masked)
    check_scaler(scaler.mean, scaler.scale, channels, group)
    return scaler, masked, found
