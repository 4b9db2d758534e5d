"""The compiled kernels, each against its plain-Python reference in ``tests/naive.py`` (same seed,
same streams, same bits) and each also against an answer that shares nothing with the fast code:
exact sums over enumerated outcomes, scipy's distributions, compound Poisson moments. A reference
that copies the kernels' bit layout (the amount multiplier, the new-pipeline draws) would copy a
mistake in that layout too; the independent checks would not."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from forecast.engine.correlation import MARKET_KEY, correlation_inputs, no_correlation
from forecast.engine.draws import deal_keys, lognormal_table, noise_table, rate_table
from forecast.engine.kernels import (
    COUNT,
    MAX_TRIAL_BLOCK,
    REVENUE,
    deal_drivers,
    new_pipeline_trials,
    simulate_pipeline,
    trial_block,
    wins_to_cover,
)
from forecast.engine.rng import stream_starts
from tests import naive
from tests.builders import OWN_RATES, OWNERS, SHARED_RATES, latent_factors, make_deals, make_scenario

KS_CRITICAL = 1.95  # Kolmogorov: sqrt(n) x the KS distance exceeds it with probability 0.001
TABLE_QUANTILE_ERROR = {0.3: 2e-4, 1.0: 1e-3}  # draws.lognormal_table's stated accuracy, by sigma


def _within_four_se(simulated: float, exact: float, trials: int) -> None:
    """|simulated - exact| <= 4 standard errors of a proportion (exact p; 1 / trials when p is 0 or 1)."""
    se = math.sqrt(max(exact * (1 - exact), 1.0 / trials) / trials)
    assert abs(simulated - exact) <= 4 * se, (simulated, exact, se)


def _lognormal(sigma: float):
    """The mean-one lognormal the amount multiplier draws from."""
    return stats.lognorm(s=sigma, scale=math.exp(-0.5 * sigma**2))


def _inputs(n_deals: int, seed: int):
    rs = np.random.default_rng(seed)
    return {
        "keys": deal_keys([f"deal-{seed}-{i}" for i in range(n_deals)]),
        "win_rate": rs.choice([0.0, 0.1, 0.5, 0.9, 1.0], n_deals),
        "land_rate": rs.choice([0.0, 0.3, 0.8, 1.0], n_deals),
        "value": rs.integers(1, 100, n_deals) * 1000.0,
        "dated_inside": rs.random(n_deals) < 0.6,
        "metrics": [
            (REVENUE, rs.random(n_deals) < 0.5),
            (COUNT, rs.random(n_deals) < 0.5),
            (COUNT, np.zeros(n_deals, bool)),
            (REVENUE, rs.random(n_deals) < 0.7, rs.choice([0.25, 0.5, 1.0], n_deals)),  # product shares
        ],
    }


# simulate_pipeline


def _run(inputs, seed, table, trials, first_trial=0, block=MAX_TRIAL_BLOCK, factors=None):
    """The kernel on ``_inputs``-style arrays: (revenue, slipped, metrics) per trial; ``factors``
    (default: independent deals, known rates) as ``LatentFactors``."""
    metrics = inputs["metrics"]  # (kind, mask) or (kind, mask, share of each deal's amount)
    membership = np.array([metric[1] for metric in metrics], bool)
    shares = np.array([metric[2] if len(metric) > 2 else np.ones(len(metric[1])) for metric in metrics])
    metric_start = np.concatenate([[0], np.cumsum(membership.sum(axis=0))]).astype(np.int64)
    metric_index = np.nonzero(membership.T)[1].astype(np.int64)
    metric_share = shares.T[membership.T].astype(np.float64)
    base, slope = table if table is not None else (np.ones(1), np.zeros(1))
    revenue, slipped = np.empty(trials), np.empty(trials)
    values = np.empty((len(metrics), trials))
    simulate_pipeline(
        stream_starts(np.uint64(seed), inputs["keys"]),
        np.round(inputs["win_rate"] * 2**32).astype(np.int64),
        np.round(inputs["land_rate"] * 2**32).astype(np.int64),
        inputs["value"],
        inputs["dated_inside"],
        base,
        slope,
        metric_start,
        metric_index,
        metric_share,
        np.array([metric[0] for metric in metrics], np.int64),
        no_correlation(len(inputs["keys"])) if factors is None else factors,
        first_trial,
        block,
        revenue,
        slipped,
        values,
    )
    return revenue, slipped, values


@pytest.mark.parametrize("sigma", [0.0, 0.35])
@pytest.mark.parametrize(("n_deals", "seed"), [(1, 1), (7, 2), (25, 3)])
def test_kernel_matches_reference(n_deals, seed, sigma):
    inputs = _inputs(n_deals, seed)
    table = lognormal_table(sigma) if sigma else None
    trials = 300
    fast = _run(inputs, seed, table, trials)
    slow = naive.simulate(
        seed,
        inputs["keys"],
        inputs["win_rate"],
        inputs["land_rate"],
        inputs["value"],
        inputs["dated_inside"],
        table,
        inputs["metrics"],
        trials,
    )
    for fast_part, slow_part in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fast_part, slow_part)
    assert fast[0].any()  # the comparison is not between two empty results


SMALL = {  # five deals: every outcome of every deal has a probability of at least 0.03
    "keys": deal_keys([f"small-{i}" for i in range(5)]),
    "win_rate": np.array([0.3, 0.6, 0.9, 0.5, 0.7]),
    "land_rate": np.array([1.0, 0.7, 0.4, 0.0, 0.8]),
    "value": np.array([100.0, 250.0, 400.0, 150.0, 50.0]),
    "dated_inside": np.array([True, True, False, True, True]),
    "metrics": [(REVENUE, np.array([1, 0, 1, 1, 0], bool)), (COUNT, np.array([1, 1, 0, 0, 1], bool))],
}


def test_kernel_matches_exact_enumeration():
    """Every value of revenue, slipped revenue and each metric, against the exact distribution summed
    over the 3**5 outcomes (lost, won but not landed, landed), within 4 standard errors."""
    trials = 200_000
    revenue, slipped, metrics = _run(SMALL, 8, None, trials)
    exact: dict[str, dict[float, float]] = {}
    for mass, outcome in naive.outcomes(SMALL["win_rate"], SMALL["land_rate"]):
        landed = outcome == naive.LANDED
        slips = (outcome == naive.WON_NOT_LANDED) & SMALL["dated_inside"]
        totals = {
            "revenue": SMALL["value"][landed].sum(),
            "slipped": SMALL["value"][slips].sum(),
            "metric 0": SMALL["value"][landed & SMALL["metrics"][0][1]].sum(),
            "metric 1": float(np.sum(landed & SMALL["metrics"][1][1])),
        }
        for name, total in totals.items():
            exact.setdefault(name, {})
            exact[name][total] = exact[name].get(total, 0.0) + mass
    simulated = {"revenue": revenue, "slipped": slipped, "metric 0": metrics[0], "metric 1": metrics[1]}
    for name, values in simulated.items():
        assert set(np.unique(values)) <= set(exact[name])  # no value the model cannot produce
        for total, mass in exact[name].items():
            _within_four_se(float(np.mean(values == total)), mass, trials)


@pytest.mark.parametrize("sigma", sorted(TABLE_QUANTILE_ERROR))
def test_kernel_amounts_are_lognormal_whatever_the_outcome(sigma):
    """Landed and slipped amounts of one deal against scipy's lognormal: the KS distance and seven
    quantiles, within what the sample size allows plus the table's stated error. Conditioning on
    the outcome also catches amounts drawn from the win or landing bits."""
    inputs = {
        "keys": deal_keys(["amounts"]), "win_rate": np.array([0.6]), "land_rate": np.array([0.7]),
        "value": np.array([1.0]), "dated_inside": np.array([True]), "metrics": [(COUNT, np.zeros(1, bool))],
    }  # fmt: skip
    revenue, slipped, _ = _run(inputs, 21, lognormal_table(sigma), 400_000)
    exact = _lognormal(sigma)
    # the table's quantile error moves the CDF by at most error x max(x f(x)) = error x 0.4 / sigma
    cdf_error = TABLE_QUANTILE_ERROR[sigma] * 0.4 / sigma
    for amounts in (revenue[revenue > 0], slipped[slipped > 0]):
        n = amounts.size
        assert stats.kstest(amounts, exact.cdf).statistic < KS_CRITICAL / math.sqrt(n) + cdf_error
        for p in (0.001, 0.01, 0.1, 0.5, 0.9, 0.99, 0.999):
            share = np.mean(amounts <= exact.ppf(p))
            assert abs(share - p) < 4 * math.sqrt(p * (1 - p) / n) + cdf_error, (p, share)
        assert abs(amounts.mean() - 1.0) < 4 * math.sqrt(exact.var() / n)  # the table's mean is exactly 1


def test_trials_depend_only_on_their_index():
    """Any split of the trials (blocks, threads, chunks) gives the same bits."""
    inputs = _inputs(30, 4)
    table = lognormal_table(0.2)
    whole = _run(inputs, 4, table, 3 * MAX_TRIAL_BLOCK + 17)
    split = 2 * MAX_TRIAL_BLOCK - 5
    head = _run(inputs, 4, table, split)
    tail = _run(inputs, 4, table, 3 * MAX_TRIAL_BLOCK + 17 - split, first_trial=split)
    for all_trials, first, rest in zip(whole, head, tail, strict=True):
        np.testing.assert_array_equal(all_trials, np.concatenate([first, rest], axis=-1))


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_block_size_does_not_change_results(sigma):
    inputs = _inputs(20, 7)
    table = lognormal_table(sigma) if sigma else None
    runs = [_run(inputs, 7, table, 3000, block=block) for block in (64, 256, 1000, 4096)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("trials", "threads", "block"), [(1, 2, 256), (10_000, 2, 1280), (10**6, 2, 4096), (10**5, 1, 4096)]
)
def test_trial_block_keeps_every_thread_busy(trials, threads, block):
    assert trial_block(trials, threads) == block


def test_thread_count_does_not_change_results():
    inputs = _inputs(40, 5)
    table = lognormal_table(0.3)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(inputs, 5, table, 4 * MAX_TRIAL_BLOCK)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _run(inputs, 5, table, 4 * MAX_TRIAL_BLOCK)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_deal_streams_follow_the_deal_not_its_position():
    """Reordering deals leaves every trial's totals unchanged (common random numbers)."""
    inputs = _inputs(12, 6)
    order = np.random.default_rng(0).permutation(12)
    shuffled = {
        name: (
            value[order]
            if name != "metrics"
            else [tuple(part[order] if i else part for i, part in enumerate(metric)) for metric in value]
        )
        for name, value in inputs.items()
    }
    a = _run(inputs, 6, None, 500)
    b = _run(shuffled, 6, None, 500)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12)


