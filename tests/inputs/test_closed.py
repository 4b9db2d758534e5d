"""Closed rows in an export: won inside the period is booked, everything else closed is left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli import cli
from forecast.config.loading import parse_scenario
from forecast.config.presets import CLOSED_STAGE_NAMES
from forecast.config.scenario import PipelineSource
from forecast.inputs.pipeline import load_deals

HEADER = "Deal ID,Amount,Stage,Close Date,New Logo,Product\n"
STAGES = "stages:\n  - {name: Proposal, win_rate: 0.5}\n"


def run_json(folder: Path, rows: str, extra: str = "", stages: str = STAGES) -> dict:
    """``forecast run --json`` on a 2026-Q3 scenario (as of 2026-08-01) over ``rows``."""
    (folder / "deals.csv").write_text(HEADER + rows)
    (folder / "s.yaml").write_text(
        "period: 2026-Q3\nas_of: 2026-08-01\npipeline: {path: deals.csv}\n"
        "simulation: {trials: 2000, seed: 1}\n" + stages + extra
    )
    result = CliRunner().invoke(cli, ["run", str(folder / "s.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_won_stage_dated_last_quarter_is_not_revenue_of_this_quarter(tmp_path):
    """Bug 1: a closed-won row dated before the period counted as this period's revenue (its close
    date is overdue, and overdue deals count inside the period)."""
    stages = STAGES + "  - {name: closedwon, status: won}\n"
    rows = "A,1000,Proposal,2026-08-20,no,x\nB,5000,closedwon,2026-06-10,no,x\n"
    summary = run_json(tmp_path, rows, stages=stages)
    assert summary["open_deals"] == 1
    assert summary["open_pipeline"] == 1000.0
    assert summary["booked"] == 0.0
    assert summary["revenue"]["p95"] <= 1000.0


CERTAIN = "stages:\n  - {name: Commit, win_rate: 1.0, slip: 0.0}\n"
# 2026-Q3: A and B open (B dated after the period), C won in the period (new logo, product y),
# D won before it, E won after it, F lost.
ROWS = (
    "A,1000,Commit,2026-08-20,no,x\n"
    "B,2000,Commit,2026-10-20,yes,x\n"
    "C,4000,Closed Won,2026-07-10,yes,y\n"
    "D,8000,closedwon,2026-06-30,yes,y\n"
    "E,16000,Gagnée,2026-10-01,yes,y\n"
    "F,32000,closedlost,2026-08-01,yes,y\n"
)


def test_won_in_the_period_is_booked_and_no_closed_row_is_an_open_deal(tmp_path):
    targets = (
        "booked: {revenue: 100, new_logos: 1}\n"
        "targets:\n"
        "  - {name: quota, metric: revenue, at_least: 5100}\n"
        "  - {name: y revenue, metric: revenue, at_least: 4000, where: {Product: y}}\n"
        "  - {name: y deals, metric: deals, at_least: 1, where: {Product: y}}\n"
        "  - {name: deals, metric: deals, at_least: 2}\n"
        "  - {name: logos, metric: new_logos, at_least: 2}\n"
        "  - {name: y logos, metric: new_logos, at_least: 2, where: {Product: y}}\n"
    )
    summary = run_json(tmp_path, ROWS, targets, stages=CERTAIN)
    assert summary["open_deals"] == 2
    assert summary["open_pipeline"] == 1000.0
    assert summary["weighted_pipeline"] == 1000.0
    assert summary["booked"] == 100.0 + 4000.0
    assert summary["booked_new_logos"] == 1 + 1
    assert summary["revenue"]["p5"] == summary["revenue"]["p95"] == 100.0 + 4000.0 + 1000.0
    probability = {target["name"]: target["probability"] for target in summary["targets"]}
    # C alone matches Product y: 4000 revenue, one deal, one new logo (so 'y logos' >= 2 fails)
    assert probability == {
        "quota": 1.0, "y revenue": 1.0, "y deals": 1.0, "deals": 1.0, "logos": 1.0, "y logos": 0.0,
    }  # fmt: skip
    assert summary["rows"] == {
        "open": 2, "won_in_period": 1, "won_in_period_amount": 4000.0, "won_before_period": 1,
        "won_after_period": 1, "lost": 1, "skipped_missing_amount": [], "zero_missing_amount": [],
        "line_items_merged": 0,
        "line_items": None, "converted": {},
    }  # fmt: skip


def test_a_target_just_above_its_booked_part_is_missed(tmp_path):
    """The booked parts are exact: one more than booked plus open is never reached."""
    targets = (
        "targets:\n"
        "  - {name: y revenue, metric: revenue, at_least: 4001, where: {Product: y}}\n"
        "  - {name: y deals, metric: deals, at_least: 2, where: {Product: y}}\n"
        "  - {name: deals, metric: deals, at_least: 3}\n"
    )
    summary = run_json(tmp_path, ROWS, targets, stages=CERTAIN)
    assert [target["probability"] for target in summary["targets"]] == [0.0, 0.0, 0.0]


def test_the_commit_call_counts_the_booked_rows(tmp_path):
    rows = ROWS.replace("\n", ",Commit\n").replace(
        "A,1000,Commit,2026-08-20,no,x,Commit", "A,1000,Commit,2026-08-20,no,x,Pipeline"
    )
    (tmp_path / "deals.csv").write_text(HEADER.replace("\n", ",Forecast Category\n") + rows)
    (tmp_path / "s.yaml").write_text(
        "period: 2026-Q3\npipeline: {path: deals.csv}\nsimulation: {trials: 100, seed: 1}\n" + CERTAIN
    )
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["judgement"]["commit"] == 4000.0  # C booked; A open but not commit


def test_validate_lists_the_rows_each_rule_took(tmp_path):
    (tmp_path / "deals.csv").write_text(HEADER + ROWS)
    (tmp_path / "s.yaml").write_text("period: 2026-Q3\npipeline: {path: deals.csv}\n" + CERTAIN)
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "s.yaml")])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2] == (
        "rows: 2 open, 1 won in the period -> booked (4,000), 1 won before the period (ignored), "
        "1 won after the period (ignored), 1 lost (ignored)"
    )


@pytest.mark.parametrize("name", [*CLOSED_STAGE_NAMES["won"], "CLOSED WON", " closedwon "])
def test_the_usual_won_names_are_won_without_being_listed(tmp_path, name):
    deals = load_rows(tmp_path, f"A,1000,Commit,2026-08-20,no,x\nB,5,{name},2026-08-01,no,x\n")
    assert list(deals.deal_id) == ["A"]
    assert list(deals.won.deal_id) == ["B"]


@pytest.mark.parametrize("name", [*CLOSED_STAGE_NAMES["lost"], "closed lost"])
def test_the_usual_lost_names_are_lost_without_being_listed(tmp_path, name):
    deals = load_rows(tmp_path, f"A,1000,Commit,2026-08-20,no,x\nB,5,{name},2026-08-01,no,x\n")
    assert list(deals.deal_id) == ["A"]
    assert len(deals.won) == 0
    assert deals.rules.lost == 1


def test_stage_status_and_aliases_decide_over_the_usual_names(tmp_path):
    stages = (
        "stages:\n"
        "  - {name: Won, win_rate: 0.9}\n"  # listed as an open stage: kept open
        "  - {name: Signed, status: won, aliases: [contractsigned]}\n"
        "  - {name: Dead, status: lost, aliases: [Churned]}\n"
    )
    rows = (
        "A,1,Won,2026-08-20,no,x\nB,2,contractsigned,2026-08-01,no,x\nC,3,churned,2026-08-01,no,x\n"
        "D,4,Signed,2026-08-01,no,x\n"
    )
    deals = load_rows(tmp_path, rows, stages)
    assert list(deals.deal_id) == ["A"]
    assert list(deals.won.deal_id) == ["B", "D"]
    assert deals.rules.lost == 1


def test_closed_rows_need_no_probability_without_stages(tmp_path):
    header = "Deal ID,Amount,Stage,Close Date,Probability\n"
    (tmp_path / "deals.csv").write_text(header + "A,10,Open,2026-08-01,0.5\nB,20,Closed Won,2026-08-01,\n")
    deals = load_deals(PipelineSource(path="deals.csv"), tmp_path / "deals.csv", None)
    assert list(deals.deal_id) == ["A"]
    assert list(deals.won.deal_id) == ["B"]


def load_rows(folder: Path, rows: str, stages: str = CERTAIN):
    (folder / "deals.csv").write_text(HEADER + rows)
    scenario = parse_scenario(f"period: 2026-Q3\npipeline: {{path: deals.csv}}\n{stages}", folder / "s.yaml")
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
