"""Deals not yet created: lag distributions, activity weeks, and the new pipeline in simulate().

The new-pipeline kernels themselves are tested in test_kernels.py."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from forecast.config.scenario import ConversionStage, LagWeeks
from forecast.engine.activity import (
    activity_weeks,
    conversion_product,
    expected_new_deals,
    lag_cdf,
    stage_counts,
)
from forecast.engine.simulate import simulate
from tests.builders import make_deals, make_scenario

STAGES = [ConversionStage(name="proposal", rate=0.4), ConversionStage(name="conversation", rate=0.25)]


def test_conversion_product_and_stage_counts():
    assert conversion_product(STAGES) == pytest.approx(0.1)
    assert stage_counts(20.0, STAGES) == pytest.approx([5.0, 20.0])  # closest to the win first


@pytest.mark.parametrize(
    ("lag", "reference"),
    [
        (LagWeeks(distribution="gamma", mean=8, sd=3), stats.gamma(a=(8 / 3) ** 2, scale=9 / 8)),
        (
            LagWeeks(distribution="lognormal", mean=8, sd=3),
            stats.lognorm(s=math.sqrt(math.log1p(9 / 64)), scale=8 / math.sqrt(1 + 9 / 64)),
        ),
        (
            LagWeeks(distribution="uniform", mean=8, sd=3),
            stats.uniform(8 - 3 * math.sqrt(3), 6 * math.sqrt(3)),
        ),
    ],
)
def test_lag_distributions_have_their_mean_and_sd(lag, reference):
    assert reference.mean() == pytest.approx(lag.mean)
    assert reference.std() == pytest.approx(lag.sd)
    weeks = np.linspace(0, 30, 61)
    np.testing.assert_allclose(lag_cdf(lag, weeks), reference.cdf(weeks), atol=1e-12)


def test_fixed_lag_is_a_step():
    np.testing.assert_array_equal(lag_cdf(LagWeeks(distribution="fixed", mean=4), [3.9, 4.0, 5.0]), [0, 1, 1])


def test_activity_weeks_cover_the_days_left():
    lengths, remaining = activity_weeks(dt.date(2026, 7, 1), dt.date(2026, 9, 30))  # 92 days
    assert lengths.sum() == pytest.approx(92 / 7)
    assert lengths[-1] == pytest.approx(1 / 7)  # one day in the last slice
    assert remaining[0] == pytest.approx((92 - 3.5) / 7)
    assert remaining[-1] == pytest.approx(0.5 / 7)


NEW_PIPELINE = (
    "as_of: 2026-08-01\n"
    "new_pipeline:\n"
    "  conversations_per_week: 40\n"
    "  stages:\n"
    "    [{name: proposal, rate: 0.4}, {name: opportunity, rate: 0.5}, {name: conversation, rate: 1/6}]\n"
    "  lag_weeks: {distribution: gamma, mean: 5, sd: 2}\n"
    "  deal_size: {mean: 20000, sigma: 0.6}\n"
    "targets:\n"
    "  - {name: logos, metric: new_logos, at_least: 1}\n"
    "  - {name: deals, metric: deals, at_least: 3}\n"
    "  - {name: product X, metric: deals, where: {product: X}, at_least: 1}\n"
)


def test_new_pipeline_revenue_has_its_analytic_mean():
    """rate x weeks in range x conversion product x mean size x P(lag fits), within 4 standard errors."""
    scenario = make_scenario(NEW_PIPELINE)
    forecast = simulate(scenario, make_deals([1000], [0.0], product=["X"]), trials=200_000, seed=4)
    new = forecast.trials.new_pipeline
    lengths, remaining = activity_weeks(dt.date(2026, 8, 1), dt.date(2026, 9, 30))
    fits = np.sum(lengths * stats.gamma(a=(5 / 2) ** 2, scale=4 / 5).cdf(remaining)) / lengths.sum()
    analytic = 40 * lengths.sum() * (0.4 * 0.5 / 6) * 20000 * fits
    assert expected_new_deals(scenario) * 20000 == pytest.approx(analytic)
    assert abs(new.mean() - analytic) < 4 * new.std() / math.sqrt(new.size)
    # the new deals count for revenue, new logos and unfiltered deal counts, not for filtered ones
    np.testing.assert_array_equal(forecast.trials.revenue, new)
    deals = forecast.trials.targets["deals"]
    np.testing.assert_array_equal(forecast.trials.targets["logos"], deals)
    assert not forecast.trials.targets["product X"].any()
    expected = expected_new_deals(scenario)  # Poisson: variance = mean
    assert abs(deals.mean() - expected) < 4 * math.sqrt(expected / deals.size)


def test_too_much_new_pipeline_is_refused():
    from forecast.errors import ScenarioError

    scenario = make_scenario(
        NEW_PIPELINE.replace("conversations_per_week: 40", "conversations_per_week: 3e6")
    )
    with pytest.raises(ScenarioError, match="at most 10,000 are simulated one by one"):
        simulate(scenario, make_deals([1000], [0.0], product=["X"]), trials=10)
