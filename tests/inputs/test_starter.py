"""``forecast init``'s decisions: columns by preset or usual English and French names, stages and
their win rates with the reason, closed stages, dates, probability scale, currencies, values."""

from __future__ import annotations

import datetime as dt

import pytest

from forecast.config.loading import load_scenario
from forecast.errors import OutputError, PipelineError
from forecast.inputs.starter import detect_preset, header_key, survey_export, write_scenario
from tests.fixtures.capabilities import needs

FRENCH = (
    "Référence,Nom de l'affaire,Montant,Date de clôture,Étape,Probabilité,Propriétaire\n"
    "F1,Acme,1000,30/11/2026,Proposition,40,Hélène\n"
    "F2,Beta,2000,15/12/2026,Proposition,60,Loïc\n"
    "F3,Gamma,500,01/11/2026,Découverte,10,Hélène\n"
    "F4,Delta,700,13/10/2026,Gagné,100,Loïc\n"
    "F5,Eps,300,20/10/2026,Perdu,0,Loïc\n"
)


def survey(tmp_path, text: str, name: str = "deals.csv", **options):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return survey_export(tmp_path / name, "2026-Q4", **options)


def test_header_key_ignores_accents_case_and_punctuation():
    assert header_key(" Date de  Clôture ") == header_key("date de cloture")
    assert header_key("Probabilité (%)") == "probabilite"


def test_french_headers_and_dates_are_recognised(tmp_path):
    starter = survey(tmp_path, FRENCH)
    assert starter.columns == {
        "deal_id": "Référence",
        "amount": "Montant",
        "stage": "Étape",
        "close_date": "Date de clôture",
        "probability": "Probabilité",
        "owner": "Propriétaire",
    }
    assert set(starter.column_reasons.values()) == {"usual name"}
    assert starter.unused == ["Nom de l'affaire"]
    assert starter.settings == {"probability_scale": "percent", "date_format": "%d/%m/%Y"}
    assert 'date_format: "%d/%m/%Y" (every close date fits it, and no other)' in starter.decided


def test_win_rates_are_the_mean_probability_of_each_stage_and_closed_stages_are_marked(tmp_path):
    stages = {stage.name: stage for stage in survey(tmp_path, FRENCH).stages}
    assert [name for name in stages] == ["Découverte", "Proposition", "Gagné", "Perdu"]
    assert (stages["Proposition"].win_rate, stages["Proposition"].reason) == (
        0.5,
        "mean of its 2 probabilities",
    )
    assert (stages["Proposition"].deals, stages["Proposition"].amount) == (2, 3000.0)
    assert (stages["Gagné"].status, stages["Gagné"].win_rate, stages["Perdu"].status) == ("won", None, "lost")


def test_without_probabilities_the_preset_default_then_the_generic_ladder(tmp_path):
    salesforce = (
        "Opportunity ID,Amount,Close Date,Stage\n"
        "A,100,2026-11-01,Needs Analysis\nB,100,2026-11-01,Closed Won\nC,100,2026-11-01,Custom Stage\n"
    )
    starter = survey(tmp_path, salesforce)
    assert starter.preset == "salesforce"
    rates = {stage.name: (stage.win_rate, stage.reason) for stage in starter.stages}
    assert rates["Needs Analysis"] == (0.2, "salesforce default")
    assert rates["Custom Stage"] == (0.1, "unknown stage: the generic ladder's lowest rate")
    assert any("'Custom Stage'" in line and "generic default" in line for line in starter.undecided)
    generic = survey(tmp_path, "Deal ID,Amount,Close Date,Stage\nA,1,2026-11-01,Négociation\n", name="g.csv")
    assert [(stage.win_rate, stage.reason) for stage in generic.stages] == [
        (0.6, "generic default for its name")
    ]


def test_dates_that_fit_two_formats_are_refused_naming_the_option(tmp_path):
    text = "Deal ID,Amount,Close Date,Stage\nA,100,03/11/2026,Open\nB,100,12/10/2026,Open\n"
    with pytest.raises(PipelineError, match="fits '%d/%m/%Y' and '%m/%d/%Y'; say which with --date-format"):
        survey(tmp_path, text)
    starter = survey(tmp_path, text, date_format="%m/%d/%Y")
    assert starter.settings["date_format"] == "%m/%d/%Y"


def test_a_missing_required_column_is_named_with_the_option(tmp_path):
    with pytest.raises(PipelineError) as raised:
        survey(tmp_path, "Deal ID,Value in k,Close Date,Stage\nA,1,2026-11-01,Open\n")
    assert raised.value.problems[0].endswith(
        "no column recognised as amount; name it with --column amount=HEADER"
    )
    starter = survey(tmp_path, "Deal ID,Value in k,Close Date,Stage\nA,1,2026-11-01,Open\n",
                     columns={"amount": "Value in k"})  # fmt: skip
    assert (starter.columns["amount"], starter.column_reasons["amount"]) == ("Value in k", "--column")


@pytest.mark.parametrize(
    ("headers", "preset"),
    [
        (["Opportunity ID", "Amount", "Close Date", "Stage", "Probability (%)"], "salesforce"),
        (["Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Deal owner"], "hubspot"),
        (["Deal - ID", "Deal - Value", "Deal - Stage", "Deal - Expected close date"], "pipedrive"),
        (["Topic", "Est. Revenue", "Est. Close Date", "Pipeline Phase", "Probability"], "dynamics"),
        (["Record Id", "Amount", "Closing Date", "Stage", "Deal Owner"], "zoho"),
        (["Deal ID", "Amount", "Close Date", "Stage"], None),
    ],
)
def test_the_preset_is_detected_by_its_headers(headers, preset):
    assert detect_preset(headers) == preset


