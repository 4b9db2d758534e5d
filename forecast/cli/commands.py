"""The ``forecast`` commands: parse options, call the library, render. No math here.

Every result is printed by ``_show`` (tables and notes, or JSON through the one JSON
writer) or as lines the reporting layer formats; the group and its error handling are
in ``forecast.cli.main``, the shared options in ``forecast.cli.options``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from forecast.cli.main import EXIT_FAILED, cli
from forecast.cli.options import json_option, seed_option, simulation_options, threads_option, trials_option
from forecast.config.scenario import PRESETS
from forecast.errors import ForecastError, NotAScenarioError, OptionError, ScenarioError


def _load(paths: tuple[str, ...], others: list | None = None):
    """Load every scenario and its pipeline; report the problems of all files at once.

    ``others``, when given, collects ``(path, kind)`` of funnel plans, backtest files and
    calibration fragments instead of refusing them."""
    from forecast.analyses.plans import reference_problems
    from forecast.config.loading import load_scenario
    from forecast.engine.checks import check
    from forecast.inputs.fx import currency_rates
    from forecast.inputs.pipeline import load_deals

    loaded, problems = [], []
    for path in paths:
        try:
            scenario = load_scenario(path)
            deals = load_deals(
                scenario.pipeline, scenario.pipeline_path, scenario.stages, currency_rates(scenario)
            )
            check(scenario, deals)
            problems += reference_problems(scenario, deals)
            loaded.append((scenario, deals))
        except NotAScenarioError as error:
            if others is None:
                problems += error.problems
            else:
                others.append((Path(path).resolve(), error.kind))
        except ForecastError as error:
            problems += error.problems
    if problems:
        raise ForecastError(problems)
    return loaded


def _show(result, as_json: bool, tables=(), lines=()) -> None:
    """Print JSON, or the rendered tables and lines: the one place commands print results."""
    if as_json:
        _print_json(result)
        return
    from forecast.reporting.terminal import console

    out = console(sys.stdout)
    for item in (*tables, *lines):
        out.print(item)


def _print_json(result) -> None:
    """Strict JSON on stdout; a number written as null (not finite) is named on stderr."""
    from forecast.reporting.json_text import json_text, non_finite_warning

    text, replaced = json_text(result)
    click.echo(text)
    if replaced:
        click.echo(non_finite_warning(replaced), err=True)


def _say(lines: list[str], err: bool = False) -> None:
    """Print lines the reporting layer formatted, as they are."""
    for line in lines:
        click.echo(line, err=err)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@simulation_options
@json_option("Print JSON (one object, or a list for several files).")
@click.option(
    "--samples", type=click.Path(dir_okay=False), help="Write per-trial results to a .parquet or .csv file."
)
@click.option("--by", "by", multiple=True, help="Break revenue down by a column (owner, region, ...).")
@click.option("--plot", is_flag=True, help="Print a text histogram of revenue under each table.")
def run(files, trials, seed, as_json, samples, by, plot) -> None:
    """Simulate each scenario FILE and report its attainment distribution.

    Example: forecast run configs/example.yaml --trials 20000 --json
    """
    from forecast.engine.simulate import simulate
    from forecast.engine.summary import summarize
    from forecast.inputs.output import check_output, write_table
    from forecast.reporting.samples import samples_table
    from forecast.reporting.terminal import breakdown_tables, console, summary_note, summary_table

    if samples is not None:
        check_output(Path(samples))
    forecasts = [
        simulate(scenario, deals, trials=trials, seed=seed, by=by, independent=True)
        for scenario, deals in _load(files)
    ]
    summaries = [summarize(forecast) for forecast in forecasts]
    if samples is not None:
        write_table(samples_table(forecasts), Path(samples))
    if as_json:
        _print_json(summaries[0] if len(summaries) == 1 else summaries)
        return
    out = console(sys.stdout)
    for forecast, summary in zip(forecasts, summaries, strict=True):
        out.print(summary_table(summary))
        for table in breakdown_tables(summary):
            out.print(table)
        if plot:
            from forecast.reporting.charts import text_histogram

            quota = forecast.scenario.quota
            click.echo(text_histogram(forecast.trials.revenue, None if quota is None else quota.at_least))
        out.print(summary_note(summary), soft_wrap=True)  # a setting named in a note is never cut


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files) -> None:
    """Check each FILE without simulating: a scenario and its pipeline, or a funnel plan or
    backtest file as what it is (a calibration fragment through the scenario that includes it).

    Lists CRM hygiene warnings (deals whose close date is already past).

    Example: forecast validate configs/*.yaml configs/funnel/*.yaml
    """
    from forecast.analyses.hygiene import hygiene, other_file_check
    from forecast.reporting.terminal import other_file_lines, validation_lines

    others, problems, checked = [], [], []
    try:
        scenarios = _load(files, others)
    except ForecastError as error:
        scenarios, problems = [], error.problems
    for path, kind in others:
        try:
            checked.append(other_file_check(path, kind))
        except ForecastError as error:
            problems += error.problems
    if problems:
        raise ForecastError(problems)
    for scenario, deals in scenarios:
        _say(validation_lines(hygiene(scenario, deals), reading=deals.reading))
    _say(other_file_lines(checked))


def _rates(values: tuple[str, ...]) -> dict[str, float]:
    """'CODE=RATE' options -> {code: rate > 0}."""
    rates = {}
    for code, text in _mapping(values, "--rate").items():
        try:
            rate = float(text)
        except ValueError:
            rate = math.nan
        if not rate > 0 or math.isinf(rate):
            raise OptionError(
                f"--rate {code}={text}: expected a number > 0 (one {code} in the base currency)"
            )
        rates[code] = rate
    return rates


@cli.command()
@click.argument("export", type=click.Path(dir_okay=False))
@click.option("--period", required=True, help="Period to forecast: 2026-Q4, 2026-11 or 2026.")
@click.option(
    "--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Date of the export (default: period start)."
)
@click.option("-o", "--output", default="scenario.yaml", show_default=True, type=click.Path(dir_okay=False),
              help="Scenario file to write.")  # fmt: skip
@click.option(
    "--preset", type=click.Choice(PRESETS), help="The CRM the export comes from (default: detected)."
)
@click.option("--column", "columns", multiple=True, help="CANONICAL=HEADER, e.g. amount='Montant HT'.")
@click.option("--date-format", help="strptime format of the dates when init cannot tell (e.g. '%d/%m/%Y').")
@click.option("--rate", "rates", multiple=True, help="CODE=RATE: one unit of CODE in the base currency.")
@click.option("--base", help="Base currency of the output (default: the export's most common).")
@click.option("--sheet", help="Excel sheet (default: the first).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def init(export, period, as_of, output, preset, columns, date_format, rates, base, sheet, force) -> None:
    """Write a first scenario for a CRM EXPORT: its columns, stages and win rates recognised,
    each decision stated; what init could not decide is listed. Then edit it and run it.

    Example: forecast init configs/example_pipeline.csv --period 2026-Q4 --as-of 2026-10-15 -o q4.yaml
    """
    from forecast.inputs.starter import check_new_output, survey_export, write_scenario
    from forecast.reporting.terminal import init_lines

    output = Path(output)
    check_new_output(output, force)
    starter = survey_export(
        export,
        period,
        as_of=as_of.date() if as_of else None,
        preset=preset,
        columns=_mapping(columns, "--column"),
        date_format=date_format,
        rates=_rates(rates),
        base=base,
        sheet=sheet,
    )
    _say(init_lines(write_scenario(starter, output, force=force)))


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--plans", "plan_list", help="Comma-separated plans to compare with base (default: all).")
@simulation_options
@json_option("Print a JSON list, one object per plan.")
def compare(file, plan_list, trials, seed, as_json) -> None:
    """Compare the scenario FILE's plans with its base, on the same random numbers.

    For each plan: P(each target) and P(all), the expected shortfall, the paired
    difference to base with a 95 % interval, and the extra pipeline needed for a
    50, 80 and 90 % chance of all targets.

    Example: forecast compare configs/stretch.yaml --plans stretch,pull_in
    """
    from forecast.analyses.compare import compare_plans
    from forecast.reporting.terminal import compare_note, compare_tables

    ((scenario, deals),) = _load((file,))
    wanted = None if plan_list is None else [name.strip() for name in plan_list.split(",") if name.strip()]
    results = compare_plans(scenario, deals, plans=wanted, trials=trials, seed=seed)
    _show(results, as_json, compare_tables(results), [compare_note(results)])


def _mapping(values: tuple[str, ...], option: str) -> dict[str, str]:
    """'CANONICAL=HEADER' options -> {canonical: header}."""
    columns = {}
    for value in values:
        name, sep, header = value.partition("=")
        if not sep:
            raise OptionError(f"{option} {value!r}: expected CANONICAL=HEADER")
        columns[name.strip()] = header.strip()
    return columns


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    """'name:value' options -> (name, value); the value may be a fraction such as 1/6."""
    pairs = []
    for value in values:
        name, sep, number = value.rpartition(":")
        if not sep or not name:
            raise OptionError(f"{what} {value!r}: expected NAME:VALUE, e.g. proposal:0.4")
        pairs.append((name, number))
    return pairs


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--quota", type=float, help="Revenue to reach over the horizon (e.g. a year).")
@click.option("--deal-size", type=float, help="Average won amount.")
@click.option("--deal-size-spread", type=float, help="Lognormal sigma of won amounts (default 0).")
@click.option(
    "--stage", "stages", multiple=True, help="NAME:RATE, closest to the win first; rate 0.4 or 1/6."
)
@click.option("--periods", type=int, help="Periods in the horizon (default 4).")
@click.option("--weeks", type=float, help="Selling weeks per period (default 12).")
@click.option("--booked", type=float, help="Revenue already won towards the quota.")
@click.option("--open", "open_deals", multiple=True, help="STAGE:COUNT open deals, e.g. proposal:10.")
@click.option(
    "--activity", type=click.Choice(["poisson", "fixed"]), help="Weekly activity varies (poisson) or not."
)
@click.option(
    "--conversion", type=click.Choice(["binomial", "expected"]), help="Conversion by chance or exact."
)
@simulation_options
@click.option(
    "--scenario", "scenario_file", type=click.Path(dir_okay=False), help="Diagnose this scenario's gap."
)
@json_option()
def funnel(file, quota, deal_size, deal_size_spread, stages, periods, weeks, booked, open_deals, activity,
           conversion, trials, seed, scenario_file, as_json) -> None:  # fmt: skip
    """From a quota back to weekly activity; with --scenario, what the scenario's gap needs.

    FILE is a funnel plan in YAML (keys as the options); options override it. --trials and
    --seed override the plan's simulation (and the scenario's, with --scenario).

    Example: forecast funnel --quota 1000000 --deal-size 50000 --stage proposal:0.4
    --stage opportunity:0.5 --stage conversation:1/6 --periods 4 --weeks 12
    """
    from forecast.analyses.funnel import diagnose, plan_funnel
    from forecast.config.loading import funnel_with, load_funnel
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import diagnosis_lines, funnel_tables

    changes = {
        key: value
        for key, value in {
            "quota": quota, "deal_size": deal_size, "deal_size_spread": deal_size_spread,
            "periods": periods, "weeks": weeks, "booked": booked,
        }.items()
        if value is not None
    }  # fmt: skip
    if stages:
        changes["stages"] = [{"name": name, "rate": rate} for name, rate in _pairs(stages, "--stage")]
    if open_deals:
        changes["open"] = dict(_pairs(open_deals, "--open"))
    base = load_funnel(file) if file else None
    if base is not None or changes:
        variance = {**(base.variance.model_dump() if base else {})}
        variance.update({k: v for k, v in (("activity", activity), ("conversion", conversion)) if v})
        changes["variance"] = variance
    planned = plan_funnel(funnel_with(base, changes), trials, seed) if (base is not None or changes) else None
    diagnosis = None
    if scenario_file is not None:
        ((scenario, deals),) = _load((scenario_file,))
        diagnosis = diagnose(simulate(scenario, deals, trials=trials, seed=seed))
        if diagnosis is None:
            raise ScenarioError(f"{scenario_file}: the scenario has no revenue target to diagnose")
    if planned is None and diagnosis is None:
        raise OptionError(
            "give a funnel FILE, the funnel options (--quota, --deal-size, --stage ...) or --scenario"
        )
    _show(
        {"funnel": planned, "diagnosis": diagnosis},
        as_json,
        [] if planned is None else funnel_tables(planned),
        [] if diagnosis is None else diagnosis_lines(diagnosis),
    )


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .parquet or .csv file.")
@seed_option("Batch seed; a scenario without its own seed gets one from it and its content.", default=0,
             show_default=True)  # fmt: skip
@trials_option()
@threads_option
@click.option(
    "--workers", type=click.IntRange(1, 1024), help="Local worker processes (default: one per core)."
)
@click.option("--scheduler", help="Dask scheduler address tcp://HOST:PORT, or 'local' for a LocalCluster.")
@click.option("--resume", is_flag=True, help="Keep --out's rows of unchanged scenarios; redo the others.")
@click.option("--flush-every", type=click.IntRange(1, None), help="Write --out every N finished scenarios.")
def batch(paths, out, seed, trials, workers, scheduler, resume, flush_every) -> None:
    """Run many scenarios (files, folders or globs), their sweeps and plans: one row each.

    --threads applies to scenarios run in this process; worker processes run one thread each.

    Example: forecast batch configs/ --out results.parquet --workers 2
    """
    from forecast.analyses.batch import (
        batch_executor,
        plan_jobs,
        run_batch,
        scenario_files,
    )
    from forecast.inputs.output import check_output
    from forecast.reporting.terminal import BatchProgress, batch_lines, skipped_lines

    out_path = Path(out)
    check_output(out_path)
    plan = plan_jobs(scenario_files(paths), seed, trials)
    _say(skipped_lines(plan.skipped, Path.cwd()), err=True)
    with (
        batch_executor(workers, scheduler, len(plan.jobs)) as executor,
        BatchProgress(len(plan.jobs)) as shown,
    ):
        report = run_batch(
            plan.jobs, out_path, executor, resume=resume, flush_every=flush_every, on_progress=shown
        )
    _say(batch_lines(report, out_path), err=True)
    if report.failed:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--top", type=click.IntRange(1, None), default=20, show_default=True, help="Deals to show.")
@simulation_options
@json_option("Print a JSON list, one object per deal.")
def drivers(file, top, trials, seed, as_json) -> None:
    """Rank the open deals by how much of the chance of making the quota rests on each.

    Example: forecast drivers configs/team.yaml --top 10
    """
    from forecast.analyses.drivers import deals_that_matter, quota_target
    from forecast.analyses.drivers import drivers as deal_drivers
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import drivers_note, drivers_table

    ((scenario, deals),) = _load((file,))
    forecast = simulate(scenario, deals, trials=trials, seed=seed)
    target = quota_target(forecast)
    ranked = deal_drivers(forecast)
    rows = ranked[:top]
    table = drivers_table(scenario.label, target.name, target.at_least, rows)
    _show(rows, as_json, [table], [drivers_note(deals_that_matter(forecast, ranked))])


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--unit", help="Column assigned in whole units (default: territories.unit, else region).")
@click.option("--objective", type=click.Choice(["attainment", "p_hit"]), help="What to even out across reps.")
@simulation_options
@json_option()
def territories(file, unit, objective, trials, seed, as_json) -> None:
    """How fair the current territory split is, and a fairer split of whole regions or sectors.

    Example: forecast territories configs/team.yaml --unit sector
    """
    from forecast.analyses.territories import territories as split_territories
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import territory_lines, territory_tables

    ((scenario, deals),) = _load((file,))
    unit = unit or scenario.territories.unit
    forecast = simulate(scenario, deals, trials=trials, seed=seed, by=("owner", unit))
    result = split_territories(forecast, unit=unit, objective=objective)
    _show(result, as_json, territory_tables(result), territory_lines(result))


@cli.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option(
    "--scenario",
    "scenario_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Scenario whose rates, period and quota apply (its pipeline settings read both files).",
)
@simulation_options
@json_option()
def changes(old, new, scenario_file, trials, seed, as_json) -> None:
    """Why the forecast moved between two exports of the same pipeline (OLD, then NEW).

    Example: forecast changes configs/last_week.csv configs/example_pipeline.csv
    --scenario configs/example.yaml
    """
    from forecast.analyses.changes import attribute_changes
    from forecast.config.loading import load_scenario
    from forecast.inputs.fx import currency_rates
    from forecast.inputs.pipeline import load_deals
    from forecast.reporting.terminal import changes_table

    scenario = load_scenario(scenario_file)
    snapshots, problems = [], []
    for path in (old, new):
        try:
            fx = currency_rates(scenario)
            snapshots.append(load_deals(scenario.pipeline, Path(path), scenario.stages, fx))
        except ForecastError as error:
            problems += error.problems
    if problems:
        raise ForecastError(problems)
    result = attribute_changes(scenario, *snapshots, trials=trials, seed=seed)
    _show(result, as_json, [changes_table(scenario.label, result)])


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option(
    "--png", "png_dir", type=click.Path(file_okay=False), help="Also write each chart as a PNG here."
)
@simulation_options
@click.option("--backtest", "backtest_file", type=click.Path(dir_okay=False),
              help="Also chart this backtest: forecast against actual per period.")  # fmt: skip
def report(file, out, png_dir, trials, seed, backtest_file) -> None:
    """Write one self-contained HTML page: the headline in words and the charts.

    Example: forecast report configs/stretch.yaml -o report.html --png charts/
    """
    from forecast.inputs.output import check_output, output_folder
    from forecast.reporting.html import write_report
    from forecast.reporting.terminal import report_lines

    out_path = Path(out)
    check_output(out_path, (".html", ".htm"))
    png = None if png_dir is None else output_folder(Path(png_dir))
    ((scenario, deals),) = _load((file,))
    past = None
    if backtest_file is not None:
        from forecast.config.loading import load_backtest
        from forecast.history.backtest import backtest as run_backtest

        past = run_backtest(*load_backtest(backtest_file))
    result = write_report(scenario, deals, out_path, png, trials, seed, past)
    _say(report_lines(result, out_path))


@cli.command()
@click.argument("history", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The YAML fragment to write.")
@click.option("--map", "mappings", multiple=True, help="CANONICAL=HEADER, e.g. outcome='Opportunity Result'.")
@click.option("--won", "won", multiple=True, help="Outcome values that mean won (default: Won, Closed Won).")
@click.option(
    "--lost", "lost", multiple=True, help="Outcome values that mean lost (default: Lost, Loss, Closed Lost)."
)
@click.option(
    "--segment", "segments", multiple=True, help="Also estimate win rates per value of this column."
)
@click.option("--prior-strength", type=click.FloatRange(0, None), default=20.0, show_default=True,
              help="Deals' worth of the broader rate thin groups are shrunk toward (segments: the overall "
                   "rate; age x stage cells: their age's; survival weeks: their neighbours').")  # fmt: skip
@click.option("--backtest", "backtest_file", type=click.Path(dir_okay=False),
              help="Also fit the latent market correlation on this backtest's origins.")  # fmt: skip
@click.option("--stage-history", type=click.Path(dir_okay=False),
              help="Stage changes (deal_id, stage, date): the stage of every deal on any date.")  # fmt: skip
@click.option("--stage-map", "stage_mappings", multiple=True,
              help="CANONICAL=HEADER for --stage-history (deal_id, stage, date).")  # fmt: skip
@click.option("--age-buckets", default="30,60,90,120", show_default=True,
              help="Upper edges, in days, of the deal-age buckets of win_by_age.")  # fmt: skip
@click.option("--date-format", help="strptime format of the dates when not ISO, e.g. '%m/%d/%Y' (history and "
                                    "stage history).")  # fmt: skip
@click.option("--new-pipeline", "with_new_pipeline", is_flag=True,
              help="Also write the new_pipeline block fitted on the deals each quarter created.")  # fmt: skip
@click.option("--half-life-days", type=click.FloatRange(0, None, min_open=True),
              help="Weigh recent outcomes more: an outcome counts half as much every this many days before "
                   "the history's last date (default: all alike).")  # fmt: skip
@click.option("--segment-rates", "segment_column",
              help="The --segment column whose rates the fragment carries as segment_rates (default: the "
                   "first --segment).")  # fmt: skip
@simulation_options
@json_option("Print every estimate as JSON.")
def calibrate(history, out, mappings, won, lost, segments, prior_strength, backtest_file, stage_history,
              stage_mappings, age_buckets, date_format, with_new_pipeline, half_life_days, segment_column,
              trials, seed, as_json) -> None:  # fmt: skip
    """Estimate win rates, slip, haircut, cycle time and win by deal age; write a scenario fragment.

    --trials, --seed and --threads apply to the --backtest fit (they override its file's simulation).

    The example reads the Maven CRM sample, put beside the repository as its README says.

    \b
    Example: forecast calibrate \\
      ../shared/data/maven-crm-sales-opportunities/sales_pipeline.csv \\
      --map outcome=deal_stage --map amount=close_value --map created_date=engage_date \\
      --segment product --out calibration.yaml
    """
    import yaml

    if segment_column is not None and segment_column not in segments:
        listed = ", ".join(segments) or "none given"
        raise OptionError(f"--segment-rates {segment_column!r}: expected a --segment column ({listed})")

    from forecast.config.loading import validated
    from forecast.config.specs import BacktestModel, StageHistorySource
    from forecast.history.calibration import calibrate as estimate
    from forecast.history.calibration import fragment
    from forecast.history.rates import MIN_DEALS
    from forecast.inputs.history import HistorySpec, load_history
    from forecast.inputs.output import atomic_write
    from forecast.reporting.terminal import calibration_lines, calibration_notes, win_by_age_table

    stages = None
    if stage_history is not None:
        stages = validated(
            StageHistorySource,
            {
                "path": stage_history,
                "columns": _mapping(stage_mappings, "--stage-map"),
                "date_format": date_format,
            },
            "--stage-map",
        )
    try:
        edges = [int(edge) for edge in age_buckets.split(",") if edge.strip()]
    except ValueError:
        raise OptionError(f"--age-buckets {age_buckets!r}: expected whole days, e.g. 30,60,90") from None
    edges = validated(BacktestModel, {"age_buckets_days": edges}, "--age-buckets").age_buckets_days
    spec = HistorySpec(
        columns=_mapping(mappings, "--map"), segments=tuple(segments), prior_strength=prior_strength,
        stage_history=stages, age_buckets_days=tuple(edges), date_format=date_format,
    )  # fmt: skip
    if won:
        spec.won = won
    if lost:
        spec.lost = lost
    result = estimate(load_history(Path(history), spec), spec, half_life_days)
    keys = fragment(result, with_new_pipeline, segment_column)
    if backtest_file is not None:
        from forecast.history.backtest import fit_correlation

        result["correlation"] = fit_correlation(*_backtest_spec(backtest_file, None, trials, seed))
        keys["correlation"] = {"market": result["correlation"]["market"]}
    text = "# forecast calibrate " + str(history) + ": include with `calibration: FILE` in a scenario\n"
    text += yaml.safe_dump(keys, sort_keys=False)
    atomic_write(Path(out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if as_json:
        _print_json(result)
        return
    _say(calibration_lines(result, Path(out)))
    if result["win_by_age"]:
        _show(result, False, [win_by_age_table(result["win_by_age"])])
    _say(calibration_notes(result, with_new_pipeline, MIN_DEALS))


def _backtest_spec(
    file: str,
    periods: str | None,
    trials: int | None,
    seed: int | None,
    origins: str | int | None = None,
    horizon_days: int | None = None,
):
    """A backtest file (see ``load_backtest``), its origins, trials and seed overridden where given."""
    from forecast.config.loading import load_backtest

    spec, folder = load_backtest(file, periods, origins, horizon_days)
    update = {key: value for key, value in (("trials", trials), ("seed", seed)) if value is not None}
    return spec.model_copy(update={"simulation": spec.simulation.model_copy(update=update)}), folder


class OriginStep(click.ParamType):
    """weekly, monthly, quarterly, or a whole number of days."""

    name = "weekly|monthly|quarterly|DAYS"

    def convert(self, value, param, ctx) -> str | int:
        text = str(value).strip().lower()
        if text in ("weekly", "monthly", "quarterly"):
            return text
        if text.isdigit() and 1 <= int(text) <= 366:
            return int(text)
        self.fail(f"{value!r}: expected weekly, monthly, quarterly or a step in days (1 to 366)", param, ctx)


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@simulation_options
@click.option("--origins", type=OriginStep(),
              help="Forecast every week (Mondays), month, quarter or N days (sets origins:).")  # fmt: skip
@click.option(
    "--horizon-days",
    type=click.IntRange(1, 366),
    help="Forecast this many days from each origin (default: the rest of its quarter).",
)
@click.option("--periods", help="Override the file's periods (the quarters scored), e.g. 2017-Q2..2017-Q4.")
@json_option("Print JSON: settings, origins (one row per origin and part), summary (per part), fitted.")
def backtest(file, trials, seed, origins, horizon_days, periods, as_json) -> None:
    """Forecast from past origins with what was known then; score each part against what happened.

    Example: forecast backtest configs/maven-backtest.yaml --origins weekly
    """
    from forecast.history.backtest import backtest as run_backtest
    from forecast.reporting.terminal import backtest_tables

    result = run_backtest(*_backtest_spec(file, periods, trials, seed, origins, horizon_days))
    _show(result, as_json, backtest_tables(result))


@cli.command()
def schema() -> None:
    """Print the scenario file's JSON Schema (for editor completion).

    Example: forecast schema > scenario.schema.json
    """
    from forecast.config.loading import json_schema

    _print_json(json_schema())
