"""Charts of a forecast, drawn with matplotlib as self-contained SVG (and PNG for slides).

Every function takes plain result data (summaries, per-trial arrays) and returns a
``Figure``; ``svg`` and ``save_png`` turn it into what the report embeds or writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

BLUE, GREY, RED, GREEN, ORANGE = "#2b6cb0", "#a0aec0", "#c53030", "#2f855a", "#dd6b20"


def _figure(width: float = 7.5, height: float = 3.4, **grid):
    """A figure and its axes (``grid``: ``plt.subplots``'s nrows, ncols, sharex, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
    )
    return plt.subplots(figsize=(width, height), layout="constrained", **grid)


def _money_axis(axis, which: str = "x") -> None:
    from matplotlib.ticker import FuncFormatter

    formatter = FuncFormatter(
        lambda value, _: f"{value / 1e6:.2f}M" if abs(value) >= 1e6 else f"{value / 1e3:.0f}k"
    )
    (axis.xaxis if which == "x" else axis.yaxis).set_major_formatter(formatter)


def distribution(revenue: np.ndarray, summary: dict[str, Any], marks: dict[str, float]):
    """Histogram of revenue with the quota, stretch goals and P10 / P50 / P90 marked."""
    figure, axis = _figure()
    axis.hist(revenue, bins=60, color=GREY, edgecolor="white", linewidth=0.3)
    top = axis.get_ylim()[1]
    for level, style in (("p10", ":"), ("p50", "--"), ("p90", ":")):
        value = summary["revenue"][level]
        axis.axvline(value, color=BLUE, linestyle=style, linewidth=1)
        axis.text(value, top * 0.97, level.upper(), color=BLUE, ha="center", va="top", fontsize=8)
    for position, (name, value) in enumerate(marks.items()):
        axis.axvline(value, color=RED if position == 0 else ORANGE, linewidth=1.6)
        axis.text(
            value,
            top * (0.85 - 0.1 * position),
            f" {name}",
            color=RED if position == 0 else ORANGE,
            fontsize=8,
        )
    _money_axis(axis)
    axis.set_xlabel("revenue in the period")
    axis.set_ylabel("trials")
    return figure


def s_curve(revenue: np.ndarray, marks: dict[str, float]):
    """P(revenue >= x): read off the chance of at least any amount."""
    figure, axis = _figure()
    ordered = np.sort(revenue)
    chance = 1.0 - np.arange(ordered.size) / ordered.size
    axis.plot(ordered, chance, color=BLUE, linewidth=1.8)
    for position, (name, value) in enumerate(marks.items()):
        p = float(np.mean(revenue >= value))
        color = RED if position == 0 else ORANGE
        axis.axvline(value, color=color, linewidth=1)
        axis.plot([value], [p], "o", color=color)
        axis.annotate(
            f"{name}: {100 * p:.0f} %", (value, p), textcoords="offset points", xytext=(6, 6), color=color
        )
    _money_axis(axis)
    axis.set_ylim(0, 1.02)
    axis.set_xlabel("revenue x")
    axis.set_ylabel("P(revenue >= x)")
    axis.grid(alpha=0.3)
    return figure


def plans(results: list[dict[str, Any]]):
    """P(all targets) per plan with its 95 % interval (binomial standard error)."""
    figure, axis = _figure(height=0.5 + 0.45 * len(results))
    names = [result["plan"] for result in results][::-1]
    p = np.array([result["p_all_targets"] or 0.0 for result in results][::-1])
    error = 1.96 * np.array([result["p_all_targets_stderr"] or 0.0 for result in results][::-1])
    axis.barh(names, p, xerr=error, color=[GREY if n == "base" else BLUE for n in names], capsize=3)
    for position, value in enumerate(p):
        axis.text(value + 0.01, position, f"{100 * value:.1f} %", va="center", fontsize=8)
    axis.set_xlim(0, 1.1)
    axis.set_xlabel("P(all targets)")
    return figure


def attainment(rows: list[dict[str, Any]], column: str):
    """Each rep's (or group's) expected revenue with P10-P90 bars against its quota."""
    figure, axis = _figure(height=0.6 + 0.45 * len(rows))
    names = [row["name"] for row in rows][::-1]
    expected = np.array([row["revenue"]["mean"] for row in rows][::-1])
    p10 = np.array([row["revenue"]["p10"] for row in rows][::-1])
    p90 = np.array([row["revenue"]["p90"] for row in rows][::-1])
    axis.barh(names, expected, color=BLUE, alpha=0.8, label="expected")
    # P10-P90 drawn as its own line: a rep whose few deals are unlikely has a mean above P90
    # (or below P10), which error bars around the mean cannot show
    positions = np.arange(len(names))
    axis.hlines(positions, p10, p90, color=GREY, linewidth=1.5, label="P10-P90")
    axis.plot(
        np.concatenate([p10, p90]), np.concatenate([positions, positions]), "|", color=GREY, markersize=8
    )
    for position, row in enumerate(rows[::-1]):
        if row["quota"]:
            axis.plot([row["quota"]], [position], "D", color=RED, label="quota" if position == 0 else None)
            if row["probability"] is not None:
                label = f"  P(hit) {100 * row['probability']:.0f} %"
                axis.text(max(row["quota"], row["revenue"]["p90"]), position, label, va="center", fontsize=8)
    _money_axis(axis)
    axis.set_xlabel(f"revenue by {column} (open deals and won ones booked in the period)")
    axis.legend(loc="lower right", fontsize=8, frameon=False)
    return figure


