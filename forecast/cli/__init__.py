"""The ``forecast`` command line."""

from forecast.cli.commands import main

__all__ = ["main"]
