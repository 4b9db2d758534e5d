"""forecast: Monte Carlo sales forecasts from a YAML scenario and a CRM export."""

from forecast.errors import ForecastError, OutputError, PipelineError, ScenarioError
from forecast.pipeline import Deals, load_deals
from forecast.scenario import Scenario, load_scenario, parse_scenario
from forecast.simulate import Forecast, load_and_simulate, simulate
from forecast.summary import summarize

__all__ = [
    "Deals",
    "Forecast",
    "ForecastError",
    "OutputError",
    "PipelineError",
    "Scenario",
    "ScenarioError",
    "load_and_simulate",
    "load_deals",
    "load_scenario",
    "parse_scenario",
    "simulate",
    "summarize",
]
