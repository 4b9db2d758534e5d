"""The ``forecast`` command line: the group (``main``), the shared options, the commands."""

from forecast.cli import commands  # noqa: F401  (registers the commands on the group)
from forecast.cli.main import cli, main

__all__ = ["cli", "main"]
