"""Terminal rendering of results (rich tables); no computation beyond formatting."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from forecast.engine.summary import PERCENTILES
from forecast.reporting.words import deals_sentence, described_columns, verdict

if TYPE_CHECKING:
    from forecast.analyses.batch import BatchReport
    from forecast.inputs.dialect import Reading


def money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def target_value(metric: str, value: float) -> str:
    """Revenue as money; counts as whole numbers, or with one decimal for averages."""
    if metric == "revenue":
        return money(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def summary_table(summary: dict[str, Any]) -> Table:
    """The ``forecast run`` table of one scenario."""
    period = summary["period"]
    currency = f"; amounts in {summary['currency']}" if summary.get("currency") else ""
    title = (
        f"{summary['scenario']}  {period['start']} .. {period['end']}  (as of {summary['as_of']}{currency})"
    )
    table = _titled(title)
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
    split = summary["revenue_split"]
    if split["new_pipeline"]:  # only scenarios with new_pipeline have a third source
        rows += [
            ("  from open pipeline", money(split["open_pipeline"])),
            ("  from deals not created yet", money(split["new_pipeline"])),
        ]
    rows += [(f"revenue P{level}", money(revenue[f"p{level}"])) for level in PERCENTILES]
    judgement = summary["judgement"]
    if judgement:  # the CRM's forecast categories, placed in the simulated distribution
        rows.append(
            (
                "commit call (its percentile)",
                f"{money(judgement['commit'])} ({100 * judgement['commit_percentile']:.0f})",
            )
        )
        rows.append(
            (
                "best-case call (its percentile)",
                f"{money(judgement['best_case'])} ({100 * judgement['best_case_percentile']:.0f})",
            )
        )
    effect = summary["correlation"]
    if effect:  # deals that move together widen the range
        rows.append(
            (
                "P10-P90 width (independent deals)",
                f"{money(effect['p10_p90_width'])} ({money(effect['independent_p10_p90_width'])})",
            )
        )
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
    """The trials and seed; with rates drawn from their evidence, how many, and the setting that stops it."""
    note = (
        f"{summary['trials']:,} trials, seed {summary['seed']}; +- is one Monte Carlo standard error (points)"
    )
    for line in (row_rule_line(summary["rows"]), override_line(summary["rate_overrides"])):
        if line:
            note += f"\n{line}"
    drawn = summary.get("rate_uncertainty")
    if drawn:
        cells = f"{drawn['cells']} rate{'s' if drawn['cells'] > 1 else ''}"
        note += (
            f"\nwin rates uncertain: {cells} of {drawn['deals']:,} deals drawn per trial from their evidence "
            "(rate_uncertainty: false treats them as known)"
        )
    return note


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """A closed pipe is the command line's to handle (quietly, as for any other print), not rich's
        ``SystemExit(1)``."""
        self.quiet = True
        raise BrokenPipeError


def console(file=None) -> Console:
    """A console that keeps a stable width when output is not a terminal."""
    return _Console(file=file, width=None if (file is None or file.isatty()) else 160, highlight=False)


def _points(delta: dict[str, Any] | None) -> str:
    """A paired difference of probabilities in points, with its 95 % interval."""
    if delta is None or delta["ci95"] is None:
        return "-"
    low, high = (100 * bound for bound in delta["ci95"])
    return f"{100 * delta['estimate']:+.1f} [{low:+.1f}, {high:+.1f}]"


def _extra_deals(required: dict[str, Any] | None) -> str:
    if not required or not required["levels"]:
        return "-"
    return " / ".join("-" if row["deals"] is None else str(row["deals"]) for row in required["levels"])


def compare_tables(results: list[dict[str, Any]]) -> list[Table]:
    """``forecast compare``: plans side by side, then each plan's targets."""
    first = results[0]
    levels = first["required_extra_pipeline"]["levels"] if first["required_extra_pipeline"] else []
    level_text = "/".join(f"{100 * row['probability']:.0f}" for row in levels)
    plans = Table(
        title=f"{first['scenario']}: plans on the same {first['trials']:,} trials", title_justify="left"
    )
    for name, justify in (
        ("plan", "left"),
        ("P(all targets)", "right"),
        ("vs base [95 % CI]", "right"),
        ("expected revenue", "right"),
        ("revenue P10", "right"),
        (f"extra deals for {level_text} %" if level_text else "extra deals", "right"),
    ):
        plans.add_column(name, justify=justify, no_wrap=True)
    for result in results:
        delta = result["delta_vs_base"]["p_all_targets"]
        plans.add_row(
            result["plan"],
            percent(result["p_all_targets"]),
            "-" if result["plan"] == first["plan"] else _points(delta),
            money(result["revenue"]["mean"]),
            money(result["revenue"]["p10"]),
            _extra_deals(result["required_extra_pipeline"]),
        )
    targets = Table(title="Targets per plan", title_justify="left")
    for name in ("plan", "target", "at least", "P(hit)", "expected shortfall", "gap at P10"):
        targets.add_column(name, justify="left" if name in ("plan", "target") else "right", no_wrap=True)
    for result in results:
        for target in result["targets"]:
            metric = target["metric"]
            targets.add_row(
                result["plan"],
                target["name"],
                target_value(metric, target["at_least"]),
                percent(target["probability"]),
                target_value(metric, target["expected_shortfall"]),
                target_value(metric, target["gap_at_p10"]),
            )
    return [plans, targets]


