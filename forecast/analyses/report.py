"""What the report shows, computed once: the forecast, its plans, breakdowns, drivers and diagnosis."""

from __future__ import annotations

from typing import Any

from forecast.config.scenario import Scenario
from forecast.engine.simulate import simulate
from forecast.engine.summary import summarize
from forecast.inputs.deals import Deals

TOP_DRIVERS = 5


def gather(
    scenario: Scenario,
    deals: Deals,
    trials: int | None = None,
    seed: int | None = None,
    backtest: dict | None = None,
) -> dict[str, Any]:
    """Everything the report shows, computed once from the same trials."""
    from forecast.analyses.compare import PLAN_KEYS, compare_plans
    from forecast.analyses.drivers import drivers

    by = tuple(column for column in ("owner", "region") if column in deals.columns())
    forecast = simulate(scenario, deals, trials=trials, seed=seed, by=by, independent=True)
    if scenario.plans:  # the base plan's row: the forecast's summary and the plan keys
        plans = compare_plans(scenario, deals, trials=trials, seed=seed, levels=(), base=forecast)
        summary = {key: value for key, value in plans[0].items() if key not in PLAN_KEYS}
    else:
        plans, summary = [], summarize(forecast)
    from forecast.analyses.funnel import diagnose

    movers = [
        row for row in drivers(forecast) if (row["swing"] or 0) > 0 or (row["acceleration_gain"] or 0) > 0
    ]
    top = movers[:TOP_DRIVERS] if scenario.quota is not None else []
    return {
        "forecast": forecast,
        "summary": summary,
        "plans": plans,
        "drivers": top,
        "diagnosis": diagnose(forecast),
        "backtest": backtest,
    }
