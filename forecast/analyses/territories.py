"""Territories: how fair the current split is, and a fairer one made of whole units.

A unit is a value of one column (a region, a sector); a suggested territory is a
set of whole units, so no rep ends up with a random mix. The split minimises the
spread (max - min) of expected attainment, or of P(hit own quota), across reps.
Small instances are solved exactly by enumeration; larger ones by a greedy start
and local search, with the gap to a lower bound stated."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from forecast.engine.simulate import Forecast
from forecast.engine.summary import reaches, rounding_slack
from forecast.errors import ScenarioError
from forecast.inputs.deals import by_value

EXACT_LIMIT = 200_000  # assignments enumerated at most; above it, the heuristic
EXACT_LIMIT_P_HIT = 2_000  # each P(hit) evaluation sums the units' trials


def _quotas(forecast: Forecast, reps: list[str]) -> np.ndarray | None:
    """Each rep's quota, in ``reps`` order; None when the scenario gives none."""
    given = by_value(forecast.scenario.quotas.get("owner", {}))
    if not given:
        return None
    missing = [rep for rep in reps if rep not in given or given[rep] <= 0]
    if missing:
        raise ScenarioError(
            f"{forecast.scenario.label}: quotas.owner: no positive quota for {', '.join(missing)}"
        )
    return np.array([given[rep] for rep in reps])


class Split:
    """Evaluates assignments of units to reps: per-rep revenue per trial is the sum of its units'."""

    def __init__(self, unit_revenue: np.ndarray, quotas: np.ndarray | None, reps: int, objective: str):
        self.unit_revenue = unit_revenue  # units x trials
        self.expected = unit_revenue.mean(axis=1)
        self.quotas = quotas
        self.objective = objective
        # without quotas, every rep's target is the average rep's expected revenue
        self.targets = np.full(reps, self.expected.sum() / reps) if quotas is None else quotas

    def scores(self, assignment: np.ndarray) -> np.ndarray:
        """Per rep: expected attainment, or P(hit own quota)."""
        reps = len(self.targets)
        if self.objective == "attainment":
            return np.bincount(assignment, weights=self.expected, minlength=reps) / self.targets
        revenue = np.zeros((reps, self.unit_revenue.shape[1]))
        np.add.at(revenue, assignment, self.unit_revenue)
        return np.array([np.mean(reaches(revenue[r], self.targets[r])) for r in range(reps)])

    def spread(self, assignment: np.ndarray) -> float:
        if len(set(assignment.tolist())) < min(len(self.quotas), len(assignment)):
            return math.inf  # a rep without a territory while units remain: not coherent
        score = self.scores(assignment)
        return float(score.max() - score.min())

    def lower_bound(self) -> float:
        """No split beats this (attainment objective; 0 for P(hit)).

        The quota-weighted average attainment lies between the lowest and highest rep, so
        the highest rep is at or above it and the lowest at or below. Each rep can only
        reach the attainments its quota makes of sums of whole units: the range is at least
        the smallest of those at or above the average (over reps) minus the largest at or
        below it. Also, the biggest unit lifts its rep to at least its share.
        """
        if self.objective != "attainment":
            return 0.0
        average = self.expected.sum() / self.targets.sum()
        bound = self.expected.max() / self.targets.max() - average
        if len(self.expected) <= MAX_SUBSET_UNITS:
            near = [_nearest_sums(self.expected, average * quota) for quota in self.targets]
            above = min(up / quota for (_, up), quota in zip(near, self.targets, strict=True))
            below = max(down / quota for (down, _), quota in zip(near, self.targets, strict=True))
            bound = max(bound, above - below)
        return max(0.0, float(bound))


MAX_SUBSET_UNITS = 36  # subset sums met in the middle: 2 x 2**18 sums at most


def _subset_sums(values: np.ndarray) -> np.ndarray:
    sums = np.zeros(1)
    for value in values:
        sums = np.concatenate([sums, sums + value])
    return sums


def _nearest_sums(values: np.ndarray, target: float) -> tuple[float, float]:
    """The largest sum of a subset of ``values`` at or below ``target`` and the smallest at or above it
    (meet in the middle: every sum of each half, one half sorted; +-inf where there is none)."""
    half = len(values) // 2
    left, right = _subset_sums(values[:half]), np.sort(_subset_sums(values[half:]))
    slack = rounding_slack(target)  # a sum equal to the target up to rounding counts on both sides
    at = np.searchsorted(right, target - left + slack, side="right") - 1  # largest right <= target - left
    below = left[at >= 0] + right[at[at >= 0]]
    at = np.searchsorted(right, target - left - slack, side="left")  # smallest right >= target - left
    above = left[at < right.size] + right[at[at < right.size]]
    return (float(below.max()) if below.size else -math.inf, float(above.min()) if above.size else math.inf)


def _exact(split: Split, reps: int) -> np.ndarray:
    best, best_spread = None, math.inf
    for assignment in itertools.product(range(reps), repeat=len(split.expected)):
        candidate = np.array(assignment)
        spread = split.spread(candidate)
        if spread < best_spread - 1e-15:
            best, best_spread = candidate, spread
    return best