def test_several_currencies_need_their_rates(tmp_path):
    text = (
        "Deal ID,Amount,Close Date,Stage,Currency\nA,100,2026-11-01,Open,EUR\nB,100,2026-11-01,Open,USD\n" * 1
    )
    text += "C,50,2026-11-01,Open,eur\n"
    with pytest.raises(PipelineError, match=r"amounts in EUR \(2 rows\), USD \(1 rows\).*--rate USD=RATE"):
        survey(tmp_path, text)
    starter = survey(tmp_path, text, rates={"usd": 0.9})
    assert starter.fx == {"base": "EUR", "rates": {"USD": 0.9}}
    starter = survey(tmp_path, text, rates={"EUR": 1.1}, base="USD")
    assert starter.fx == {"base": "USD", "rates": {"EUR": 1.1}}


@needs("closed")  # pipeline.values
def test_a_type_column_becomes_new_logo_only_when_its_values_say_so(tmp_path):
    text = "Deal ID,Amount,Close Date,Stage,Type\nA,1,2026-11-01,Open,New Business\nB,1,2026-11-01,Open,{}\n"
    starter = survey(tmp_path, text.format("Existing Business"))
    assert starter.settings["values"] == {"new_logo": {"Existing Business": False, "New Business": True}}
    starter = survey(tmp_path, text.format("Partner"))
    assert "new_logo" not in starter.columns
    assert any("'Type'" in line and "pipeline.values.new_logo" in line for line in starter.undecided)


def test_the_scenario_written_loads_and_is_not_overwritten_without_force(tmp_path):
    starter = survey(tmp_path, "Deal ID,Amount,Close Date,Stage,Probability\nA,100,2026-11-01,Open,0.3\n",
                     as_of=dt.date(2026, 10, 15))  # fmt: skip
    output = tmp_path / "out" / "q4.yaml"
    output.parent.mkdir()
    write_scenario(starter, output)
    scenario = load_scenario(output)
    assert scenario.pipeline_path.resolve() == (tmp_path / "deals.csv").resolve()
    assert scenario.pipeline.path == "../deals.csv"
    assert (scenario.as_of, scenario.stages[0].win_rate) == (dt.date(2026, 10, 15), 0.3)
    with pytest.raises(OutputError, match="already exists; give --force"):
        write_scenario(starter, output)
    output.write_text("old")
    write_scenario(starter, output, force=True)
    assert output.read_text().startswith("# Written by `forecast init`")
    assert sorted(path.name for path in output.parent.iterdir()) == ["q4.yaml"]  # no temporary file left


def test_created_dates_written_otherwise_than_close_dates_are_left_out(tmp_path):
    text = "Deal ID,Amount,Close Date,Stage,Date de création\nA,1,30/11/2026,Open,2026-06-01\n"
    starter = survey(tmp_path, text)
    assert "created_date" not in starter.columns
    assert (
        "created dates ('Date de création') are not written like close dates: not used" in starter.undecided
    )
    assert "created_date" in survey(tmp_path, text.replace("2026-06-01", "01/06/2026")).columns
    with pytest.raises(PipelineError, match=r"'Created Date' \(created_date\) is not written like the close"):
        survey(tmp_path, text.replace("Date de création", "Created Date"))


@needs("closed")  # aggregate: sum
def test_line_items_are_summed_from_the_line_amounts(tmp_path):
    text = (
        "Opportunity ID,Stage,Close Date,Amount,Product Name,Total Price\n"
        "A,Prospecting,2026-11-01,300,P1,100\nA,Prospecting,2026-11-01,300,P2,200\n"
        "B,Prospecting,2026-11-01,50,P1,50\n"
    )
    starter = survey(tmp_path, text)
    assert (starter.columns["amount"], starter.settings["aggregate"]) == ("Total Price", "sum")
    assert (starter.stages[0].deals, starter.stages[0].amount) == (2, 350.0)


@needs("closed")  # missing_amount: skip
def test_blank_amounts_are_skipped_and_counted(tmp_path):
    text = "Deal ID,Amount,Close Date,Stage\nA,,2026-11-01,Open\nB,5,2026-11-01,Open\n"
    starter = survey(tmp_path, text)
    assert starter.settings["missing_amount"] == "skip"
    assert (starter.stages[0].deals, starter.stages[0].amount) == (1, 5.0)


def test_an_excel_sheet_named_is_the_one_the_scenario_reads(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["notes"])
    sheet = book.create_sheet("Deals # Q4")
    sheet.append(["Deal ID", "Amount", "Close Date", "Stage", "Probability"])
    sheet.append(["A", 1200.5, dt.datetime(2026, 11, 30), "Proposal", 0.4])
    book.save(tmp_path / "deals.xlsx")
    starter = survey_export(tmp_path / "deals.xlsx", "2026-Q4", sheet="Deals # Q4")
    write_scenario(starter, tmp_path / "q4.yaml")
    scenario = load_scenario(tmp_path / "q4.yaml")
    assert scenario.pipeline.sheet == "Deals # Q4"
    assert scenario.pipeline.date_format is None  # Excel dates are dates
    assert [(stage.name, stage.win_rate) for stage in scenario.stages] == [("Proposal", 0.4)]