# simulate_pipeline with correlated deals


def _won(win_rate, factors, seed=3, trials=2000):
    """The kernel's outcome of every deal in every trial (one count metric per deal)."""
    n = len(win_rate)
    revenue, slipped, metrics = np.empty(trials), np.empty(trials), np.empty((n, trials))
    simulate_pipeline(
        stream_starts(np.uint64(seed), deal_keys([f"D{i}" for i in range(n)])),
        np.round(np.asarray(win_rate) * 2**32).astype(np.int64), np.full(n, 2**32, np.int64),
        np.arange(1.0, n + 1), np.ones(n, bool), np.ones(1), np.zeros(1),
        np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64), np.ones(n),
        np.full(n, COUNT, np.int64), factors, 0, 256, revenue, slipped, metrics,
    )  # fmt: skip
    return metrics > 0


def test_zero_loadings_give_the_independent_kernel_bit_for_bit():
    independent = _won(SHARED_RATES, no_correlation(300))
    factors = latent_factors(SHARED_RATES, OWNERS, 0.2, 0.1)
    zero = factors._replace(  # no loadings: the deal's own noise is all of its latent variable
        factor_loading=np.zeros_like(factors.factor_loading), group_scale=np.ones_like(factors.group_scale)
    )
    np.testing.assert_array_equal(_won(SHARED_RATES, zero), independent)
    assert independent.mean() == pytest.approx(SHARED_RATES.mean(), abs=0.01)


