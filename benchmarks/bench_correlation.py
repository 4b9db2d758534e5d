"""Correlated deals against independent ones: cost per deal-trial in the same process.

    python benchmarks/bench_correlation.py            # 10,000 deals x 100,000 trials
    python benchmarks/bench_correlation.py --quick    # 2,000 x 20,000

Deals that share a win rate and owner share the conditional win rate per trial (one
threshold per trial, computed once per block): five stage rates, or a CRM probability
field in whole percents. A pipeline where every deal has a probability of its own is
the worst case: each deal interpolates between two tabulated levels.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from forecast.config.loading import parse_scenario
from forecast.engine.correlation import correlation_inputs, no_correlation
from forecast.engine.draws import lognormal_table
from forecast.engine.kernels import simulate_pipeline, trial_block
from forecast.engine.model import deal_model
from forecast.engine.rng import stream_starts
from forecast.inputs.deals import Deals


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
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each, alternating; best kept")
    args = parser.parse_args()
    deals_n, trials = (2000, 20_000) if args.quick else (10_000, 100_000)
    rs = np.random.default_rng(1)
    threads = numba.get_num_threads()
    print(
        f"{deals_n:,} deals x {trials:,} trials, {threads} threads, best of {args.repeats} alternating runs\n"
    )
    print("| win rates | amounts | independent ns | correlated ns | ratio |")
    print("|---|---|---|---|---|")
    for rates_name, rates in (
        ("five stage rates", rs.choice([0.1, 0.2, 0.35, 0.5, 0.7], deals_n)),
        ("whole percents (CRM field)", np.round(rs.uniform(0.05, 0.6, deals_n), 2)),
        ("every deal its own", rs.uniform(0.05, 0.6, deals_n)),
    ):
        deals = make_deals(rs.lognormal(10, 1, deals_n), rates, owner=rs.choice(list("abcdefgh"), deals_n))
        for sigma in (0.0, 0.25):
            scenario = make_scenario(
                f"correlation: {{market: 0.15, by: {{owner: 0.1}}}}\namount: {{sigma: {sigma}}}\n"
            )
            model = deal_model(scenario, deals)
            correlated = correlation_inputs(scenario, deals, model.win_rate, 7, trials)
            base, slope = lognormal_table(sigma) if sigma else (np.ones(1), np.zeros(1))
            arguments = (
                stream_starts(np.uint64(7), rs.integers(0, 2**63, deals_n).astype(np.uint64)),
                np.round(model.win_rate * 2**32).astype(np.int64),
                np.round(model.land_rate * 2**32).astype(np.int64),
                model.value, model.dated_inside, base, slope, np.zeros(deals_n + 1, np.int64),
                np.zeros(0, np.int64), np.zeros(0, np.int64),
            )  # fmt: skip
            cost = {"independent": np.inf, "correlated": np.inf}
            runs = {"independent": no_correlation(deals_n), "correlated": correlated}
            block = trial_block(trials, numba.get_num_threads())
            out = np.empty(trials), np.empty(trials), np.empty((0, trials))
            for factors in runs.values():
                simulate_pipeline(*arguments, factors, 0, block, *out)  # warm up
            for _ in range(args.repeats):  # alternate, so that a busy spell hits both
                for name, factors in runs.items():
                    start = time.perf_counter()
                    simulate_pipeline(*arguments, factors, 0, block, *out)
                    cost[name] = min(cost[name], (time.perf_counter() - start) / (deals_n * trials) * 1e9)
            amounts = "lognormal" if sigma else "fixed"
            print(f"| {rates_name} | {amounts} | {cost['independent']:.2f} | {cost['correlated']:.2f} | "
                  f"{cost['correlated'] / cost['independent']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
