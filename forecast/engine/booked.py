"""Booked revenue: the scenario's ``booked`` plus the export's won rows closed inside the period,
as the total and as each target's constant (a target's ``where`` counts only the won rows it matches)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.scenario import Scenario, Target
from forecast.engine.model import where_problems
from forecast.errors import ScenarioError
from forecast.inputs.closed import won_in_period, won_outside
from forecast.inputs.deals import Deals


@dataclass(frozen=True)
class BookedParts:
    """What is already won in the period, added to every trial."""

    revenue: float  # the scenario's booked revenue plus the won rows' amounts
    new_logos: int  # the scenario's booked new logos plus the won rows that are new logos
    deals: int  # won rows in the period (the scenario's ``booked`` has no deal count)
    rows: Deals | None  # the won rows in the period (None: no export's won rows)
    targets: dict[str, float]  # target name -> its booked part


def booked_rows(scenario: Scenario, deals: Deals) -> Deals | None:
    """The export's won rows closed inside the period (None when the deals carry no won rows)."""
    if deals.won is None:
        return None
    return deals.won.subset(won_in_period(deals.won.close_date, scenario.period_range))


def value_part(parts: BookedParts, column: str, value: str) -> float:
    """The booked revenue of the won rows whose ``column`` is ``value`` (a rep's own won deals
    count toward the rep's quota); the scenario's ``booked`` is the team's, no one value's."""
    rows = parts.rows
    if rows is None or len(rows) == 0 or column not in rows.columns():
        return 0.0
    where = {column: value}
    return float((rows.amount * rows.share(where))[rows.matching(where)].sum())


def _target_part(target: Target, rows: Deals | None, totals: dict[str, float]) -> float:
    """A target's booked part: all of it without ``where``, else the won rows it matches."""
    if not target.where:
        return totals[target.metric]
    if rows is None or len(rows) == 0:
        return 0.0
    problems = where_problems(target, rows)
    if problems:
        raise ScenarioError(problems)
    mask = rows.matching(target.where)
    if target.metric == "revenue":
        return float((rows.amount * rows.share(target.where))[mask].sum())
    if target.metric == "new_logos":
        mask &= rows.new_logo
    return float(mask.sum())


def booked(scenario: Scenario, deals: Deals) -> BookedParts:
    """The period's booked revenue, new logos and won deals, and each target's part of them."""
    written = scenario.booked_totals
    rows = booked_rows(scenario, deals)
    won_amount = 0.0 if rows is None else float(rows.amount.sum())
    won_new_logos = 0 if rows is None else int(rows.new_logo.sum())
    won_deals = 0 if rows is None else len(rows)
    totals = {
        "revenue": written.revenue + won_amount,
        "new_logos": float(written.new_logos + won_new_logos),
        "deals": float(won_deals),
    }
    return BookedParts(
        revenue=totals["revenue"],
        new_logos=written.new_logos + won_new_logos,
        deals=won_deals,
        rows=rows,
        targets={target.name: _target_part(target, rows, totals) for target in scenario.targets},
    )


def row_rules(scenario: Scenario, deals: Deals) -> dict[str, Any]:
    """How many of the export's rows each loading rule took: what ``validate`` lists and ``run --json``
    gives (``won_in_period`` rows are booked; won before or after the period and lost rows are left out)."""
    rules = deals.rules
    won = deals.won.close_date if deals.won is not None else np.zeros(0, dtype="datetime64[D]")
    outside = won_outside(won, scenario.period_range)
    rows = booked_rows(scenario, deals)
    return {
        "open": int((deals.rows > 0).sum()),  # rows a plan added have no file row
        "won_in_period": int(won_in_period(won, scenario.period_range).sum()),
        "won_in_period_amount": 0.0 if rows is None else float(rows.amount.sum()),
        "won_before_period": outside["before"],
        "won_after_period": outside["after"],
        "lost": rules.lost,
        "skipped_missing_amount": list(rules.skipped),
        "zero_missing_amount": list(rules.zeroed),
        "line_items_merged": rules.merged,
        "line_items": rules.aggregate,
        "converted": dict(rules.converted),
    }
