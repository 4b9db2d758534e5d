"""Scores of sample forecasts against what happened, and whether their uncertainty was honest.

Pure functions on arrays. One origin's forecast is a 1-D array of Monte Carlo samples
and the actual a number: ``crps`` (how far off, in money), ``pit`` (where the actual
fell in the forecast: uniform over origins when the forecast is calibrated) and
``inside`` (did a central interval hold it). Over a sequence of origins, scores of
overlapping horizons are correlated, so every test counts ``effective_count``
independent observations, not the number of origins: ``coverage`` intervals, the PIT
histogram's ``uniformity``, the ``verdict`` and ``skill`` against a baseline."""

from __future__ import annotations

import numpy as np
from scipy import stats

UNIFORM_VARIANCE = 1.0 / 12.0  # variance of a calibrated forecast's PIT values
UNIFORM_VARIANCE_SPREAD = 1.0 / 180.0  # n x the variance of their sample variance (mu4 - sigma^4)
VERDICTS = ("calibrated", "too narrow", "too wide", "biased high", "biased low")


def _samples(samples: np.ndarray) -> np.ndarray:
    values = np.asarray(samples, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("a forecast needs at least one sample")
    if not np.all(np.isfinite(values)):
        raise ValueError("forecast samples must be finite")
    return values


def _actual(actual: float) -> float:
    value = float(actual)
    if not np.isfinite(value):
        raise ValueError(f"the actual must be finite, got {actual!r}")
    return value


def crps(samples: np.ndarray, actual: float) -> float:
    """Continuous ranked probability score of a sample forecast: E|X - y| - E|X - X'| / 2.

    X, X' are draws from the samples (pairs include a sample with itself), so a point
    forecast scores its absolute error. Sorting gives E|X - X'| in O(n log n).
    """
    ordered = np.sort(_samples(samples))
    y = _actual(actual)
    n = ordered.size
    centred = ordered - ordered[n // 2]  # the rank weights sum to 0: same sum, less cancellation
    pair_mean = 2.0 * np.dot(2 * np.arange(1, n + 1) - n - 1, centred) / (n * n)
    return float(np.mean(np.abs(ordered - y)) - 0.5 * pair_mean)


def pit_uniform(seed: int, origin: int) -> float:
    """The tie-breaking uniform of ``pit`` for origin number ``origin``: the same on every run."""
    return float(np.random.default_rng([seed, origin]).random())


def pit(samples: np.ndarray, actual: float, uniform: float) -> float:
    """The actual's randomised percentile rank in the forecast: P(X < y) + uniform x P(X = y).

    Uniform over origins when the forecast is calibrated, also for a forecast with atoms
    (e.g. many trials at exactly 0), where a mid-rank would pile up. ``uniform``: a draw
    in [0, 1), e.g. ``pit_uniform(seed, origin)``.
    """
    if not 0.0 <= uniform < 1.0:
        raise ValueError(f"uniform must be in [0, 1), got {uniform!r}")
    values = _samples(samples)
    y = _actual(actual)
    below, tied = np.count_nonzero(values < y), np.count_nonzero(values == y)
    return float((below + uniform * tied) / values.size)


def inside(samples: np.ndarray, actual: float, level: float, uniform: float | None = None) -> bool:
    """Whether the actual lies in the forecast's central ``level`` interval (e.g. 0.8: p10..p90).

    Without ``uniform``: between the samples' quantiles, both ends included; a forecast
    with an atom at an end covers more often than ``level``. With ``uniform``: whether the
    randomised ``pit`` lies in [(1 - level) / 2, (1 + level) / 2], which holds with chance
    exactly ``level`` when the forecast is calibrated, atoms or not.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    if uniform is not None:
        return bool(abs(pit(samples, actual, uniform) - 0.5) <= level / 2)
    low, high = np.quantile(_samples(samples), [(1 - level) / 2, (1 + level) / 2])
    return bool(low <= _actual(actual) <= high)


def _series(series: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(series, dtype=float).ravel()
    if values.size == 0:
        raise ValueError(f"no {what}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} must be finite")
    return values


def effective_count(series: np.ndarray) -> float:
    """The number of independent observations a sequence of overlapping-origin scores is worth.

    n / tau, tau = 1 + 2 (rho_1 + ... + rho_K) the integrated autocorrelation, summed
    over the initial positive sequence (K the last lag before the first sample
    autocorrelation <= 0). Sample autocovariances about the sample mean all fall short
    by the mean's variance, tau / n of the variance, so the sum of K lags estimates
    tau (1 - (2K + 1) / n) / (1 - tau / n); solved for the count: 1 + (n - 2K - 1) /
    tau_hat. Clipped to [1, n]. Feed it the PIT values in origin order; fewer than 3
    values, or values that never vary, count as their length. Rough for short series:
    60 weekly origins with 13-week horizons are worth about 5, estimated as 3 to 9.
    """
    values = _series(series, "scores")
    n = values.size
    centred = values - values.mean()
    if n < 3 or not np.any(centred):
        return float(n)
    spectrum = np.fft.rfft(centred, 2 * n)
    autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), 2 * n)[:n]
    rho = autocovariance[1:] / autocovariance[0]
    non_positive = np.flatnonzero(rho <= 0)
    lags = int(non_positive[0]) if non_positive.size else rho.size
    tau = 1 + 2 * rho[:lags].sum()
    return float(np.clip(1 + (n - 2 * lags - 1) / tau, 1.0, n))


def _effective_n(effective_n: float, n: int) -> float:
    if not 1.0 <= effective_n <= n:
        raise ValueError(
            f"the effective count must be between 1 and the {n} observations, got {effective_n!r}"
        )
    return float(effective_n)


def _tail(confidence: float, tests: int = 1) -> float:
    """The upper tail probability of ``tests`` two-sided tests at overall ``confidence`` (Bonferroni)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return 1 - (1 - confidence) / (2 * tests)


def coverage(hits: np.ndarray, effective_n: float, confidence: float = 0.95) -> dict[str, float]:
    """The share of origins whose interval held the actual, with a Wilson interval on ``effective_n``.

    The Wilson score interval for a proportion, with the effective count in place of n
    (a fractional count is fine), so correlated origins do not pass for independent ones.
    """
    held = np.asarray(hits, dtype=bool).ravel()
    if held.size == 0:
        raise ValueError("no hits")
    n = _effective_n(effective_n, held.size)
    z = float(stats.norm.ppf(_tail(confidence)))
    share = float(held.mean())
    scale = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / scale
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / scale
    return {"value": share, "low": float(max(centre - half, 0.0)), "high": float(min(centre + half, 1.0))}


def pit_histogram(pits: np.ndarray, bins: int = 10) -> np.ndarray:
    """Counts of PIT values in ``bins`` equal bins of [0, 1] (1 falls in the last): flat if calibrated."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins!r}")
    values = _series(pits, "PIT values")
    if values.min() < 0 or values.max() > 1:
        raise ValueError("PIT values must lie in [0, 1]")
    return np.histogram(values, bins=bins, range=(0.0, 1.0))[0]


def uniformity(pits: np.ndarray, effective_n: float, bins: int = 10) -> dict[str, float]:
    """P-values of the PIT values being uniform, counted as ``effective_n`` independent values.

    ``chi_square``: Pearson's statistic of ``pit_histogram`` scaled by effective_n / n,
    against chi-square with bins - 1 degrees of freedom (wants about 5 effective values
    per bin). ``ks``: the Kolmogorov-Smirnov distance from uniform against its
    distribution for round(effective_n) values. Both are approximate for correlated values.
    """
    counts = pit_histogram(pits, bins)
    n = int(counts.sum())
    effective = _effective_n(effective_n, n)
    expected = n / bins
    pearson = float(np.sum((counts - expected) ** 2) / expected) * effective / n
    distance = stats.kstest(np.asarray(pits, dtype=float).ravel(), "uniform").statistic
    return {
        "chi_square": float(stats.chi2.sf(pearson, bins - 1)),
        "ks": float(stats.kstwo.sf(distance, max(1, round(effective)))),
    }


def pit_moments(pits: np.ndarray, effective_n: float) -> dict[str, float]:
    """The PIT values' mean and variance, each with its departure from a calibrated forecast's.

    ``variance``: corrected for the correlation, sum of squares / (n (1 - 1/effective_n))
    (effective_n at least 2 there). ``bias_z`` = (mean - 1/2) / mean_se, mean_se =
    sqrt(max(variance, 1/12) / effective_n): a variance below 1/12 by chance does not
    inflate the bias. ``spread_z`` = (variance - 1/12) / sqrt(1 / (180 effective_n)), the
    standard error of a uniform sample's variance.
    """
    values = _series(pits, "PIT values")
    n = values.size
    effective = _effective_n(effective_n, n)
    mean = float(values.mean())
    variance = float(np.sum((values - mean) ** 2) / (n * (1 - 1 / max(effective, 2.0))))
    mean_se = float(np.sqrt(max(variance, UNIFORM_VARIANCE) / effective))
    variance_se = float(np.sqrt(UNIFORM_VARIANCE_SPREAD / effective))
    return {
        "mean": mean,
        "mean_se": mean_se,
        "bias_z": (mean - 0.5) / mean_se,
        "variance": variance,
        "variance_se": variance_se,
        "spread_z": (variance - UNIFORM_VARIANCE) / variance_se,
    }


def verdict(pits: np.ndarray, effective_n: float, confidence: float = 0.95) -> str:
    """What the PIT values say of the forecasts: one of ``VERDICTS``.

    Two tests on ``pit_moments``, each two-sided at (1 - confidence) / 2, so a
    calibrated forecast is misjudged with chance at most about 1 - confidence: the bias,
    ``bias_z`` against Student's t with effective_n - 1 degrees of freedom (at least 1),
    and the spread, ``spread_z`` against the normal. When neither departs,
    ``calibrated``: no departure detectable with this many effective origins, so show
    the count with it. Otherwise the test further past its critical value names the
    fault: a mean PIT above 1/2 (actuals land high in their forecasts) is ``biased
    low``, below ``biased high``; a variance above 1/12 (actuals in the tails: a
    U-shaped histogram) ``too narrow``, below (a hump) ``too wide``. With 60 weekly
    origins of 13-week horizons the noisy count lets about 7 % of calibrated backtests
    be misjudged; with 120, under 5 %.
    """
    moments = pit_moments(pits, effective_n)
    tail = _tail(confidence, tests=2)
    bias = moments["bias_z"] / stats.t.ppf(tail, max(effective_n - 1, 1.0))
    spread = moments["spread_z"] / stats.norm.ppf(tail)
    if max(abs(bias), abs(spread)) <= 1:
        return "calibrated"
    if abs(bias) >= abs(spread):
        return "biased low" if bias > 0 else "biased high"
    return "too narrow" if spread > 0 else "too wide"


def skill(model_crps: np.ndarray, baseline_crps: np.ndarray) -> float:
    """CRPS skill over a baseline on the same origins: 1 - mean CRPS / mean baseline CRPS.

    1 is a perfect forecast, 0 no better than the baseline, negative worse.
    """
    model = _series(model_crps, "model CRPS values")
    baseline = _series(baseline_crps, "baseline CRPS values")
    if model.shape != baseline.shape:
        raise ValueError(f"{model.size} model CRPS values against {baseline.size} baseline ones")
    if baseline.mean() <= 0:
        raise ValueError("the baseline's mean CRPS is 0: a perfect baseline leaves no skill to measure")
    return float(1 - model.mean() / baseline.mean())
