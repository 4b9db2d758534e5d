"""Terminal rendering of results (rich tables); no computation beyond formatting."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from forecast.summary import PERCENTILES


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def target_value(metric: str, value: float) -> str:
    return money(value) if metric == "revenue" else f"{value:g}"


def summary_table(summary: dict[str, Any]) -> Table:
    """The ``forecast run`` table of one scenario."""
    period = summary["period"]
    title = f"{summary['scenario']}  {period['start']} .. {period['end']}  (as of {summary['as_of']})"
    table = Table(title=title, show_header=True, title_justify="left", min_width=cell_len(title))
    table.add_column("measure")
    table.add_column("value", justify="right")
    revenue = summary["revenue"]
    rows = [
        ("booked", money(summary["booked"])),
        ("open deals", f"{summary['open_deals']:,}"),
        ("open pipeline in period", money(summary["open_pipeline"])),
        ("weighted pipeline (amount x win rate)", money(summary["weighted_pipeline"])),
        ("pipeline coverage", "-" if summary["coverage"] is None else f"{summary['coverage']:.2f}x"),
        ("expected revenue", money(revenue["mean"])),
    ]
    rows += [(f"revenue P{level}", money(revenue[f"p{level}"])) for level in PERCENTILES]
    rows.append(("expected slipped revenue", money(summary["slipped_revenue"]["mean"])))
    rows.append(("expected new logos", f"{summary['new_logos']['mean']:.2f}"))
    for target in summary["targets"]:
        label = (
            f"P({target['name']}: {target['metric']} >= {target_value(target['metric'], target['at_least'])})"
        )
        rows.append((label, f"{percent(target['probability'])} +- {100 * target['stderr']:.2f}"))
    if summary["p_all_targets"] is not None:
        rows.append(
            (
                "P(all targets)",
                f"{percent(summary['p_all_targets'])} +- {100 * summary['p_all_targets_stderr']:.2f}",
            )
        )
    for name, value in rows:
        table.add_row(name, value)
    return table


def summary_note(summary: dict[str, Any]) -> str:
    return (
        f"{summary['trials']:,} trials, seed {summary['seed']}; +- is one Monte Carlo standard error (points)"
    )


def console(file=None) -> Console:
    """A console that keeps a stable width when output is not a terminal."""
    return Console(file=file, width=None if (file is None or file.isatty()) else 100, highlight=False)
