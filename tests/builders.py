"""Small scenarios and deal sets built in code, for tests."""

from __future__ import annotations

import datetime as dt

import numpy as np

from forecast.pipeline import Deals
from forecast.scenario import Scenario, parse_scenario

PERIOD_START = dt.date(2026, 7, 1)
INSIDE = dt.date(2026, 8, 15)
AFTER = dt.date(2026, 10, 15)


def make_deals(
    amounts, probabilities=None, close_dates=None, new_logo=None, stage_index=None, **attributes
) -> Deals:
    """Deals with ids D0, D1, ...; dates inside 2026-Q3 unless given."""
    n = len(amounts)
    probabilities = np.full(n, np.nan) if probabilities is None else np.asarray(probabilities, dtype=float)
    dates = close_dates if close_dates is not None else [INSIDE] * n
    return Deals(
        deal_id=np.array([f"D{i}" for i in range(n)], dtype=object),
        amount=np.asarray(amounts, dtype=float),
        close_date=np.array([np.datetime64(d, "D") for d in dates]),
        probability=probabilities,
        stage_index=np.full(n, -1, np.int64) if stage_index is None else np.asarray(stage_index, np.int64),
        new_logo=np.zeros(n, bool) if new_logo is None else np.asarray(new_logo, bool),
        attributes={name: np.array(values, dtype=object) for name, values in attributes.items()},
        rows=np.arange(n, dtype=np.int64) + 2,
    )


def make_scenario(extra: str = "") -> Scenario:
    """A 2026-Q3 scenario whose deals carry their own probabilities."""
    return parse_scenario("period: 2026-Q3\npipeline: {path: unused.csv}\n" + extra)
