"""The new pipeline fitted from history: known creation rate, share won, lag and sizes, honest errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from forecast.config.periods import quarters_between
from forecast.config.scenario import LagWeeks, NewPipeline
from forecast.engine.activity import lag_cdf
from forecast.history.deal_flow import fit_new_pipeline

TRUTH = {"per_week": 20.0, "share_won": 0.4, "lag_mean": 5.0, "lag_sd": 3.0, "size": 3000.0, "sigma": 0.5}


def _lags(rng, distribution: str, size: int) -> np.ndarray:
    mean, sd = TRUTH["lag_mean"], TRUTH["lag_sd"]
    if distribution == "gamma":
        return rng.gamma((mean / sd) ** 2, sd**2 / mean, size)
    sigma2 = np.log1p((sd / mean) ** 2)
    return rng.lognormal(np.log(mean) - sigma2 / 2, np.sqrt(sigma2), size)


def _deals(seed: int, quarters: int, per_week: float = TRUTH["per_week"], distribution: str = "gamma"):
    """Deals created at a Poisson rate; future wins after a lag, the others lost after a while or never."""
    rng = np.random.default_rng(seed)
    start = dt.date(2020, 1, 1)
    spanned = quarters_between(start, start + dt.timedelta(days=91 * quarters - 1))
    periods = [(np.datetime64(q.start, "D"), np.datetime64(q.end, "D")) for q in spanned]
    first, last = periods[0][0], periods[-1][1]
    days = int((last - first).astype(np.int64)) + 1
    n = rng.poisson(per_week * days / 7)
    created = first + np.sort(rng.integers(0, days, n)).astype("timedelta64[D]")
    winner = rng.random(n) < TRUTH["share_won"]
    after = np.where(winner, _lags(rng, distribution, n), rng.exponential(4.0, n))
    closed = created + np.floor(0.5 + 7 * after).astype("timedelta64[D]")
    closed[~winner & (rng.random(n) < 0.5)] = np.datetime64("NaT")  # never lost, still open
    sigma = TRUTH["sigma"]
    value = np.where(winner, TRUTH["size"] * np.exp(sigma * rng.standard_normal(n) - sigma**2 / 2), np.nan)
    return created, closed, winner, value, periods


@pytest.mark.parametrize("distribution", ["gamma", "lognormal"])
def test_recovers_the_generating_flow(distribution):
    fit = fit_new_pipeline(*_deals(seed=1, quarters=8, distribution=distribution), distribution=distribution)
    block, stderr = fit["new_pipeline"], fit["stderr"]
    NewPipeline.model_validate(block)  # a block any scenario accepts
    estimates = {
        "conversations_per_week": (block["conversations_per_week"], TRUTH["per_week"]),
        "share_won": (block["stages"][0]["rate"], TRUTH["share_won"]),
        "lag_mean": (block["lag_weeks"]["mean"], TRUTH["lag_mean"]),
        "lag_sd": (block["lag_weeks"]["sd"], TRUTH["lag_sd"]),
        "deal_size_mean": (block["deal_size"]["mean"], TRUTH["size"]),
    }
    truth_lag = LagWeeks(distribution=distribution, mean=TRUTH["lag_mean"], sd=TRUTH["lag_sd"])
    within = TRUTH["share_won"] * float(lag_cdf(truth_lag, fit["period_weeks"]))
    estimates["won_within_period"] = (fit["won_within_period"], within)
    for name, (estimate, truth) in estimates.items():
        assert abs(estimate - truth) < 4 * stderr[name], name
    assert abs(block["deal_size"]["sigma"] - TRUTH["sigma"]) < 4 * TRUTH["sigma"] / np.sqrt(
        2 * fit["deals_won"]
    )
    assert fit["deals_won"] + fit["deals_lost"] + fit["deals_open"] == fit["deals_created"]


def test_standard_errors_are_honest():
    fits = [fit_new_pipeline(*_deals(seed=100 + seed, quarters=4, per_week=8.0)) for seed in range(40)]
    z = [
        (f["new_pipeline"]["stages"][0]["rate"] - TRUTH["share_won"]) / f["stderr"]["share_won"] for f in fits
    ]
    # 40 z-scores of honest errors have a standard deviation of 1, itself within 1/sqrt(78) of 1 (3 of those)
    assert abs(np.std(z, ddof=1) - 1) < 3 / np.sqrt(78)


def test_too_few_wins_fit_nothing():
    created, closed, won, value, periods = _deals(seed=2, quarters=1, per_week=1.0)
    assert fit_new_pipeline(created, closed, won & (np.arange(won.size) < 3), value, periods) is None
    assert fit_new_pipeline(np.full(3, np.datetime64("NaT"), "datetime64[D]"), closed[:3], won[:3], value[:3],
                            periods) is None  # fmt: skip