@pytest.mark.parametrize(
    ("win_rate", "market", "by_owner"),
    [
        (SHARED_RATES, 0.2, 0.1),
        (OWN_RATES, 0.2, 0.1),
        (np.concatenate([SHARED_RATES[:150], OWN_RATES[:146], [0.0, 1.0, 0.5, 0.5]]), 0.15, 0.3),
        (0.3 + OWN_RATES / 5, 0.9, 0.09),  # near the 0.99 limit: the conditional rate is steep
    ],
    ids=["shared rates", "own rates", "mixed", "steep"],
)
def test_correlated_outcomes_match_the_reference_model(win_rate, market, by_owner):
    """Every outcome agrees with the exact model, except where a draw lies within the
    approximations' error (Phi to 7.5e-8, interpolation to 3e-8) of the conditional rate.
    The independent answers (exact finite-pool integrals, Vasicek) are in test_correlation.py."""
    seed, trials = 3, 200
    won = _won(win_rate, latent_factors(win_rate, OWNERS, market, by_owner, seed, trials), seed, trials)
    owners = sorted(set(OWNERS) - {""})
    factor_keys = deal_keys([MARKET_KEY] + [f"__group__:owner={o}" for o in owners])
    loadings = [
        [math.sqrt(market)] + [math.sqrt(by_owner) * (o == owner) for o in owners] for owner in OWNERS
    ]  # fmt: skip
    expected, margin = naive.correlated_wins(
        seed, deal_keys([f"D{i}" for i in range(len(win_rate))]), win_rate, factor_keys, loadings, trials
    )
    disagree = won != expected
    assert np.all(np.abs(margin[disagree]) < 2.5e-7), margin[disagree]
    assert disagree.sum() <= 2
    assert 0.2 < expected.mean() < 0.8


