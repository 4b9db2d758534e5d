"""Scenario YAML: defaults, period forms, and errors that name the key path and line."""

from __future__ import annotations

import calendar
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import forecast.config.scenario as scenario_module
from forecast.config.base import DEFAULT_SEED, DEFAULT_TRIALS, MAX_TRIALS
from forecast.config.loading import json_schema, load_scenario, parse_scenario
from forecast.config.periods import PeriodRange, parse_period
from forecast.config.scenario import Booked, Scenario
from forecast.errors import NotAScenarioError, ScenarioError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BASE = "period: 2026-Q3\npipeline: {path: deals.csv}\n"
PERIOD_ERROR = "period {!r} is not a quarter (2026-Q3), a month (2026-07), a year or {{start, end}}"


def problems(text: str) -> list[str]:
    """The messages ``parse_scenario`` raises for ``text``."""
    with pytest.raises(ScenarioError) as raised:
        parse_scenario(text)
    return raised.value.problems


def test_minimal_scenario_takes_every_default():
    scenario = parse_scenario(BASE)
    assert scenario.name is None
    assert scenario.label == "scenario"
    assert scenario.as_of is None
    assert scenario.snapshot_date == dt.date(2026, 7, 1)
    assert scenario.booked_totals == Booked(revenue=0.0, new_logos=0)
    assert scenario.stages is None
    assert (scenario.slip.default, scenario.slip.pull_in) == (0.0, 0.0)
    assert (scenario.amount.sigma, scenario.amount.haircut) == (0.0, 0.0)
    assert scenario.targets == []
    assert scenario.simulation.trials == DEFAULT_TRIALS == 100_000
    assert scenario.simulation.seed == DEFAULT_SEED
    source = scenario.pipeline
    assert (source.columns, source.filter, source.probability_scale) == ({}, {}, "fraction")
    assert (source.date_format, source.sheet) == (None, None)


def test_stage_without_slip_uses_the_default():
    scenario = parse_scenario(BASE + "stages:\n  - {name: Qualified, win_rate: 0.2}\n")
    assert scenario.stages[0].slip is None


def test_booked_as_a_number_or_a_mapping():
    assert parse_scenario(BASE + "booked: 180000\n").booked_totals == Booked(revenue=180000.0, new_logos=0)
    mapping = parse_scenario(BASE + "booked: {revenue: 5, new_logos: 2}\n")
    assert mapping.booked_totals == Booked(revenue=5.0, new_logos=2)


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026-Q1", "2026-01-01", "2026-03-31"),
        ("2026-Q3", "2026-07-01", "2026-09-30"),
        ("2026-q4", "2026-10-01", "2026-12-31"),
        ("2026-07", "2026-07-01", "2026-07-31"),
        ("2026-12", "2026-12-01", "2026-12-31"),
        ("2024-02", "2024-02-01", "2024-02-29"),
        ("2025-02", "2025-02-01", "2025-02-28"),
        ("2000-02", "2000-02-01", "2000-02-29"),
        ("2100-02", "2100-02-01", "2100-02-28"),
        ("2026", "2026-01-01", "2026-12-31"),
        ("'2026'", "2026-01-01", "2026-12-31"),
        ("{start: 2026-07-15, end: 2026-08-14}", "2026-07-15", "2026-08-14"),
        ("{start: 2026-07-15, end: 2026-07-15}", "2026-07-15", "2026-07-15"),
    ],
)
def test_period_forms(period, start, end):
    scenario = parse_scenario(f"period: {period}\npipeline: {{path: deals.csv}}\n")
    expected = PeriodRange(start=dt.date.fromisoformat(start), end=dt.date.fromisoformat(end))
    assert scenario.period_range == expected
    assert scenario.snapshot_date == expected.start


@pytest.mark.parametrize(
    "text", ["2026-Q5", "2026-Q0", "2026-13", "2026-00", "2026-7", "26-Q3", "Q3 2026", "next"]
)
def test_bad_period_strings(text):
    assert problems(f"period: {text}\npipeline: {{path: deals.csv}}\n") == [
        "scenario: period (line 1): " + PERIOD_ERROR.format(text)
    ]


