"""Compiled simulation kernels: arrays in, arrays out, no I/O, no Python objects."""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from forecast.engine import draws, kernel_cache, normal, rng
from forecast.engine.normal import normal_cdf, normal_cdf_density, normal_quantile, unit_interval
from forecast.engine.rng import amount_multiplier, counter, mix_a, mix_b, rate_draw, uniform_pair

MAX_TRIAL_BLOCK = 4096
MIN_TRIAL_BLOCK = 256
LATENT_LIMIT = 37.0  # Phi(-37) underflows: latent thresholds are kept inside +-37

REVENUE = 0  # metric kinds: sum of landed amounts, or count of landed deals
COUNT = 1

WON_NOT_LANDED = 1  # per-trial outcome of a deal: 0 lost, 1 won but outside the period, 2 landed
LANDED = 2


class LatentFactors(NamedTuple):
    """Deals whose win rate moves per trial, as the kernels take them (``correlation.correlation_inputs``).

    Two things move a rate: latent factors shared by correlated deals, and an uncertain rate
    drawn per trial from its Beta posterior (a stage's or a ``win_by_age`` cell's, shared by
    its deals). Deals with the same factor loadings form a group; each group's win rate is
    tabulated per trial at a few latent levels: the win rates its deals share (exact; an
    uncertain rate is always its own level), and a grid that deals with a rate of their own
    interpolate on (cubic Hermite, error < 3e-8), so no deal pays a normal CDF per trial.
    Uncertain deals without factors form a group with none.
    """

    deal_order: np.ndarray  # int64[deals]: the order deals are summed in (independent ones, then by level)
    deal_level: np.ndarray  # int64[deals]: the deal's level (lower one if interpolated), -1 independent
    deal_interpolated: np.ndarray  # bool[deals]
    deal_weights: np.ndarray  # float64[deals, 4]: Hermite weights of rate, slope at level and level + 1
    level_group: np.ndarray  # int64[levels]
    level_latent: np.ndarray  # float64[levels]: Phi^-1 of the level's unconditional win rate
    level_base: np.ndarray  # float64[levels]: the level's rate when no factor moves it
    level_table: np.ndarray  # int64[levels]: its uncertain rate's row in rate_base / rate_slope, -1 known
    group_scale: np.ndarray  # float64[groups]: 1 / sd of the deal's own noise
    factor_start: np.ndarray  # int64[groups + 1]: CSR of each group's factors ...
    factor_index: np.ndarray  # int64: ... their rows in factor_values ...
    factor_loading: np.ndarray  # float64: ... and loadings (sqrt of the latent correlation)
    factor_values: np.ndarray  # float64[factors, trials]: standard normal per factor and trial
    table_start: np.ndarray  # uint64[tables]: stream start of the table's rate cell (shared by its tables)
    rate_base: np.ndarray  # float64[tables, RATE_SLICES]: draws.rate_table of each uncertain level
    rate_slope: np.ndarray  # float64[tables, RATE_SLICES]


def simulate_pipeline(
    starts,
    win_threshold,
    land_threshold,
    value,
    dated_inside,
    noise_base,
    noise_slope,
    metric_start,
    metric_index,
    metric_share,
    metric_kind,
    factors,
    first_trial,
    trial_block,
    revenue,
    slipped,
    metrics,
):
    """Simulate every open deal in every trial; write per-trial totals.

    Per deal (arrays of length ``deals``): ``starts`` uint64 stream starts
    (``rng.stream_starts``); ``win_threshold`` and ``land_threshold`` int64, the
    win probability and the probability that a won deal lands in the period, times
    2**32; ``value`` float64, amount after haircut; ``dated_inside`` bool, the deal's
    close date is inside the period (a won deal that does not land is then slipped
    revenue). ``noise_base`` / ``noise_slope`` float64, ``draws.lognormal_table``, or
    length-1 arrays for fixed amounts. Metrics (revenue or deal counts restricted to
    a subset of deals) in CSR form: deal ``d`` belongs to metrics
    ``metric_index[metric_start[d]:metric_start[d + 1]]`` (int64), and adds the share
    ``metric_share`` (float64, parallel to ``metric_index``) of its amount to a revenue metric
    (a line-item deal's product share; 1 otherwise); ``metric_kind`` int64[metrics] is
    ``REVENUE`` or ``COUNT``. ``factors`` is a ``LatentFactors``
    (every deal at level -1: independent, known rates), whose factor values and rate
    draws are indexed by absolute trial number. Trials ``first_trial`` onwards go to
    ``revenue``, ``slipped`` float64[trials] and ``metrics`` float64[metrics, trials],
    in blocks of ``trial_block`` trials, one block per parallel task.

    Every draw is a function of (seed, deal, trial) or (seed, factor or rate cell,
    trial) only, and each trial sums its deals in one fixed order (``factors.deal_order``:
    level by level), so neither ``trial_block`` nor the thread count changes a bit.

    Fixed and noisy amounts run in two compiled kernels, so a run compiles only the one
    it needs (start-up).
    """
    blocks = _noisy_blocks if noise_base.shape[0] > 1 else _fixed_blocks
    blocks(
        starts, win_threshold, land_threshold, value, dated_inside, noise_base, noise_slope,
        metric_start, metric_index, metric_share, metric_kind, factors, first_trial, trial_block,
        revenue, slipped, metrics,
    )  # fmt: skip


