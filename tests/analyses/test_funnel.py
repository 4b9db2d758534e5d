"""The funnel planner: the textbook chain exactly, its probabilistic answer, the diagnoses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from forecast.analyses.funnel import activity_needed, backward_chain, diagnose, threshold_activity
from forecast.config.loading import funnel_with, parse_funnel
from forecast.engine.simulate import simulate
from forecast.errors import ScenarioError
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

TEXTBOOK = """\
quota: 1000000
deal_size: 50000
stages: [{name: proposal, rate: 0.4}, {name: opportunity, rate: 0.5}, {name: conversation, rate: 1/6}]
periods: 4
weeks: 12
simulation: {trials: 40000, seed: 3}
"""


def _spec(extra: str = ""):
    return parse_funnel(TEXTBOOK + extra)


def test_textbook_numbers_exactly():
    chain = backward_chain(_spec())
    rows = {row["stage"]: row for row in chain["stages"]}
    assert [row["stage"] for row in chain["stages"]] == ["wins", "proposal", "opportunity", "conversation"]
    assert [rows[s]["total"] for s in rows] == [20, 50, 100, 600]
    assert [rows[s]["per_period"] for s in rows] == [5, 12.5, 25, 150]
    assert rows["conversation"]["per_week"] == 12.5
    assert chain["selling_weeks"] == 48


def test_booked_and_open_pipeline_reduce_the_chain():
    spec = _spec("booked: 200000\nopen: {proposal: 5, opportunity: 10}\n")
    chain = backward_chain(spec)
    assert chain["wins_from_open_pipeline"] == pytest.approx(5 * 0.4 + 10 * 0.2)
    assert chain["stages"][0]["total"] == pytest.approx(16 - 4)


def test_without_variance_every_level_is_the_deterministic_answer():
    spec = _spec("variance: {activity: fixed, conversion: expected}\nopen: {proposal: 3}\n")
    deterministic = backward_chain(spec)["stages"][-1]["per_week"]
    for row in activity_needed(spec):
        assert row["per_week"] == pytest.approx(deterministic, rel=1e-12)


@pytest.mark.parametrize(
    "variance",
    [
        "{activity: poisson, conversion: binomial}",
        "{activity: fixed, conversion: binomial}",
        "{activity: poisson, conversion: expected}",
    ],
)
def test_with_variance_the_median_is_near_the_textbook_and_90_percent_is_higher(variance):
    """At the textbook's 12.5 a week the chance is near even (Poisson/binomial medians sit at
    their means to within a few percent), and 80 and 90 % need strictly more activity."""
    spec = _spec(f"variance: {variance}\n")
    thresholds = threshold_activity(spec)
    at_textbook = np.mean(thresholds <= 12.5)
    assert 0.45 < at_textbook < 0.6
    rows = {row["probability"]: row["per_week"] for row in activity_needed(spec)}
    assert rows[0.5] < rows[0.8] < rows[0.9]
    assert np.mean(thresholds <= rows[0.9]) >= 0.9


def test_poisson_binomial_thresholds_match_the_exact_distribution():
    """Wins ~ Poisson(a x 48 x 1/30): P(hit | a) = P(Poisson >= 20), exactly computable."""
    spec = _spec()
    thresholds = threshold_activity(spec, trials=100_000, seed=8)
    for weekly in (10.0, 12.5, 15.0):
        exact = stats.poisson.sf(19, weekly * 48 / 30)
        simulated = np.mean(thresholds <= weekly)
        assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / thresholds.size)


def test_fixed_binomial_thresholds_match_the_exact_distribution():
    spec = _spec("variance: {activity: fixed, conversion: binomial}\n")
    thresholds = threshold_activity(spec, trials=100_000, seed=9)
    for conversations in (480, 600, 700):  # a whole number of conversations over 48 weeks
        exact = stats.binom.sf(19, conversations, 1 / 30)
        simulated = np.mean(thresholds <= conversations / 48)
        assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / thresholds.size)


def test_deal_size_spread_raises_the_activity_for_high_confidence():
    plain = {row["probability"]: row["per_week"] for row in activity_needed(_spec())}
    spread = {
        row["probability"]: row["per_week"] for row in activity_needed(_spec("deal_size_spread: 0.8\n"))
    }
    assert spread[0.9] > plain[0.9]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "stages: [{name: a, rate: 1.5}]\n",
            "stages[0].rate (line 7): Input should be less than or equal to 1",
        ),
        ("stages: [{name: a, rate: 0}]\n", "stages[0].rate (line 7): Input should be greater than 0"),
        ("stages: [{name: a, rate: 1/0}]\n", "'1/0' is not a rate"),
        ("periods: 4\nweeks: 14\n", "14 selling weeks do not fit in a period of 13.0 weeks"),
        ("open: {demo: 3}\n", "open: unknown stage 'demo'"),
    ],
)
def test_bad_rates_and_weeks_are_rejected(extra, message):
    head = "quota: 1000000\ndeal_size: 50000\nperiods: 4\nweeks: 12\n\n\n"
    stages = "" if extra.startswith("stages") else "stages: [{name: proposal, rate: 0.4}]\n"
    with pytest.raises(ScenarioError) as error:
        parse_funnel(head + stages + extra)
    assert any(message in line for line in error.value.problems), error.value.problems


def test_options_override_a_file_and_are_checked():
    spec = funnel_with(_spec(), {"quota": 2_000_000})
    assert backward_chain(spec)["stages"][0]["total"] == 40
    with pytest.raises(ScenarioError, match="funnel options: deal_size: Input should be greater than 0"):
        funnel_with(_spec(), {"deal_size": 0})


SCENARIO = (
    "stages: [{name: Open, win_rate: 0.5, slip: 0.5}]\n"
    "slip: {pull_in: 0.0}\n"
    "targets: [{name: quota, metric: revenue, at_least: QUOTA}]\n"
    "new_pipeline:\n"
    "  conversations_per_week: 10\n"
    "  stages: [{name: proposal, rate: 0.5}, {name: conversation, rate: 0.2}]\n"
    "  lag_weeks: {distribution: fixed, mean: 4}\n"
    "  deal_size: {mean: 100}\n"
)


def _diagnosis(quota: float):
    deals = make_deals([1000, 800, 600, 400], close_dates=[INSIDE, INSIDE, AFTER, AFTER], stage_index=[0] * 4)
    scenario = make_scenario(SCENARIO.replace("QUOTA", str(quota)))
    return diagnose(simulate(scenario, deals, trials=20_000, seed=2))


def test_diagnosis_quota_covered():
    assert _diagnosis(100)["status"] == "covered"


def test_a_covered_quota_claims_no_more_than_expected_revenue():
    """Expected revenue above the quota says nothing of P(hit): the status was "on_track" at 55 %."""
    diagnosis = _diagnosis(1300)
    assert diagnosis["gap"] < 0 and 0.1 < diagnosis["probability"] < 0.8
    assert diagnosis["status"] == "covered"


def test_diagnosis_slip_risk_names_the_deals_to_accelerate():
    diagnosis = _diagnosis(1800)
    # expected: open 0.5 x 0.5 x (1000 + 800) = 450; new pipeline: 10 a week x 9 of the 13.1 weeks
    # in which a 4-week lag still fits x 0.1 x 100 = 900
    assert diagnosis["expected_revenue"] == pytest.approx(1350, rel=0.01)
    assert diagnosis["status"] == "slip_risk"
    accelerate = diagnosis["accelerate"]
    assert accelerate["deals"] == ["D2", "D0"]  # most to gain: 0.5 x 600 (never pulled in), 0.25 x 1000
    assert accelerate["expected_gain"] >= diagnosis["gap"] * (1 - 1e-9)
    assert accelerate["probability_after"] > diagnosis["probability"]


def test_diagnosis_missing_pipeline_turns_into_weekly_activity():
    diagnosis = _diagnosis(3000)
    assert diagnosis["status"] == "not_enough_pipeline"
    assert diagnosis["acceleration_available"] == pytest.approx(250 + 200 + 300 + 200)
    missing = diagnosis["pipeline_gap"]
    activity = diagnosis["new_activity"]
    # each extra weekly conversation closes 9 weeks x 0.1 x 100 = 90 in the period (lag 4 weeks fits 9 of 13)
    assert activity["extra_conversations_per_week"] == pytest.approx(missing / 90, rel=1e-9)
    assert activity["extra_per_week"]["proposal"] == pytest.approx(
        activity["extra_conversations_per_week"] * 0.2
    )


def test_poisson_expected_thresholds_match_the_exact_distribution():
    """Conversations ~ Poisson(48 a), each worth 1/30 of a win: the quota needs 600 of them."""
    spec = _spec("variance: {activity: poisson, conversion: expected}\n")
    thresholds = threshold_activity(spec, trials=100_000, seed=10)
    for weekly in (12.0, 12.5, 13.0):
        exact = stats.poisson.sf(599, weekly * 48)
        simulated = np.mean(thresholds <= weekly)
        assert abs(simulated - exact) < 4 * math.sqrt(exact * (1 - exact) / thresholds.size)


def test_fractional_open_deals_need_expected_conversion():
    with pytest.raises(ScenarioError, match="fractional count"):
        _spec("open: {proposal: 2.5}\n")
    assert _spec("open: {proposal: 2.5}\nvariance: {conversion: expected}\n").open == {"proposal": 2.5}