def test_period_range_end_before_start():
    assert problems("period: {start: 2026-02-01, end: 2026-01-01}\npipeline: {path: deals.csv}\n") == [
        "scenario: period (line 1): end 2026-01-01 is before start 2026-02-01"
    ]


def test_period_range_missing_end_is_one_message():
    assert problems("pipeline: {path: deals.csv}\nperiod:\n  start: 2026-07-01\n") == [
        "scenario: period.end (line 2): required key is missing"
    ]


@given(year=st.integers(1, 9998), quarter=st.integers(1, 4))
def test_quarter_is_its_three_months(year, quarter):
    months = [parse_period(f"{year:04d}-{month:02d}") for month in range(3 * quarter - 2, 3 * quarter + 1)]
    for month in months:
        assert month.start.day == 1
        assert month.end.day == calendar.monthrange(month.start.year, month.start.month)[1]
    for before, after in zip(months, months[1:], strict=False):
        assert after.start - before.end == dt.timedelta(days=1)
    assert parse_period(f"{year:04d}-Q{quarter}") == PeriodRange(start=months[0].start, end=months[-1].end)


@pytest.mark.parametrize("as_of", ["2026-07-01", "2026-08-15", "2026-09-30"])
def test_as_of_inside_the_period(as_of):
    scenario = parse_scenario(BASE + f"as_of: {as_of}\n")
    assert scenario.snapshot_date == dt.date.fromisoformat(as_of)


@pytest.mark.parametrize("as_of", ["2026-06-30", "2026-10-01"])
def test_as_of_outside_the_period(as_of):
    assert problems(BASE + f"as_of: {as_of}\n") == [
        f"scenario: as_of (line 3): as_of {as_of} is outside the period 2026-07-01..2026-09-30"
    ]


def test_duplicate_stage_names_ignore_case_and_spaces():
    text = BASE + "stages:\n  - {name: Proposal, win_rate: 0.3}\n  - {name: ' proposal ', win_rate: 0.4}\n"
    assert problems(text) == [
        "scenario: stages (line 3): stage ' proposal ' is listed twice (names ignore case)"
    ]


def test_duplicate_target_names():
    text = (
        BASE + "targets:\n"
        "  - {name: quota, metric: revenue, at_least: 1}\n"
        "  - {name: quota, metric: deals, at_least: 2}\n"
    )
    assert problems(text) == ["scenario: targets (line 3): target name 'quota' is used twice"]


def test_unknown_key_at_top_level():
    assert problems(BASE + "simulaton:\n  trials: 5\n") == ["scenario: simulaton (line 3): unknown key"]


def test_unknown_keys_nested():
    text = (
        "period: 2026-Q3\n"
        "pipeline:\n"
        "  path: deals.csv\n"
        "  colums: {deal_id: Id}\n"
        "stages:\n"
        "  - name: Proposal\n"
        "    win_rate: 0.3\n"
        "    slips: 0.2\n"
        "simulation:\n"
        "  trails: 5\n"
    )
    assert problems(text) == [
        "scenario: pipeline.colums (line 4): unknown key",
        "scenario: stages[0].slips (line 8): unknown key",
        "scenario: simulation.trails (line 10): unknown key",
    ]


def test_unknown_canonical_column_in_mapping():
    assert problems("period: 2026-Q3\npipeline:\n  path: x.csv\n  columns: {dealid: Id}\n") == [
        "scenario: pipeline.columns (line 4): unknown column 'dealid'; expected one of deal_id, amount, "
        "stage, close_date, probability, slip, owner, region, sector, product, new_logo, forecast_category, "
        "push_count, created_date, currency"
    ]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("{buckets_days: [30, 60], rates: {default: [0.3, 0.2, 0.1], Proposal: [0.5, 0.4]}}",
         "win_by_age (line 3): rates.Proposal: 2 rates; expected 3, one per age bucket "
         "(<= 30 days, 31-60 days, > 60 days)"),
        ("{buckets_days: [30], rates: {Proposal: [0.5, 0.4]}}",
         "win_by_age (line 3): rates needs a 'default' row: the rates by age alone, "
         "for stages without their own"),
        ("{buckets_days: [60, 30], rates: {default: [0.3, 0.2, 0.1]}}",
         "win_by_age.buckets_days (line 3): age bucket edges must increase: [60, 30]"),
        ("{buckets_days: [30], rates: {default: [0.3, 1.2]}}",
         "win_by_age.rates.default[1] (line 3): Input should be less than or equal to 1"),
        ("{buckets_days: [30], rates: {default: [0.3, 0.2], proposal: [0.5, 0.4], Proposal: [0.5, 0.4]}}",
         "win_by_age (line 3): rates: stage 'Proposal' is listed twice (names ignore case)"),
    ],
)  # fmt: skip
def test_win_by_age_needs_one_rate_per_bucket_and_stage(table, message):
    assert problems(f"{BASE}win_by_age: {table}\n") == [f"scenario: {message}"]


