"""Win within a period by deal age x stage: a discrete-time model of closing, fitted on history.

A deal open far longer than the usual sales cycle almost never closes. For every deal
open at a period's start, history says whether it was won within the period; the chance
is estimated per age bucket (days since creation) and per stage at the start. A thin age
x stage cell is shrunk toward its age bucket's rate by a Beta prior worth
``prior_strength`` deals, and every estimate keeps its counts. The same table, as a
scenario's ``win_by_age``, gives each open deal its rate in ``forecast run``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.scenario import DEFAULT_RATES, WinByAge, age_bucket_labels
from forecast.engine.model import age_bucket
from forecast.history.rates import MIN_DEALS, beta_rate


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
