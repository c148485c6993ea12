"""Per-channel standardisation fitted on training data only and stored with the model.

The scaler is part of a model version: scoring new data with a scaler fitted on that data would
hide exactly the level shifts tsad is meant to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChannelScaler:
    """``(x - mean) / scale`` per channel; constant channels get scale 1 instead of dividing by 0."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, series: np.ndarray) -> ChannelScaler:
        """Fit on ``series [n, c]``, ignoring NaN rows (gaps)."""
        mean = np.nanmean(series, axis=0)
        std = np.nanstd(series, axis=0)
        scale = np.where(std > 1e-8 * np.maximum(np.abs(mean), 1.0), std, 1.0)
        return cls(mean=mean.astype(np.float64), scale=scale.astype(np.float64))

    def transform(self, series: np.ndarray) -> np.ndarray:
        return ((series - self.mean) / self.scale).astype(np.float32)

    def transform_columns(self, columns: list[np.ndarray], out: np.ndarray) -> None:
        """``transform`` of one column per channel, written into ``out [rows, c]`` (float32).

        For readers that get a file's data column by column: each column is scaled while it
        is in cache and stored once, instead of stacking, scaling and transposing whole tables.
        """
        for j, column in enumerate(columns):
            out[:, j] = (column - self.mean[j]) / self.scale[j]

    def inverse(self, scaled: np.ndarray) -> np.ndarray:
        return scaled * self.scale + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> ChannelScaler:
        return cls(mean=np.asarray(data["mean"], dtype=np.float64),
                   scale=np.asarray(data["scale"], dtype=np.float64))