@njit(parallel=True, cache=True, error_model="numpy")
def _noisy_blocks(
    starts, win_threshold, land_threshold, value, dated_inside, noise_base, noise_slope,
    metric_start, metric_index, metric_share, metric_kind, factors, first_trial, trial_block,
    revenue, slipped, metrics,
):  # fmt: skip
    n_blocks = (revenue.shape[0] + trial_block - 1) // trial_block
    for block in prange(n_blocks):
        lo = block * trial_block
        size = min(trial_block, revenue.shape[0] - lo)
        _noisy_block(
            starts, win_threshold, land_threshold, value, dated_inside, noise_base, noise_slope,
            metric_start, metric_index, metric_share, metric_kind, factors, first_trial + lo,
            revenue[lo : lo + size], slipped[lo : lo + size], metrics[:, lo : lo + size],
        )  # fmt: skip


@njit(parallel=True, cache=True, error_model="numpy")
def _fixed_blocks(
    starts, win_threshold, land_threshold, value, dated_inside, noise_base, noise_slope,
    metric_start, metric_index, metric_share, metric_kind, factors, first_trial, trial_block,
    revenue, slipped, metrics,
):  # fmt: skip
    n_blocks = (revenue.shape[0] + trial_block - 1) // trial_block
    for block in prange(n_blocks):
        lo = block * trial_block
        size = min(trial_block, revenue.shape[0] - lo)
        _fixed_block(
            starts, win_threshold, land_threshold, value, dated_inside,
            metric_start, metric_index, metric_share, metric_kind, factors, first_trial + lo,
            revenue[lo : lo + size], slipped[lo : lo + size], metrics[:, lo : lo + size],
        )  # fmt: skip


@njit(inline="always")
def _outcome(start, trial, win_at, land_at):
    """(won, landed) of one deal in one trial."""
    win_draw, land_draw = uniform_pair(mix_a(counter(start, trial)))
    return win_draw < win_at, land_draw < land_at


@njit(inline="always")
def _outcomes(start, trial0, win_at, land_at, outcome):
    """Each trial's outcome of one deal: 0 lost, 1 won but not landed, 2 landed (LANDED).

    Kept to integer arithmetic and a uint8 store, the loop vectorises on AVX2 (which
    has no int64 -> float64 conversion, and short-circuit ``and`` is a branch).
    """
    for i in range(outcome.shape[0]):
        won, lands = _outcome(start, trial0 + i, win_at, land_at)
        outcome[i] = won * (1 + lands)


@njit(inline="always")
def _level_outcomes(start, trial0, win_at, land_at, outcome):
    """Outcomes against a win threshold per trial (``win_at`` uint32[size]).

    uint32, not int64: half the memory read per trial, which makes this loop 1.3x faster.
    """
    for i in range(outcome.shape[0]):
        won, lands = _outcome(start, trial0 + i, np.int64(win_at[i]), land_at)
        outcome[i] = won * (1 + lands)


