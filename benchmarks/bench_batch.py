"""Batch throughput: scenarios per second run serially (all threads on one scenario at a time)
against local worker processes (one single-threaded worker per core), in the same process.

    python benchmarks/bench_batch.py            # 1,000 scenarios of 500 deals x 10,000 trials
    python benchmarks/bench_batch.py --quick    # 40 scenarios

Also measures what a worker pays before its first scenario (process start, imports, loading
the compiled kernels from numba's on-disk cache), so it is clear that compilation is paid
once per machine, not once per worker or per scenario.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from forecast.analyses.batch import local_executor, plan_jobs, run_batch, run_job, scenario_files

SCENARIO = """\
period: 2026-Q4
pipeline: {{path: pipeline.csv}}
stages:
  - {{name: Qualified, win_rate: 0.15, slip: 0.35}}
  - {{name: Proposal, win_rate: 0.35, slip: 0.25}}
  - {{name: Negotiation, win_rate: 0.60}}
slip: {{default: {slip}}}
amount: {{sigma: 0.2}}
targets: [{{name: quota, metric: revenue, at_least: {quota}}}]
simulation: {{trials: {trials}}}
"""


def make_batch(folder: Path, scenarios: int, deals: int, trials: int) -> None:
    rng = np.random.default_rng(1)
    with (folder / "pipeline.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["deal_id", "amount", "stage", "close_date"])
        for i in range(deals):
            day = int(rng.integers(1, 150))
            writer.writerow([f"D{i}", round(float(rng.lognormal(10, 0.8)), 2),
                             rng.choice(["Qualified", "Proposal", "Negotiation"]),
                             str(np.datetime64("2026-10-01") + day)])  # fmt: skip
    for i in range(scenarios):
        text = SCENARIO.format(
            slip=round(0.05 + 0.3 * i / scenarios, 4), quota=2_000_000 + 1000 * i, trials=trials
        )
        (folder / f"s{i:04}.yaml").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    scenarios, deals, trials = (40, 500, 10_000) if args.quick else (1000, 500, 10_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_batch(folder, scenarios, deals, trials)
        jobs = plan_jobs(scenario_files([str(folder / "s*.yaml")]), batch_seed=0)
        run_job(jobs[0])  # warm this process: kernels loaded, pipeline cached

        start = time.perf_counter()
        run_batch(jobs, folder / "serial.parquet")
        serial = time.perf_counter() - start

        start = time.perf_counter()
        with local_executor(2) as executor:
            warm_up = time.perf_counter()
            list(executor.map(run_job, jobs[:2], [True, True]))  # each worker's first job
            first_jobs = time.perf_counter() - warm_up
            run_batch(jobs, folder / "processes.parquet", executor)
        processes = time.perf_counter() - start

    deal_trials = scenarios * deals * trials
    print(f"{scenarios:,} scenarios of {deals} deals x {trials:,} trials ({deal_trials:.1e} deal-trials)\n")
    print("| mode | wall (s) | scenarios/s | ns per deal-trial | vs serial |")
    print("|---|---|---|---|---|")
    for name, seconds in (
        ("serial, 2 numba threads", serial),
        ("2 worker processes, 1 thread each", processes),
    ):
        print(f"| {name} | {seconds:.2f} | {scenarios / seconds:.1f} | {seconds / deal_trials * 1e9:.2f} | "
              f"{serial / seconds:.2f}x |")  # fmt: skip
    per_job = serial / scenarios
    print(
        "\nworkers' first jobs (start, imports, kernels from the on-disk cache, pipeline read): "
        f"{first_jobs:.2f} s for two workers in parallel, against {per_job:.3f} s per scenario once warm"
    )


if __name__ == "__main__":
    main()
