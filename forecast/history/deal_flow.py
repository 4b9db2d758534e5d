"""New pipeline from history: deals created per week, the share won, the lag to the win, won sizes.

Calibrates a scenario's ``new_pipeline`` block from past periods: ``conversations_per_week``
is the rate at which deals were created, its one conversion stage the share of created
deals that are won, ``lag_weeks`` the time from creation to the win, ``deal_size`` the
amounts of those wins. Each period's new deals are followed to its end, which is what the
forecast needs (a new deal counts if won within its period): a win gives its lag, any other
deal was not won by then. Share and lag are fitted together by maximum likelihood (a
mixture cure model: a deal is a future win with the share's chance, then wins after its
lag), with standard errors from the likelihood's curvature at the optimum. Losses are not
read as "never wins": deals still open at the period end are more likely future wins than
the average deal, and only a model of when losses happen could say by how much."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.scenario import LagWeeks
from forecast.engine.activity import DAYS_PER_WEEK, lag_cdf
from forecast.history.rates import MIN_DEALS

HALF_DAY = 0.5 / DAYS_PER_WEEK  # lags are known to the day: a win on day d lies within half a day of it


def _lag(distribution: str, theta: np.ndarray) -> LagWeeks:
    return LagWeeks(distribution=distribution, mean=float(np.exp(theta[1])), sd=float(np.exp(theta[2])))


def _negative_log_likelihood(theta, distribution, lags, censored) -> float:
    """Wins after ``lags`` weeks, and deals not won within ``censored`` weeks.

    Both are (distinct weeks, how many deals) pairs: lags are whole days, so there are few.
    """
    share = 1.0 / (1.0 + np.exp(-theta[0]))
    lag = _lag(distribution, theta)
    (won_weeks, wins), (open_weeks, not_won) = lags, censored
    won = lag_cdf(lag, won_weeks + HALF_DAY) - lag_cdf(lag, won_weeks - HALF_DAY)
    waiting = 1.0 - share * lag_cdf(lag, open_weeks)
    return -float(
        wins.sum() * np.log(share) + np.sum(wins * np.log(np.maximum(won, 1e-300)))
        + np.sum(not_won * np.log(np.maximum(waiting, 1e-300)))
    )  # fmt: skip


def _curvature(function, theta: np.ndarray, step: float = 1e-3) -> np.ndarray:
    """The Hessian by central differences."""
    size = theta.size
    hessian = np.empty((size, size))
    for i in range(size):
        for j in range(size):
            shifted = [theta.copy() for _ in range(4)]
            for k, (di, dj) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
                shifted[k][i] += di * step
                shifted[k][j] += dj * step
            values = [function(point) for point in shifted]
            hessian[i, j] = (values[0] - values[1] - values[2] + values[3]) / (4 * step * step)
    return hessian


def _share(theta: np.ndarray) -> float:
    return float(1.0 / (1.0 + np.exp(-theta[0])))


def _fit_share_and_lag(lags, censored, distribution) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood (logit share, log lag mean, log lag sd) and their covariance."""
    from scipy.optimize import minimize

    def objective(theta: np.ndarray) -> float:
        return _negative_log_likelihood(theta, distribution, lags, censored)

    share = lags.size / (lags.size + 0.5 * censored.size)
    start = np.array([np.log(share / (1 - share)), np.log(lags.mean() + 0.5), np.log(lags.std() + 0.5)])
    lags, censored = np.unique(lags, return_counts=True), np.unique(censored, return_counts=True)
    theta = minimize(objective, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9,
                                                                      "maxiter": 4000}).x  # fmt: skip
    try:
        covariance = np.linalg.inv(_curvature(objective, theta))
    except np.linalg.LinAlgError:
        covariance = np.full((3, 3), np.nan)
    return theta, covariance


def _stderr(function, theta: np.ndarray, covariance: np.ndarray, step: float = 1e-5) -> float | None:
    """Delta-method standard error of ``function(theta)``; None where the likelihood gives none."""
    gradient = np.array([(function(theta + step * e) - function(theta - step * e)) / (2 * step)
                         for e in np.eye(theta.size)])  # fmt: skip
    variance = gradient @ covariance @ gradient
    return float(np.sqrt(variance)) if np.isfinite(variance) and variance > 0 else None


