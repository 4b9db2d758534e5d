"""The counter-based generator and the amount-noise table: exactness and statistical quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit
from scipy import stats
from scipy.special import betainc, ndtri

from forecast.engine.draws import (
    AMOUNT_FINE,
    AMOUNT_ROWS,
    AMOUNT_TAIL_ROWS,
    RATE_SLICES,
    TABLE_ROWS,
    deal_keys,
    lognormal_table,
    rate_table,
)
from forecast.engine.normal import normal_quantile_array
from forecast.engine.rng import (
    amount_multiplier,
    counter,
    mix_a,
    mix_b,
    rate_draw,
    stream_starts,
)
from tests import naive


@njit
def _hashes(starts, trials):
    out_a = np.empty((starts.size, trials), np.uint64)
    out_b = np.empty((starts.size, trials), np.uint64)
    for d in range(starts.size):
        for t in range(trials):
            c = counter(starts[d], t)
            out_a[d, t] = mix_a(c)
            out_b[d, t] = mix_b(c)
    return out_a, out_b


@njit
def _multipliers(hashes, base, slope):
    out = np.empty(hashes.size)
    for i in range(hashes.size):
        out[i] = amount_multiplier(hashes[i], base, slope)
    return out


def _uniforms(n_deals: int, n_trials: int, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """High and low 32-bit halves of mix_a as uniforms in [0, 1), deals x trials."""
    starts = stream_starts(np.uint64(seed), deal_keys([f"deal-{i}" for i in range(n_deals)]))
    hashes, _ = _hashes(starts, n_trials)
    return (hashes >> np.uint64(32)) / 2.0**32, (hashes & np.uint64(0xFFFFFFFF)) / 2.0**32


def test_hashes_match_reference():
    keys = deal_keys(["A", "B", "C"])
    starts = stream_starts(np.uint64(5), keys)
    assert [int(s) for s in starts] == [naive.stream_start(5, int(k)) for k in keys]
    hash_a, hash_b = _hashes(starts, 50)
    for d in range(3):
        for t in range(50):
            c = (int(starts[d]) + t * naive.GOLDEN) & naive.MASK
            assert int(hash_a[d, t]) == naive.mix_a(c)
            assert int(hash_b[d, t]) == naive.mix_b(c)


def test_deal_keys_are_stable_and_distinct():
    keys = deal_keys(["OPP-1", "OPP-2", 3])
    assert len(set(keys.tolist())) == 3
    assert deal_keys(["OPP-1"])[0] == keys[0]  # independent of the deal's row


def test_seed_changes_every_stream():
    keys = deal_keys(["A", "B"])
    assert not np.any(stream_starts(np.uint64(1), keys) == stream_starts(np.uint64(2), keys))


@pytest.mark.parametrize("half", [0, 1])
def test_uniforms_are_uniform(half):
    """Chi-square over 64 bins of 2e5 draws; a fixed seed, so the p-value is fixed too."""
    draws = _uniforms(20, 10_000)[half].ravel()
    counts = np.bincount((draws * 64).astype(int), minlength=64)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.kstest(draws, "uniform").pvalue > 1e-3


def test_neighbouring_deals_and_trials_are_independent():
    """Correlations between neighbours stay within 4 standard errors of zero."""
    high, low = _uniforms(40, 5_000)
    limit = 4.0 / math.sqrt(high[:-1].size)
    assert abs(np.corrcoef(high[:-1].ravel(), high[1:].ravel())[0, 1]) < limit  # deal d vs d + 1
    assert abs(np.corrcoef(high[:, :-1].ravel(), high[:, 1:].ravel())[0, 1]) < limit  # trial t vs t + 1
    assert abs(np.corrcoef(high.ravel(), low.ravel())[0, 1]) < 4.0 / math.sqrt(high.size)  # win vs land draw
    # joint frequencies of neighbouring deals in a 8 x 8 grid: no dependence
    grid = np.histogram2d(high[:-1].ravel(), high[1:].ravel(), bins=8, range=[[0, 1], [0, 1]])[0]
    assert stats.chi2_contingency(grid).pvalue > 1e-3


def _table_quantile(u: np.ndarray, base: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """What the table returns at probability u: the reference lookup at u * 2**36."""
    return np.array([naive.multiplier(int(x * 2**36) << 28, base, slope) for x in u])


@pytest.mark.parametrize(("sigma", "tolerance"), [(0.05, 1e-4), (0.3, 2e-4), (1.0, 1e-3)])
def test_table_has_mean_one_and_lognormal_quantiles(sigma, tolerance):
    base, slope = lognormal_table(sigma)
    assert base.size == TABLE_ROWS
    tail = np.full(AMOUNT_FINE, AMOUNT_TAIL_ROWS / AMOUNT_ROWS / AMOUNT_FINE)
    weight = np.concatenate([tail, np.full(AMOUNT_ROWS - 2 * AMOUNT_TAIL_ROWS, 1.0 / AMOUNT_ROWS), tail])
    assert np.sum(weight * (base + 0.5 * slope)) == pytest.approx(1.0, abs=1e-12)
    u = np.concatenate([np.geomspace(1e-5, 0.5, 3000), 1 - np.geomspace(1e-5, 0.5, 3000)])
    exact = np.exp(sigma * ndtri(u) - 0.5 * sigma**2)
    assert np.max(np.abs(_table_quantile(u, base, slope) / exact - 1.0)) < tolerance


@pytest.mark.parametrize("sigma", [0.2, 0.8])
def test_multiplier_draws_are_lognormal(sigma):
    """Mean 1, variance exp(sigma^2) - 1 within 4 standard errors; KS against the lognormal."""
    starts = stream_starts(np.uint64(3), deal_keys(["x"]))
    _, hashes = _hashes(starts, 400_000)
    draws = _multipliers(hashes.ravel(), *lognormal_table(sigma))
    n = draws.size
    assert abs(draws.mean() - 1.0) < 4 * draws.std() / math.sqrt(n)
    variance = np.exp(sigma**2) - 1
    centred = draws - draws.mean()
    variance_se = math.sqrt((np.mean(centred**4) - draws.var() ** 2) / n)
    assert abs(draws.var() - variance) < 4 * variance_se
    assert stats.kstest(draws, stats.lognorm(s=sigma, scale=math.exp(-0.5 * sigma**2)).cdf).pvalue > 1e-3


def test_multiplier_matches_reference_lookup():
    base, slope = lognormal_table(0.4)
    starts = stream_starts(np.uint64(9), deal_keys(["y"]))
    _, hashes = _hashes(starts, 2_000)
    hashes = hashes.ravel()
    hashes[:5] = np.uint64(0xFFFFFFFFFFFFFFFF)  # the top tail: fine rows
    hashes[5:10] = np.uint64(0x0000FFFFFFFFFFFF)  # the bottom tail
    fast = _multipliers(hashes, base, slope)
    slow = [naive.multiplier(int(h), base, slope) for h in hashes]
    np.testing.assert_array_equal(fast, slow)


# rate_table: an uncertain win rate's Beta posterior


@njit
def _rate_draws(hashes, base, slope):
    out = np.empty(hashes.size)
    for i in range(hashes.size):
        out[i] = rate_draw(hashes[i], base, slope)
    return out


def _table_rates(base: np.ndarray, slope: np.ndarray, points: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """The table's rate at ``points`` positions inside every slice, and the probability it is drawn at."""
    position = (np.arange(points) + 0.5) / points
    rates = (base[:, None] + slope[:, None] * position).ravel()
    return rates, ((np.arange(RATE_SLICES)[:, None] + position) / RATE_SLICES).ravel()


