"""``pipeline.preset``: a CRM's standard headers, stages, values and probability scale fill what
the scenario leaves unset, and never override what it sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecast.config.loading import parse_scenario
from forecast.config.presets import CRM_PRESETS
from forecast.config.scenario import PRESETS, PipelineSource
from forecast.errors import PipelineError
from forecast.inputs.pipeline import load_deals
from forecast.inputs.presets import preset_columns, with_preset

ROOT = Path(__file__).resolve().parents[2]
SALESFORCE_HEADERS = ["Opportunity Owner", "Opportunity Name", "Opportunity ID", "Type", "Amount",
                      "Probability (%)", "Close Date", "Stage", "Created Date"]  # fmt: skip


def test_the_scenario_accepts_every_preset_there_is_data_for():
    assert set(PRESETS) == set(CRM_PRESETS)


def test_a_preset_gives_its_stages_when_the_scenario_lists_none():
    scenario = parse_scenario("period: 2026-Q4\npipeline: {path: deals.csv, preset: hubspot}\n")
    stages = {stage.name: stage for stage in scenario.stages}
    assert [stage.win_rate for stage in scenario.stages] == [0.2, 0.4, 0.6, 0.8, 0.9, 1.0, 0.0]
    assert stages["Contract Sent"].aliases == ["contractsent"]
    assert (stages["Closed Won"].status, stages["Closed Lost"].status) == ("won", "lost")


def test_stages_the_scenario_lists_replace_the_presets_whole():
    text = (
        "period: 2026-Q4\npipeline: {path: d.csv, preset: salesforce}\n"
        "stages: [{name: Deal, win_rate: 0.3}]\n"
    )
    assert [stage.name for stage in parse_scenario(text).stages] == ["Deal"]


def test_plans_may_name_a_presets_stage():
    text = (
        "period: 2026-Q4\npipeline: {path: d.csv, preset: salesforce}\n"
        "plans: {push: {win_rate_delta: {Negotiation/Review: 0.05}}}\n"
    )
    assert parse_scenario(text).plans["push"].win_rate_delta == {"Negotiation/Review": 0.05}


def test_preset_columns_are_the_headers_the_file_has_ignoring_case():
    found = preset_columns("salesforce", ["opportunity id", "AMOUNT", "Close Date", "Stage", "Other"])
    assert found == {
        "deal_id": "opportunity id",
        "amount": "AMOUNT",
        "close_date": "Close Date",
        "stage": "Stage",
    }


def test_explicit_settings_win_over_the_preset():
    source = PipelineSource(
        path="d.csv",
        preset="salesforce",
        columns={"amount": "Expected Revenue", "owner": "Opportunity Name"},
        values={"new_logo": {"Existing Business": True}},
        probability_scale="fraction",
    )
    filled = with_preset(source, [*SALESFORCE_HEADERS, "Expected Revenue"])
    assert filled.columns["amount"] == "Expected Revenue"
    assert filled.columns["owner"] == "Opportunity Name"  # the preset's owner header is not used
    assert "Opportunity Owner" not in filled.columns.values()
    assert filled.columns["deal_id"] == "Opportunity ID"
    assert filled.values == {"new_logo": {"New Business": True, "Existing Business": True}}
    assert filled.probability_scale == "fraction"


def test_the_presets_scale_and_values_apply_when_the_scenario_sets_none():
    filled = with_preset(PipelineSource(path="d.csv", preset="salesforce"), SALESFORCE_HEADERS)
    assert filled.probability_scale == "percent"
    assert filled.values == {"new_logo": {"New Business": True, "Existing Business": False}}
    assert with_preset(PipelineSource(path="d.csv", preset="hubspot"), []).probability_scale == "fraction"


def test_without_a_preset_the_source_is_unchanged():
    source = PipelineSource(path="d.csv")
    assert with_preset(source, SALESFORCE_HEADERS) is source


EXPORT = (
    "Opportunity ID,Opportunity Name,Amount,Close Date,Stage,Probability (%),Opportunity Owner\n"
    "006A,Acme,1000,2026-11-30,Prospecting,10,Ann\n"
    "006B,Beta,2500.5,2026-12-15,Negotiation/Review,90,Bob\n"
)


def test_load_deals_reads_a_salesforce_export_through_its_preset(tmp_path):
    (tmp_path / "deals.csv").write_text(EXPORT)
    scenario = parse_scenario(
        "period: 2026-Q4\npipeline: {path: deals.csv, preset: salesforce}\n", tmp_path / "s.yaml"
    )
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    assert list(deals.deal_id) == ["006A", "006B"]
    assert list(deals.amount) == [1000.0, 2500.5]
    assert list(deals.probability) == [0.1, 0.9]  # Probability (%): the preset's percent scale
    assert [scenario.stages[i].name for i in deals.stage_index] == ["Prospecting", "Negotiation/Review"]
    assert list(deals.attributes["owner"]) == ["Ann", "Bob"]


def test_the_same_export_without_the_preset_lacks_its_columns(tmp_path):
    (tmp_path / "deals.csv").write_text(EXPORT)
    scenario = parse_scenario("period: 2026-Q4\npipeline: {path: deals.csv}\n", tmp_path / "s.yaml")
    with pytest.raises(PipelineError, match="missing column 'deal_id'"):
        load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)


@pytest.mark.parametrize("name", sorted(CRM_PRESETS))
def test_the_readme_has_a_table_for_every_preset(name):
    """Every header and stage of a preset appears in the README's table for its CRM."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"#### `preset: {name}`")
    table = readme[start:].split("\n#### ", 1)[0]
    preset = CRM_PRESETS[name]
    for canonical, headers in preset.columns.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `{canonical}` "))
        assert all(f"`{header}`" in row for header in headers), (canonical, row)
    for stage in preset.stages:
        assert f"| {stage.name} |" in table, stage.name


@given(
    explicit=st.dictionaries(
        st.sampled_from(sorted(CRM_PRESETS["salesforce"].columns)),
        st.sampled_from([*SALESFORCE_HEADERS, "Custom A", "Custom B"]),
    ),
    headers=st.lists(st.sampled_from([*SALESFORCE_HEADERS, "Custom A", "Custom B"]), unique=True),
)
def test_explicit_columns_always_win_and_no_header_is_mapped_twice_by_the_preset(explicit, headers):
    filled = with_preset(PipelineSource(path="d.csv", preset="salesforce", columns=explicit), headers)
    assert {name: filled.columns[name] for name in explicit} == explicit
    added = {name: header for name, header in filled.columns.items() if name not in explicit}
    assert set(added.values()).isdisjoint(explicit.values())
    assert len(set(added.values())) == len(added)
    assert added == {name: header for name, header in preset_columns("salesforce", headers).items()
                     if name not in explicit and header not in explicit.values()}  # fmt: skip
