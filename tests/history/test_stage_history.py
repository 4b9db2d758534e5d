"""Stage histories: a deal's stage on any date, the stages it reached, bad rows named by row and column."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.config.specs import StageHistorySource
from forecast.errors import PipelineError
from forecast.inputs.stage_history import StageHistory, load_stage_history

CHANGES = [  # in file order: A's Late and Proposal share a day, Proposal is written last
    ("A", "Early", "2020-01-01"),
    ("B", "Early", "2020-01-15"),
    ("A", "Proposal", "2020-02-01"),
    ("A", "Late", "2020-01-20"),
    ("A", "proposal", "2020-03-01"),
]


def _history(changes=CHANGES) -> StageHistory:
    deal, stage, day = zip(*changes, strict=True)
    return StageHistory(
        np.array(deal, dtype=object), np.array(stage, dtype=object), np.array(day, "datetime64[D]")
    )


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        ("2019-12-31", ["", "", ""]),  # before any change
        ("2020-01-01", ["Early", "", ""]),  # entered that day counts
        ("2020-01-19", ["Early", "Early", ""]),
        ("2020-01-20", ["Late", "Early", ""]),
        ("2020-02-01", ["Proposal", "Early", ""]),
        ("2020-12-31", ["proposal", "Early", ""]),  # C has no changes at all
    ],
)
def test_stage_on_a_day_is_the_last_entered_by_then(day, expected):
    stages = _history().on(np.array(["A", "B", "C"], dtype=object), np.datetime64(day))
    assert list(stages) == expected


def test_same_day_changes_keep_file_order():
    history = _history([("A", "Early", "2020-01-01"), ("A", "Late", "2020-01-01")])
    assert history.on(np.array(["A"], dtype=object), np.datetime64("2020-01-01"))[0] == "Late"


def test_stages_reached_compare_as_stage_names():
    assert _history().reached() == {"Early": {"A", "B"}, "Proposal": {"A"}, "Late": {"A"}}
    assert list(StageHistory(np.array([], object), np.array([], object), np.array([], "datetime64[D]")).on(
        np.array(["A"], dtype=object), np.datetime64("2020-01-01"))) == [""]  # fmt: skip


def _write(path, text: str):
    path.write_text(text)
    return StageHistorySource(path=str(path))


def test_loads_by_header_name_or_mapping(tmp_path):
    source = _write(tmp_path / "s.csv", "Deal ID,Stage,Date\nA,Early,2020-01-01\n,,\nB,Late,2020-02-01\n")
    history = load_stage_history(source, {"A", "B"}, tmp_path / "h.csv")
    assert list(history.on(np.array(["A", "B"], dtype=object), np.datetime64("2020-03-01"))) == [
        "Early",
        "Late",
    ]
    source = _write(tmp_path / "t.csv", "Opp,Step,When\nA,Early,01/02/2020\n")
    mapped = source.model_copy(update={"columns": {"deal_id": "Opp", "stage": "Step", "date": "When"},
                                       "date_format": "%m/%d/%Y"})  # fmt: skip
    history = load_stage_history(mapped, {"A"}, tmp_path / "h.csv")
    assert history.entered[0] == np.datetime64("2020-01-02")


def test_bad_rows_are_named_by_file_row_and_column(tmp_path):
    source = _write(
        tmp_path / "s.csv", "deal,stage,date\nA,Early,2020-01-01\nZ,Early,2020-01-02\nA,,2020-13-01\n"
    )
    source = source.model_copy(update={"columns": {"deal_id": "deal"}})
    with pytest.raises(PipelineError) as error:
        load_stage_history(source, {"A"}, tmp_path / "h.csv")
    path = tmp_path / "s.csv"
    assert error.value.problems == [
        f"{path}: row 3, column 'deal' (deal_id): unknown deal id 'Z': it is not in {tmp_path / 'h.csv'}",
        f"{path}: row 4, column 'stage' (stage): is empty",
        f"{path}: row 4, column 'date' (date): '2020-13-01' is not a date; expected YYYY-MM-DD, "
        "or set --date-format (e.g. '%m/%d/%Y')",
    ]
    with pytest.raises(PipelineError, match=r"or set history.stage_history.date_format \(e.g."):
        load_stage_history(source, {"A"}, tmp_path / "h.csv", hint="history.stage_history.columns.{name}")


def test_missing_columns_say_how_to_map_them(tmp_path):
    source = _write(tmp_path / "s.csv", "deal_id,status\nA,Early\n")
    with pytest.raises(PipelineError) as error:
        load_stage_history(source, {"A"}, tmp_path / "h.csv", hint="history.stage_history.columns.{name}")
    assert error.value.problems == [
        f"{tmp_path / 's.csv'}: missing column {name!r}; map it with history.stage_history.columns.{name} "
        "(columns are: deal_id, status)"
        for name in ("stage", "date")
    ]
    with pytest.raises(PipelineError, match="stage history file not found"):
        load_stage_history(StageHistorySource(path=str(tmp_path / "none.csv")), set(), tmp_path / "h.csv")


def test_only_a_row_with_no_cell_at_all_is_a_blank_line(tmp_path):
    """As in pipelines and histories: a row whose deal, stage and date are empty but that holds
    something else is a bad row, not a line to skip."""
    path = tmp_path / "s.csv"
    source = _write(path, "deal_id,stage,date,note\nA,Early,2020-01-01,\n,,,\n,,,moved by hand\n")
    with pytest.raises(PipelineError) as error:
        load_stage_history(source, {"A"}, tmp_path / "h.csv")
    assert error.value.problems == [
        f"{path}: row 4, column 'deal_id' (deal_id): is empty",
        f"{path}: row 4, column 'stage' (stage): is empty",
        f"{path}: row 4, column 'date' (date): '' is not a date; expected YYYY-MM-DD, "
        "or set --date-format (e.g. '%m/%d/%Y')",
    ]
