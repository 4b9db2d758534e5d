"""The HTML report: the headline in words, a summary table and inline SVG charts, one self-contained page."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from forecast.analyses.drivers import MIN_STAKE, SEPARATION
from forecast.analyses.report import gather
from forecast.config.scenario import Scenario
from forecast.inputs.deals import Deals
from forecast.reporting import charts
from forecast.reporting.terminal import diagnosis_lines, target_value
from forecast.reporting.words import chance, deals_sentence, described_columns, verdict

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 60rem; padding: 0 1rem; color: #1a202c; line-height: 1.45; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.headline { font-size: 1.2rem; background: #ebf8ff; border-left: 4px solid #2b6cb0; padding: 0.8rem 1rem; }
.meta { color: #4a5568; font-size: 0.9rem; }
figure.chart { margin: 0.5rem 0 1.5rem; } figure.chart svg { width: 100%; height: auto; }
figcaption { color: #4a5568; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #e2e8f0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
@media print { body { margin: 0; max-width: none; } figure.chart { break-inside: avoid; } }
"""

MEASURE = """
window.addEventListener("load", function () {
  document.querySelectorAll("figure.chart").forEach(function (figure) {
    var box = figure.querySelector("svg").getBoundingClientRect();
    figure.setAttribute("data-drawn-width", Math.round(box.width));
    figure.setAttribute("data-drawn-height", Math.round(box.height));
  });
  document.body.setAttribute("data-measured", "yes");
});
"""


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def marks(data: dict[str, Any]) -> dict[str, float]:
    """Revenue lines to draw: the quota, then each plan's different revenue goal (a stretch)."""
    quota = data["forecast"].scenario.quota
    lines = {} if quota is None else {f"{quota.name} {quota.at_least:,.0f}": quota.at_least}
    for result in data["plans"][1:]:
        goal = next((t for t in result["targets"] if t["metric"] == "revenue" and not t["where"]), None)
        if goal is not None and (quota is None or goal["at_least"] != quota.at_least):
            lines[f"{result['plan']} {goal['at_least']:,.0f}"] = goal["at_least"]
    return lines


def stretch_sentences(plans: list[dict[str, Any]]) -> list[str]:
    """One sentence per plan that raises a target (or adds one): each such goal's chance, in words."""
    if not plans:
        return []
    base = {target["name"]: target for target in plans[0]["targets"]}
    sentences = []
    for result in plans[1:]:
        goals = [
            target for target in result["targets"]
            if target["name"] not in base or target["at_least"] > base[target["name"]]["at_least"]
        ]  # fmt: skip
        if goals:
            said = "; ".join(
                f"{target_value(goal['metric'], goal['at_least'])} {goal['name']} "
                f"{verdict(goal['probability'])} ({chance(goal['probability'])})"
                for goal in goals
            )
            sentences.append(f"The {result['plan']} plan: {said}.")
    return sentences


def headline(data: dict[str, Any]) -> str:
    """The forecast in a few sentences: the quota's chance in words, each stretch goal's, the deals."""
    summary = data["summary"]
    quota = data["forecast"].scenario.quota
    if quota is not None:
        p = next(t for t in summary["targets"] if t["name"] == quota.name)["probability"]
        sentences = [f"{chance(p)} chance to reach the {quota.at_least:,.0f} {quota.name}: {verdict(p)}."]
    else:
        sentences = [f"Expected revenue {summary['revenue']['mean']:,.0f}."]
    sentences += stretch_sentences(data["plans"])
    if data["drivers"] is not None:
        sentences.append(deals_sentence(data["drivers"]))
    return " ".join(sentences)


