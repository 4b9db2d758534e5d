"""Territories: known optima, coherent splits, the heuristic against the exact search."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.analyses import territories as territories_module
from forecast.analyses.territories import Split, _exact, _heuristic, search, territories
from forecast.engine.simulate import simulate
from forecast.errors import PipelineError, ScenarioError
from tests import naive
from tests.builders import AFTER, INSIDE, make_deals, make_scenario


def _forecast(amounts, sectors, owners, quotas, trials=2000, probability=1.0):
    deals = make_deals(amounts, [probability] * len(amounts), owner=owners, sector=sectors)
    scenario = make_scenario(f"quotas: {{owner: {quotas}}}\n")
    return simulate(scenario, deals, trials=trials, by=("owner", "sector"))


def test_finds_the_known_optimum_and_keeps_units_whole():
    forecast = _forecast(
        [100, 100, 80, 20, 60],
        ["A", "B", "C", "D", "A"],
        ["r1", "r2", "r1", "r1", "r2"],
        "{r1: 180, r2: 180}",
    )
    result = territories(forecast, unit="sector")
    suggested = result["suggested"]
    assert result["search"]["method"] == "exact"
    assert suggested["spread"]["range"] == pytest.approx(0.0, abs=1e-12)  # {A 160, D 20}, {B 100, C 80}
    units = [unit for row in suggested["reps"] for unit in row["units"]]
    assert sorted(units) == ["A", "B", "C", "D"]  # every unit once, none split
    assert all(row["units"] for row in suggested["reps"])
    assert {row["expected"] for row in suggested["reps"]} == {180.0}
    current = {row["rep"]: row for row in result["current"]["reps"]}
    assert current["r1"]["units"] == ["A", "C", "D"] and current["r1"]["expected"] == 200  # a mix today


def _small_split(seed: int, spread: float, units: int = 7, reps: int = 3) -> Split:
    """Units with lognormal expected revenue (the same in every trial) and random rep quotas."""
    rs = np.random.default_rng(seed)
    revenue = rs.lognormal(5, spread, size=(units, 1)) * np.ones((1, 10))
    return Split(revenue, rs.uniform(200, 400, reps), "attainment")


@pytest.mark.parametrize("seed", range(6))
def test_heuristic_matches_exact_on_small_instances_and_respects_the_bound(seed):
    reps = 3
    split = _small_split(seed, 0.6, reps=reps)
    exact, heuristic = _exact(split), _heuristic(split)
    assert len(set(heuristic.tolist())) == reps  # every rep keeps a whole territory
    assert split.spread(exact) >= split.lower_bound() - 1e-12
    assert split.spread(heuristic) >= split.spread(exact) - 1e-12
    assert split.spread(heuristic) <= split.spread(exact) + 0.05  # local search gets close on these


def test_p_hit_objective_and_fewer_units_than_reps():
    """r1 holds every deal today (r2 and r3 cannot hit); two whole sectors go to two reps."""
    forecast = _forecast(
        [100, 120, 80, 90], ["A", "A", "B", "B"], ["r1"] * 4, "{r1: 150, r2: 150, r3: 150}", probability=0.6,
    )  # fmt: skip
    result = territories(forecast, unit="sector", objective="p_hit")
    assert result["suggested"]["spread"]["objective"] == "p_hit"
    assert result["search"]["fairer"]  # about 0.36 (both deals of a sector) against 0.9 today
    assert "some reps cannot own a whole one" in result["note"]
    owned = [row for row in result["suggested"]["reps"] if row["units"]]
    assert len(owned) == 2  # both sectors given out whole, one rep each


def test_large_instances_use_the_heuristic_with_a_gap():
    sectors = [f"S{i}" for i in range(12)]
    forecast = _forecast(list(range(50, 50 + 12 * 10, 10)), sectors, ["a", "b", "c", "d"] * 3,
                         "{a: 300, b: 300, c: 300, d: 300}")  # fmt: skip
    result = territories(forecast, unit="sector")
    assert result["search"]["method"] == "heuristic"  # 4 ** 12 assignments
    assert result["search"]["gap"] >= 0
    suggested = result["suggested"]
    assert all(row["units"] for row in suggested["reps"])


def test_nothing_to_split_is_a_clear_error():
    deals = make_deals([100, 200], [0.0, 0.0], owner=["a", "b"], sector=["S", "T"])
    forecast = simulate(make_scenario(), deals, trials=100, by=("owner", "sector"))
    with pytest.raises(ScenarioError, match="no expected revenue to split"):
        territories(forecast, unit="sector")


def _brute_force_bound(expected: np.ndarray, quotas: np.ndarray) -> float:
    """Every subset of units, for every rep: the nearest attainments above and below the average."""
    import itertools

    average = expected.sum() / quotas.sum()
    sums = [sum(c) for k in range(len(expected) + 1) for c in itertools.combinations(expected, k)]
    above = min(min(x / q for x in sums if x / q >= average - 1e-12) for q in quotas)
    below = max(max(x / q for x in sums if x / q <= average + 1e-12) for q in quotas)
    return above - below


@pytest.mark.parametrize("seed", range(6))
def test_the_subset_bound_is_the_brute_force_one_and_never_above_the_optimum(seed):
    reps = 3
    split = _small_split(seed, 0.9, reps=reps)
    old_bound = split.expected.max() / split.targets.max() - split.expected.sum() / split.targets.sum()
    expected = max(0.0, old_bound, _brute_force_bound(split.expected, split.targets))
    assert split.lower_bound() == pytest.approx(expected, abs=1e-12)
    assert split.spread(_exact(split)) >= split.lower_bound() - 1e-12


def test_the_subset_bound_tightens_lumpy_splits():
    """Two reps, units of 10 and 3 x 4: the best split is 10 | 12 (range 0.2 at quotas of 10);
    the biggest-unit bound sees nothing (10 / 10 is below the average 1.1), the subset bound 0.2."""
    revenue = np.array([[10.0], [4.0], [4.0], [4.0]])
    split = Split(revenue, np.array([10.0, 10.0]), "attainment")
    assert split.spread(_exact(split)) == pytest.approx(0.2)
    assert split.lower_bound() == pytest.approx(0.2)


def test_without_owner_quotas_every_rep_is_measured_against_the_average_rep():
    forecast = simulate(
        make_scenario(),
        make_deals([100, 60, 40], [1.0] * 3, owner=["a", "a", "b"], sector=["S", "T", "U"]),
        trials=100,
        by=("owner", "sector"),
    )
    result = territories(forecast, unit="sector")
    assert [row["quota"] for row in result["current"]["reps"]] == [100.0, 100.0]  # 200 expected / 2 reps
    assert result["current"]["spread"]["range"] == pytest.approx(1.2)  # 160 / 100 - 40 / 100
    suggested = result["suggested"]
    assert [row["quota"] for row in suggested["reps"]] == [100.0, 100.0]
    assert suggested["spread"]["range"] == pytest.approx(0.0, abs=1e-12)  # S | T + U


@pytest.mark.parametrize("objective", ["attainment", "p_hit"])
def test_no_suggestion_when_no_split_of_whole_units_is_fairer_than_today(objective):
    """Three reps, two deals each, two sectors: whole sectors leave one rep with nothing (range at
    least the best rep's score), today every rep has the same pipeline."""
    forecast = _forecast(
        [100] * 6, ["A", "A", "A", "B", "B", "B"], ["r1", "r2", "r3"] * 2, "{r1: 100, r2: 100, r3: 100}",
        probability=0.5,
    )  # fmt: skip
    result = territories(forecast, unit="sector", objective=objective)
    assert result["suggested"] is None
    search = result["search"]
    assert search["method"] == "exact" and not search["fairer"]
    assert search["current_range"] == result["current"]["spread"]["range"]
    assert search["current_range"] < search["best_range"]
    assert search["best_range"] >= (1.5 if objective == "attainment" else 0.8)  # 300 / 100 - 0; P(2 of 3)


@pytest.mark.parametrize("objective", ["attainment", "p_hit"])
def test_a_current_split_of_whole_units_is_compared_on_the_same_trials(objective):
    """Each rep owns one sector today: the exact search meets today's split, score for score."""
    forecast = _forecast(
        [100, 50, 70, 90, 40], ["A", "A", "B", "B", "B"], ["r1", "r1", "r2", "r2", "r2"],
        "{r1: 150, r2: 150}", probability=0.6,
    )  # fmt: skip
    result = territories(forecast, unit="sector", objective=objective)
    assert result["suggested"] is None  # as fair as today is not fairer
    assert result["search"]["best_range"] == result["search"]["current_range"]


def test_suggested_reps_have_the_open_pipeline_of_their_units():
    forecast = simulate(
        make_scenario("quotas: {owner: {r1: 180, r2: 180}}\n"),
        make_deals(
            [100, 100, 80, 20, 60, 50],
            [1.0] * 6,
            close_dates=[INSIDE] * 5 + [AFTER],  # B's deal dated after the period: not open pipeline
            owner=["r1", "r2", "r1", "r1", "r2", "r1"],
            sector=["A", "B", "C", "D", "A", "B"],
        ),
        trials=100,
        by=("owner", "sector"),
    )
    result = territories(forecast, unit="sector")
    assert [row["open_pipeline"] for row in result["current"]["reps"]] == [200.0, 160.0]
    suggested = {tuple(row["units"]): row["open_pipeline"] for row in result["suggested"]["reps"]}
    assert suggested == {("A", "D"): 180.0, ("B", "C"): 180.0}


@pytest.mark.parametrize("column", ["owner", "sector"])
def test_deals_without_an_owner_or_unit_are_refused(column):
    """Such a deal is in one split and not the other: the comparison would not be like with like."""

    attributes = {"owner": ["a", "b", "b"], "sector": ["S", "T", "T"]}
    attributes[column][1] = ""
    scenario = make_scenario("quotas: {owner: {a: 100, b: 100}}\n")
    deals = make_deals([100, 60, 40], [1.0] * 3, **attributes)
    forecast = simulate(scenario, deals, trials=100, by=("owner", "sector"))
    with pytest.raises(PipelineError, match=rf"no {column}: D1 \(row 3\)"):
        territories(forecast, unit="sector")


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_suggestions_never_lose_to_today_and_the_search_meets_brute_force(data):
    """Random small pipelines (reps, sectors, amounts, win rates, owners, quotas or none, both
    objectives, trials, seed; exact search or the heuristic): a suggestion is never less fair than
    today, every rep gets a sector when there are enough, the exact search finds the brute-force
    optimum, the heuristic never beats it and the lower bound never exceeds it."""
    reps = data.draw(st.integers(1, 4), label="reps")
    units = data.draw(st.integers(1, 5 if reps <= 3 else 4), label="units")
    extra = data.draw(st.integers(0, 4), label="extra deals")
    sectors = [*range(units), *data.draw(st.lists(st.integers(0, units - 1), min_size=extra, max_size=extra))]
    n = len(sectors)
    owners = data.draw(st.lists(st.integers(0, reps - 1), min_size=n, max_size=n), label="owners")
    amounts = data.draw(st.lists(st.integers(1, 100), min_size=n, max_size=n), label="amounts")
    win_rates = data.draw(st.lists(st.sampled_from([0.25, 0.5, 0.9, 1.0]), min_size=n, max_size=n))
    quotas = data.draw(
        st.none() | st.lists(st.integers(1, 300), min_size=reps, max_size=reps), label="quotas"
    )
    objective = data.draw(st.sampled_from(["attainment", "p_hit"]), label="objective")
    trials = data.draw(st.integers(1, 30), label="trials")
    seed = data.draw(st.integers(0, 2**32), label="seed")
    heuristic = data.draw(st.booleans(), label="heuristic")

    owner_quotas = "" if quotas is None else ", ".join(f"r{r}: {quota}" for r, quota in enumerate(quotas))
    scenario = make_scenario("" if quotas is None else "quotas: {owner: {" + owner_quotas + "}}\n")
    deals = make_deals(amounts, win_rates, owner=[f"r{o}" for o in owners], sector=[f"S{u}" for u in sectors])
    forecast = simulate(scenario, deals, trials=trials, seed=seed, by=("owner", "sector"))
    breakdown = forecast.trials.breakdown
    rep_names = list(breakdown["owner"])
    unit_revenue = np.array([breakdown["sector"][f"S{u}"] for u in range(units)])
    if quotas is None and not unit_revenue.any():
        with pytest.raises(ScenarioError, match="no expected revenue to split"):
            territories(forecast, unit="sector", objective=objective)
        return
    targets = (
        np.full(len(rep_names), unit_revenue.mean(axis=1).sum() / len(rep_names))
        if quotas is None
        else np.array(quotas, dtype=float)
    )
    whole = Split(unit_revenue, targets, objective)
    limit = 0 if heuristic else territories_module.EXACT_LIMIT  # 0: every instance to the heuristic
    with (
        patch.object(territories_module, "EXACT_LIMIT", limit),
        patch.object(territories_module, "EXACT_LIMIT_P_HIT", limit),
    ):
        result = territories(forecast, unit="sector", objective=objective)
        found = search(whole, result["search"]["current_range"])

    search_result, today = result["search"], result["current"]["spread"]["range"]
    best = naive.fairest_split(unit_revenue.tolist(), targets.tolist(), objective)
    assert search_result["current_range"] == today
    assert search_result["method"] == ("heuristic" if heuristic else "exact")
    assert search_result["best_range"] >= best - 1e-9  # nothing beats brute force
    assert search_result["lower_bound"] <= best + 1e-9
    assert whole.lower_bound() <= best + 1e-9
    if not heuristic:
        assert search_result["best_range"] == pytest.approx(best, abs=1e-9)
    if best < today - 1e-6 and not heuristic:
        assert result["suggested"] is not None  # a fairer split exists: the exact search suggests it
    owned = np.bincount(found.assignment, minlength=len(rep_names))
    assert np.all(owned >= 1) if units >= len(rep_names) else np.all(owned <= 1)
    suggested = result["suggested"]
    if suggested is None:
        assert not search_result["fairer"] and search_result["best_range"] >= today - 1e-9
        return
    assert suggested["spread"]["range"] == search_result["best_range"] < today
    rows = suggested["reps"]
    assert sorted(unit for row in rows for unit in row["units"]) == [f"S{u}" for u in range(units)]
    assert (
        all(row["units"] for row in rows)
        if units >= len(rep_names)
        else all(len(row["units"]) <= 1 for row in rows)
    )
    assert sum(row["open_pipeline"] for row in rows) == pytest.approx(sum(amounts))
    assert [row["quota"] for row in rows] == pytest.approx(targets.tolist())
