"""Compiled simulation kernels: arrays in, arrays out, no I/O, no Python objects."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from forecast.rng import amount_multiplier, counter, mix_a, mix_b, uniform_pair

TRIAL_BLOCK = 4096

REVENUE = 0  # metric kinds: sum of landed amounts, or count of landed deals
COUNT = 1

LANDED = 2  # per-trial outcome of a deal: 0 lost, 1 won but outside the period


@njit(parallel=True, cache=True, error_model="numpy")
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
    metric_kind,
    first_trial,
    revenue,
    slipped,
    metrics,
):
    """Simulate every open deal in every trial; write per-trial totals.

    Per deal (arrays of length ``deals``): ``starts`` uint64 stream starts
    (``rng.stream_starts``); ``win_threshold`` and ``land_threshold`` uint64, the
    win probability and the probability that a won deal lands in the period, times
    2**32; ``value`` float64, amount after haircut; ``dated_inside`` bool, the deal's
    close date is inside the period (a won deal that does not land is then slipped
    revenue). ``noise_base`` / ``noise_slope`` float64, ``rng.lognormal_table``, or
    length-1 arrays for fixed amounts. Metrics (revenue or deal counts restricted to
    a subset of deals) in CSR form: deal ``d`` belongs to metrics
    ``metric_index[metric_start[d]:metric_start[d + 1]]`` (int64), ``metric_kind``
    int64[metrics] is ``REVENUE`` or ``COUNT``. Trials ``first_trial`` onwards go to
    ``revenue``, ``slipped`` float64[trials] and ``metrics`` float64[metrics, trials].

    A won deal's amount noise is drawn only for won deals, from a second hash of
    the same counter, so each trial of each deal is a pure function of the seed.
    """
    n_deals = starts.shape[0]
    n_trials = revenue.shape[0]
    n_blocks = (n_trials + TRIAL_BLOCK - 1) // TRIAL_BLOCK
    noise = noise_base.shape[0] > 1
    for block in prange(n_blocks):
        lo = block * TRIAL_BLOCK
        size = min(TRIAL_BLOCK, n_trials - lo)
        block_revenue = np.zeros(size)
        block_slipped = np.zeros(size)
        block_metrics = np.zeros((metric_kind.shape[0], size))
        outcome = np.empty(size, dtype=np.uint8)
        won_at = np.empty(size, dtype=np.int64)
        amount = np.empty(size)
        for d in range(n_deals):
            start = starts[d]
            trial0 = first_trial + lo
            win_at = win_threshold[d]
            land_at = land_threshold[d]
            for i in range(size):  # branch-free, vectorised: 0 lost, 1 won but not landed, 2 landed
                win_draw, land_draw = uniform_pair(mix_a(counter(start, trial0 + i)))
                outcome[i] = (win_draw < win_at) * (1 + (land_draw < land_at))
            n_won = 0
            for i in range(size):  # compact the won trials
                won_at[n_won] = i
                n_won += outcome[i] > 0
            if noise:
                for j in range(n_won):  # vectorised: no stores but to amount[j]
                    h = mix_b(counter(start, trial0 + won_at[j]))
                    amount[j] = value[d] * amount_multiplier(h, noise_base, noise_slope)
            else:
                amount[:n_won] = value[d]
            slip_weight = 1.0 if dated_inside[d] else 0.0
            for j in range(n_won):
                i = won_at[j]
                landed = outcome[i] == LANDED
                block_revenue[i] += amount[j] if landed else 0.0
                block_slipped[i] += 0.0 if landed else amount[j] * slip_weight
            for m in range(metric_start[d], metric_start[d + 1]):
                k = metric_index[m]
                count = metric_kind[k] == COUNT
                for j in range(n_won):
                    i = won_at[j]
                    if outcome[i] == LANDED:
                        block_metrics[k, i] += 1.0 if count else amount[j]
        revenue[lo : lo + size] = block_revenue
        slipped[lo : lo + size] = block_slipped
        metrics[:, lo : lo + size] = block_metrics
