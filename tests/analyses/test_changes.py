"""What changed: every change has one kind, and the parts add up to the total."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses.changes import KINDS, attribute_changes, classify
from forecast.engine.simulate import simulate
from forecast.engine.summary import all_targets_hit, reaches
from forecast.errors import PipelineError
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

SCENARIO = (
    "as_of: 2026-08-01\n"
    "stages: [{name: Early, win_rate: 0.3, slip: 0.3}, {name: Late, win_rate: 0.7},"
    " {name: Won, win_rate: 1.0, slip: 0}, {name: Lost, win_rate: 0.0}]\n"
    "slip: {default: 0.2, pull_in: 0.1, push_factor: 1.5}\n"
    "win_by_age: {buckets_days: [60], rates: {default: [0.5, 0.1], Late: [0.8, 0.4]}}\n"
    "amount: {sigma: 0.3}\n"
    "correlation: {market: 0.1, by: {owner: 0.3}}\n"
    "targets:\n"
    "  - {name: quota, metric: revenue, at_least: 500}\n"
    "  - {name: logos, metric: new_logos, at_least: 1}\n"
    "  - {name: X deals, metric: deals, where: {product: X}, at_least: 1}\n"
)
TRIALS = 3000
QUOTA = 500
MEASURES = ("expected_revenue", "p_hit", "p_all_targets")


def _old():
    deals = make_deals(
        [300, 400, 500, 200, 350],
        close_dates=[INSIDE, INSIDE, AFTER, INSIDE, AFTER],
        stage_index=[0, 1, 0, 1, 0],
        new_logo=[True, False, False, False, True],
        owner=["A", "A", "B", "B", "A"],
        product=["X", "Y", "Y", "X", "Y"],
        account=["a1", "a2", "a3", "a4", "a5"],  # a column nothing reads
    )
    deals.push_count[:] = [0, 2, 1, 0, 3]
    deals.created[[0, 2]] = np.datetime64("2026-07-10")  # D0 age-rated; D2 dated after the period
    deals.slip[4] = 0.5
    return deals


def _change(deals, index, **fields):
    arrays = {name: getattr(deals, name).copy() for name in fields if name not in deals.attributes}
    attributes = {name: values.copy() for name, values in deals.attributes.items()}
    for name, value in fields.items():
        (attributes if name in attributes else arrays)[name][index] = value
    return dataclasses.replace(deals, **arrays, attributes=attributes)


@pytest.mark.parametrize(
    ("kind", "new"),
    [
        ("lost", lambda d: d.subset(np.array([True, False, True, True, True]))),
        ("lost", lambda d: _change(d, 1, stage_index=3)),
        ("won", lambda d: _change(d, 0, stage_index=2, created=np.datetime64("NaT"))),
        ("pushed_out", lambda d: _change(d, 1, close_date=np.datetime64(AFTER))),
        ("pushed_out", lambda d: _change(d, 3, push_count=2)),
        ("slip", lambda d: _change(d, 1, push_count=0)),  # a push count that fell lowers its slip
        ("pulled_in", lambda d: _change(d, 4, close_date=np.datetime64(INSIDE))),
        ("amount", lambda d: _change(d, 3, amount=900.0)),
        ("stage", lambda d: _change(d, 1, stage_index=0)),
        ("probability", lambda d: _change(d, 4, probability=0.9)),
        ("slip", lambda d: _change(d, 3, slip=0.8)),
        ("created_date", lambda d: _change(d, 0, created=np.datetime64("2026-01-10"))),
        ("created_date", lambda d: _change(d, 3, created=np.datetime64("2026-07-20"))),
        ("new_logo", lambda d: _change(d, 1, new_logo=True)),
        ("owner", lambda d: _change(d, 3, owner="A")),
        ("product", lambda d: _change(d, 0, product="Y")),
    ],
)
def test_a_single_change_is_attributed_wholly_to_its_kind(kind, new):
    scenario = make_scenario(SCENARIO)
    old = _old()
    result = attribute_changes(scenario, old, new(old), trials=TRIALS)
    total = result["total_change"]
    assert any(total[f"{measure}_change"] != 0.0 for measure in MEASURES)
    for part in result["parts"]:
        if part["kind"] == kind:
            for measure in MEASURES:
                assert part[f"{measure}_change"] == pytest.approx(total[f"{measure}_change"], abs=1e-9)
            assert len(part["deals"]) == 1
        else:
            assert all(part[f"{measure}_change"] == 0.0 for measure in MEASURES) and not part["deals"]


def test_differences_that_cannot_move_the_forecast_are_no_kind():
    """A close date moved within the period and a column nothing reads change nothing."""
    old = _old()
    new = _change(_change(old, 0, close_date=np.datetime64("2026-09-01")), 1, account="z9")
    result = attribute_changes(make_scenario(SCENARIO), old, new, trials=TRIALS)
    assert all(not part["deals"] for part in result["parts"])
    assert all(result["total_change"][f"{measure}_change"] == 0.0 for measure in MEASURES)


def test_a_push_count_without_a_push_factor_is_no_kind():
    """Without ``slip.push_factor`` a push count changes no deal's slip, so it moves nothing."""
    old = _old()
    new = _change(_change(old, 1, push_count=0), 3, push_count=4)
    scenario = make_scenario(SCENARIO.replace(", push_factor: 1.5", ""))
    result = attribute_changes(scenario, old, new, trials=TRIALS)
    assert all(not part["deals"] for part in result["parts"])


