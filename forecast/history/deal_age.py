"""Win within a period by deal age x stage, fitted on history: counts at period starts, and a survival
curve for the ages they barely see.

A deal open far longer than the usual sales cycle almost never closes. For every deal open at a
period's start, history says whether it was won within the period (a landmark count). Per age
bucket (days since creation) that count is shrunk toward the survival curve's chance for the
bucket (``survival``: daily win and loss chances by age, fitted on every deal's days open, with a
tail that holds past the oldest ages seen) by a Beta prior worth as many deals as the history
shows the curve is worth: the strength that best explains the buckets' counts around the curve
(beta-binomial marginal likelihood). Where the counts scatter around the curve no more than chance
allows, the curve counts for thousands of deals; where they depart from it, the counts decide. A
bucket seen on few deals or none gets the curve, never the overall rate. Each age x stage cell
(stage at the period's start) is shrunk toward its bucket's rate by ``prior_strength`` deals. With
``half_life_days`` recent outcomes count more. Every estimate keeps its counts; the table, as a
scenario's ``win_by_age``, gives each open deal its rate in ``forecast run``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.scenario import DEFAULT_RATES, QUARTER_DAYS, WinByAge, age_bucket_labels
from forecast.engine.model import age_bucket
from forecast.history.rates import beta_rate, recency_weights
from forecast.history.survival import Lifetimes, fit_hazards


@dataclass
class Exposures:
    """One entry per deal open at a period's start: its age and stage then, and whether it was won
    within the period; and every dated deal's days open over the periods, for the survival curve."""

    age: np.ndarray  # int64, days since creation
    stage: np.ndarray  # str objects, '' where unknown
    won: np.ndarray  # bool
    periods: int
    days_before: np.ndarray  # int64: days from the entry's period end to the last period's end
    lifetimes: Lifetimes  # as known at the last period's end


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
    """What each period's open deals did within it; ``stage_on(day)``: every deal's stage that day.

    Only outcomes known by the last period's end are used: a later close counts as still open.
    """
    ages, stages, wins = [np.zeros(0, np.int64)], [np.zeros(0, object)], [np.zeros(0, bool)]
    ends = [np.zeros(0, "datetime64[D]")]
    for start, end in periods:
        open_now = open_at(created, closed, start)
        ages.append((start - created[open_now]).astype(np.int64))
        stages.append(np.asarray(stage_on(start - 1), dtype=object)[open_now])  # as the period begins
        wins.append((won & (closed >= start) & (closed <= end))[open_now])
        ends.append(np.full(int(open_now.sum()), end))
    last = periods[-1][1] if periods else np.datetime64("NaT", "D")
    window = (periods[0][0], last) if periods else (last, last)
    return Exposures(
        np.concatenate(ages), np.concatenate(stages), np.concatenate(wins), len(periods),
        days_before=(last - np.concatenate(ends)).astype(np.int64),
        lifetimes=Lifetimes.of(created, closed, won, *window),
    )  # fmt: skip


def _stage_groups(stages: np.ndarray) -> dict[str, np.ndarray]:
    """Stage -> mask of entries in it; names compare as stages do (first spelling kept)."""
    keys = np.array([stage_key(stage) for stage in stages], dtype=object)
    names: dict[str, str] = {}
    for stage, key in zip(stages, keys, strict=True):
        if key:
            names.setdefault(key, stage)
    return {names[key]: keys == key for key in sorted(names)}


def _counted(
    won: np.ndarray, weight: np.ndarray | None, cell: np.ndarray, prior_rate: float = 0.5, strength: float = 2
) -> dict[str, Any]:
    """A cell's Beta posterior from its counts, recency weighted unless ``weight`` is None: ``wins``
    and ``deals`` as counted, and with weights ``weighted_wins`` and ``weighted_deals``, the evidence."""
    counts = {"wins": int((cell & won).sum()), "deals": int(cell.sum())}
    if weight is None:
        return beta_rate(counts["wins"], counts["deals"], prior_rate, strength)
    estimate = beta_rate(float(weight[cell & won].sum()), float(weight[cell].sum()), prior_rate, strength)
    return {**estimate, **counts, "weighted_wins": estimate["wins"], "weighted_deals": estimate["deals"]}


