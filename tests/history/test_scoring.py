"""Scores and calibration tests of sample forecasts: exact cases, analytic answers, simulated studies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.signal import lfilter

from forecast.history.scoring import (
    coverage,
    crps,
    effective_count,
    inside,
    pit,
    pit_histogram,
    pit_moments,
    pit_uniform,
    skill,
    uniformity,
    verdict,
)
from tests import naive

values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@given(st.lists(values, min_size=1, max_size=30), values)
def test_crps_equals_the_pairwise_definition(samples, actual):
    expected = naive.crps(samples, actual)
    assert crps(np.array(samples), actual) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_crps_of_a_point_forecast_is_its_absolute_error():
    assert crps(np.full(7, 3.0), 10.0) == 7.0
    assert crps(np.array([1.0, 2.0, 3.0, 4.0]), 2.0) == pytest.approx(1.0 - 0.625)  # pairs: 20 / 16


@pytest.mark.parametrize(("mu", "sd", "actual"), [(0.0, 1.0, 0.0), (10.0, 2.0, 13.0), (-5.0, 0.5, -7.0)])
def test_crps_of_normal_samples_matches_the_closed_form(mu, sd, actual):
    n, studies = 4000, 40
    rng = np.random.default_rng(17)
    scores = np.array([crps(rng.normal(mu, sd, n), actual) for _ in range(studies)])
    z = (actual - mu) / sd
    exact = sd * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    bias = sd / (
        np.sqrt(np.pi) * n
    )  # pairs include each sample with itself: E|X - X'| shrinks by (n - 1) / n
    assert abs(scores.mean() - exact - bias) < 4 * scores.std(ddof=1) / np.sqrt(studies)


@pytest.mark.parametrize("bad", [np.array([]), np.array([1.0, np.nan])])
def test_crps_refuses_empty_or_non_finite_samples(bad):
    with pytest.raises(ValueError, match="sample"):
        crps(bad, 1.0)


def test_pit_splits_ties_by_the_uniform():
    samples = np.array([0.0, 0.0, 0.0, 1.0, 2.0])
    assert pit(samples, 0.0, 0.0) == 0.0
    assert pit(samples, 0.0, 0.5) == pytest.approx(0.3)
    assert pit(samples, 1.5, 0.9) == pytest.approx(0.8)
    assert pit(samples, 1.0, 0.5) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="uniform"):
        pit(samples, 0.0, 1.0)


def test_pit_uniform_is_reproducible_and_differs_by_origin():
    draws = [pit_uniform(7, origin) for origin in range(200)]
    assert draws == [pit_uniform(7, origin) for origin in range(200)]
    assert len(set(draws)) == 200 and all(0 <= u < 1 for u in draws)
    assert stats.kstest(draws, "uniform").pvalue > 0.01


def _studies(origins: int, seed: int, atom: float = 0.0, samples: int = 500):
    """Forecasts and actuals drawn from the same distribution: lognormal, with ``atom`` of it at 0."""
    rng = np.random.default_rng(seed)
    for origin in range(origins):
        scale = rng.uniform(0.5, 2.0)
        draws = np.exp(rng.normal(np.log(1000 * scale), scale, samples + 1))
        draws[rng.random(samples + 1) < atom] = 0.0
        yield origin, draws[:samples], draws[samples]


@pytest.mark.parametrize("atom", [0.0, 0.4])
def test_pit_of_actuals_drawn_from_the_forecast_is_uniform(atom):
    pits = [
        pit(forecast, actual, pit_uniform(3, origin)) for origin, forecast, actual in _studies(600, 1, atom)
    ]
    assert stats.kstest(pits, "uniform").pvalue > 0.01


def test_mid_ranks_of_a_forecast_with_an_atom_are_not_uniform():
    pits = [pit(forecast, actual, 0.5) for _, forecast, actual in _studies(600, 1, atom=0.4)]
    assert stats.kstest(pits, "uniform").pvalue < 1e-6  # a pile at 0.2: why the ties are randomised


def test_randomised_intervals_hold_their_level_with_an_atom_and_quantile_intervals_more():
    origins = 2000
    for level in (0.5, 0.8, 0.9):
        studies = list(_studies(origins, 2, atom=0.4, samples=200))
        randomised = np.mean([inside(f, a, level, pit_uniform(5, o)) for o, f, a in studies])
        between = np.mean([inside(f, a, level) for _, f, a in studies])
        assert abs(randomised - level) < 4 * np.sqrt(level * (1 - level) / origins)
        # the atom at 0 holds the lower quantile: all of it counts inside, (1 + level) / 2 in all
        assert abs(between - (1 + level) / 2) < 4 * np.sqrt(level * (1 - level) / origins)


def test_inside_includes_the_interval_ends():
    samples = np.arange(11.0)  # quantiles 0.1 and 0.9: 1 and 9
    assert inside(samples, 1.0, 0.8) and inside(samples, 9.0, 0.8)
    assert not inside(samples, 0.5, 0.8) and not inside(samples, 9.5, 0.8)
    with pytest.raises(ValueError, match="level"):
        inside(samples, 1.0, 80)


def _ar1(rng, n: int, phi: float) -> np.ndarray:
    """A stationary AR(1) series with unit variance."""
    noise = rng.standard_normal(n) * np.sqrt(1 - phi * phi)
    noise[0] = rng.standard_normal()
    return lfilter([1.0], [1.0, -phi], noise)


def _overlapping(rng, n: int, horizon: int) -> np.ndarray:
    """Standardised sums over ``horizon`` consecutive weeks, one per weekly origin: overlapping windows."""
    return np.convolve(rng.standard_normal(n + horizon - 1), np.ones(horizon), "valid") / np.sqrt(horizon)


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.6, 0.8])
def test_effective_count_of_an_ar1_series_is_near_n_1_minus_phi_over_1_plus_phi(phi):
    n, series = 2000, 20
    rng = np.random.default_rng(int(phi * 10))
    estimates = np.array([effective_count(_ar1(rng, n, phi)) for _ in range(series)])
    exact = n * (1 - phi) / (1 + phi)
    # the initial-positive-sequence cut drops the small tail of the autocorrelations: a few % low
    assert abs(estimates.mean() / exact - 1) < 0.1
    assert np.all(estimates <= n)


def test_effective_count_gives_overlapping_pits_an_honest_mean_and_variance():
    studies, origins = 2000, 120
    rng = np.random.default_rng(5)
    standardised, variance = [], []
    for _ in range(studies):
        pits = stats.norm.cdf(_overlapping(rng, origins, 13))  # 120 weekly origins, 13-week horizons
        moments = pit_moments(pits, effective_count(pits))
        standardised.append((moments["mean"] - 0.5) / np.sqrt(1 / 12 / effective_count(pits)))
        variance.append(moments["variance"])
    # the mean's spread is what the count says (uncorrected n / tau: 1.13), and the variance
    # about the sample mean, corrected for the correlation, about 1/12 (uncorrected: 10 % low)
    assert abs(np.var(standardised) - 1) < 3 * np.sqrt(2 / studies)
    assert abs(12 * np.mean(variance) - 1) < 0.05


def test_effective_count_edge_cases():
    assert effective_count(np.array([0.3, 0.7])) == 2.0
    assert effective_count(np.full(10, 0.5)) == 10.0  # no variation: nothing to correlate
    assert effective_count(np.tile([0.1, 0.9], 20)) == 40.0  # negatively correlated: clipped at n
    assert effective_count(np.linspace(0, 1, 50)) < 5  # a trend: one long excursion


def test_wilson_interval_on_a_known_case():
    hits = np.array([True] * 8 + [False] * 2)
    result = coverage(hits, 10)
    assert result["value"] == 0.8
    assert result["low"] == pytest.approx(0.4902, abs=1e-4) and result["high"] == pytest.approx(
        0.9433, abs=1e-4
    )
    wider = coverage(hits, 5)
    assert wider["low"] < result["low"] and wider["high"] > result["high"]
    with pytest.raises(ValueError, match="effective count"):
        coverage(hits, 11)


@pytest.mark.parametrize("kind", ["independent", "overlapping"])
def test_coverage_intervals_of_calibrated_studies_hold_the_nominal_level(kind):
    studies, origins = 1500, 60
    rng = np.random.default_rng(23)
    held = []
    for _ in range(studies):
        latent = rng.standard_normal(origins) if kind == "independent" else _overlapping(rng, origins, 13)
        pits = stats.norm.cdf(latent)  # calibrated: uniform, correlated across overlapping origins
        n = effective_count(pits)
        for level in (0.5, 0.8, 0.9):
            interval = coverage(np.abs(pits - 0.5) <= level / 2, n)
            held.append(interval["low"] <= level <= interval["high"])
    share, error = np.mean(held), np.sqrt(0.95 * 0.05 / len(held))
    if kind == "independent":
        # Wilson's exact coverage at 60 origins is 0.948-0.966 over these levels
        assert 0.95 - 3 * error < share < 0.97 + 3 * error
    else:
        # the hits correlate less than the PIT values the count comes from: the interval errs wide
        assert 0.95 - 3 * error < share < 0.995
    naive_share = np.mean(
        [
            (lambda c: c["low"] <= 0.8 <= c["high"])(coverage(np.abs(p - 0.5) <= 0.4, origins))
            for p in (stats.norm.cdf(_overlapping(rng, origins, 13)) for _ in range(400))
        ]
    )
    assert kind == "independent" or naive_share < 0.85  # counting every origin as independent fails


def test_pit_histogram_counts_equal_bins():
    counts = pit_histogram(np.array([0.0, 0.05, 0.1, 0.55, 0.99, 1.0]), bins=10)
    assert counts.tolist() == [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pit_histogram(np.array([0.5, 1.2]))


def test_uniformity_accepts_calibrated_and_rejects_too_narrow_forecasts():
    rng = np.random.default_rng(31)
    calibrated = rng.random(400)
    assert min(uniformity(calibrated, 400).values()) > 0.01
    narrow = stats.norm.cdf(2 * rng.standard_normal(400))  # forecast sd half the actuals'
    assert max(uniformity(narrow, 400).values()) < 1e-3


def test_uniformity_counted_on_effective_values_holds_its_size_under_overlap():
    rng = np.random.default_rng(37)
    scaled, unscaled = [], []
    for _ in range(400):
        pits = stats.norm.cdf(_overlapping(rng, 120, 13))
        scaled.append(uniformity(pits, effective_count(pits)))
        unscaled.append(uniformity(pits, pits.size))
    for test in ("chi_square", "ks"):
        rejected = np.mean([result[test] < 0.05 for result in scaled])
        assert rejected < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 400)
        assert np.mean([result[test] < 0.05 for result in unscaled]) > 0.3  # the origins are not independent


def _verdict_pits(forecast_sd: float, shift: float, origins: int = 300, seed: int = 41) -> np.ndarray:
    """PIT values of normal forecasts N(0, forecast_sd) of actuals N(shift, 1), each from its samples."""
    rng = np.random.default_rng(seed)
    return np.array(
        [
            pit(rng.normal(0, forecast_sd, 1000), rng.normal(shift, 1), pit_uniform(seed, k))
            for k in range(origins)
        ]
    )


@pytest.mark.parametrize(
    ("forecast_sd", "shift", "expected"),
    [(1.0, 0.0, "calibrated"), (0.5, 0.0, "too narrow"), (2.0, 0.0, "too wide"), (1.0, 0.5, "biased low"),
     (1.0, -0.5, "biased high"), (0.5, 1.0, "biased low"), (0.3, 0.2, "too narrow")],
)  # fmt: skip
def test_verdict_names_the_fault(forecast_sd, shift, expected):
    pits = _verdict_pits(forecast_sd, shift)
    assert verdict(pits, effective_count(pits)) == expected


@pytest.mark.parametrize(("origins", "horizon", "allowed"), [(120, 1, 0.05), (120, 13, 0.05), (60, 13, 0.1)])
def test_verdict_misjudges_calibrated_forecasts_rarely(origins, horizon, allowed):
    rng = np.random.default_rng(43)
    studies = 1000
    wrong = 0
    for _ in range(studies):
        pits = stats.norm.cdf(_overlapping(rng, origins, horizon))
        wrong += verdict(pits, effective_count(pits)) != "calibrated"
    # 60 overlapping origins are worth about 5 independent ones, a count known only roughly
    assert wrong / studies < allowed + 3 * np.sqrt(allowed * (1 - allowed) / studies)


def test_pit_moments_of_uniform_values():
    pits = (np.arange(1000) + 0.5) / 1000
    moments = pit_moments(pits, 1000)
    assert moments["mean"] == pytest.approx(0.5) and moments["bias_z"] == pytest.approx(0.0, abs=1e-9)
    assert moments["variance"] == pytest.approx(1 / 12, rel=1e-3) and abs(moments["spread_z"]) < 0.1
    assert moments["mean_se"] == pytest.approx(np.sqrt(moments["variance"] / 1000))


def test_a_low_variance_by_chance_does_not_inflate_the_bias():
    pits = np.linspace(0.5, 0.6, 50)  # variance far below 1/12
    moments = pit_moments(pits, 50)
    assert moments["mean_se"] == pytest.approx(np.sqrt(1 / 12 / 50))
    assert moments["bias_z"] == pytest.approx(0.05 / np.sqrt(1 / 12 / 50))


def test_few_effective_origins_judge_the_bias_on_student_t():
    pits = np.linspace(0.7, 1.0, 40)  # mean 0.85
    tail = 1 - 0.05 / 4
    moments = pit_moments(pits, 4.0)
    assert stats.norm.ppf(tail) < moments["bias_z"] < stats.t.ppf(tail, 3)  # significant only on the normal
    assert abs(moments["spread_z"]) < stats.norm.ppf(tail)
    assert verdict(pits, 4.0) == "calibrated"
    assert verdict(pits, 40.0) == "biased low"


def test_skill_against_a_baseline():
    assert skill(np.array([1.0, 3.0]), np.array([4.0, 4.0])) == pytest.approx(0.5)
    assert skill(np.array([5.0]), np.array([4.0])) == pytest.approx(-0.25)
    with pytest.raises(ValueError, match="baseline"):
        skill(np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="perfect baseline"):
        skill(np.array([1.0]), np.array([0.0]))
