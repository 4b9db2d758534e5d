"""The deals that matter: what each open deal does to the chance of making the quota.

From the same trials as the forecast: P(hit | the deal lands in the period) and
P(hit | it does not), their difference (the swing), the deal's expected
contribution, and for deals that can slip or land later the gain in P(hit) if it
were accelerated (won means landed: no slip, a later date pulled in)."""

from __future__ import annotations

from typing import Any

import numpy as np

from forecast.engine.kernels import deal_drivers
from forecast.engine.simulate import DealDraws, Forecast
from forecast.engine.summary import hit_threshold, reaches
from forecast.errors import ScenarioError


def quota_target(forecast: Forecast):
    """The quota drivers are measured against: the first revenue target without ``where``."""
    scenario = forecast.scenario
    target = scenario.quota
    if target is None:
        raise ScenarioError(
            f"{scenario.label}: drivers need a revenue target (the quota) to measure deals against"
        )
    return target


def drivers(forecast: Forecast) -> list[dict[str, Any]]:
    """One row per open deal, highest swing first (ties: higher acceleration gain, then id)."""
    scenario, deals, model = forecast.scenario, forecast.deals, forecast.model
    target = quota_target(forecast)
    draws = DealDraws.of(scenario, deals, model, forecast.seed, forecast.n_trials)
    n = len(deals)
    landed = np.zeros(n, dtype=np.int64)
    landed_hits = np.zeros(n, dtype=np.int64)
    landed_value = np.zeros(n)
    rescued = np.zeros(n, dtype=np.int64)
    revenue = forecast.trials.revenue
    deal_drivers(
        draws.starts, draws.win_threshold, draws.land_threshold, draws.value, draws.noise_base,
        draws.noise_slope, draws.correlation, revenue, hit_threshold(target.at_least),
        landed, landed_hits, landed_value, rescued,
    )  # fmt: skip
    trials = forecast.n_trials
    hits = int(np.sum(reaches(revenue, target.at_least)))
    rows = []
    for d in range(n):
        if_won = landed_hits[d] / landed[d] if landed[d] else None
        if_lost = (hits - landed_hits[d]) / (trials - landed[d]) if landed[d] < trials else None
        slip_prone = model.win_rate[d] > 0 and model.land_rate[d] < 1
        swing_stderr = (
            None if if_won is None or if_lost is None
            else _difference_stderr(if_won, int(landed[d]), if_lost, trials - int(landed[d]))
        )  # fmt: skip
        rows.append(
            {
                "deal_id": str(deals.deal_id[d]),
                "owner": str(deals.attributes["owner"][d]) if "owner" in deals.attributes else None,
                "stage": str(deals.attributes["stage"][d]) if "stage" in deals.attributes else None,
                "amount": float(deals.amount[d]),
                "close_date": str(deals.close_date[d]),
                "p_landed": float(landed[d] / trials),
                "p_hit_if_won": None if if_won is None else float(if_won),
                "p_hit_if_lost": None if if_lost is None else float(if_lost),
                "swing": None if if_won is None or if_lost is None else float(if_won - if_lost),
                "swing_stderr": swing_stderr,
                "expected_contribution": float(landed_value[d] / trials),
                "acceleration_gain": float(rescued[d] / trials) if slip_prone else None,
            }
        )
    rows.sort(key=lambda row: (-(row["swing"] or 0.0), -(row["acceleration_gain"] or 0.0), row["deal_id"]))
    return rows


def _difference_stderr(p_a: float, n_a: int, p_b: float, n_b: int) -> float:
    """Monte Carlo standard error of a difference of two proportions from disjoint sets of trials.

    Zero when both are 0 or 1 (no trial disagrees); then 1 / n is the honest floor.
    """
    variance = p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b
    return float(max(np.sqrt(variance), 1.0 / (n_a + n_b)))