# simulate_pipeline with uncertain rates

RATE_CELLS = deal_keys(["__rate__:stage=a", "__rate__:stage=b"])


def _uncertain(inputs, seed: int, trials: int, correlation: str = "", owner=None):
    """``inputs`` with a rate cell for about two thirds of the deals (of worth 3, 22 or 500 deals),
    their ``LatentFactors`` (with ``correlation``, by ``owner``) and the reference's cell per deal."""
    n = len(inputs["keys"])
    rs = np.random.default_rng(seed)
    cell = rs.integers(-1, 2, n)
    rate_cell = np.where(cell >= 0, RATE_CELLS[np.maximum(cell, 0)], np.uint64(0)).astype(np.uint64)
    rate_deals = np.where(cell >= 0, rs.choice([3.0, 22.0, 500.0], n), 0.0)
    inputs = {**inputs, "win_rate": rs.choice([0.0, 0.1, 0.35, 0.5, 1.0], n)}
    deals = make_deals(np.ones(n), inputs["win_rate"], owner=owner if owner is not None else [""] * n)
    factors = correlation_inputs(
        make_scenario(correlation), deals, inputs["win_rate"], seed, trials, rate_cell, rate_deals
    )
    reference = [
        (rate_cell[d], rate_table(inputs["win_rate"][d], rate_deals[d]))
        if rate_deals[d] > 0 and 0 < inputs["win_rate"][d] < 1 else None
        for d in range(n)
    ]  # fmt: skip
    assert any(reference) and not all(reference)
    return inputs, factors, reference


@pytest.mark.parametrize("sigma", [0.0, 0.35])
@pytest.mark.parametrize(("n_deals", "seed"), [(4, 1), (9, 2), (40, 3)])
def test_uncertain_kernel_matches_reference(n_deals, seed, sigma):
    """Deals of an uncertain cell compare their draw with their cell's drawn threshold in each trial,
    summed in the kernel's order: the same bits as trial-by-trial Python."""
    inputs, factors, reference = _uncertain(_inputs(n_deals, seed), seed, 300)
    table = lognormal_table(sigma) if sigma else None
    fast = _run(inputs, seed, table, 300, factors=factors)
    slow = naive.simulate(
        seed, inputs["keys"], inputs["win_rate"], inputs["land_rate"], inputs["value"],
        inputs["dated_inside"], table, inputs["metrics"], 300, uncertain=reference, order=factors.deal_order,
    )  # fmt: skip
    for fast_part, slow_part in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fast_part, slow_part)
    assert fast[0].any()


