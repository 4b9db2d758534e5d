"""The ``forecast`` command line: parse options, call the library, render. No math here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from forecast.errors import ForecastError

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


class ForecastGroup(click.Group):
    """Turns library errors into ``Error:`` lines and exit codes instead of tracebacks."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ForecastError as error:
            for line in error.lines:
                click.echo(f"Error: {line}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as error:  # a bug: say so without a traceback
            click.echo(
                f"Error: unexpected failure ({type(error).__name__}: {error}); please report it", err=True
            )
            ctx.exit(EXIT_FAILED)


@click.group(cls=ForecastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pipeline-forecast")
def cli() -> None:
    """Monte Carlo sales forecasts: how likely the team is to make its numbers."""


def _load(paths: tuple[str, ...]):
    """Load every scenario and its pipeline; report the problems of all files at once."""
    from forecast.analyses.plans import reference_problems
    from forecast.config.loading import load_scenario
    from forecast.inputs.pipeline import load_deals

    loaded, problems = [], []
    for path in paths:
        try:
            scenario = load_scenario(path)
            deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
            problems += reference_problems(scenario, deals)
            loaded.append((scenario, deals))
        except ForecastError as error:
            problems += error.problems
    if problems:
        raise ForecastError(problems)
    return loaded


def _show(result, as_json: bool, tables=(), lines=()) -> None:
    """Print JSON, or the rendered tables and lines: the one place commands print results."""
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from forecast.reporting.terminal import console

    out = console(sys.stdout)
    for item in (*tables, *lines):
        out.print(item)


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import numba

        if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
            raise ForecastError(f"--threads {threads}: expected 1 to {numba.config.NUMBA_NUM_THREADS}")
        numba.set_num_threads(threads)


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object, or a list for several files).")
@click.option(
    "--samples", type=click.Path(dir_okay=False), help="Write per-trial results to a .parquet or .csv file."
)
@click.option("--threads", type=int, help="Simulation threads (default: all cores).")
@click.option("--by", "by", multiple=True, help="Break revenue down by a column (owner, region, ...).")
@click.option("--plot", is_flag=True, help="Print a text histogram of revenue under each table.")
def run(files, trials, seed, as_json, samples, threads, by, plot) -> None:
    """Simulate each scenario FILE and report its attainment distribution.

    Example: forecast run configs/example.yaml --trials 20000 --json
    """
    from forecast.engine.simulate import simulate
    from forecast.engine.summary import summarize
    from forecast.inputs.output import check_output, write_table
    from forecast.reporting.samples import samples_table
    from forecast.reporting.terminal import breakdown_tables, console, summary_note, summary_table

    _set_threads(threads)
    if samples is not None:
        check_output(Path(samples))
    forecasts = [
        simulate(scenario, deals, trials=trials, seed=seed, by=by) for scenario, deals in _load(files)
    ]
    summaries = [summarize(forecast) for forecast in forecasts]
    if samples is not None:
        write_table(samples_table(forecasts), Path(samples))
    if as_json:
        click.echo(json.dumps(summaries[0] if len(summaries) == 1 else summaries, indent=2))
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
        out.print(summary_note(summary))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files) -> None:
    """Check each scenario FILE and its pipeline without simulating.

    Lists CRM hygiene warnings (deals whose close date is already past).

    Example: forecast validate configs/example.yaml
    """
    from forecast.engine.model import overdue_deals
    from forecast.inputs.deals import by_value

    for scenario, deals in _load(files):
        period = scenario.period_range
        click.echo(f"OK {scenario.source}: {len(deals)} open deals, period {period.start}..{period.end}")
        for column, quotas in scenario.quotas.items():
            unknown = sorted(set(by_value(quotas)) - set(deals.column(column)))
            if unknown:
                click.echo(
                    f"warning: quotas.{column} names {', '.join(unknown)}, who have no deals in the pipeline"
                )
        overdue = overdue_deals(scenario, deals)
        if overdue.any():
            listed = [
                f"{deal} ({date})"
                for deal, date in zip(deals.deal_id[overdue], deals.close_date[overdue], strict=True)
            ]
            shown = ", ".join(listed[:10]) + (f", ... {len(listed) - 10} more" if len(listed) > 10 else "")
            are = "deals are" if len(listed) > 1 else "deal is"
            click.echo(
                f"warning: {len(listed)} {are} overdue at {scenario.snapshot_date} "
                f"(counted in the period; update their close dates): {shown}"
            )


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--plans", "plan_list", help="Comma-separated plans to compare with base (default: all).")
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per plan.")
@click.option("--threads", type=int, help="Simulation threads (default: all cores).")
def compare(file, plan_list, trials, seed, as_json, threads) -> None:
    """Compare the scenario FILE's plans with its base, on the same random numbers.

    For each plan: P(each target) and P(all), the expected shortfall, the paired
    difference to base with a 95 % interval, and the extra pipeline needed for a
    50, 80 and 90 % chance of all targets.

    Example: forecast compare configs/stretch.yaml --plans stretch,pull_in
    """
    from forecast.analyses.compare import compare_plans
    from forecast.reporting.terminal import compare_note, compare_tables

    _set_threads(threads)
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
            raise ForecastError(f"{option} {value!r}: expected CANONICAL=HEADER")
        columns[name.strip()] = header.strip()
    return columns


