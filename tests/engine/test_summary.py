"""Summary numbers: target checks, probabilities with errors, percentiles, coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses.drivers import drivers
from forecast.engine.simulate import simulate
from forecast.engine.summary import (
    PERCENTILES,
    distribution,
    probability,
    reaches,
    rounding_slack,
    shortfall,
    summarize,
)
from tests.builders import AFTER, INSIDE, make_deals, make_scenario


def test_reaches_forgives_only_rounding():
    values = np.array([0.1 + 0.2, 0.29, 1_000_000 * (1 - 1e-12), 999_999.0])
    np.testing.assert_array_equal(reaches(values, 0.3), [True, False, True, True])
    np.testing.assert_array_equal(reaches(values, 1_000_000), [False, False, True, False])


def _quota_forecast(quota: float, amounts, win_rates, haircut: float = 0.0):
    scenario = make_scenario(
        f"amount: {{haircut: {haircut}}}\ntargets: [{{name: quota, metric: revenue, at_least: {quota!r}}}]\n"
    )
    return simulate(scenario, make_deals(amounts, win_rates), trials=200, seed=3)


@pytest.mark.parametrize(
    ("short_by", "expected"), [(999.0, (1.0, 0.0, 0.0)), (1001.0, (0.0, 1001.0, 1001.0)), (0.0, (1, 0, 0))]
)
def test_a_trillion_quota_missed_by_less_than_its_slack_is_reached_by_every_figure(short_by, expected):
    """The slack of a 1e12 quota is 1,000: P(hit) 1 came with a gap at P10 of 999."""
    (target,) = summarize(_quota_forecast(1e12, [1e12 - short_by], [1.0]))["targets"]
    assert (target["probability"], target["expected_shortfall"], target["gap_at_p10"]) == expected


@settings(max_examples=150, deadline=None)
@given(
    st.floats(0.0, 12.0),  # quota 1 to 1e12
    st.floats(-3.0, 3.0),  # how far below the quota the sure deal lands, in rounding slacks
    st.floats(0.0, 3.0),  # the uncertain deal's amount, in rounding slacks
    st.floats(0.0, 1.0),  # its win rate
    st.sampled_from([0.0, 0.1, 0.35]),  # haircut: values are not the amounts as written
)
def test_every_target_figure_follows_one_rule(exponent, below, extra, win_rate, haircut):
    """P(hit) is 1 exactly when the shortfall and the gap at P10 are 0; the gap at P10 is 0
    exactly when the P10 reaches the quota; a sure deal's P(hit | won) in drivers is P(hit)."""
    quota = 10.0**exponent
    slack = rounding_slack(quota)
    amounts = [(quota - below * slack) / (1 - haircut), extra * slack / (1 - haircut)]
    forecast = _quota_forecast(quota, amounts, [1.0, win_rate], haircut)
    (target,) = summarize(forecast)["targets"]
    p, expected_shortfall, gap = target["probability"], target["expected_shortfall"], target["gap_at_p10"]
    revenue = forecast.trials.revenue
    assert (p == 1.0) == (expected_shortfall == 0.0 and gap == 0.0)
    assert (p == 1.0) == (expected_shortfall == 0.0)
    assert (gap == 0.0) == bool(reaches(np.percentile(revenue, 10), quota))
    assert (expected_shortfall, gap) == shortfall(revenue, quota)
    assert p == np.mean(reaches(revenue, quota))
    if p < 1.0:
        assert expected_shortfall > slack
    sure = next(row for row in drivers(forecast) if row["deal_id"] == "D0")
    assert sure["p_landed"] == 1.0 and sure["p_hit_if_won"] == p


def test_probability_and_standard_error():
    hit = np.array([True] * 30 + [False] * 70)
    p, se = probability(hit)
    assert p == 0.3
    assert se == pytest.approx(math.sqrt(0.3 * 0.7 / 100))


def test_distribution_percentiles():
    values = np.arange(101, dtype=float)
    out = distribution(values)
    assert out["mean"] == 50.0
    assert [out[f"p{level}"] for level in PERCENTILES] == [float(level) for level in PERCENTILES]


def test_summarize_pipeline_numbers():
    scenario = make_scenario(
        "booked: 100\ntargets:\n  - {name: quota, metric: revenue, at_least: 500}\n"
        "  - {name: logos, metric: new_logos, at_least: 1}\n"
    )
    deals = make_deals(
        [200, 300, 1000], [0.5, 0.25, 0.9], close_dates=[INSIDE, INSIDE, AFTER], new_logo=[1, 0, 0]
    )
    summary = summarize(simulate(scenario, deals, trials=4000))
    assert summary["open_deals"] == 3
    assert summary["open_pipeline"] == 500.0  # the deal dated after the period is not in it
    assert summary["weighted_pipeline"] == pytest.approx(200 * 0.5 + 300 * 0.25)
    assert summary["coverage"] == pytest.approx(500 / 400)
    assert summary["p_all_targets"] <= min(t["probability"] for t in summary["targets"])
    assert summary["revenue"]["p5"] >= 100.0  # booked is in every trial


