"""What changed: every change has one kind, and the parts add up to the total."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses.changes import KINDS, attribute_changes, classify
from forecast.engine.simulate import simulate
from forecast.engine.summary import reaches
from tests.builders import AFTER, INSIDE, make_deals, make_scenario

SCENARIO = (
    "stages: [{name: Early, win_rate: 0.3, slip: 0.3}, {name: Late, win_rate: 0.7},"
    " {name: Won, win_rate: 1.0, slip: 0}, {name: Lost, win_rate: 0.0}]\n"
    "slip: {default: 0.2, pull_in: 0.1, push_factor: 1.5}\n"
    "amount: {sigma: 0.3}\n"
    "targets: [{name: quota, metric: revenue, at_least: 900}]\n"
)
TRIALS = 3000


def _old():
    deals = make_deals(
        [300, 400, 500, 200, 350],
        close_dates=[INSIDE, INSIDE, AFTER, INSIDE, AFTER],
        stage_index=[0, 1, 0, 1, 0],
    )
    deals.push_count[:] = [0, 2, 1, 0, 3]
    return deals


def _change(deals, index, **fields):
    arrays = {name: getattr(deals, name).copy() for name in fields}
    for name, value in fields.items():
        arrays[name][index] = value
    return dataclasses.replace(deals, **arrays)


@pytest.mark.parametrize(
    ("kind", "new"),
    [
        ("lost", lambda d: d.subset(np.array([True, False, True, True, True]))),
        ("lost", lambda d: _change(d, 1, stage_index=3)),
        ("won", lambda d: _change(d, 0, stage_index=2)),
        ("pushed_out", lambda d: _change(d, 0, close_date=np.datetime64(AFTER))),
        ("pulled_in", lambda d: _change(d, 2, close_date=np.datetime64(INSIDE))),
        ("amount", lambda d: _change(d, 3, amount=900.0)),
        ("stage", lambda d: _change(d, 0, stage_index=1)),
        ("probability", lambda d: _change(d, 4, probability=0.9)),
    ],
)
def test_a_single_change_is_attributed_wholly_to_its_kind(kind, new):
    scenario = make_scenario(SCENARIO)
    old = _old()
    result = attribute_changes(scenario, old, new(old), trials=TRIALS)
    for part in result["parts"]:
        if part["kind"] == kind:
            assert part["expected_revenue_change"] == pytest.approx(
                result["total_change"]["expected_revenue_change"]
            )
            assert len(part["deals"]) == 1
        else:
            assert (
                part["expected_revenue_change"] == 0.0 and part["p_hit_change"] == 0.0 and not part["deals"]
            )
    assert result["total_change"]["expected_revenue_change"] != 0.0


def test_new_deals_and_the_end_state_is_the_new_forecast():
    scenario = make_scenario(SCENARIO)
    old = _old()
    extra = make_deals([250], close_dates=[INSIDE], stage_index=[1])
    extra = dataclasses.replace(extra, deal_id=np.array(["N1"], dtype=object))
    new = _change(old, 1, amount=650.0).concat(extra)
    result = attribute_changes(scenario, old, new, trials=TRIALS)
    assert classify(scenario, old, new)["new"] == ["N1"]
    forecast = simulate(scenario, new, trials=TRIALS)
    assert result["after"]["expected_revenue"] == pytest.approx(np.mean(forecast.trials.revenue), rel=1e-12)
    assert result["after"]["p_hit"] == pytest.approx(np.mean(reaches(forecast.trials.revenue, 900)))


deal_changes = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "keep",
                "drop",
                "win",
                "lose",
                "push",
                "pull",
                "amount",
                "stage",
                "probability",
                "pushes",
                "reset",
            ]
        ),
        st.integers(0, 4),
    ),
    max_size=8,
)


def _apply(deals, change: str, index: int):
    """One change to one deal of a snapshot."""
    if change == "drop":
        return deals.subset(np.arange(len(deals)) != index)
    fields = {
        "keep": {},
        "win": {"stage_index": 2},
        "lose": {"stage_index": 3},
        "push": {"close_date": np.datetime64(AFTER)},
        "pull": {"close_date": np.datetime64(INSIDE)},
        "amount": {"amount": float(deals.amount[index]) * 1.5 + 10},
        "stage": {"stage_index": 1 - min(int(deals.stage_index[index]), 1)},
        "probability": {"probability": 0.55},
        "pushes": {"push_count": int(deals.push_count[index]) + 1},
        "reset": {"push_count": 0},
    }[change]
    return _change(deals, index, **fields) if fields else deals


@settings(max_examples=25, deadline=None)
@given(deal_changes, st.integers(0, 3))
def test_parts_add_up_to_the_total(changes, new_deals):
    scenario = make_scenario(SCENARIO)
    old = _old()
    new = old
    for change, index in changes:
        if index >= len(new):
            continue
        new = _apply(new, change, index)
    if new_deals:
        extra = make_deals([100.0] * new_deals, stage_index=[0] * new_deals)
        new = new.concat(
            dataclasses.replace(extra, deal_id=np.array([f"N{i}" for i in range(new_deals)], dtype=object))
        )
    result = attribute_changes(scenario, old, new, trials=500)
    total = result["total_change"]
    assert sum(p["expected_revenue_change"] for p in result["parts"]) == pytest.approx(
        total["expected_revenue_change"], abs=1e-9 * max(1.0, result["before"]["expected_revenue"])
    )
    assert sum(p["p_hit_change"] for p in result["parts"]) == pytest.approx(total["p_hit_change"], abs=1e-12)
    end = simulate(scenario, new, trials=500)
    assert result["after"]["expected_revenue"] == pytest.approx(np.mean(end.trials.revenue), rel=1e-12)
    start = simulate(scenario, old, trials=500)  # nothing is applied before the first part
    assert result["before"]["expected_revenue"] == pytest.approx(np.mean(start.trials.revenue), rel=1e-12)
    assert result["before"]["p_hit"] == float(np.mean(reaches(start.trials.revenue, 900)))
    assert [p["kind"] for p in result["parts"]] == list(KINDS)