@pytest.mark.parametrize("correlation", ["", "correlation: {market: 0.2, by: {owner: 0.1}}\n"])
def test_uncertain_rates_do_not_depend_on_blocks_threads_or_splits(correlation):
    inputs = _inputs(60, 9)
    trials = 3 * MAX_TRIAL_BLOCK + 17
    inputs, factors, _ = _uncertain(inputs, 9, trials, correlation, owner=OWNERS[:60])
    table = lognormal_table(0.3)
    whole = _run(inputs, 9, table, trials, factors=factors)
    for block in (64, 1000):
        for a, b in zip(whole, _run(inputs, 9, table, trials, block=block, factors=factors), strict=True):
            np.testing.assert_array_equal(a, b)
    split = 2 * MAX_TRIAL_BLOCK - 5
    head = _run(inputs, 9, table, split, factors=factors)
    tail = _run(inputs, 9, table, trials - split, first_trial=split, factors=factors)
    for all_trials, first, rest in zip(whole, head, tail, strict=True):
        np.testing.assert_array_equal(all_trials, np.concatenate([first, rest], axis=-1))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(inputs, 9, table, trials, factors=factors)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(whole, one, strict=True):
        np.testing.assert_array_equal(a, b)


def test_correlated_uncertain_outcomes_match_the_reference_model():
    """With factors, an uncertain deal's conditional rate is computed from its cell's draw in that
    trial: every outcome agrees with the exact model (scipy's Phi and Phi^-1) except within the
    approximations' error of the rate."""
    seed, trials, n = 5, 400, 120
    inputs, factors, reference = _uncertain(
        _inputs(n, seed), seed, trials, "correlation: {market: 0.3, by: {owner: 0.2}}\n", owner=OWNERS[:n]
    )
    count = np.full(n, COUNT, np.int64)
    revenue, slipped, won = np.empty(trials), np.empty(trials), np.empty((n, trials))
    simulate_pipeline(
        stream_starts(np.uint64(seed), inputs["keys"]), np.round(inputs["win_rate"] * 2**32).astype(np.int64),
        np.full(n, 2**32, np.int64), np.ones(n), np.ones(n, bool), np.ones(1), np.zeros(1),
        np.arange(n + 1, dtype=np.int64), np.arange(n, dtype=np.int64), np.ones(n), count, factors, 0, 256,
        revenue, slipped, won,
    )  # fmt: skip
    owners = sorted(set(OWNERS[:n]) - {""})
    factor_keys = deal_keys([MARKET_KEY] + [f"__group__:owner={o}" for o in owners])
    loadings = [[math.sqrt(0.3)] + [math.sqrt(0.2) * (o == owner) for o in owners] for owner in OWNERS[:n]]
    expected, margin = naive.correlated_wins(
        seed, inputs["keys"], inputs["win_rate"], factor_keys, loadings, trials, uncertain=reference
    )
    disagree = (won > 0) != expected
    assert np.all(np.abs(margin[disagree]) < 2.5e-7), margin[disagree]
    assert disagree.sum() <= 2
    moving = np.array([cell is not None for cell in reference])
    assert 0.1 < expected[moving].mean() < 0.9


def test_zero_loadings_with_uncertain_rates_give_the_uncorrelated_kernel():
    inputs, factors, _ = _uncertain(_inputs(50, 4), 4, 500, "correlation: {market: 0.2}\n")
    _, alone, _ = _uncertain(_inputs(50, 4), 4, 500)
    zero = factors._replace(
        factor_loading=np.zeros_like(factors.factor_loading), group_scale=np.ones_like(factors.group_scale)
    )
    for a, b in zip(
        _run(inputs, 4, None, 500, factors=zero), _run(inputs, 4, None, 500, factors=alone), strict=True
    ):
        np.testing.assert_array_equal(a, b)


# new_pipeline_trials


