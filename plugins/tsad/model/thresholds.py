"""Threshold strategies fitted on held-out normal errors (higher score = more anomalous).

A threshold is a fitted object saved with the model version, not a float chosen inside a task:
``to_dict`` records the strategy, its parameters, the ``margin`` and the fitted value, and
``threshold_from_dict`` rebuilds it with the identical ``value_`` (so re-scoring an old day with
an old model flags exactly the same points). ``value_`` is the strategy's level times ``margin``.

One class per strategy, registered under its ``strategy`` name when the class is defined: a new
strategy is one subclass (its ``defaults``, its checks in ``__init__``, its ``_level``) and its
tests; the config (``threshold.strategy`` and the strategy's own keys) finds it by name. Each
parameter's default is its class's ``defaults`` entry and nowhere else.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Self

import numpy as np


MAD_TO_STD = 1.4826  # scales the MAD to the std of a normal distribution
POT_MIN_EXCESSES = 10  # fewer excesses than this cannot support a tail fit
# Outside this shape range the fit is unusable: xi <= -1 is an irregular MLE that can put the
# level below the largest normal error; xi >= 1 is a tail with no mean (wild extrapolation).
POT_XI_RANGE = (-1.0, 1.0)


def _optional(value: Any, kind: Callable[[Any], Any]) -> Any:
    return None if value is None else kind(value)


def _validated(errors: Any) -> np.ndarray:
    """Errors as a 1-D float array; empty or non-finite input would give a meaningless level."""
    arr = np.asarray(errors, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"threshold errors must be 1-D, got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("threshold errors are empty: need held-out normal scores to fit on")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"threshold errors contain {bad} NaN or infinite value(s) of {arr.size}; "
                         "drop or fix them before fitting")
    return arr


_STRATEGIES: dict[str, type[Threshold]] = {}


class Threshold:
    """Base class: ``fit`` learns ``value_`` (raw level x ``margin``) from normal errors.

    Subclasses set ``strategy`` (the config's name for them) and ``defaults`` (their parameters
    and default values) and take exactly those parameters, plus ``margin``, in ``__init__``."""

    strategy: ClassVar[str] = ""
    defaults: ClassVar[dict[str, float]] = {}
    #: fitted on the smoothed scores of held-out rows in time order (True), or on single-point
    #: scores narrowed to the spread smoothed ones would have (``ScoreRule.narrowed``)
    on_smoothed: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.strategy:
            _STRATEGIES[cls.strategy] = cls

    @classmethod
    def from_params(cls, params: dict[str, float], margin: float = 1.0) -> Self:
        """An unfitted threshold with ``params`` over the class's defaults; a key the class does
        not take is a ValueError naming what it takes."""
        unknown = sorted(set(params) - set(cls.defaults))
        if unknown:
            takes = ", ".join(sorted(cls.defaults)) or "no parameters"
            raise ValueError(f"{unknown[0]!r} is not a parameter of threshold strategy "
                             f"{cls.strategy!r} (it takes {takes})")
        return cls(**{**cls.defaults, **params}, margin=margin)

    def __init__(self, margin: float = 1.0) -> None:
        if not (math.isfinite(margin) and margin > 0):
            raise ValueError(f"'margin' must be a finite number > 0, got {margin!r}")
        self.margin = float(margin)
        self.raw_value_: float | None = None
        self.n_fit_: int | None = None
        self.note_: str | None = None
        self._value: float | None = None

    # -- subclasses implement these two
    def _level(self, errors: np.ndarray) -> float:
        raise NotImplementedError

    def params(self) -> dict[str, float]:
        """The strategy's own parameters (without ``margin``), as stored in ``to_dict``."""
        raise NotImplementedError

    def fit(self, errors: np.ndarray) -> Self:
        """Fit on 1-D held-out normal scores; raises ValueError on empty or non-finite input."""
        arr = _validated(errors)
        self.note_ = None
        raw = float(self._level(arr))
        if not math.isfinite(raw):
            raise ValueError(f"{self.strategy} threshold came out non-finite ({raw}) "
                             "on these errors")
        self.raw_value_ = raw
        self.n_fit_ = int(arr.size)
        self._value = raw * self.margin
        return self

    def raise_to(self, raw_level: float, why: str) -> bool:
        """Raise the fitted level to at least ``raw_level`` (the threshold becomes it x
        ``margin``), noting ``why``; False when it already was that high. Rows a person
        marked normal (``tsad.model.known_normal``) join the calibration this way."""
        if not math.isfinite(raw_level):
            raise ValueError(f"cannot raise a threshold to {raw_level!r}")
        if self.raw_value_ is None or self._value is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(errors) first")
        if raw_level <= self.raw_value_:
            return False
        self.raw_value_, self._value = float(raw_level), float(raw_level) * self.margin
        self.note_ = f"{self.note_}; {why}" if self.note_ else why
        return True

    @property
    def is_fitted(self) -> bool:
        return self._value is not None

    @property
    def value_(self) -> float:
        if self._value is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(errors) first")
        return self._value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; ``threshold_from_dict`` rebuilds the identical threshold."""
        return {
            "strategy": self.strategy,
            "params": self.params(),
            "margin": self.margin,
            "value": self._value,
            "raw_value": self.raw_value_,
            "n_fit": self.n_fit_,
            "note": self.note_,
        }

    def _restore(self, d: dict[str, Any]) -> None:
        """Set the fitted state from ``to_dict`` output (subclasses add their own entries)."""
        self._value = float(d["value"])
        self.raw_value_ = _optional(d.get("raw_value"), float)
        self.n_fit_ = _optional(d.get("n_fit"), int)
        self.note_ = d.get("note")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.params(), "margin": self.margin}.items())
        state = f"value_={self._value!r}" if self.is_fitted else "unfitted"
        return f"{type(self).__name__}({args}; {state})"


class QuantileThreshold(Threshold):
    """Empirical ``q`` quantile: no distributional assumption, but blind beyond the data."""

    strategy = "quantile"
    defaults = {"q": 0.99}

    def __init__(self, q: float, margin: float = 1.0) -> None:
        super().__init__(margin)
        if not 0.5 < q < 1.0:
            raise ValueError(f"'q' must be in (0.5, 1), got {q!r}")
        self.q = float(q)

    def params(self) -> dict[str, float]:
        return {"q": self.q}

    def _level(self, errors: np.ndarray) -> float:
        return float(np.quantile(errors, self.q))


class _SpreadThreshold(Threshold):
    """A centre plus ``k`` spreads of the held-out errors (the two classes below)."""

    defaults = {"k": 4.0}

    def __init__(self, k: float, margin: float = 1.0) -> None:
        super().__init__(margin)
        if not k > 0:
            raise ValueError(f"'k' must be > 0, got {k!r}")
        self.k = float(k)

    def params(self) -> dict[str, float]:
        return {"k": self.k}


class MeanStdThreshold(_SpreadThreshold):
    """``mean + k*std`` (population std): cheap, but pulled up by outliers in the held-out set."""

    strategy = "mean_std"

    def _level(self, errors: np.ndarray) -> float:
        return float(errors.mean() + self.k * errors.std())


class MedianMadThreshold(_SpreadThreshold):
    """``median + k*1.4826*MAD``: robust to a few anomalies hiding in the 'normal' errors."""

    strategy = "median_mad"

    def _level(self, errors: np.ndarray) -> float:
        median = float(np.median(errors))
        mad = float(np.median(np.abs(errors - median)))
        return median + self.k * MAD_TO_STD * mad


class PotThreshold(Threshold):
    """Peaks over threshold: a generalized Pareto tail above the ``q`` quantile, read at ``risk``.

    Extrapolates beyond the largest held-out error, which a plain quantile cannot do. Falls back
    to the ``q`` quantile (and says so in ``note_``) when the tail is too thin to fit.
    """

    strategy = "pot"
    defaults = {"q": 0.98, "risk": 1e-4}

    def __init__(self, q: float, risk: float, margin: float = 1.0) -> None:
        super().__init__(margin)
        if not 0.5 < q < 1.0:
            raise ValueError(f"'q' must be in (0.5, 1), got {q!r}")
        if not 0.0 < risk < 0.5:
            raise ValueError(f"'risk' must be in (0, 0.5), got {risk!r}")
        self.q = float(q)
        self.risk = float(risk)
        self.xi_: float | None = None
        self.sigma_: float | None = None

    def params(self) -> dict[str, float]:
        return {"q": self.q, "risk": self.risk}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "xi": self.xi_, "sigma": self.sigma_}

    def _restore(self, d: dict[str, Any]) -> None:
        super()._restore(d)
        self.xi_, self.sigma_ = _optional(d.get("xi"), float), _optional(d.get("sigma"), float)

    def _level(self, errors: np.ndarray) -> float:
        from scipy import stats

        self.xi_ = self.sigma_ = None
        t = float(np.quantile(errors, self.q))
        excesses = errors[errors > t] - t
        n, n_t = errors.size, excesses.size
        if n_t < POT_MIN_EXCESSES:
            self.note_ = (f"fell back to the q={self.q} quantile: {n_t} excesses over it, "
                          f"need >= {POT_MIN_EXCESSES}")
            return t
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                xi, _, sigma = stats.genpareto.fit(excesses, floc=0)
        except Exception as exc:  # scipy raises several types on degenerate tails
            self.note_ = f"fell back to the q={self.q} quantile: GPD fit failed ({exc})"
            return t
        if not (math.isfinite(sigma) and sigma > 0 and POT_XI_RANGE[0] < xi < POT_XI_RANGE[1]):
            self.note_ = (f"fell back to the q={self.q} quantile: implausible GPD fit "
                          f"xi={xi:.3g}, sigma={sigma:.3g}")
            return t
        ratio = self.risk * n / n_t
        if ratio >= 1.0:
            self.note_ = (f"risk={self.risk} >= the tail fraction {n_t / n:.4g}: "
                          "the level lies below the q quantile")
        if abs(xi) < 1e-9:
            level = t - sigma * math.log(ratio)
        else:
            level = t + (sigma / xi) * (ratio ** (-xi) - 1.0)
        if not math.isfinite(level):
            self.note_ = f"fell back to the q={self.q} quantile: tail level is {level}"
            return t
        self.xi_, self.sigma_ = float(xi), float(sigma)
        return level


class FixedThreshold(Threshold):
    """A level set in advance (``fit`` ignores the errors): with per-channel thresholds each
    channel's score is in units of its own threshold, so the aggregate's threshold is 1."""

    strategy = "fixed"
    defaults = {"level": 1.0}

    def __init__(self, level: float, margin: float = 1.0) -> None:
        super().__init__(margin)
        if not (math.isfinite(level) and level > 0):
            raise ValueError(f"'level' must be a finite number > 0, got {level!r}")
        self.level = float(level)

    def params(self) -> dict[str, float]:
        return {"level": self.level}

    def _level(self, errors: np.ndarray) -> float:
        return self.level


def strategy_class(strategy: str) -> type[Threshold]:
    """The class registered under ``strategy``; a ValueError lists the known names."""
    try:
        return _STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"'strategy' must be one of {sorted(_STRATEGIES)}, got "
                         f"{strategy!r}") from None


def strategy_parameters(strategy: str) -> dict[str, float]:
    """The parameters ``strategy`` takes, with their defaults."""
    return dict(strategy_class(strategy).defaults)


def check_strategy(strategy: str, params: dict[str, float]) -> None:
    """Raise ValueError unless ``strategy`` exists and takes ``params`` (the config's check)."""
    strategy_class(strategy).from_params(params)


def make_threshold(cfg: Any) -> Threshold:
    """An unfitted threshold for a ``ThresholdConfig`` (strategy, its params, ``margin``)."""
    return strategy_class(cfg.strategy).from_params(cfg.params, cfg.margin)


def threshold_from_dict(d: dict[str, Any]) -> Threshold:
    """Rebuild a threshold from ``to_dict`` output; the value is restored, never re-fitted."""
    try:
        cls = _STRATEGIES[d["strategy"]]
        obj = cls.from_params(d["params"], margin=d["margin"])
    except KeyError as exc:
        raise ValueError(f"not a stored threshold: missing or unknown {exc} "
                         f"in {sorted(d)}") from None
    except TypeError as exc:
        raise ValueError(f"stored threshold has bad parameters: {exc}") from None
    if d.get("value") is not None:
        obj._restore(d)
    return obj


class ChannelThresholds:
    """One threshold per channel, all made by ``factory`` (the same strategy), fitted on a 2-D
    ``[n, n_channels]`` error array."""

    def __init__(self, factory: Callable[[], Threshold] | None = None) -> None:
        self.factory = factory
        self.thresholds_: list[Threshold] = []

    def fit(self, errors: np.ndarray) -> Self:
        if self.factory is None:
            raise RuntimeError("a ChannelThresholds rebuilt from its dict cannot be re-fitted")
        arr = np.asarray(errors, dtype=float)
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"channel errors must be 2-D [n, n_channels >= 1], "
                             f"got shape {arr.shape}")
        fitted = []
        for j in range(arr.shape[1]):
            try:
                fitted.append(self.factory().fit(arr[:, j]))
            except ValueError as exc:
                raise ValueError(f"channel {j}: {exc}") from None
        self.thresholds_ = fitted
        return self

    @property
    def is_fitted(self) -> bool:
        return bool(self.thresholds_)

    @property
    def values_(self) -> np.ndarray:
        if not self.thresholds_:
            raise RuntimeError("ChannelThresholds is not fitted; call fit(errors) first")
        return np.array([t.value_ for t in self.thresholds_], dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {"channels": [t.to_dict() for t in self.thresholds_]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChannelThresholds:
        """The fitted thresholds as saved (an older save's ``config`` entry is not needed)."""
        obj = cls()
        obj.thresholds_ = [threshold_from_dict(t) for t in d["channels"]]
        return obj


# The block strategy lives in its own module; importing it registers it under "block". A module
# import (not its names): it works whichever of the two modules is imported first.
from tsad.model import block_threshold as _block  # noqa: E402


def __getattr__(name: str) -> Any:
    """``BlockThreshold`` and ``correlation_time`` from here too, as for every strategy."""
    if name in ("BlockThreshold", "correlation_time"):
        return getattr(_block, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
