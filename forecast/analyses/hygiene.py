"""What ``forecast validate`` reports besides errors: the pipeline's size, CRM hygiene warnings, and
other forecast files (funnel plans, backtests) checked as what they are."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forecast.config.loading import load_backtest, load_funnel
from forecast.config.scenario import Scenario
from forecast.engine.booked import row_rules
from forecast.engine.model import overdue_deals, rate_overrides
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals, by_value


def hygiene(scenario: Scenario, deals: Deals) -> dict[str, Any]:
    """Open deals and period; what each loading rule did with the rows; quota names without deals;
    deals whose close date is already past (``overdue``: their ids and close dates, arrays in deal
    order, so a large pipeline's thousands are not turned into Python objects to show ten)."""
    period = scenario.period_range
    unknown = {
        column: sorted(set(by_value(quotas)) - set(deals.column(column)))
        for column, quotas in scenario.quotas.items()
    }
    overdue = overdue_deals(scenario, deals)
    return {
        "source": str(scenario.source),
        "open_deals": len(deals),
        "rows": row_rules(scenario, deals),
        "rate_overrides": rate_overrides(scenario, deals),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "as_of": scenario.snapshot_date.isoformat(),
        "quota_names_without_deals": {column: names for column, names in unknown.items() if names},
        "overdue": {"deal_id": deals.deal_id[overdue], "close_date": deals.close_date[overdue]},
    }


def other_file_check(path: Path, kind: str) -> dict[str, Any]:
    """A funnel plan or backtest file checked as what it is (``kind``, from ``NotAScenarioError``):
    its keys validated and, for a backtest, the files it reads present. A calibration fragment is
    checked through the scenario that includes it."""
    if kind == "funnel":
        spec = load_funnel(path)
        return {"source": str(path), "kind": kind, "quota": spec.quota, "stages": len(spec.stages)}
    if kind == "backtest":
        spec, folder = load_backtest(path)
        history = spec.history
        needed = [("history.path", history.path)]
        if history.prices is not None:
            needed.append(("history.prices.path", history.prices.path))
        for key in ("stage_history", "category_history"):
            if getattr(history, key) is not None:
                needed.append((f"history.{key}.path", getattr(history, key).path))
        missing = [
            f"{path}: {key}: {(folder / name).resolve()} not found"
            for key, name in needed
            if not (folder / name).is_file()
        ]
        if missing:
            raise ScenarioError(missing)
        return {"source": str(path), "kind": kind, "periods": spec.period_list}
    return {"source": str(path), "kind": kind}
