"""What the report shows, computed once: the forecast, its plans, breakdowns, drivers and diagnosis."""

from __future__ import annotations

from typing import Any

from forecast.config.scenario import Scenario
from forecast.engine.simulate import simulate
from forecast.engine.summary import summarize
from forecast.inputs.deals import Deals


def gather(
    scenario: Scenario,
    deals: Deals,
    trials: int | None = None,
    seed: int | None = None,
    backtest: dict | None = None,
) -> dict[str, Any]:
    """Everything the report shows, from one simulation of the scenario (the base plan's too).

    ``drivers`` is ``deals_that_matter``'s answer, None without a quota.
    """
    from forecast.analyses.compare import PLAN_KEYS, compare_plans
    from forecast.analyses.drivers import deals_that_matter, drivers
    from forecast.analyses.funnel import diagnose

    by = tuple(column for column in ("owner", "region") if column in deals.columns())
    forecast = simulate(scenario, deals, trials=trials, seed=seed, by=by, independent=True)
    if scenario.plans:  # the base plan's row: the forecast's summary and the plan keys
        plans = compare_plans(scenario, deals, levels=(), base=forecast)
        summary = {key: value for key, value in plans[0].items() if key not in PLAN_KEYS}
    else:
        plans, summary = [], summarize(forecast)
    matter = deals_that_matter(forecast, drivers(forecast)) if scenario.quota is not None else None
    return {
        "forecast": forecast,
        "summary": summary,
        "plans": plans,
        "drivers": matter,
        "diagnosis": diagnose(forecast),
        "backtest": backtest,
    }
