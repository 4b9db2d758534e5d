"""What rate uncertainty does to a forecast: P10-P90 of revenue with the rates drawn and known.

    python benchmarks/uncertainty_effect.py

Two calibrations, each run as a user would (``forecast calibrate``, then ``forecast run --json``
with and without ``rate_uncertainty``, same seed):

- a small team: a synthetic CRM history (``forecast.history.synthetic``, 4 deals a week for two
  years, with its stage history) calibrated with age buckets 30, 90, 180; the forecast is
  ``configs/deal_age.yaml`` with that fragment as its stages and ``win_by_age``;
- the Maven CRM sample (skipped when ``../shared/data/maven-crm-sales-opportunities`` is absent):
  calibrated on all its closed deals as the README shows, the forecast is the 2017-Q3 quarter of
  the deals open on 2017-07-01 (engaged before it, not closed before it), each at its product's
  list price, rated by age.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from forecast.history.synthetic import SyntheticParams, generate

ROOT = Path(__file__).resolve().parents[1]
MAVEN = ROOT.parent / "shared" / "data" / "maven-crm-sales-opportunities"


def forecast(*args: str) -> str:
    """Run the CLI, return its standard output."""
    return subprocess.run([sys.executable, "-m", "forecast", *args], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def with_and_without(scenario: dict, folder: Path) -> dict[bool, dict]:
    """``forecast run --json`` of the scenario with the rates drawn (True) and known (False)."""
    out = {}
    for uncertain in (True, False):
        path = folder / f"scenario-{uncertain}.yaml"
        path.write_text(yaml.safe_dump({**scenario, "rate_uncertainty": uncertain}))
        out[uncertain] = json.loads(forecast("run", str(path), "--json"))
    return out


def small_team(folder: Path) -> dict[bool, dict]:
    generate(SyntheticParams(deals_per_week=4.0, weeks=104), seed=3).write(folder)
    forecast("calibrate", str(folder / "deals.csv"), "--stage-history", str(folder / "stages.csv"),
             "--age-buckets", "30,90,180", "--out", str(folder / "calibration.yaml"))  # fmt: skip
    scenario = yaml.safe_load((ROOT / "configs" / "deal_age.yaml").read_text())
    del scenario["stages"], scenario["win_by_age"]
    scenario["pipeline"]["path"] = str(ROOT / "configs" / scenario["pipeline"]["path"])
    scenario["calibration"] = "calibration.yaml"
    scenario["simulation"] = {"trials": 100_000, "seed": 2026}
    return with_and_without(scenario, folder)


def maven(folder: Path) -> dict[bool, dict]:
    history = MAVEN / "sales_pipeline.csv"
    forecast("calibrate", str(history), "--map", "outcome=deal_stage", "--map", "amount=close_value",
             "--map", "created_date=engage_date", "--out", str(folder / "calibration.yaml"))  # fmt: skip
    with (MAVEN / "products.csv").open() as products:
        price = {row["product"]: row["sales_price"] for row in csv.DictReader(products)}
    price["GTXPro"] = price["GTX Pro"]  # the pipeline's spelling
    start = dt.date(2017, 7, 1)
    rows = []
    with history.open() as deals:
        for row in csv.DictReader(deals):
            engaged = dt.date.fromisoformat(row["engage_date"]) if row["engage_date"] else None
            closed = dt.date.fromisoformat(row["close_date"]) if row["close_date"] else None
            if engaged and engaged < start and not (closed and closed < start):
                dated = "2017-09-30"  # in the quarter, so rated by its age
                rows.append([row["opportunity_id"], price[row["product"]], dated, row["engage_date"], "Open"])
    with (folder / "pipeline.csv").open("w", newline="") as pipeline:
        csv.writer(pipeline).writerows([["deal_id", "amount", "close_date", "created_date", "stage"], *rows])
    scenario = {
        "period": "2017-Q3", "pipeline": {"path": "pipeline.csv"}, "calibration": "calibration.yaml",
        "stages": [{"name": "Open", "win_rate": 0.631}], "simulation": {"trials": 100_000, "seed": 1},
    }  # fmt: skip
    return with_and_without(scenario, folder)


def main() -> None:
    print("| forecast | open deals | rates | mean | P10 | P90 | P10-P90 | P(quota) |")
    print("|---|---|---|---|---|---|---|---|")
    cases = [("small team, configs/deal_age.yaml", small_team)]
    if MAVEN.exists():
        cases.append(("Maven sample, 2017-Q3", maven))
    for name, case in cases:
        with tempfile.TemporaryDirectory() as folder:
            runs = case(Path(folder))
        widths = {}
        for uncertain, run in runs.items():
            revenue = run["revenue"]
            widths[uncertain] = revenue["p90"] - revenue["p10"]
            quota = f"{run['targets'][0]['probability']:.1%}" if run["targets"] else "-"
            print(f"| {name} | {run['open_deals']:,} | {'drawn' if uncertain else 'known'} | "
                  f"{revenue['mean']:,.0f} | {revenue['p10']:,.0f} | {revenue['p90']:,.0f} | "
                  f"{widths[uncertain]:,.0f} | {quota} |")  # fmt: skip
        print(f"| | | drawn / known | | | | {widths[True] / widths[False]:.3f} | |")


if __name__ == "__main__":
    main()
