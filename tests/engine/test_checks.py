"""check(): every path to the engine refuses deals outside the kernels' contract, once per deal set."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forecast import ForecastError, check, load_and_simulate, load_scenario, simulate, summarize
from forecast.config.base import MAX_TOTAL, MAX_TRIALS
from forecast.engine import checks
from forecast.errors import DealError, ScenarioError
from tests.builders import make_deals, make_scenario

STAGES = "stages: [{name: Early, win_rate: 0.2}, {name: Late, win_rate: 0.6}]\n"


def _deals(**changes):
    """Three valid deals (D0 to D2, rows 2 to 4), with ``field=(index, value)`` changes."""
    deals = make_deals([100.0, 200.0, 300.0], [0.5, 0.3, np.nan], stage_index=[0, 1, 1])
    for name, (index, value) in changes.items():
        getattr(deals, name)[index] = value
    return deals


@pytest.mark.parametrize(
    ("deals", "message"),
    [
        (_deals(probability=(1, 1.5)), "row 3, deal 'D1': probability 1.5; expected 0 to 1, or NaN"),
        (_deals(probability=(0, -0.1)), "row 2, deal 'D0': probability -0.1; expected 0 to 1"),
        (_deals(probability=(0, np.inf)), "row 2, deal 'D0': probability inf; expected 0 to 1"),
        (_deals(amount=(2, -5.0)), "row 4, deal 'D2': amount -5.0; expected a finite number >= 0"),
        (_deals(amount=(2, np.nan)), "row 4, deal 'D2': amount nan; expected a finite number >= 0"),
        (_deals(amount=(0, np.inf)), "row 2, deal 'D0': amount inf; expected a finite number >= 0"),
        (_deals(slip=(1, 1.2)), "row 3, deal 'D1': slip 1.2; expected 0 to 1, or NaN for the stage's slip"),
        (_deals(stage_index=(2, 2)), "row 4, deal 'D2': stage_index 2; expected -1 \\(no stage\\) to 1 "),
        (_deals(stage_index=(1, -2)), "row 3, deal 'D1': stage_index -2; expected -1 \\(no stage\\) or"),
        (_deals(stage_index=(2, -1)), "row 4, deal 'D2': no probability and no stage to take a win rate"),
        (_deals(push_count=(0, -1)), "row 2, deal 'D0': push_count -1; expected a whole number >= 0"),
        (_deals(close_date=(1, np.datetime64("NaT"))), "row 3, deal 'D1': close_date NaT; expected a date"),
        (_deals(deal_id=(2, "D0")), "row 4, deal 'D0': deal_id duplicates row 2, deal 'D0'; expected a"),
        (_deals(deal_id=(1, " ")), "row 3, deal ' ': deal_id is empty; expected a unique id"),
    ],
)
def test_simulate_refuses_a_bad_value_naming_deal_field_and_range(deals, message):
    with pytest.raises(DealError, match=message):
        simulate(make_scenario(STAGES), deals, trials=10)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("amount", np.array([1.0, 2.0]), "deals.amount: shape \\(2,\\) for 3 deals; expected one entry"),
        ("probability", np.full((3, 1), 0.5), "deals.probability: shape \\(3, 1\\) for 3 deals"),
        ("stage_index", np.array([0.0, 1.0, 1.0]), "deals.stage_index: float64 values; expected whole"),
        ("new_logo", np.array([0, 1, 0]), "deals.new_logo: int64 values; expected booleans"),
        ("close_date", np.array(["2026-08-01"] * 3), "deals.close_date: <U10 values; expected datetime64"),
    ],
)
def test_simulate_refuses_arrays_of_the_wrong_length_or_kind(name, value, message):
    deals = dataclasses.replace(_deals(), **{name: value})
    with pytest.raises(DealError, match=message):
        simulate(make_scenario(STAGES), deals, trials=10)


def test_every_problem_is_listed_in_deal_order_with_the_file():
    deals = dataclasses.replace(
        _deals(amount=(2, -1.0), probability=(0, 2.0), slip=(2, 7.0)), source=Path("crm.csv")
    )
    with pytest.raises(DealError) as error:
        check(make_scenario(STAGES), deals)
    assert error.value.problems == [
        "crm.csv: row 2, deal 'D0': probability 2.0; expected 0 to 1, or NaN for the stage's win rate",
        "crm.csv: row 4, deal 'D2': amount -1.0; expected a finite number >= 0",
        "crm.csv: row 4, deal 'D2': slip 7.0; expected 0 to 1, or NaN for the stage's slip",
    ]


def test_deals_a_plan_added_are_named_by_id_alone():
    deals = _deals(probability=(1, 3.0))
    deals.rows[:] = 0
    with pytest.raises(DealError, match="^deal 'D1': probability 3.0"):
        check(make_scenario(STAGES), deals)


def test_stage_positions_are_checked_against_the_scenario():
    deals = make_deals([10.0], [0.5], stage_index=[0])
    with pytest.raises(DealError, match="deal 'D0': stage_index 0; expected -1: the scenario has no stages"):
        simulate(make_scenario(), deals, trials=10)
    with pytest.raises(DealError, match="no probability and no stage .*; expected a probability, or stages"):
        simulate(make_scenario(), make_deals([10.0]), trials=10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"trials": 0}, "trials 0; expected a whole number from 1 to 100,000,000"),
        ({"trials": MAX_TRIALS + 1}, "trials 100000001; expected a whole number"),
        ({"trials": 2.5}, "trials 2.5; expected a whole number"),
        ({"seed": -1}, "seed -1; expected a whole number from 0 to 2\\*\\*63 - 1"),
    ],
)
def test_simulate_refuses_bad_trials_and_seed(options, message):
    with pytest.raises(ScenarioError, match=message):
        simulate(make_scenario(), make_deals([10.0], [0.5]), **options)


def test_deals_are_checked_once_and_frozen(monkeypatch):
    calls = []
    original = checks._check_values
    monkeypatch.setattr(checks, "_check_values", lambda deals: calls.append(1) or original(deals))
    scenario = make_scenario("correlation: {market: 0.2}\n")  # summarize re-simulates without it
    deals = make_deals([10.0, 20.0], [0.5, 0.5])
    check(scenario, deals)
    summarize(simulate(scenario, deals, trials=50))
    simulate(scenario.model_copy(update={"booked": 5.0}), deals, trials=50)
    assert len(calls) == 1 and deals.checked is not None
    with pytest.raises(ValueError, match="read-only"):
        deals.probability[0] = np.nan  # a checked value cannot change in place
    deals.probability = np.array([np.nan, 0.5])  # replacing a field clears the check
    assert deals.checked is None
    with pytest.raises(DealError, match="deal 'D0': no probability"):
        simulate(scenario, deals, trials=50)
    assert len(calls) == 2


def test_check_copies_rather_than_freezing_the_callers_arrays():
    amounts = np.array([10.0, 20.0])
    deals = make_deals(amounts, [0.5, 0.5])
    check(make_scenario(), deals)
    amounts[0] = -1.0  # the caller's array is still theirs, and the checked deals do not see it
    assert deals.amount[0] == 10.0


# Totals: each amount may be valid while their sum (or its square over the trials) overflows.


def test_amounts_whose_sum_overflows_are_refused_naming_the_largest_deals():
    deals = make_deals([1e308, 5.0, 1e308, 1e308], [1.0] * 4)
    with pytest.raises(DealError) as error:
        simulate(make_scenario(), deals, trials=10)
    (message,) = error.value.problems
    assert "a trial's revenue could reach more than float64 holds" in message
    assert "expected at most 1e+150" in message
    assert message.endswith(
        "the largest deals: row 2, deal 'D0' (1e+308), row 4, deal 'D2' (1e+308), row 5, deal 'D3' (1e+308)"
    )


def test_an_amount_whose_square_overflows_the_std_is_refused():
    with pytest.raises(DealError, match="could reach 1e\\+200 \\(booked 0 \\+ open deals 1e\\+200"):
        simulate(make_scenario(), make_deals([1e200, 1.0], [0.5, 0.5]), trials=10)


@pytest.mark.parametrize(
    ("extra", "amounts", "part"),
    [
        ("booked: 1e151\n", [1.0], "booked 1e\\+151"),
        (
            "amount: {sigma: 3, haircut: 0.5}\n",
            [1e146],
            "open deals 5e\\+145 after haircut x amount noise up to 6e\\+04",
        ),
        (
            "new_pipeline: {conversations_per_week: 10, stages: [{name: p, rate: 0.5}], "
            "lag_weeks: {distribution: fixed, mean: 1}, deal_size: {mean: 1e148}}\n",
            [1.0],
            "new pipeline up to 4\\.2e\\+150",
        ),
    ],
)
def test_every_part_of_the_total_counts(extra, amounts, part):
    with pytest.raises(DealError, match=part):
        simulate(make_scenario(extra), make_deals(amounts, [0.5] * len(amounts)), trials=10)


def test_totals_up_to_the_bound_give_finite_figures():
    assert np.finfo(np.float64).max > MAX_TRIALS * MAX_TOTAL**2  # why the bound is where it is
    scenario = make_scenario(
        f"booked: {MAX_TOTAL / 4}\ntargets: [{{name: q, metric: revenue, at_least: {MAX_TOTAL}}}]\n"
    )
    summary = summarize(simulate(scenario, make_deals([MAX_TOTAL / 4] * 3, [0.5] * 3), trials=4000))
    numbers = [summary["revenue"][key] for key in summary["revenue"]]
    numbers += [summary["targets"][0][key] for key in ("probability", "expected_shortfall", "gap_at_p10")]
    assert all(math.isfinite(number) for number in numbers)
    assert summary["revenue"]["std"] == pytest.approx(MAX_TOTAL / 4 * math.sqrt(3 * 0.25), rel=0.05)


@pytest.mark.parametrize(
    "key", ["targets: [{name: q, metric: revenue, at_least: 1e151}]", "quotas: {owner: {A: 1e151}}"]
)
def test_targets_above_the_bound_are_refused_in_the_scenario(key):
    """A target's gap is summed over the trials too: at 1e305 the mean shortfall was inf."""
    with pytest.raises(ScenarioError, match="\\(line 3\\): 1e\\+151 is too large; expected at most 1e\\+150"):
        make_scenario(key + "\n")


