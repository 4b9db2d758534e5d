"""The compiled kernel against the plain-Python reference: same seed, same streams, same bits."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from forecast.engine.correlation import no_correlation
from forecast.engine.kernels import COUNT, MAX_TRIAL_BLOCK, REVENUE, simulate_pipeline, trial_block
from forecast.engine.rng import deal_keys, lognormal_table, stream_starts
from tests import naive


def _inputs(n_deals: int, seed: int):
    rs = np.random.default_rng(seed)
    return {
        "keys": deal_keys([f"deal-{seed}-{i}" for i in range(n_deals)]),
        "win_rate": rs.choice([0.0, 0.1, 0.5, 0.9, 1.0], n_deals),
        "land_rate": rs.choice([0.0, 0.3, 0.8, 1.0], n_deals),
        "value": rs.integers(1, 100, n_deals) * 1000.0,
        "dated_inside": rs.random(n_deals) < 0.6,
        "metrics": [
            (REVENUE, rs.random(n_deals) < 0.5),
            (COUNT, rs.random(n_deals) < 0.5),
            (COUNT, np.zeros(n_deals, bool)),
        ],
    }


def _run(inputs, seed, table, trials, first_trial=0, block=MAX_TRIAL_BLOCK):
    metrics = inputs["metrics"]
    membership = np.array([mask for _, mask in metrics])
    metric_start = np.concatenate([[0], np.cumsum(membership.sum(axis=0))]).astype(np.int64)
    metric_index = np.nonzero(membership.T)[1].astype(np.int64)
    base, slope = table if table is not None else (np.ones(1), np.zeros(1))
    revenue, slipped = np.empty(trials), np.empty(trials)
    values = np.empty((len(metrics), trials))
    simulate_pipeline(
        stream_starts(np.uint64(seed), inputs["keys"]),
        np.round(inputs["win_rate"] * 2**32).astype(np.int64),
        np.round(inputs["land_rate"] * 2**32).astype(np.int64),
        inputs["value"],
        inputs["dated_inside"],
        base,
        slope,
        metric_start,
        metric_index,
        np.array([kind for kind, _ in metrics], np.int64),
        no_correlation(len(inputs["keys"])),
        first_trial,
        block,
        revenue,
        slipped,
        values,
    )
    return revenue, slipped, values


@pytest.mark.parametrize("sigma", [0.0, 0.35])
@pytest.mark.parametrize(("n_deals", "seed"), [(1, 1), (7, 2), (25, 3)])
def test_kernel_matches_reference(n_deals, seed, sigma):
    inputs = _inputs(n_deals, seed)
    table = lognormal_table(sigma) if sigma else None
    trials = 300
    fast = _run(inputs, seed, table, trials)
    slow = naive.simulate(
        seed,
        inputs["keys"],
        inputs["win_rate"],
        inputs["land_rate"],
        inputs["value"],
        inputs["dated_inside"],
        table,
        inputs["metrics"],
        trials,
    )
    for fast_part, slow_part in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(fast_part, slow_part)
    assert fast[0].any()  # the comparison is not between two empty results


def test_trials_depend_only_on_their_index():
    """Any split of the trials (blocks, threads, chunks) gives the same bits."""
    inputs = _inputs(30, 4)
    table = lognormal_table(0.2)
    whole = _run(inputs, 4, table, 3 * MAX_TRIAL_BLOCK + 17)
    split = 2 * MAX_TRIAL_BLOCK - 5
    head = _run(inputs, 4, table, split)
    tail = _run(inputs, 4, table, 3 * MAX_TRIAL_BLOCK + 17 - split, first_trial=split)
    for all_trials, first, rest in zip(whole, head, tail, strict=True):
        np.testing.assert_array_equal(all_trials, np.concatenate([first, rest], axis=-1))


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_block_size_does_not_change_results(sigma):
    inputs = _inputs(20, 7)
    table = lognormal_table(sigma) if sigma else None
    runs = [_run(inputs, 7, table, 3000, block=block) for block in (64, 256, 1000, 4096)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("trials", "threads", "block"), [(1, 2, 256), (10_000, 2, 1280), (10**6, 2, 4096), (10**5, 1, 4096)]
)
def test_trial_block_keeps_every_thread_busy(trials, threads, block):
    assert trial_block(trials, threads) == block


def test_thread_count_does_not_change_results():
    inputs = _inputs(40, 5)
    table = lognormal_table(0.3)
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = _run(inputs, 5, table, 4 * MAX_TRIAL_BLOCK)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = _run(inputs, 5, table, 4 * MAX_TRIAL_BLOCK)
    finally:
        numba.set_num_threads(threads)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


def test_deal_streams_follow_the_deal_not_its_position():
    """Reordering deals leaves every trial's totals unchanged (common random numbers)."""
    inputs = _inputs(12, 6)
    order = np.random.default_rng(0).permutation(12)
    shuffled = {
        name: (value[order] if name != "metrics" else [(k, m[order]) for k, m in value])
        for name, value in inputs.items()
    }
    a = _run(inputs, 6, None, 500)
    b = _run(shuffled, 6, None, 500)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12)
