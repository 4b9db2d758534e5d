"""Win by deal age x stage: exposures and lifetimes counted exactly, the survival curve as hand-computed,
its monotone tail, shrinkage as the Beta priors say, recency weights, rates per deal."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.config.scenario import WinByAge
from forecast.engine.model import age_bucket, deal_model, rates_for
from forecast.history.deal_age import (
    CURVE_STRENGTHS,
    Exposures,
    curve_strength,
    exposures,
    fit_win_by_age,
    win_by_age,
)
from forecast.history.survival import BIN_DAYS, CYCLE_SHARE, LOST, OPEN, WON, Hazards, Lifetimes, fit_hazards
from tests import naive
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
    assert exposure.days_before.tolist() == [92, 0]  # from each period's end to the last one's
    # days open within 2020-04-01..09-30: deal 0 from age 82 to its win at 96; deal 1 closed before;
    # deal 2 from its creation to the end, still open (censored at age 152)
    lives = exposure.lifetimes
    assert (lives.first_age.tolist(), lives.last_age.tolist()) == ([82, 0], [96, 152])
    assert lives.outcome.tolist() == [WON, OPEN] and lives.days_before.tolist() == [168, 0]


def test_age_buckets_have_inclusive_upper_edges():
    assert age_bucket(np.array([0, 30, 31, 60, 61, 500]), [30, 60]).tolist() == [0, 0, 1, 1, 2, 2]


# Ten deals created 2020-01-01, watched to 2020-01-14 (ages 0-13): two won at age 3, one lost at 5,
# one won at 10, six still open (one of them wins on 02-01, after the window: unknown, so open).
CREATED = np.full(10, DAY("2020-01-01"))
CLOSED = np.array(["2020-01-04", "2020-01-04", "2020-01-06", "2020-01-11", *["NaT"] * 5, "2020-02-01"],
                  dtype="datetime64[D]")  # fmt: skip
WON_DEALS = np.array([True, True, False, True, False, False, False, False, False, True])
WINDOW = (DAY("2020-01-01"), DAY("2020-01-14"))
# age bin 0 (0-6 days): 10 deals, deal-days 4 + 4 + 6 + 7 x 7 = 63, 2 wins, 1 loss;
# bin 1 (7-13 days): 7 deals (fewer than 10: the tail), deal-days 4 + 6 x 7 = 46, 1 win
BIN0, BIN1 = (2 / 63, 1 / 63), (1 / 46, 0.0)


def test_hazards_count_every_days_open_and_pool_the_thin_ages_into_the_tail():
    lives = Lifetimes.of(CREATED, CLOSED, WON_DEALS, *WINDOW)
    assert lives.outcome.tolist() == [WON, WON, LOST, WON, *[OPEN] * 6]
    fit = fit_hazards(lives, prior_strength=0.0)
    assert fit.deals.tolist() == [10, 7] and fit.deal_days.tolist() == [63, 46]
    assert fit.wins.tolist() == [2, 1] and fit.losses.tolist() == [1, 0]
    assert fit.won.tolist() == pytest.approx([BIN0[0], BIN1[0]], abs=1e-15)
    assert fit.lost.tolist() == pytest.approx([BIN0[1], BIN1[1]], abs=1e-15)
    assert fit.tail_from == BIN_DAYS
    # with a prior worth 2 deals a bin (14 deal-days): each bin toward its neighbours' pooled chance,
    # which here is the chance over all ages, 3 wins / 109 deal-days (1 loss / 109)
    shrunk = fit_hazards(lives, prior_strength=2.0)
    assert shrunk.won.tolist() == pytest.approx([(2 + 14 * 3 / 109) / 77, (1 + 14 * 3 / 109) / 60], rel=1e-12)
    assert shrunk.lost.tolist() == pytest.approx([(1 + 14 / 109) / 77, (14 / 109) / 60], rel=1e-12)


def _table(won, lost) -> Hazards:
    zeros = np.zeros(len(won))
    return Hazards(np.array(won), np.array(lost), zeros, zeros, zeros, zeros.astype(np.int64), np.ones(30))


@pytest.mark.parametrize("horizon", [1, 2, 3.5, 4, 9, 20.25])
@pytest.mark.parametrize("age", [0, 5, 7, 40])
def test_win_within_is_the_cumulative_incidence_of_the_daily_chances(age, horizon):
    table = _table([0.1, 0.05], [0.02, 0.01])
    expected = naive.win_within(
        lambda a: 0.1 if a < 7 else 0.05, lambda a: 0.02 if a < 7 else 0.01, age, horizon
    )
    assert table.win_within(np.array([age]), horizon)[0] == pytest.approx(expected, rel=1e-12)


def test_win_within_by_hand():
    table = _table([0.1, 0.05], [0.02, 0.01])
    open_after = 1 - 0.12  # a day at ages 0-6 neither won nor lost
    # from age 5 over 4 days: ages 5 and 6 in the first bin, 7 and 8 in the tail
    by_hand = 0.1 + open_after * 0.1 + open_after**2 * 0.05 + open_after**2 * 0.94 * 0.05
    assert table.win_within(np.array([5]), 4)[0] == pytest.approx(by_hand, rel=1e-14)
    half = 0.1 + open_after * 0.1 + open_after**2 * 0.05 + 0.5 * open_after**2 * 0.94 * 0.05
    assert table.win_within(np.array([5]), 3.5)[0] == pytest.approx(half, rel=1e-14)
    # any age in the tail: the tail's constant chances, 0.05 / 0.06 of those that close within 10 days
    tail = 0.05 / 0.06 * (1 - 0.94**10)
    assert table.win_within(np.array([7, 400, 10_000]), 10) == pytest.approx([tail] * 3, rel=1e-13)


def test_the_win_chance_never_rises_past_the_usual_cycle():
    # 200 deals from age 0, watched to age 34 (bins 0-4): wins 60, 5, 1, 3, 0 by bin; no losses.
    # 90 % of the 69 wins came by bin 1: from there on the chance may not rise again
    wins_by_bin = [60, 5, 1, 3, 0]
    last_age = np.concatenate([np.full(n, 7 * b + 3) for b, n in enumerate(wins_by_bin)] + [np.full(131, 34)])
    outcome = np.array([WON] * 69 + [OPEN] * 131, dtype=np.int8)
    zeros = np.zeros(200, np.int64)
    fit = fit_hazards(Lifetimes(zeros, last_age, outcome, 34 - last_age), prior_strength=0.0)
    assert fit.deals.tolist() == [200, 140, 135, 134, 131, 0]  # all five bins seen; the tail beyond empty
    raw = fit.wins[:5] / fit.deal_days[:5]
    assert raw[3] > raw[2]  # the data rise again past the cycle ...
    assert np.all(np.diff(fit.won) <= 0)  # ... the fit does not: bins 2 and 3 pooled, by deal-days
    pooled = (fit.wins[2] + fit.wins[3]) / (fit.deal_days[2] + fit.deal_days[3])
    assert fit.won.tolist() == pytest.approx([raw[0], raw[1], pooled, pooled, 0.0, 0.0], rel=1e-12)
    # before the cycle is over a rising chance is kept: 5 wins in bin 0, 60 in bin 1
    early = np.concatenate([np.full(5, 3), np.full(60, 10), np.full(135, 34)])
    outcome = np.array([WON] * 65 + [OPEN] * 135, dtype=np.int8)
    rising = fit_hazards(Lifetimes(zeros, early, outcome, 34 - early), prior_strength=0.0)
    assert rising.won[1] > rising.won[0]


def test_a_deal_older_than_any_seen_gets_the_tail_not_the_overall_rate():
    """The old fit gave a bucket with fewer than 10 deals the overall rate (Maven: deals open more
    than 60 days got 0.70 where such deals won 0.39, 0.00 and 0.00)."""
    periods = [(DAY("2020-01-01"), DAY("2020-01-07")), (DAY("2020-01-08"), DAY("2020-01-14"))]
    exposure = exposures(CREATED, CLOSED, WON_DEALS, periods, lambda day: np.full(10, "", dtype=object))
    # at 01-08 seven deals are open at age 7; one (won 01-11) is won within the week
    assert (exposure.age.tolist(), int(exposure.won.sum())) == ([7] * 7, 1)
    fit = fit_win_by_age(exposure, [30], 0.0, horizon_days=7)
    old = fit["by_age"][1]
    tail = 1 - (1 - BIN1[0]) ** 7  # no losses in the tail: the win chance over 7 days at its rate
    assert old["deals"] == 0 and old["curve_rate"] == pytest.approx(tail, rel=1e-12)
    assert old["win_rate"] == pytest.approx(tail, rel=1e-12)  # a bucket never seen: the curve
    assert fit["overall"]["win_rate"] == pytest.approx(2 / 9) and abs(old["win_rate"] - 2 / 9) > 0.05
    assert win_by_age(fit).period_days == 7  # the table's rates are for the horizon fitted


def test_buckets_shrink_toward_the_curve_and_cells_toward_their_bucket():
    # bucket <= 30: 20 deals, 10 won; bucket > 30: 30 deals, 6 won; stage Late has 4 of them, 3 won, young
    age = np.array([10] * 20 + [40] * 30)
    won = np.array([True] * 10 + [False] * 10 + [True] * 6 + [False] * 24)
    stage = np.array(["Late"] * 3 + ["Early"] * 16 + ["Late"] + ["Early"] * 30, dtype=object)
    lives = Lifetimes.of(CREATED, CLOSED, WON_DEALS, *WINDOW)
    exposure = Exposures(age, stage, won, periods=1, days_before=np.zeros(50, np.int64), lifetimes=lives)
    fit = fit_win_by_age(exposure, edges=[30], prior_strength=8.0)
    strength = fit["curve_strength"]
    for bucket, (wins, deals) in zip(fit["by_age"], [(10, 20), (6, 30)], strict=True):
        assert (bucket["wins"], bucket["deals"]) == (wins, deals)
        expected = (wins + strength * bucket["curve_rate"]) / (deals + strength)
        assert bucket["win_rate"] == pytest.approx(expected, rel=1e-12)
    young = fit["by_age"][0]["win_rate"]
    late_young = fit["stages"]["Late"][0]
    assert (late_young["wins"], late_young["deals"]) == (3, 4)
    assert late_young["win_rate"] == pytest.approx((3 + 8 * young) / (4 + 8))
    assert fit["stages"]["Late"][1]["win_rate"] == pytest.approx(
        fit["by_age"][1]["win_rate"]
    )  # none: the bucket
    table = win_by_age(fit)
    assert table.rates["default"] == [round(cell["win_rate"], 6) for cell in fit["by_age"]]
    assert set(win_by_age(fit, by_stage=False).rates) == {"default"}


def test_the_curve_counts_for_as_many_deals_as_the_counts_bear_out():
    curve = np.array([0.5, 0.2])
    agreeing = curve_strength(np.array([500.0, 200.0]), np.array([1000.0, 1000.0]), curve)
    departing = curve_strength(np.array([0.0, 1000.0]), np.array([1000.0, 1000.0]), curve)
    assert (agreeing, departing) == (CURVE_STRENGTHS[-1], CURVE_STRENGTHS[0])
    assert (
        curve_strength(np.zeros(2), np.zeros(2), curve) == CURVE_STRENGTHS[0]
    )  # nothing seen: nothing learnt


def _drifting_history():
    """Two years of 40 deals a day, each closed 20 days after creation, won with a chance that rises
    from 0.2 to 0.5 over the two years (deterministically: the first round(40 p) of each day's)."""
    days = np.arange(730)
    rate = 0.2 + 0.3 * days / 729
    created = DAY("2020-01-01") + np.repeat(days, 40)
    won = np.tile(np.arange(40), 730) < np.repeat(np.round(40 * rate), 40)
    return created, created + 20, won, rate


def test_recent_outcomes_weigh_more_so_the_fit_tracks_a_drifting_rate():
    from forecast.config.periods import day_bounds, quarters_between

    created, closed, won, rate = _drifting_history()
    quarters = day_bounds(quarters_between(dt.date(2020, 1, 1), dt.date(2021, 12, 31)))
    exposure = exposures(created, closed, won, quarters, lambda day: np.full(created.size, "", dtype=object))
    latest = rate[-20:].mean()  # what the deals open at the next quarter's start face
    flat = fit_win_by_age(exposure, [], 20.0)["by_age"][0]
    recent = fit_win_by_age(exposure, [], 20.0, half_life_days=60)["by_age"][0]
    for fit in ("win_rate", "curve_rate"):  # the counts at quarter starts and the survival curve
        assert abs(flat[fit] - latest) > 0.14  # the flat fit lags by half the drift ...
        assert abs(recent[fit] - latest) < abs(flat[fit] - latest) / 2.5  # ... the weighted one tracks it
    assert recent["weighted_deals"] < recent["deals"] and "weighted_deals" not in flat


@st.composite
def small_histories(draw):
    n = draw(st.integers(1, 25))
    created = draw(st.lists(st.integers(0, 120), min_size=n, max_size=n))
    length = draw(st.lists(st.integers(0, 150), min_size=n, max_size=n))
    state = draw(st.lists(st.sampled_from(["won", "lost", "open"]), min_size=n, max_size=n))
    start = DAY("2021-01-01")
    created = start + np.array(created)
    closed = np.array([c + d if s != "open" else DAY("NaT") for c, d, s in zip(created, length, state,
                                                                                strict=True)],
                      dtype="datetime64[D]")  # fmt: skip
    won = np.array([s == "won" for s in state])
    stage = np.array(draw(st.lists(st.sampled_from(["", "A", "B"]), min_size=n, max_size=n)), dtype=object)
    first, count, width = draw(st.integers(0, 60)), draw(st.integers(1, 4)), draw(st.integers(5, 40))
    periods = [(start + first + k * width, start + first + (k + 1) * width - 1) for k in range(count)]
    settings_ = {
        "edges": sorted(draw(st.sets(st.sampled_from([3, 10, 20, 40, 80]), max_size=4))),
        "prior_strength": draw(st.sampled_from([0.0, 1.0, 20.0])),
        "half_life_days": draw(st.sampled_from([None, 1.0, 30.0, 365.0])),
        "horizon_days": draw(st.sampled_from([1.0, 13.5, 91.31])),
    }
    return created, closed, won, stage, periods, settings_


@settings(max_examples=150, deadline=None)
@given(small_histories())
def test_every_rate_is_a_probability_and_grows_with_the_horizon(history):
    created, closed, won, stage, periods, options = history
    exposure = exposures(created, closed, won, periods, lambda day: stage)
    fit = fit_win_by_age(exposure, options["edges"], options["prior_strength"],
                         half_life_days=options["half_life_days"],
                         horizon_days=options["horizon_days"])  # fmt: skip
    cells = [*fit["by_age"], *(cell for row in fit["stages"].values() for cell in row)]
    for cell in cells:
        assert 0.0 <= cell["win_rate"] <= 1.0 and 0.0 <= cell.get("curve_rate", 0.0) <= 1.0
        low, high = cell["interval_90"]
        assert 0.0 <= low <= high <= 1.0
    hazards = fit_hazards(exposure.lifetimes, options["prior_strength"], options["half_life_days"])
    if hazards is None:
        return
    assert np.all(hazards.won >= 0) and np.all(hazards.lost >= 0) and np.all(hazards.won + hazards.lost <= 1)
    cycle = int(np.searchsorted(np.cumsum(hazards.wins), CYCLE_SHARE * hazards.wins.sum()))
    assert np.all(np.diff(hazards.won[cycle:]) <= 1e-15)  # past the usual cycle: never rising
    ages = np.arange(0, hazards.tail_from + 30, 3)
    chances = np.array([hazards.win_within(ages, h) for h in (0.0, 1.0, 2.5, 7.0, 30.0, 91.31, 400.0)])
    assert (
        np.all(chances >= 0) and np.all(chances <= 1 + 1e-12) and np.all(np.diff(chances, axis=0) >= -1e-15)
    )
    _counts_match_a_day_by_day_count(created, closed, won, periods, options["half_life_days"], hazards)


def _counts_match_a_day_by_day_count(created, closed, won, periods, half_life_days, hazards):
    deals = [
        (c.item(), None if np.isnat(d) else d.item(), w) for c, d, w in zip(created, closed, won, strict=True)
    ]
    counts = naive.lifetime_counts(
        deals, periods[0][0].item(), periods[-1][1].item(), BIN_DAYS, half_life_days
    )
    tail = hazards.won.size - 1
    for b in range(tail):
        deals_open, deal_days, wins, losses = counts.get(b, [0, 0.0, 0.0, 0.0])
        assert hazards.deals[b] == deals_open
        assert [hazards.deal_days[b], hazards.wins[b], hazards.losses[b]] == pytest.approx(
            [deal_days, wins, losses]
        )
    later = [cell for b, cell in counts.items() if b >= tail]
    assert hazards.deal_days[tail] == pytest.approx(sum(cell[1] for cell in later))
    assert hazards.wins[tail] == pytest.approx(sum(cell[2] for cell in later))


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
