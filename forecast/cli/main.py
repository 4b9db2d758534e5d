"""The ``forecast`` group and the ways out of a command: exit codes, one-line errors, closed pipes.

Bad input (a ``ForecastError``) prints its ``Error:`` lines and exits 2; a failed run
exits 1; an unexpected failure is one line asking for a report, or its traceback with
``FORECAST_DEBUG=1``. A reader that stops reading (``forecast run ... | head``) ends
the command quietly with 141, the status a shell gives any tool killed by SIGPIPE."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys

import click

from forecast.errors import ForecastError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE
DEBUG_VARIABLE = "FORECAST_DEBUG"


def debugging() -> bool:
    """``FORECAST_DEBUG`` set to anything but empty or 0: show the traceback of an unexpected failure."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null so that nothing more (not even a flush) can fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # not a file (a test's capture): nothing to do
            os.dup2(devnull, stream.fileno())


class ForecastGroup(click.Group):
    """Turns library errors into ``Error:`` lines and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ForecastError as error:
            for line in error.lines:
                click.echo(f"Error: {line}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except BrokenPipeError:
            _silence_output()
            ctx.exit(EXIT_BROKEN_PIPE)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:  # a bug: say so without a traceback, unless asked for one
            if debugging():
                raise
            click.echo(
                f"Error: unexpected failure ({type(error).__name__}: {error}); please report it, "
                f"or rerun with {DEBUG_VARIABLE}=1 to see the traceback",
                err=True,
            )
            ctx.exit(EXIT_FAILED)


@click.group(cls=ForecastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-forecast")
def cli() -> None:
    """Monte Carlo sales forecasts: how likely the team is to make its numbers."""


def _exit_on_sigterm(signum: int, frame) -> None:
    """SIGTERM ends a command as Ctrl-C does: cleanup runs (temporary files, worker processes)."""
    signal.signal(signum, signal.SIG_DFL)  # a second SIGTERM ends at once
    sys.exit(128 + signum)


def main() -> None:
    """The ``forecast`` entry point; output still buffered when the command ends is flushed here,
    where a closed pipe is caught as well. SIGTERM runs the same cleanup as Ctrl-C.

    The objects start-up's imports made (modules, pydantic's validators) live to the end, so they
    are frozen out of the garbage collector: no collection walks them again, the one at exit
    included (about 0.15 s of every command)."""
    gc.freeze()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        try:
            cli.main(prog_name="forecast")
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_output()
        sys.exit(EXIT_BROKEN_PIPE)
