"""Win within a period by deal age x stage: a discrete-time model of closing, fitted on history.

A deal open far longer than the usual sales cycle almost never closes. For every deal
open at a period's start, history says whether it was won within the period; the chance
is estimated per age bucket (days since creation) and per stage at the start. A thin age
x stage cell is shrunk toward its age bucket's rate by a Beta prior worth
``prior_strength`` deals, and every estimate keeps its counts. The same table, as a
scenario's ``win_by_age``, gives each open deal its rate in ``forecast run``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.pipeline import Deals
from forecast.rates import MIN_DEALS, beta_rate
from forecast.scenario import (
    DEFAULT_RATES,
    QUARTER_DAYS,
    Scenario,
    WinByAge,
    age_bucket_labels,
    quarter_of,
    stage_key,
)


@dataclass
class Exposures:
    """One entry per deal open at a period's start: its age and stage then, and whether it was won
    within the period."""

    age: np.ndarray  # int64, days since creation
    stage: np.ndarray  # str objects, '' where unknown
    won: np.ndarray  # bool
    periods: int


def open_at(created: np.ndarray, closed: np.ndarray, start: np.datetime64) -> np.ndarray:
    """Deals open when ``start`` begins: created before it and not closed before it."""
    return (created < start) & ~(closed < start)


def exposures(
    created: np.ndarray,
    closed: np.ndarray,
    won: np.ndarray,
    periods: list[tuple[np.datetime64, np.datetime64]],
    stage_on: Callable[[np.datetime64], np.ndarray],
) -> Exposures:
    """What each period's open deals did within it; ``stage_on(day)``: every deal's stage that day."""
    ages, stages, wins = [np.zeros(0, np.int64)], [np.zeros(0, object)], [np.zeros(0, bool)]
    for start, end in periods:
        open_now = open_at(created, closed, start)
        ages.append((start - created[open_now]).astype(np.int64))
        stages.append(np.asarray(stage_on(start - 1), dtype=object)[open_now])  # as the period begins
        wins.append((won & (closed >= start) & (closed <= end))[open_now])
    return Exposures(np.concatenate(ages), np.concatenate(stages), np.concatenate(wins), len(periods))


def age_bucket(ages: np.ndarray, edges: list[int]) -> np.ndarray:
    """Bucket of each age: edges are inclusive upper bounds, the last bucket is open-ended."""
    return np.searchsorted(np.asarray(edges, dtype=np.int64), ages, side="left")


def _stage_groups(stages: np.ndarray) -> dict[str, np.ndarray]:
    """Stage -> mask of entries in it; names compare as stages do (first spelling kept)."""
    keys = np.array([stage_key(stage) for stage in stages], dtype=object)
    names: dict[str, str] = {}
    for stage, key in zip(stages, keys, strict=True):
        if key:
            names.setdefault(key, stage)
    return {names[key]: keys == key for key in sorted(names)}


def fit_win_by_age(exposure: Exposures, edges: list[int], prior_strength: float) -> dict[str, Any]:
    """Win-within-period rates by age bucket, and by age x stage shrunk toward the bucket's rate.

    A bucket with fewer than ``MIN_DEALS`` deals falls back to the overall rate and says so.
    With no edges, the one bucket is the overall rate and the stage rows are rates by stage alone.
    """
    labels = age_bucket_labels(edges)
    bucket = age_bucket(exposure.age, edges)
    overall = beta_rate(int(exposure.won.sum()), exposure.won.size)
    by_age = []
    for b, label in enumerate(labels):
        estimate = beta_rate(int(exposure.won[bucket == b].sum()), int((bucket == b).sum()))
        if estimate["deals"] < MIN_DEALS:
            estimate = {
                **estimate,
                "win_rate": overall["win_rate"],
                "note": f"fewer than {MIN_DEALS} deals: overall rate",
            }
        by_age.append({"age": label, **estimate})
    stages = {}
    for name, in_stage in _stage_groups(exposure.stage).items():
        cells = [in_stage & (bucket == b) for b in range(len(labels))]
        stages[name] = [
            {"age": label, **beta_rate(int(exposure.won[cell].sum()), int(cell.sum()), by_age[b]["win_rate"],
                                       prior_strength)}
            for b, (label, cell) in enumerate(zip(labels, cells, strict=True))
        ]  # fmt: skip
    return {"buckets_days": list(edges), "periods": exposure.periods, "prior_strength": prior_strength,
            "overall": overall, "by_age": by_age, "stages": stages}  # fmt: skip


def win_by_age(fit: dict[str, Any], by_stage: bool = True) -> WinByAge:
    """The fitted rates as a scenario's ``win_by_age`` (``by_stage=False``: by age alone)."""
    rates = {DEFAULT_RATES: [round(cell["win_rate"], 6) for cell in fit["by_age"]]}
    if by_stage:
        rates |= {name: [round(cell["win_rate"], 6) for cell in row] for name, row in fit["stages"].items()}
    return WinByAge(buckets_days=fit["buckets_days"], rates=rates)


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
