"""Counter-based random numbers for the simulation kernels.

Every draw is a pure function of ``(seed, deal key, trial)``: a splitmix64-style
integer hash of a per-deal stream start plus ``trial * GOLDEN``. Results therefore
do not depend on thread count or on how trials are blocked, and two plans of one
scenario that share a deal share its random numbers (common random numbers).

Amount noise is a lookup in an inverse-CDF table of the lognormal, cheaper per
draw than computing a normal and an exponential; so is an uncertain win rate, in one of
its Beta posterior (``rate_table``)."""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MIX3 = np.uint64(0xFF51AFD7ED558CCD)
_MIX4 = np.uint64(0xC4CEB9FE1A85EC53)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S33 = np.uint64(33)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)


@njit(inline="always")
def mix_a(x):
    """splitmix64 finaliser (Stafford variant 13): uint64 -> uint64."""
    x = (x ^ (x >> _S30)) * _MIX1
    x = (x ^ (x >> _S27)) * _MIX2
    return x ^ (x >> _S31)


@njit(inline="always")
def mix_b(x):
    """murmur3 fmix64, a second independent finaliser: uint64 -> uint64."""
    x = (x ^ (x >> _S33)) * _MIX3
    x = (x ^ (x >> _S33)) * _MIX4
    return x ^ (x >> _S33)


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


@njit(cache=True)
def stream_starts(seed, keys):
    """Per-deal stream start: a hash of the seed and the deal key.

    seed: uint64 scalar; keys: uint64[deals]. Returns uint64[deals].
    """
    out = np.empty(keys.shape[0], dtype=np.uint64)
    seed_mixed = mix_b(np.uint64(seed) ^ GOLDEN)
    for i in range(keys.shape[0]):
        out[i] = mix_a(seed_mixed ^ keys[i])
    return out


@njit(cache=True)
def factor_uniforms(starts, out):
    """Uniforms in (0, 1) for every factor (row, its stream start) and trial (column).

    starts: uint64[factors]; out: float64[factors, trials], written in place.
    """
    for f in range(out.shape[0]):
        for t in range(out.shape[1]):
            out[f, t] = (np.float64(mix_a(counter(starts[f], t)) >> np.uint64(11)) + 0.5) * 2.0**-53


@njit(inline="always")
def counter(start, trial):
    """The counter of one deal in one trial: uint64."""
    return start + np.uint64(trial) * GOLDEN


AMOUNT_ROWS = 4096  # equal slices of probability, picked by the top 12 bits of a 36-bit uniform
AMOUNT_FINE = 4096  # fine rows in each tail, and positions inside a row (12 bits each)
AMOUNT_TAIL_ROWS = 8  # slices at each end that are cut into fine rows
TABLE_ROWS = AMOUNT_ROWS - 2 * AMOUNT_TAIL_ROWS + 2 * AMOUNT_FINE
_S28 = np.uint64(28)
_MIDDLE_LO = AMOUNT_TAIL_ROWS << 24
_MIDDLE_HI = (AMOUNT_ROWS - AMOUNT_TAIL_ROWS) << 24
_LOW12 = 0xFFF


def lognormal_table(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table for the mean-one lognormal amount multiplier.

    Returns ``(base, slope)``, float64[TABLE_ROWS]: a draw is ``base[row] + slope[row]
    * frac`` (see ``amount_multiplier``). Rows are linear pieces of the lognormal
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
    """The largest multiplier ``amount_multiplier`` can draw from ``noise_table(sigma)``."""
    base, slope = noise_table(sigma)
    return float(np.max(base + slope))


@njit(inline="always")
def amount_multiplier(h, base, slope):
    """Mean-one lognormal multiplier from a 64-bit hash and ``lognormal_table``.

    The top 36 bits are a uniform integer ``u``: in the middle its top 12 bits pick
    the slice and the next 12 the position; in a tail (the 8 slices at either end)
    bits 15-26 of the offset into the tail pick the fine row and bits 3-14 the position.
    """
    u = np.int64(h >> _S28)
    in_low = u < _MIDDLE_LO
    in_high = u >= _MIDDLE_HI
    offset = u - _MIDDLE_HI if in_high else u
    tail_row = offset >> 15
    if in_low:
        index = tail_row
    elif in_high:
        index = AMOUNT_FINE + AMOUNT_ROWS - 2 * AMOUNT_TAIL_ROWS + tail_row
    else:
        index = AMOUNT_FINE - AMOUNT_TAIL_ROWS + (u >> 24)
    position = ((offset >> 3) if (in_low or in_high) else (u >> 12)) & _LOW12
    frac = (np.float64(position) + 0.5) * (1.0 / AMOUNT_FINE)
    return base[index] + slope[index] * frac


@njit(inline="always")
def uniform_pair(h):
    """Two 32-bit integer draws from one hash: (high, low), each in [0, 2**32), as int64.

    Signed, because AVX2 compares signed 64-bit integers natively, not unsigned.
    """
    return np.int64(h >> _S32), np.int64(h & _LOW32)


RATE_SLICES = 4096  # equal slices of probability in a rate table, picked by the top 12 bits of a draw
_S52 = np.uint64(52)
_LOW41 = np.uint64((1 << 41) - 1)


@functools.lru_cache(maxsize=1024)
def rate_table(win_rate: float, deals: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse-CDF table of an uncertain win rate: Beta(win_rate x deals, (1 - win_rate) x deals).

    Returns ``(base, slope)``, float64[RATE_SLICES], read-only: a draw is ``base[k] + slope[k] x
    frac`` (see ``rate_draw``). Inside, each slice interpolates linearly between two exact
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


@njit(inline="always")
def rate_draw(h, base, slope):
    """A win rate from a 64-bit hash and ``rate_table``: the top 12 bits pick the slice, the next
    41 the position in it (the 53-bit uniform ``(h >> 11 + 0.5) / 2**53`` times 4096)."""
    k = np.int64(h >> _S52)
    frac = (np.float64((h >> np.uint64(11)) & _LOW41) + 0.5) * 2.0**-41
    return base[k] + slope[k] * frac
