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


def shortfall(values: np.ndarray, at_least: float) -> tuple[float, float]:
    """Mean gap to the target in the trials that miss it (0 if none do), and the gap at P10."""
    missed = ~reaches(values, at_least)
    expected = float(np.mean(at_least - values[missed])) if missed.any() else 0.0
    return expected, max(0.0, at_least - float(np.percentile(values, 10)))


def paired_difference(plan: np.ndarray, base: np.ndarray) -> dict[str, Any]:
    """Mean of per-trial differences with its standard error and 95 % interval.

    Trials are paired (same random numbers), so the interval is that of the
    difference itself, much narrower than from two independent runs.
    """
    difference = plan.astype(np.float64) - base.astype(np.float64)
    estimate = float(np.mean(difference))
    stderr = (
        float(np.std(difference, ddof=1) / math.sqrt(difference.size)) if difference.size > 1 else math.nan
    )
    return {
        "estimate": estimate,
        "stderr": stderr,
        "ci95": [estimate - 1.96 * stderr, estimate + 1.96 * stderr],
    }


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, standard deviation and the reported percentiles."""
    quantiles = np.percentile(values, PERCENTILES)
    out = {"mean": float(np.mean(values)), "std": float(np.std(values))}
    out.update({f"p{level}": float(q) for level, q in zip(PERCENTILES, quantiles, strict=True)})
    return out


def all_targets_hit(forecast: Forecast) -> np.ndarray | None:
    """Per trial: every target reached (None without targets)."""
    targets = forecast.scenario.targets
    if not targets:
        return None
    return np.logical_and.reduce([reaches(forecast.trials.targets[t.name], t.at_least) for t in targets])


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
    for target in scenario.targets:
        hit = reaches(trials.targets[target.name], target.at_least)
        p, stderr = probability(hit)
        expected_shortfall, gap_at_p10 = shortfall(trials.targets[target.name], target.at_least)
        targets.append(
            {
                "name": target.name,
                "metric": target.metric,
                "at_least": target.at_least,
                "where": target.where or None,
                "probability": p,
                "stderr": stderr,
                "expected_shortfall": expected_shortfall,
                "gap_at_p10": gap_at_p10,
            }
        )
    all_hit = all_targets_hit(forecast)
    p_all, p_all_stderr = (None, None) if all_hit is None else probability(all_hit)

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
        "revenue_split": {
            "booked": booked.revenue,
            "open_pipeline": float(np.mean(trials.revenue - trials.new_pipeline)) - booked.revenue,
            "new_pipeline": float(np.mean(trials.new_pipeline)),
        },
        "slipped_revenue": {"mean": float(np.mean(trials.slipped))},
        "new_logos": {"mean": float(np.mean(trials.new_logos))},
        "targets": targets,
        "p_all_targets": p_all,
        "p_all_targets_stderr": p_all_stderr,
    }