def _pairs(values: tuple[str, ...], what: str) -> list[tuple[str, str]]:
    """'name:value' options -> (name, value); the value may be a fraction such as 1/6."""
    pairs = []
    for value in values:
        name, sep, number = value.rpartition(":")
        if not sep or not name:
            raise ForecastError(f"{what} {value!r}: expected NAME:VALUE, e.g. proposal:0.4")
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
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Trials for the probabilistic answer.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Seed.")
@click.option(
    "--scenario", "scenario_file", type=click.Path(dir_okay=False), help="Diagnose this scenario's gap."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def funnel(file, quota, deal_size, deal_size_spread, stages, periods, weeks, booked, open_deals, activity,
           conversion, trials, seed, scenario_file, as_json) -> None:  # fmt: skip
    """From a quota back to weekly activity; with --scenario, what the scenario's gap needs.

    FILE is a funnel plan in YAML (keys as the options); options override it.

    Example: forecast funnel --quota 1000000 --deal-size 50000 --stage proposal:0.4
    --stage opportunity:0.5 --stage conversation:1/6 --periods 4 --weeks 12
    """
    from forecast.analyses.funnel import diagnose, plan_funnel
    from forecast.config.loading import funnel_with, load_funnel
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import console, diagnosis_lines, funnel_tables

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
            raise ForecastError(f"{scenario_file}: the scenario has no revenue target to diagnose")
    if planned is None and diagnosis is None:
        raise ForecastError(
            "give a funnel FILE, the funnel options (--quota, --deal-size, --stage ...) or --scenario"
        )
    if as_json:
        click.echo(json.dumps({"funnel": planned, "diagnosis": diagnosis}, indent=2))
        return
    out = console(sys.stdout)
    if planned is not None:
        for table in funnel_tables(planned):
            out.print(table)
    if diagnosis is not None:
        for line in diagnosis_lines(diagnosis):
            out.print(line)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Output .parquet or .csv file.")
@click.option(
    "--seed",
    type=click.IntRange(0, 2**63 - 1),
    default=0,
    show_default=True,
    help="Batch seed; a scenario without its own seed gets one from it and its content.",
)
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override every scenario's trials.")
@click.option(
    "--workers", type=click.IntRange(1, 1024), help="Local worker processes (default: one per core)."
)
@click.option("--scheduler", help="Dask scheduler address tcp://HOST:PORT, or 'local' for a LocalCluster.")
@click.option("--resume", is_flag=True, help="Skip scenarios whose content hash is already in --out.")
@click.option("--flush-every", type=click.IntRange(1, None), help="Write --out every N finished scenarios.")
def batch(paths, out, seed, trials, workers, scheduler, resume, flush_every) -> None:
    """Run many scenarios (files, folders or globs), their sweeps and plans: one row each.

    Example: forecast batch configs/ --out results.parquet --workers 2
    """
    from forecast.analyses.batch import dask_executor, local_executor, plan_jobs, run_batch, scenario_files
    from forecast.inputs.output import check_output

    out_path = Path(out)
    check_output(out_path)
    jobs = plan_jobs(scenario_files(paths), seed, trials)
    client = executor = None
    if scheduler is not None:
        client, executor = dask_executor(scheduler)
    elif (workers or os.cpu_count() or 1) > 1 and len(jobs) > 1:
        executor = local_executor(workers or os.cpu_count() or 1)
    stopped = True
    try:
        with _progress(len(jobs)) as on_progress:
            report = run_batch(
                jobs, out_path, executor, resume=resume, flush_every=flush_every, on_progress=on_progress
            )
        stopped = False
    finally:
        if executor is not None:  # on an error or Ctrl-C, do not wait for the queued jobs
            executor.shutdown(wait=not stopped, cancel_futures=stopped)
        if client is not None:
            client.close()
    click.echo(
        f"{report.ran} scenarios run, {report.skipped} already in {out_path}; "
        f"{len(report.rows)} rows written; {len(report.failed)} failed",
        err=True,
    )
    for row in report.failed:
        label = f" [{row['sweep']}]" if row.get("sweep") else ""
        click.echo(f"failed: {row['path']}{label}", err=True)
        for problem in row["error"].split(" | "):
            click.echo(f"  {problem}", err=True)
    if report.failed:
        sys.exit(EXIT_FAILED)


class _progress:
    """A rich progress bar on a terminal (done / failed / remaining, time left); silent otherwise."""

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


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--top", type=click.IntRange(1, None), default=20, show_default=True, help="Deals to show.")
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per deal.")
def drivers(file, top, trials, seed, as_json) -> None:
    """Rank the open deals by how much they move the chance of making the quota.

    Example: forecast drivers configs/team.yaml --top 10
    """
    from forecast.analyses.drivers import drivers as deal_drivers
    from forecast.analyses.drivers import quota_target
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import drivers_note, drivers_table

    ((scenario, deals),) = _load((file,))
    forecast = simulate(scenario, deals, trials=trials, seed=seed)
    rows = deal_drivers(forecast)[:top]
    target = quota_target(forecast)
    table = drivers_table(scenario.label, f"{target.name} ({target.at_least:,.0f})", rows)
    _show(rows, as_json, [table], [drivers_note()])


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--unit", help="Column assigned in whole units (default: territories.unit, else region).")
@click.option("--objective", type=click.Choice(["attainment", "p_hit"]), help="What to even out across reps.")
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def territories(file, unit, objective, trials, seed, as_json) -> None:
    """How fair the current territory split is, and a fairer split of whole regions or sectors.

    Example: forecast territories configs/team.yaml --unit sector
    """
    from forecast.analyses.territories import territories as split_territories
    from forecast.engine.simulate import simulate
    from forecast.reporting.terminal import territory_tables

    ((scenario, deals),) = _load((file,))
    unit = unit or scenario.territories.unit
    forecast = simulate(scenario, deals, trials=trials, seed=seed, by=("owner", unit))
    result = split_territories(forecast, unit=unit, objective=objective)
    notes = [result["suggested"]["note"]] if "note" in result["suggested"] else []
    _show(result, as_json, territory_tables(result), notes)


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
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def changes(old, new, scenario_file, trials, seed, as_json) -> None:
    """Why the forecast moved between two exports of the same pipeline (OLD, then NEW).

    Example: forecast changes configs/last_week.csv configs/example_pipeline.csv
    --scenario configs/example.yaml
    """
    from forecast.analyses.changes import attribute_changes
    from forecast.config.loading import load_scenario
    from forecast.inputs.pipeline import load_deals
    from forecast.reporting.terminal import changes_table

    scenario = load_scenario(scenario_file)
    snapshots, problems = [], []
    for path in (old, new):
        try:
            snapshots.append(load_deals(scenario.pipeline, Path(path), scenario.stages))
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
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Override simulation.seed.")
@click.option("--backtest", "backtest_file", type=click.Path(dir_okay=False),
              help="Also chart this backtest: forecast against actual per period.")  # fmt: skip
def report(file, out, png_dir, trials, seed, backtest_file) -> None:
    """Write one self-contained HTML page: the headline in words and the charts.

    Example: forecast report configs/stretch.yaml -o report.html --png charts/
    """
    from forecast.reporting.html import write_report

    out_path = Path(out)
    if out_path.suffix.lower() not in (".html", ".htm"):
        raise ForecastError(f"{out}: expected an .html file name")
    if not out_path.parent.is_dir():
        raise ForecastError(f"{out}: folder {out_path.parent} does not exist")
    ((scenario, deals),) = _load((file,))
    past = None
    if backtest_file is not None:
        from forecast.config.loading import load_backtest
        from forecast.history.backtest import backtest as run_backtest

        past = run_backtest(*load_backtest(backtest_file))
    png = None if png_dir is None else Path(png_dir)
    result = write_report(scenario, deals, out_path, png, trials, seed, past)
    click.echo(f"{result['headline']}\nWrote {out_path} ({len(result['charts'])} charts).")


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
                   "rate; age x stage cells: their age's).")  # fmt: skip
