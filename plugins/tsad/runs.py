"""Maximal runs of True in a boolean mask: the one place that finds them (flags -> events, gaps
in a grid, labelled events in evaluation, rows a person marked normal)."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[start, stop)`` index ranges of the maximal runs of True in a 1-D boolean mask."""
    edges = np.diff(np.concatenate(([0], np.asarray(mask, dtype=np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
