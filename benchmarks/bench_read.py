"""Benchmark reading a large pipeline export: ``load_deals`` and ``forecast validate`` against
``pyarrow.csv.read_csv`` of the same file, in the same run.

The script writes its own file: ``--deals`` rows (300,000 by default, about 48 MB) shaped like the
shipped example export (``configs/example_pipeline.csv``: 13 columns, amounts with two decimals,
ISO dates, a percent probability column, some blank), with a fixed seed. Times are the best of
``--repeats``; ``validate`` runs in a fresh subprocess (start-up included, and timed alone: the
imports it needs, numba and pydantic among them). Ratios are against
pyarrow's reader, since absolute times on a shared machine vary from one run to the next. Run from
the repository root: ``python benchmarks/bench_read.py``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STARTUP = (
    "forecast.cli.commands",
    "forecast.config.loading",
    "forecast.engine.checks",
    "forecast.inputs.pipeline",
    "forecast.analyses.hygiene",
    "forecast.reporting.terminal",
)
IMPORTS = [sys.executable, "-c", "import " + ", ".join(STARTUP)]
STAGES = ("Qualified", "Proposal", "Negotiation")
SCENARIO = """period: 2026-Q4
as_of: 2026-10-15
pipeline:
  path: deals.csv
  columns: {deal_id: Opportunity ID, probability: Probability (%)}
  probability_scale: percent
stages:
  - {name: Qualified, win_rate: 0.15}
  - {name: Proposal, win_rate: 0.35}
  - {name: Negotiation, win_rate: 0.6}
"""


def write_export(path: Path, deals: int, seed: int = 14) -> None:
    """A CSV of ``deals`` open deals shaped like the example export."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    days = np.datetime64("2026-10-01") + rng.integers(-30, 180, deals)
    probability = rng.integers(0, 101, deals).astype(str).astype(object)
    probability[rng.random(deals) < 0.3] = ""
    table = pa.table(
        {
            "Opportunity ID": [f"OPP-{i:07d}" for i in range(deals)],
            "Account": [f"Account {i:04d}" for i in rng.integers(0, 5000, deals)],
            "Amount": [f"{value:.2f}" for value in rng.lognormal(9.5, 1.0, deals)],
            "Stage": np.array(STAGES)[rng.integers(0, 3, deals)],
            "Close Date": days.astype(str),
            "Probability (%)": probability.astype(str),
            "Owner": np.array(["Dana Okafor", "Lee Chen", "Ana Souza", "Sam Patel"])[
                rng.integers(0, 4, deals)
            ],
            "Region": np.array(["Americas", "EMEA", "APAC"])[rng.integers(0, 3, deals)],
            "Sector": np.array(["Finance", "Retail", "Health", "Public"])[rng.integers(0, 4, deals)],
            "Product": np.array(["Analytics", "Support Plus", "Platform"])[rng.integers(0, 3, deals)],
            "New Logo": np.array(["yes", "no"])[rng.integers(0, 2, deals)],
            "Forecast Category": np.array(["Pipeline", "Best Case", "Commit"])[rng.integers(0, 3, deals)],
            "Created Date": (days - rng.integers(10, 200, deals)).astype(str),
        }
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def best(repeats: int, run) -> float:
    """Best wall time of ``repeats`` calls of ``run``, seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement, best kept")
    args = parser.parse_args()

    import pyarrow.csv as pacsv

    from forecast.config.loading import load_scenario
    from forecast.inputs.pipeline import load_deals

    with tempfile.TemporaryDirectory(prefix="bench-read-") as folder:
        folder = Path(folder)
        write_export(folder / "deals.csv", args.deals)
        (folder / "scenario.yaml").write_text(SCENARIO)
        scenario = load_scenario(folder / "scenario.yaml")
        size = (folder / "deals.csv").stat().st_size / 1e6
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        validate = [sys.executable, "-m", "forecast", "validate", str(folder / "scenario.yaml")]
        subprocess.run(validate, env=env, check=True, capture_output=True)  # warm the file cache
        arrow = best(args.repeats, lambda: pacsv.read_csv(folder / "deals.csv"))
        loaded = best(
            args.repeats, lambda: load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
        )
        command = best(
            args.repeats, lambda: subprocess.run(validate, env=env, check=True, capture_output=True)
        )
        imports = best(
            args.repeats, lambda: subprocess.run(IMPORTS, env=env, check=True, capture_output=True)
        )
        deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    assert len(deals) == args.deals, len(deals)
    print(f"{args.deals:,} deals, {size:.1f} MB, best of {args.repeats}\n")
    print("| what | seconds | ratio to pyarrow.csv.read_csv |")
    print("|---|---:|---:|")
    for name, seconds in (
        ("pyarrow.csv.read_csv (types inferred)", arrow),
        ("load_deals", loaded),
        ("forecast validate (subprocess)", command),
        ("start-up alone: the imports validate needs (subprocess)", imports),
    ):
        print(f"| {name} | {seconds:.2f} | {seconds / arrow:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
