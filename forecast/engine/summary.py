"""From per-trial results to the numbers people read: percentiles, P(targets), errors."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from forecast.engine.booked import row_rules, value_part
from forecast.engine.model import overdue_deals, rate_overrides
from forecast.inputs.deals import by_value

if TYPE_CHECKING:  # the simulation modules import numba, which the terminal's use of this one does not need
    from forecast.engine.simulate import Forecast

PERCENTILES = (5, 10, 25, 50, 75, 90, 95)
_RELATIVE_TOLERANCE = 1e-9  # sums of haircut amounts are not exact in float64


def rounding_slack(at_least: float) -> float:
    """How far below a target a sum may fall by float rounding alone and still count as reaching it:
    1e-9 of the target, the worst-case rounding of a float64 sum of millions of amounts."""
    return _RELATIVE_TOLERANCE * max(1.0, abs(at_least))


def hit_threshold(at_least: float) -> float:
    """The least value that reaches a target: the one rule behind every target figure (P(hit),
    shortfall, gap at P10, drivers, compare, territories)."""
    return at_least - rounding_slack(at_least)


def reaches(values: np.ndarray, at_least: float) -> np.ndarray:
    """Trials in which a metric reaches its target (rounding-safe ``>=``)."""
    return np.asarray(values) >= hit_threshold(at_least)


def gaps(values: np.ndarray, at_least: float) -> np.ndarray:
    """Per trial, how far a metric falls short of its target: 0 wherever it ``reaches`` it."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(reaches(values, at_least), 0.0, at_least - values)


def probability(hit: np.ndarray) -> tuple[float, float]:
    """Share of trials that hit, and its Monte Carlo standard error."""
    p = float(np.mean(hit))
    return p, math.sqrt(p * (1.0 - p) / hit.size)


def shortfall(values: np.ndarray, at_least: float) -> tuple[float, float]:
    """Mean gap to the target in the trials that miss it (0 if none do), and the gap of the P10.

    Both are ``gaps``: P(hit) is 1 exactly when the shortfall is 0, and then the gap at P10 is 0.
    """
    gap = gaps(values, at_least)
    missed = gap > 0
    expected = float(np.mean(gap[missed])) if missed.any() else 0.0
    return expected, float(gaps(np.percentile(values, 10), at_least))


def paired_difference(plan: np.ndarray, base: np.ndarray) -> dict[str, Any]:
    """Mean of per-trial differences with its standard error and 95 % interval.

    Trials are paired (same random numbers), so the interval is that of the
    difference itself, much narrower than from two independent runs.
    """
    difference = plan.astype(np.float64) - base.astype(np.float64)
    estimate = float(np.mean(difference))
    if difference.size < 2:  # no spread to estimate from one trial
        return {"estimate": estimate, "stderr": None, "ci95": None}
    stderr = float(np.std(difference, ddof=1) / math.sqrt(difference.size))
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


CLOSED = "closed"  # Salesforce forecast categories, compared as normalised lower case
COMMIT = "commit"
BEST_CASE = "best case"


def _judgement(forecast: Forecast, mask: np.ndarray, booked: float) -> dict[str, float] | None:
    """Commit and best-case sums of the deals in ``mask`` dated in the period (None without categories)."""
    deals = forecast.deals
    if "forecast_category" not in deals.attributes:
        return None
    category = np.char.lower(deals.attributes["forecast_category"].astype(str))
    inside = mask & forecast.model.dated_inside
    value = forecast.model.value  # after haircut, as the simulated revenue is
    commit = booked + float(value[inside & ((category == COMMIT) | (category == CLOSED))].sum())
    return {"commit": commit, "best_case": commit + float(value[inside & (category == BEST_CASE)].sum())}


def _with_percentiles(judgement: dict[str, float] | None, values: np.ndarray) -> dict[str, float] | None:
    """Where each judgement sum falls in the simulated distribution (share of trials at or below it)."""
    if judgement is None:
        return None
    return {
        **judgement,
        **{f"{key}_percentile": float(np.mean(values <= value)) for key, value in judgement.items()},
    }