@pytest.mark.parametrize(("lam", "sigma"), [(3.7, 0.0), (12.0, 0.5), (1234.5, 0.2)])
def test_new_pipeline_kernel_matches_reference(lam, sigma):
    table = lognormal_table(sigma) if sigma else None
    trials = 40 if lam > 1000 else 300
    revenue, count = np.empty(trials), np.empty(trials)
    new_pipeline_trials(np.uint64(77), lam, 250.0, *noise_table(sigma), 0, revenue, count)
    slow_revenue, slow_count = naive.new_pipeline(77, lam, 250.0, table, trials)
    np.testing.assert_array_equal(count, slow_count)
    np.testing.assert_array_equal(revenue, slow_revenue)


def test_new_pipeline_counts_are_poisson():
    revenue, count = np.empty(200_000), np.empty(200_000)
    new_pipeline_trials(np.uint64(3), 6.5, 1.0, np.ones(1), np.zeros(1), 0, revenue, count)
    observed = np.bincount(count.astype(int), minlength=25)[:25]
    expected = stats.poisson.pmf(np.arange(25), 6.5) * count.size
    keep = expected > 20
    assert (
        stats.chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue
        > 1e-3
    )


def _mean_and_variance_within_four_se(values: np.ndarray, mean: float, variance: float) -> None:
    n = values.size
    assert abs(values.mean() - mean) < 4 * math.sqrt(variance / n), (values.mean(), mean)
    fourth = np.mean((values - values.mean()) ** 4)
    assert abs(values.var() - variance) < 4 * math.sqrt((fourth - values.var() ** 2) / n), (
        values.var(),
        variance,
    )


@pytest.mark.parametrize(("lam", "sigma", "trials"), [(12.0, 0.5, 200_000), (1234.5, 0.2, 20_000)])
def test_new_pipeline_has_the_compound_poisson_moments(lam, sigma, trials):
    """N ~ Poisson(lam) deals of size mean x M: E[R] = lam mean, Var[R] = lam mean**2 E[M**2] with
    E[M**2] = exp(sigma**2) (scipy's lognormal; the table's is within 2e-6 of it); N has mean and
    variance lam. The large lam is drawn in chunks of 500."""
    size = 250.0
    revenue, count = np.empty(trials), np.empty(trials)
    new_pipeline_trials(np.uint64(41), lam, size, *noise_table(sigma), 0, revenue, count)
    assert _lognormal(sigma).moment(2) == pytest.approx(math.exp(sigma**2))
    _mean_and_variance_within_four_se(revenue, lam * size, lam * size**2 * _lognormal(sigma).moment(2))
    _mean_and_variance_within_four_se(count, lam, lam)


# wins_to_cover


def test_wins_to_cover_matches_reference():
    table = lognormal_table(0.6)
    needed = np.empty(200)
    wins_to_cover(np.uint64(5), np.full(200, 1000.0), 150.0, *table, needed)
    np.testing.assert_array_equal(needed, naive.wins_to_cover(5, 1000.0, 150.0, table, 200))


def test_wins_to_cover_matches_sizes_drawn_by_scipy():
    """The kernel's deals needed against the same rule on sizes scipy draws: two-sample KS."""
    n, remaining, size, sigma = 20_000, 1000.0, 150.0, 0.6
    needed = np.empty(n)
    wins_to_cover(np.uint64(5), np.full(n, remaining), size, *lognormal_table(sigma), needed)
    sizes = size * _lognormal(sigma).rvs(size=(n, 64), random_state=np.random.default_rng(1))
    covered = np.cumsum(sizes, axis=1)
    assert np.all(covered[:, -1] >= remaining)  # 64 draws always suffice here
    last = np.argmax(covered >= remaining, axis=1)  # the deal that completes the amount
    before = np.where(last > 0, covered[np.arange(n), last - 1], 0.0)
    reference = last + (remaining - before) / sizes[np.arange(n), last]
    assert stats.ks_2samp(needed, reference).statistic < KS_CRITICAL * math.sqrt(2 / n)


# deal_drivers


