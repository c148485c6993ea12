"""Threshold strategies on known distributions, the POT fallback, and exact round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from tsad.config import ThresholdConfig
from tsad.model.thresholds import (
    BlockThreshold,
    ChannelThresholds,
    FixedThreshold,
    MeanStdThreshold,
    MedianMadThreshold,
    correlation_time,
    PotThreshold,
    QuantileThreshold,
    Threshold,
    make_threshold,
    threshold_from_dict,
)


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(50_000)


def test_quantile_of_normal_is_close_to_theory(normal: np.ndarray) -> None:
    t = QuantileThreshold(q=0.99).fit(normal)
    assert t.value_ == pytest.approx(stats.norm.ppf(0.99), abs=0.05)


def test_margin_multiplies_the_fitted_level(normal: np.ndarray) -> None:
    plain = QuantileThreshold(q=0.99).fit(normal)
    wide = QuantileThreshold(q=0.99, margin=1.5).fit(normal)
    assert wide.value_ == pytest.approx(1.5 * plain.value_)
    assert wide.raw_value_ == plain.value_


def test_mean_std_matches_formula_and_theory(normal: np.ndarray) -> None:
    t = MeanStdThreshold(k=3.0).fit(normal)
    assert t.value_ == pytest.approx(normal.mean() + 3.0 * normal.std())
    assert t.value_ == pytest.approx(3.0, abs=0.05)


def test_median_mad_matches_formula_and_is_robust(normal: np.ndarray) -> None:
    t = MedianMadThreshold(k=3.0).fit(normal)
    med = np.median(normal)
    assert t.value_ == pytest.approx(med + 3.0 * 1.4826 * np.median(np.abs(normal - med)))
    assert t.value_ == pytest.approx(3.0, abs=0.05)
    polluted = np.concatenate([normal, np.full(500, 1e3)])  # 1% gross outliers
    assert MedianMadThreshold(k=3.0).fit(polluted).value_ == pytest.approx(t.value_, rel=0.05)
    assert MeanStdThreshold(k=3.0).fit(polluted).value_ > 50


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pot_recovers_exponential_tail_quantile(seed: int) -> None:
    errors = np.random.default_rng(seed).exponential(1.0, 20_000)
    t = PotThreshold(q=0.98, risk=1e-3).fit(errors)
    assert t.note_ is None
    assert t.value_ == pytest.approx(-math.log(1e-3), rel=0.15)
    assert t.xi_ is not None and abs(t.xi_) < 0.2  # exponential tail: xi = 0


def test_pot_falls_back_to_quantile_with_few_excesses() -> None:
    errors = np.random.default_rng(3).exponential(1.0, 200)  # 0.98 quantile -> 4 excesses
    t = PotThreshold(q=0.98, risk=1e-3, margin=2.0).fit(errors)
    assert t.value_ == pytest.approx(2.0 * np.quantile(errors, 0.98))
    assert t.note_ is not None and "fell back" in t.note_
    assert "fell back" in t.to_dict()["note"]


@pytest.mark.parametrize("errors", [
    np.r_[np.zeros(900), np.ones(100)],  # flat tail: xi << -1, level would undercut the max
    np.r_[np.linspace(0, 1, 900), np.full(100, 3.0)],  # a lump: xi > 1, level would explode
])
def test_pot_falls_back_on_implausible_tail_fit(errors: np.ndarray) -> None:
    t = PotThreshold(q=0.8, risk=1e-3).fit(errors)
    assert t.note_ is not None and "implausible" in t.note_
    assert t.value_ == np.quantile(errors, 0.8)


PARAMS = {"quantile": {"q": 0.99}, "mean_std": {"k": 3.0}, "median_mad": {"k": 3.0},
          "pot": {"q": 0.99, "risk": 1e-4}}


@pytest.mark.parametrize("strategy", sorted(PARAMS))
def test_round_trip_through_json_is_identical(strategy: str, normal: np.ndarray) -> None:
    cfg = ThresholdConfig(strategy=strategy, params=PARAMS[strategy], margin=1.3)
    t = make_threshold(cfg).fit(np.abs(normal))
    d = json.loads(json.dumps(t.to_dict()))
    back = threshold_from_dict(d)
    assert type(back) is type(t)
    assert back.value_ == t.value_
    assert back.to_dict() == t.to_dict()
    assert d["strategy"] == strategy and d["margin"] == 1.3


def test_make_threshold_uses_config_parameters() -> None:
    t = make_threshold(ThresholdConfig(strategy="pot", params={"q": 0.97, "risk": 1e-3},
                                       margin=1.2))
    assert isinstance(t, PotThreshold)
    assert (t.q, t.risk, t.margin) == (0.97, 1e-3, 1.2)
    assert not t.is_fitted


def test_channel_thresholds_fit_each_column_and_round_trip() -> None:
    rng = np.random.default_rng(4)
    errors = rng.exponential(1.0, (5_000, 3)) * np.array([1.0, 10.0, 100.0])
    ct = ChannelThresholds(lambda: QuantileThreshold(q=0.99)).fit(errors)
    assert ct.values_.shape == (3,)
    np.testing.assert_allclose(ct.values_, np.quantile(errors, 0.99, axis=0))
    back = ChannelThresholds.from_dict(json.loads(json.dumps(ct.to_dict())))
    np.testing.assert_array_equal(back.values_, ct.values_)


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [1.0, np.inf], [[1.0, 2.0]]])
def test_bad_errors_are_rejected(bad: list) -> None:
    with pytest.raises(ValueError, match="threshold errors"):
        QuantileThreshold(q=0.99).fit(np.asarray(bad, dtype=float))


def test_bad_channel_errors_name_the_channel() -> None:
    errors = np.ones((10, 2))
    errors[3, 1] = np.nan
    with pytest.raises(ValueError, match="channel 1"):
        ChannelThresholds(lambda: QuantileThreshold(q=0.99)).fit(errors)
    with pytest.raises(ValueError, match="2-D"):
        ChannelThresholds(lambda: QuantileThreshold(q=0.99)).fit(np.ones(10))


def test_unfitted_and_bad_parameters() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = QuantileThreshold(q=0.99).value_
    with pytest.raises(ValueError):
        QuantileThreshold(q=1.0)
    with pytest.raises(ValueError):
        MeanStdThreshold(k=0.0)
    with pytest.raises(ValueError):
        PotThreshold(q=0.98, risk=0.0)
    with pytest.raises(ValueError):
        Threshold(margin=0.0)
    with pytest.raises(ValueError, match="missing or unknown"):
        threshold_from_dict({"strategy": "nope", "params": {}, "margin": 1.0})


def test_fixed_threshold_ignores_errors_and_round_trips() -> None:
    t = FixedThreshold(1.0).fit(np.array([5.0, 7.0]))
    assert t.value_ == 1.0
    back = threshold_from_dict(json.loads(json.dumps(t.to_dict())))
    assert isinstance(back, FixedThreshold) and back.value_ == 1.0
    with pytest.raises(ValueError):
        FixedThreshold(0.0)


def test_pot_on_a_heavy_tail_extrapolates_beyond_the_largest_error() -> None:
    errors = stats.genpareto.rvs(0.3, size=20_000, random_state=5)
    t = PotThreshold(q=0.98, risk=1e-5).fit(errors)
    assert t.note_ is None and t.xi_ == pytest.approx(0.3, abs=0.15)
    assert t.value_ > errors.max()
    assert t.value_ == pytest.approx(stats.genpareto.ppf(1 - 1e-5, 0.3), rel=0.5)


def test_score_rule_settings_are_validated() -> None:
    assert ThresholdConfig().short_range_windows == 20 and ThresholdConfig().margin == 1.0
    assert ThresholdConfig().short_range_seconds is None
    with pytest.raises(ValueError, match="short_range_seconds"):
        ThresholdConfig(short_range_seconds=-1.0)
    with pytest.raises(ValueError, match="short_range_windows"):
        ThresholdConfig(short_range_windows=-1)
    with pytest.raises(ValueError, match="smoothing_rows"):
        ThresholdConfig(smoothing_rows=0)
    with pytest.raises(ValueError, match="effective_samples"):
        ThresholdConfig(effective_samples=-1.0)
    with pytest.raises(ValueError, match="smoothing_power"):
        ThresholdConfig(smoothing_power=0.0)
    with pytest.raises(ValueError, match="smoothing_power"):
        ThresholdConfig(smoothing_power=1.5)


def test_a_new_strategy_is_one_class_found_by_name() -> None:
    """The path docs/architecture.md gives for a new strategy: subclass, set ``strategy`` and
    ``defaults``, implement ``_level``; the config then takes it and its parameters by name."""

    class MaxTimesThreshold(Threshold):
        strategy = "test_max_times"
        defaults = {"factor": 2.0}

        def __init__(self, factor: float, margin: float = 1.0) -> None:
            super().__init__(margin)
            if not factor >= 1.0:
                raise ValueError(f"'factor' must be >= 1, got {factor!r}")
            self.factor = float(factor)

        def params(self) -> dict[str, float]:
            return {"factor": self.factor}

        def _level(self, errors: np.ndarray) -> float:
            return float(errors.max() * self.factor)

    cfg = ThresholdConfig(strategy="test_max_times", params={"factor": 3.0})
    assert make_threshold(cfg).fit(np.array([1.0, 2.0])).value_ == 6.0
    assert make_threshold(ThresholdConfig(strategy="test_max_times")).fit(np.ones(2)).value_ == 2
    with pytest.raises(ValueError, match="'factor' must be >= 1"):
        ThresholdConfig(strategy="test_max_times", params={"factor": 0.5})


def test_strategy_names_and_parameters_are_checked_with_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"'strategy' must be one of \[.*'quantile'"):
        ThresholdConfig(strategy="quantil")
    with pytest.raises(ValueError, match="'k' is not a parameter of threshold strategy "
                                         "'quantile' \\(it takes q\\)"):
        ThresholdConfig(strategy="quantile", params={"k": 3.0})
    with pytest.raises(ValueError, match="'risk' must be in"):
        ThresholdConfig(strategy="pot", params={"risk": 0.7})


def test_each_default_lives_in_its_strategy_class() -> None:
    assert ThresholdConfig().params == {}
    assert make_threshold(ThresholdConfig()).q == QuantileThreshold.defaults["q"]
    block = make_threshold(ThresholdConfig(strategy="block"))
    assert (block.budget, block.confidence) == (BlockThreshold.defaults["budget"],
                                                BlockThreshold.defaults["confidence"])
    pot = make_threshold(ThresholdConfig(strategy="pot"))
    assert (pot.q, pot.risk) == (PotThreshold.defaults["q"], PotThreshold.defaults["risk"])


def _ar1(n: int, phi: float, seed: int) -> np.ndarray:
    """Autocorrelated normal scores: an AR(1) series, positive (like squared errors)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    noise = rng.normal(size=n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + noise[i]
    return np.exp(0.5 * x)


def test_block_threshold_keeps_its_budget_on_new_data_where_a_quantile_does_not() -> None:
    """Item 1: calibrated on a short autocorrelated tail, a plain quantile promises 1 % and
    flags more on fresh data from the same process; the block threshold holds its budget."""
    over_quantile, over_block = [], []
    for seed in range(20):
        held_out, fresh = _ar1(1000, 0.9, seed), _ar1(100_000, 0.9, 1000 + seed)
        plain = QuantileThreshold(q=0.99).fit(held_out).value_
        block = BlockThreshold(budget=0.01, confidence=0.9).fit(held_out)
        over_quantile.append(float((fresh > plain).mean()))
        over_block.append(float((fresh > block.value_).mean()))
        assert block.lower_ <= block.upper_ <= block.value_ and block.estimate_ <= block.value_
        assert block.block_rows_ >= 8 and block.n_blocks_ >= 5  # tau = (1 + phi) / (1 - phi) = 19
    assert np.median(over_quantile) > 0.01  # the plain quantile breaks its promise
    assert np.median(over_block) <= 0.01 * 1.5 and np.mean(over_block) <= 0.015


def test_block_threshold_round_trips_and_refuses_bad_settings() -> None:
    fitted = BlockThreshold(budget=0.02, confidence=0.8).fit(_ar1(2000, 0.5, 1))
    again = threshold_from_dict(fitted.to_dict())
    assert again.value_ == fitted.value_ and again.upper_ == fitted.upper_
    assert again.n_blocks_ == fitted.n_blocks_
    with pytest.raises(ValueError, match="'budget' must be in"):
        BlockThreshold(budget=0.7, confidence=0.9)
    few = BlockThreshold(budget=0.01, confidence=0.9).fit(_ar1(30, 0.9, 2))
    assert few.value_ == pytest.approx(_ar1(30, 0.9, 2).max()) and "block" in few.note_


def test_correlation_time_of_white_noise_and_of_a_slow_series() -> None:
    rng = np.random.default_rng(0)
    assert correlation_time(rng.normal(size=10_000)) < 1.5
    assert 25 < correlation_time(np.log(_ar1(20_000, 0.95, 3))) < 60  # (1 + 0.95) / 0.05 = 39


def test_every_threshold_gets_the_range_its_held_out_blocks_allow() -> None:
    """Item 1: the threshold's uncertainty is stored with the model: a range where the held-out
    rows hold enough independent blocks, and a plain 'unknown' where they do not."""
    from tsad.model.block_threshold import level_range

    scores = _ar1(4000, 0.9, 7)
    fitted = QuantileThreshold(q=0.99, margin=1.5).fit(scores)
    found = level_range(fitted, scores, min_block_rows=16)
    assert found["n_blocks"] >= 5 and found["block_rows"] >= 16 and found["note"] is None
    assert found["lower"] < fitted.value_ < found["upper"]  # margin included on both sides
    tighter = level_range(fitted, _ar1(40_000, 0.9, 7), min_block_rows=16)
    assert tighter["upper"] - tighter["lower"] < found["upper"] - found["lower"]
    short = level_range(fitted, _ar1(80, 0.9, 8), min_block_rows=32)
    assert short["lower"] is None and short["upper"] is None
    assert "is unknown" in short["note"] and "block" in short["note"]
