"""A currency column converted into fx.base: at fx.rates, or at a dated table's rate on as_of."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli import cli

HEADER = "Deal ID,Amount,Currency,Close Date,Probability\n"
ROWS = "A,1000,EUR,2026-08-01,1\nB,2000,usd,2026-08-01,1\nC,300,GBP,2026-08-01,0.5\nD,50,EUR,2026-06-01,1\n"


def invoke(folder: Path, rows: str, fx: str, *command: str):
    (folder / "deals.csv").write_text(HEADER + rows)
    (folder / "s.yaml").write_text(
        f"period: 2026-Q3\nas_of: 2026-07-15\npipeline: {{path: deals.csv}}\n{fx}"
        "simulation: {trials: 100, seed: 1}\n"
    )
    return CliRunner().invoke(cli, [*command, str(folder / "s.yaml")])


def test_amounts_are_converted_at_the_given_rates(tmp_path):
    result = invoke(tmp_path, ROWS, "fx: {base: EUR, rates: {USD: 0.92, GBP: 1.17}}\n", "run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["currency"] == "EUR"
    assert summary["open_pipeline"] == pytest.approx(1000 + 2000 * 0.92 + 300 * 1.17 + 50)
    assert summary["weighted_pipeline"] == pytest.approx(1000 + 2000 * 0.92 + 300 * 1.17 * 0.5 + 50)
    assert summary["rows"]["converted"] == {"GBP": 1, "USD": 1}


def test_the_table_rate_in_force_on_as_of(tmp_path):
    (tmp_path / "rates.csv").write_text(
        "date,currency,rate\n2026-07-01,USD,0.90\n2026-07-15,USD,0.95\n2026-07-16,USD,2.0\n"
        "2026-01-01,GBP,1.10\n"
    )
    fx = "fx: {base: EUR, table: rates.csv, rates: {GBP: 1.2}}\n"  # fx.rates win over the table
    result = invoke(tmp_path, ROWS, fx, "run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["open_pipeline"] == pytest.approx(1000 + 2000 * 0.95 + 300 * 1.2 + 50)


def test_an_unknown_currency_names_the_row(tmp_path):
    result = invoke(tmp_path, ROWS.replace("GBP", "CHF"), "fx: {base: EUR, rates: {USD: 0.92}}\n", "validate")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: {tmp_path / 'deals.csv'}: row 4, column 'Currency' (currency): no rate for 'CHF' in "
        "fx.rates; rates are given for EUR, USD"
    ]


def test_several_currencies_without_fx_are_refused(tmp_path):
    result = invoke(tmp_path, ROWS, "", "validate")
    assert result.exit_code == 2
    assert "amounts in EUR, GBP, USD would be added up; give fx:" in result.output


def test_the_terminal_header_says_the_currency_once(tmp_path):
    result = invoke(tmp_path, ROWS, "fx: {base: EUR, rates: {USD: 0.92, GBP: 1.17}}\n", "run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].rstrip() == (
        "s  2026-07-01 .. 2026-09-30  (as of 2026-07-15; amounts in EUR)"
    )
    assert result.output.count("EUR") == 1


def _amount_cells(folder: Path, cells: list[str], fx: str, *command: str, currency: list[str] | None = None):
    header = "Deal ID,Amount,Close Date,Probability" + (",Currency" if currency else "") + "\n"
    rows = "".join(
        f'D{i},"{cell}",2026-08-01,1' + (f",{currency[i]}" if currency else "") + "\n"
        for i, cell in enumerate(cells)
    )
    (folder / "deals.csv").write_text(header + rows, encoding="utf-8")
    (folder / "s.yaml").write_text(
        f"period: 2026-Q3\nas_of: 2026-07-15\npipeline: {{path: deals.csv}}\n{fx}simulation: {{trials: 10}}\n"
    )
    return CliRunner().invoke(cli, [*command, str(folder / "s.yaml")])


def test_amounts_that_carry_their_currency_are_converted_by_it(tmp_path):
    """A multi-currency Salesforce report writes 'USD 40,500' and 'EUR 12,000.50' in one column."""
    cells = ["USD 40,500.00", "EUR 12,000.50", "£1,000.00", "€ 500.00"]
    fx = "fx: {base: EUR, rates: {USD: 0.92, GBP: 1.17}}\n"
    result = _amount_cells(tmp_path, cells, fx, "run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["open_pipeline"] == pytest.approx(40_500 * 0.92 + 12_000.50 + 1_000 * 1.17 + 500)
    assert summary["rows"]["converted"] == {"GBP": 1, "USD": 1}
    refused = _amount_cells(tmp_path, cells, "", "validate")
    assert refused.exit_code == 2
    assert "amounts in several currencies (USD, EUR, GBP) would be added up; give fx:" in refused.output


def test_an_amount_whose_currency_contradicts_the_currency_column_is_refused(tmp_path):
    fx = "fx: {base: EUR, rates: {USD: 0.92}}\n"
    result = _amount_cells(tmp_path, ["USD 100.00", "$200.00"], fx, "validate", currency=["USD", "EUR"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: {tmp_path / 'deals.csv'}: row 3, column 'Amount' (amount): the amount is in USD but column "
        "'Currency' (currency) says EUR"
    ]