def drivers(rows: list[dict[str, Any]]):
    """The deals that matter: P(hit) lost were each lost (± 2 standard errors), gained were it accelerated."""
    figure, axis = _figure(height=0.6 + 0.4 * len(rows))
    names = [row["deal_id"] for row in rows][::-1]
    stake = np.array([row["stake"] for row in rows][::-1]) * 100
    error = np.array([row["stake_stderr"] for row in rows][::-1]) * 200
    gain = np.array([row["acceleration_gain"] or 0.0 for row in rows][::-1]) * 100
    label = "at stake: P(hit) lost if it does not land (points)"
    axis.barh(names, stake, xerr=error, color=BLUE, label=label)
    axis.barh(names, gain, color=ORANGE, height=0.35, label="gain if accelerated (points)")
    axis.set_xlabel("points of P(hit)")
    axis.legend(loc="lower right", fontsize=8, frameon=False)
    return figure


def split(summary: dict[str, Any]):
    """Expected revenue by source: booked, open pipeline, deals not created yet."""
    figure, axis = _figure(height=2.0)
    left = 0.0
    parts = summary["revenue_split"]
    for (name, value), color in zip(parts.items(), (GREEN, BLUE, ORANGE), strict=True):
        axis.barh(
            ["expected"], [value], left=left, color=color, label=f"{name.replace('_', ' ')} {value:,.0f}"
        )
        left += value
    _money_axis(axis)
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize=8, frameon=False)
    return figure


def backtest(origins: list[dict[str, Any]]):
    """Forecast against actual at every origin, one panel per part: P10-P90 band, P50, the actual."""
    import datetime as dt

    parts = list(dict.fromkeys(row["part"] for row in origins))
    figure, axes = _figure(height=2.0 * len(parts), nrows=len(parts), squeeze=False, sharex=True)
    for axis, part in zip(axes[:, 0], parts, strict=True):
        rows = [row for row in origins if row["part"] == part]
        days = [dt.date.fromisoformat(row["origin"]) for row in rows]
        axis.fill_between(days, [row["p10"] for row in rows], [row["p90"] for row in rows], color=GREY,
                          alpha=0.6, linewidth=0, label="forecast P10-P90")  # fmt: skip
        axis.plot(days, [row["p50"] for row in rows], color=BLUE, linewidth=1.2, label="forecast P50")
        axis.plot(days, [row["actual"] for row in rows], "o", color=RED, markersize=3, label="actual")
        axis.set_title(f"{part}: won from the origin to the horizon's end", fontsize=9, loc="left")
        _money_axis(axis, "y")
    axes[0, 0].legend(fontsize=8, frameon=False, ncol=3, loc="upper right")
    axes[-1, 0].set_xlabel("forecast origin")
    return figure


def pit_histograms(summary: dict[str, dict[str, Any]]):
    """Each part's PIT histogram (ten bins) against the flat line a calibrated forecast gives."""
    figure, axes = _figure(height=2.4, ncols=len(summary), squeeze=False, sharey=True)
    for axis, (part, scores) in zip(axes[0], summary.items(), strict=True):
        counts = scores["pit_histogram"]
        edges = np.linspace(0.0, 1.0, len(counts) + 1)
        axis.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=BLUE, edgecolor="white")
        axis.axhline(sum(counts) / len(counts), color=RED, linestyle="--", linewidth=1)
        axis.set_title(f"{part} ({scores['verdict']})", fontsize=9)
        axis.set_xlabel("PIT")
    axes[0, 0].set_ylabel("origins")
    return figure


def svg(figure) -> str:
    """The figure as an inline SVG element (text as paths: no fonts needed to show it)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def save_png(figure, path: Path) -> None:
    """Write the figure as a PNG (for slides); ``svg`` closes it afterwards."""
    figure.savefig(path, format="png", dpi=150)


def text_histogram(revenue: np.ndarray, quota: float | None, width: int = 50, bins: int = 16) -> str:
    """A terminal histogram of revenue, the quota's bin marked (forecast run --plot)."""
    counts, edges = np.histogram(revenue, bins=bins)
    peak = max(int(counts.max()), 1)
    lines = []
    for count, low, high in zip(counts, edges[:-1], edges[1:], strict=True):
        bar = "#" * int(round(width * count / peak))
        mark = "  <- quota" if quota is not None and low <= quota < high else ""
        lines.append(f"{low:>14,.0f} - {high:<14,.0f} {bar}{mark}")
    return "\n".join(lines)
