"""Regenerate configs/example_pipeline.csv, the sample CRM export of the shipped scenarios.

200 open deals: 4 reps in 2 regions, 3 products, new and existing customers,
stages from Qualified to Negotiation, close dates across 2026-Q4 and 2027-Q1,
with Salesforce-style column names and probabilities in percent (a few filled in), and
creation dates (deal ages on 2026-10-15 of about 90 days on average, some far older).

    python configs/make_example_pipeline.py
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("example_pipeline.csv")
REPS = {"Alice Martin": "EMEA", "Bruno Silva": "EMEA", "Chen Wei": "Americas", "Dana Okafor": "Americas"}
SECTORS = ("Manufacturing", "Retail", "Healthcare", "Finance")
PRODUCTS = {"Core Platform": 45_000, "Analytics": 25_000, "Support Plus": 12_000}
STAGE_NAMES = ("Qualified", "Proposal", "Negotiation")
STAGE_SHARE = (0.45, 0.33, 0.22)
CATEGORY = {"Qualified": "Pipeline", "Proposal": "Best Case", "Negotiation": "Commit"}
FIRST_CLOSE = dt.date(2026, 10, 1)
LAST_CLOSE = dt.date(2027, 3, 31)
SNAPSHOT = dt.date(2026, 10, 15)  # the export's date: every deal was created before it


def main(seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    span = (LAST_CLOSE - FIRST_CLOSE).days
    rows = []
    for number in range(1, 201):
        owner = rng.choice(list(REPS))
        product = rng.choice(list(PRODUCTS), p=(0.45, 0.35, 0.20))
        stage = rng.choice(STAGE_NAMES, p=STAGE_SHARE)
        new_logo = bool(rng.random() < 0.35)
        amount = round(PRODUCTS[product] * rng.lognormal(0.0, 0.5) * (1.3 if new_logo else 1.0), -2)
        close = FIRST_CLOSE + dt.timedelta(days=int(rng.integers(0, span + 1)))
        probability = ""
        if stage == "Negotiation" and rng.random() < 0.3:
            probability = str(int(rng.choice((60, 70, 80, 90))))
        rows.append(
            {
                "Opportunity ID": f"OPP-{number:04d}",
                "Account": f"Account {int(rng.integers(1, 140)):03d}",
                "Amount": f"{amount:.2f}",
                "Stage": stage,
                "Close Date": close.isoformat(),
                "Probability (%)": probability,
                "Owner": owner,
                "Region": REPS[owner],
                "Sector": rng.choice(SECTORS),
                "Product": product,
                "New Logo": "yes" if new_logo else "no",
                "Forecast Category": CATEGORY[stage],
            }
        )
    ages = np.random.default_rng(seed + 1).gamma(
        2.0, 45.0, len(rows)
    )  # its own stream: other columns unchanged
    for row, age in zip(rows, ages, strict=True):
        row["Created Date"] = (SNAPSHOT - dt.timedelta(days=1 + int(age))).isoformat()
    with OUT.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} deals to {OUT}")


if __name__ == "__main__":
    main()
