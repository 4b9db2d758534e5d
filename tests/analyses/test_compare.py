"""Plan comparison: paired intervals, the extra-pipeline search, and the shipped stretch example."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from forecast.analyses.compare import ExtraPipelineSearch, compare_plans
from forecast.analyses.plans import simulate_plan
from forecast.config.loading import load_scenario
from forecast.engine.simulate import simulate
from forecast.engine.summary import all_targets_hit
from forecast.inputs.pipeline import load_deals
from tests.builders import make_deals, make_scenario

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCENARIO = (
    "stages: [{name: Open, win_rate: 0.4, slip: 0.2}]\n"
    "amount: {sigma: 0.3}\n"
    "targets: [{name: quota, metric: revenue, at_least: 900}]\n"
    "new_deal: {stage: Open, amount: 200}\n"
    "plans:\n  coaching: {win_rate_delta: {Open: 0.1}}\n  same: {}\n"
)


def _deals():
    return make_deals([300, 500, 200, 400, 250], stage_index=[0] * 5)


def _p_all(scenario, deals, plan, trials, seed):
    return float(np.mean(all_targets_hit(simulate_plan(scenario, deals, plan, trials=trials, seed=seed))))


def test_paired_interval_agrees_with_a_large_independent_run():
    scenario, deals = make_scenario(SCENARIO), _deals()
    paired = compare_plans(scenario, deals, ["coaching"], trials=20_000, seed=1)[1]["delta_vs_base"][
        "p_all_targets"
    ]
    big = 400_000
    p_base, p_plan = _p_all(scenario, deals, "base", big, 2), _p_all(scenario, deals, "coaching", big, 3)
    independent_se = math.sqrt((p_base * (1 - p_base) + p_plan * (1 - p_plan)) / big)
    assert abs(paired["estimate"] - (p_plan - p_base)) <= 4 * math.hypot(paired["stderr"], independent_se)
    # common random numbers: the paired error is well below that of two independent runs of equal size
    assert paired["stderr"] < 0.75 * independent_se * math.sqrt(big / 20_000)


def test_paired_interval_covers_the_difference_95_percent_of_the_time():
    scenario, deals = make_scenario(SCENARIO), _deals()
    truth = _p_all(scenario, deals, "coaching", 400_000, 9) - _p_all(scenario, deals, "base", 400_000, 9)
    runs = 200
    covered = 0
    for seed in range(runs):
        delta = compare_plans(scenario, deals, ["coaching"], trials=2_000, seed=100 + seed, levels=())[1]
        low, high = delta["delta_vs_base"]["p_all_targets"]["ci95"]
        covered += low <= truth <= high
    # covered ~ Binomial(200, 0.95): mean 190, sd 3.1; the truth itself is known to +-0.002
    assert covered >= 190 - 4 * math.sqrt(runs * 0.95 * 0.05)


def test_an_empty_plan_differs_by_exactly_nothing():
    results = compare_plans(make_scenario(SCENARIO), _deals(), ["same"], trials=3_000, levels=())
    delta = results[1]["delta_vs_base"]
    assert delta["p_all_targets"] == {"estimate": 0.0, "stderr": 0.0, "ci95": [0.0, 0.0]}
    assert delta["expected_revenue"]["estimate"] == 0.0
    assert results[1]["revenue"] == results[0]["revenue"]


@pytest.mark.parametrize("level", [0.3, 0.5, 0.8, 0.9, 0.99])
def test_extra_pipeline_search_finds_the_smallest_count(level):
    scenario, deals = make_scenario(SCENARIO), _deals()
    forecast = simulate(scenario, deals, trials=4_000, seed=4)
    search = ExtraPipelineSearch(forecast, max_deals=40)
    curve = [search.p_all(k) for k in range(41)]
    assert all(a <= b for a, b in zip(curve, curve[1:], strict=False))  # monotone on common random numbers
    brute = next((k for k, p in enumerate(curve) if p >= level), None)
    assert ExtraPipelineSearch(forecast, max_deals=40).deals_needed(level) == brute


def test_unreachable_levels_say_so():
    scenario = make_scenario(
        "targets: [{name: x, metric: deals, where: {product: X}, at_least: 2}]\n"
        "new_deal: {win_rate: 0.5, amount: 100}\n"
    )
    deals = make_deals([100, 100], [0.5, 0.5], product=["X", "X"])
    result = compare_plans(scenario, deals, [], trials=2_000, levels=(0.2, 0.9))[0]
    levels = result["required_extra_pipeline"]["levels"]
    assert levels[0]["deals"] == 0  # already 25 %
    assert levels[1] == {"probability": 0.9, "deals": None, "amount": None, "achieved": None}


def test_shipped_stretch_example():
    scenario = load_scenario(CONFIGS / "stretch.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    results = {r["plan"]: r for r in compare_plans(scenario, deals, trials=4_000)}
    assert list(results) == ["base", "stretch", "pull_in", "coaching", "prospecting"]
    assert results["stretch"]["p_all_targets"] < results["base"]["p_all_targets"]
    assert results["stretch"]["delta_vs_base"]["p_all_targets"]["ci95"][1] < 0
    for name in ("pull_in", "coaching", "prospecting"):
        assert results[name]["delta_vs_base"]["p_all_targets"]["estimate"] > 0, name
    needed = [row["deals"] for row in results["stretch"]["required_extra_pipeline"]["levels"]]
    assert needed == sorted(needed) and needed[0] > 0


def test_extra_pipeline_search_is_the_full_simulation_with_the_deals_added():
    """With new pipeline and booked revenue in the scenario, adding k deals is exactly re-simulating."""
    scenario = make_scenario(
        SCENARIO
        + "booked: 100\n"
        + "new_pipeline:\n  conversations_per_week: 2\n  stages: [{name: proposal, rate: 0.5}]\n"
        + "  lag_weeks: {distribution: fixed, mean: 2}\n  deal_size: {mean: 150}\n"
    )
    deals = _deals()
    forecast = simulate(scenario, deals, trials=3_000, seed=6)
    search = ExtraPipelineSearch(forecast, max_deals=20)
    for count in (1, 5, 20):
        everything = simulate(
            scenario, deals.concat(search.extra.subset(slice(0, count))), trials=3_000, seed=6
        )
        assert search.p_all(count) == float(np.mean(all_targets_hit(everything)))


def test_one_trial_has_no_interval():
    result = compare_plans(make_scenario(SCENARIO), _deals(), ["coaching"], trials=1, levels=())[1]
    assert result["delta_vs_base"]["p_all_targets"]["stderr"] is None
    assert result["delta_vs_base"]["p_all_targets"]["ci95"] is None
