"""Plans: a scenario's what-ifs applied to its scenario, deals and their resolved model.

A plan overrides targets and changes the pipeline (accelerate, exclude, add
deals, shift win or slip rates). The changes act on the resolved per-deal model
(``DealModel``), so a plan changes only what it says: a zero delta is no change.
Deals keep their ids, so every plan draws the same random numbers for the same
deal: differences between plans are real."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from forecast.config.scenario import BASE_PLAN, DealTemplate, Plan, Scenario, Target
from forecast.engine.model import DealModel, StageTable, deal_model
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals

if TYPE_CHECKING:
    from forecast.engine.simulate import Forecast


class PlanInputs(NamedTuple):
    """What a plan simulates: its scenario (targets), its deals and their model."""

    scenario: Scenario
    deals: Deals
    model: DealModel


def plan_names(scenario: Scenario, wanted: list[str] | None = None) -> list[str]:
    """``base`` first, then the requested plans (default: all), checked to exist."""
    names = list(scenario.plans) if wanted is None else [name for name in wanted if name != BASE_PLAN]
    unknown = [name for name in names if name not in scenario.plans]
    if unknown:
        known = ", ".join([BASE_PLAN, *scenario.plans])
        raise ScenarioError([f"{scenario.label}: no plan {name!r}; plans are {known}" for name in unknown])
    return [BASE_PLAN, *names]


def stage_of(stages: StageTable, name: str | None) -> int:
    """Index of a template's stage by name (default: the first); -1 when the scenario has none."""
    if not stages.names:
        return -1
    return 0 if name is None else stages.index(name)


def template_deals(
    scenario: Scenario, deals: Deals, template: DealTemplate, count: int, prefix: str
) -> Deals:
    """``count`` synthetic deals from a template, ids ``{prefix}1..``.

    Sizes spread across the deals as lognormal quantiles, scaled to mean ``amount``
    (default: the mean open amount), so ``amount_spread`` is a spread of sizes, not
    extra noise; per-trial amount noise still comes from ``amount.sigma``.
    """
    from scipy.special import ndtri

    mean = template.amount if template.amount is not None else float(np.mean(deals.amount))
    spread = template.amount_spread
    sizes = np.exp(spread * ndtri((np.arange(count) + 0.5) / count))
    amount = mean * sizes / np.mean(sizes)
    close = template.close_date or scenario.period_range.end
    stages = StageTable.of(scenario)
    stage = stage_of(stages, template.stage)
    return Deals(
        deal_id=np.array([f"{prefix}{i + 1}" for i in range(count)], dtype=object),
        amount=amount,
        close_date=np.full(count, np.datetime64(close, "D")),
        probability=np.full(count, np.nan if template.win_rate is None else template.win_rate),
        stage_index=np.full(count, stage, dtype=np.int64),
        new_logo=np.full(count, template.new_logo),
        rows=np.zeros(count, dtype=np.int64),
        attributes={
            **{name: np.full(count, "", dtype=object) for name in deals.attributes},
            **({"stage": np.full(count, stages.name(stage), dtype=object)} if stage >= 0 else {}),
        },
    )


def _targets(scenario: Scenario, plan: Plan) -> list[Target]:
    targets = [
        target.model_copy(update={"at_least": plan.targets.get(target.name, target.at_least)})
        for target in scenario.targets
    ]
    for metric in ("revenue", "new_logos"):
        at_least = getattr(plan, metric)
        if at_least is None:
            continue
        position = next((i for i, t in enumerate(targets) if t.metric == metric and not t.where), None)
        if position is None:  # created, under a name no other target has
            names = {t.name for t in targets}
            name = next(n for n in (metric, f"{metric} (all deals)", f"{metric} (plan)") if n not in names)
            targets.append(Target(name=name, metric=metric, at_least=at_least))
        else:
            targets[position] = targets[position].model_copy(update={"at_least": at_least})
    return targets