def compare_note(results: list[dict[str, Any]]) -> str:
    required = results[0]["required_extra_pipeline"]
    if not required or not required["deal"]:
        return "Differences to base are paired: every plan uses the same random numbers."
    deal = required["deal"]
    stage = f"{deal['stage']} " if deal["stage"] else ""
    return (
        "Differences to base are paired: every plan uses the same random numbers. "
        f"Extra deals: added {stage}deals of {money(deal['amount'])} (win rate {percent(deal['win_rate'])}) "
        f"needed for that P(all targets); '-' if more than {required['max_deals_searched']:,}."
    )


def _count(value: float) -> str:
    """Activity counts: two decimals below 10 (a weekly rate), one below 1,000, then whole."""
    if value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def _titled(title: str) -> Table:
    """A table at least as wide as its title, so the title never wraps."""
    return Table(title=title, title_justify="left", min_width=cell_len(title))


def funnel_tables(result: dict[str, Any]) -> list[Table]:
    """``forecast funnel``: the backward chain, then the activity for each probability."""
    chain = _titled(
        f"To reach {money(result['quota'])} with deals of {money(result['deal_size'])}"
        + (f" ({money(result['booked'])} booked)" if result["booked"] else "")
        + ": the average path"
    )
    for name in ("stage", "total", "per period", "per week"):
        chain.add_column(name, justify="left" if name == "stage" else "right", no_wrap=True)
    for row in result["chain"]["stages"]:
        chain.add_row(row["stage"], _count(row["total"]), _count(row["per_period"]), _count(row["per_week"]))
    stage = result["outermost_stage"]
    variance = result["variance"]
    activity = _titled(
        f"Weekly {stage} activity for a chance of reaching the quota "
        f"({variance['activity']} activity, {variance['conversion']} conversion)"
    )
    activity.add_column("chance", justify="right", no_wrap=True)
    names = list(result["activity"][0]["stages_per_week"]) if result["activity"] else []
    for name in reversed(names):
        activity.add_column(f"{name} / week", justify="right", no_wrap=True)
    for row in result["activity"]:
        counts = row["stages_per_week"]
        activity.add_row(percent(row["probability"]), *(_count(counts[name]) for name in reversed(names)))
    return [chain, activity]


def diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    """The diagnosis of a scenario's gap to quota, in words."""
    head = (
        f"{diagnosis['target']}: {money(diagnosis['at_least'])}; expected revenue "
        f"{money(diagnosis['expected_revenue'])}; P(hit) {percent(diagnosis['probability'])}."
    )
    if diagnosis["status"] == "covered":
        p = diagnosis["probability"]
        return [head, f"Expected revenue covers the quota; at P(hit) {percent(p)} that is {verdict(p)}."]
    lines = [head, f"Gap to quota (expected): {money(diagnosis['gap'])}."]
    accelerate = diagnosis["accelerate"]
    lines.append(
        f"Slip risk: {money(diagnosis['expected_slipped_revenue'])} of won revenue is expected to slip, "
        f"{percent(diagnosis['slip_share_of_gap'])} of the gap."
    )
    if diagnosis["status"] == "slip_risk":
        deals = accelerate["deals"]
        named = ", ".join(deals[:10]) + (", ..." if len(deals) > 10 else "")
        lines.append(
            f"Enough pipeline, at risk of slipping: accelerating {len(deals)} deals closes the gap "
            f"on average ({named}); P(hit) would be {percent(accelerate.get('probability_after'))}."
        )
        return lines
    lines.append(
        "Not enough pipeline: accelerating every deal would add "
        f"{money(diagnosis['acceleration_available'])}; {money(diagnosis['pipeline_gap'])} "
        "must come from new pipeline."
    )
    activity = diagnosis["new_activity"]
    if "extra_per_week" in activity:
        extra = ", ".join(
            f"{_count(count)} {name}" for name, count in reversed(activity["extra_per_week"].items())
        )
        lines.append(
            f"From now on, each week: {extra} more ({activity['weeks_left']:.1f} weeks left; "
            f"{percent(activity['share_closing_in_period'])} of new deals close in time)."
        )
    else:
        lines.append(activity["note"])
    return lines


