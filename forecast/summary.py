"""From per-trial results to the numbers people read: percentiles, P(targets), errors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecast.simulate import Forecast, overdue_deals

PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
_RELATIVE_TOLERANCE = 1e-9  # sums of haircut amounts are not exact in float64


def reaches(values: np.ndarray, at_least: float) -> np.ndarray:
    """Trials in which a metric reaches its target (rounding-safe ``>=``)."""
    return values >= at_least - _RELATIVE_TOLERANCE * max(1.0, abs(at_least))


def probability(hit: np.ndarray) -> tuple[float, float]:
    """Share of trials that hit, and its Monte Carlo standard error."""
    p = float(np.mean(hit))
    return p, math.sqrt(p * (1.0 - p) / hit.size)


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and the reported percentiles."""
    quantiles = np.percentile(values, PERCENTILES)
    out = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    out.update({f"p{level}": float(q) for level, q in zip(PERCENTILES, quantiles, strict=True)})
    return out


def summarize(forecast: Forecast) -> dict[str, Any]:
    """The result of ``forecast run --json`` for one scenario."""
    scenario = forecast.scenario
    deals = forecast.deals
    model = forecast.model
    trials = forecast.trials
    booked = scenario.booked_totals
    period = scenario.period_range
    inside = model.dated_inside
    open_in_period = float(deals.amount[inside].sum())
    weighted = float((deals.amount * model.win_rate)[inside].sum())

    targets = []
    all_hit = np.ones(forecast.n_trials, dtype=bool)
    for target in scenario.targets:
        hit = reaches(trials.targets[target.name], target.at_least)
        all_hit &= hit
        p, stderr = probability(hit)
        targets.append(
            {
                "name": target.name,
                "metric": target.metric,
                "at_least": target.at_least,
                "where": target.where or None,
                "probability": p,
                "stderr": stderr,
            }
        )
    p_all, p_all_stderr = probability(all_hit) if targets else (None, None)

    revenue_target = next((t for t in scenario.targets if t.metric == "revenue" and not t.where), None)
    still_needed = revenue_target.at_least - booked.revenue if revenue_target else 0.0
    coverage = open_in_period / still_needed if still_needed > 0 else None

    return {
        "scenario": scenario.label,
        "file": str(scenario.source) if scenario.source else None,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "as_of": scenario.snapshot_date.isoformat(),
        "trials": forecast.n_trials,
        "seed": forecast.seed,
        "booked": booked.revenue,
        "booked_new_logos": booked.new_logos,
        "open_deals": len(deals),
        "open_pipeline": open_in_period,
        "weighted_pipeline": weighted,
        "coverage": coverage,
        "overdue_deals": int(overdue_deals(scenario, deals).sum()),
        "revenue": distribution(trials.revenue),
        "slipped_revenue": {"mean": float(np.mean(trials.slipped))},
        "new_logos": {"mean": float(np.mean(trials.new_logos))},
        "targets": targets,
        "p_all_targets": p_all,
        "p_all_targets_stderr": p_all_stderr,
    }
