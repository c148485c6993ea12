"""Reference detectors computed in the same run as tsad's: flag-everything, persistence, PCA.

Each is fitted on the same training rows as tsad's detector and scores each test row on its own
(no smoothing, no events), as the benchmark's published baselines do. A baseline's threshold is
the ``BASELINE_Q`` quantile of its scores on the training rows.

- flag everything: every test row is anomalous (the floor any detector must clear on F1).
- persistence: x[t] = x[t-1]; score = mean over channels of the squared one-step change, in
  training standard deviations.
- PCA T²+Q: standardise, keep the principal components that explain ``PCA_VARIANCE`` of the
  training variance; T² = Hotelling's statistic in that subspace, Q = squared residual outside it.
  Score = max(T² / T²-limit, Q / Q-limit), each limit its training quantile; flagged above 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsad.model.scaling import ChannelScaler

BASELINE_Q = 0.99
PCA_VARIANCE = 0.9


def _finite_quantile(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("inf")


class FlagAll:
    """Every row anomalous."""

    name = "flag everything"

    def fit(self, train: pd.DataFrame) -> FlagAll:
        return self

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(frame)
        return np.ones(n), np.ones(n, dtype=bool)


@dataclass
class _FittedPersistence:
    scaler: ChannelScaler
    threshold: float

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        scores = _one_step_change(self.scaler.transform(frame.to_numpy(dtype=np.float64)))
        with np.errstate(invalid="ignore"):
            return scores, scores > self.threshold


def _one_step_change(z: np.ndarray) -> np.ndarray:
    out = np.full(len(z), np.nan)
    if len(z) > 1:
        out[1:] = np.mean((z[1:].astype(np.float64) - z[:-1]) ** 2, axis=1)
    return out


class Persistence:
    """The naive forecaster x[t] = x[t-1] used as a detector."""

    name = "persistence x[t]=x[t-1]"

    def fit(self, train: pd.DataFrame) -> _FittedPersistence:
        raw = train.to_numpy(dtype=np.float64)
        scaler = ChannelScaler.fit(raw)
        return _FittedPersistence(scaler, _finite_quantile(_one_step_change(scaler.transform(raw)),
                                                           BASELINE_Q))


@dataclass
class _FittedPca:
    scaler: ChannelScaler
    components: np.ndarray  # [c, k]
    variances: np.ndarray  # [k]
    t2_limit: float
    q_limit: float

    def statistics(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = z @ self.components
        t2 = np.sum(t**2 / self.variances, axis=1)
        q = np.sum((z - t @ self.components.T) ** 2, axis=1)
        return t2, q

    def score(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        z = self.scaler.transform(frame.to_numpy(dtype=np.float64)).astype(np.float64)
        t2, q = self.statistics(z)
        scores = np.maximum(t2 / self.t2_limit, q / self.q_limit)
        with np.errstate(invalid="ignore"):
            return scores, scores > 1.0


class PcaT2Q:
    """Principal component analysis with Hotelling's T² and the Q (SPE) statistic."""

    name = "PCA T²+Q"

    def fit(self, train: pd.DataFrame) -> _FittedPca:
        raw = train.to_numpy(dtype=np.float64)
        scaler = ChannelScaler.fit(raw)
        z = scaler.transform(raw).astype(np.float64)
        z = z[np.isfinite(z).all(axis=1)]
        _, singular, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
        variances = singular**2 / max(len(z) - 1, 1)
        share = np.cumsum(variances) / max(variances.sum(), 1e-12)
        k = int(min(np.searchsorted(share, PCA_VARIANCE) + 1, len(variances)))
        k = min(k, max(len(variances) - 1, 1))  # keep a residual subspace for Q
        fitted = _FittedPca(scaler, vt[:k].T, np.maximum(variances[:k], 1e-12), 1.0, 1.0)
        t2, q = fitted.statistics(z)
        fitted.t2_limit = max(_finite_quantile(t2, BASELINE_Q), 1e-12)
        fitted.q_limit = max(_finite_quantile(q, BASELINE_Q), 1e-12)
        return fitted
