"""Deal drivers: the kernel against its reference and brute-force re-simulation; the deals named."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses.drivers import MIN_STAKE, deals_that_matter, drivers
from forecast.config.loading import load_scenario
from forecast.engine.draws import deal_keys
from forecast.engine.simulate import DealDraws, simulate
from forecast.engine.summary import reaches
from forecast.errors import ScenarioError
from forecast.inputs.pipeline import load_deals
from tests import naive
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCENARIO = (
    "slip: {default: 0.3, pull_in: 0.2}\n"
    "amount: {sigma: 0.25}\n"
    "targets: [{name: quota, metric: revenue, at_least: 700}]\n"
    "simulation: {seed: 12}\n"
)
AMOUNTS = [600, 300, 250, 200, 100]
WIN_RATES = [0.3, 0.5, 0.6, 0.7, 0.9]
DATES = [INSIDE, AFTER, INSIDE, INSIDE, AFTER]


def _forecast(amounts=AMOUNTS, win_rates=WIN_RATES, trials=60_000):
    return simulate(make_scenario(SCENARIO), make_deals(amounts, win_rates, close_dates=DATES), trials=trials)


def test_kernel_matches_reference():
    forecast = _forecast(trials=400)
    rows = {row["deal_id"]: row for row in drivers(forecast)}
    draws = DealDraws.of(forecast.scenario, forecast.deals, forecast.model, forecast.seed, forecast.n_trials)
    slow = naive.deal_drivers(
        forecast.seed, deal_keys(forecast.deals.deal_id), forecast.model.win_rate, forecast.model.land_rate,
        draws.value, (draws.noise_base, draws.noise_slope), forecast.trials.revenue, 700 - 700e-9,
    )  # fmt: skip
    for d, (landed, hits, total, rescued, pivotal) in enumerate(slow):
        row = rows[f"D{d}"]
        assert row["p_landed"] == landed / 400
        assert row["stake"] == pivotal / 400
        assert row["expected_contribution"] == pytest.approx(total / 400, rel=1e-12)
        assert row["acceleration_gain"] == rescued / 400
        assert row["p_hit_if_won"] == (hits / landed if landed else None)


def _forced(forecast, deal: int, won: bool) -> float:
    """P(hit) re-simulated with one deal forced to land (or to be lost), same seed."""
    probability = np.array(WIN_RATES, dtype=float)
    probability[deal] = 1.0 if won else 0.0
    deals = make_deals(
        AMOUNTS, probability, close_dates=[INSIDE if d == deal else x for d, x in enumerate(DATES)]
    )
    if won:
        deals.slip[deal] = 0.0
    again = simulate(forecast.scenario, deals, trials=forecast.n_trials)
    return float(np.mean(reaches(again.trials.revenue, 700)))


def test_drivers_agree_with_brute_force_resimulation():
    forecast = _forecast()
    rows = drivers(forecast)
    n = forecast.n_trials
    brute = {}
    for d in range(len(AMOUNTS)):
        won, lost = _forced(forecast, d, True), _forced(forecast, d, False)
        brute[f"D{d}"] = won - lost
        row = next(r for r in rows if r["deal_id"] == f"D{d}")
        # two estimates of each probability; their difference is within 4 standard errors
        landed = row["p_landed"] * n
        se_won = math.sqrt(won * (1 - won) * (1 / n + 1 / landed))
        se_lost = math.sqrt(lost * (1 - lost) * (1 / n + 1 / (n - landed)))
        assert abs(row["p_hit_if_won"] - won) < 4 * se_won + 1e-12
        assert abs(row["p_hit_if_lost"] - lost) < 4 * se_lost + 1e-12
    by_swing = sorted(rows, key=lambda row: -row["swing"])
    assert [row["deal_id"] for row in by_swing] == sorted(brute, key=lambda deal: -brute[deal])


def test_acceleration_gain_equals_resimulating_the_deal_accelerated():
    forecast = _forecast(trials=20_000)
    base = float(np.mean(reaches(forecast.trials.revenue, 700)))
    for d in (0, 1):  # slipping inside the period, and dated after it
        deals = make_deals(
            AMOUNTS, WIN_RATES, close_dates=[INSIDE if i == d else x for i, x in enumerate(DATES)]
        )
        deals.slip[d] = 0.0
        faster = simulate(forecast.scenario, deals, trials=forecast.n_trials)
        gain = float(np.mean(reaches(faster.trials.revenue, 700))) - base
        row = next(r for r in drivers(forecast) if r["deal_id"] == f"D{d}")
        assert row["acceleration_gain"] == pytest.approx(gain, abs=1e-12)  # same trials: exact


def test_certain_deals_have_no_swing_or_gain():
    forecast = simulate(
        make_scenario("targets: [{name: quota, metric: revenue, at_least: 100}]\n"),
        make_deals([100, 50], [1.0, 0.0]),
        trials=500,
    )
    rows = {row["deal_id"]: row for row in drivers(forecast)}
    assert (
        rows["D0"]["p_landed"] == 1.0 and rows["D0"]["p_hit_if_lost"] is None and rows["D0"]["swing"] is None
    )
    assert rows["D1"]["p_hit_if_won"] is None and rows["D1"]["acceleration_gain"] is None


def test_drivers_need_a_quota():
    with pytest.raises(ScenarioError, match="drivers need a revenue target"):
        drivers(simulate(make_scenario(), make_deals([1], [0.5]), trials=10))


def test_drivers_do_not_depend_on_the_thread_count():
    """Trials are split into parts by their number alone, so every thread count adds the same sums."""
    import numba

    forecast = _forecast(trials=70_000)  # 16 parts of 4,375 trials
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = drivers(forecast)
    finally:
        numba.set_num_threads(threads)
    assert drivers(forecast) == single


def test_stated_standard_errors_match_the_spread_over_seeds():
    """The stated standard errors of swing and stake against their spread over independent runs."""
    runs = []
    for seed in range(40):
        scenario = make_scenario(SCENARIO.replace("seed: 12", f"seed: {seed}"))
        forecast = simulate(scenario, make_deals(AMOUNTS, WIN_RATES, close_dates=DATES), trials=3000)
        runs.append({row["deal_id"]: row for row in drivers(forecast)})
    for deal in ("D0", "D2", "D4"):
        for key in ("swing", "stake"):
            values = np.array([run[deal][key] for run in runs])
            stated = np.mean([run[deal][f"{key}_stderr"] for run in runs])
            # the sample sd of 40 runs is within about +-25 % of the truth (chi distribution, 2 sd)
            assert 0.7 * stated < values.std(ddof=1) < 1.3 * stated, (deal, key, values.std(ddof=1), stated)


@pytest.mark.parametrize("correlation", ["", "correlation: {market: 0.3, by: {owner: 0.2}}\n"])
def test_stake_equals_resimulating_the_deal_lost(correlation):
    """P(hit) minus P(hit) with the deal lost, on the same random numbers: exactly the same trials.

    Correlated deals keep their draws and the market's, so the stake is the deal's own effect.
    """
    scenario = make_scenario(SCENARIO + correlation)
    owner = ["a", "a", "b", "b", "a"]
    forecast = simulate(
        scenario, make_deals(AMOUNTS, WIN_RATES, close_dates=DATES, owner=owner), trials=20_000
    )
    base = float(np.mean(reaches(forecast.trials.revenue, 700)))
    rows = {row["deal_id"]: row for row in drivers(forecast)}
    for d in range(len(AMOUNTS)):
        lost = np.array(WIN_RATES)
        lost[d] = 0.0
        again = simulate(scenario, make_deals(AMOUNTS, lost, close_dates=DATES, owner=owner), trials=20_000)
        assert rows[f"D{d}"]["stake"] == pytest.approx(
            base - float(np.mean(reaches(again.trials.revenue, 700))), abs=1e-12
        )


def test_a_big_deal_dated_next_year_does_not_top_the_list():
    """The issue's case: a large deal with under 1 % to land this period swings P(hit) most, but
    little rests on it; the deals that can land now come first and it is not named."""
    scenario = make_scenario(
        "slip: {default: 0.2, pull_in: 0.008}\ntargets: [{name: quota, metric: revenue, at_least: 500}]\n"
    )
    amounts = [900, 200, 150, 150, 120, 100]
    deals = make_deals(amounts, [0.9, 0.7, 0.6, 0.6, 0.5, 0.5], close_dates=[AFTER] + [INSIDE] * 5)
    forecast = simulate(scenario, deals, trials=50_000)
    rows = drivers(forecast)
    big = next(row for row in rows if row["deal_id"] == "D0")
    assert big["p_landed"] < 0.01 and big["swing"] == max(row["swing"] for row in rows)
    assert rows[0]["deal_id"] != "D0" and rows[0]["p_landed"] > 0.3
    assert "D0" not in [row["deal_id"] for row in deals_that_matter(forecast, rows)["deals"]]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 1000), st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=8),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.5),
    st.integers(0, 3000),
    st.integers(0, 2**32),
)
def test_what_is_at_stake_never_exceeds_the_chance_to_land(spec, slip, pull_in, sigma, quota, seed):
    """Stake counts trials the deal landed in, so a deal that cannot land this period has none and a
    deal with under MIN_STAKE to land is never named, whatever its size."""
    scenario = make_scenario(
        f"slip: {{default: {slip}, pull_in: {pull_in}}}\namount: {{sigma: {sigma}}}\n"
        f"targets: [{{name: quota, metric: revenue, at_least: {quota}}}]\nsimulation: {{seed: {seed}}}\n"
    )
    amounts = [amount for amount, _, _ in spec]
    dates = [INSIDE if inside else AFTER for _, _, inside in spec]
    forecast = simulate(scenario, make_deals(amounts, [p for _, p, _ in spec], close_dates=dates), trials=500)
    rows = drivers(forecast)
    assert [row["stake"] for row in rows] == sorted((row["stake"] for row in rows), reverse=True)
    for row in rows:
        assert 0.0 <= row["stake"] <= row["p_landed"]
    for row in deals_that_matter(forecast, rows)["deals"]:
        assert MIN_STAKE <= row["stake"] <= row["p_landed"] < 1.0


def _rows(stakes, stderr=0.002):
    return [
        {"deal_id": f"D{i}", "p_landed": 0.5, "stake": stake, "stake_stderr": stderr}
        for i, stake in enumerate(stakes)
    ]


@pytest.mark.parametrize(
    ("stakes", "named"),
    [
        ([0.10, 0.09, 0.05, 0.0101, 0.0100, 0.0099], 3),  # the fourth is tied with the fifth
        ([0.10, 0.099, 0.098, 0.097, 0.096, 0.095, 0.094], 0),  # all within error: none named
        ([0.10, 0.099, 0.05, 0.049, 0.048, 0.047, 0.046], 2),  # two together, clear of the rest
        ([0.30, 0.25, 0.20, 0.15, 0.10, 0.05], 5),  # at most TOP_DEALS
        ([0.05, 0.009, 0.0], 1),  # under a point at stake is never named
        ([0.05, 0.04], 2),  # the last deal in play against nothing
    ],
)
def test_only_deals_the_trials_tell_apart_are_named(stakes, named):
    forecast = _forecast(trials=400)
    matter = deals_that_matter(forecast, _rows(stakes))
    assert [row["deal_id"] for row in matter["deals"]] == [f"D{i}" for i in range(named)]
    assert matter["reason"] == (None if named else "within_error")


@pytest.mark.parametrize("quota", [10, 100_000])  # all but certain, out of reach
def test_a_certain_or_impossible_quota_names_no_deal(quota):
    scenario = make_scenario(f"targets: [{{name: quota, metric: revenue, at_least: {quota}}}]\n")
    forecast = simulate(scenario, make_deals([50] * 20, [0.5] * 20), trials=20_000)
    rows = drivers(forecast)
    assert max(row["stake"] for row in rows) < MIN_STAKE
    assert deals_that_matter(forecast, rows) == {
        "target": "quota", "at_least": quota, "probability": 1.0 if quota == 10 else 0.0, "trials": 20_000,
        "deals": [], "reason": "no_deal_decides",
    }  # fmt: skip


def test_the_named_deals_are_the_same_at_20_000_and_100_000_trials():
    """configs/stretch.yaml: the deals named in the report do not change with five times the trials
    (the swing's top five did, and was led by a Qualified deal of March 2027 with 0.7 % to land)."""
    scenario = load_scenario(CONFIGS / "stretch.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    named = []
    for trials in (20_000, 100_000):
        forecast = simulate(scenario, deals, trials=trials)
        named.append([row["deal_id"] for row in deals_that_matter(forecast, drivers(forecast))["deals"]])
    assert named[0] == named[1] == ["OPP-0093", "OPP-0021", "OPP-0164", "OPP-0027"]  # as the README says


def test_drivers_reuse_the_forecasts_draws():
    """The draws kept on the forecast give the same bits as draws rebuilt from scratch (correlated too)."""
    scenario = make_scenario(SCENARIO + "correlation: {market: 0.3, by: {owner: 0.2}}\n")
    deals = make_deals(AMOUNTS, WIN_RATES, close_dates=DATES, owner=["a", "a", "b", "b", "a"])
    forecast = simulate(scenario, deals, trials=5000)
    rebuilt = DealDraws.of(scenario, deals, forecast.model, forecast.seed, forecast.n_trials)
    assert drivers(forecast) == drivers(dataclasses.replace(forecast, draws=rebuilt))
