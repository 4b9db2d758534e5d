"""forecast: Monte Carlo sales forecasts from a YAML scenario and a CRM export.

The public names are imported on first use (PEP 562), so ``import forecast.inputs.pipeline`` or
``forecast validate`` does not pay for the simulation engine and numba.
"""

import importlib

_EXPORTS = {  # public name -> the module that defines it
    "DealError": "forecast.errors",
    "Deals": "forecast.inputs.deals",
    "Forecast": "forecast.engine.simulate",
    "ForecastError": "forecast.errors",
    "OutputError": "forecast.errors",
    "PipelineError": "forecast.errors",
    "Scenario": "forecast.config.scenario",
    "ScenarioError": "forecast.errors",
    "check": "forecast.engine.checks",
    "load_and_simulate": "forecast.engine.simulate",
    "load_deals": "forecast.inputs.pipeline",
    "load_scenario": "forecast.config.loading",
    "parse_scenario": "forecast.config.loading",
    "simulate": "forecast.engine.simulate",
    "summarize": "forecast.engine.summary",
}

__all__ = [
    "DealError",
    "Deals",
    "Forecast",
    "ForecastError",
    "OutputError",
    "PipelineError",
    "Scenario",
    "ScenarioError",
    "check",
    "load_and_simulate",
    "load_deals",
    "load_scenario",
    "parse_scenario",
    "simulate",
    "summarize",
]


def __getattr__(name: str):
    """A public name, imported from its module the first time it is asked for."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'forecast' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups find it without calling back here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