# Every entry goes through check: the CLI (run and validate), batch, load_and_simulate.

SCENARIO = """\
period: 2026-Q3
pipeline: {path: deals.csv}
targets: [{name: quota, metric: revenue, at_least: 1000}]
simulation: {trials: 200}
"""
HUGE = "deal_id,amount,close_date,probability\nA,100,2026-08-01,0.5\nB,1e200,2026-08-02,0.5\n"


@pytest.fixture
def huge(tmp_path) -> Path:
    (tmp_path / "deals.csv").write_text(HUGE)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    return tmp_path / "scenario.yaml"


def test_load_and_simulate_checks(huge):
    with pytest.raises(DealError, match=f"largest deals: {huge.parent / 'deals.csv'}: row 3, deal 'B'"):
        load_and_simulate(load_scenario(huge))


@pytest.mark.parametrize("command", ["run", "validate"])
def test_the_cli_refuses_with_one_error_line(huge, command):
    from forecast.cli.commands import cli

    result = CliRunner().invoke(cli, [command, str(huge)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: {huge}: a trial's revenue could reach 1e+200")
    assert result.stderr.endswith(
        f"row 3, deal 'B' (1e+200), {huge.parent / 'deals.csv'}: row 2, deal 'A' (100)\n"
    )


def test_the_cli_checks_each_pipeline_once(huge, monkeypatch):
    from forecast.cli.commands import cli

    (huge.parent / "deals.csv").write_text(HUGE.replace("1e200", "250"))
    calls = []
    original = checks._check_values
    monkeypatch.setattr(checks, "_check_values", lambda deals: calls.append(deals) or original(deals))
    result = CliRunner().invoke(cli, ["run", str(huge), "--json"])
    assert result.exit_code == 0, result.output
    (pipeline,) = [deals for deals in calls if deals.won is not None]  # the open deals, once
    assert [deals for deals in calls if deals is not pipeline] == [pipeline.won]  # and its won rows, once


def test_batch_records_the_refusal_as_the_job_error(huge):
    from forecast.analyses.batch import plan_jobs, run_job, scenario_files

    (job,) = plan_jobs(scenario_files([str(huge)]), batch_seed=1).jobs
    (row,) = run_job(job)
    assert ": a trial's revenue could reach 1e+200" in row["error"]
    assert "row 3, deal 'B' (1e+200)" in row["error"]


def test_loaded_deals_pass_unchanged(huge):
    (huge.parent / "deals.csv").write_text(HUGE.replace("1e200", "250"))
    deals = load_and_simulate(load_scenario(huge)).deals
    assert deals.checked is not None and deals.amount.tolist() == [100.0, 250.0]
    with pytest.raises(ForecastError):
        check(load_scenario(huge), dataclasses.replace(deals, amount=np.array([100.0, -1.0])))


def test_won_rows_are_checked_like_open_deals_and_count_in_the_largest_total():
    """The export's won rows are booked revenue: a NaN or negative amount there was a NaN or negative
    revenue with no word, and their amounts were left out of the bound on a trial's total."""
    scenario = make_scenario()
    for amount, expected in ((math.nan, "amount nan"), (-5.0, "amount -5")):
        deals = make_deals([10.0], [0.5])
        deals.won = make_deals([1.0, amount])
        with pytest.raises(DealError) as raised:
            check(scenario, deals)
        assert any(expected in problem and "D1" in problem for problem in raised.value.problems)
    deals = make_deals([10.0], [0.5])
    deals.won = make_deals([0.6 * MAX_TOTAL, 0.6 * MAX_TOTAL])
    with pytest.raises(DealError, match="a trial's revenue could reach"):
        check(scenario, deals)
    deals.won = make_deals([1.0])
    check(scenario, deals)  # a sound won row passes