AGE_TABLE = "{buckets_days: [30], rates: {default: [0.3, 0.2], Proposal: [0.5, 0.4]}, evidence: %s}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stages: [{name: P, win_rate: 0.3, evidence: {won: 3}}]",
         "stages[0].evidence (line 3): give both won and lost (the closed deals behind the rate)"),
        ("stages: [{name: P, win_rate: 0.3, evidence: {won: 3, lost: 4, deals: 9}}]",
         "stages[0].evidence (line 3): give either won and lost, or deals, not both"),
        ("stages: [{name: P, win_rate: 0.3, evidence: {}}]",
         "stages[0].evidence (line 3): give won and lost (the closed deals behind the rate), or deals"),
        ("stages: [{name: P, win_rate: 0.3, evidence: {won: -1, lost: 4}}]",
         "stages[0].evidence.won (line 3): Input should be greater than or equal to 0"),
        ("stages: [{name: P, win_rate: 0.3, evidence: {deals: 0}}]",
         "stages[0].evidence.deals (line 3): Input should be greater than 0"),
        ("stages: [{name: P, win_rate: 0.3}]\nrate_uncertainty: true",
         "rate_uncertainty (line 4): true, but no stage or win_by_age rate has evidence to draw from "
         "(give a stage evidence: {won, lost}, or include a calibration fragment)"),
        ("win_by_age: " + AGE_TABLE % "{Negotiation: [null, {deals: 4}]}",
         "win_by_age (line 3): evidence.Negotiation: no such row in rates (rows: default, Proposal)"),
        ("win_by_age: " + AGE_TABLE % "{proposal: [{deals: 4}]}",
         "win_by_age (line 3): evidence.proposal: 1 entries; expected 2, one per age bucket "
         "(<= 30 days, > 30 days; null where the rate is known)"),
        ("win_by_age: " + AGE_TABLE % "{default: [null, {deals: 4}], DEFAULT: [null, null]}",
         "win_by_age (line 3): evidence: row 'DEFAULT' is listed twice (names ignore case)"),
    ],
)  # fmt: skip
def test_bad_evidence_names_the_key_and_line(text, message):
    assert problems(f"{BASE}{text}\n") == [f"scenario: {message}"]


def test_evidence_parses_and_sets_the_switch():
    stages = "stages: [{name: P, win_rate: 0.3, evidence: {won: 7, lost: 13}}, {name: Q, win_rate: 0.5}]\n"
    scenario = parse_scenario(BASE + stages)
    assert scenario.stages[0].evidence.worth == 22 and scenario.stages[1].evidence is None
    assert scenario.has_evidence and scenario.uncertain_rates
    assert not parse_scenario(BASE + stages + "rate_uncertainty: false\n").uncertain_rates
    table = parse_scenario(BASE + "win_by_age: " + AGE_TABLE % "{proposal: [null, {deals: 4.5}]}" + "\n")
    assert [cell and cell.worth for cell in table.win_by_age.evidence_row("PROPOSAL")] == [None, 4.5]
    assert table.win_by_age.evidence_row("default") == [None, None] and table.uncertain_rates
    assert not parse_scenario(
        BASE + "win_by_age: " + AGE_TABLE % "{default: [null, null]}" + "\n"
    ).has_evidence