def _unknown_ids(deals: Deals, plan: Plan, where: str) -> list[str]:
    """Every deal id a plan names that the pipeline lacks, one message each."""
    known = set(deals.deal_id)
    return [
        f"{where}.{key}: unknown deal id {deal!r}"
        for key in ("accelerate", "exclude")
        for deal in getattr(plan, key)
        if deal not in known
    ]


def _deal_positions(deals: Deals, ids: list[str]) -> np.ndarray:
    position = {deal: i for i, deal in enumerate(deals.deal_id)}
    return np.array([position[deal] for deal in ids], dtype=np.int64)


def reference_problems(scenario: Scenario, deals: Deals) -> list[str]:
    """What the scenario names but the pipeline lacks: plan deal ids, target and quota columns."""
    from forecast.engine.model import where_problems

    problems = []
    for name, plan in scenario.plans.items():
        problems += _unknown_ids(deals, plan, f"{scenario.source or scenario.label}: plans.{name}")
    for target in scenario.targets:
        problems += [
            f"{scenario.source or scenario.label}: {problem}" for problem in where_problems(target, deals)
        ]
    usable = set(deals.columns())
    problems += [
        f"{scenario.source or scenario.label}: quotas.{column}: the pipeline has no such column "
        f"(columns: {', '.join(sorted(usable))})"
        for column in scenario.quotas
        if column not in usable
    ]
    return problems


def apply_plan(scenario: Scenario, deals: Deals, name: str, model: DealModel | None = None) -> PlanInputs:
    """The scenario, deals and model of plan ``name`` (``base``: unchanged).

    The plan changes ``model``, the deals' resolved model (default: ``deal_model``). Rate
    deltas shift the resolved rates of the stage's deals (an age rate too); an accelerated
    deal lands in the period when won, with no slip and its win rate; excluded deals leave
    deals and model alike; added deals are resolved as any deal would be.
    """
    model = deal_model(scenario, deals) if model is None else model
    if name == BASE_PLAN:
        return PlanInputs(scenario, deals, model)
    plan = scenario.plans[name]
    where = f"{scenario.source or scenario.label}: plans.{name}"
    problems = _unknown_ids(deals, plan, where)
    if problems:
        raise ScenarioError(problems)
    stages = StageTable.of(scenario)
    for stage, delta in plan.win_rate_delta.items():
        model = model.with_win_rate_delta(deals.stage_index == stages.index(stage), delta)
    for stage, delta in plan.slip_delta.items():
        model = model.with_slip_delta(deals.stage_index == stages.index(stage), delta)
    accelerated = _deal_positions(deals, plan.accelerate)
    model = model.accelerated(accelerated)
    period_end = np.datetime64(scenario.period_range.end, "D")
    close_date = deals.close_date.copy()  # shown dated in the period, as the model has it
    close_date[accelerated] = np.minimum(close_date[accelerated], period_end)
    changed = dataclasses.replace(deals, close_date=close_date)
    keep = np.ones(len(deals), dtype=bool)
    keep[_deal_positions(deals, plan.exclude)] = False
    changed, model = changed.subset(keep), model.subset(keep)
    for position, added in enumerate(plan.add_deals):
        extra = template_deals(scenario, deals, added, added.count, f"{name}:added:{position + 1}:")
        changed, model = changed.concat(extra), model.concat(deal_model(scenario, extra))
    if len(set(changed.deal_id)) < len(changed):
        raise ScenarioError(f"{where}.add_deals: an added deal's id is already in the pipeline")
    return PlanInputs(scenario.model_copy(update={"targets": _targets(scenario, plan)}), changed, model)


def simulate_plan(
    scenario: Scenario,
    deals: Deals,
    name: str,
    trials: int | None = None,
    seed: int | None = None,
    model: DealModel | None = None,
    independent: bool = False,
) -> Forecast:
    """Plan ``name`` simulated on the scenario's random numbers (``trials`` and ``seed`` override;
    ``independent`` as in ``simulate``)."""
    from forecast.engine.simulate import simulate  # here: validation imports this module, not numba

    plan = apply_plan(scenario, deals, name, model)
    return simulate(
        plan.scenario, plan.deals, trials=trials, seed=seed, model=plan.model, independent=independent
    )