def test_a_read_column_missing_from_an_export_names_the_file_and_key():
    old = _old()
    new = dataclasses.replace(old, attributes={"owner": old.attributes["owner"]}, source=Path("new.csv"))
    with pytest.raises(PipelineError, match=r"new\.csv: targets\[2\]\.where\.product: the export has no"):
        attribute_changes(make_scenario(SCENARIO), old, new, trials=10)


def test_new_deals_and_the_end_state_is_the_new_forecast():
    scenario = make_scenario(SCENARIO)
    old = _old()
    extra = make_deals([250], close_dates=[INSIDE], stage_index=[1], owner=["C"], product=["X"])
    extra = dataclasses.replace(extra, deal_id=np.array(["N1"], dtype=object))
    new = _change(old, 1, amount=650.0).concat(extra)
    result = attribute_changes(scenario, old, new, trials=TRIALS)
    assert classify(scenario, old, new)["new"] == ["N1"]
    forecast = simulate(scenario, new, trials=TRIALS)
    assert result["after"]["expected_revenue"] == pytest.approx(np.mean(forecast.trials.revenue), rel=1e-12)
    assert result["after"]["p_hit"] == pytest.approx(np.mean(reaches(forecast.trials.revenue, QUOTA)))
    assert result["after"]["p_all_targets"] == pytest.approx(np.mean(all_targets_hit(forecast)))


CHANGES = (
    "keep", "drop", "win", "lose", "push", "pull", "move", "amount", "stage", "probability", "slip",
    "created", "new_logo", "owner", "product", "account", "pushes", "reset",
)  # fmt: skip
deal_changes = st.lists(
    st.tuples(st.sampled_from(CHANGES), st.integers(0, 4), st.floats(0.0, 1.0)), max_size=10
)


def _apply(deals, change: str, index: int, value: float):
    """One change to one deal of a snapshot; ``value`` in [0, 1] sets its size."""
    if change == "drop":
        return deals.subset(np.arange(len(deals)) != index)
    created = np.datetime64("2026-08-01") - np.timedelta64(int(200 * value), "D")
    fields = {
        "keep": {},
        "win": {"stage_index": 2},
        "lose": {"stage_index": 3},
        "push": {"close_date": np.datetime64(AFTER)},
        "pull": {"close_date": np.datetime64(INSIDE)},
        "move": {"close_date": np.datetime64(INSIDE) + np.timedelta64(int(40 * value) - 20, "D")},
        "amount": {"amount": float(deals.amount[index]) * (0.5 + value) + 10},
        "stage": {"stage_index": 1 - min(int(deals.stage_index[index]), 1)},
        "probability": {"probability": np.nan if value < 0.2 else value},
        "slip": {"slip": np.nan if value < 0.2 else value},
        "created": {"created": np.datetime64("NaT") if value < 0.2 else created},
        "new_logo": {"new_logo": not deals.new_logo[index]},
        "owner": {"owner": "ABC"[int(3 * value) % 3]},
        "product": {"product": "XY"[int(2 * value) % 2]},
        "account": {"account": f"z{value}"},
        "pushes": {"push_count": int(deals.push_count[index]) + 1},
        "reset": {"push_count": 0},
    }[change]
    return _change(deals, index, **fields) if fields else deals


