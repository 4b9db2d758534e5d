"""Territories: how fair the current split is, and a fairer one made of whole units.

A unit is a value of one column (a region, a sector); a suggested territory is a
set of whole units, so no rep ends up with a random mix. The split minimises the
spread (max - min) of expected attainment, or of P(hit own quota), across reps, and
is suggested only when it is fairer than today's split, scored on the same trials.
Small instances are solved exactly by enumeration; larger ones by a greedy start
and local search, with the gap to a lower bound stated."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.engine.simulate import Forecast
from forecast.engine.summary import reaches, rounding_slack
from forecast.errors import PipelineError, ScenarioError
from forecast.inputs.deals import by_value

EXACT_LIMIT = 200_000  # assignments enumerated at most; above it, the heuristic
EXACT_LIMIT_P_HIT = 2_000  # each P(hit) evaluation sums the units' trials
TIE = 1e-9  # ranges closer than this are equally fair (rounding in the sums)


def _targets(forecast: Forecast, reps: list[str], expected: np.ndarray) -> np.ndarray:
    """Each rep's quota, in ``reps`` order; without owner quotas, every rep's target is the
    average rep's expected revenue (``expected``: each rep's today)."""
    given = by_value(forecast.scenario.quotas.get("owner", {}))
    if not given:
        average = expected.sum() / len(reps)
        if not average > 0:
            raise ScenarioError(
                f"{forecast.scenario.label}: no expected revenue to split between reps; give quotas.owner"
            )
        return np.full(len(reps), average)
    missing = [rep for rep in reps if rep not in given or given[rep] <= 0]
    if missing:
        raise ScenarioError(
            f"{forecast.scenario.label}: quotas.owner: no positive quota for {', '.join(missing)}"
        )
    return np.array([given[rep] for rep in reps])


def _check_assigned(forecast: Forecast, columns: tuple[str, str]) -> None:
    """Refuse deals without an owner or a unit: each would count in one split and not the other."""
    deals = forecast.deals
    headers = {canonical: header for header, canonical in deals.aliases.items()}
    problems = []
    for column in columns:
        blank = np.flatnonzero(deals.column(column) == "")
        if blank.size:
            listed = ", ".join(f"{deals.deal_id[i]} (row {deals.rows[i]})" for i in blank[:5])
            more = f" and {blank.size - 5} more" if blank.size > 5 else ""
            problems.append(
                f"{deals.source or 'pipeline'}: deals with no {headers.get(column, column)}: {listed}{more}; "
                f"territories compare splits of the same deals: every deal needs an owner and a {columns[1]}"
            )
    if problems:
        raise PipelineError(problems)


class Split:
    """Revenue per trial of each holder (a unit, or a rep today) against the reps' targets;
    an assignment gives each holder to a rep, who gets the sum of its holders' revenue."""

    def __init__(self, revenue: np.ndarray, targets: np.ndarray, objective: str):
        self.revenue = revenue  # holders x trials
        self.expected = revenue.mean(axis=1)
        self.targets = targets
        self.objective = objective

    @property
    def reps(self) -> int:
        return len(self.targets)

    def scores(self, assignment: np.ndarray) -> np.ndarray:
        """Per rep: expected attainment, or P(hit own quota)."""
        if self.objective == "attainment":
            return np.bincount(assignment, weights=self.expected, minlength=self.reps) / self.targets
        return np.array(
            [
                np.mean(reaches(self.revenue[assignment == r].sum(axis=0), self.targets[r]))
                for r in range(self.reps)
            ]
        )

    def spread(self, assignment: np.ndarray) -> float:
        """Range of the scores; infinite when a rep has nothing while units remain to give
        (with fewer units than reps: when a rep holds two)."""
        if len(set(assignment.tolist())) < min(self.reps, len(assignment)):
            return math.inf
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


def _exact(split: Split) -> np.ndarray:
    best, best_spread = None, math.inf
    for assignment in itertools.product(range(split.reps), repeat=len(split.expected)):
        candidate = np.array(assignment)
        spread = split.spread(candidate)
        if spread < best_spread - 1e-15:
            best, best_spread = candidate, spread
    return best


def _local_search(split: Split, assignment: np.ndarray) -> np.ndarray:
    """Single moves and pairwise swaps while they lower (spread, variance of the scores)."""

    def key(candidate: np.ndarray) -> tuple[float, float]:
        spread = split.spread(candidate)
        return (spread, float(np.var(split.scores(candidate))) if math.isfinite(spread) else math.inf)

    current = key(assignment)
    improved = True
    while improved:
        improved = False
        for unit, rep in itertools.product(range(len(assignment)), range(split.reps)):
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


