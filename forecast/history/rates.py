"""Win rates with their uncertainty: Beta posteriors, and shrinkage of thin groups toward broader ones."""

from __future__ import annotations

from typing import Any

MIN_DEALS = 10  # fewer deals than this: fall back to the broader estimate


def beta_rate(wins: int, deals: int, prior_rate: float = 0.5, prior_strength: float = 2.0) -> dict[str, Any]:
    """Posterior of a win rate: Beta(prior + wins, prior + losses); the default prior is uniform.

    A prior worth ``prior_strength`` deals at ``prior_rate`` shrinks a thin group toward
    that rate: the posterior mean is (wins + strength x rate) / (deals + strength).
    """
    from scipy.stats import beta

    a = prior_rate * prior_strength + wins
    b = (1 - prior_rate) * prior_strength + deals - wins
    return {
        "win_rate": a / (a + b),
        "interval_90": [float(beta.ppf(0.05, a, b)), float(beta.ppf(0.95, a, b))],
        "wins": int(wins),
        "deals": int(deals),
    }
