"""Plans: what each change does, the common-random-numbers guarantees, and bad definitions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses.compare import compare_plans
from forecast.analyses.plans import apply_plan, plan_names
from forecast.config.loading import load_scenario
from forecast.config.scenario import Plan
from forecast.engine.model import deal_model
from forecast.engine.simulate import simulate
from forecast.engine.summary import reaches
from forecast.errors import ScenarioError
from forecast.inputs.pipeline import load_deals
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

STAGES = "stages: [{name: Qualified, win_rate: 0.2, slip: 0.3}, {name: Proposal, win_rate: 0.5}]\n"
TARGETS = (
    "targets:\n  - {name: quota, metric: revenue, at_least: 1000}\n"
    "  - {name: logos, metric: new_logos, at_least: 1}\n"
)


def _deals():
    return make_deals(
        [300, 400, 500, 600],
        close_dates=[INSIDE, AFTER, INSIDE, AFTER],
        stage_index=[0, 0, 1, 1],
        new_logo=[True, False, True, False],
        product=["X", "Y", "X", "Y"],
    )


def _scenario(plans: str, extra: str = ""):
    return make_scenario(
        STAGES + TARGETS + "slip: {default: 0.1, pull_in: 0.2}\n" + extra + "plans:\n" + plans
    )


def test_target_overrides_by_name_and_by_metric():
    scenario = _scenario("  a: {targets: {quota: 2000}}\n  b: {revenue: 3000, new_logos: 2}\n")
    a = apply_plan(scenario, _deals(), "a").scenario
    b = apply_plan(scenario, _deals(), "b").scenario
    assert [(t.name, t.at_least) for t in a.targets] == [("quota", 2000), ("logos", 1)]
    assert [(t.name, t.at_least) for t in b.targets] == [("quota", 3000), ("logos", 2)]
    assert [t.at_least for t in scenario.targets] == [1000, 1]  # the base is untouched


def test_metric_shorthand_creates_a_missing_target():
    scenario = make_scenario(STAGES + "plans:\n  stretch: {revenue: 1500, new_logos: 5}\n")
    plan = apply_plan(scenario, _deals(), "stretch").scenario
    assert [(t.name, t.metric, t.at_least) for t in plan.targets] == [
        ("revenue", "revenue", 1500),
        ("new_logos", "new_logos", 5),
    ]


def test_accelerate_exclude_and_rate_deltas():
    scenario = _scenario(
        "  p:\n    accelerate: [D1]\n    exclude: [D3]\n"
        "    win_rate_delta: {Qualified: 0.9, Proposal: -0.1}\n    slip_delta: {qualified: 0.2}\n"
    )
    plan = apply_plan(scenario, _deals(), "p")
    assert list(plan.deals.deal_id) == ["D0", "D1", "D2"]
    model = plan.model
    np.testing.assert_allclose(model.win_rate, [1.0, 1.0, 0.4])  # clipped at 1
    np.testing.assert_allclose(model.slip, [0.5, 0.0, 0.1])  # D1 accelerated: no slip
    np.testing.assert_array_equal(model.dated_inside, [True, True, True])  # D1 pulled into the period
    np.testing.assert_allclose(model.land_rate, [0.5, 1.0, 0.9])


def test_add_deals_spreads_sizes_around_the_mean():
    scenario = _scenario(
        "  more:\n    add_deals:\n"
        "      {count: 50, stage: Proposal, amount: 1000, amount_spread: 0.5, new_logo: false}\n"
    )
    deals = apply_plan(scenario, _deals(), "more").deals
    added = deals.subset(slice(4, None))
    assert len(added) == 50
    assert added.deal_id[0] == "more:added:1:1"
    assert np.mean(added.amount) == pytest.approx(1000, rel=1e-12)
    assert np.all(np.diff(added.amount) > 0)
    assert not added.new_logo.any()
    assert list(added.column("product")) == [""] * 50  # columns the template lacks are blank
    np.testing.assert_allclose(deal_model(scenario, added).win_rate, 0.5)


def _per_trial(scenario, deals, name, trials=3000, seed=5):
    plan = apply_plan(scenario, deals, name)
    return plan.scenario, simulate(plan.scenario, plan.deals, trials=trials, seed=seed, model=plan.model)


def _hit_all(scenario, forecast):
    return np.logical_and.reduce(
        [reaches(forecast.trials.targets[t.name], t.at_least) for t in scenario.targets]
    )


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.integers(0, 1000), min_size=4, max_size=4),
    st.integers(0, 3),
    st.floats(0.0, 2.0),
    st.integers(0, 2**32),
)
def test_common_random_numbers_properties(raise_by, excluded, sigma, seed):
    """Raising targets or excluding a deal never helps; accelerating never hurts, in every trial."""
    scenario = _scenario(
        f"  harder: {{targets: {{quota: {1000 + raise_by[0]}, logos: {1 + raise_by[1] // 300}}}}}\n"
        f"  without: {{exclude: [D{excluded}]}}\n"
        f"  faster: {{accelerate: [D{excluded}, D{(excluded + 1) % 4}]}}\n",
        extra=f"amount: {{sigma: {sigma:.3f}}}\n",
    )
    deals = _deals()
    base_scenario, base = _per_trial(scenario, deals, "base", seed=seed)
    harder_scenario, harder = _per_trial(scenario, deals, "harder", seed=seed)
    _, without = _per_trial(scenario, deals, "without", seed=seed)
    _, faster = _per_trial(scenario, deals, "faster", seed=seed)
    base_hit = _hit_all(base_scenario, base)
    assert not np.any(_hit_all(harder_scenario, harder) & ~base_hit)
    assert np.all(without.trials.revenue <= base.trials.revenue)
    assert not np.any(_hit_all(base_scenario, without) & ~base_hit)
    assert np.all(faster.trials.revenue >= base.trials.revenue)


def test_plan_names_base_first_and_unknown_plans():
    scenario = _scenario("  a: {revenue: 1}\n  b: {revenue: 2}\n")
    assert plan_names(scenario) == ["base", "a", "b"]
    assert plan_names(scenario, ["b", "base"]) == ["base", "b"]
    with pytest.raises(ScenarioError, match="no plan 'c'; plans are base, a, b"):
        plan_names(scenario, ["c"])


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ("  p: {accelerate: [D9]}\n", "plans.p.accelerate: unknown deal id 'D9'"),
        ("  p: {exclude: [D0, nope]}\n", "plans.p.exclude: unknown deal id 'nope'"),
    ],
)
def test_unknown_deal_ids_name_the_plan_and_key(plans, message):
    with pytest.raises(ScenarioError, match=message.replace(".", r"\.")):
        apply_plan(_scenario(plans), _deals(), "p")


@pytest.mark.parametrize(
    ("plans", "message"),
    [
        ("  p: {win_rate_delta: {Closing: 0.1}}\n", "plans.p.win_rate_delta.Closing (line 9): unknown stage"),
        ("  p: {slip_delta: {Closing: 0.1}}\n", "plans.p.slip_delta.Closing (line 9): unknown stage"),
        ("  p: {add_deals: {count: -3}}\n", "plans.p.add_deals.count (line 9): Input should be greater"),
        (
            "  p: {add_deals: {count: 2, stage: Closing}}\n",
            "plans.p.add_deals[0].stage (line 9): unknown stage",
        ),
        ("  p: {targets: {stretch: 5}}\n", "plans.p.targets.stretch (line 9): no such target"),
        (
            "  p: {win_rate_delta: {Qualified: 2}}\n",
            "plans.p.win_rate_delta.Qualified (line 9): Input should be less",
        ),
        ("  base: {revenue: 5}\n", "plans (line 8): 'base' is the scenario as written"),
        ("  p: {accelerat: [D1]}\n", "plans.p.accelerat (line 9): unknown key"),
    ],
)
def test_bad_plan_definitions_name_plan_and_key(plans, message):
    with pytest.raises(ScenarioError) as error:
        _scenario(plans)
    assert any(message in line for line in error.value.problems), error.value.problems


def test_shorthand_never_takes_a_filtered_targets_name():
    scenario = make_scenario(
        STAGES + "targets: [{name: revenue, metric: revenue, where: {product: X}, at_least: 100}]\n"
        "plans: {big: {revenue: 900}}\n"
    )
    plan, deals, model = apply_plan(scenario, _deals(), "big")
    assert [(t.name, t.where, t.at_least) for t in plan.targets] == [
        ("revenue", {"product": "X"}, 100),
        ("revenue (all deals)", {}, 900),
    ]
    forecast = simulate(plan, deals, trials=500, model=model)
    assert forecast.trials.targets["revenue (all deals)"] is forecast.trials.revenue


def test_all_unknown_ids_are_reported_together_and_added_deals_have_their_stage():
    scenario = _scenario(
        "  p:\n    accelerate: [X1]\n    exclude: [D0, X2]\n    add_deals: {count: 2, stage: Proposal}\n"
    )
    with pytest.raises(ScenarioError) as error:
        apply_plan(scenario, _deals(), "p")
    assert [line.split(": ", 1)[1] for line in error.value.problems] == [
        "plans.p.accelerate: unknown deal id 'X1'",
        "plans.p.exclude: unknown deal id 'X2'",
    ]
    fixed = _scenario("  p: {add_deals: {count: 2, stage: Proposal}}\n")
    deals = apply_plan(fixed, _deals(), "p").deals
    assert list(deals.column("stage")[-2:]) == ["Proposal", "Proposal"]


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PERIOD_CONFIGS = sorted(path.name for path in CONFIGS.glob("*.yaml") if "\nperiod:" in path.read_text())


def _results_but_the_plan(summary: dict) -> dict:
    return {key: value for key, value in summary.items() if key not in ("plan", "delta_vs_base")}


@pytest.mark.parametrize("pushed", [False, True], ids=["as_shipped", "with_pushes"])
@pytest.mark.parametrize("config", PERIOD_CONFIGS)
def test_a_plan_of_zero_deltas_is_the_base_bit_for_bit(config, pushed):
    """Zero deltas on every stage, alone or together, change no number of any shipped scenario
    (with pushed deals and a push factor too: a zero slip delta must not push them twice)."""
    scenario = load_scenario(CONFIGS / config)
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    if pushed:
        deals.push_count[:] = np.arange(len(deals)) % 3
        scenario = scenario.model_copy(update={"slip": scenario.slip.model_copy(update={"push_factor": 1.3})})
    zero = {stage.name: 0.0 for stage in scenario.stages or []}
    plans = {
        "win": Plan(win_rate_delta=zero),
        "slip": Plan(slip_delta=zero),
        "both": Plan(win_rate_delta=zero, slip_delta=zero),
    }
    scenario = scenario.model_copy(update={"plans": plans})
    base, *zero_plans = compare_plans(scenario, deals, trials=2_000, levels=(0.5,))
    assert [plan["plan"] for plan in zero_plans] == list(plans)
    for plan in zero_plans:
        assert _results_but_the_plan(plan) == _results_but_the_plan(base), plan["plan"]
        assert plan["delta_vs_base"]["expected_revenue"]["estimate"] == 0.0
        assert plan["delta_vs_base"]["expected_revenue"]["stderr"] == 0.0


AGE_SCENARIO = (
    "as_of: 2026-08-01\n"
    "stages: [{name: Early, win_rate: 0.2, slip: 0.3}, {name: Late, win_rate: 0.5}]\n"
    "slip: {default: 0.1, pull_in: 0.2, push_factor: 1.5}\n"
    "win_by_age: {buckets_days: [60], rates: {default: [0.4, 0.1], Late: [0.7, 0.3]}}\n"
    "targets: [{name: quota, metric: revenue, at_least: 1000}]\n"
    "plans:\n"
    "  coaching: {win_rate_delta: {Early: 0.05, Late: -0.1}}\n"
    "  tighter: {slip_delta: {Early: -0.1, Late: 0.2}}\n"
    "  faster: {accelerate: [D1, D3]}\n"
)


def _aged_deals():
    """D0, D2 age-rated (created, dated inside); D1 dated after; D3 dated inside, no created date."""
    deals = make_deals(
        [300, 400, 500, 600], close_dates=[INSIDE, AFTER, INSIDE, INSIDE], stage_index=[0, 0, 1, 1]
    )
    deals.created[:3] = np.datetime64("2026-07-20")  # 12 days old: the first age bucket
    deals.push_count[:] = [0, 1, 2, 1]
    return deals


def test_rate_deltas_move_only_what_they_say_on_the_resolved_model():
    scenario, deals = make_scenario(AGE_SCENARIO), _aged_deals()
    base = deal_model(scenario, deals)
    np.testing.assert_array_equal(base.age_rated, [True, False, True, False])
    coaching = apply_plan(scenario, deals, "coaching").model
    np.testing.assert_allclose(coaching.win_rate, base.win_rate + [0.05, 0.05, -0.1, -0.1], rtol=1e-15)
    for name in ("slip", "land_rate", "dated_inside", "value", "age_rated"):  # slip stays as resolved
        np.testing.assert_array_equal(getattr(coaching, name), getattr(base, name), err_msg=name)
    tighter = apply_plan(scenario, deals, "tighter").model
    np.testing.assert_array_equal(tighter.win_rate, base.win_rate)
    # age-rated deals have no slip; D1 (dated after) keeps landing by pull-in; D3's pushed slip moves
    np.testing.assert_allclose(tighter.slip, [0.0, 0.3 * 1.5 - 0.1, 0.0, 0.1 * 1.5 + 0.2], rtol=1e-15)
    np.testing.assert_allclose(tighter.land_rate, [1.0, 0.2, 1.0, 1 - (0.1 * 1.5 + 0.2)], rtol=1e-15)


def test_an_accelerated_deal_lands_without_slip_and_keeps_its_win_rate():
    scenario, deals = make_scenario(AGE_SCENARIO), _aged_deals()
    base = deal_model(scenario, deals)
    faster = apply_plan(scenario, deals, "faster")
    np.testing.assert_array_equal(faster.model.win_rate, base.win_rate)  # D1 keeps its stage rate
    np.testing.assert_array_equal(faster.model.slip, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(faster.model.land_rate, [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(faster.model.dated_inside, [True] * 4)
    assert faster.deals.close_date[1] == np.datetime64("2026-09-30")
    forecast = simulate(faster.scenario, faster.deals, trials=EXACT_TRIALS, model=faster.model)
    expected = float(np.sum(base.win_rate * deals.amount))  # every deal lands when won
    assert np.mean(forecast.trials.revenue) == pytest.approx(expected, abs=4 * _stderr(base, deals))


EXACT_TRIALS = 100_000


def _stderr(model, deals) -> float:
    return float(np.sqrt(np.sum(model.win_rate * (1 - model.win_rate) * deals.amount**2) / EXACT_TRIALS))


def test_excluded_and_added_deals_leave_and_join_deals_and_model_together():
    scenario = _scenario(
        "  p:\n    exclude: [D1]\n    accelerate: [D3]\n    win_rate_delta: {Proposal: 0.1}\n"
        "    add_deals: {count: 2, stage: Qualified, win_rate: 0.6}\n"
    )
    deals = _deals()
    base = deal_model(scenario, deals)
    plan = apply_plan(scenario, deals, "p")
    assert list(plan.deals.deal_id) == ["D0", "D2", "D3", "p:added:1:1", "p:added:1:2"]
    assert len(plan.model) == len(plan.deals)
    np.testing.assert_allclose(plan.model.win_rate, [0.2, 0.6, 0.6, 0.6, 0.6])
    np.testing.assert_allclose(plan.model.land_rate, [base.land_rate[0], base.land_rate[2], 1.0, 0.7, 0.7])


def test_simulate_refuses_a_model_of_other_deals():
    scenario = _scenario("  p: {exclude: [D1]}\n")
    plan = apply_plan(scenario, _deals(), "p")
    with pytest.raises(ValueError, match="the model has 3 deals, the pipeline 4"):
        simulate(scenario, _deals(), model=plan.model)
