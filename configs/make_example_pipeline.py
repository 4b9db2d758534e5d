"""Regenerate configs/example_pipeline.csv, the sample CRM export of the shipped scenarios, and
configs/last_week.csv, the same pipeline a week earlier (for ``forecast changes``).

200 open deals: 4 reps in 2 regions, 3 products, new and existing customers,
stages from Qualified to Negotiation, close dates across 2026-Q4 and 2027-Q1,
with Salesforce-style column names and probabilities in percent (a few filled in), and
creation dates (deal ages on 2026-10-15 of about 90 days on average, some far older).
A week earlier the deals created since did not exist, two deals since lost were still
open, and some deals had other close dates, amounts, stages or probabilities.

    python configs/make_example_pipeline.py
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("example_pipeline.csv")
LAST_WEEK = Path(__file__).with_name("last_week.csv")
REPS = {"Alice Martin": "EMEA", "Bruno Silva": "EMEA", "Chen Wei": "Americas", "Dana Okafor": "Americas"}
SECTORS = ("Manufacturing", "Retail", "Healthcare", "Finance")
PRODUCTS = {"Core Platform": 45_000, "Analytics": 25_000, "Support Plus": 12_000}
STAGE_NAMES = ("Qualified", "Proposal", "Negotiation")
STAGE_SHARE = (0.45, 0.33, 0.22)
CATEGORY = {"Qualified": "Pipeline", "Proposal": "Best Case", "Negotiation": "Commit"}
FIRST_CLOSE = dt.date(2026, 10, 1)
LAST_CLOSE = dt.date(2027, 3, 31)
SNAPSHOT = dt.date(2026, 10, 15)  # the export's date: every deal was created before it
WEEK_EARLIER = SNAPSHOT - dt.timedelta(days=7)
QUARTER_END = dt.date(2026, 12, 31)


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
    _write(OUT, rows)
    earlier = last_week(rows, np.random.default_rng(seed + 2))
    _write(LAST_WEEK, earlier)
    print(f"wrote {len(rows)} deals to {OUT} and {len(earlier)} to {LAST_WEEK}")


def last_week(rows: list[dict[str, str]], rng: np.random.Generator) -> list[dict[str, str]]:
    """The export a week before ``rows``: one change of each kind on a few deals."""
    earlier = [dict(row) for row in rows if dt.date.fromisoformat(row["Created Date"]) <= WEEK_EARLIER]
    for number, stage in ((201, "Proposal"), (202, "Qualified")):  # lost since: gone from this week's export
        earlier.append({**earlier[number % 50], "Opportunity ID": f"OPP-{number:04d}", "Stage": stage,
                        "Probability (%)": "", "Forecast Category": CATEGORY[stage]})  # fmt: skip
    picked = iter(rng.permutation(len(earlier) - 2))
    for _ in range(4):  # pulled in since: dated next quarter a week ago
        row = next(
            row for row in (earlier[i] for i in picked) if row["Close Date"] <= QUARTER_END.isoformat()
        )
        row["Close Date"] = (QUARTER_END + dt.timedelta(days=int(rng.integers(10, 60)))).isoformat()
    for _ in range(3):  # pushed out since: dated this quarter a week ago
        row = next(row for row in (earlier[i] for i in picked) if row["Close Date"] > QUARTER_END.isoformat())
        row["Close Date"] = (SNAPSHOT + dt.timedelta(days=int(rng.integers(20, 70)))).isoformat()
    for _ in range(4):  # re-estimated amounts
        row = earlier[next(picked)]
        row["Amount"] = f"{round(float(row['Amount']) * rng.choice((0.8, 1.25)), -2):.2f}"
    for _ in range(4):  # moved up a stage since
        row = next(row for row in (earlier[i] for i in picked) if row["Stage"] != STAGE_NAMES[0])
        row["Stage"] = STAGE_NAMES[STAGE_NAMES.index(row["Stage"]) - 1]
        row["Probability (%)"], row["Forecast Category"] = "", CATEGORY[row["Stage"]]
    for row in [row for row in earlier if row["Probability (%)"]][:3]:  # the rep's probability changed
        row["Probability (%)"] = str(int(row["Probability (%)"]) - 20)
    return earlier


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