@njit(inline="always")
def _interpolated_outcomes(start, trial0, weights, rate_lo, slope_lo, rate_hi, slope_hi, land_at, outcome):
    """Outcomes against a win rate interpolated between two levels (cubic Hermite).

    ``weights`` are the deal's four Hermite coefficients for the rate and slope at its
    level and the next: four loads and multiply-adds per trial, no Phi.
    """
    a, b, c, e = weights[0], weights[1], weights[2], weights[3]
    for i in range(outcome.shape[0]):
        win_rate = a * rate_lo[i] + b * slope_lo[i] + c * rate_hi[i] + e * slope_hi[i]
        win_draw, land_draw = uniform_pair(mix_a(counter(start, trial0 + i)))
        outcome[i] = (unit_interval(win_draw) < win_rate) * (1 + (land_draw < land_at))


@njit(inline="always")
def _threshold(win_rate):
    """A rate as a uint32 threshold, rounded up: ``draw < threshold`` exactly when ``draw / 2**32 <
    rate``, kept below 2**32 (a rate within 2**-32 of 1 loses once in 2**32 draws)."""
    return np.uint32(min(max(np.ceil(win_rate * 4294967296.0), 0.0), 4294967295.0))


@njit(cache=True, error_model="numpy")
def _level_rates(level, factors, trial0, threshold, rate, slope, scratch):
    """The win rate at one latent level in each trial from ``trial0`` on.

    A deal wins when ``loadings . factors + noise / scale < latent`` (``latent`` is
    Phi^-1 of its win rate), so given the factors its rate is
    Phi((latent - shift) * scale). Writes ``rate``, ``threshold`` (``_threshold``, uint32)
    and ``slope`` (d rate / d latent, for interpolation); rate and slope as float32 (half
    the memory the interpolation reads; rounding adds < 3e-8). The rate is the level's
    base rate plus the change of the approximate Phi, so with no shift it is exactly the
    base rate. An uncertain level's base rate is its draw in the trial (``rng.rate_draw``
    from its cell's stream), and its latent that draw's Phi^-1; without factors the draw is
    the rate and only the threshold is written (no deal interpolates on an uncertain
    level). ``scratch`` is float64[2, size].
    """
    shift, drawn = scratch[0], scratch[1]
    group = factors.level_group[level]
    table = factors.level_table[level]
    first, last = factors.factor_start[group], factors.factor_start[group + 1]
    if table >= 0:
        start, base, steps = factors.table_start[table], factors.rate_base[table], factors.rate_slope[table]
        for i in range(drawn.shape[0]):
            drawn[i] = rate_draw(mix_a(counter(start, trial0 + i)), base, steps)
        if first == last:  # the draw is the rate (no deal interpolates on an uncertain level)
            for i in range(drawn.shape[0]):
                threshold[i] = _threshold(drawn[i])
            return
    scale = factors.group_scale[group]
    shift[:] = 0.0  # loadings . factors
    for m in range(first, last):
        loading = factors.factor_loading[m]
        values = factors.factor_values[factors.factor_index[m]]
        for i in range(shift.shape[0]):
            shift[i] += loading * values[trial0 + i]
    if table >= 0:
        for i in range(shift.shape[0]):
            latent = min(max(normal_quantile(drawn[i]), -LATENT_LIMIT), LATENT_LIMIT)
            cdf, density = normal_cdf_density((latent - shift[i]) * scale)
            win_rate = drawn[i] + (cdf - normal_cdf(latent))
            rate[i] = win_rate
            slope[i] = scale * density
            threshold[i] = _threshold(win_rate)
        return
    latent = factors.level_latent[level]
    phi_latent = normal_cdf(latent)
    base = factors.level_base[level]
    for i in range(shift.shape[0]):
        cdf, density = normal_cdf_density((latent - shift[i]) * scale)
        win_rate = base + (cdf - phi_latent)
        rate[i] = win_rate
        slope[i] = scale * density
        threshold[i] = _threshold(win_rate)


@njit(inline="always")
def _level_slots(size):
    """Room for two levels' thresholds, rates and slopes over ``size`` trials, which levels they
    hold, and scratch."""
    pair = (2, size)
    rate, slope = np.empty(pair, dtype=np.float32), np.empty(pair, dtype=np.float32)
    return np.empty(pair, dtype=np.uint32), rate, slope, np.full(2, -1), np.empty(pair)