@settings(max_examples=60, deadline=None)
@given(win_rate=st.floats(1e-12, 1 - 1e-9), deals=st.floats(1e-3, 1e9))
def test_rate_table_has_the_rate_as_mean_and_stays_in_0_1(win_rate, deals):
    """Whatever the rate and its evidence: the table's mean is the rate (so the expected wins do not
    change), its rates are non-decreasing and in 0-1."""
    base, slope = rate_table(win_rate, deals)
    assert np.mean(base + 0.5 * slope) == pytest.approx(win_rate, rel=1e-12, abs=1e-16)
    rates, _ = _table_rates(base, slope, points=2)
    assert np.all(np.diff(rates) >= -1e-15) and rates.min() >= 0.0 and rates.max() <= 1.0


@pytest.mark.parametrize(
    ("win_rate", "deals"),
    [(8 / 22, 22), (2 / 12, 12), (0.3 / 20.3, 20.3), (0.5, 2), (0.5, 1), (0.95, 60), (0.003, 300),
     (0.545, 2202), (0.3, 1e9), (0.9, 7)],
)  # fmt: skip
def test_rate_table_is_within_its_stated_error_of_the_beta(win_rate, deals):
    """The drawn rate's CDF against scipy's Beta: within one slice (1/4096) everywhere, and within
    5e-5 between the end slices when both Beta parameters are at least 1 (the docstring's claim)."""
    won, lost = win_rate * deals, (1 - win_rate) * deals
    rates, probability = _table_rates(*rate_table(win_rate, deals))
    error = np.abs(betainc(won, lost, rates) - probability)
    assert error.max() <= 1.0 / RATE_SLICES
    inside = (probability > 1.0 / RATE_SLICES) & (probability < 1.0 - 1.0 / RATE_SLICES)
    if min(won, lost) >= 1:
        assert error[inside].max() < 5e-5


def test_rate_draws_match_the_reference_and_are_beta():
    base, slope = rate_table(8 / 22, 22)
    starts = stream_starts(np.uint64(4), deal_keys(["cell"]))
    hashes, _ = _hashes(starts, 200_000)
    hashes = hashes.ravel()
    hashes[:3] = np.uint64(0xFFFFFFFFFFFFFFFF)  # the top slice
    hashes[3:6] = np.uint64(0)  # the bottom one
    draws = _rate_draws(hashes, base, slope)
    np.testing.assert_array_equal(draws[:1000], [naive.rate_draw(int(h), base, slope) for h in hashes[:1000]])
    assert stats.kstest(draws[6:], stats.beta(8, 14).cdf).statistic < 1.95 / math.sqrt(draws.size) + 2.5e-4


def test_normal_quantile_matches_scipy():
    p = np.concatenate(
        [np.linspace(1e-9, 1 - 1e-9, 20001), 10.0 ** -np.arange(1, 300), 1 - 10.0 ** -np.arange(1, 16)]
    )
    exact = ndtri(p)
    assert np.max(np.abs(normal_quantile_array(p) - exact) / np.maximum(1, np.abs(exact))) < 4e-15
    assert normal_quantile_array(np.array([0.0, 0.5, 1.0])).tolist() == [-np.inf, 0.0, np.inf]
