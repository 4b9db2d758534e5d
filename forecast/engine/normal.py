"""Float helpers for the correlated kernel: exp, the normal CDF and density, the normal quantile.

Library ``exp`` calls stop LLVM from vectorising a loop on AVX2; these polynomial
versions do not. ``normal_cdf`` is Zelen and Severo's approximation (Abramowitz and
Stegun 26.2.17), absolute error below 7.5e-8; ``normal_quantile`` is Wichura's AS 241
(about 1e-16 relative), for an uncertain rate's latent threshold in each trial; both checked
against scipy in the tests."""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LOG2E = 1.4426950408889634
_ROUND_MAGIC = 6755399441055744.0  # 1.5 * 2**52: adding it rounds to an integer
ONE_BITS = 0x3FF0000000000000  # the float64 1.0
_INV_SQRT_2PI = 0.3989422804014327


@intrinsic
def float_as_int(typingctx, value):
    """The bits of a float64 as an int64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def int_as_float(typingctx, value):
    """An int64's bits read as a float64 (no conversion)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always")
def fast_exp(x):
    """exp(x) for -700 < x < 700, within 1e-9 relative, branch-free.

    Degree-8 Taylor polynomial on |r| <= ln(2) / 2 evaluated by Estrin's scheme: short
    dependency chains, which is what bounds this loop's speed, not the arithmetic.
    """
    shifted = x * LOG2E + _ROUND_MAGIC
    n = shifted - _ROUND_MAGIC  # round(x / ln 2)
    r = (x - n * LN2_HI) - n * LN2_LO
    r2 = r * r
    r4 = r2 * r2
    low = (1.0 + r) + r2 * (0.5 + r * (1.0 / 6.0))
    high = (1.0 / 24.0 + r * (1.0 / 120.0)) + r2 * (1.0 / 720.0 + r * (1.0 / 5040.0))
    poly = low + r4 * (high + r4 * (1.0 / 40320.0))
    return poly * int_as_float((float_as_int(shifted) + 1023) << 52)  # 2**n from n's low bits


@njit(inline="always")
def normal_cdf_density(x):
    """(Phi(x), phi(x)), branch-free, from one exp: Phi within 7.5e-8, phi within 1e-9 relative."""
    z = min(abs(x), 37.0)
    density = _INV_SQRT_2PI * fast_exp(-0.5 * z * z)
    t = 1.0 / (1.0 + 0.2316419 * z)
    tail = (
        density
        * t
        * (0.319381530 + t * (-0.356563782 + t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))))
    )
    return (tail if x < 0.0 else 1.0 - tail), density


@njit(inline="always")
def normal_cdf(x):
    """Phi(x), branch-free, absolute error < 7.5e-8."""
    return normal_cdf_density(x)[0]


@njit(inline="always")
def unit_interval(draw):
    """A 32-bit integer draw as the float draw / 2**32, by bits (AVX2 has no int64 -> double)."""
    return int_as_float(ONE_BITS | (draw << 20)) - 1.0


_CENTRAL = (
    (3.3871328727963666080, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125,
     45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727),
    (1.0, 42.313330701600911252, 687.18700749205790830, 5394.1960214247511077,
     21213.794301586595867, 39307.895800092710610, 28729.085735721942674, 5226.4952788528545610),
)  # fmt: skip
_INTERMEDIATE = (
    (1.42343711074968357734, 4.63033784615654529590, 5.76949722146069140550, 3.64784832476320460504,
     1.27045825245236838258, 0.241780725177450611770, 0.0227238449892691845833, 7.74545014278341407640e-4),
    (1.0, 2.05319162663775882187, 1.67638483018380384940, 0.689767334985100004550,
     0.148103976427480074590, 0.0151986665636164571966, 5.47593808499534494600e-4, 1.05075007164441684324e-9),
)  # fmt: skip
_TAIL = (
    (6.65790464350110377720, 5.46378491116411436990, 1.78482653991729133580, 0.296560571828504891230,
     0.0265321895265761230930, 0.00124266094738807843860, 2.71155556874348757815e-5,
     2.01033439929228813265e-7),
    (1.0, 0.599832206555887937690, 0.136929880922735805310, 0.0148753612908506148525,
     7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
     2.04426310338993978564e-15),
)  # fmt: skip


@njit(inline="always")
def _ratio(coefficients, r):
    """The ratio of two degree-7 polynomials in ``r`` (Horner), lowest coefficient first."""
    top, bottom = coefficients
    numerator, denominator = top[7], bottom[7]
    for k in range(6, -1, -1):
        numerator = numerator * r + top[k]
        denominator = denominator * r + bottom[k]
    return numerator / denominator


@njit(inline="always")
def normal_quantile(p):
    """Phi^-1(p) (Wichura 1988, AS 241 PPND16, relative error about 1e-16); -inf at 0, inf at 1."""
    q = p - 0.5
    if abs(q) <= 0.425:
        return q * _ratio(_CENTRAL, 0.180625 - q * q)
    r = p if q < 0.0 else 1.0 - p
    if r <= 0.0:
        return -np.inf if q < 0.0 else np.inf
    r = np.sqrt(-np.log(r))
    value = _ratio(_INTERMEDIATE, r - 1.6) if r <= 5.0 else _ratio(_TAIL, r - 5.0)
    return -value if q < 0.0 else value


def normal_cdf_array(x: np.ndarray) -> np.ndarray:
    """``normal_cdf`` over an array (for tests and the Python side)."""
    return _normal_cdf_array(np.ascontiguousarray(x, dtype=np.float64))


@njit(cache=True, error_model="numpy")
def _normal_cdf_array(x):
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = normal_cdf(x[i])
    return out


def normal_quantile_array(p: np.ndarray) -> np.ndarray:
    """``normal_quantile`` over an array (for tests)."""
    return _normal_quantile_array(np.ascontiguousarray(p, dtype=np.float64))


@njit(cache=True, error_model="numpy")
def _normal_quantile_array(p):
    out = np.empty_like(p)
    for i in range(p.shape[0]):
        out[i] = normal_quantile(p[i])
    return out