def breakdown_tables(summary: dict[str, Any]) -> list[Table]:
    """Per rep / group: quota, expected, P10/P50/P90, P(hit), and the commit and best-case calls."""
    tables = []
    for column, rows in summary["breakdown"].items():
        table = _titled(
            f"{summary['scenario']} by {column} (open pipeline; booked and new pipeline are the team's)"
        )
        headers = [
            "name",
            "quota",
            "expected",
            "P10",
            "P50",
            "P90",
            "P(hit)",
            "commit (pctile)",
            "best case (pctile)",
        ]
        for header in headers:
            table.add_column(header, justify="left" if header == "name" else "right", no_wrap=True)
        for row in rows:
            revenue, judgement = row["revenue"], row["judgement"]
            calls = ["-", "-"]
            if judgement:
                calls = [
                    f"{money(judgement[key])} ({100 * judgement[f'{key}_percentile']:.0f})"
                    for key in ("commit", "best_case")
                ]
            table.add_row(
                row["name"],
                money(row["quota"]),
                money(revenue["mean"]),
                money(revenue["p10"]),
                money(revenue["p50"]),
                money(revenue["p90"]),
                percent(row["probability"]),
                *calls,
            )
        tables.append(table)
    return tables


def drivers_table(scenario: str, target: str, at_least: float, rows: list[dict[str, Any]]) -> Table:
    """``forecast drivers``: the deals ranked by P(hit) at stake, their swing, what pulling them in gains."""
    table = _titled(f"{scenario}: the deals that decide {target} ({at_least:,.0f})")
    described = described_columns(rows)
    headers = ["#", "deal", *described, "amount", "close", "P(lands)", "at stake", "swing", "if accelerated"]
    for header in headers:
        table.add_column(header, justify="left" if header in ("deal", *described, "close") else "right")
    for rank, row in enumerate(rows, start=1):
        table.add_row(
            str(rank),
            row["deal_id"],
            *(row[key] or "-" for key in described),
            money(row["amount"]),
            row["close_date"],
            percent(row["p_landed"]),
            f"{100 * row['stake']:.1f} ±{200 * row['stake_stderr']:.1f}",
            "-" if row["swing"] is None else f"{100 * row['swing']:+.1f} ±{200 * row['swing_stderr']:.1f}",
            "-" if row["acceleration_gain"] is None else f"{100 * row['acceleration_gain']:+.1f}",
        )
    return table


def drivers_note(matter: dict[str, Any]) -> str:
    """What the drivers' columns measure, then which deals stand out (``deals_that_matter``)."""
    return (
        "at stake: points of P(hit) lost if the deal does not land in the period, the other deals unchanged "
        "(the ranking); swing: P(hit) if it lands minus if it does not; both ± two Monte Carlo standard "
        "errors (more trials narrow them); if accelerated: the gain in P(hit) were it pulled in with no "
        f"slip.\n{deals_sentence(matter)}"
    )


def territory_tables(result: dict[str, Any]) -> list[Table]:
    """``forecast territories``: the current split and, when one is fairer, the suggested one, rep by rep."""
    search = result["search"]
    tables = [_territory_table(result["current"], "Current split", "units", "")]
    if result["suggested"] is not None:
        method = search["method"] + (
            f", gap to bound {search['gap']:.2f}" if search["method"] != "exact" else ""
        )
        tables.append(
            _territory_table(
                result["suggested"],
                f"Suggested split by whole {result['unit']}",
                result["unit"],
                f", today's {search['current_range']:.2f}",
                f"; {method}",
            )
        )
    return tables


def _territory_table(split: dict[str, Any], title: str, units: str, today: str, method: str = "") -> Table:
    spread = split["spread"]
    table = _titled(
        f"{title}: {spread['objective']} from {spread['min']:.2f} to {spread['max']:.2f} "
        f"(range {spread['range']:.2f}{today}, attainment CV {spread['attainment_cv'] or 0:.2f}){method}"
    )
    for name in ("rep", units, "open pipeline", "quota", "expected", "attainment", "P(hit)"):
        table.add_column(name, justify="left" if name in ("rep", units) else "right")
    for row in split["reps"]:
        table.add_row(
            row["rep"],
            ", ".join(row["units"]) or "-",
            money(row["open_pipeline"]),
            money(row["quota"]),
            money(row["expected"]),
            f"{row['attainment']:.2f}",
            percent(row["p_hit"]),
        )
    return table