def test_win_by_age_parses():
    scenario = parse_scenario(f"{BASE}win_by_age: {{buckets_days: [30], rates: {{default: [0.3, 0.2]}}}}\n")
    assert scenario.win_by_age.rates == {"default": [0.3, 0.2]}


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        ("simulation:\n  trials: many\n", "simulation.trials (line 4)", "valid integer"),
        ("simulation:\n  trials: 2.5\n", "simulation.trials (line 4)", "valid integer"),
        ("simulation: 5\n", "simulation (line 3)", "valid dictionary"),
        ("stages: Qualified\n", "stages (line 3)", "valid list"),
        ("stages:\n  - {name: A, win_rate: high}\n", "stages[0].win_rate (line 4)", "valid number"),
        ("booked: lots\n", "booked (line 3)", "valid number"),
        ("booked: {revenue: lots}\n", "booked.revenue (line 3)", "valid number"),
        ("amount: {sigma: -1}\n", "amount.sigma (line 3)", "greater than or equal to 0"),
        ("slip: {default: 1.5}\n", "slip.default (line 3)", "less than or equal to 1"),
    ],
)
def test_wrong_type_names_the_key_and_line(extra, where, words):
    [message] = problems(BASE + extra)
    assert message.startswith(f"scenario: {where}: ")
    assert words in message


@pytest.mark.parametrize("value", ["{x: 1}", "null", "[[EMEA]]"])
def test_bad_filter_value_is_one_message(value):
    text = f"period: 2026-Q3\npipeline:\n  path: x.csv\n  filter: {{region: {value}}}\n"
    assert problems(text) == [
        "scenario: pipeline.filter.region (line 4): "
        "expected a value (text, number, true/false) or a list of values"
    ]


def test_negative_booked_revenue():
    assert problems(BASE + "booked: -5\n") == [
        "scenario: booked (line 3): Input should be greater than or equal to 0"
    ]


def test_missing_required_keys():
    assert problems("name: x\n") == [
        "scenario: period: required key is missing",
        "scenario: pipeline: required key is missing",
    ]
    assert problems("period: 2026-Q3\npipeline:\n  sheet: Deals\n") == [
        "scenario: pipeline.path (line 2): required key is missing"
    ]


@pytest.mark.parametrize(("trials", "words"), [(0, "greater than or equal to 1"), (100_000_001, "less than")])
def test_trials_out_of_range(trials, words):
    [message] = problems(BASE + f"simulation:\n  trials: {trials}\n")
    assert message.startswith("scenario: simulation.trials (line 4): ")
    assert words in message


@pytest.mark.parametrize("trials", [1, MAX_TRIALS])
def test_trials_at_the_limits(trials):
    assert parse_scenario(BASE + f"simulation:\n  trials: {trials}\n").simulation.trials == trials


@pytest.mark.parametrize(
    ("text", "line"),
    [("period: [2026\npipeline: x\n", 2), ("period: 2026-Q3\npipeline:\n  path: a: b\n", 3)],
)
def test_invalid_yaml_reports_the_line(text, line):
    [message] = problems(text)
    assert message.startswith(f"scenario (line {line}, column ")
    assert ": not valid YAML: " in message


