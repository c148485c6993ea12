"""tsad's own detector as an evaluated method: the very ``Detector`` class the nightly run uses.

Settings come from a group's config (its ``DetectorConfig`` and events rule) or, by default,
from the config dataclasses' defaults, which are the defaults a new sensor group gets. Channels
are the evaluated file's, ``sampling_seconds`` its median time step. Points are flagged as the operator
sees them: every point inside an event (``tsad.detection.events.event_mask``), so merge gaps and minimum
lengths count.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsad.config import DetectorConfig, EventConfig, GroupConfig, ModelConfig
from tsad.detection.events import event_mask
from tsad.model.detector import Detector

EVALUATION_GROUP = "evaluate"


def default_settings() -> DetectorConfig:
    """Every detector setting at its default (channels are set per dataset)."""
    return DetectorConfig(name=EVALUATION_GROUP, channels=["x"])


@dataclass
class _FittedDetector:
    detector: Detector
    events: EventConfig

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        scores = self.detector.score(frame)
        flags = event_mask(scores.aggregate, self.detector.threshold, self.events)
        return np.asarray(scores.aggregate, dtype=float), flags


class DetectorMethod:
    """Fits ``tsad.model.detector.Detector`` with ``settings`` on each training frame."""

    def __init__(self, settings: GroupConfig | DetectorConfig | None = None,
                 name: str | None = None, events: EventConfig | None = None) -> None:
        if isinstance(settings, GroupConfig):
            events, settings = events or settings.events, settings.detector_config()
        self.settings = settings or default_settings()
        self.events = events or EventConfig()
        origin = "defaults" if settings is None else f"group {self.settings.name}"
        self.name = name or f"tsad {self.settings.model.kind} ({origin})"

    def fit(self, train: pd.DataFrame) -> _FittedDetector:
        index = pd.DatetimeIndex(train.index)
        steps = (index[1:] - index[:-1]).total_seconds() if len(index) > 1 else [60.0]
        config = dataclasses.replace(self.settings, channels=[str(c) for c in train.columns],
                                     sampling_seconds=max(1, int(round(float(np.median(steps))))))
        return _FittedDetector(Detector.fit(config, train, checkpoint=False), self.events)

    def with_kind(self, kind: str) -> DetectorMethod:
        """The same settings with another network (its other model settings unchanged)."""
        model: ModelConfig = dataclasses.replace(self.settings.model, kind=kind)
        return DetectorMethod(dataclasses.replace(self.settings, model=model), f"tsad {kind}",
                              self.events)
