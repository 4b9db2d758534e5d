"""Correlated deals against independent ones: cost per deal-trial in the same process.

    python benchmarks/bench_correlation.py            # 10,000 deals x 100,000 trials
    python benchmarks/bench_correlation.py --quick    # 2,000 x 20,000

Pipelines whose deals take their stage's win rate (five stages) share the conditional
win rate per stage and trial; a pipeline where every deal has its own probability is
the worst case (one normal CDF per deal-trial).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from forecast.kernels import simulate_pipeline, trial_block
from forecast.pipeline import Deals
from forecast.rng import lognormal_table, stream_starts
from forecast.scenario import parse_scenario
from forecast.simulate import _class_block, correlation_inputs, deal_model, no_correlation


def make_deals(amounts: np.ndarray, win_rates: np.ndarray, owner: np.ndarray) -> Deals:
    """Open deals dated inside 2026-Q3, each with its own probability and owner."""
    n = len(amounts)
    return Deals(
        deal_id=np.array([f"D{i}" for i in range(n)], dtype=object), amount=np.asarray(amounts, float),
        close_date=np.full(n, np.datetime64("2026-08-15")), probability=np.asarray(win_rates, float),
        stage_index=np.full(n, -1, np.int64), new_logo=np.zeros(n, bool), rows=np.arange(n),
        attributes={"owner": np.asarray(owner, dtype=object)},
    )  # fmt: skip


def make_scenario(extra: str):
    return parse_scenario("period: 2026-Q3\npipeline: {path: unused.csv}\n" + extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    deals_n, trials = (2000, 20_000) if args.quick else (10_000, 100_000)
    rs = np.random.default_rng(1)
    print(f"{deals_n:,} deals x {trials:,} trials, {numba.get_num_threads()} threads, best of 3\n")
    print("| win rates | amounts | independent ns | correlated ns | ratio |")
    print("|---|---|---|---|---|")
    for rates_name, rates in (
        ("five stage rates", rs.choice([0.1, 0.2, 0.35, 0.5, 0.7], deals_n)),
        ("every deal its own", rs.uniform(0.05, 0.6, deals_n)),
    ):
        deals = make_deals(rs.lognormal(10, 1, deals_n), rates, owner=rs.choice(list("abcdefgh"), deals_n))
        for sigma in (0.0, 0.25):
            scenario = make_scenario(
                f"correlation: {{market: 0.15, by: {{owner: 0.1}}}}\namount: {{sigma: {sigma}}}\n"
            )
            model = deal_model(scenario, deals)
            correlated = correlation_inputs(scenario, deals, model, 7, trials)
            base, slope = lognormal_table(sigma) if sigma else (np.ones(1), np.zeros(1))
            arguments = (
                stream_starts(np.uint64(7), rs.integers(0, 2**63, deals_n).astype(np.uint64)),
                np.round(model.win_rate * 2**32).astype(np.int64),
                np.round(model.land_rate * 2**32).astype(np.int64),
                model.value, model.dated_inside, base, slope, np.zeros(deals_n + 1, np.int64),
                np.zeros(0, np.int64), np.zeros(0, np.int64),
            )  # fmt: skip
            cost = {}
            for name, correlation in (("independent", no_correlation(deals_n)), ("correlated", correlated)):
                block = min(trial_block(trials, numba.get_num_threads()), _class_block(correlation))
                out = np.empty(trials), np.empty(trials), np.empty((0, trials))
                simulate_pipeline(*arguments, correlation, 0, block, *out)  # warm up
                best = np.inf
                for _ in range(3):
                    start = time.perf_counter()
                    simulate_pipeline(*arguments, correlation, 0, block, *out)
                    best = min(best, time.perf_counter() - start)
                cost[name] = best / (deals_n * trials) * 1e9
            amounts = "lognormal" if sigma else "fixed"
            print(f"| {rates_name} | {amounts} | {cost['independent']:.2f} | {cost['correlated']:.2f} | "
                  f"{cost['correlated'] / cost['independent']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