@pytest.mark.parametrize("text", ["", "- period: 2026-Q3\n", "just words\n"])
def test_top_level_must_be_a_mapping(text):
    assert problems(text) == ["scenario: expected a mapping of keys at the top level"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            BASE + "as_of: 2026-02-30\n",
            "as_of (line 3): 2026-02-30 is not a calendar date (day is out of range for month)",
        ),
        (
            "pipeline: {path: deals.csv}\nperiod:\n  start: 2026-10-01\n  end: 2026-12-32\n",
            "period.end (line 4): 2026-12-32 is not a calendar date (day is out of range for month)",
        ),
        (
            BASE + "plans:\n  late:\n    add_deals:\n      - {count: 1, close_date: 2026-13-01}\n",
            "plans.late.add_deals[0].close_date (line 6): 2026-13-01 is not a calendar date "
            "(month must be in 1..12)",
        ),
        (
            BASE + "sweep: {as_of: [2026-07-02, 2026-06-31]}\n",
            "sweep.as_of[1] (line 3): 2026-06-31 is not a calendar date (day is out of range for month)",
        ),
    ],
)
def test_an_impossible_date_names_the_key_and_line(text, message):
    assert problems(text) == [f"scenario: {message}"]


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("2026-07-15", dt.date(2026, 7, 15)),
        ("'2026-07-15'", dt.date(2026, 7, 15)),
        ("2026-07-15T10:30:00", dt.date(2026, 7, 15)),  # a CRM timestamp: the day is what counts
        ("'2026-07-15 10:30'", dt.date(2026, 7, 15)),
    ],
)
def test_scenario_dates_are_iso_dates_with_or_without_a_time(written, day):
    assert parse_scenario(BASE + f"as_of: {written}\n").as_of == day
    period = f"pipeline: {{path: deals.csv}}\nperiod: {{start: 2026-07-01, end: {written}}}\n"
    assert parse_scenario(period).period.end == day


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("15/07/2026", "'15/07/2026'"),
        ("2026-7-5", "'2026-7-5'"),
        ("20260715", "20260715"),
        ("'July 15'", "'July 15'"),
    ],
)
def test_a_date_in_another_form_is_refused_with_the_form_expected(written, shown):
    expected = f"{shown} is not a date; expected YYYY-MM-DD (e.g. 2026-10-15)"
    assert problems(BASE + f"as_of: {written}\n") == [f"scenario: as_of (line 3): {expected}"]
    plan = BASE + f"plans:\n  late:\n    add_deals:\n      - {{count: 1, close_date: {written}}}\n"
    assert problems(plan) == [f"scenario: plans.late.add_deals[0].close_date (line 6): {expected}"]


def test_a_single_date_is_not_a_period():
    assert problems("pipeline: {path: deals.csv}\nperiod: 2026-07-01\n") == [
        "scenario: period (line 2): 2026-07-01 is a date, not a period; expected a quarter (2026-Q3), "
        "a month (2026-07), a year (2026) or {start: YYYY-MM-DD, end: YYYY-MM-DD}"
    ]


def test_calibration_fragment_errors_name_the_fragment(tmp_path):
    scenario = tmp_path / "q3.yaml"
    scenario.write_text("period: 2026-Q3\npipeline: {path: deals.csv}\ncalibration: rates.yaml\n")
    fragment = tmp_path / "rates.yaml"
    for text, message in [
        ("slip: {default: 0.1}\nnew_deal: {close_date: 2026-02-29}\n", "new_deal.close_date (line 2): "
         "2026-02-29 is not a calendar date (day is out of range for month)"),
        ("slip: {default: [0.1}\n", "(line 1, column 21): not valid YAML: expected ',' or ']', but got '}'"),
    ]:  # fmt: skip
        fragment.write_text(text)
        with pytest.raises(ScenarioError) as raised:
            load_scenario(scenario)
        assert raised.value.problems == [
            f"{scenario}: calibration {fragment}: {message}".replace(": (line", " (line")
        ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            "history: {path: closed.csv}\nperiods: 2017-Q2..2017-Q4\n",
            "a backtest file (it has history); run it with forecast backtest",
        ),
        (
            "quota: 1000000\ndeal_size: 50000\nstages: [{name: proposal, rate: 0.4}]\n",
            "a funnel plan (quota and stages, no pipeline or period); run it with forecast funnel",
        ),
        (
            "stages: [{name: Proposal, win_rate: 0.3}]\nslip: {default: 0.2}\n",
            "a calibration fragment (rates, no pipeline or period); "
            "include it in a scenario with calibration: FILE",
        ),
    ],
)
def test_other_forecast_files_say_what_reads_them(text, kind):
    with pytest.raises(NotAScenarioError) as raised:
        parse_scenario(text)
    assert raised.value.problems == [f"scenario: this looks like {kind}"]


