"""The ``block`` threshold strategy: a false-alarm budget met with confidence on scores whose
neighbours are not independent (docs/quality.md, *Calibration*).

Registered under its name when ``tsad.model.thresholds`` imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from tsad.model.thresholds import Threshold, _optional


class BlockThreshold(Threshold):
    """A false-alarm ``budget`` (the share of normal rows allowed above the threshold) met with
    ``confidence`` on scores whose neighbours are not independent.

    Fitted on the smoothed scores of held-out normal rows in time order. Neighbouring scores
    share windows and smoothing, so the rows hold fewer independent values than they number: a
    plain quantile of a short held-out tail is too tight. The scores are cut into contiguous
    blocks of ``block_rows`` rows (twice their integrated autocorrelation time, at least
    ``MIN_BLOCK_ROWS``); resampling whole blocks (a moving-block bootstrap, ``REPLICATES``
    times) gives the spread of the ``1 - budget`` quantile, and the threshold is its
    ``confidence`` quantile: few independent blocks give a wide spread and a larger margin,
    many give the plain quantile. ``estimate_``/``lower_``/``upper_`` are stored with the model.
    Fewer than ``MIN_BLOCKS`` blocks cannot support that: the threshold is then the largest
    held-out score, and ``note_`` says so.
    """

    strategy = "block"
    defaults = {"budget": 0.01, "confidence": 0.9}
    on_smoothed = True
    MIN_BLOCK_ROWS, MIN_BLOCKS, REPLICATES = 8, 5, 400

    def __init__(self, budget: float, confidence: float, margin: float = 1.0) -> None:
        super().__init__(margin)
        if not 0.0 < budget < 0.5:
            raise ValueError(f"'budget' must be in (0, 0.5), got {budget!r}")
        if not 0.5 <= confidence < 1.0:
            raise ValueError(f"'confidence' must be in [0.5, 1), got {confidence!r}")
        self.budget, self.confidence = float(budget), float(confidence)
        self.estimate_ = self.lower_ = self.upper_ = None
        self.block_rows_: int | None = None
        self.n_blocks_: int | None = None
        #: rows one independent value spans at least, known to the caller (the score rule's
        #: smoothing span and window length): scores closer than that share inputs
        self.min_block_rows = self.MIN_BLOCK_ROWS

    def params(self) -> dict[str, float]:
        return {"budget": self.budget, "confidence": self.confidence}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "estimate": self.estimate_, "lower": self.lower_,
                "upper": self.upper_, "block_rows": self.block_rows_, "n_blocks": self.n_blocks_}

    def _restore(self, d: dict[str, Any]) -> None:
        super()._restore(d)
        self.estimate_, self.lower_, self.upper_ = (
            _optional(d.get(k), float) for k in ("estimate", "lower", "upper"))
        self.block_rows_ = _optional(d.get("block_rows"), int)
        self.n_blocks_ = _optional(d.get("n_blocks"), int)

    def _level(self, errors: np.ndarray) -> float:
        q = 1.0 - self.budget
        self.estimate_ = float(np.quantile(errors, q))
        rows, n_blocks, samples = block_resamples(errors, self.min_block_rows, self.REPLICATES)
        self.block_rows_, self.n_blocks_ = rows, n_blocks
        if samples is None:
            self.lower_ = self.upper_ = float(errors.max())
            self.note_ = (f"{n_blocks} independent block(s) of {rows} rows, need "
                          f"{self.MIN_BLOCKS}: the threshold is the largest held-out score")
            return self.upper_
        levels = np.array([np.quantile(sample, q) for sample in samples])
        self.lower_ = float(np.quantile(levels, 1.0 - self.confidence))
        self.upper_ = float(np.quantile(levels, self.confidence))
        return max(self.upper_, self.estimate_)


def correlation_time(series: np.ndarray, max_lag: int = 4096) -> float:
    """Integrated autocorrelation time in rows: 1 + 2 x the sum of the autocorrelations up to
    the first lag where they turn non-positive (at least 1). How many rows one independent
    value of ``series`` spans."""
    x = np.asarray(series, dtype=np.float64) - np.mean(series)
    n = x.size
    if n < 4 or not np.any(x):
        return 1.0
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[: min(n, max_lag)]
    acf = acf / acf[0]
    negative = np.flatnonzero(acf[1:] <= 0)
    stop = int(negative[0]) + 1 if negative.size else acf.size
    return float(max(1.0, 1.0 + 2.0 * acf[1:stop].sum()))


def block_resamples(series: np.ndarray, min_block_rows: int,
                    replicates: int) -> tuple[int, int, Iterator[np.ndarray] | None]:
    """A moving-block bootstrap of ``series`` (in time order): the block length (twice its
    correlation time, at least ``min_block_rows``), the number of whole blocks, and
    ``replicates`` resamples of that many blocks drawn with replacement, ``n_blocks * rows``
    values each, made one at a time (all at once they would be ``replicates`` times the
    held-out rows); None instead of the resamples with fewer than ``MIN_BLOCKS`` blocks.
    Seeded: the same series always gives the same resamples."""
    rows = max(int(min_block_rows), int(math.ceil(2 * correlation_time(series))))
    n_blocks = series.size // rows
    if n_blocks < BlockThreshold.MIN_BLOCKS:
        return rows, n_blocks, None
    blocks = series[: n_blocks * rows].reshape(n_blocks, rows)
    picks = np.random.default_rng(0).integers(0, n_blocks, size=(replicates, n_blocks))
    return rows, n_blocks, (blocks[pick].reshape(-1) for pick in picks)


def level_range(threshold: Threshold, scores: np.ndarray, min_block_rows: int,
                confidence: float = 0.9, replicates: int = 200) -> dict[str, Any]:
    """How far a fitted threshold could have come out on other held-out rows of the same
    process: the ``confidence`` range of its strategy's level (times ``margin``) over a
    moving-block bootstrap of ``scores`` (what it was fitted on, in time order:
    ``block_resamples``), and how many independent blocks the threshold rests on. Fewer than
    ``BlockThreshold.MIN_BLOCKS`` blocks give no range: the held-out rows cannot say how the
    threshold would hold on new data (``note`` says so)."""
    arr = np.asarray(scores, dtype=np.float64)
    rows, n_blocks, samples = block_resamples(arr, min_block_rows, replicates)
    out: dict[str, Any] = {"confidence": confidence, "block_rows": rows, "n_blocks": n_blocks,
                           "lower": None, "upper": None, "note": None}
    if samples is None:
        out["note"] = (f"rests on {n_blocks} independent block(s) of {rows} held-out rows (need "
                       f"{BlockThreshold.MIN_BLOCKS} for a range): how often it fires on new "
                       "normal data is unknown; train on a longer range")
        return out
    cls, params = type(threshold), threshold.params()
    levels = np.array([cls.from_params(params)._level(sample) for sample in samples])
    levels = levels[np.isfinite(levels)] * threshold.margin
    if levels.size:
        out["lower"] = float(np.quantile(levels, (1 - confidence) / 2))
        out["upper"] = float(np.quantile(levels, (1 + confidence) / 2))
    return out