@njit(cache=True, error_model="numpy")
def _load_level(level, factors, trial0, slots):
    """Level ``level``'s rates into slot ``level % 2``, unless they are there already.

    Deals come in level order and an interpolated deal needs its level and the next, so
    two slots hold everything a deal needs and each level is computed once per block.
    """
    slot = level & 1
    if slots[3][slot] != level:
        _level_rates(level, factors, trial0, slots[0][slot], slots[1][slot], slots[2][slot], slots[4])
        slots[3][slot] = level
    return slot


@njit(cache=True, error_model="numpy")
def _deal_outcomes(d, starts, win_threshold, land_threshold, factors, slots, trial0, outcome):
    """Deal ``d``'s outcome in each trial from ``trial0`` on: independent, at its level, or interpolated.

    A call, not inlined: compiled once for both block kernels and the drivers (cold start), at
    a cost of one call per deal and block of trials.
    """
    level = factors.deal_level[d]
    if level < 0:
        _outcomes(starts[d], trial0, win_threshold[d], land_threshold[d], outcome)
        return
    size = outcome.shape[0]
    lo = _load_level(level, factors, trial0, slots)
    if factors.deal_interpolated[d]:
        hi = _load_level(level + 1, factors, trial0, slots)
        _interpolated_outcomes(
            starts[d], trial0, factors.deal_weights[d], slots[1][lo, :size], slots[2][lo, :size],
            slots[1][hi, :size], slots[2][hi, :size], land_threshold[d], outcome,
        )  # fmt: skip
    else:
        _level_outcomes(starts[d], trial0, slots[0][lo, :size], land_threshold[d], outcome)


@njit(inline="always")
def _store(block_revenue, block_slipped, block_metrics, revenue, slipped, metrics):
    """A block's totals into the outputs. Loops, not ``revenue[:] = block_revenue``: an
    array-to-array slice assignment compiles numba's shape-mismatch message, 2.5 s of cold start."""
    for i in range(revenue.shape[0]):
        revenue[i] = block_revenue[i]
        slipped[i] = block_slipped[i]
        for k in range(metrics.shape[0]):
            metrics[k, i] = block_metrics[k, i]


@njit(error_model="numpy", cache=True)
def _fixed_block(
    starts, win_threshold, land_threshold, value, dated_inside,
    metric_start, metric_index, metric_share, metric_kind, factors, trial0, revenue, slipped, metrics,
):  # fmt: skip
    """One block with fixed amounts: every loop is branch-free and vectorises."""
    size = revenue.shape[0]
    block_revenue = np.zeros(size)
    block_slipped = np.zeros(size)
    block_metrics = np.zeros((metric_kind.shape[0], size))
    outcome = np.empty(size, dtype=np.uint8)
    slots = _level_slots(size)
    for d in factors.deal_order:
        _deal_outcomes(d, starts, win_threshold, land_threshold, factors, slots, trial0, outcome)
        amount = value[d]
        slip_amount = amount if dated_inside[d] else 0.0
        for i in range(size):
            block_revenue[i] += amount if outcome[i] == LANDED else 0.0
            block_slipped[i] += slip_amount if outcome[i] == WON_NOT_LANDED else 0.0
        for m in range(metric_start[d], metric_start[d + 1]):
            k = metric_index[m]
            weight = 1.0 if metric_kind[k] == COUNT else amount * metric_share[m]
            for i in range(size):
                block_metrics[k, i] += weight if outcome[i] == LANDED else 0.0
    _store(block_revenue, block_slipped, block_metrics, revenue, slipped, metrics)