@settings(max_examples=30, deadline=None)
@given(deal_changes, st.integers(0, 3))
def test_parts_add_up_to_the_total(changes, new_deals):
    """Any mix of changes to any field: the parts add up exactly to the total, the first state is
    the old forecast and the last the new one (no change is applied unseen or left out), and only
    a part with deals moves the forecast."""
    scenario = make_scenario(SCENARIO)
    old = _old()
    new = old
    for change, index, value in changes:
        if index < len(new):
            new = _apply(new, change, index, value)
    if new_deals:
        extra = make_deals(
            [100.0] * new_deals, stage_index=[0] * new_deals, owner=["C"] * new_deals,
            product=["X"] * new_deals, account=[""] * new_deals,
        )  # fmt: skip
        new = new.concat(
            dataclasses.replace(extra, deal_id=np.array([f"N{i}" for i in range(new_deals)], dtype=object))
        )
    result = attribute_changes(scenario, old, new, trials=500)
    total = result["total_change"]
    assert sum(p["expected_revenue_change"] for p in result["parts"]) == pytest.approx(
        total["expected_revenue_change"], abs=1e-9 * max(1.0, result["before"]["expected_revenue"])
    )
    for measure in ("p_hit", "p_all_targets"):
        assert sum(p[f"{measure}_change"] for p in result["parts"]) == pytest.approx(
            total[f"{measure}_change"], abs=1e-12
        )
    start, end = simulate(scenario, old, trials=500), simulate(scenario, new, trials=500)
    assert result["before"] == {
        "expected_revenue": float(np.mean(start.trials.revenue)),
        "p_hit": float(np.mean(reaches(start.trials.revenue, QUOTA))),
        "p_all_targets": float(np.mean(all_targets_hit(start))),
    }  # nothing is applied before the first part, bit for bit
    assert result["after"]["expected_revenue"] == pytest.approx(np.mean(end.trials.revenue), rel=1e-12)
    assert result["after"]["p_hit"] == pytest.approx(np.mean(reaches(end.trials.revenue, QUOTA)), abs=1e-12)
    assert result["after"]["p_all_targets"] == pytest.approx(np.mean(all_targets_hit(end)), abs=1e-12)
    for part in result["parts"]:
        if not part["deals"]:
            assert all(part[f"{measure}_change"] == 0.0 for measure in MEASURES), part["kind"]
    assert [p["kind"] for p in result["parts"]] == [*KINDS, "product", "owner"]


def test_a_deal_won_since_is_won_and_booked_and_the_end_state_is_the_new_forecast():
    """An export with closed rows: a deal open last week and Closed Won this week leaves the open
    pipeline as a won row booked in the period. It read as lost, and the new forecast left the won
    rows out (expected revenue 747 -> 251 where `run` on the new export says 1,251)."""
    scenario = make_scenario(
        "targets: [{name: q, metric: revenue, at_least: 1000}]\nsimulation: {trials: 4000}\n"
    )
    old = make_deals([1000.0, 500.0, 300.0], [0.5, 0.5, 0.5])
    old.won = make_deals([70.0], close_dates=[INSIDE])  # booked already last week
    new = old.subset(np.array([False, True, False]))  # A won, C lost
    won = make_deals([1000.0, 70.0, 40.0], close_dates=[INSIDE, INSIDE, INSIDE])
    won.deal_id = np.array(["D0", "D_old", "D9"], dtype=object)  # and D9 won without ever being open here
    old.won.deal_id = np.array(["D_old"], dtype=object)
    new.won = won
    result = attribute_changes(scenario, old, new)
    kinds = {part["kind"]: part for part in result["parts"]}
    assert kinds["won"]["deals"] == ["D0", "D9"] and kinds["lost"]["deals"] == ["D2"]
    end = simulate(scenario, new)
    assert result["after"]["expected_revenue"] == pytest.approx(float(np.mean(end.trials.revenue)), abs=1e-9)
    assert float(np.mean(end.trials.revenue)) == pytest.approx(1070 + 40 + 250, abs=20)
    total = sum(part["expected_revenue_change"] for part in result["parts"])
    assert total == pytest.approx(result["total_change"]["expected_revenue_change"], abs=1e-9)