@dataclass
class NewDeals:
    """The deals created within past periods, each followed to its period's end."""

    created: int  # deals created
    weeks: float  # weeks of history the periods cover
    lags: np.ndarray  # weeks from creation to the win, of those won within their period
    censored: np.ndarray  # weeks from creation to the period's end, of the others
    lost: int  # how many of the others were lost by then
    sizes: np.ndarray  # won amounts (> 0) of those won within their period


def new_deals(created, closed, won, value, periods: list[tuple[np.datetime64, np.datetime64]]) -> NewDeals:
    """What became of the deals each period created, by its end (all ``datetime64[D]`` or bool arrays)."""
    first = created[~np.isnat(created)].min() if (~np.isnat(created)).any() else periods[-1][1] + 1
    lags, censored, sizes, lost, count, days = [], [], [], 0, 0, 0
    for start, end in periods:
        begin = max(start, first)  # a history that starts mid-period covers only part of it
        if begin > end:
            continue
        days += int((end - begin).astype(np.int64)) + 1
        new = (created >= begin) & (created <= end)
        count += int(new.sum())
        won_now = new & won & (closed <= end)
        lags += list(np.maximum((closed[won_now] - created[won_now]).astype(np.int64), 0) / DAYS_PER_WEEK)
        lost += int((new & ~won & (closed <= end)).sum())
        censored += list(((end - created[new & ~won_now]).astype(np.int64) + 0.5) / DAYS_PER_WEEK)
        sizes += list(value[won_now])
    sizes = np.array(sizes, dtype=np.float64)
    return NewDeals(count, days / DAYS_PER_WEEK, np.array(lags), np.array(censored), lost, sizes[sizes > 0])


def fit_new_pipeline(
    created: np.ndarray,
    closed: np.ndarray,
    won: np.ndarray,
    value: np.ndarray,
    periods: list[tuple[np.datetime64, np.datetime64]],
    distribution: str = "gamma",
) -> dict[str, Any] | None:
    """A ``new_pipeline`` block from the deals created within ``periods``, with standard errors and counts.

    Also the share of new deals won within a period (its average length), which is what the
    data pin down best. None when fewer than ``MIN_DEALS`` deals were won within their period.
    """
    seen = new_deals(created, closed, won, value, periods)
    if seen.lags.size < MIN_DEALS or seen.sizes.size < MIN_DEALS:
        return None
    theta, covariance = _fit_share_and_lag(seen.lags, seen.censored, distribution)
    share, lag = _share(theta), _lag(distribution, theta)
    period_weeks = (
        float(np.mean([(end - start).astype(np.int64) + 1 for start, end in periods])) / DAYS_PER_WEEK
    )

    def won_within_period(at: np.ndarray) -> float:
        return _share(at) * float(lag_cdf(_lag(distribution, at), period_weeks))

    functions = {
        "share_won": _share,
        "lag_mean": lambda at: np.exp(at[1]),
        "lag_sd": lambda at: np.exp(at[2]),
        "won_within_period": won_within_period,
    }
    stderr = {name: _stderr(function, theta, covariance) for name, function in functions.items()}
    if not 1e-6 < share < 1 - 1e-6:  # at a bound: only the share won within a period is pinned down
        stderr["share_won"] = None
    stderr["conversations_per_week"] = float(np.sqrt(seen.created) / seen.weeks)
    stderr["deal_size_mean"] = float(seen.sizes.std(ddof=1) / np.sqrt(seen.sizes.size))
    block = {
        "conversations_per_week": seen.created / seen.weeks,
        "stages": [{"name": "created to won", "rate": share}],
        "lag_weeks": {"distribution": distribution, "mean": lag.mean, "sd": lag.sd},
        "deal_size": {"mean": float(seen.sizes.mean()),
                      "sigma": min(float(np.std(np.log(seen.sizes), ddof=1)), 3.0)},
        "new_logo": False,
    }  # fmt: skip
    return {
        "new_pipeline": block, "won_within_period": won_within_period(theta), "period_weeks": period_weeks,
        "stderr": stderr, "deals_created": seen.created, "deals_won": int(seen.lags.size),
        "deals_lost": seen.lost, "deals_open": int(seen.censored.size) - seen.lost, "weeks": seen.weeks,
    }  # fmt: skip