@njit(error_model="numpy", cache=True)
def _noisy_block(
    starts, win_threshold, land_threshold, value, dated_inside, noise_base, noise_slope,
    metric_start, metric_index, metric_share, metric_kind, factors, trial0, revenue, slipped, metrics,
):  # fmt: skip
    """One block with lognormal amounts, drawn only for the won deal-trials.

    A vectorised pass finds each deal's outcome in every trial, a compaction
    lists the won trials, and only those draw an amount (a second hash of the same
    counter) and add it to revenue, slipped revenue and the deal's metrics.
    """
    size = revenue.shape[0]
    block_revenue = np.zeros(size)
    block_slipped = np.zeros(size)
    block_metrics = np.zeros((metric_kind.shape[0], size))
    outcome = np.empty(size, dtype=np.uint8)
    won_at = np.empty(size, dtype=np.int64)
    won_amount = np.empty(size)
    slots = _level_slots(size)
    for d in factors.deal_order:
        start = starts[d]
        _deal_outcomes(d, starts, win_threshold, land_threshold, factors, slots, trial0, outcome)
        n_won = 0
        for i in range(size):
            won_at[n_won] = i
            n_won += outcome[i] > 0
        deal_value = value[d]
        slip_weight = 1.0 if dated_inside[d] else 0.0
        for j in range(n_won):
            i = won_at[j]
            amount = deal_value * amount_multiplier(
                mix_b(counter(start, trial0 + i)), noise_base, noise_slope
            )
            won_amount[j] = amount
            landed = outcome[i] == LANDED
            block_revenue[i] += amount if landed else 0.0
            block_slipped[i] += 0.0 if landed else amount * slip_weight
        for m in range(metric_start[d], metric_start[d + 1]):
            k = metric_index[m]
            count = metric_kind[k] == COUNT
            share = metric_share[m]
            for j in range(n_won):
                i = won_at[j]
                landed = outcome[i] == LANDED
                block_metrics[k, i] += (1.0 if count else won_amount[j] * share) if landed else 0.0
    _store(block_revenue, block_slipped, block_metrics, revenue, slipped, metrics)