def territory_lines(result: dict[str, Any]) -> list[str]:
    """``forecast territories``: why no split is suggested, when none is, and the note on units."""
    search, unit, objective = result["search"], result["unit"], result["objective"]
    lines = []
    if result["suggested"] is None:
        best, today, bound = search["best_range"], search["current_range"], search["lower_bound"]
        if search["no_fairer_split"] and search["method"] == "exact":
            lines.append(
                f"No split by whole {unit} is fairer than today's: {objective} range {best:.2f} at best, "
                f"{today:.2f} today (exact search)."
            )
        elif search["no_fairer_split"]:
            lines.append(
                f"No split by whole {unit} is fairer than today's: {objective} range at least {bound:.2f} "
                f"for any, {today:.2f} today."
            )
        else:
            lines.append(
                f"The search found no split by whole {unit} fairer than today's: {objective} range "
                f"{best:.2f} for the fairest found, {today:.2f} today; a fairer one may exist (no split "
                f"can go below {bound:.2f})."
            )
    if "note" in result:
        lines.append(result["note"])
    return lines


def changes_table(scenario: str, result: dict[str, Any]) -> Table:
    """``forecast changes``: the parts of the change, which add up to the total; P(all targets) too
    when the scenario has targets besides the quota."""
    before, after, total = result["before"], result["after"], result["total_change"]
    measures = [("expected_revenue", "expected revenue")]
    if before["p_hit"] is not None:
        measures.append(("p_hit", "P(hit)"))
    if before["p_all_targets"] is not None and (len(result["targets"]) > 1 or before["p_hit"] is None):
        measures.append(("p_all_targets", "P(all targets)"))

    def shown(key: str, value: float) -> str:
        return money(value) if key == "expected_revenue" else percent(value)

    moved = (f"{label} {shown(key, before[key])} -> {shown(key, after[key])}" for key, label in measures)
    table = _titled(f"{scenario}: " + ", ".join(moved))
    table.add_column("change")
    for key, label in measures:
        table.add_column(label if key == "expected_revenue" else f"{label}, points", justify="right")
    table.add_column("deals")

    def change(key: str, value: float) -> str:
        return f"{value:+,.0f}" if key == "expected_revenue" else f"{100 * value:+.1f}"

    for part in result["parts"]:
        deals = part["deals"]
        listed = ", ".join(deals[:6]) + (f", ... ({len(deals)})" if len(deals) > 6 else "")
        parts = (change(key, part[f"{key}_change"]) for key, _ in measures)
        table.add_row(part["kind"].replace("_", " "), *parts, listed)
    table.add_row("total", *(change(key, total[f"{key}_change"]) for key, _ in measures), "")
    return table


def win_by_age_table(fit: dict[str, Any]) -> Table:
    """``forecast calibrate``: win within a quarter by age bucket (and stage), rate and deals per cell,
    and the survival curve's rate the buckets were shrunk toward."""
    quarters = f"{fit['periods']} quarters"
    if fit["stages"]:
        strength = fit["prior_strength"]
        by = f"deal age x stage ({quarters}; cells shrunk toward their age's rate by {strength:g} deals)"
    else:
        by = f"deal age ({quarters}; no stages known)"
    table = _titled(f"Win within a quarter by {by}")
    table.add_column("stage")
    for cell in fit["by_age"]:
        table.add_column(cell["age"], justify="right")
    rows = [("any stage", fit["by_age"]), *fit["stages"].items()]
    for name, cells in rows:
        table.add_row(name, *(f"{percent(cell['win_rate'])} of {cell['deals']:,}" for cell in cells))
    table.add_row(f"survival curve ({fit['curve_strength']:.3g} deals)",
                  *(percent(cell["curve_rate"]) for cell in fit["by_age"]))  # fmt: skip
    return table


def reading_line(reading: Reading) -> str:
    """How a pipeline file was read, in one line: encoding, delimiter, decimal mark, header row, and
    each kind of row skipped (``validate`` and ``init`` print it)."""
    said = []
    if reading.encoding:
        said.append(reading.encoding)
    if reading.delimiter:
        said.append("delimiter " + ("tab" if reading.delimiter == "\t" else repr(reading.delimiter)))
    if reading.decimal:
        source = " (pipeline.decimal)" if reading.decimal_source == "pipeline.decimal" else ""
        said.append(f"decimal {reading.decimal!r}{source}")
    if reading.header_row:
        said.append(f"header on row {reading.header_row}")
    line = f"  read {reading.path.name}: {', '.join(said) or reading.kind}"
    skipped = []
    for reason, rows in reading.skipped.items():
        many = "s" if len(rows) > 1 else ""
        where = {
            "title": " above the header",
            "footer": f" after row {rows[0] - 1}",
        }.get(reason, f" ({_rows(rows)})")
        skipped.append(f"{len(rows)} {reason} row{many}{where}")
    return line + (f"; skipped {', '.join(skipped)}" if skipped else "")


