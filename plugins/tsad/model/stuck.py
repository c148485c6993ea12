"""Stuck sensors: a channel whose reading stops changing for longer than it ever did in training.

A frozen reading (a sensor or its transmitter stuck, a historian repeating its last good value)
is the anomaly an autoencoder finds worst: the flat line is easy to reconstruct, and it departs
from the process only as fast as the process moves (docs/quality.md, *Per anomaly kind*: recall
0.19-0.37, the weakest kind for every detector). Its evidence is the noise it lost, which no
squared-error score uses. So it gets its own rule, learned from the training readings alone:

- a channel whose training readings repeat exactly on fewer than ``MAX_REPEAT_SHARE`` of its
  steps (an analog measurement: noise makes every reading new) is watched; a channel that
  repeats more (quantised, compressed by a historian's deadband, a set-point) is not: its flat
  runs are normal;
- a watched channel is stuck from the first row of a run of identical readings at least
  ``limit`` rows long: ``threshold.stuck_rows`` (default one window length), and at least twice
  its longest run in training, plus one.

Scoring marks which readings repeat the previous one (``repeats``; one bool per reading, as
``departed``), and the score rule raises a stuck channel's score and the aggregate to
``threshold x (1 + run / limit)``: at least twice the threshold, growing with the run, so the
events, their top channel and their severity follow from the scores as for any other anomaly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: a channel repeating on more of its training steps than this is not watched
MAX_REPEAT_SHARE = 0.01


def repeats(series: np.ndarray) -> np.ndarray:
    """``[rows, c]`` bool: the reading equals the one before it (a missing one never does)."""
    out = np.zeros(series.shape, dtype=bool)
    if len(series) > 1:
        np.equal(series[1:], series[:-1], out=out[1:])
    return out


def run_lengths(repeated: np.ndarray) -> np.ndarray:
    """``[rows, c]``: the length in rows of the flat run each reading belongs to (1 for a
    reading that differs from both neighbours)."""
    out = np.empty(repeated.shape, dtype=np.int64)
    for j in range(repeated.shape[1]):
        column = repeated[:, j]
        run = np.cumsum(~column)  # a new run starts at every reading that is not a repeat
        out[:, j] = np.bincount(run)[run]
    return out


@dataclass(frozen=True)
class StuckLimits:
    """Per channel, the flat-run length (rows) from which it is stuck; None: not watched."""

    limits: list[int | None]

    @classmethod
    def fit(cls, series: np.ndarray, min_rows: int) -> StuckLimits:
        """Learn the limits from the (scaled) training ``series [rows, c]``; ``min_rows`` 0
        watches no channel."""
        repeated = repeats(series)
        steps = np.isfinite(series[1:]) & np.isfinite(series[:-1])
        limits: list[int | None] = []
        for j in range(series.shape[1]):
            n_steps = int(steps[:, j].sum())
            share = repeated[1:, j].sum() / n_steps if n_steps else 1.0
            if min_rows <= 0 or share >= MAX_REPEAT_SHARE:
                limits.append(None)
                continue
            longest = int(run_lengths(repeated[:, j:j + 1]).max()) if len(series) else 1
            limits.append(max(int(min_rows), 2 * longest + 1))
        return cls(limits)

    @property
    def watched(self) -> bool:
        return any(limit is not None for limit in self.limits)

    def severity(self, repeated: np.ndarray) -> np.ndarray:
        """``[rows, c]``: 0 where a reading is not stuck, else 1 + its run's length / limit."""
        out = np.zeros(repeated.shape, dtype=np.float64)
        for j, limit in enumerate(self.limits):
            if limit is None or not repeated[:, j].any():
                continue
            runs = run_lengths(repeated[:, j:j + 1])[:, 0]
            stuck = runs >= limit
            out[stuck, j] = 1.0 + runs[stuck] / limit
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"limits": list(self.limits), "max_repeat_share": MAX_REPEAT_SHARE}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> StuckLimits | None:
        """None for a model saved before stuck sensors were watched."""
        return None if not d else cls([None if v is None else int(v) for v in d["limits"]])
