"""Win rates with their uncertainty: Beta posteriors, shrinkage of thin groups toward broader ones, and
recency weights that let recent outcomes count more."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_DEALS = 10  # fewer deals than this: fall back to the broader estimate


def beta_rate(
    wins: float, deals: float, prior_rate: float = 0.5, prior_strength: float = 2.0
) -> dict[str, Any]:
    """Posterior of a win rate: Beta(prior + wins, prior + losses); the default prior is uniform.

    A prior worth ``prior_strength`` deals at ``prior_rate`` shrinks a thin group toward
    that rate: the posterior mean is (wins + strength x rate) / (deals + strength). Recency
    weighted counts (floats) are accepted: they are the evidence the posterior rests on.
    """
    from scipy.stats import beta

    a = prior_rate * prior_strength + wins
    b = (1 - prior_rate) * prior_strength + deals - wins
    if a + b <= 0:  # no prior and no deals: nothing known beyond the prior's rate
        rate, interval = prior_rate, [0.0, 1.0]
    elif a <= 0 or b <= 0:  # a prior at exactly 0 or 1 that no outcome contradicts: the rate is known
        rate = a / (a + b)
        interval = [rate, rate]
    else:
        rate, interval = a / (a + b), [float(beta.ppf(0.05, a, b)), float(beta.ppf(0.95, a, b))]
    return {
        "win_rate": rate,
        "interval_90": interval,
        "wins": _count(wins),
        "deals": _count(deals),
    }


def _count(value: float) -> int | float:
    """A whole count as an int (as counted), a weighted one as a float."""
    return int(value) if float(value).is_integer() else float(value)


def recency_weights(days_before: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Weight of an outcome ``days_before`` the fit's last known day: halved every ``half_life_days``.

    None: every outcome counts fully. A weight is never above 1, so a weighted count is never
    more evidence than the deals behind it.
    """
    days = np.asarray(days_before, dtype=np.float64)
    if half_life_days is None:
        return np.ones(days.shape)
    if not half_life_days > 0:
        raise ValueError(f"half_life_days must be positive (or None for no weighting), got {half_life_days}")
    return np.exp2(-np.maximum(days, 0.0) / half_life_days)
