"""Real exports as they come: encodings, delimiters, decimal and thousands marks, currencies, % signs,
day-first dates, title rows, footers and total rows; each file generated here from known values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.cli.main import cli
from forecast.config.loading import parse_scenario
from forecast.errors import PipelineError
from forecast.inputs import columns
from forecast.inputs.deals import Deals
from forecast.inputs.pipeline import load_deals
from forecast.reporting.terminal import reading_line
from tests.naive import number_cell

NBSP, NNBSP = "\u00a0", "\u202f"
STAGES = "stages:\n  - {name: Proposition, win_rate: 0.3}\n  - {name: Négociation, win_rate: 0.6}\n"
FRENCH = (
    "  columns: {deal_id: Réf, amount: Montant, stage: Étape, close_date: Date de clôture, "
    "probability: Probabilité}\n"
)


def load(folder: Path, name: str, pipeline: str = "", stages: str = STAGES) -> Deals:
    """Load ``folder/name`` through a 2026-Q4 scenario; ``pipeline``: more lines of its pipeline block."""
    text = f"period: 2026-Q4\npipeline:\n  path: {name}\n{pipeline}{stages}"
    scenario = parse_scenario(text, folder / "scenario.yaml")
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


def problems(folder: Path, name: str, pipeline: str = "", stages: str = STAGES) -> list[str]:
    with pytest.raises(PipelineError) as raised:
        load(folder, name, pipeline, stages)
    return raised.value.problems


def french_amount(cents: int, thousands: str) -> str:
    """``cents`` written the French way: decimal comma, thousands grouped by ``thousands``, euro after."""
    whole, fraction = divmod(cents, 100)
    return f"{whole:,}".replace(",", thousands) + f",{fraction:02d} €"


CENTS = [1250050, 99, 123456789, 4000000, 50]
DAYS = [dt.date(2026, 11, 30), dt.date(2026, 10, 5), dt.date(2026, 12, 13), dt.date(2026, 10, 1),
        dt.date(2026, 11, 2)]  # fmt: skip
PERCENTS = [40, 0, 100, 55, 5]


def write_french(path: Path, encoding: str, marks: tuple[str, ...]) -> None:
    """A French Excel CSV: a title row, ';', decimal comma, the thousands ``marks`` in turn, day-first
    dates, 'NN %' probabilities."""
    lines = ["Export du pipeline;;;;", "Réf;Montant;Étape;Date de clôture;Probabilité"]
    for i, (cents, day, chance) in enumerate(zip(CENTS, DAYS, PERCENTS, strict=True)):
        stage = "Négociation" if i % 2 else "Proposition"
        amount = french_amount(cents, marks[i % len(marks)])
        lines.append(f"F{i};{amount};{stage};{day:%d/%m/%Y};{chance} %")
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


@pytest.mark.parametrize(
    ("encoding", "marks"),
    [("utf-8-sig", (NBSP, NNBSP, ".", " ")), ("cp1252", (NBSP, ".", " "))],  # cp1252 has no U+202F
)
def test_french_excel_csv(tmp_path, encoding, marks):
    write_french(tmp_path / "fr.csv", encoding, marks)
    deals = load(tmp_path, "fr.csv", FRENCH)
    assert deals.amount.tolist() == [cents / 100 for cents in CENTS]
    assert deals.close_date.tolist() == DAYS
    assert deals.probability.tolist() == [chance / 100 for chance in PERCENTS]
    assert deals.stage_index.tolist() == [0, 1, 0, 1, 0]
    assert deals.rows.tolist() == [3, 4, 5, 6, 7]
    reading = deals.reading
    assert (reading.encoding, reading.delimiter, reading.decimal, reading.header_row) == (
        encoding, ";", ",", 2
    )  # fmt: skip
    assert reading_line(reading) == (
        f"  read fr.csv: {encoding}, delimiter ';', decimal ',', header on row 2; "
        "skipped 1 title row above the header"
    )


def test_a_percent_sign_is_a_percentage_whatever_the_scale(tmp_path):
    write_french(tmp_path / "fr.csv", "utf-8", (NBSP,))
    for scale in ("fraction", "percent"):
        deals = load(tmp_path, "fr.csv", FRENCH + f"  probability_scale: {scale}\n")
        assert deals.probability.tolist() == [chance / 100 for chance in PERCENTS]


def test_a_wrong_encoding_names_the_row_and_the_setting(tmp_path):
    write_french(tmp_path / "fr.csv", "cp1252", (NBSP,))
    assert problems(tmp_path, "fr.csv", FRENCH + "  encoding: utf-8\n") == [
        f"{tmp_path / 'fr.csv'}: row 2: byte 0xe9 is not utf-8 text; "
        "set pipeline.encoding to the file's encoding (e.g. utf-8, cp1252)"
    ]
    assert load(tmp_path, "fr.csv", FRENCH + "  encoding: cp1252\n").amount.tolist()[0] == 12500.5


SALESFORCE_AMOUNTS = ["$11,500.00", "USD 40,500", "$1,250,000.50", "980 USD"]
SALESFORCE_VALUES = [11500.0, 40500.0, 1250000.5, 980.0]
SALESFORCE_DAYS = [dt.date(2026, 10, 20), dt.date(2026, 11, 21), dt.date(2026, 12, 22), dt.date(2026, 10, 3)]


def write_salesforce(path: Path, amounts: list[str]) -> None:
    """A Salesforce report export: title rows, quoted cells, month-first dates, '40%', its footer."""
    header = '"Opportunity ID","Opportunity Name","Amount","Stage","Close Date","Probability (%)"'
    rows = ['"Open Pipeline Q4"', '"As of 10/15/2026"', '""', header]
    for i, amount in enumerate(amounts):
        day = SALESFORCE_DAYS[i % len(SALESFORCE_DAYS)]
        rows.append(f'"006{i}","Deal {i}","{amount}","Proposition","{day:%m/%d/%Y}","{10 * (i + 1)}%"')
    rows += ['""', '"Total"', f'"Grand Totals ({len(amounts)} records)"',
             '"Confidential Information - Do Not Distribute"',
             '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."']  # fmt: skip
    path.write_text("\n".join(rows) + "\n")


def test_salesforce_report_with_title_rows_and_footer(tmp_path):
    write_salesforce(tmp_path / "sf.csv", SALESFORCE_AMOUNTS)
    mapping = (
        "  columns: {deal_id: Opportunity ID, probability: Probability (%)}\n  probability_scale: percent\n"
    )
    deals = load(tmp_path, "sf.csv", mapping)
    assert deals.amount.tolist() == SALESFORCE_VALUES
    assert deals.probability.tolist() == [0.1, 0.2, 0.3, 0.4]
    assert deals.close_date.tolist() == SALESFORCE_DAYS
    assert deals.rows.tolist() == [5, 6, 7, 8]
    assert reading_line(deals.reading) == (
        "  read sf.csv: utf-8, delimiter ',', decimal '.', header on row 4; "
        "skipped 3 title rows above the header, 5 footer rows after row 8"
    )


def test_errors_after_title_rows_name_the_file_row(tmp_path):
    write_salesforce(tmp_path / "sf.csv", [*SALESFORCE_AMOUNTS[:2], "n/a", SALESFORCE_AMOUNTS[3]])
    mapping = "  columns: {deal_id: Opportunity ID, probability: Probability (%)}\n"
    assert problems(tmp_path, "sf.csv", mapping) == [
        f"{tmp_path / 'sf.csv'}: row 7, column 'Amount' (amount): 'n/a' is not a number"
    ]


def test_amounts_in_several_currencies_are_refused(tmp_path):
    write_salesforce(tmp_path / "sf.csv", ["$11,500.00", "EUR 40,500.00", "$5.00", "$6.00"])
    mapping = "  columns: {deal_id: Opportunity ID, probability: Probability (%)}\n"
    assert problems(tmp_path, "sf.csv", mapping) == [
        f"{tmp_path / 'sf.csv'}: column 'Amount' (amount): amounts in several currencies (USD, EUR) "
        "would be added up; give fx: {base: USD, rates: {EUR: ...}} (a unit's value in the base)"
    ]


SET_DECIMAL = "set pipeline.decimal to ',' or '.'"


def write_plain(path: Path, amounts: list[str], delimiter: str = ",") -> None:
    rows = ["deal_id,amount,stage,close_date".replace(",", delimiter)]
    rows += [delimiter.join([f"D{i}", f'"{a}"', "Proposition", "2026-11-01"]) for i, a in enumerate(amounts)]
    path.write_text("\n".join(rows) + "\n")


def test_a_number_read_two_ways_is_an_error_until_the_decimal_mark_is_set(tmp_path):
    write_plain(tmp_path / "d.csv", ["1,500", "2,000", "7"])
    path = tmp_path / "d.csv"
    assert problems(tmp_path, "d.csv") == [
        f"{path}: row 2, column 'amount' (amount): '1,500' could be 1500 or 1.5; {SET_DECIMAL}",
        f"{path}: row 3, column 'amount' (amount): '2,000' could be 2000 or 2; {SET_DECIMAL}",
    ]
    assert load(tmp_path, "d.csv", "  decimal: '.'\n").amount.tolist() == [1500.0, 2000.0, 7.0]
    assert load(tmp_path, "d.csv", "  decimal: ','\n").amount.tolist() == [1.5, 2.0, 7.0]
    write_plain(path, ["1,500", "2,000", "7.25"])  # one cell proves the decimal point
    assert load(tmp_path, "d.csv").amount.tolist() == [1500.0, 2000.0, 7.25]


def test_cells_proving_both_decimal_marks_are_an_error(tmp_path):
    write_plain(tmp_path / "d.csv", ["1,234.50", "12,5"])
    assert problems(tmp_path, "d.csv") == [
        f"{tmp_path / 'd.csv'}: row 2, column 'amount' (amount): '1,234.50' reads only with '.', "
        "while another cell reads only with the other mark; set pipeline.decimal",
        f"{tmp_path / 'd.csv'}: row 3, column 'amount' (amount): '12,5' reads only with ',', "
        "while another cell reads only with the other mark; set pipeline.decimal",
    ]
    assert problems(tmp_path, "d.csv", "  decimal: '.'\n") == [
        f"{tmp_path / 'd.csv'}: row 3, column 'amount' (amount): '12,5' is not a number with decimal "
        "mark '.' (pipeline.decimal)"
    ]


def test_an_ambiguous_delimiter_names_the_setting(tmp_path):
    (tmp_path / "d.csv").write_text("Code;Note,Unit\nA;1,5\nB;2,5\n")
    assert problems(tmp_path, "d.csv", stages="") == [
        f"{tmp_path / 'd.csv'}: the delimiter could be ',' (2 columns) or ';' (2 columns); set "
        "pipeline.delimiter (or map the headers with pipeline.columns so they can be recognised)"
    ]
    (tmp_path / "d.csv").write_text("Ref;Value,Unit;Close;P\nA;1,5;2026-11-01;0,5\n")
    mapping = (
        "  delimiter: ';'\n"
        "  columns: {deal_id: Ref, amount: 'Value,Unit', close_date: Close, probability: P}\n"
    )
    assert load(tmp_path, "d.csv", mapping, stages="").amount.tolist() == [1.5]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_found_by_the_recognised_headers(tmp_path, delimiter):
    write_plain(tmp_path / "d.csv", ["1,5", "20"], delimiter)
    deals = load(tmp_path, "d.csv")
    assert deals.amount.tolist() == [1.5, 20.0] and deals.reading.delimiter == delimiter


def test_header_row_setting(tmp_path):
    (tmp_path / "d.csv").write_text(
        "deal_id,amount\nnotes,here\nid,value,stage,close\nA,5,Proposition,2026-11-01\n"
    )
    mapping = "  header_row: 3\n  columns: {deal_id: id, amount: value, stage: stage, close_date: close}\n"
    deals = load(tmp_path, "d.csv", mapping)
    assert (deals.deal_id.tolist(), deals.rows.tolist()) == (["A"], [4])


def test_day_first_dates_only_when_the_column_proves_it(tmp_path):
    def write(days: list[str]) -> None:
        rows = [f"D{i},10,Proposition,{day}" for i, day in enumerate(days)]
        (tmp_path / "d.csv").write_text("deal_id,amount,stage,close_date\n" + "\n".join(rows) + "\n")

    write(["05/11/2026", "30/11/2026"])
    assert load(tmp_path, "d.csv").close_date.tolist() == [dt.date(2026, 11, 5), dt.date(2026, 11, 30)]
    write(["11/05/2026", "11/30/2026"])
    assert load(tmp_path, "d.csv").close_date.tolist() == [dt.date(2026, 11, 5), dt.date(2026, 11, 30)]
    write(["05/11/2026", "06/11/2026"])
    assert problems(tmp_path, "d.csv")[0] == (
        f"{tmp_path / 'd.csv'}: row 2, column 'close_date' (close_date): '05/11/2026' could be day-first or "
        "month-first; expected YYYY-MM-DD, or set pipeline.date_format ('%d/%m/%Y' or '%m/%d/%Y')"
    )
    assert load(tmp_path, "d.csv", "  date_format: '%d/%m/%Y'\n").close_date.tolist()[0] == dt.date(
        2026, 11, 5
    )
    write(["30/11/2026", "11/30/2026"])
    assert problems(tmp_path, "d.csv") == [
        f"{tmp_path / 'd.csv'}: row 2, column 'close_date' (close_date): '30/11/2026' is day-first but "
        f"{tmp_path / 'd.csv'}: row 3, column 'close_date' (close_date): '11/30/2026' is month-first; "
        "set pipeline.date_format (e.g. '%d/%m/%Y')"
    ]


def test_xlsx_with_a_title_row_and_a_totals_row(tmp_path):
    amounts = [1200.5, 300.0, 45000.25]
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Pipeline report, Q4 2026"])
    sheet.append([])
    sheet.append(["Deal ID", "Amount", "Stage", "Close Date", "Probability"])
    for i, amount in enumerate(amounts):
        sheet.append([f"X{i}", amount, "Proposition", dt.datetime(2026, 11, 1 + i), 0.4])
    sheet.append(["Total", "=SUM(B4:B6)", None, None, None])
    sheet.append([])
    sheet.append(["Confidential Information - Do Not Distribute"])
    workbook.save(tmp_path / "p.xlsx")
    deals = load(tmp_path, "p.xlsx")
    assert deals.amount.tolist() == amounts
    assert deals.close_date.tolist() == [dt.date(2026, 11, 1), dt.date(2026, 11, 2), dt.date(2026, 11, 3)]
    assert deals.rows.tolist() == [4, 5, 6]
    assert reading_line(deals.reading) == (
        "  read p.xlsx: header on row 3; skipped 1 title row above the header, 3 footer rows after row 6"
    )
    sheet["B5"] = "lots"
    workbook.save(tmp_path / "p.xlsx")
    assert problems(tmp_path, "p.xlsx") == [
        f"{tmp_path / 'p.xlsx'}: row 5, column 'Amount' (amount): 'lots' is not a number"
    ]


def test_blank_and_total_rows_inside_the_data_are_skipped_and_reported(tmp_path):
    (tmp_path / "d.csv").write_text(
        "deal_id,amount,stage,close_date\nA,1,Proposition,2026-11-01\n\n,,,\nSubtotal,1,,\nB,2,Proposition,2026-11-02\n"
        "Total SA,3,Proposition,2026-11-03\n"  # a customer's name, not a total
    )
    deals = load(tmp_path, "d.csv")
    assert (deals.deal_id.tolist(), deals.rows.tolist()) == (["A", "B", "Total SA"], [2, 6, 7])
    assert deals.reading.skipped == {"blank": [3, 4], "total": [5]}


def test_validate_prints_how_the_pipeline_was_read(tmp_path):
    write_french(tmp_path / "fr.csv", "cp1252", (NBSP,))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"period: 2026-Q4\nas_of: 2026-10-01\npipeline:\n  path: fr.csv\n{FRENCH}{STAGES}")
    result = CliRunner().invoke(cli, ["validate", str(scenario)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:2] == [
        f"OK {scenario}: 5 open deals, period 2026-10-01..2026-12-31",
        "  read fr.csv: cp1252, delimiter ';', decimal ',', header on row 2; "
        "skipped 1 title row above the header",
    ]


# the number parser: round trips of known amounts, and the obvious reference


def written(cents: int, decimal: str, thousands: str | None, currency: str, before: bool) -> str:
    """``cents`` with the given marks and currency placement, as an export writes it."""
    whole, fraction = divmod(cents, 100)
    text = f"{whole:,}".replace(",", thousands or "") + f"{decimal}{fraction:02d}"
    if not currency:
        return text
    return f"{currency} {text}" if before else f"{text} {currency}"


MARKS = st.sampled_from([(".", ","), (".", " "), (".", "'"), (".", NBSP), (".", None),
                         (",", "."), (",", " "), (",", NBSP), (",", NNBSP), (",", None)])  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 10**12), min_size=1, max_size=6),
    MARKS,
    st.sampled_from(["", "$", "€", "USD", "EUR", "£"]),
    st.booleans(),
    st.booleans(),
)
def test_amounts_round_trip_with_any_marks_and_currency(cents, marks, currency, before, given_mark):
    decimal, thousands = marks
    cells = pa.array([written(c, decimal, thousands, currency, before) for c in cents])
    split = columns.split_numbers(cells)
    counted = np.ones(len(cents), dtype=bool)
    found = columns.decide_decimal(
        [("amount", split, counted)], lambda *_: "", decimal if given_mark else None
    )
    assert found == decimal  # two decimals always prove the mark
    values, problems = columns.amounts(split, found, "detected")
    assert problems == {}
    assert values.tolist() == [c / 100 for c in cents]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 999), st.integers(0, 999), st.sampled_from([",", "."]), st.sampled_from(["", "$", " EUR"])
)
def test_a_number_read_two_ways_is_refused_without_a_decimal_mark(whole, thousandth, mark, currency):
    text = (
        f"{whole}{mark}{thousandth:03d}{currency}" if currency != "$" else f"${whole}{mark}{thousandth:03d}"
    )
    split = columns.split_numbers(pa.array([text]))
    assert columns.decide_decimal([("amount", split, np.ones(1, bool))], lambda *_: "", None) is None
    _, problems = columns.amounts(split, None, "detected")
    assert problems[0].startswith(f"{text!r} could be ") and problems[0].endswith(
        "set pipeline.decimal to ',' or '.'"
    )
    for decimal, value in (
        (mark, whole + thousandth / 1000),
        ("," if mark == "." else ".", whole * 1000 + thousandth),
    ):
        assert columns.amounts(split, decimal, "pipeline.decimal")[0].tolist() == [
            pytest.approx(value, rel=1e-15)
        ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.,-+ '" + NBSP + NNBSP, max_size=12), st.sampled_from([",", "."]))
def test_the_number_grammar_matches_the_obvious_reference(text, decimal):
    text = text.strip(" " + NBSP + NNBSP)  # the reader trims every cell
    values, problems = columns.amounts(columns.split_numbers(pa.array([text])), decimal, "pipeline.decimal")
    expected = number_cell(text, decimal)
    if expected is None or expected[0] < 0:
        assert 0 in problems, text
    else:
        assert problems == {} and values.tolist() == [expected[0]], text
