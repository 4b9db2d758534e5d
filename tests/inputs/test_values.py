"""pipeline.values, French booleans and pipeline.missing_amount: what cells mean before parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli import cli
from forecast.config.loading import parse_scenario
from forecast.errors import PipelineError
from forecast.inputs.cells import parse_bool
from forecast.inputs.pipeline import load_deals

HEADER = "Deal Id,Amount,Stage,Close Date,Type\n"
STAGES = "stages:\n  - {name: Qualified, win_rate: 0.2}\n"


def load(folder: Path, rows: str, pipeline: str = "", stages: str = STAGES):
    (folder / "deals.csv").write_text(HEADER + rows)
    text = f"period: 2026-Q3\npipeline:\n  path: deals.csv\n  columns: {{new_logo: Type}}\n{pipeline}{stages}"
    scenario = parse_scenario(text, folder / "s.yaml")
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


def test_values_map_export_values_onto_canonical_ones(tmp_path):
    pipeline = (
        "  values:\n"
        "    new_logo: {New Business: true, Existing Business: false}\n"
        "    stage: {appointmentscheduled: Qualified}\n"
    )
    rows = (
        "A,1,Qualified,2026-08-01,New Business\n"
        "B,2,appointmentscheduled,2026-08-01,existing business\n"
        "C,3,APPOINTMENTSCHEDULED,2026-08-01, New Business \n"
    )
    deals = load(tmp_path, rows, pipeline)
    assert list(deals.new_logo) == [True, False, True]
    assert list(deals.stage_index) == [0, 0, 0]


def test_a_value_the_mapping_does_not_list_is_parsed_as_it_is(tmp_path):
    pipeline = "  values:\n    new_logo: {New Business: true}\n"
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, "A,1,Qualified,2026-08-01,Renewal\n", pipeline)
    assert raised.value.problems == [
        f"{tmp_path / 'deals.csv'}: row 2, column 'Type' (new_logo): 'renewal' is not true/false "
        "(also accepted: yes/no, 1/0, oui/non, vrai/faux)"
    ]


def test_values_of_a_column_the_file_lacks_is_an_error(tmp_path):
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, "A,1,Qualified,2026-08-01,yes\n", "  values:\n    region: {EU: EMEA}\n")
    assert raised.value.problems[0].startswith(
        f"{tmp_path / 'deals.csv'}: pipeline.values.region: the file has no region column"
    )


@pytest.mark.parametrize(("text", "value"), [("oui", True), ("Non", False), ("VRAI", True), ("faux", False)])
def test_french_booleans(text, value):
    assert parse_bool(text) is value


ROWS = (
    "A,100,Qualified,2026-08-01,oui\nB,,Qualified,2026-08-01,non\n"
    "C,300,Qualified,2026-08-01,oui\nD, ,Qualified,2026-08-01,non\n"
)


def test_missing_amount_skip_leaves_the_rows_out_and_says_which(tmp_path):
    deals = load(tmp_path, ROWS, "  missing_amount: skip\n")
    assert list(deals.deal_id) == ["A", "C"]
    assert list(deals.amount) == [100.0, 300.0]
    assert deals.rules.skipped == (3, 5)


def test_missing_amount_zero_reads_them_as_0(tmp_path):
    deals = load(tmp_path, ROWS, "  missing_amount: zero\n")
    assert list(deals.amount) == [100.0, 0.0, 300.0, 0.0]
    assert deals.rules.zeroed == (3, 5)


def test_missing_amount_error_names_the_rows_and_the_setting(tmp_path):
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, ROWS)
    path = tmp_path / "deals.csv"
    assert raised.value.problems == [
        f"{path}: row 3, column 'Amount' (amount): is empty; expected a number >= 0",
        f"{path}: row 5, column 'Amount' (amount): is empty; expected a number >= 0",
        f"{path}: 2 rows have no amount (file rows 3, 5); set pipeline.missing_amount: skip to leave them "
        "out, or zero to read them as 0",
    ]


def test_validate_and_run_list_the_skipped_rows(tmp_path):
    (tmp_path / "deals.csv").write_text(HEADER + ROWS)
    (tmp_path / "s.yaml").write_text(
        "period: 2026-Q3\npipeline: {path: deals.csv, missing_amount: skip, columns: {new_logo: Type}}\n"
        "simulation: {trials: 100, seed: 1}\n" + STAGES
    )
    line = "rows: 2 open, 2 without an amount, skipped (rows 3, 5)"
    for command in ("validate", "run"):
        result = CliRunner().invoke(cli, [command, str(tmp_path / "s.yaml")])
        assert result.exit_code == 0, result.output
        assert line in result.output.splitlines(), result.output
