"""Deal drivers against brute-force re-simulation (the kernel against its reference: test_kernels.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast.analyses.drivers import drivers
from forecast.engine.simulate import simulate
from forecast.engine.summary import reaches
from forecast.errors import ScenarioError
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

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
    assert [row["deal_id"] for row in rows] == sorted(brute, key=lambda deal: -brute[deal])


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


def test_swing_stderr_matches_the_spread_over_seeds():
    """The stated standard error against the swing's standard deviation over independent runs."""
    runs = []
    for seed in range(40):
        scenario = make_scenario(SCENARIO.replace("seed: 12", f"seed: {seed}"))
        forecast = simulate(scenario, make_deals(AMOUNTS, WIN_RATES, close_dates=DATES), trials=3000)
        runs.append({row["deal_id"]: row for row in drivers(forecast)})
    for deal in ("D0", "D2", "D4"):
        swings = np.array([run[deal]["swing"] for run in runs])
        stated = np.mean([run[deal]["swing_stderr"] for run in runs])
        # the sample sd of 40 runs is within about +-25 % of the truth (chi distribution, 2 sd)
        assert 0.7 * stated < swings.std(ddof=1) < 1.3 * stated, (deal, swings.std(ddof=1), stated)