def _rows(rows: list[int], shown: int = 3) -> str:
    listed = ", ".join(str(row) for row in rows[:shown])
    return ("row " if len(rows) == 1 else "rows ") + listed + (", ..." if len(rows) > shown else "")


def validation_lines(check: dict[str, Any], shown: int = 10, reading: Reading | None = None) -> list[str]:
    """``forecast validate``: one OK line per scenario, how its pipeline was read, then its hygiene
    warnings."""
    period = check["period"]
    lines = [
        f"OK {check['source']}: {check['open_deals']} open deals, period {period['start']}..{period['end']}"
    ]
    if reading is not None:
        lines.append(reading_line(reading))
    lines += [
        line for line in (row_rule_line(check["rows"], shown), override_line(check["rate_overrides"])) if line
    ]
    for column, names in check["quota_names_without_deals"].items():
        lines.append(f"warning: quotas.{column} names {', '.join(names)}, who have no deals in the pipeline")
    overdue = check["overdue"]
    count = len(overdue["deal_id"])
    if count:
        listed = [
            f"{deal} ({date})"
            for deal, date in zip(overdue["deal_id"][:shown], overdue["close_date"][:shown], strict=True)
        ]
        more = f", ... {count - shown} more" if count > shown else ""
        are = "deals are" if count > 1 else "deal is"
        lines.append(
            f"warning: {count} {are} overdue at {check['as_of']} "
            f"(counted in the period; update their close dates): {', '.join(listed)}{more}"
        )
    return lines


def _rows_listed(rows: list[int], shown: int) -> str:
    more = f", ... {len(rows) - shown} more" if len(rows) > shown else ""
    return ", ".join(str(row) for row in rows[:shown]) + more


def row_rule_line(rules: dict[str, Any], shown: int = 10) -> str | None:
    """How many rows each loading rule took, when any rule other than "open deal" took some."""
    parts = [f"{rules['open']:,} open"]
    if rules["won_in_period"]:
        booked = money(rules["won_in_period_amount"])
        parts.append(f"{rules['won_in_period']:,} won in the period -> booked ({booked})")
    for key, what in (("won_before_period", "before"), ("won_after_period", "after")):
        if rules[key]:
            parts.append(f"{rules[key]:,} won {what} the period (ignored)")
    if rules["lost"]:
        parts.append(f"{rules['lost']:,} lost (ignored)")
    for key, what in (("skipped_missing_amount", "skipped"), ("zero_missing_amount", "read as 0")):
        if rules[key]:
            parts.append(
                f"{len(rules[key]):,} without an amount, {what} (rows {_rows_listed(rules[key], shown)})"
            )
    if rules["line_items_merged"]:
        how = (
            " (detected: pipeline.aggregate: none refuses them)" if rules["line_items"] == "detected" else ""
        )
        parts.append(f"{rules['line_items_merged']:,} line items merged into their deals{how}")
    for currency, count in rules["converted"].items():
        parts.append(f"{count:,} converted from {currency}")
    return None if len(parts) == 1 else "rows: " + ", ".join(parts)


def override_line(overrides: dict[str, Any] | None) -> str | None:
    """The deals whose probability column shadows the scenario's rates, and the setting that changes it."""
    if overrides is None:
        return None
    shadowed = [
        f"{what} of {overrides[key]:,} deal{'s' if overrides[key] > 1 else ''}"
        for key, what in (("win_by_age", "the win_by_age rate"), ("stage_rates", "the stage win rate"))
        if overrides[key]
    ]
    return (
        f"note: column {overrides['column']!r} replaces {' and '.join(shadowed)}; "
        f"to use the scenario's rates, {overrides['setting']}"
    )


def other_file_lines(checks: list[dict[str, Any]]) -> list[str]:
    """``forecast validate``: one OK line per funnel plan or backtest file, saying what it is."""
    lines = []
    for check in checks:
        if check["kind"] == "funnel":
            what = f"a funnel plan, quota {check['quota']:,.0f} through {check['stages']} stages"
        elif check["kind"] == "backtest":
            periods = check["periods"]
            what = f"a backtest file, periods {periods[0]}..{periods[-1]}, its history files present"
        else:
            what = "a calibration fragment (checked through the scenario that includes it)"
        lines.append(f"OK {check['source']}: {what}")
    return lines