def figures(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(id, caption, figure) for every chart that applies to this scenario."""
    forecast, summary = data["forecast"], data["summary"]
    lines = marks(data)
    out = [
        ("distribution", "Revenue in the period over all trials: the quota, stretch goals, P10 / P50 / P90.",
         charts.distribution(forecast.trials.revenue, summary, lines)),
        ("s-curve", "The chance of at least x: read any amount off the curve.",
         charts.s_curve(forecast.trials.revenue, lines)),
        ("split", "Expected revenue by source.", charts.split(summary)),
    ]  # fmt: skip
    if data["plans"]:
        out.append(
            (
                "plans",
                "Plans on the same trials: P(all targets) with 95 % intervals.",
                charts.plans(data["plans"]),
            )
        )
    for column, rows in summary["breakdown"].items():
        out.append(
            (
                f"by-{column}",
                f"Expected revenue by {column}, P10-P90, against quotas.",
                charts.attainment(rows, column),
            )
        )
    if data["drivers"] is not None and data["drivers"]["deals"]:
        caption = "The deals that matter: P(hit) lost if each does not land (± 2 standard errors)."
        out.append(("drivers", caption, charts.drivers(data["drivers"]["deals"])))
    if data["backtest"]:
        caption = "Backtest: what the forecast said at each past origin, and what happened, per part."
        out.append(("backtest", caption, charts.backtest(data["backtest"]["origins"])))
        caption = (
            "Backtest: where each actual fell in its forecast (PIT), per part; flat (the dashed line) when "
            "the forecasts are calibrated."
        )
        out.append(("backtest-pit", caption, charts.pit_histograms(data["backtest"]["summary"])))
    return out


def _table(summary: dict[str, Any]) -> str:
    revenue = summary["revenue"]
    rows = [
        ("booked", f"{summary['booked']:,.0f}"),
        ("open deals", f"{summary['open_deals']:,}"),
        ("weighted pipeline", f"{summary['weighted_pipeline']:,.0f}"),
        ("expected revenue", f"{revenue['mean']:,.0f}"),
        *((f"P{level[1:]}", f"{revenue[level]:,.0f}") for level in ("p10", "p50", "p90")),
        *((f"P({t['name']})", chance(t["probability"])) for t in summary["targets"]),
    ]
    if summary["correlation"]:  # how much deals moving together widens the range
        effect = summary["correlation"]
        rows.append(("P10-P90 width", f"{effect['p10_p90_width']:,.0f}"))
        rows.append(("  if deals were independent", f"{effect['independent_p10_p90_width']:,.0f}"))
    body = "".join(
        f"<tr><td>{html.escape(a)}</td><td class='number'>{html.escape(b)}</td></tr>" for a, b in rows
    )
    return f"<table>{body}</table>"


def _diagnosis(diagnosis: dict[str, Any] | None) -> str:
    """The gap to quota in words: slip risk or missing pipeline, and what would close it."""
    if diagnosis is None:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in diagnosis_lines(diagnosis))
    return f"<h2>What it takes</h2><ul id='diagnosis'>{items}</ul>"


def _deals(matter: dict[str, Any] | None) -> str:
    """The deals that matter, as a table with what a manager looks them up by; nothing without a quota."""
    if matter is None:
        return ""
    heading = "<h2 id='deals-that-matter'>The deals that matter</h2>"
    rows = matter["deals"]
    if not rows:
        return f"{heading}<p>{html.escape(deals_sentence(matter))}</p>"
    described = described_columns(rows)
    headers = ["deal", *described, "amount", "close", "P(lands)", "at stake", "if accelerated"]

    def cells(row: dict[str, Any]) -> str:
        text = [row["deal_id"], *(row[key] or "-" for key in described)]
        numbers = [
            f"{row['amount']:,.0f}",
            row["close_date"],
            _percent(row["p_landed"]),
            f"{100 * row['stake']:.1f} ±{200 * row['stake_stderr']:.1f}",
            "-" if row["acceleration_gain"] is None else f"+{100 * row['acceleration_gain']:.1f}",
        ]
        return "".join(f"<td>{html.escape(value)}</td>" for value in text) + "".join(
            f"<td class='number'>{html.escape(value)}</td>" for value in numbers
        )

    head = "".join(f"<th>{name}</th>" for name in headers)
    body = "".join(f"<tr>{cells(row)}</tr>" for row in rows)
    note = (
        f"At stake: points of P(hit) lost if the deal does not land in the period, the other deals "
        f"unchanged, ± two Monte Carlo standard errors over {matter['trials']:,} trials. Named: deals "
        f"with at least {100 * MIN_STAKE:.0f} point at stake, down to the last one more than "
        f"{SEPARATION:.0f} standard errors above the next deal. If accelerated: the gain in P(hit) were "
        "it pulled into the period with no slip."
    )
    return f"{heading}<table id='deals'><tr>{head}</tr>{body}</table><p class='meta'>{html.escape(note)}</p>"


def render_html(data: dict[str, Any], drawn: list[tuple[str, str, Any]]) -> str:
    summary = data["summary"]
    period = summary["period"]
    sections = "".join(
        f"<figure class='chart' id='chart-{key}'>{charts.svg(figure)}"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for key, caption, figure in drawn
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(summary["scenario"])}: forecast</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(summary["scenario"])}</h1>
<p class="meta">{period["start"]} to {period["end"]}, as of {summary["as_of"]};
{summary["trials"]:,} trials, seed {summary["seed"]}.</p>
<p class="headline" id="headline">{html.escape(headline(data))}</p>
{_table(summary)}
{_diagnosis(data["diagnosis"])}
{_deals(data["drivers"])}
<h2>Charts</h2>
{sections}
<script>{MEASURE}</script>
</body></html>
"""


def write_report(
    scenario: Scenario,
    deals: Deals,
    out: Path,
    png_dir: Path | None = None,
    trials: int | None = None,
    seed: int | None = None,
    backtest: dict | None = None,
) -> dict[str, Any]:
    """Write the HTML report and, with ``png_dir`` (made if missing), every chart as a PNG, each atomically.

    ``backtest``: a ``forecast.history.backtest.backtest`` result, drawn as forecast against actual and as
    PIT histograms.
    """
    from forecast.inputs.output import atomic_write, output_folder

    data = gather(scenario, deals, trials, seed, backtest)
    drawn = figures(data)
    if png_dir is not None:
        output_folder(png_dir)
        for key, _, figure in drawn:
            atomic_write(png_dir / f"{key}.png", lambda tmp, figure=figure: charts.save_png(figure, tmp))
    page = render_html(data, drawn)
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return {"headline": headline(data), "charts": [key for key, _, _ in drawn], "summary": data["summary"]}