@pytest.mark.parametrize(
    "text",
    [
        BASE + "stages: [{name: a, win_rate: 0.5}]\n",  # a scenario
        "stages: [{name: a, win_rate: 0.5}]\nperiod: 2026-Q3\n",  # one without its pipeline
        "quota: 5\nstages: [{name: a, win_rate: 0.5}]\npipeline: {path: deals.csv}\n",  # one with a stray key
        "stages: [{name: a, win_rate: 0.5}]\nforecast: 1\n",  # not a fragment: not its keys
        BASE + "history: {path: closed.csv}\n",  # a scenario with a stray key
    ],
)
def test_scenarios_are_not_mistaken_for_other_files(text):
    try:
        parse_scenario(text)
    except NotAScenarioError:
        pytest.fail("taken for another kind of file")
    except ScenarioError:
        pass


def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(ScenarioError) as raised:
        load_scenario(path)
    assert raised.value.problems == [f"{path}: scenario file not found"]

    bad = tmp_path / "bad.yaml"
    bad.write_text("period: 2026-Q3\npipeline: {path: x.csv}\nfoo: 1\n")
    with pytest.raises(ScenarioError) as raised:
        load_scenario(bad)
    assert raised.value.problems == [f"{bad}: foo (line 3): unknown key"]


def test_relative_pipeline_path_resolves_against_the_scenario_folder(tmp_path, monkeypatch):
    folder = tmp_path / "plans"
    folder.mkdir()
    (folder / "q3.yaml").write_text("period: 2026-Q3\npipeline: {path: data/deals.csv}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    scenario = load_scenario(Path("..") / "plans" / "q3.yaml")
    assert scenario.pipeline_path == folder.resolve() / "data" / "deals.csv"
    assert scenario.source == folder.resolve() / "q3.yaml"
    assert scenario.label == "q3"


def test_absolute_pipeline_path_is_kept(tmp_path):
    target = tmp_path / "deals.csv"
    (tmp_path / "s.yaml").write_text(f"period: 2026-Q3\npipeline: {{path: '{target}'}}\n")
    assert load_scenario(tmp_path / "s.yaml").pipeline_path == target


def test_the_shipped_example_loads():
    scenario = load_scenario(CONFIGS / "example.yaml")
    assert scenario.label == "Team Q4 2026"
    assert scenario.period_range == PeriodRange(start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31))
    assert scenario.snapshot_date == dt.date(2026, 10, 15)
    assert scenario.booked_totals == Booked(revenue=180000.0, new_logos=1)
    assert [stage.name for stage in scenario.stages] == ["Qualified", "Proposal", "Negotiation"]
    assert [target.name for target in scenario.targets] == ["quota", "new customers", "analytics deals"]
    assert scenario.pipeline_path == CONFIGS / "example_pipeline.csv"
    assert (scenario.simulation.trials, scenario.simulation.seed) == (100_000, 2026)


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_json_schema_covers_every_key():
    schema = json_schema()
    json.dumps(schema)
    assert schema["title"] == "forecast scenario"
    assert schema["type"] == "object"
    assert set(schema["properties"]) == set(Scenario.model_fields)
    assert set(schema["required"]) == {"period", "pipeline"}
    assert schema["additionalProperties"] is False
    nested = (
        "PeriodRange",
        "PipelineSource",
        "Booked",
        "Stage",
        "Slip",
        "AmountNoise",
        "Target",
        "Simulation",
        "DealTemplate",
        "AddDeals",
        "Plan",
        "NewPipeline",
        "ConversionStage",
        "LagWeeks",
        "DealSize",
        "Territories",
        "Correlation",
        "WinByAge",
        "SegmentRates",
        "Evidence",
        "Fx",
    )
    assert set(schema["$defs"]) == set(nested)
    for name in nested:
        model, definition = getattr(scenario_module, name), schema["$defs"][name]
        assert set(definition["properties"]) == set(model.model_fields), name
        assert definition["additionalProperties"] is False, name
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in schema["$defs"]


def test_json_schema_accepts_a_year_as_a_number():
    period = json.dumps(json_schema()["properties"]["period"])
    assert '"integer"' in period and '"#/$defs/PeriodRange"' in period


@pytest.mark.parametrize("key", ["trials", "seed"])
def test_booleans_are_not_counts(key):
    with pytest.raises(ScenarioError, match=f"simulation.{key}"):
        parse_scenario(f"period: 2026-Q3\npipeline: {{path: x.csv}}\nsimulation: {{{key}: true}}\n")