def batch_lines(report: BatchReport, out: Path) -> list[str]:
    """``forecast batch`` (to stderr): the counts, then every failed scenario with its problems."""
    from forecast.analyses.batch import PROBLEM_SEPARATOR  # here: batch imports the process pool

    kept = f"{report.skipped} already in {out}"
    if report.dropped:
        kept += f" ({report.dropped} earlier rows not kept: failed, changed or left the batch)"
    lines = [
        f"{report.ran} scenarios run, {kept}; {len(report.rows)} rows written; {len(report.failed)} failed"
    ]
    for row in report.failed:
        label = f" [{row['sweep']}]" if row.get("sweep") else ""
        lines.append(f"failed: {row['path']}{label}")
        lines += [f"  {problem}" for problem in row["error"].split(PROBLEM_SEPARATOR)]
    return lines


def skipped_lines(skipped: list[tuple[Path, str]], here: Path) -> list[str]:
    """``forecast batch`` (to stderr): the files of its folders that are not scenarios, and what they are."""
    return [
        f"skipped {path.relative_to(here) if path.is_relative_to(here) else path}: {kind}"
        for path, kind in skipped
    ]


def report_lines(result: dict[str, Any], out: Path) -> list[str]:
    """``forecast report``: the headline and what was written."""
    return [result["headline"], f"Wrote {out} ({len(result['charts'])} charts)."]


def calibration_lines(result: dict[str, Any], out: Path) -> list[str]:
    """``forecast calibrate``: the overall win rate and every stage's and segment's, each with its
    revenue-weighted rate (the win-by-age table follows)."""
    overall = result["overall"]
    low, high = overall["interval_90"]
    lines = [
        f"{overall['deals']:,} closed deals, win rate {overall['win_rate']:.1%} (90 % {low:.1%}-{high:.1%}); "
        f"wrote {out}"
    ]
    if overall["revenue_rate"] is not None:
        lines.append(f"  revenue-weighted (won / closed amount): {overall['revenue_rate']:.1%}, "
                     f"{_times(overall['win_rate'], overall['revenue_rate'])} the count rate")  # fmt: skip
    else:
        lines.append("  revenue-weighted: none (the lost deals carry no amount)")
    for stage in result["stages"]:
        note = f" [{stage['note']}]" if "note" in stage else ""
        lines.append(f"  {stage['name']}: {stage['win_rate']:.1%} of {stage['deals']}{note}")
    for column, rows in result["segments"].items():
        lines.append(f"  by {column} (shrunk toward the overall rate; revenue-weighted in parentheses):")
        for row in rows:
            revenue = "" if row["revenue_rate"] is None else f" ({row['revenue_rate']:.1%})"
            name = row["value"] or "(blank)"
            lines.append(f"    {name}: {row['win_rate']:.1%} of {row['deals']:,}{revenue}")
    if not result["dated"]:
        lines.append("  no close dates: slip, cycle time, win by deal age and new pipeline need them")
    return lines


def _times(count_rate: float, revenue_rate: float) -> str:
    """How the revenue-weighted rate compares with the count rate: '1.26x below', 'equal to'."""
    if revenue_rate == count_rate:
        return "equal to"
    if revenue_rate == 0 or count_rate == 0:
        return "below" if revenue_rate < count_rate else "above"
    ratio = max(count_rate, revenue_rate) / min(count_rate, revenue_rate)
    return f"{ratio:.2f}x {'below' if revenue_rate < count_rate else 'above'}"


def calibration_notes(result: dict[str, Any], with_new_pipeline: bool, min_deals: int) -> list[str]:
    """``forecast calibrate``, after the table: the new pipeline fit (written or why not), the correlation."""
    lines = []
    fit = result["new_pipeline"]
    if with_new_pipeline and not fit:
        lines.append(f"  new pipeline: not written: it needs created_date and at least {min_deals} deals won "
                     "within the quarter they were created in")  # fmt: skip
    if fit:
        block = fit["new_pipeline"]
        written = "written" if with_new_pipeline else "not written: add --new-pipeline"
        lines.append(
            f"  new pipeline: {block['conversations_per_week']:.1f} deals created a week, "
            f"{fit['won_within_period']:.1%} of them won within a quarter, mean size "
            f"{block['deal_size']['mean']:,.0f} ({fit['deals_created']:,} deals; {written})"
        )
    if "correlation" in result:
        lines += correlation_lines(result["correlation"])
    return lines


