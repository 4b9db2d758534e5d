"""Options shared by the commands, defined once: the same names, ranges and help everywhere."""

from __future__ import annotations

from collections.abc import Callable

import click

MAX_TRIALS = 100_000_000
MAX_SEED = 2**63 - 1


def trials_option(help: str = "Override simulation.trials.") -> Callable:
    return click.option("--trials", type=click.IntRange(1, MAX_TRIALS), help=help)


def seed_option(help: str = "Override simulation.seed.", **settings) -> Callable:
    return click.option("--seed", type=click.IntRange(0, MAX_SEED), help=help, **settings)


class ThreadCount(click.ParamType):
    """1 to the threads numba can run (numba is loaded only when the option is given)."""

    name = "integer"

    def convert(self, value, param, ctx) -> int:
        import numba

        threads = click.INT.convert(value, param, ctx)
        most = numba.config.NUMBA_NUM_THREADS
        if not 1 <= threads <= most:
            self.fail(f"{threads} is not in the range 1<=x<={most}.", param, ctx)
        return threads


def _set_threads(ctx: click.Context, param: click.Parameter, threads: int | None) -> None:
    if threads is not None:
        import numba

        numba.set_num_threads(threads)


def threads_option(function: Callable) -> Callable:
    """``--threads``: numba's thread count for the simulations (results are the same for any)."""
    return click.option(
        "--threads",
        type=ThreadCount(),
        expose_value=False,
        callback=_set_threads,
        help="Simulation threads (default: all cores); the results do not depend on it.",
    )(function)


def simulation_options(function: Callable) -> Callable:
    """``--trials``, ``--seed`` and ``--threads``, for a command that simulates a scenario."""
    return trials_option()(seed_option()(threads_option(function)))


def json_option(help: str = "Print JSON.") -> Callable:
    return click.option("--json", "as_json", is_flag=True, help=help)
