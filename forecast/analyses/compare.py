"""Plans side by side on common random numbers, and the extra pipeline a probability needs."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecast.analyses.plans import plan_names, simulate_plan, stage_of, template_deals
from forecast.config.scenario import BASE_PLAN, Scenario
from forecast.engine.model import StageTable, deal_model
from forecast.engine.simulate import Forecast, simulate
from forecast.engine.summary import all_targets_hit, paired_difference, reaches, summarize
from forecast.inputs.deals import Deals

LEVELS = (0.5, 0.8, 0.9)
PLAN_KEYS = ("plan", "delta_vs_base", "required_extra_pipeline")  # a plan's row: its summary and these
EXTRA_PREFIX = "extra:"


def max_extra_deals(deals: Deals) -> int:
    """How far the extra-pipeline search looks: ten times the open deals, at least 100."""
    return max(100, 10 * len(deals))


class ExtraPipelineSearch:
    """P(all targets) after adding k template deals, for any k, on common random numbers.

    The added deals have fixed ids, so deal i draws the same numbers whatever k
    is: P(all targets) is non-decreasing in k and a doubling-then-bisection search
    finds the smallest k that reaches a level.
    """

    def __init__(self, forecast: Forecast, max_deals: int):
        scenario = forecast.scenario
        template = scenario.new_deal.model_copy(
            update={"amount_spread": 0.0}
        )  # every added deal of mean size
        self.forecast = forecast
        self.max_deals = max_deals
        self.extra = template_deals(scenario, forecast.deals, template, max_deals, EXTRA_PREFIX)
        # the added deals alone: booked and new pipeline are already in the forecast's trials
        self.without_booked = scenario.model_copy(update={"booked": 0.0, "new_pipeline": None})
        self._p_all: dict[int, float] = {}

    def p_all(self, count: int) -> float:
        if count not in self._p_all:
            forecast = self.forecast
            values = forecast.trials.targets
            if count:
                added = simulate(
                    self.without_booked,
                    self.extra.subset(slice(0, count)),
                    trials=forecast.n_trials,
                    seed=forecast.seed,
                ).trials.targets
                values = {name: values[name] + added[name] for name in values}
            hit = [reaches(values[target.name], target.at_least) for target in forecast.scenario.targets]
            self._p_all[count] = float(np.mean(np.logical_and.reduce(hit)))
        return self._p_all[count]

    def deals_needed(self, level: float) -> int | None:
        """Fewest added deals with P(all targets) >= level; None if more than ``max_deals``."""
        if self.p_all(0) >= level:
            return 0
        low, high = 0, 1
        while self.p_all(high) < level:
            if high == self.max_deals:
                return None
            low, high = high, min(2 * high, self.max_deals)
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if self.p_all(middle) >= level else (middle, high)
        return high


def required_extra_pipeline(forecast: Forecast, levels=LEVELS) -> dict[str, Any] | None:
    """Deals (and amount) of the scenario's ``new_deal`` needed to reach each level of P(all)."""
    scenario = forecast.scenario
    if not scenario.targets or not levels:
        return None
    template = scenario.new_deal
    if template.win_rate is None and not scenario.stages:
        return {"deal": None, "levels": [], "note": "new_deal needs a win_rate: the scenario has no stages"}
    search = ExtraPipelineSearch(forecast, max_extra_deals(forecast.deals))
    model = deal_model(scenario, search.extra.subset(slice(0, 1)))
    amount = float(search.extra.amount[0])
    stages = StageTable.of(scenario)
    stage = stage_of(stages, template.stage)
    rows = []
    for level in levels:
        count = search.deals_needed(level)
        rows.append(
            {
                "probability": level,
                "deals": count,
                "amount": None if count is None else count * amount,
                "achieved": None if count is None else search.p_all(count),
            }
        )
    return {
        "deal": {
            "stage": stages.name(stage),
            "amount": amount,
            "win_rate": float(model.win_rate[0]),
            "slip": float(model.slip[0]),
            "new_logo": template.new_logo,
        },
        "levels": rows,
        "max_deals_searched": search.max_deals,
    }


def _delta(plan: Forecast, base: Forecast) -> dict[str, Any]:
    base_targets = {target.name: target for target in base.scenario.targets}
    targets = []
    for target in plan.scenario.targets:
        if target.name in base_targets:
            hit_plan = reaches(plan.trials.targets[target.name], target.at_least)
            base_target = base_targets[target.name]
            hit_base = reaches(base.trials.targets[target.name], base_target.at_least)
            targets.append({"name": target.name, "probability": paired_difference(hit_plan, hit_base)})
    plan_all, base_all = all_targets_hit(plan), all_targets_hit(base)
    return {
        "expected_revenue": paired_difference(plan.trials.revenue, base.trials.revenue),
        "p_all_targets": None
        if plan_all is None or base_all is None
        else paired_difference(plan_all, base_all),
        "targets": targets,
    }


def compare_plans(
    scenario: Scenario,
    deals: Deals,
    plans: list[str] | None = None,
    trials: int | None = None,
    seed: int | None = None,
    levels=LEVELS,
    base: Forecast | None = None,
) -> list[dict[str, Any]]:
    """``forecast compare``: each plan's summary, its paired difference to base, what it takes.

    ``base``: the base plan's forecast when the caller has it already (simulated with
    ``independent=True`` on the same trials and seed), so it is not simulated again.
    """
    if base is not None:
        trials, seed = base.n_trials, base.seed
    results = []
    for name in plan_names(scenario, plans):
        if name == BASE_PLAN and base is not None:
            forecast = base
        else:
            forecast = simulate_plan(scenario, deals, name, trials=trials, seed=seed, independent=True)
        base = base or forecast
        summary = summarize(forecast)
        summary["plan"] = name
        summary["delta_vs_base"] = _delta(forecast, base)
        summary["required_extra_pipeline"] = required_extra_pipeline(forecast, levels)
        results.append(summary)
    return results
