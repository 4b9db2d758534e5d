"""The plain-numpy side of the random numbers: what the compiled draws (``rng.py``, ``kernels.py``)
read, built without numba.

A stable key per deal id, probabilities as integer thresholds, the inverse-CDF tables of the
amount multiplier and of an uncertain win rate with their layout, and how a new-pipeline Poisson
draw is split into chunks and where it stops. Validation (``checks``, ``model``) needs these
but never runs a kernel, so it imports this module and not the compiler. The kernels compile the
layout constants and the Poisson formulas in, so ``kernels.py`` stamps its cache with this file too
(``kernel_cache``)."""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np


def thresholds(probability: np.ndarray) -> np.ndarray:
    """Probabilities as int64 thresholds for the 32-bit draws: a draw below it is a yes."""
    return np.round(np.asarray(probability, np.float64) * 2.0**32).astype(np.int64)


def deal_keys(deal_ids) -> np.ndarray:
    """Stable 64-bit key per deal id (blake2b), so draws follow the deal, not its row."""
    keys = np.empty(len(deal_ids), dtype=np.uint64)
    for i, deal_id in enumerate(deal_ids):
        digest = hashlib.blake2b(str(deal_id).encode("utf-8"), digest_size=8).digest()
        keys[i] = np.uint64(int.from_bytes(digest, "little"))
    return keys


AMOUNT_ROWS = 4096  # equal slices of probability, picked by the top 12 bits of a 36-bit uniform
AMOUNT_FINE = 4096  # fine rows in each tail, and positions inside a row (12 bits each)
AMOUNT_TAIL_ROWS = 8  # slices at each end that are cut into fine rows
TABLE_ROWS = AMOUNT_ROWS - 2 * AMOUNT_TAIL_ROWS + 2 * AMOUNT_FINE


def lognormal_table(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table for the mean-one lognormal amount multiplier.

    Returns ``(base, slope)``, float64[TABLE_ROWS]: a draw is ``base[row] + slope[row]
    * frac`` (see ``rng.amount_multiplier``). Rows are linear pieces of the lognormal
    quantile function over 4096 equal slices of probability, the 8 bottom and the 8
    top slices cut again into 4096 fine rows each. The lowest piece interpolates
    from 0 and the highest is its exact conditional mean, so the unbounded tail
    cannot overflow. The table is rescaled so the sampled multiplier has mean
    exactly 1 (the haircut alone sets the expected discount). Quantiles are within
    1e-3 relative of the exact lognormal for sigma <= 1 between probabilities 1e-5
    and 1 - 1e-5, 2e-4 for sigma <= 0.3 (checked in the tests).
    """
    from scipy.special import ndtr, ndtri

    tail = AMOUNT_TAIL_ROWS / AMOUNT_ROWS
    low = np.arange(AMOUNT_FINE) * (tail / AMOUNT_FINE)
    middle = np.arange(AMOUNT_TAIL_ROWS, AMOUNT_ROWS - AMOUNT_TAIL_ROWS) / AMOUNT_ROWS
    high = 1.0 - tail + np.arange(AMOUNT_FINE + 1) * (tail / AMOUNT_FINE)
    edges = np.concatenate([low, middle, high])
    edges[-1] = 1.0
    values = np.exp(sigma * ndtri(edges) - 0.5 * sigma * sigma)  # 0 at edge 0, inf at edge 1
    base = values[:-1].copy()
    slope = np.diff(values)
    lower = edges[-2]
    base[-1] = ndtr(sigma - ndtri(lower)) / (1.0 - lower)  # E[M | M above its lower edge]
    slope[-1] = 0.0
    mean = np.sum(np.diff(edges) * (base + 0.5 * slope))
    return base / mean, slope / mean


def noise_table(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``lognormal_table(sigma)``, or length-1 arrays (a multiplier of exactly 1) for fixed amounts."""
    return lognormal_table(sigma) if sigma > 0 else (np.ones(1), np.zeros(1))


def largest_multiplier(sigma: float) -> float:
    """The largest multiplier ``rng.amount_multiplier`` can draw from ``noise_table(sigma)``."""
    base, slope = noise_table(sigma)
    return float(np.max(base + slope))


RATE_SLICES = 4096  # equal slices of probability in a rate table, picked by the top 12 bits of a draw


@functools.lru_cache(maxsize=1024)
def rate_table(win_rate: float, deals: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table of an uncertain win rate: Beta(win_rate x deals, (1 - win_rate) x deals).

    Returns ``(base, slope)``, float64[RATE_SLICES], read-only: a draw is ``base[k] + slope[k] x
    frac`` (see ``rng.rate_draw``). Inside, each slice interpolates linearly between two exact
    quantiles (scipy's ``betaincinv``, the upper half through the mirrored Beta so rates near 1
    keep their digits); the lowest and the highest slice are their exact conditional means, so
    no draw falls outside the Beta's range (each held between its slice's edges, which a Beta
    parameter below about 1e-7 needs). The drawn rate's CDF is therefore within one slice,
    1 / 4096 = 2.4e-4, of the Beta's everywhere, and within 5e-5 between the two end slices when
    both Beta parameters are at least 1 (checked in the tests). A last scaling, toward 0 or
    toward 1 (so rates stay in 0-1), makes the table's mean the win rate to rounding: the
    expected number of wins is the same as with the rate known.
    """
    from scipy.special import betainc, betaincinv

    won, lost = win_rate * deals, (1.0 - win_rate) * deals
    edges = np.arange(1, RATE_SLICES) / RATE_SLICES
    low = edges <= 0.5
    quantile = np.empty(RATE_SLICES - 1)
    quantile[low] = betaincinv(won, lost, edges[low])
    quantile[~low] = 1.0 - betaincinv(lost, won, 1.0 - edges[~low])  # 1 - X is Beta(lost, won)
    base = np.empty(RATE_SLICES)
    slope = np.zeros(RATE_SLICES)
    base[1:-1] = quantile[:-1]
    slope[1:-1] = np.diff(quantile)
    # E[X; X < q] = mean x I_q(won + 1, lost): the bottom slice's mean, and the top one's by the mirror
    base[0] = win_rate * betainc(won + 1.0, lost, quantile[0]) * RATE_SLICES
    base[-1] = 1.0 - (1.0 - win_rate) * betainc(lost + 1.0, won, 1.0 - quantile[-1]) * RATE_SLICES
    # a slice's mean lies between its edges; this holds it there when a Beta parameter is so small
    # (below about 1e-7) that the quantile next to an end rounds to 0 or 1
    base[0], base[-1] = min(max(base[0], 0.0), quantile[0]), min(max(base[-1], quantile[-1]), 1.0)
    mean = np.mean(base + 0.5 * slope)
    if mean > win_rate:
        base, slope = base * (win_rate / mean), slope * (win_rate / mean)
    elif mean < win_rate:
        shrink = (1.0 - win_rate) / (1.0 - mean)  # scale the distance to 1
        base, slope = 1.0 - (1.0 - base) * shrink, slope * shrink
    base.flags.writeable = slope.flags.writeable = False
    return base, slope


POISSON_CHUNK = 500.0  # exp(-lambda) stays far from underflow


def poisson_chunks(lam: float) -> int:
    """How many Poisson draws of at most ``POISSON_CHUNK`` each make up one of mean ``lam``."""
    return max(1, math.ceil(lam / POISSON_CHUNK))


def poisson_limit(lam: float) -> float:
    """Where a Poisson(lam) draw stops counting: past it, the CDF is 1 to rounding."""
    return lam + 40.0 * math.sqrt(lam) + 50.0
