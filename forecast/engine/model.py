"""The resolved per-deal model: each deal's win rate, slip, landing rate and value under a scenario.

Everything that changes how a deal is simulated (its probability, a ``win_by_age`` rate, its
stage's rates, push counts, the haircut) is resolved here once; plans, drivers and changes act
on this model, never on the raw deals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast.config.base import stage_key
from forecast.config.periods import quarter_of
from forecast.config.scenario import (
    DEFAULT_RATES,
    QUARTER_DAYS,
    Scenario,
    Target,
    WinByAge,
)
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals


def age_bucket(ages: np.ndarray, edges: list[int]) -> np.ndarray:
    """Bucket of each age: edges are inclusive upper bounds, the last bucket is open-ended."""
    return np.searchsorted(np.asarray(edges, dtype=np.int64), ages, side="left")


def rates_for(table: WinByAge, ages: np.ndarray, stages: np.ndarray) -> np.ndarray:
    """Each deal's rate: its stage's row (else ``default``) at its age bucket."""
    bucket = age_bucket(ages, table.buckets_days)
    rows = {stage_key(name): np.asarray(row) for name, row in table.rates.items()}
    rate = rows[DEFAULT_RATES][bucket]
    keys = np.array([stage_key(stage) for stage in stages], dtype=object)
    for key, row in rows.items():
        if key != DEFAULT_RATES:
            mask = keys == key
            rate[mask] = row[bucket[mask]]
    return rate


def aged_win_rates(scenario: Scenario, deals: Deals) -> np.ndarray:
    """Each deal's ``win_by_age`` rate for the time left in the period; NaN without the table or a
    created_date.

    The table gives the chance of a win within ``period_days`` from the deal's age on ``as_of``.
    The time from ``as_of`` to the period end is usually a different length (a run mid-quarter,
    a month, a year): the rate is converted at a constant hazard, ``1 - (1 - rate) ** (left /
    period_days)``, which ignores that deals age within the period (for long periods, fit the
    table over periods of that length).
    """
    rate = np.full(len(deals), np.nan)
    dated = ~np.isnat(deals.created)
    table = scenario.win_by_age
    if table is None or not dated.any():
        return rate
    as_of = np.datetime64(scenario.snapshot_date, "D")
    ages = np.maximum((as_of - deals.created[dated]).astype(np.int64), 0)  # created after as_of: brand new
    names = np.array([stage.name for stage in scenario.stages or []] + [""], dtype=object)
    per_period = rates_for(table, ages, names[deals.stage_index[dated]])
    share = _share_of_a_period_left(scenario, table.period_days)
    rate[dated] = per_period if share == 1.0 else 1.0 - (1.0 - per_period) ** share
    return rate


def _share_of_a_period_left(scenario: Scenario, period_days: float) -> float:
    """The time from ``as_of`` to the period end, in periods the table was measured over: a
    calendar quarter counts as one whatever its days (the table is measured on quarters)."""
    start, end = scenario.period_range.start, scenario.period_range.end
    left = (end - scenario.snapshot_date).days + 1  # both ends counted
    if quarter_of(start) == scenario.period_range and period_days == QUARTER_DAYS:
        return left / ((end - start).days + 1)
    return left / period_days


@dataclass(frozen=True)
class DealModel:
    """Per-deal probabilities the kernel needs, resolved from the scenario."""

    win_rate: np.ndarray  # float64: the deal's probability, else its win_by_age rate, else its stage's
    slip: np.ndarray  # float64: the deal's slip, else its stage's, else slip.default
    land_rate: np.ndarray  # float64: P(lands in the period | won)
    dated_inside: np.ndarray  # bool: close date on or before the period end
    value: np.ndarray  # float64: amount after haircut


def deal_model(scenario: Scenario, deals: Deals) -> DealModel:
    """Win rate, landing rate and value of every deal under the scenario's rules.

    A deal's win rate is its own probability, else (with ``win_by_age``, a created date and
    a close date inside the period) the rate for its stage and age on ``as_of`` (a win
    within the period: such a deal lands when won), else its stage's win rate. Deals dated
    after the period keep their stage's rate and land only by pull-in.
    """
    stages = scenario.stages or []
    stage_win = np.array([stage.win_rate for stage in stages] + [np.nan])
    stage_slip = np.array(
        [scenario.slip.default if stage.slip is None else stage.slip for stage in stages]
        + [scenario.slip.default]
    )
    period_end = np.datetime64(scenario.period_range.end, "D")
    dated_inside = deals.close_date <= period_end
    by_age = aged_win_rates(scenario, deals)
    aged = np.isnan(deals.probability) & ~np.isnan(by_age) & dated_inside  # a rate of winning in the period
    win_rate = np.where(np.isnan(deals.probability), stage_win[deals.stage_index], deals.probability)
    win_rate = np.where(aged, by_age, win_rate)
    slip = np.where(np.isnan(deals.slip), stage_slip[deals.stage_index], deals.slip)
    slip = np.minimum(1.0, slip * scenario.slip.push_factor**deals.push_count)  # pushed deals slip more
    land_rate = np.where(dated_inside, 1.0 - slip, scenario.slip.pull_in)
    slip = np.where(aged, 0.0, slip)  # its win is inside the period by definition: no slip, no pull-in
    land_rate = np.where(aged, 1.0, land_rate)
    value = deals.amount * (1.0 - scenario.amount.haircut)
    return DealModel(
        win_rate=win_rate, slip=slip, land_rate=land_rate, dated_inside=dated_inside, value=value
    )


def where_problems(target: Target, deals: Deals) -> list[str]:
    """The columns a target's ``where`` names that the pipeline lacks (checked without a mask)."""
    usable = deals.columns()
    return [
        f"target {target.name!r}: where.{column}: the pipeline has no such column "
        f"(columns: {', '.join(usable)})"
        for column in target.where
        if column not in usable
    ]


def target_mask(target: Target, deals: Deals) -> np.ndarray:
    """Deals that count towards a target."""
    problems = where_problems(target, deals)
    if problems:
        raise ScenarioError(problems)
    mask = deals.matching(target.where)
    return mask & deals.new_logo if target.metric == "new_logos" else mask


def overdue_deals(scenario: Scenario, deals: Deals) -> np.ndarray:
    """Deals whose close date is before ``as_of``: CRM hygiene to fix."""
    return deals.close_date < np.datetime64(scenario.snapshot_date, "D")
