"""Correlated deals: the normal CDF, the factor inputs, exact pool distributions (Vasicek); the kernel
against its reference model is in test_kernels.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import ndtr, ndtri

from forecast.engine.correlation import GRID_SPACING, correlation_inputs
from forecast.engine.draws import deal_keys
from forecast.engine.kernels import simulate_pipeline
from forecast.engine.normal import normal_cdf_array
from forecast.engine.rng import stream_starts
from forecast.engine.simulate import simulate
from forecast.engine.summary import implied_outcome_correlation, summarize
from tests.builders import OWN_RATES, OWNERS, SHARED_RATES, latent_factors, make_deals, make_scenario


def test_normal_cdf_is_within_its_stated_error():
    x = np.linspace(-40, 40, 400_001)
    assert np.max(np.abs(normal_cdf_array(x) - ndtr(x))) < 7.5e-8


def test_shared_rates_sit_on_exact_levels_and_own_rates_on_the_grid():
    assert not latent_factors(SHARED_RATES, OWNERS, 0.2, 0.1).deal_interpolated.any()
    factors = latent_factors(OWN_RATES, OWNERS, 0.2, 0.1)
    assert factors.deal_interpolated.all()
    groups = factors.level_group[factors.deal_level]
    step = np.diff(factors.level_latent)[factors.deal_level] * factors.group_scale[groups]
    assert np.allclose(step, GRID_SPACING)  # neighbouring levels, one grid step apart


def _pool(n: int, win_rate: float, rho: float, trials: int) -> np.ndarray:
    """Wins per trial of n unit deals with one market factor."""
    scenario = make_scenario(f"correlation: {{market: {rho}}}\n")
    forecast = simulate(scenario, make_deals([1.0] * n, [win_rate] * n), trials=trials, seed=5)
    return np.rint(forecast.trials.revenue)


def _finite_pool_sf(n: int, win_rate: float, rho: float, k: int) -> float:
    """P(wins >= k) = integral over the factor of a binomial tail: exact for the finite pool."""
    c = ndtri(win_rate)

    def integrand(z):
        p = ndtr((c - math.sqrt(rho) * z) / math.sqrt(1 - rho))
        return stats.binom.sf(k - 1, n, p) * stats.norm.pdf(z)

    return integrate.quad(integrand, -9, 9, limit=200)[0]


@pytest.mark.parametrize(("n", "win_rate", "rho"), [(20, 0.3, 0.25), (200, 0.15, 0.1)])
def test_homogeneous_pool_matches_the_exact_finite_pool(n, win_rate, rho):
    trials = 100_000
    wins = _pool(n, win_rate, rho, trials)
    for k in np.unique(np.percentile(wins, [10, 30, 50, 70, 90]).astype(int)):
        exact = _finite_pool_sf(n, win_rate, rho, int(k))
        simulated = np.mean(wins >= k)
        assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / trials) + 1e-6, (
            k,
            simulated,
            exact,
        )


def test_large_pool_approaches_vasicek():
    n, win_rate, rho, trials = 4000, 0.2, 0.1, 20_000
    share = _pool(n, win_rate, rho, trials) / n
    c = ndtri(win_rate)
    for x in (0.1, 0.2, 0.3):
        vasicek = ndtr((math.sqrt(1 - rho) * ndtri(x) - c) / math.sqrt(rho))
        finite = 1 - _finite_pool_sf(n, win_rate, rho, int(math.floor(x * n)) + 1)  # P(share <= x), exact
        simulated = np.mean(share <= x)
        assert abs(simulated - finite) < 4 * math.sqrt(finite * (1 - finite) / trials) + 1e-6
        assert abs(finite - vasicek) < 0.02  # the large-pool limit is near at 4,000 deals


def test_group_factors_correlate_outcomes_within_groups():
    latent_market, latent_group, win_rate, trials = 0.05, 0.3, 0.4, 100_000
    scenario = make_scenario(f"correlation: {{market: {latent_market}, by: {{owner: {latent_group}}}}}\n")
    deals = make_deals([1.0] * 4, [win_rate] * 4, owner=["a", "a", "b", "b"])
    forecast = simulate(scenario, deals, trials=trials, seed=9, by=("deal_id",))
    won = {deal: values > 0 for deal, values in forecast.trials.breakdown["deal_id"].items()}
    within = np.corrcoef(won["D0"], won["D1"])[0, 1]
    across = np.corrcoef(won["D0"], won["D2"])[0, 1]
    tolerance = 4 / math.sqrt(trials)  # standard error of a correlation near these values
    assert abs(within - implied_outcome_correlation(win_rate, latent_market + latent_group)) < tolerance
    assert abs(across - implied_outcome_correlation(win_rate, latent_market)) < tolerance
    assert np.mean(won["D0"]) == pytest.approx(win_rate, abs=4 * math.sqrt(0.24 / trials))  # rates unchanged


def test_implied_outcome_correlation_example_and_wider_range():
    assert implied_outcome_correlation(0.3, 0.10) == pytest.approx(0.058, abs=0.001)  # the example
    scenario = make_scenario("correlation: {market: 0.3}\n")
    summary = summarize(
        simulate(scenario, make_deals([100.0] * 50, [0.4] * 50), trials=5000, independent=True)
    )
    effect = summary["correlation"]
    assert effect["p10_p90_width"] > 1.5 * effect["independent_p10_p90_width"]


def _correlated_scenario(sigma: float = 0.3):
    return make_scenario(
        f"correlation: {{market: 0.2, by: {{owner: 0.3}}}}\namount: {{sigma: {sigma}}}\n"
        "targets: [{name: quota, metric: revenue, at_least: 30}]\n"
    )


def _mixed_deals():
    rates = [0.0, 0.05, 0.3, 0.5, 0.8, 0.99, 1.0, 0.4]
    return make_deals([float(i + 5) for i in range(8)], rates, owner=["a", "a", "b", "b", "", "a", "b", ""])


def test_correlated_runs_do_not_depend_on_threads_blocks_or_splits():
    import numba

    from forecast.engine.kernels import simulate_pipeline as kernel
    from forecast.engine.model import deal_model
    from forecast.engine.simulate import DealDraws

    scenario, deals = _correlated_scenario(), _mixed_deals()
    model = deal_model(scenario, deals)
    trials = 5000
    draws = DealDraws.of(scenario, deals, model, 11, trials)

    def run(first, count, block):
        out = np.empty(count), np.empty(count), np.empty((0, count))
        kernel(draws.starts, draws.win_threshold, draws.land_threshold, draws.value, model.dated_inside,
               draws.noise_base, draws.noise_slope, np.zeros(len(deals) + 1, np.int64), np.zeros(0, np.int64),
               np.zeros(0), np.zeros(0, np.int64), draws.correlation, first, block, *out)  # fmt: skip
        return out[0]

    whole = run(0, trials, 4096)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        np.testing.assert_array_equal(run(0, trials, 256), whole)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(np.concatenate([run(0, 1234, 512), run(1234, trials - 1234, 640)]), whole)


def test_blank_groups_are_not_a_team_and_rates_are_kept():
    scenario, deals = _correlated_scenario(), _mixed_deals()
    factors = correlation_inputs(scenario, deals, deals.probability, 1, 10)
    groups = factors.level_group[factors.deal_level]
    loaded = np.diff(factors.factor_start)[groups]
    # market and owner; blank owner: the market only; deals that cannot lose or win: none
    assert list(np.where(factors.deal_level < 0, 0, loaded)) == [0, 2, 2, 2, 1, 2, 0, 1]
    forecast = simulate(scenario, deals, trials=100_000, seed=2, by=("deal_id",))
    for d, rate in enumerate([0.0, 0.05, 0.3, 0.5, 0.8, 0.99, 1.0, 0.4]):
        won = np.mean(forecast.trials.breakdown["deal_id"][f"D{d}"] > 0)
        assert abs(won - rate) <= 4 * math.sqrt(rate * (1 - rate) / 100_000) + 1e-12, (d, won, rate)


def test_drivers_replay_correlated_outcomes():
    from forecast.analyses.drivers import drivers

    scenario, deals = _correlated_scenario(sigma=0.0), _mixed_deals()
    forecast = simulate(scenario, deals, trials=20_000, seed=4, by=("deal_id",))
    for row in drivers(forecast):
        landed = np.mean(forecast.trials.breakdown["deal_id"][row["deal_id"]] > 0)
        assert row["p_landed"] == landed


def test_near_one_correlation_is_safe_and_bounded():
    from forecast.errors import ScenarioError

    assert 0.8 < implied_outcome_correlation(0.3, 0.98) < 0.98  # outcomes correlate less than latents
    with pytest.raises(ScenarioError, match="at most 0.99"):
        make_scenario("correlation: {market: 0.995}\n")


def test_interpolated_deals_do_not_depend_on_threads_or_blocks():
    import numba

    trials, n = 3000, len(OWN_RATES)
    factors = latent_factors(OWN_RATES, OWNERS, 0.2, 0.1, trials=trials)
    assert factors.deal_interpolated.all()
    inputs = (
        stream_starts(np.uint64(3), deal_keys([f"D{i}" for i in range(n)])),
        np.round(OWN_RATES * 2**32).astype(np.int64), np.full(n, 2**31, np.int64), np.arange(1.0, n + 1),
        np.ones(n, bool), np.ones(1), np.zeros(1), np.zeros(n + 1, np.int64), np.zeros(0, np.int64),
        np.zeros(0), np.zeros(0, np.int64), factors,
    )  # fmt: skip

    def run(block):
        revenue, slipped = np.empty(trials), np.empty(trials)
        simulate_pipeline(*inputs, 0, block, revenue, slipped, np.empty((0, trials)))
        return revenue, slipped

    whole = run(4096)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = run(256)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(single[0], whole[0])
    np.testing.assert_array_equal(single[1], whole[1])
