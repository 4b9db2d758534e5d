"""Booked parts of targets: the scenario's booked plus the won rows closed in the period that a
target's where matches, added to its trials."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.engine.booked import booked
from forecast.engine.simulate import simulate
from forecast.engine.summary import summarize
from tests.builders import INSIDE, make_deals, make_scenario

BEFORE = dt.date(2026, 6, 30)
LATER = dt.date(2026, 10, 1)
TARGETS = (
    "booked: {revenue: 1000, new_logos: 2}\n"
    "targets:\n"
    "  - {name: revenue, metric: revenue, at_least: 1}\n"
    "  - {name: logos, metric: new_logos, at_least: 1}\n"
    "  - {name: deals, metric: deals, at_least: 1}\n"
    "  - {name: EU revenue, metric: revenue, at_least: 1, where: {region: EU}}\n"
    "  - {name: EU logos, metric: new_logos, at_least: 1, where: {region: EU}}\n"
    "  - {name: EU deals, metric: deals, at_least: 1, where: {region: EU}}\n"
)


def _with_won(open_deals, won):
    open_deals.won = won
    return open_deals


def test_each_target_gets_the_won_rows_it_matches():
    won = make_deals(
        [10.0, 20.0, 40.0, 80.0],
        close_dates=[INSIDE, INSIDE, BEFORE, LATER],
        new_logo=[True, False, True, True],
        region=["EU", "US", "EU", "EU"],
    )
    deals = _with_won(make_deals([5.0], [0.0], region=["EU"]), won)
    parts = booked(make_scenario(TARGETS), deals)
    assert (parts.revenue, parts.new_logos, parts.deals) == (1030.0, 3, 2)
    assert parts.targets == {
        "revenue": 1030.0, "logos": 3.0, "deals": 2.0, "EU revenue": 10.0, "EU logos": 1.0, "EU deals": 1.0,
    }  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 10_000),
            st.sampled_from([BEFORE, INSIDE, LATER]),
            st.booleans(),
            st.sampled_from(["EU", "US"]),
        ),
        max_size=8,
    ),
    st.integers(0, 5000),
)
def test_targets_and_summary_count_won_rows_like_a_hand_count(won_rows, written):
    """Open deals never win here: every target's value is exactly its booked part."""
    scenario = make_scenario(TARGETS.replace("revenue: 1000", f"revenue: {written}"))
    amounts, dates, logos, regions = zip(*won_rows, strict=True) if won_rows else ((), (), (), ())
    won = make_deals(list(amounts), close_dates=list(dates), new_logo=list(logos), region=list(regions))
    deals = _with_won(make_deals([5.0], [0.0], region=["EU"]), won)
    inside = [row for row in won_rows if row[1] == INSIDE]
    eu = [row for row in inside if row[3] == "EU"]
    expected = {
        "revenue": written + sum(row[0] for row in inside),
        "logos": 2 + sum(row[2] for row in inside),
        "deals": len(inside),
        "EU revenue": sum(row[0] for row in eu),
        "EU logos": sum(row[2] for row in eu),
        "EU deals": len(eu),
    }
    forecast = simulate(scenario, deals, trials=50, seed=1)
    for name, value in expected.items():
        np.testing.assert_array_equal(forecast.trials.targets[name], np.full(50, float(value)))
    summary = summarize(forecast)
    assert summary["booked"] == expected["revenue"]
    assert summary["booked_new_logos"] == expected["logos"]
    assert summary["booked_deals"] == len(inside)


def test_a_reps_won_rows_count_toward_the_reps_quota():
    """Quotas by owner: each rep's revenue is the rep's open deals and won rows booked in the period
    (the scenario's own ``booked`` stays the team's). Before, a rep's won deal counted for the team
    total only, so a rep who had already made quota read P(hit) 0 and a rep with only won deals was
    missing from the table."""
    won = make_deals([300.0, 50.0, 999.0], close_dates=[INSIDE, INSIDE, BEFORE], owner=["Ann", "Cid", "Ann"])
    open_deals = make_deals(
        [100.0, 40.0], [1.0, 0.0], owner=["Ann", "Bob"], forecast_category=["Pipeline"] * 2
    )
    deals = _with_won(open_deals, won)
    scenario = make_scenario(
        "booked: 7\nquotas: {owner: {Ann: 350, Bob: 10, Cid: 50}}\nsimulation: {trials: 200}\n"
    )
    rows = {row["name"]: row for row in summarize(simulate(scenario, deals))["breakdown"]["owner"]}
    assert set(rows) == {"Ann", "Bob", "Cid"}
    assert rows["Ann"]["revenue"]["mean"] == 400.0 and rows["Ann"]["probability"] == 1.0
    assert rows["Bob"]["revenue"]["mean"] == 0.0 and rows["Bob"]["probability"] == 0.0
    assert rows["Cid"]["revenue"]["mean"] == 50.0 and rows["Cid"]["probability"] == 1.0
    assert rows["Ann"]["judgement"]["commit"] == 300.0  # the rep's won row is in the rep's commit call
