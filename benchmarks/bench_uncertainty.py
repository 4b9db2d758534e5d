"""Uncertain rates against known ones: cost per deal-trial of the kernel in the same process.

    python benchmarks/bench_uncertainty.py            # 10,000 deals x 100,000 trials
    python benchmarks/bench_uncertainty.py --quick    # 2,000 x 20,000

The same deals and draws run twice: with every rate known (the plain kernel) and with the
rates drawn per trial from their Beta posteriors (``rate_uncertainty``). Pipelines: five
stages with evidence, a ``win_by_age`` table of 4 buckets x 5 stage rows with evidence in
every cell (20 cells), the five stages with a market correlation (correlated with uncertain
rates against correlated with known rates), and 1,000 stages of about 10 deals each (the
cost of a cell per trial, spread over few deals).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from forecast.config.loading import parse_scenario
from forecast.engine.kernels import simulate_pipeline, trial_block
from forecast.engine.model import deal_model
from forecast.engine.simulate import DealDraws
from forecast.inputs.deals import Deals

STAGES = (("Qualified", 0.1, 40, 360), ("Discovery", 0.2, 30, 120), ("Proposal", 0.35, 21, 39),
          ("Negotiation", 0.5, 12, 12), ("Commit", 0.7, 14, 6))  # name, rate, won, lost  # fmt: skip
SEED = 7
MANY = 1000  # stages of the many-cells pipeline


def make_deals(n: int, stages: int, rs: np.random.Generator) -> Deals:
    """Open deals dated inside 2026-Q3, spread over the stages, created 0-400 days before it."""
    created = np.datetime64("2026-07-01") - rs.integers(1, 400, n).astype("timedelta64[D]")
    return Deals(
        deal_id=np.array([f"D{i}" for i in range(n)], dtype=object), amount=rs.lognormal(10, 1, n),
        close_date=np.full(n, np.datetime64("2026-08-15")), probability=np.full(n, np.nan),
        stage_index=rs.integers(0, stages, n), new_logo=np.zeros(n, bool), rows=np.arange(n),
        created=created,
    )  # fmt: skip


def scenario_text(sigma: float, age: bool, market: float, many: bool) -> str:
    """Stages with evidence (and a win_by_age table with evidence in every cell, a market factor;
    or 1,000 stages)."""
    listed = [(f"S{i}", 0.0, 3 + i % 20, 10 + i % 7) for i in range(MANY)] if many else STAGES
    stages = ", ".join(
        f"{{name: {name}, win_rate: {(won + 1) / (won + lost + 2):.6f}, "
        f"evidence: {{won: {won}, lost: {lost}}}}}"
        for name, _, won, lost in listed
    )
    text = f"period: 2026-Q3\npipeline: {{path: unused.csv}}\namount: {{sigma: {sigma}}}\n"
    text += f"stages: [{stages}]\n"
    if age:
        rows = {name: [round(rate * f, 4) for f in (1.3, 1.0, 0.6, 0.2)] for name, rate, _, _ in STAGES}
        rates = ", ".join(f"{name}: {row}" for name, row in rows.items())
        cells = "[{deals: 30}, {deals: 25}, {deals: 15}, {deals: 8}]"
        evidence = ", ".join(f"{name}: {cells}" for name in rows)
        text += (
            f"win_by_age: {{buckets_days: [60, 120, 240], rates: {{default: [0.3, 0.2, 0.1, 0.03], {rates}}},"
            f" evidence: {{{evidence}}}}}\n"
        )
    if market:
        text += f"correlation: {{market: {market}}}\n"
    return text


def run_kernel(draws: DealDraws, dated_inside: np.ndarray, block: int, out: tuple) -> None:
    """One call of the kernel on prepared draws, no metrics."""
    n = len(draws.starts)
    simulate_pipeline(
        draws.starts, draws.win_threshold, draws.land_threshold, draws.value, dated_inside,
        draws.noise_base, draws.noise_slope, np.zeros(n + 1, np.int64), np.zeros(0, np.int64),
        np.zeros(0, np.int64), draws.correlation, 0, block, *out,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each, alternating; best kept")
    args = parser.parse_args()
    n, trials = (2000, 20_000) if args.quick else (10_000, 100_000)
    rs = np.random.default_rng(1)
    deals = {False: make_deals(n, len(STAGES), rs), True: make_deals(n, MANY, rs)}
    threads = numba.get_num_threads()
    print(f"{n:,} deals x {trials:,} trials, {threads} threads, best of {args.repeats} alternating runs;")
    print("ns per deal-trial of wall time, and of CPU time (all threads: a busy machine disturbs it less)\n")
    print("| pipeline | amounts | known rates | uncertain rates | ratio | CPU known | CPU uncertain "
          "| CPU ratio | levels |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, age, market, many in (
        ("five stages", False, 0.0, False), ("win_by_age, 20 cells", True, 0.0, False),
        ("five stages, market 0.15", False, 0.15, False), (f"{MANY:,} stages", False, 0.0, True),
    ):  # fmt: skip
        for sigma in (0.0, 0.25):
            runs, pipeline = {}, deals[many]
            for uncertain in (False, True):
                switch = f"rate_uncertainty: {str(uncertain).lower()}\n"
                scenario = parse_scenario(scenario_text(sigma, age, market, many) + switch)
                model = deal_model(scenario, pipeline)
                runs[uncertain] = (DealDraws.of(scenario, pipeline, model, SEED, trials), model.dated_inside)
            cost = {False: np.inf, True: np.inf}
            cpu = dict(cost)
            block = trial_block(trials, threads)
            out = np.empty(trials), np.empty(trials), np.empty((0, trials))
            for uncertain in cost:
                run_kernel(*runs[uncertain], block, out)  # warm up
            for _ in range(args.repeats):  # alternate, so that a busy spell hits both
                for uncertain in cost:
                    start, start_cpu = time.perf_counter(), time.process_time()
                    run_kernel(*runs[uncertain], block, out)
                    per = 1e9 / (n * trials)
                    cost[uncertain] = min(cost[uncertain], (time.perf_counter() - start) * per)
                    cpu[uncertain] = min(cpu[uncertain], (time.process_time() - start_cpu) * per)
            levels = len(runs[True][0].correlation.level_group)
            amounts = "lognormal" if sigma else "fixed"
            print(f"| {name} | {amounts} | {cost[False]:.2f} | {cost[True]:.2f} | "
                  f"{cost[True] / cost[False]:.2f}x | {cpu[False]:.2f} | {cpu[True]:.2f} | "
                  f"{cpu[True] / cpu[False]:.2f}x | {levels} |")  # fmt: skip


if __name__ == "__main__":
    main()