def _drivers(inputs, seed, table, revenue, quota, factors=None):
    n = len(inputs["keys"])
    landed, hits, rescued, pivotal = (np.zeros(n, np.int64) for _ in range(4))
    value = np.zeros(n)
    base, slope = table if table is not None else (np.ones(1), np.zeros(1))
    deal_drivers(
        stream_starts(np.uint64(seed), inputs["keys"]), np.round(inputs["win_rate"] * 2**32).astype(np.int64),
        np.round(inputs["land_rate"] * 2**32).astype(np.int64), inputs["value"], base, slope,
        no_correlation(n) if factors is None else factors, revenue, quota, landed, hits, value, rescued,
        pivotal,
    )  # fmt: skip
    return landed, hits, value, rescued, pivotal


@pytest.mark.parametrize("sigma", [0.0, 0.25])
def test_deal_drivers_match_reference(sigma):
    inputs = _inputs(9, 12)
    table = lognormal_table(sigma) if sigma else None
    revenue = _run(inputs, 12, table, 400)[0]
    quota = float(np.median(revenue))
    fast = _drivers(inputs, 12, table, revenue, quota)
    slow = naive.deal_drivers(
        12, inputs["keys"], inputs["win_rate"], inputs["land_rate"], inputs["value"], table, revenue, quota
    )
    for d, (landed, hits, total, rescued, pivotal) in enumerate(slow):
        assert (fast[0][d], fast[1][d], fast[3][d], fast[4][d]) == (landed, hits, rescued, pivotal)
        assert fast[2][d] == pytest.approx(total, rel=1e-12)
    assert fast[3].any() and fast[1].any() and fast[4].any()  # the comparison is not between empty counts


def test_deal_drivers_match_exact_enumeration():
    """Per deal: P(landed), P(landed and at quota), P(won, not landed, and landing it would reach the
    quota), P(landed and at quota only thanks to it) and the expected landed value, summed exactly over
    every outcome, within 4 standard errors."""
    trials, quota = 100_000, 500.0
    revenue = _run(SMALL, 30, None, trials)[0]
    landed, hits, value, rescued, pivotal = _drivers(SMALL, 30, None, revenue, quota)
    exact = np.zeros((4, len(SMALL["keys"])))  # landed, hits, rescued, pivotal
    for mass, outcome in naive.outcomes(SMALL["win_rate"], SMALL["land_rate"]):
        total = SMALL["value"][outcome == naive.LANDED].sum()
        exact[0] += mass * (outcome == naive.LANDED)
        exact[1] += mass * ((outcome == naive.LANDED) & (total >= quota))
        exact[2] += mass * (
            (outcome == naive.WON_NOT_LANDED) & (total < quota) & (total + SMALL["value"] >= quota)
        )
        exact[3] += mass * ((outcome == naive.LANDED) & (total >= quota) & (total - SMALL["value"] < quota))
    for d in range(len(SMALL["keys"])):
        _within_four_se(landed[d] / trials, exact[0, d], trials)
        _within_four_se(hits[d] / trials, exact[1, d], trials)
        _within_four_se(rescued[d] / trials, exact[2, d], trials)
        _within_four_se(pivotal[d] / trials, exact[3, d], trials)
        p = exact[0, d]  # the landed value is the deal's value times a Bernoulli(p)
        assert abs(value[d] / trials - p * SMALL["value"][d]) <= 4 * SMALL["value"][d] * math.sqrt(
            max(p * (1 - p), 1 / trials) / trials
        )
    assert exact[2].max() > 0.05 and exact[3].max() > 0.05  # the checks are not of zeros


def test_deal_drivers_replay_uncertain_outcomes():
    """Drivers draw each uncertain deal's cell as the simulation did: every deal lands in the same
    trials (one count metric per deal), and the landed values add up to the revenue."""
    n, trials = 30, 3000
    inputs, factors, _ = _uncertain(_inputs(n, 6), 6, trials)
    inputs = {**inputs, "metrics": [(COUNT, np.arange(n) == d) for d in range(n)]}
    revenue, _, per_deal = _run(inputs, 6, None, trials, factors=factors)
    landed, _, value, _, _ = _drivers(inputs, 6, None, revenue, float(np.median(revenue)), factors)
    np.testing.assert_array_equal(landed, per_deal.sum(axis=1))
    assert value.sum() == revenue.sum()  # whole amounts: exact sums
