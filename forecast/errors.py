"""Exceptions the library raises; the CLI turns them into one-line messages."""

from __future__ import annotations

MAX_PROBLEMS = 20


class ForecastError(Exception):
    """Base error: ``problems`` holds one message per problem found."""

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        shown = self.problems[:MAX_PROBLEMS]
        hidden = len(self.problems) - len(shown)
        if hidden:
            shown.append(f"... and {hidden} more problem{'s' if hidden > 1 else ''}")
        self.lines = shown
        super().__init__("\n".join(shown))


class ScenarioError(ForecastError):
    """The scenario file is missing, malformed or inconsistent."""


class PipelineError(ForecastError):
    """The pipeline export is missing, unreadable or has bad rows."""


class OutputError(ForecastError):
    """An output file could not be written."""


class DealError(PipelineError):
    """Deals break the engine's contract: a value out of range, arrays of unequal length, or totals
    too large to add up."""


class OptionError(ForecastError):
    """A command-line option's value is malformed."""


class NotAScenarioError(ScenarioError):
    """A funnel plan, backtest file or calibration fragment was given where a scenario is expected."""

    def __init__(self, problems: str | list[str], kind: str):
        super().__init__(problems)
        self.kind = kind  # what the file is: a key of config.loading.OTHER_FILES