CURVE_STRENGTHS = np.logspace(0, 4, 41)  # deals a bucket's prior at the survival curve may be worth


def curve_strength(wins: np.ndarray, deals: np.ndarray, curve: np.ndarray) -> float:
    """The worth, in deals, of the survival curve as the buckets' prior: the one of ``CURVE_STRENGTHS``
    under which the buckets' (weighted) counts are likeliest, each Beta-binomial around its curve rate."""
    from scipy.special import betaln

    rate = np.clip(np.asarray(curve, dtype=np.float64), 1e-9, 1 - 1e-9)[None, :]
    strength = CURVE_STRENGTHS[:, None]
    a, b = strength * rate, strength * (1 - rate)
    likelihood = np.sum(betaln(a + wins, b + deals - wins) - betaln(a, b), axis=1)
    return float(CURVE_STRENGTHS[int(np.argmax(likelihood))])


def fit_win_by_age(
    exposure: Exposures,
    edges: list[int],
    prior_strength: float,
    *,
    half_life_days: float | None = None,
    horizon_days: float = QUARTER_DAYS,
) -> dict[str, Any]:
    """Win-within-period rates by age bucket, and by age x stage shrunk toward the bucket's rate.

    A bucket's rate is its count at period starts shrunk toward the survival curve's chance of a
    win within ``horizon_days`` (the periods' length) by ``curve_strength`` deals; with no day at
    risk to fit the curve on, toward the overall rate, and it says so. ``prior_strength``: the
    deals' worth of a cell's prior at its bucket's rate, and of a survival bin's at its neighbours'.
    ``half_life_days``: an outcome counts half as much every that many days before the last
    period's end (None: all alike). With no edges, the one bucket is the overall rate and the
    stage rows are rates by stage alone.
    """
    labels = age_bucket_labels(edges)
    bucket = age_bucket(exposure.age, edges)
    weight = None if half_life_days is None else recency_weights(exposure.days_before, half_life_days)
    counted = np.ones(exposure.won.size) if weight is None else weight
    everyone = np.ones(exposure.won.size, bool)
    overall = _counted(exposure.won, weight, everyone)
    hazards = fit_hazards(exposure.lifetimes, prior_strength, half_life_days)
    curve = hazards.bucket_rates(edges, horizon_days) if hazards else [overall["win_rate"]] * len(labels)
    wins = np.bincount(bucket, counted * exposure.won, len(labels))
    strength = curve_strength(wins, np.bincount(bucket, counted, len(labels)), np.array(curve))
    by_age = []
    for b, label in enumerate(labels):
        cell = _counted(exposure.won, weight, bucket == b, curve[b], strength)
        note = {} if hazards else {"note": "no day at risk to fit the survival curve: overall rate as prior"}
        by_age.append({"age": label, **cell, "curve_rate": curve[b], **note})
    stages = {}
    for name, in_stage in _stage_groups(exposure.stage).items():
        stages[name] = [
            {"age": label, **_counted(exposure.won, weight, in_stage & (bucket == b), by_age[b]["win_rate"],
                                      prior_strength)}
            for b, label in enumerate(labels)
        ]  # fmt: skip
    return {"buckets_days": list(edges), "periods": exposure.periods, "prior_strength": prior_strength,
            "half_life_days": half_life_days, "horizon_days": horizon_days, "curve_strength": strength,
            "overall": overall, "by_age": by_age, "stages": stages,
            "survival": hazards.report() if hazards else None}  # fmt: skip


def win_by_age(fit: dict[str, Any], by_stage: bool = True) -> WinByAge:
    """The fitted rates as a scenario's ``win_by_age`` (``by_stage=False``: by age alone)."""
    rates = {DEFAULT_RATES: [round(cell["win_rate"], 6) for cell in fit["by_age"]]}
    if by_stage:
        rates |= {name: [round(cell["win_rate"], 6) for cell in row] for name, row in fit["stages"].items()}
    return WinByAge(buckets_days=fit["buckets_days"], rates=rates, period_days=fit["horizon_days"])