def _local_search(split: Split, assignment: np.ndarray, reps: int) -> np.ndarray:
    """Single moves and pairwise swaps while they lower (spread, variance of the scores)."""

    def key(candidate: np.ndarray) -> tuple[float, float]:
        spread = split.spread(candidate)
        return (spread, float(np.var(split.scores(candidate))) if math.isfinite(spread) else math.inf)

    current = key(assignment)
    improved = True
    while improved:
        improved = False
        for unit, rep in itertools.product(range(len(assignment)), range(reps)):
            if assignment[unit] == rep:
                continue
            for other in [None, *np.flatnonzero(assignment == rep)]:
                candidate = assignment.copy()
                candidate[unit] = rep
                if other is not None:
                    candidate[other] = assignment[unit]
                score = key(candidate)
                if score[0] < current[0] - 1e-12 or (
                    score[0] <= current[0] + 1e-12 and score[1] < current[1] - 1e-15
                ):
                    assignment, current, improved = candidate, score, True
                    break
    return assignment


def _heuristic(split: Split, reps: int, restarts: int = 20) -> np.ndarray:
    """Largest unit first to the least-attained rep, then local search; also from seeded random starts."""
    order = np.argsort(-split.expected, kind="stable")
    greedy = np.zeros(len(order), dtype=np.int64)
    load = np.zeros(reps)
    for position, unit in enumerate(order):
        rep = position if position < reps else int(np.argmin(load / split.targets))
        greedy[unit] = rep
        load[rep] += split.expected[unit]
    rng = np.random.default_rng(0)  # fixed: the suggestion is reproducible
    starts = [greedy] + [rng.permutation(np.arange(len(order)) % reps) for _ in range(restarts)]
    found = [_local_search(split, start.astype(np.int64), reps) for start in starts]
    return min(found, key=split.spread)


def _describe(split: Split, reps: list[str], units: list[str], assignment) -> dict:
    scores = split.scores(np.asarray(assignment))
    expected = np.bincount(np.asarray(assignment), weights=split.expected, minlength=len(reps))
    hit = Split(split.unit_revenue, split.quotas, len(reps), "p_hit").scores(np.asarray(assignment))
    attainment = expected / split.targets
    return {
        "reps": [
            {
                "rep": rep,
                "units": [unit for unit, owner in zip(units, assignment, strict=True) if owner == r],
                "quota": float(split.targets[r]),
                "expected": float(expected[r]),
                "attainment": float(attainment[r]),
                "p_hit": float(hit[r]),
            }
            for r, rep in enumerate(reps)
        ],
        "spread": {
            "objective": split.objective,
            "max": float(scores.max()),
            "min": float(scores.min()),
            "range": float(scores.max() - scores.min()),
            "attainment_cv": float(attainment.std() / attainment.mean()) if attainment.mean() else None,
        },
    }


def territories(forecast: Forecast, unit: str | None = None, objective: str | None = None) -> dict[str, Any]:
    """The current split's fairness and a suggested split of whole units (``forecast territories``)."""
    settings = forecast.scenario.territories
    unit = unit or settings.unit
    objective = objective or settings.objective
    deals = forecast.deals
    breakdown = forecast.trials.breakdown
    if "owner" not in breakdown or unit not in breakdown:
        raise ScenarioError(
            f"{forecast.scenario.label}: territories need the simulation broken down by owner and {unit}"
        )
    reps = [rep for rep in breakdown["owner"] if rep]
    units = [value for value in breakdown[unit] if value]
    quotas = _quotas(forecast, reps)
    current_split = Split(np.array([breakdown["owner"][rep] for rep in reps]), quotas, len(reps), objective)
    if not np.all(current_split.targets > 0):
        raise ScenarioError(
            f"{forecast.scenario.label}: no expected revenue to split between reps; give quotas.owner"
        )
    current = _describe(current_split, reps, reps, list(range(len(reps))))
    for row in current["reps"]:
        owned = deals.column("owner") == row["rep"]
        row["units"] = sorted(set(deals.column(unit)[owned]))
        row["open_pipeline"] = float(deals.amount[owned & forecast.model.dated_inside].sum())
    split = Split(np.array([breakdown[unit][value] for value in units]), quotas, len(reps), objective)
    limit = EXACT_LIMIT if objective == "attainment" else EXACT_LIMIT_P_HIT  # P(hit) costs a pass over trials
    exact = len(reps) ** len(units) <= limit
    assignment = _exact(split, len(reps)) if exact else _heuristic(split, len(reps))
    suggested = _describe(split, reps, units, assignment)
    suggested["method"] = "exact" if exact else "heuristic"
    suggested["gap"] = 0.0 if exact else suggested["spread"]["range"] - split.lower_bound()
    if len(units) < len(reps):
        suggested["note"] = (
            f"{len(units)} {unit} values for {len(reps)} reps: some reps cannot own a whole one; "
            "try a finer unit (e.g. sector)"
        )
    return {"unit": unit, "objective": objective, "current": current, "suggested": suggested}