def _heuristic(split: Split, restarts: int = 20) -> np.ndarray:
    """Largest unit first to the least-attained rep, then local search; also from seeded random starts."""
    reps = split.reps
    order = np.argsort(-split.expected, kind="stable")
    greedy = np.zeros(len(order), dtype=np.int64)
    load = np.zeros(reps)
    for position, unit in enumerate(order):
        rep = position if position < reps else int(np.argmin(load / split.targets))
        greedy[unit] = rep
        load[rep] += split.expected[unit]
    rng = np.random.default_rng(0)  # fixed: the suggestion is reproducible
    starts = [greedy] + [rng.permutation(np.arange(len(order)) % reps) for _ in range(restarts)]
    found = [_local_search(split, start.astype(np.int64)) for start in starts]
    return min(found, key=split.spread)


@dataclass(frozen=True)
class Search:
    """The fairest split of whole units found, against today's range on the same objective."""

    assignment: np.ndarray
    best_range: float
    current_range: float
    method: str  # "exact" or "heuristic"
    lower_bound: float  # no split of whole units has a smaller range (the optimum itself when exact)

    @property
    def fairer(self) -> bool:
        """The split found beats today's: only then is it suggested."""
        return self.best_range < self.current_range - TIE

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "best_range": self.best_range,
            "current_range": self.current_range,
            "lower_bound": self.lower_bound,
            "gap": self.best_range - self.lower_bound,
            "fairer": self.fairer,
            "no_fairer_split": not self.fairer and self.lower_bound >= self.current_range - TIE,
        }


def search(whole: Split, current_range: float) -> Search:
    """Exact enumeration when the assignments are few enough, else the heuristic."""
    limit = (
        EXACT_LIMIT if whole.objective == "attainment" else EXACT_LIMIT_P_HIT
    )  # P(hit): a pass over trials
    exact = whole.reps ** len(whole.expected) <= limit
    assignment = _exact(whole) if exact else _heuristic(whole)
    best = whole.spread(assignment)
    return Search(
        assignment=assignment,
        best_range=best,
        current_range=current_range,
        method="exact" if exact else "heuristic",
        lower_bound=best if exact else whole.lower_bound(),
    )


def _describe(
    split: Split, assignment: np.ndarray, reps: list[str], rep_units: list[list[str]], pipeline: np.ndarray
) -> dict:
    """Each rep's units, quota, open pipeline, expected revenue, attainment and P(hit) under
    ``assignment`` (``pipeline``: each holder's open pipeline), and the spread across reps."""
    scores = split.scores(assignment)
    expected = np.bincount(assignment, weights=split.expected, minlength=split.reps)
    open_pipeline = np.bincount(assignment, weights=pipeline, minlength=split.reps)
    hit = Split(split.revenue, split.targets, "p_hit").scores(assignment)
    attainment = expected / split.targets
    return {
        "reps": [
            {
                "rep": rep,
                "units": rep_units[r],
                "quota": float(split.targets[r]),
                "open_pipeline": float(open_pipeline[r]),
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
    """The current split's fairness and, when one is fairer, a split of whole units.

    ``search`` compares the fairest split of whole units found with today's, on the same
    objective and trials; ``suggested`` is that split when it is fairer, else None.
    """
    settings = forecast.scenario.territories
    unit = unit or settings.unit
    objective = objective or settings.objective
    deals = forecast.deals
    breakdown = forecast.trials.breakdown
    if "owner" not in breakdown or unit not in breakdown:
        raise ScenarioError(
            f"{forecast.scenario.label}: territories need the simulation broken down by owner and {unit}"
        )
    _check_assigned(forecast, ("owner", unit))
    reps, units = list(breakdown["owner"]), list(breakdown[unit])
    today = np.array([breakdown["owner"][rep] for rep in reps])
    targets = _targets(forecast, reps, today.mean(axis=1))
    current_split = Split(today, targets, objective)
    whole = Split(np.array([breakdown[unit][value] for value in units]), targets, objective)
    owner, of_unit = deals.column("owner"), deals.column(unit)
    open_amount = np.where(forecast.model.dated_inside, deals.amount, 0.0)
    today_assignment = np.arange(len(reps))
    current = _describe(
        current_split,
        today_assignment,
        reps,
        [sorted(set(of_unit[owner == rep])) for rep in reps],
        np.array([open_amount[owner == rep].sum() for rep in reps]),
    )
    found = search(whole, current_split.spread(today_assignment))
    result = {
        "unit": unit,
        "objective": objective,
        "current": current,
        "search": found.as_dict(),
        "suggested": None,
    }
    if found.fairer:
        result["suggested"] = _describe(
            whole,
            found.assignment,
            reps,
            [
                [value for value, owner in zip(units, found.assignment, strict=True) if owner == r]
                for r in range(len(reps))
            ],
            np.array([open_amount[of_unit == value].sum() for value in units]),
        )
    if len(units) < len(reps):
        result["note"] = (
            f"{len(units)} {unit} values for {len(reps)} reps: some reps cannot own a whole one; "
            f"try a unit with at least {len(reps)} values"
        )
    return result
