"""Bug 3: a probability column silently shadowed win_by_age and stage rates; now it is said once."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from forecast.cli import cli
from forecast.config.loading import parse_scenario
from forecast.engine.model import rate_overrides
from forecast.inputs.pipeline import load_deals

SCENARIO = """\
period: 2026-Q3
pipeline: {path: deals.csv%s}
simulation: {trials: 100, seed: 1}
stages:
  - {name: Early, win_rate: 0.2}
win_by_age:
  buckets_days: [30]
  rates: {default: [0.3, 0.1]}
"""
# A: own probability, created, dated inside -> shadows win_by_age; B: own probability, no created date,
# a stage -> shadows the stage rate; C: own probability, created but dated after the period -> stage rate;
# D: no probability -> nothing shadowed.
DEALS = """\
Deal ID,Amount,Stage,Close Date,Probability,Created Date
A,100,Early,2026-08-01,0.5,2026-06-01
B,100,Early,2026-08-01,0.5,
C,100,Early,2026-11-01,0.5,2026-06-01
D,100,Early,2026-08-01,,2026-06-01
"""


def write(folder: Path, mapping: str = "") -> Path:
    (folder / "deals.csv").write_text(DEALS)
    (folder / "s.yaml").write_text(SCENARIO % mapping)
    return folder / "s.yaml"


def test_the_shadowed_rates_are_counted(tmp_path):
    scenario = parse_scenario((SCENARIO % ""), write(tmp_path))
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    assert rate_overrides(scenario, deals) == {
        "column": "Probability",
        "win_by_age": 1,
        "stage_rates": 2,
        "setting": "remove the column 'Probability' from the export "
        "(it is read as the probability by its name)",
    }


def test_run_and_validate_say_it_once_with_the_setting(tmp_path):
    path = write(tmp_path, ", columns: {probability: Probability}")
    expected = (
        "note: column 'Probability' replaces the win_by_age rate of 1 deal and the stage win rate of "
        "2 deals; to use the scenario's rates, drop pipeline.columns.probability"
    )
    for command in ("run", "validate"):
        result = CliRunner().invoke(cli, [command, str(path)])
        assert result.exit_code == 0, result.output
        assert result.output.splitlines().count(expected) == 1, result.output


def test_no_note_when_nothing_is_shadowed(tmp_path):
    (tmp_path / "deals.csv").write_text("Deal ID,Amount,Close Date,Probability\nA,100,2026-08-01,0.5\n")
    (tmp_path / "s.yaml").write_text("period: 2026-Q3\npipeline: {path: deals.csv}\n")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path / "s.yaml")])
    assert result.output.splitlines() == [
        f"OK {tmp_path / 's.yaml'}: 1 open deals, period 2026-07-01..2026-09-30",
        "  read deals.csv: utf-8, delimiter ',', decimal '.', header on row 1",
    ]