def trial_block(trials: int, threads: int) -> int:
    """Trials per parallel task: at least 4 tasks per thread, 256 to 4096 trials each.

    Only speed depends on it: results are the same for any block size.
    """
    per_task = -(-trials // (4 * max(threads, 1)))
    return int(min(MAX_TRIAL_BLOCK, max(MIN_TRIAL_BLOCK, -(-per_task // 64) * 64)))


_TWO_M53 = 2.0**-53
_SIZE_DRAWS = 1 << 20  # counters below this are a trial's Poisson draws, from it on its sizes


@njit(inline="always")
def _uniform(start, n):
    """The n-th uniform in [0, 1) of a stream."""
    return np.float64(mix_a(counter(start, n)) >> np.uint64(11)) * _TWO_M53


_poisson_chunks = njit(inline="always")(draws.poisson_chunks)  # the formulas' one home: draws.py
_poisson_limit = njit(inline="always")(draws.poisson_limit)


@njit(inline="always")
def _poisson(start, n, lam):
    """Poisson(lam) by inverse CDF from one uniform (lam <= draws.POISSON_CHUNK)."""
    u = _uniform(start, n)
    mass = np.exp(-lam)
    cumulative = mass
    k = 0
    limit = _poisson_limit(lam)
    while u > cumulative and k < limit:
        k += 1
        mass *= lam / k
        cumulative += mass
    return k


@njit(parallel=True, cache=True, error_model="numpy")
def new_pipeline_trials(stream, lam, size_mean, noise_base, noise_slope, first_trial, revenue, count):
    """Deals that future activity creates and closes in the period, per trial.

    ``stream`` uint64 start of the new-pipeline stream; ``lam`` float64, the expected
    number of such deals (Poisson; drawn as a sum of chunks of at most 500);
    ``size_mean`` float64 mean size, times the ``draws.lognormal_table`` multiplier
    (length-1 arrays: fixed size). Writes float64[trials] ``revenue`` and ``count``.
    """
    n_chunks = _poisson_chunks(lam)
    chunk_lam = lam / n_chunks
    noise = noise_base.shape[0] > 1
    for t in prange(revenue.shape[0]):
        start = mix_b(counter(stream, first_trial + t))
        deals = 0
        for j in range(n_chunks):
            deals += _poisson(start, j, chunk_lam)
        total = 0.0
        for k in range(deals):
            size = size_mean
            if noise:
                size *= amount_multiplier(mix_b(counter(start, _SIZE_DRAWS + k)), noise_base, noise_slope)
            total += size
        revenue[t] = total
        count[t] = deals


@njit(parallel=True, cache=True, error_model="numpy")
def wins_to_cover(stream, remaining, size_mean, noise_base, noise_slope, needed):
    """Per trial, the (fractional) number of won deals whose sizes add up to ``remaining``.

    Sizes are ``size_mean`` times the table multiplier, drawn in order from the
    trial's stream; the last deal counts by the fraction of it still needed.
    ``remaining`` and ``needed`` float64[trials].
    """
    noise = noise_base.shape[0] > 1
    for t in prange(remaining.shape[0]):
        left = remaining[t]
        if left <= 0.0:
            needed[t] = 0.0
            continue
        if not noise:
            needed[t] = left / size_mean
            continue
        start = mix_b(counter(stream, t))
        k = 0
        while True:
            size = size_mean * amount_multiplier(
                mix_b(counter(start, _SIZE_DRAWS + k)), noise_base, noise_slope
            )
            if size >= left:
                needed[t] = k + left / size
                break
            left -= size
            k += 1


DRIVER_PARTS = 16  # drivers' trials are cut into at most this many parts, whatever the thread count


@njit(parallel=True, cache=True, error_model="numpy")
def deal_drivers(
    starts, win_threshold, land_threshold, value, noise_base, noise_slope, factors, revenue, quota,
    landed, landed_hits, landed_value, rescued, pivotal,
):  # fmt: skip
    """What each deal does to the quota, from the trials ``simulate_pipeline`` ran.

    Replays every deal's draws (same streams, same levels) against ``revenue``
    float64[trials] and ``quota`` (already lowered by the rounding tolerance). Per
    deal, int64 or float64[deals]: trials it ``landed`` in, of those the ones that
    reached the quota (``landed_hits``), its landed revenue summed (``landed_value``),
    the trials it was won but did not land in, missed the quota, and would have
    reached it had the deal landed (``rescued``: what accelerating it gains), and the
    trials it landed in and reached the quota only thanks to it (``pivotal``: what
    losing it costs).

    Trials are cut into parts run in parallel, each part summing per deal; the parts
    depend only on the number of trials and are added in order, so results do not
    depend on the thread count.
    """
    noise = noise_base.shape[0] > 1
    n_trials, n_deals = revenue.shape[0], starts.shape[0]
    part_trials = max(MAX_TRIAL_BLOCK, -(-n_trials // DRIVER_PARTS))
    n_parts = -(-n_trials // part_trials)
    counts = np.zeros((n_parts, 4, n_deals), dtype=np.int64)  # landed, hits, rescued, pivotal
    totals = np.zeros((n_parts, n_deals))
    for part in prange(n_parts):
        outcome = np.empty(MAX_TRIAL_BLOCK, dtype=np.uint8)
        end = min(n_trials, (part + 1) * part_trials)
        for lo in range(part * part_trials, end, MAX_TRIAL_BLOCK):
            size = min(MAX_TRIAL_BLOCK, end - lo)
            slots = _level_slots(size)
            for d in factors.deal_order:
                _deal_outcomes(d, starts, win_threshold, land_threshold, factors, slots, lo, outcome[:size])
                for i in range(size):
                    if outcome[i] == 0:
                        continue
                    t = lo + i
                    amount = value[d]
                    if noise:
                        amount *= amount_multiplier(mix_b(counter(starts[d], t)), noise_base, noise_slope)
                    reached = revenue[t] >= quota
                    if outcome[i] == LANDED:
                        counts[part, 0, d] += 1
                        counts[part, 1, d] += reached
                        counts[part, 3, d] += reached and revenue[t] - amount < quota
                        totals[part, d] += amount
                    elif not reached and revenue[t] + amount >= quota:
                        counts[part, 2, d] += 1
    for d in range(n_deals):  # the parts in order (loops: see _store)
        landed[d], landed_hits[d], rescued[d], pivotal[d], landed_value[d] = 0, 0, 0, 0, 0.0
        for part in range(n_parts):
            landed[d] += counts[part, 0, d]
            landed_hits[d] += counts[part, 1, d]
            rescued[d] += counts[part, 2, d]
            pivotal[d] += counts[part, 3, d]
            landed_value[d] += totals[part, d]


kernel_cache.refresh(sys.modules[__name__], (normal, rng, draws))  # numba alone checks only this file
