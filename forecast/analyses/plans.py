"""Plans: a scenario's what-ifs applied to its scenario and deals.

A plan overrides targets and changes the pipeline (accelerate, exclude, add
deals, shift win or slip rates). Deals keep their ids, so every plan draws the
same random numbers for the same deal: differences between plans are real."""

from __future__ import annotations

import dataclasses

import numpy as np

from forecast.config.base import stage_key
from forecast.config.scenario import BASE_PLAN, DealTemplate, Plan, Scenario, Target
from forecast.engine.model import deal_model
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals


def plan_names(scenario: Scenario, wanted: list[str] | None = None) -> list[str]:
    """``base`` first, then the requested plans (default: all), checked to exist."""
    names = list(scenario.plans) if wanted is None else [name for name in wanted if name != BASE_PLAN]
    unknown = [name for name in names if name not in scenario.plans]
    if unknown:
        known = ", ".join([BASE_PLAN, *scenario.plans])
        raise ScenarioError([f"{scenario.label}: no plan {name!r}; plans are {known}" for name in unknown])
    return [BASE_PLAN, *names]


def stage_of(scenario: Scenario, name: str | None) -> int:
    """Index of a stage by name (default: the first); -1 when the scenario has none."""
    if not scenario.stages:
        return -1
    if name is None:
        return 0
    return [stage_key(stage.name) for stage in scenario.stages].index(stage_key(name))


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
    stage = stage_of(scenario, template.stage)
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
            **({"stage": np.full(count, scenario.stages[stage].name, dtype=object)} if stage >= 0 else {}),
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


def apply_plan(scenario: Scenario, deals: Deals, name: str) -> tuple[Scenario, Deals]:
    """The scenario and deals of plan ``name`` (``base``: unchanged)."""
    if name == BASE_PLAN:
        return scenario, deals
    plan = scenario.plans[name]
    where = f"{scenario.source or scenario.label}: plans.{name}"
    problems = _unknown_ids(deals, plan, where)
    if problems:
        raise ScenarioError(problems)
    model = deal_model(scenario, deals)
    probability = deals.probability.copy()
    slip = deals.slip.copy()
    close_date = deals.close_date.copy()
    for key, rates, out in (
        ("win_rate_delta", model.win_rate, probability),
        ("slip_delta", model.slip, slip),
    ):
        for stage, delta in getattr(plan, key).items():
            in_stage = deals.stage_index == stage_of(scenario, stage)
            out[in_stage] = np.clip(rates[in_stage] + delta, 0.0, 1.0)
    accelerated = _deal_positions(deals, plan.accelerate)
    slip[accelerated] = 0.0
    period_end = np.datetime64(scenario.period_range.end, "D")
    close_date[accelerated] = np.minimum(close_date[accelerated], period_end)
    changed = dataclasses.replace(deals, close_date=close_date, probability=probability, slip=slip)
    keep = np.ones(len(deals), dtype=bool)
    keep[_deal_positions(deals, plan.exclude)] = False
    changed = changed.subset(keep)
    for position, added in enumerate(plan.add_deals):
        extra = template_deals(scenario, deals, added, added.count, f"{name}:added:{position + 1}:")
        changed = changed.concat(extra)
    if len(set(changed.deal_id)) < len(changed):
        raise ScenarioError(f"{where}.add_deals: an added deal's id is already in the pipeline")
    return scenario.model_copy(update={"targets": _targets(scenario, plan)}), changed