def correlation_lines(fit: dict[str, Any]) -> list[str]:
    """``forecast calibrate --backtest``: the market correlation written, and how it was chosen."""
    rolling = fit["rolling"]
    changes = [row for i, row in enumerate(rolling) if i == 0 or row["market"] != rolling[i - 1]["market"]]
    path = ", ".join(f"{row['market']:g} from {row['origin']}" for row in changes)
    return [
        f"  latent market correlation {fit['market']:g}: the lowest mean CRPS of the open-pipeline forecasts "
        f"over the backtest's {fit['origins']} origins ({fit['trials']:,} trials each), all before now",
        f"  out of sample, as the backtest scores it, each origin's value is fitted on earlier origins only "
        f"(those whose horizons had ended; 0 until {fit['min_origins']} had): {path}",
    ]


PART_NAMES = {
    "open": "open pipeline (deals open at the origin)",
    "new": "new pipeline (deals created after the origin)",
    "total": "total (open + new)",
}
BASELINE_NAMES = {"weighted_pipeline": "weighted pipeline", "naive": "naive", "crm_call": "CRM call"}


def _interval(coverage: dict[str, float]) -> str:
    return f"{100 * coverage['value']:.0f} % ({100 * coverage['low']:.0f}-{100 * coverage['high']:.0f})"


def _half_life_name(life: float | None) -> str:
    return "none" if life is None else f"{life:g} days"


def backtest_lines(result: dict[str, Any]) -> list[str]:
    """``forecast backtest``: what was run, from which origins, and the origins skipped and why."""
    settings = result["settings"]
    origins = [row for row in result["origins"] if row["part"] == "open"]
    step = settings["origins"]
    every = f"every {step} days" if isinstance(step, int) else step
    horizon = (
        "the rest of its quarter" if settings["horizon_days"] is None else f"{settings['horizon_days']} days"
    )
    model = settings["model"]
    used = ", ".join(f"{value:g}" for value in sorted({fit["correlation"] for fit in result["fitted"]}))
    correlation = used
    if model["correlation"] == "fitted":
        correlation = (
            f"{used} (fitted at each origin: the lowest mean CRPS over the earlier origins whose horizons "
            f"had ended; 0 until {model['correlation_min_origins']} had)"
        )
    rates = "by deal age" if model["age"] else "by stage alone"
    if model["age"]:
        rates += " x stage" if settings["stage_history"] else " (no stage history)"
    lines = [
        f"{result['name'] or 'Backtest'}: {len(origins)} origins ({every}), {origins[0]['origin']} to "
        f"{origins[-1]['origin']}, each forecasting {horizon}; {settings['trials']:,} trials, seed "
        f"{settings['seed']}",
        f"  rates {rates}",
        f"  market correlation {correlation}",
    ]
    if model["half_life_days"] == "fitted":
        lives = [fit["half_life_days"] for fit in result["fitted"]]
        used = ", ".join(_half_life_name(life) for life in dict.fromkeys(lives))
        lines.append(
            f"  recency half-life {used} (fitted at each origin with the correlation, on the same "
            f"earlier origins; {_half_life_name(model['half_life_grid'][0])} until they are known)"
        )
    if settings["category_history"]:
        lines.append(
            "  the CRM's call: the open deals whose forecast category the day before was a commit category"
        )
    elif settings["crm_call_note"]:
        lines.append(f"  {settings['crm_call_note']}")
    lines += [
        f"  skipped {group['origins']} origins ({group['first']} to {group['last']}): {group['reason']}"
        for group in settings["skipped"]
    ]
    return lines


def backtest_origin_table(result: dict[str, Any], part: str) -> Table:
    """``forecast backtest``: one part's forecast against actual at every origin, and the baselines."""
    rows = [row for row in result["origins"] if row["part"] == part]
    names = list(rows[0]["baselines"])
    table = _titled(f"{PART_NAMES[part].capitalize()}: won within the horizon")
    headers = ["origin", "horizon end", "actual", "mean", "P10", "P50", "P90", "PIT", "CRPS"]
    for name in [*headers, *(BASELINE_NAMES[name] for name in names)]:
        table.add_column(name, justify="left" if name in ("origin", "horizon end") else "right")
    for row in rows:
        table.add_row(
            row["origin"], row["horizon_end"], *(money(row[key]) for key in ("actual", "mean", "p10", "p50",
            "p90")), f"{row['pit']:.2f}", money(row["crps"]),
            *(money(row["baselines"][name]["point"]) for name in names),
        )  # fmt: skip
    return table


