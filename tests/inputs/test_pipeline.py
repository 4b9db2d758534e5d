"""Pipeline files -> Deals: formats, column mapping, filters, and one message per bad cell."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.config.loading import load_scenario, parse_scenario
from forecast.config.scenario import PipelineSource, Stage
from forecast.errors import PipelineError
from forecast.inputs.cells import normalise
from forecast.inputs.deals import Deals
from forecast.inputs.pipeline import load_deals

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STAGES = (
    "stages:\n"
    "  - {name: Qualified, win_rate: 0.1}\n"
    "  - {name: Proposal, win_rate: 0.3}\n"
    "  - {name: Negotiation, win_rate: 0.6}\n"
)
HEADER = "Deal ID,Amount,Stage,Close Date,Probability,Region,New Logo\n"
GOOD = "A,100,Proposal,2026-08-01,,EMEA,no\n"
EXPECTED_DATE = "YYYY-MM-DD, or set pipeline.date_format (e.g. '%m/%d/%Y')"
AMBIGUOUS_DATE = (
    "could be day-first or month-first; expected YYYY-MM-DD, or set pipeline.date_format "
    "('%d/%m/%Y' or '%m/%d/%Y')"
)


def load_file(folder: Path, name: str, pipeline: str = "", stages: str = STAGES) -> Deals:
    """Load ``folder/name`` through a 2026-Q3 scenario in ``folder``.

    ``pipeline`` holds extra lines of the scenario's ``pipeline:`` mapping, indented two spaces.
    """
    text = f"period: 2026-Q3\npipeline:\n  path: {name}\n{pipeline}{stages}"
    scenario = parse_scenario(text, folder / "scenario.yaml")
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


def load(folder: Path, contents: str, pipeline: str = "", stages: str = STAGES) -> Deals:
    """Write ``contents`` to ``folder/deals.csv`` and load it."""
    (folder / "deals.csv").write_text(contents)
    return load_file(folder, "deals.csv", pipeline, stages)


def problems(folder: Path, contents: str, pipeline: str = "", stages: str = STAGES) -> list[str]:
    """Every message ``load`` raises."""
    with pytest.raises(PipelineError) as raised:
        load(folder, contents, pipeline, stages)
    return raised.value.problems


def load_example(folder: Path, data_file: str) -> Deals:
    """The shipped example scenario, reading ``folder/data_file`` instead of its CSV."""
    text = (CONFIGS / "example.yaml").read_text().replace("example_pipeline.csv", data_file)
    (folder / "example.yaml").write_text(text)
    scenario = load_scenario(folder / "example.yaml")
    return load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


def example_records() -> list[dict]:
    """The example CSV as typed values: floats, dates, None for a blank probability, bools."""
    with (CONFIGS / "example_pipeline.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["Amount"] = float(row["Amount"])
        row["Close Date"] = dt.date.fromisoformat(row["Close Date"])
        row["Probability (%)"] = float(row["Probability (%)"]) if row["Probability (%)"] else None
        row["New Logo"] = row["New Logo"] == "yes"
    return rows


def assert_same_deals(actual: Deals, expected: Deals) -> None:
    for name in ("deal_id", "amount", "close_date", "probability", "stage_index", "new_logo"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
    assert actual.amount.dtype == np.float64
    assert actual.close_date.dtype == np.dtype("datetime64[D]")
    assert list(actual.attributes) == list(expected.attributes)
    for name, values in expected.attributes.items():
        np.testing.assert_array_equal(actual.attributes[name], values, err_msg=name)


def test_the_example_csv_loads_200_deals():
    scenario = load_scenario(CONFIGS / "example.yaml")
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    assert len(deals) == 200
    assert deals.deal_id[:2].tolist() == ["OPP-0001", "OPP-0002"]
    assert deals.amount[:2].tolist() == [12400.0, 15300.0]
    assert deals.close_date[0] == np.datetime64("2027-01-22")
    assert np.isnan(deals.probability[0]) and deals.probability[1] == 0.8
    assert deals.stage_index[:4].tolist() == [1, 2, 1, 0]
    assert deals.new_logo[:2].tolist() == [True, False]
    assert deals.rows.tolist() == list(range(2, 202))
    assert list(deals.attributes) == [
        "owner",
        "region",
        "sector",
        "product",
        "forecast_category",
        "stage",
        "Account",
    ]
    assert deals.source == CONFIGS / "example_pipeline.csv"


def test_parquet_and_xlsx_load_the_same_deals_as_csv(tmp_path):
    records = example_records()
    names = list(records[0])
    columns = {name: [row[name] for row in records] for name in names}
    pq.write_table(pa.table(columns), tmp_path / "deals.parquet")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(names)
    for row in records:
        sheet.append([row[name] for name in names])
    workbook.save(tmp_path / "deals.xlsx")
    assert isinstance(sheet["E2"].value, dt.date) and isinstance(sheet["C2"].value, float)

    from_csv = load_example(tmp_path, str(CONFIGS / "example_pipeline.csv"))
    from_parquet = load_example(tmp_path, "deals.parquet")
    from_xlsx = load_example(tmp_path, "deals.xlsx")
    assert_same_deals(from_parquet, from_csv)
    assert_same_deals(from_xlsx, from_csv)
    np.testing.assert_array_equal(from_xlsx.rows, from_csv.rows)
    np.testing.assert_array_equal(from_parquet.rows, from_csv.rows - 1)  # Parquet has no header line


def test_xlsx_sheet_by_name(tmp_path):
    workbook = openpyxl.Workbook()
    workbook.active.title = "Notes"
    deals = workbook.create_sheet("Deals")
    deals.append(["deal_id", "amount", "close_date", "probability"])
    deals.append([1001, 5000, dt.datetime(2026, 8, 1, 0, 0), 0.5])
    workbook.save(tmp_path / "deals.xlsx")
    loaded = load_file(tmp_path, "deals.xlsx", "  sheet: Deals\n", stages="")
    assert loaded.deal_id.tolist() == ["1001"]
    assert loaded.close_date.tolist() == [dt.date(2026, 8, 1)]
    with pytest.raises(PipelineError) as raised:
        load_file(tmp_path, "deals.xlsx", "  sheet: Pipeline\n", stages="")
    assert raised.value.problems == [
        f"{tmp_path / 'deals.xlsx'}: no sheet 'Pipeline'; sheets are Notes, Deals"
    ]


def test_xlsx_bad_cells_name_the_spreadsheet_row(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Deal ID", "Amount", "Stage", "Close Date"])
    sheet.append(["A", 100, "Proposal", dt.date(2026, 8, 1)])
    sheet.append(["B", "lots", "Proposal", dt.date(2026, 8, 1)])
    sheet.append(["C", -5, "Proposal", "soon"])
    workbook.save(tmp_path / "deals.xlsx")
    with pytest.raises(PipelineError) as raised:
        load_file(tmp_path, "deals.xlsx")
    path = tmp_path / "deals.xlsx"
    assert raised.value.problems == [
        f"{path}: row 3, column 'Amount' (amount): 'lots' is not a number",
        f"{path}: row 4, column 'Amount' (amount): -5 is not a number >= 0",
        f"{path}: row 4, column 'Close Date' (close_date): 'soon' is not a date; expected {EXPECTED_DATE}",
    ]


def test_explicit_column_mapping(tmp_path):
    contents = "Opp,Value,Phase,Expected Close,Win %\nA,100,proposal,2026-08-01,40\n"
    mapping = (
        "  columns: {deal_id: Opp, amount: Value, stage: Phase, close_date: Expected Close,\n"
        "            probability: Win %}\n"
        "  probability_scale: percent\n"
    )
    deals = load(tmp_path, contents, mapping)
    assert (deals.deal_id.tolist(), deals.amount.tolist(), deals.probability.tolist()) == (
        ["A"],
        [100.0],
        [0.4],
    )
    assert deals.stage_index.tolist() == [1]
    assert deals.attributes["stage"].tolist() == ["proposal"]


def test_explicit_mapping_to_a_missing_column(tmp_path):
    assert problems(tmp_path, HEADER + GOOD, "  columns: {amount: Value}\n") == [
        f"{tmp_path / 'deals.csv'}: column 'Value' (pipeline.columns.amount) is not in the file; "
        "columns are: Deal ID, Amount, Stage, Close Date, Probability, Region, New Logo"
    ]


def test_automatic_mapping_ignores_case_spaces_and_hyphens(tmp_path):
    contents = (
        "DEAL ID, Amount ,stage,Close-Date,Probability,FORECAST   CATEGORY,Account\n"
        "A,100,Negotiation,2026-08-01,0.25,Commit,Acme\n"
    )
    deals = load(tmp_path, contents)
    assert deals.deal_id.tolist() == ["A"] and deals.probability.tolist() == [0.25]
    assert deals.stage_index.tolist() == [2]
    assert list(deals.attributes) == ["forecast_category", "stage", "Account"]
    assert deals.attributes["forecast_category"].tolist() == ["Commit"]


def test_missing_columns_are_all_named(tmp_path):
    assert problems(tmp_path, "Deal ID,Amount\nA,1\n") == [
        f"{tmp_path / 'deals.csv'}: missing column 'close_date'; map it with pipeline.columns.close_date "
        "(columns are: Deal ID, Amount)",
        f"{tmp_path / 'deals.csv'}: missing column 'stage'; map it with pipeline.columns.stage "
        "(columns are: Deal ID, Amount)",
    ]


REGIONS = (
    HEADER
    + "A,1,Proposal,2026-08-01,,EMEA,yes\n"
    + "B,2,Proposal,2026-08-01,,APAC,no\n"
    + "C,3,Proposal,2026-08-01,,Americas,1\n"
)


@pytest.mark.parametrize(
    ("where", "kept"),
    [
        ("{region: [EMEA, APAC]}", ["A", "B"]),
        ("{region: EMEA}", ["A"]),
        ("{Region: Americas}", ["C"]),
        ("{new_logo: true}", ["A", "C"]),
        ("{New Logo: false}", ["B"]),
        ("{region: [EMEA, APAC], new_logo: false}", ["B"]),
    ],
)
def test_filter(tmp_path, where, kept):
    assert load(tmp_path, REGIONS, f"  filter: {where}\n").deal_id.tolist() == kept


def test_filter_on_a_non_canonical_column_compares_numbers_as_text(tmp_path):
    contents = "Deal ID,Amount,Close Date,Probability,Tier\nA,1,2026-08-01,0.5,1\nB,1,2026-08-01,0.5,2\n"
    assert load(tmp_path, contents, "  filter: {Tier: 2}\n", stages="").deal_id.tolist() == ["B"]
    assert load(tmp_path, contents, "  filter: {Tier: [1.0, '3']}\n", stages="").deal_id.tolist() == ["A"]


def test_filter_on_an_unknown_column(tmp_path):
    assert problems(tmp_path, REGIONS, "  filter: {Territory: EMEA}\n") == [
        f"{tmp_path / 'deals.csv'}: pipeline.filter.Territory: no such column "
        "(columns are: Deal ID, Amount, Stage, Close Date, Probability, Region, New Logo)"
    ]


def test_empty_after_filtering(tmp_path):
    assert problems(tmp_path, REGIONS, "  filter: {region: LATAM}\n") == [
        f"{tmp_path / 'deals.csv'}: the pipeline has no deals after pipeline.filter"
    ]


def test_empty_file(tmp_path):
    assert problems(tmp_path, HEADER) == [f"{tmp_path / 'deals.csv'}: the pipeline has no deals"]


def test_filtered_rows_keep_their_file_row_numbers(tmp_path):
    assert load(tmp_path, REGIONS, "  filter: {region: [APAC, Americas]}\n").rows.tolist() == [3, 4]


@pytest.mark.parametrize(
    ("scale", "cell", "expected"),
    [("fraction", "0.8", 0.8), ("percent", "80", 0.8), ("percent", "0", 0.0), ("fraction", "1", 1.0)],
)
def test_probability_scales(tmp_path, scale, cell, expected):
    contents = HEADER + f"A,1,Proposal,2026-08-01,{cell},EMEA,no\n"
    assert load(tmp_path, contents, f"  probability_scale: {scale}\n").probability.tolist() == [expected]


def test_blank_probability_falls_back_to_the_stage(tmp_path):
    deals = load(tmp_path, HEADER + GOOD + "B,1,Qualified,2026-08-01,0.5,EMEA,no\n")
    assert np.isnan(deals.probability[0]) and deals.probability[1] == 0.5
    assert deals.stage_index.tolist() == [1, 0]


def test_no_stages_needs_no_stage_column_when_every_deal_has_a_probability(tmp_path):
    deals = load(tmp_path, "Deal ID,Amount,Close Date,Probability\nA,1,2026-08-01,0.3\n", stages="")
    assert deals.probability.tolist() == [0.3] and deals.stage_index.tolist() == [-1]


def test_deal_without_probability_and_no_stages(tmp_path):
    contents = (
        "Deal ID,Amount,Close Date,Probability\nA,1,2026-08-01,0.3\nB,1,2026-08-01,\nC,1,2026-08-01,2\n"
    )
    path = tmp_path / "deals.csv"
    assert problems(tmp_path, contents, stages="") == [
        f"{path}: row 3, column 'Probability' (probability): no probability and the scenario has no stages "
        "to fall back on; expected a probability, or stages in the scenario",
        f"{path}: row 4, column 'Probability' (probability): 2 is out of range; "
        "expected 0-1 (set pipeline.probability_scale: percent for 0-100)",
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("B,abc,Proposal,2026-08-01,,EMEA,no", "column 'Amount' (amount): 'abc' is not a number"),
        ("B,-5,Proposal,2026-08-01,,EMEA,no", "column 'Amount' (amount): -5 is not a number >= 0"),
        ('B,"1,2,3",Proposal,2026-08-01,,EMEA,no', "column 'Amount' (amount): '1,2,3' is not a number"),
        (
            "B,1,Dormant,2026-08-01,,EMEA,no",
            "column 'Stage' (stage): unknown stage 'Dormant'; stages are Qualified, Proposal, Negotiation",
        ),
        (
            "B,1,Proposal,2026-08-01,1.5,EMEA,no",
            "column 'Probability' (probability): 1.5 is out of range; "
            "expected 0-1 (set pipeline.probability_scale: percent for 0-100)",
        ),
        (
            "B,1,Proposal,2026-08-01,-0.1,EMEA,no",
            "column 'Probability' (probability): -0.1 is not a number >= 0",
        ),
        (
            "B,1,Proposal,2026-02-30,,EMEA,no",
            f"column 'Close Date' (close_date): '2026-02-30' is not a date; expected {EXPECTED_DATE}",
        ),
        (
            "B,1,Proposal,08/01/2026,,EMEA,no",
            f"column 'Close Date' (close_date): '08/01/2026' {AMBIGUOUS_DATE}",
        ),
        (",1,Proposal,2026-08-01,,EMEA,no", "column 'Deal ID' (deal_id): is empty"),
        (
            "B,1,Proposal,2026-08-01,,EMEA,maybe",
            "column 'New Logo' (new_logo): 'maybe' is not true/false "
            "(also accepted: yes/no, 1/0, oui/non, vrai/faux)",
        ),
    ],
)
def test_each_bad_cell_names_file_row_column_and_expectation(tmp_path, row, message):
    assert problems(tmp_path, HEADER + GOOD + row + "\n") == [f"{tmp_path / 'deals.csv'}: row 3, {message}"]


def test_percent_probability_out_of_range(tmp_path):
    contents = HEADER + "A,1,Proposal,2026-08-01,150,EMEA,no\n"
    assert problems(tmp_path, contents, "  probability_scale: percent\n") == [
        f"{tmp_path / 'deals.csv'}: row 2, column 'Probability' (probability): 150 is out of range; "
        "expected 0-100 (pipeline.probability_scale: percent)"
    ]


def test_every_bad_row_is_reported(tmp_path):
    contents = (
        HEADER + GOOD + "B,x,Proposal,2026-08-01,,EMEA,no\n"
        "C,1,Closed,2026-13-01,,EMEA,no\n"
        "B,1,Proposal,2026-08-01,,EMEA,no\n"
    )
    path = tmp_path / "deals.csv"
    assert problems(tmp_path, contents) == [
        f"{path}: row 3, column 'Amount' (amount): 'x' is not a number",
        f"{path}: row 4, column 'Close Date' (close_date): '2026-13-01' is not a date; "
        f"expected {EXPECTED_DATE}",
        f"{path}: row 4, column 'Stage' (stage): unknown stage 'Closed'; "
        "stages are Qualified, Proposal, Negotiation",
        f"{path}: row 5, column 'Deal ID' (deal_id): 'B' duplicates row 3",
        f"{path}: if rows sharing a deal id are line items of one deal (one row per product), set "
        "pipeline.aggregate: sum to add them up",
    ]


@pytest.mark.parametrize(
    ("bad_rows", "last_line"), [(21, "... and 1 more problem"), (25, "... and 5 more problems")]
)
def test_more_than_20_problems_are_truncated(tmp_path, bad_rows, last_line):
    rows = "".join(f"D{i},x,Proposal,2026-08-01,,EMEA,no\n" for i in range(bad_rows))
    with pytest.raises(PipelineError) as raised:
        load(tmp_path, HEADER + rows)
    assert len(raised.value.problems) == bad_rows
    lines = str(raised.value).splitlines()
    assert len(lines) == 21
    assert lines[19] == f"{tmp_path / 'deals.csv'}: row 21, column 'Amount' (amount): 'x' is not a number"
    assert lines[20] == last_line


def test_unsupported_extension(tmp_path):
    (tmp_path / "deals.json").write_text("{}")
    with pytest.raises(PipelineError) as raised:
        load_file(tmp_path, "deals.json")
    assert raised.value.problems == [
        f"{tmp_path / 'deals.json'}: unsupported file type '.json'; expected .csv, .parquet or .xlsx"
    ]


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError) as raised:
        load_file(tmp_path, "nowhere.csv")
    assert raised.value.problems == [f"{tmp_path / 'nowhere.csv'}: pipeline file not found"]


def test_unreadable_file(tmp_path):
    (tmp_path / "deals.parquet").write_text("not parquet")
    with pytest.raises(PipelineError) as raised:
        load_file(tmp_path, "deals.parquet")
    [message] = raised.value.problems
    assert message.startswith(f"{tmp_path / 'deals.parquet'}: cannot read the file: ")


def test_date_format(tmp_path):
    contents = HEADER + "A,1,Proposal,08/15/2026,,EMEA,no\n"
    deals = load(tmp_path, contents, "  date_format: '%m/%d/%Y'\n")
    assert deals.close_date.tolist() == [dt.date(2026, 8, 15)]
    iso = HEADER + GOOD
    assert problems(tmp_path, iso, "  date_format: '%m/%d/%Y'\n") == [
        f"{tmp_path / 'deals.csv'}: row 2, column 'Close Date' (close_date): '2026-08-01' is not a date; "
        "expected format '%m/%d/%Y'"
    ]


@pytest.mark.parametrize("cell", ["2026-08-15", "2026-08-15T09:30:00", "2026-08-15 09:30"])
def test_iso_dates_with_or_without_a_time(tmp_path, cell):
    deals = load(tmp_path, HEADER + f"A,1,Proposal,{cell},,EMEA,no\n")
    assert deals.close_date.tolist() == [dt.date(2026, 8, 15)]


@pytest.mark.parametrize(
    ("cell", "amount"),
    [
        ('"1,200.50"', 1200.5),
        ('"12,000.00"', 12000.0),
        ('"1,234,567.8"', 1234567.8),
        ("1200.5", 1200.5),
        ("0", 0.0),
    ],
)
def test_amounts_with_thousands_separators(tmp_path, cell, amount):
    assert load(tmp_path, HEADER + f"A,{cell},Proposal,2026-08-01,,EMEA,no\n").amount.tolist() == [amount]


def test_new_logo_values(tmp_path):
    cells = ["yes", "no", "true", "false", "1", "0", "", "Y", "N", "TRUE", " Yes "]
    rows = "".join(f"D{i},1,Proposal,2026-08-01,,EMEA,{cell}\n" for i, cell in enumerate(cells))
    assert load(tmp_path, HEADER + rows).new_logo.tolist() == [
        True, False, True, False, True, False, False, True, False, True, True
    ]  # fmt: skip


def test_matching_deals_by_attribute_and_new_logo(tmp_path):
    deals = load(tmp_path, REGIONS)
    assert deals.matching({"region": ["EMEA", "Americas"]}).tolist() == [True, False, True]
    assert deals.matching({"new_logo": True}).tolist() == [True, False, True]
    assert deals.matching({"region": "EMEA", "new_logo": False}).tolist() == [False, False, False]
    assert deals.subset(np.array([False, True, False])).deal_id.tolist() == ["B"]


@given(st.integers(-(2**53), 2**53))
def test_normalise_makes_int_float_and_text_equal(number):
    assert normalise(number) == normalise(float(number)) == normalise(str(number)) == normalise(f" {number} ")


def test_normalise_other_values():
    assert [normalise(value) for value in (None, True, False, 2.5, dt.date(2026, 8, 1))] == [
        "",
        "true",
        "false",
        "2.5",
        "2026-08-01",
    ]
    assert normalise(dt.datetime(2026, 8, 1)) == "2026-08-01"
    assert normalise(dt.datetime(2026, 8, 1, 9, 30)) == "2026-08-01T09:30:00"


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 10**11), min_size=1, max_size=5))
def test_amounts_round_trip_through_csv(tmp_path_factory, cents):
    folder = tmp_path_factory.mktemp("round_trip")
    amounts = [cent / 100 for cent in cents]
    rows = "".join(f'D{i},"{amount:,.2f}",Proposal,2026-08-01,,EMEA,no\n' for i, amount in enumerate(amounts))
    assert load(folder, HEADER + rows).amount.tolist() == amounts


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("deal_id,amount,close_date,stage\nA,10,2026-08-01,Any\n,,,\nB,20,2026-08-02,Any\n,,,\n")
    deals = load_deals(PipelineSource(path=str(path)), path, [Stage(name="Any", win_rate=0.5)])
    assert list(deals.deal_id) == ["A", "B"]
    assert list(deals.rows) == [2, 4]


def test_targets_may_name_the_exports_own_header(tmp_path):
    path = tmp_path / "aliased.csv"
    path.write_text("Id,Amount,Close,Chance,Line\nA,10,2026-08-01,0.5,X\nB,20,2026-08-02,0.5,Y\n")
    columns = {
        "deal_id": "Id",
        "amount": "Amount",
        "close_date": "Close",
        "probability": "Chance",
        "product": "Line",
    }
    deals = load_deals(PipelineSource(path=str(path), columns=columns), path, None)
    np.testing.assert_array_equal(deals.matching({"Line": "X"}), deals.matching({"product": "X"}))
    assert list(deals.matching({"Line": "X"})) == [True, False]
    assert {"Line", "product", "Id", "deal_id"} <= set(deals.columns())


def test_created_date_is_read_blank_as_unknown(tmp_path):
    header = "Deal ID,Amount,Stage,Close Date,Opened\n"
    contents = header + "A,1,Proposal,2026-08-01,2026-05-02\nB,1,Proposal,2026-08-01,\n"
    deals = load(tmp_path, contents, "  columns: {created_date: Opened}\n")
    assert deals.created.tolist() == [dt.date(2026, 5, 2), None]
    assert "Opened" not in deals.attributes
    assert load(tmp_path, HEADER + GOOD).created.dtype == np.dtype("datetime64[D]")  # no column: all unknown
    assert problems(
        tmp_path, contents.replace("2026-05-02", "May 2nd"), "  columns: {created_date: Opened}\n"
    ) == [
        f"{tmp_path / 'deals.csv'}: row 2, column 'Opened' (created_date): 'May 2nd' is not a date; "
        f"expected {EXPECTED_DATE}"
    ]


def test_a_slip_column_gives_deals_their_own_slip_on_the_probability_scale(tmp_path):
    from forecast.engine.model import deal_model

    contents = "Deal ID,Amount,Stage,Close Date,Probability,Slip\n" + (
        "A,100,Proposal,2026-08-01,,40\nB,100,Proposal,2026-08-01,,\nC,100,Proposal,2026-08-01,50,0\n"
    )
    deals = load(tmp_path, contents, "  probability_scale: percent\n")
    np.testing.assert_array_equal(deals.slip, [0.4, np.nan, 0.0])
    scenario = parse_scenario(
        f"period: 2026-Q3\npipeline: {{path: deals.csv}}\n{STAGES}slip: {{default: 0.2}}\n"
    )
    np.testing.assert_allclose(deal_model(scenario, deals).land_rate, [0.6, 0.8, 1.0])  # own, default, own
    bad = problems(tmp_path, contents.replace(",40\n", ",140\n"), "  probability_scale: percent\n")
    assert bad == [f"{tmp_path / 'deals.csv'}: row 2, column 'Slip' (slip): 140 is out of range; "
                   "expected 0-100 (pipeline.probability_scale: percent)"]  # fmt: skip