def breakdown(forecast: Forecast) -> dict[str, list[dict[str, Any]]]:
    """Per value of each breakdown column: its quota, distribution, P(hit) and judgement sums.

    The rows are the revenue of the open deals with that value and of its won rows booked in
    the period (the scenario's ``booked`` and the new pipeline are the team's, not a rep's),
    from the same trials as the total.
    """
    out = {}
    scenario = forecast.scenario
    for column, per_value in forecast.trials.breakdown.items():
        quotas = by_value(scenario.quotas.get(column, {}))
        rows = []
        for value, revenue in per_value.items():
            quota = quotas.get(value)
            p_hit = probability(reaches(revenue, quota)) if quota is not None else (None, None)
            mask = forecast.breakdown_deals[column][value]
            rows.append(
                {
                    "name": value,
                    "quota": quota,
                    "revenue": distribution(revenue),
                    "probability": p_hit[0],
                    "stderr": p_hit[1],
                    "judgement": _with_percentiles(
                        _judgement(forecast, mask, value_part(forecast.booked, column, value)), revenue
                    ),
                }
            )
        out[column] = rows
    return out


def implied_outcome_correlation(win_rate: float, latent: float) -> float:
    """Correlation between two deals' win indicators for a latent correlation (bivariate normal)."""
    from scipy import integrate
    from scipy.special import ndtr, ndtri

    if latent == 0 or win_rate in (0.0, 1.0):
        return 0.0
    threshold = ndtri(win_rate)

    def both_win(z: float) -> float:  # given the shared factor, the two deals win independently
        conditional = ndtr((threshold - np.sqrt(latent) * z) / np.sqrt(1 - latent))
        return conditional * conditional * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)

    both = integrate.quad(both_win, -12, 12, limit=200, epsabs=1e-13)[0]
    return float((both - win_rate**2) / (win_rate * (1 - win_rate)))


def correlation_effect(forecast: Forecast) -> dict[str, Any] | None:
    """What correlation does: implied outcome correlations and the P10-P90 width with and without it.

    The width without it is that of the same trials with independent deals, which
    ``simulate(..., independent=True)`` keeps on the forecast (None if it was not asked for).
    """
    from forecast.engine.correlation import correlated  # loaded already: simulate imports it

    correlation = forecast.scenario.correlation
    if not correlated(forecast.scenario):
        return None
    win_rate = float(np.mean(forecast.model.win_rate))
    independent = forecast.independent_revenue

    def width(values: np.ndarray) -> float:
        p10, p90 = np.percentile(values, [10, 90])
        return float(p90 - p10)

    return {
        "latent": {"market": correlation.market, "by": correlation.by},
        "implied_outcome_correlation": {
            "at_win_rate": win_rate,
            "market": implied_outcome_correlation(win_rate, correlation.market),
            "by": {
                column: implied_outcome_correlation(win_rate, correlation.market + rho)
                for column, rho in correlation.by.items()
            },
        },
        "p10_p90_width": width(forecast.trials.revenue),
        "independent_p10_p90_width": None if independent is None else width(independent),
    }


def rate_uncertainty(forecast: Forecast) -> dict[str, int] | None:
    """How many deals, in how many rate cells, have their rate drawn per trial from its evidence
    (None when every rate is known): said once beside the results, since it widens them."""
    drawn = forecast.model.rate_deals > 0
    if not drawn.any():
        return None
    return {"deals": int(drawn.sum()), "cells": int(np.unique(forecast.model.rate_cell[drawn]).size)}


def summarize(forecast: Forecast) -> dict[str, Any]:
    """The result of ``forecast run --json`` for one scenario; it reads the forecast and never simulates."""
    scenario = forecast.scenario
    deals = forecast.deals
    model = forecast.model
    trials = forecast.trials
    booked = forecast.booked
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

    revenue_target = scenario.quota
    still_needed = revenue_target.at_least - booked.revenue if revenue_target else 0.0
    coverage = open_in_period / still_needed if still_needed > 0 else None

    return {
        "scenario": scenario.label,
        "file": str(scenario.source) if scenario.source else None,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "as_of": scenario.snapshot_date.isoformat(),
        "currency": deals.rules.currency,  # every amount's currency (None: the export does not say)
        "trials": forecast.n_trials,
        "seed": forecast.seed,
        "booked": booked.revenue,
        "booked_new_logos": booked.new_logos,
        "booked_deals": booked.deals,
        "rows": row_rules(scenario, deals),
        "rate_overrides": rate_overrides(scenario, deals),
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
        "judgement": _with_percentiles(
            _judgement(forecast, np.ones(len(deals), dtype=bool), booked.revenue), trials.revenue
        ),
        "breakdown": breakdown(forecast),
        "correlation": correlation_effect(forecast),
        "rate_uncertainty": rate_uncertainty(forecast),
        "p_all_targets": p_all,
        "p_all_targets_stderr": p_all_stderr,
    }