@click.option("--backtest", "backtest_file", type=click.Path(dir_okay=False),
              help="Also fit the latent market correlation on this backtest's periods.")  # fmt: skip
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
@click.option("--json", "as_json", is_flag=True, help="Print every estimate as JSON.")
def calibrate(history, out, mappings, won, lost, segments, prior_strength, backtest_file, stage_history,
              stage_mappings, age_buckets, date_format, with_new_pipeline, as_json) -> None:  # fmt: skip
    """Estimate win rates, slip, haircut, cycle time and win by deal age; write a scenario fragment.

    Example: forecast calibrate history.csv --out calibration.yaml --segment product
    """
    import yaml

    from forecast.config.loading import validated
    from forecast.config.specs import BacktestModel, StageHistorySource
    from forecast.history.calibration import calibrate as estimate
    from forecast.history.calibration import fragment
    from forecast.history.rates import MIN_DEALS
    from forecast.inputs.history import HistorySpec, load_history
    from forecast.inputs.output import atomic_write

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
        raise ForecastError(f"--age-buckets {age_buckets!r}: expected whole days, e.g. 30,60,90") from None
    edges = validated(BacktestModel, {"age_buckets_days": edges}, "--age-buckets").age_buckets_days
    spec = HistorySpec(
        columns=_mapping(mappings, "--map"), segments=tuple(segments), prior_strength=prior_strength,
        stage_history=stages, age_buckets_days=tuple(edges), date_format=date_format,
    )  # fmt: skip
    if won:
        spec.won = won
    if lost:
        spec.lost = lost
    result = estimate(load_history(Path(history), spec), spec)
    keys = fragment(result, with_new_pipeline)
    if backtest_file is not None:
        from forecast.config.loading import load_backtest
        from forecast.history.backtest import fit_correlation

        result["correlation"] = fit_correlation(*load_backtest(backtest_file))
        keys["correlation"] = {"market": result["correlation"]["market"]}
    text = "# forecast calibrate " + str(history) + ": include with `calibration: FILE` in a scenario\n"
    text += yaml.safe_dump(keys, sort_keys=False)
    atomic_write(Path(out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    overall = result["overall"]
    low, high = overall["interval_90"]
    rate = overall["win_rate"]
    click.echo(
        f"{overall['deals']:,} closed deals, win rate {rate:.1%} (90 % {low:.1%}-{high:.1%}); wrote {out}"
    )
    for stage in result["stages"]:
        note = f" [{stage['note']}]" if "note" in stage else ""
        click.echo(f"  {stage['name']}: {stage['win_rate']:.1%} of {stage['deals']}{note}")
    if result["win_by_age"]:
        from forecast.reporting.terminal import win_by_age_table

        _show(result, False, [win_by_age_table(result["win_by_age"])])
    if with_new_pipeline and not result["new_pipeline"]:
        click.echo(f"  new pipeline: not written: it needs created_date and at least {MIN_DEALS} deals won "
                   "within the quarter they were created in")  # fmt: skip
    if result["new_pipeline"]:
        fit = result["new_pipeline"]
        block = fit["new_pipeline"]
        written = "written" if with_new_pipeline else "not written: add --new-pipeline"
        click.echo(
            f"  new pipeline: {block['conversations_per_week']:.1f} deals created a week, "
            f"{fit['won_within_period']:.1%} of them won within a quarter, mean size "
            f"{block['deal_size']['mean']:,.0f} ({fit['deals_created']:,} deals; {written})"
        )
    if "correlation" in result:
        fit = result["correlation"]
        click.echo(f"  latent market correlation {fit['market']} (ranks' distance from uniform "
                   f"{fit['ks_distance']:.2f}, resting on {fit['periods']} periods)")  # fmt: skip


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--trials", type=click.IntRange(1, 100_000_000), help="Override simulation.trials.")
@click.option("--periods", help="Override the file's periods, e.g. 2017-Q2..2017-Q4.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: periods and summary.")
def backtest(file, trials, periods, as_json) -> None:
    """Forecast past periods from what was known at their start; score the forecasts against actuals.

    Example: forecast backtest configs/maven-backtest.yaml
    """
    from forecast.config.loading import load_backtest
    from forecast.history.backtest import backtest as run_backtest
    from forecast.reporting.terminal import backtest_comparison_table, backtest_table

    spec, folder = load_backtest(file, periods)
    if trials is not None:
        spec = spec.model_copy(update={"simulation": spec.simulation.model_copy(update={"trials": trials})})
    result = run_backtest(spec, folder)
    tables = [
        backtest_table(f"Open pipeline at the period start ({result['model']})", result["periods"],
                       result["summary"]),
        backtest_table("Total won in the period (open + new pipeline)", result["total"]["periods"],
                       result["total"]["summary"]),
        backtest_comparison_table(result["comparison"]),
    ]  # fmt: skip
    _show(result, as_json, tables)


@cli.command()
def schema() -> None:
    """Print the scenario file's JSON Schema (for editor completion).

    Example: forecast schema > scenario.schema.json
    """
    from forecast.config.loading import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


def main() -> None:
    cli(prog_name="forecast")
