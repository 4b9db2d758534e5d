"""forecast: Monte Carlo sales forecasts from a YAML scenario and a CRM export."""

from forecast.config.loading import load_scenario, parse_scenario
from forecast.config.scenario import Scenario
from forecast.engine.checks import check
from forecast.engine.simulate import Forecast, load_and_simulate, simulate
from forecast.engine.summary import summarize
from forecast.errors import DealError, ForecastError, OutputError, PipelineError, ScenarioError
from forecast.inputs.deals import Deals
from forecast.inputs.pipeline import load_deals

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
