"""The deals that matter: what each open deal does to the chance of making the quota.

From the same trials as the forecast. Deals are ranked by what is at stake on each:
the points of P(hit) lost were the deal lost (or slipped out of the period), the
other deals' draws unchanged. That is zero for a deal that cannot land in the
period and at most its chance to land, so the ranking is of deals in play now.
Beside it: P(hit | the deal lands) and P(hit | it does not) and their difference
(the swing), the deal's expected contribution, and for deals that can slip or land
later the gain in P(hit) were it accelerated (won means landed: no slip, a later
date pulled in)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecast.engine.kernels import deal_drivers
from forecast.engine.simulate import Forecast
from forecast.engine.summary import hit_threshold, reaches
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals

TOP_DEALS = 5  # the most deals named as the ones that matter
MIN_STAKE = 0.01  # a deal whose loss costs less than a point of P(hit) is not named
SEPARATION = 2.0  # standard errors between the last named deal's stake and the next one's
ACCOUNT_COLUMNS = ("account", "account_name", "company")  # export headers naming the customer


def quota_target(forecast: Forecast):
    """The quota drivers are measured against: the first revenue target without ``where``."""
    scenario = forecast.scenario
    target = scenario.quota
    if target is None:
        raise ScenarioError(
            f"{scenario.label}: drivers need a revenue target (the quota) to measure deals against"
        )
    return target


def account_column(deals: Deals) -> str | None:
    """The pipeline column naming each deal's customer (Account, Account Name, Company), if any."""
    by_name = {name.strip().replace(" ", "_").casefold(): name for name in deals.attributes}
    return next((by_name[name] for name in ACCOUNT_COLUMNS if name in by_name), None)


def drivers(forecast: Forecast) -> list[dict[str, Any]]:
    """One row per open deal, most at stake first (ties: higher acceleration gain, then id)."""
    deals, model, draws = forecast.deals, forecast.model, forecast.draws
    target = quota_target(forecast)
    n = len(deals)
    landed = np.zeros(n, dtype=np.int64)
    landed_hits = np.zeros(n, dtype=np.int64)
    landed_value = np.zeros(n)
    rescued = np.zeros(n, dtype=np.int64)
    pivotal = np.zeros(n, dtype=np.int64)
    revenue = forecast.trials.revenue
    deal_drivers(
        draws.starts, draws.win_threshold, draws.land_threshold, draws.value, draws.noise_base,
        draws.noise_slope, draws.correlation, revenue, hit_threshold(target.at_least),
        landed, landed_hits, landed_value, rescued, pivotal,
    )  # fmt: skip
    trials = forecast.n_trials
    hits = int(np.sum(reaches(revenue, target.at_least)))
    account = account_column(deals)
    rows = []
    for d in range(n):
        if_won = landed_hits[d] / landed[d] if landed[d] else None
        if_lost = (hits - landed_hits[d]) / (trials - landed[d]) if landed[d] < trials else None
        slip_prone = model.win_rate[d] > 0 and model.land_rate[d] < 1
        swing_stderr = (
            None if if_won is None or if_lost is None
            else _difference_stderr(if_won, int(landed[d]), if_lost, trials - int(landed[d]))
        )  # fmt: skip
        stake = pivotal[d] / trials
        rows.append(
            {
                "deal_id": str(deals.deal_id[d]),
                "account": None if account is None else str(deals.attributes[account][d]),
                "owner": str(deals.attributes["owner"][d]) if "owner" in deals.attributes else None,
                "stage": str(deals.attributes["stage"][d]) if "stage" in deals.attributes else None,
                "amount": float(deals.amount[d]),
                "close_date": str(deals.close_date[d]),
                "p_landed": float(landed[d] / trials),
                "stake": float(stake),
                "stake_stderr": _proportion_stderr(stake, trials),
                "p_hit_if_won": None if if_won is None else float(if_won),
                "p_hit_if_lost": None if if_lost is None else float(if_lost),
                "swing": None if if_won is None or if_lost is None else float(if_won - if_lost),
                "swing_stderr": swing_stderr,
                "expected_contribution": float(landed_value[d] / trials),
                "acceleration_gain": float(rescued[d] / trials) if slip_prone else None,
            }
        )
    rows.sort(key=lambda row: (-row["stake"], -(row["acceleration_gain"] or 0.0), row["deal_id"]))
    return rows


def deals_that_matter(forecast: Forecast, rows: list[dict[str, Any]], top: int = TOP_DEALS) -> dict[str, Any]:
    """The deals worth naming, from ``drivers``' rows: at most ``top``, each one a rep can act on.

    Only deals in play (a chance to land strictly between 0 and 1) with at least
    ``MIN_STAKE`` at stake are named, and the list stops after the last deal whose stake
    is more than ``SEPARATION`` standard errors above the next deal's: deals the trials
    cannot tell apart are named together or not at all. ``reason`` says why the list
    is empty: ``no_deal_decides`` (no deal's loss costs ``MIN_STAKE``, as when the quota
    is all but certain or out of reach) or ``within_error`` (add trials).
    """
    target = quota_target(forecast)
    probability = float(np.mean(reaches(forecast.trials.revenue, target.at_least)))
    in_play = [row for row in rows if 0.0 < row["p_landed"] < 1.0]
    material = [row for row in in_play[:top] if row["stake"] >= MIN_STAKE]
    named = 0
    for k in range(len(material)):
        following = in_play[k + 1] if k + 1 < len(in_play) else {"stake": 0.0, "stake_stderr": 0.0}
        gap = material[k]["stake"] - following["stake"]
        if gap > SEPARATION * math.hypot(material[k]["stake_stderr"], following["stake_stderr"]):
            named = k + 1
    reason = None if named else "within_error" if material else "no_deal_decides"
    return {
        "target": target.name,
        "at_least": target.at_least,
        "probability": probability,
        "trials": forecast.n_trials,
        "deals": material[:named],
        "reason": reason,
    }


def _proportion_stderr(p: float, n: int) -> float:
    """Monte Carlo standard error of a share of ``n`` trials; 1 / n when the share is 0 or 1."""
    return float(max(math.sqrt(p * (1 - p) / n), 1.0 / n))


def _difference_stderr(p_a: float, n_a: int, p_b: float, n_b: int) -> float:
    """Monte Carlo standard error of a difference of two proportions from disjoint sets of trials.

    Zero when both are 0 or 1 (no trial disagrees); then 1 / n is the honest floor.
    """
    variance = p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b
    return float(max(np.sqrt(variance), 1.0 / (n_a + n_b)))