def test_no_targets_no_joint_probability():
    summary = summarize(simulate(make_scenario(), make_deals([10], [0.5]), trials=100))
    assert summary["targets"] == []
    assert summary["p_all_targets"] is None
    assert summary["coverage"] is None


TEAM = (
    "booked: 50\n"
    "quotas: {owner: {A: 150, B: 100, C: 10}, region: {North: 200}}\n"
    "new_pipeline:\n"
    "  conversations_per_week: 5\n"
    "  stages: [{name: proposal, rate: 0.5}]\n"
    "  lag_weeks: {distribution: fixed, mean: 1}\n"
    "  deal_size: {mean: 10}\n"
)


def _team(trials=4000, by=()):
    deals = make_deals(
        [100, 200, 50, 80],
        [0.5, 0.4, 0.9, 0.3],
        owner=["A", "A", "B", "B"],
        region=["North", "South", "North", "South"],
        forecast_category=["Closed", "Best Case", "commit", "Pipeline"],
    )
    return simulate(make_scenario("amount: {sigma: 0.4}\n" + TEAM), deals, trials=trials, by=by)


def test_team_is_the_sum_of_its_reps_trial_by_trial():
    forecast = _team()
    trials = forecast.trials
    reps = trials.breakdown["owner"]
    assert set(reps) == {"A", "B", "C"}  # C has a quota but no deals
    assert not reps["C"].any()
    np.testing.assert_allclose(sum(reps.values()) + 50 + trials.new_pipeline, trials.revenue, rtol=1e-12)
    np.testing.assert_allclose(sum(trials.breakdown["region"].values()), sum(reps.values()), rtol=1e-12)


def test_breakdown_rows_have_quota_probability_and_judgement():
    forecast = _team()
    rows = {row["name"]: row for row in summarize(forecast)["breakdown"]["owner"]}
    a = forecast.trials.breakdown["owner"]["A"]
    assert rows["A"]["quota"] == 150
    assert rows["A"]["probability"] == pytest.approx(np.mean(a >= 150 * (1 - 1e-9)))
    assert rows["C"]["probability"] == 0.0
    assert rows["A"]["judgement"]["commit"] == 100  # categories match case-insensitively
    assert rows["A"]["judgement"]["best_case"] == 300
    assert rows["A"]["judgement"]["commit_percentile"] == pytest.approx(np.mean(a <= 100))
    team = summarize(forecast)["judgement"]
    assert (team["commit"], team["best_case"]) == (50 + 100 + 50, 50 + 100 + 50 + 200)


def test_by_a_missing_column_is_an_error():
    from forecast.errors import ScenarioError

    with pytest.raises(ScenarioError, match="cannot break down by 'segment'"):
        _team(by=("segment",))


def test_by_adds_columns_without_quotas():
    rows = summarize(_team(by=("region",)))["breakdown"]
    assert [row["name"] for row in rows["region"]] == ["North", "South"]
    assert rows["region"][1]["quota"] is None and rows["region"][1]["probability"] is None


def test_summarize_never_simulates_and_keeps_the_independent_comparison(monkeypatch):
    from forecast.config.scenario import Correlation

    scenario = make_scenario("correlation: {market: 0.3, by: {owner: 0.2}}\namount: {sigma: 0.3}\n")
    deals = make_deals([100.0, 80.0, 50.0] * 20, [0.4, 0.6, 0.2] * 20, owner=["A", "B", "C"] * 20)
    forecast = simulate(scenario, deals, trials=3000, seed=5, independent=True)
    independent = simulate(
        scenario.model_copy(update={"correlation": Correlation()}), deals, trials=3000, seed=5
    )
    np.testing.assert_array_equal(forecast.independent_revenue, independent.trials.revenue)  # the same draws

    def no_simulation(*args, **kwargs):
        raise AssertionError("summarize simulated")

    monkeypatch.setattr("forecast.engine.simulate.simulate", no_simulation)
    effect = summarize(forecast)["correlation"]
    p10, p90 = np.percentile(independent.trials.revenue, [10, 90])
    assert effect["independent_p10_p90_width"] == float(p90 - p10)
    assert effect["p10_p90_width"] > effect["independent_p10_p90_width"]
    without = simulate(scenario, deals, trials=3000, seed=5)  # not asked for: not run, and said so
    assert without.independent_revenue is None
    assert summarize(without)["correlation"]["independent_p10_p90_width"] is None
    np.testing.assert_array_equal(without.trials.revenue, forecast.trials.revenue)
