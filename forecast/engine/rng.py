"""Counter-based random numbers for the simulation kernels.

Every draw is a pure function of ``(seed, deal key, trial)``: a splitmix64-style
integer hash of a per-deal stream start plus ``trial * GOLDEN``. Results therefore
do not depend on thread count or on how trials are blocked, and two plans of one
scenario that share a deal share its random numbers (common random numbers).

Amount noise is a lookup in an inverse-CDF table of the lognormal, cheaper per
draw than computing a normal and an exponential; so is an uncertain win rate, in one of
its Beta posterior. The tables, the deal keys and everything else built in plain numpy are in
``draws.py``, which validation imports without numba; this module holds the compiled hashes and
lookups only."""

from __future__ import annotations

import numpy as np
from numba import njit

from forecast.engine.draws import AMOUNT_FINE, AMOUNT_ROWS, AMOUNT_TAIL_ROWS

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


_S28 = np.uint64(28)
_MIDDLE_LO = AMOUNT_TAIL_ROWS << 24
_MIDDLE_HI = (AMOUNT_ROWS - AMOUNT_TAIL_ROWS) << 24
_LOW12 = 0xFFF


@njit(inline="always")
def amount_multiplier(h, base, slope):
    """Mean-one lognormal multiplier from a 64-bit hash and ``draws.lognormal_table``.

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


_S52 = np.uint64(52)
_LOW41 = np.uint64((1 << 41) - 1)


@njit(inline="always")
def rate_draw(h, base, slope):
    """A win rate from a 64-bit hash and ``draws.rate_table``: the top 12 bits pick the slice, the next
    41 the position in it (the 53-bit uniform ``(h >> 11 + 0.5) / 2**53`` times 4096)."""
    k = np.int64(h >> _S52)
    frac = (np.float64((h >> np.uint64(11)) & _LOW41) + 0.5) * 2.0**-41
    return base[k] + slope[k] * frac
