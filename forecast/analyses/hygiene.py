"""What ``forecast validate`` reports besides errors: the pipeline's size and CRM hygiene warnings."""

from __future__ import annotations

from typing import Any

from forecast.config.scenario import Scenario
from forecast.engine.model import overdue_deals
from forecast.inputs.deals import Deals, by_value


def hygiene(scenario: Scenario, deals: Deals) -> dict[str, Any]:
    """Open deals and period; quota names without deals; deals whose close date is already past."""
    period = scenario.period_range
    unknown = {
        column: sorted(set(by_value(quotas)) - set(deals.column(column)))
        for column, quotas in scenario.quotas.items()
    }
    overdue = overdue_deals(scenario, deals)
    return {
        "source": str(scenario.source),
        "open_deals": len(deals),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "as_of": scenario.snapshot_date.isoformat(),
        "quota_names_without_deals": {column: names for column, names in unknown.items() if names},
        "overdue": [
            {"deal_id": str(deal), "close_date": str(date)}
            for deal, date in zip(deals.deal_id[overdue], deals.close_date[overdue], strict=True)
        ],
    }
