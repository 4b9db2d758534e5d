"""Win by deal age x stage: exposures counted exactly, shrinkage as the Beta prior says, rates per deal."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.config.scenario import WinByAge
from forecast.engine.model import age_bucket, deal_model, rates_for
from forecast.history.deal_age import exposures, fit_win_by_age, win_by_age
from tests.builders import make_deals, make_scenario

DAY = np.datetime64


def test_exposures_are_the_deals_open_at_each_start():
    created = np.array(["2020-01-10", "2020-02-20", "2020-05-01", "NaT"], dtype="datetime64[D]")
    closed = np.array(["2020-04-15", "2020-03-31", "NaT", "2020-04-02"], dtype="datetime64[D]")
    won = np.array([True, False, False, True])
    stage = np.array(["Early", "Late", "Early", "Late"], dtype=object)
    periods = [(DAY("2020-04-01"), DAY("2020-06-30")), (DAY("2020-07-01"), DAY("2020-09-30"))]
    seen = []
    exposure = exposures(created, closed, won, periods, lambda day: seen.append(day) or stage)
    # 2020-04-01: deal 0 (82 days, won 04-15); deal 1 closed 03-31; deal 2 not created; deal 3 undated.
    # 2020-07-01: deal 2 (61 days, open).
    assert exposure.age.tolist() == [82, 61]
    assert exposure.stage.tolist() == ["Early", "Early"]
    assert exposure.won.tolist() == [True, False]
    assert seen == [DAY("2020-03-31"), DAY("2020-06-30")]  # stages as each period begins
    assert exposure.periods == 2


def test_age_buckets_have_inclusive_upper_edges():
    assert age_bucket(np.array([0, 30, 31, 60, 61, 500]), [30, 60]).tolist() == [0, 0, 1, 1, 2, 2]


def test_cells_shrink_toward_their_age_bucket_by_the_prior():
    # bucket <= 30: 20 deals, 10 won; bucket > 30: 30 deals, 6 won; stage Late has 4 of them, 3 won, young
    age = np.array([10] * 20 + [40] * 30)
    won = np.array([True] * 10 + [False] * 10 + [True] * 6 + [False] * 24)
    stage = np.array(["Late"] * 3 + ["Early"] * 16 + ["Late"] + ["Early"] * 30, dtype=object)
    fit = fit_win_by_age(exposure=_exposure(age, stage, won), edges=[30], prior_strength=8.0)
    young, old = fit["by_age"]
    assert young["win_rate"] == pytest.approx(11 / 22) and old["win_rate"] == pytest.approx(7 / 32)
    late_young = fit["stages"]["Late"][0]
    assert (late_young["wins"], late_young["deals"]) == (3, 4)
    assert late_young["win_rate"] == pytest.approx((3 + 8 * 11 / 22) / (4 + 8))
    assert fit["stages"]["Late"][1]["win_rate"] == pytest.approx(7 / 32)  # no deals: the bucket's rate
    flat = fit_win_by_age(_exposure(age, stage, won), edges=[], prior_strength=8.0)
    assert flat["by_age"][0]["win_rate"] == pytest.approx(17 / 52)  # one bucket: the overall rate
    table = win_by_age(fit)
    assert table.rates["default"] == [round(11 / 22, 6), round(7 / 32, 6)]
    assert set(win_by_age(fit, by_stage=False).rates) == {"default"}


def test_a_thin_age_bucket_falls_back_to_the_overall_rate():
    won = np.array([True] * 15 + [False] * 15 + [True] * 3)
    exposure = _exposure(np.array([10] * 30 + [90] * 3), np.array([""] * 33, dtype=object), won)
    fit = fit_win_by_age(exposure, [30], 20.0)
    assert (
        fit["by_age"][1]["win_rate"] == fit["overall"]["win_rate"]
        and "fewer than" in fit["by_age"][1]["note"]
    )
    assert fit["stages"] == {}


def _exposure(age, stage, won):
    from forecast.history.deal_age import Exposures

    return Exposures(age=age, stage=stage, won=won, periods=1)


def test_rates_follow_stage_rows_else_default():
    table = WinByAge(buckets_days=[30, 90], rates={"default": [0.3, 0.2, 0.1], "Proposal": [0.8, 0.6, 0.05]})
    rates = rates_for(
        table, np.array([5, 30, 31, 200, 5]), np.array(["proposal", "Proposal", "", "PROPOSAL", "X"])
    )
    assert rates.tolist() == [0.8, 0.8, 0.2, 0.05, 0.3]


def test_run_uses_the_rate_for_each_deals_stage_and_age_at_as_of():
    scenario = make_scenario(
        "as_of: 2026-07-11\nstages: [{name: Qualified, win_rate: 0.2}, {name: Proposal, win_rate: 0.5}]\n"
        "win_by_age:\n  buckets_days: [30, 90]\n"
        "  rates: {default: [0.3, 0.2, 0.1], proposal: [0.8, 0.6, 0.05]}\n"
    )
    deals = make_deals([1000] * 6, probabilities=[np.nan] * 5 + [0.9], stage_index=[1, 1, 0, 0, 1, 1])
    deals.created = np.array(["2026-06-11", "2026-06-10", "2026-04-12", "NaT", "2026-07-20", "2026-01-01"],
                             dtype="datetime64[D]")  # fmt: skip
    # ages on 2026-07-11: 30, 31, 90 days; no created date; created after as_of (age 0); own probability
    left = 82 / 92  # of 2026-Q3's 92 days, 82 are left on 2026-07-11: the quarter's rate at constant hazard
    aged = [1 - (1 - rate) ** left for rate in (0.8, 0.6, 0.2)]
    model = deal_model(scenario, deals)
    np.testing.assert_allclose(model.win_rate, [*aged, 0.2, 1 - 0.2**left, 0.9], rtol=1e-12)
    without = make_scenario("stages: [{name: Qualified, win_rate: 0.2}, {name: Proposal, win_rate: 0.5}]\n")
    assert deal_model(without, deals).win_rate.tolist() == [0.5, 0.5, 0.2, 0.2, 0.5, 0.9]


def test_age_rated_deals_land_when_won_and_others_keep_their_slip():
    """A win_by_age rate is a win inside the period: no slip on top. It rates the deals expected in the
    period; one dated after it is the CRM's word that it will not close now: stage rate and pull-in."""
    scenario = make_scenario(
        "stages: [{name: Proposal, win_rate: 0.5}]\nslip: {default: 0.3, pull_in: 0.1}\n"
        "win_by_age: {buckets_days: [60], rates: {default: [0.4, 0.1]}}\n"
    )
    deals = make_deals(
        [1000] * 3, close_dates=["2026-08-01", "2026-12-01", "2026-08-01"], stage_index=[0] * 3
    )
    deals.created = np.array(["2026-06-01", "2026-06-01", "NaT"], dtype="datetime64[D]")
    model = deal_model(scenario, deals)  # 2026-Q3 from its start: the quarter's rates as they are
    # dated inside: its age's rate, no slip; dated after: its stage's rate and pull-in; no age: its stage's
    assert model.win_rate.tolist() == [0.4, 0.5, 0.5]
    assert model.land_rate.tolist() == [1.0, 0.1, 0.7]
    assert model.slip.tolist() == [0.0, 0.3, 0.3]


@pytest.mark.parametrize(
    ("period", "share"),
    [
        ("period: 2026-Q3\n", 1.0),
        ("period: 2026-Q3\nas_of: 2026-08-16\n", 46 / 92),
        ("period: {start: 2026-07-01, end: 2026-07-31}\n", 31 / 91.31),
        ("period: {start: 2026-01-01, end: 2026-12-31}\n", 365 / 91.31),
    ],
    ids=["quarter", "mid-quarter", "month", "year"],
)
def test_rates_scale_to_the_time_left_at_constant_hazard(period, share):
    from forecast.config.loading import parse_scenario

    scenario = parse_scenario(
        period + "pipeline: {path: unused.csv}\nstages: [{name: Proposal, win_rate: 0.5}]\n"
        "win_by_age: {buckets_days: [60], rates: {default: [0.4, 0.1]}}\n"
    )
    deals = make_deals([1000], close_dates=["2026-07-15"], stage_index=[0])
    deals.created = np.array([np.datetime64(scenario.snapshot_date, "D") - 10])  # 10 days old on as_of
    assert deal_model(scenario, deals).win_rate[0] == pytest.approx(1 - 0.6**share, rel=1e-12)
