"""simulate(): exact answers for small pipelines, the model's rules, and invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.engine.model import deal_model, overdue_deals
from forecast.engine.simulate import simulate
from forecast.engine.summary import probability, reaches
from tests import naive
from tests.builders import AFTER, INSIDE, PERIOD_START, make_deals, make_scenario

EXACT_TRIALS = 200_000


def _within_four_se(simulated: float, exact: float, trials: int) -> None:
    """|simulated - exact| <= 4 standard errors of a proportion (exact p)."""
    se = math.sqrt(max(exact * (1 - exact), 1.0 / trials) / trials)
    assert abs(simulated - exact) <= 4 * se, (simulated, exact, se)


PIPELINES = [
    ([100, 200, 300], [0.5, 0.3, 0.8], [0, 250, 400, 600]),
    ([50, 50, 50, 50, 120, 400], [0.2, 0.9, 0.5, 0.5, 0.35, 0.1], [100, 170, 300, 500]),
    ([10 * (i + 1) for i in range(12)], [0.05 + 0.07 * i for i in range(12)], [200, 390, 600]),
]


@pytest.mark.parametrize(("amounts", "win_rates", "quotas"), PIPELINES)
def test_revenue_distribution_is_exact(amounts, win_rates, quotas):
    scenario = make_scenario("simulation: {seed: 17}\n")
    forecast = simulate(scenario, make_deals(amounts, win_rates), trials=EXACT_TRIALS)
    exact = naive.revenue_distribution(amounts, win_rates)
    for quota in quotas:
        _within_four_se(
            probability(reaches(forecast.trials.revenue, quota))[0],
            naive.p_at_least(exact, quota),
            EXACT_TRIALS,
        )


def test_dynamic_programme_matches_enumeration():
    amounts, win_rates, _ = PIPELINES[1]
    exact = naive.revenue_distribution(amounts, win_rates)
    for quota in (0, 100, 170, 555, 1220):
        assert naive.p_at_least(exact, quota) == pytest.approx(
            naive.p_at_least_brute(amounts, win_rates, quota)
        )


def test_slip_pull_in_and_haircut_are_exact():
    """Inside deals land with p(1 - slip), later ones with p * pull_in; haircut scales amounts."""
    scenario = make_scenario(
        "slip: {default: 0.3, pull_in: 0.2}\namount: {haircut: 0.25}\n"
        "stages: [{name: Proposal, win_rate: 0.6, slip: 0.1}, {name: Other, win_rate: 0.4}]\n"
    )
    amounts = [400, 800, 1200, 400, 2000]
    dates = [INSIDE, INSIDE, AFTER, PERIOD_START, AFTER]
    deals = make_deals(
        amounts, [np.nan, np.nan, np.nan, 0.7, np.nan], close_dates=dates, stage_index=[0, 1, 0, 1, 1]
    )
    forecast = simulate(scenario, deals, trials=EXACT_TRIALS)
    landing = [0.6 * 0.9, 0.4 * 0.7, 0.6 * 0.2, 0.7 * 0.7, 0.4 * 0.2]
    exact = naive.revenue_distribution([a * 0.75 for a in amounts], landing)
    for quota in (300, 600, 900, 1500, 2400):
        _within_four_se(
            probability(reaches(forecast.trials.revenue, quota))[0],
            naive.p_at_least(exact, quota),
            EXACT_TRIALS,
        )
    # slipped revenue: won, dated inside, not landed
    expected_slipped = 0.75 * (400 * 0.6 * 0.1 + 800 * 0.4 * 0.3 + 400 * 0.7 * 0.3)
    slipped = forecast.trials.slipped
    assert abs(slipped.mean() - expected_slipped) < 4 * slipped.std() / math.sqrt(EXACT_TRIALS)


def test_counts_and_where_targets_are_exact():
    scenario = make_scenario(
        "booked: {revenue: 1000, new_logos: 1}\n"
        "targets:\n"
        "  - {name: logos, metric: new_logos, at_least: 3}\n"
        "  - {name: x deals, metric: deals, where: {product: X}, at_least: 2}\n"
        "  - {name: x revenue, metric: revenue, where: {product: [X, Y]}, at_least: 300}\n"
        "  - {name: quota, metric: revenue, at_least: 1400}\n"
    )
    win_rates = [0.5, 0.4, 0.7, 0.2, 0.9]
    deals = make_deals(
        [100, 200, 300, 400, 500], win_rates, new_logo=[1, 1, 0, 1, 0], product=["X", "Y", "X", "Z", "X"]
    )
    forecast = simulate(scenario, deals, trials=EXACT_TRIALS)
    targets = forecast.trials.targets
    logos = naive.revenue_distribution([1, 1, 1], [0.5, 0.4, 0.2])  # counts as unit amounts
    _within_four_se(probability(reaches(targets["logos"], 3))[0], naive.p_at_least(logos, 2), EXACT_TRIALS)
    x_deals = naive.revenue_distribution([1, 1, 1], [0.5, 0.7, 0.9])
    _within_four_se(
        probability(reaches(targets["x deals"], 2))[0], naive.p_at_least(x_deals, 2), EXACT_TRIALS
    )
    x_revenue = naive.revenue_distribution([100, 200, 300, 500], [0.5, 0.4, 0.7, 0.9])
    _within_four_se(
        probability(reaches(targets["x revenue"], 300))[0], naive.p_at_least(x_revenue, 300), EXACT_TRIALS
    )
    total = naive.revenue_distribution([100, 200, 300, 400, 500], win_rates)
    _within_four_se(
        probability(reaches(targets["quota"], 1400))[0], naive.p_at_least(total, 400), EXACT_TRIALS
    )
    assert targets["quota"] is forecast.trials.revenue  # booked included once


def test_amount_noise_keeps_the_mean_and_sets_the_variance():
    sigma = 0.4
    scenario = make_scenario(f"amount: {{sigma: {sigma}, haircut: 0.1}}\n")
    amounts = np.array([1000.0, 2500.0, 400.0, 7000.0])
    win_rates = np.array([0.3, 0.6, 0.9, 0.2])
    revenue = simulate(scenario, make_deals(amounts, win_rates), trials=EXACT_TRIALS).trials.revenue
    value = 0.9 * amounts
    mean = np.sum(win_rates * value)
    variance = np.sum(value**2 * (win_rates * np.exp(sigma**2) - win_rates**2))
    n = revenue.size
    assert abs(revenue.mean() - mean) < 4 * math.sqrt(variance / n)
    centred = revenue - revenue.mean()
    variance_se = math.sqrt((np.mean(centred**4) - revenue.var() ** 2) / n)
    assert abs(revenue.var() - variance) < 4 * variance_se


def test_model_rules():
    scenario = make_scenario(
        "as_of: 2026-07-10\nslip: {default: 0.2, pull_in: 0.05}\n"
        "stages: [{name: A, win_rate: 0.25, slip: 0.5}, {name: B, win_rate: 0.75}]\n"
    )
    overdue = PERIOD_START  # before as_of, still counted inside
    deals = make_deals(
        [10, 10, 10, 10],
        [np.nan, 0.9, np.nan, np.nan],
        close_dates=[INSIDE, INSIDE, AFTER, overdue],
        stage_index=[0, 0, 1, 1],
    )
    model = deal_model(scenario, deals)
    np.testing.assert_allclose(model.win_rate, [0.25, 0.9, 0.75, 0.75])  # probability overrides the stage
    np.testing.assert_allclose(model.land_rate, [0.5, 0.5, 0.05, 0.8])
    np.testing.assert_array_equal(model.dated_inside, [True, True, False, True])
    np.testing.assert_array_equal(overdue_deals(scenario, deals), [False, False, False, True])


def test_same_seed_same_trials_other_seed_other_trials():
    scenario = make_scenario("amount: {sigma: 0.3}\n")
    deals = make_deals([100, 200, 300], [0.5, 0.5, 0.5])
    first = simulate(scenario, deals, trials=5000, seed=1).trials.revenue
    np.testing.assert_array_equal(first, simulate(scenario, deals, trials=5000, seed=1).trials.revenue)
    assert not np.array_equal(first, simulate(scenario, deals, trials=5000, seed=2).trials.revenue)


pipelines = st.lists(
    st.tuples(st.integers(0, 1000), st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=8
)


@settings(max_examples=40, deadline=None)
@given(pipelines, st.integers(0, 7), st.floats(0.0, 1.0), st.integers(0, 2**32))
def test_raising_a_probability_never_lowers_revenue(deals_spec, which, raise_to, seed):
    """Per trial, not only on average: wins are u < p on common random numbers."""
    amounts = [a for a, _, _ in deals_spec]
    win_rates = np.array([p for _, p, _ in deals_spec])
    dates = [INSIDE if inside else AFTER for _, _, inside in deals_spec]
    scenario = make_scenario("slip: {default: 0.3, pull_in: 0.4}\n")
    before = simulate(scenario, make_deals(amounts, win_rates, close_dates=dates), trials=500, seed=seed)
    raised = win_rates.copy()
    which %= len(amounts)
    raised[which] = max(raised[which], raise_to)
    after = simulate(scenario, make_deals(amounts, raised, close_dates=dates), trials=500, seed=seed)
    assert np.all(after.trials.revenue >= before.trials.revenue)
    for quota in (0, 300, 1000):
        assert np.mean(reaches(after.trials.revenue, quota)) >= np.mean(reaches(before.trials.revenue, quota))


@settings(max_examples=40, deadline=None)
@given(pipelines, st.floats(0, 1e6), st.floats(0.0, 0.9), st.integers(0, 2**32))
def test_revenue_is_bounded_without_noise(deals_spec, booked, haircut, seed):
    amounts = [a for a, _, _ in deals_spec]
    win_rates = [p for _, p, _ in deals_spec]
    scenario = make_scenario(f"booked: {booked}\namount: {{haircut: {haircut}}}\nslip: {{pull_in: 0.5}}\n")
    dates = [INSIDE if inside else AFTER for _, _, inside in deals_spec]
    revenue = simulate(
        scenario, make_deals(amounts, win_rates, close_dates=dates), trials=300, seed=seed
    ).trials.revenue
    assert np.all(revenue >= booked)
    assert np.all(revenue <= booked + sum(amounts) * (1 + 1e-12))


def test_each_push_multiplies_the_slip_risk():
    scenario = make_scenario("slip: {default: 0.2, push_factor: 1.5}\nstages: [{name: A, win_rate: 0.5}]\n")
    deals = make_deals([10, 10, 10, 10], stage_index=[0] * 4)
    deals.push_count[:] = [0, 1, 2, 9]
    np.testing.assert_allclose(deal_model(scenario, deals).slip, [0.2, 0.3, 0.45, 1.0])
