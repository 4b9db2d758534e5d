"""A probability column read on the wrong scale is refused, with the setting that fixes it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from forecast.cli import cli

HEADER = "Deal ID,Amount,Close Date,Probability\n"
ROWS = "A,20000,2026-08-01,0.4\nB,15000,2026-08-02,0.5\n"  # an Excel cell shown as 40 % stores 0.4


def run(folder: Path, rows: str, scale: str, *args: str):
    (folder / "deals.csv").write_text(HEADER + rows)
    (folder / "s.yaml").write_text(
        f"period: 2026-Q3\npipeline: {{path: deals.csv, probability_scale: {scale}}}\n"
        "simulation: {trials: 200, seed: 1}\n"
    )
    return CliRunner().invoke(cli, [*args, str(folder / "s.yaml")])


def test_fractions_under_percent_are_refused_not_read_as_a_hundredth(tmp_path):
    """Bug 2: 0.4 under probability_scale: percent was 0.4 %, the weighted pipeline 155 instead of 15,500."""
    result = run(tmp_path, ROWS, "percent", "run", "--json")
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"Error: {tmp_path / 'deals.csv'}: column 'Probability' (probability): every value lies between 0 "
        "and 1 (0.4 on row 2), which pipeline.probability_scale: percent reads as 0.4 %; "
        "set pipeline.probability_scale: fraction"
    ]


def test_the_same_values_as_fractions_give_the_weighted_pipeline_counted_by_hand(tmp_path):
    result = run(tmp_path, ROWS, "fraction", "run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["weighted_pipeline"] == 20000 * 0.4 + 15000 * 0.5


def test_percentages_under_percent_and_a_zero_column_are_read(tmp_path):
    assert (
        run(tmp_path, "A,20000,2026-08-01,40\nB,15000,2026-08-02,0.5\n", "percent", "validate").exit_code == 0
    )
    assert run(tmp_path, "A,20000,2026-08-01,0\nB,15000,2026-08-02,0\n", "percent", "validate").exit_code == 0


def test_percentages_under_fraction_name_the_setting(tmp_path):
    result = run(tmp_path, "A,20000,2026-08-01,40\nB,15000,2026-08-02,50\n", "fraction", "validate")
    assert result.exit_code == 2
    assert "(set pipeline.probability_scale: percent for 0-100)" in result.output