def backtest_summary_table(result: dict[str, Any]) -> Table:
    """``forecast backtest``: per part, interval coverage on the effective origins, CRPS, skill, verdict."""
    names = list(dict.fromkeys(name for part in result["summary"].values() for name in part["skill"]))
    table = _titled(
        "Scores per part (share of origins whose interval held the actual, with its 95 % interval on the "
        "effective origins; skill: 1 - CRPS / the baseline's)"
    )
    headers = ["part", "origins (effective)", "50 % held", "80 % held", "90 % held", "mean CRPS"]
    for name in [*headers, *(f"skill vs {BASELINE_NAMES[name]}" for name in names), "verdict"]:
        table.add_column(name, justify="left" if name in ("part", "verdict") else "right")
    for part, summary in result["summary"].items():
        skills = [summary["skill"].get(name) for name in names]
        table.add_row(
            part, f"{summary['origins']} ({summary['effective_origins']:.1f})",
            *(_interval(summary[f"coverage_{level}"]) for level in (50, 80, 90)), money(summary["mean_crps"]),
            *("-" if value is None else f"{value:+.2f}" for value in skills), summary["verdict"],
        )  # fmt: skip
    return table


def pit_histogram_lines(part: str, summary: dict[str, Any], width: int = 40) -> list[str]:
    """A text histogram of one part's PIT values: where each actual fell in its forecast."""
    counts = summary["pit_histogram"]
    peak = max(max(counts), 1)
    uniformity = summary["uniformity"]
    lines = [
        f"PIT histogram, {part}: where each actual fell in its forecast, flat when calibrated "
        f"(uniformity on {summary['effective_origins']:.1f} effective origins: chi-square p "
        f"{uniformity['chi_square']:.3f}, KS p {uniformity['ks']:.3f})"
    ]
    bins = len(counts)
    for b, count in enumerate(counts):
        bar = "#" * round(width * count / peak)
        lines.append(f"  {b / bins:.1f}-{(b + 1) / bins:.1f} {bar:<{width}} {count}")
    return lines


def backtest_tables(result: dict[str, Any]) -> list[Any]:
    """``forecast backtest``: the settings, each part's origins, the scores, the PIT histograms."""
    from rich.text import Text

    items: list[Any] = [Text(line) for line in backtest_lines(result)]
    items += [backtest_origin_table(result, part) for part in result["summary"]]
    items.append(backtest_summary_table(result))
    for part, summary in result["summary"].items():
        items += [Text(line) for line in pit_histogram_lines(part, summary)]
    return items


class BatchProgress:
    """``forecast batch``: a rich progress bar on a terminal (done / failed / remaining, time left);
    silent otherwise."""

    def __init__(self, total: int):
        self.total = total
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.fields[status]}"), BarColumn(), TimeRemainingColumn(), transient=True
        )
        self.bar.start()
        task = self.bar.add_task("batch", total=self.total, status=f"0 done, 0 failed, {self.total} left")

        def update(done: int, failed: int, todo: int) -> None:
            status = f"{done} done, {failed} failed, {todo - done} left"
            self.bar.update(task, completed=done + (self.total - todo), status=status)

        return update

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()


def init_lines(starter: Any) -> list[str]:
    """``forecast init``: the columns and stages it recognised, what it decided and what it could not."""
    lines = [reading_line(starter.reading).strip()] if starter.reading is not None else []
    lines.append(f"{starter.export}: columns recognised:")
    lines += [
        f"  {name:<18} <- {header!r} ({starter.column_reasons[name]})"
        for name, header in starter.columns.items()
    ]
    if starter.unused:
        lines.append(f"  not used: {', '.join(repr(header) for header in starter.unused)}")
    names = [f"{stage.name} ({stage.label})" if stage.label else stage.name for stage in starter.stages]
    width = max(len(name) for name in names)
    lines.append("stages (deals, their amount as read, win rate):")
    for name, stage in zip(names, starter.stages, strict=True):
        amount = "-" if stage.amount is None else money(stage.amount)
        closed = {"won": "won: booked when closed in the period", "lost": "lost: left out"}
        rate = (
            closed[stage.status]
            if stage.win_rate is None
            else f"win rate {stage.win_rate:g} ({stage.reason})"
        )
        deals = f"{stage.deals:>5} deal{'s' if stage.deals != 1 else ' '}"
        lines.append(f"  {name:<{width}}  {deals}  {amount:>14}  {rate}")
    if starter.decided:
        lines.append("decided:")
        lines += [f"  {line}" for line in starter.decided]
    if starter.undecided:
        lines.append("not decided (edit the scenario):")
        lines += [f"  {line}" for line in starter.undecided]
    if starter.output is not None:
        lines.append(f"wrote {starter.output}; next: forecast run {starter.output}")
    return lines
