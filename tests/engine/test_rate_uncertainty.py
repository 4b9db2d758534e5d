"""Uncertain rates: a rate with evidence is drawn per trial from its Beta posterior, shared by its
cell's deals. Exact answers (scipy's beta-binomial, its thinned and convolved forms), the mean kept,
the cells each deal draws from, and today's results kept bit for bit without evidence."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from forecast.analyses.plans import simulate_plan
from forecast.config.loading import load_scenario, parse_scenario
from forecast.engine.model import deal_model
from forecast.engine.simulate import simulate
from forecast.inputs.pipeline import load_deals
from tests.builders import AFTER, make_deals, make_scenario

TRIALS = 200_000
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _stage(name: str, won: float, lost: float, win_rate: float | None = None, slip: float = 0.0) -> str:
    """A stage with evidence; its win rate the posterior mean (won + 1) / (won + lost + 2) unless given."""
    rate = (won + 1) / (won + lost + 2) if win_rate is None else win_rate
    return f"{{name: {name}, win_rate: {rate!r}, slip: {slip}, evidence: {{won: {won}, lost: {lost}}}}}"


def _wins(stages: list[str], counts: list[int], extra: str = "", seed: int = 3, dates=None) -> np.ndarray:
    """Per trial, the landed deals of a pipeline of ``counts[s]`` deals of amount 1 in stage ``s``."""
    scenario = make_scenario(f"stages: [{', '.join(stages)}]\nsimulation: {{seed: {seed}}}\n" + extra)
    stage_index = np.repeat(np.arange(len(counts)), counts)
    deals = make_deals(np.ones(stage_index.size), stage_index=stage_index, close_dates=dates)
    return simulate(scenario, deals, trials=TRIALS).trials.revenue


def _matches(observed: np.ndarray, pmf: np.ndarray) -> None:
    """Counts per value against an exact distribution: chi-square (cells expecting 20 or more) not
    rejected at 0.1 %, every value's share within 4.5 standard errors, no value it cannot produce."""
    counts = np.bincount(observed.astype(np.int64), minlength=pmf.size)
    assert counts.size == pmf.size and np.isclose(pmf.sum(), 1.0)
    n = observed.size
    keep = pmf * n >= 20
    expected = pmf[keep] * counts[keep].sum() / pmf[keep].sum()
    assert stats.chisquare(counts[keep], expected).pvalue > 1e-3
    se = np.sqrt(np.maximum(pmf * (1 - pmf), 1.0 / n) / n)
    assert np.all(np.abs(counts / n - pmf) <= 4.5 * se), np.c_[counts / n, pmf]


@pytest.mark.parametrize(
    ("won", "lost", "deals", "win_rate"),
    [(7, 13, 12, None), (2, 0, 5, None), (30, 170, 25, None), (7, 13, 8, 0.3)],
    ids=["7 of 20", "2 of 2", "30 of 200", "rate off the posterior mean"],
)
def test_wins_of_one_stage_follow_the_beta_binomial(won, lost, deals, win_rate):
    """k deals of one stage share its rate in each trial: their wins are BetaBinomial(k, rate x worth,
    (1 - rate) x worth), worth = won + lost + 2; Beta(won + 1, lost + 1) at the posterior mean."""
    wins = _wins([_stage("P", won, lost, win_rate)], [deals])
    rate = (won + 1) / (won + lost + 2) if win_rate is None else win_rate
    worth = won + lost + 2
    _matches(wins, stats.betabinom.pmf(np.arange(deals + 1), deals, rate * worth, (1 - rate) * worth))


def test_known_rates_are_binomial_with_the_switch_off():
    wins = _wins([_stage("P", 7, 13)], [12], "rate_uncertainty: false\n")
    _matches(wins, stats.binom.pmf(np.arange(13), 12, 8 / 22))


def test_landed_wins_with_slip_follow_the_thinned_mixture():
    """Each won deal lands unless it slips (0.3), on its own: landed | rate ~ Binomial(k, rate x 0.7),
    so landed ~ sum_w BetaBinomial(w) x Binomial(j; w, 0.7)."""
    k = 10
    landed = _wins([_stage("P", 5, 9, slip=0.3)], [k])
    wins = stats.betabinom.pmf(np.arange(k + 1), k, 6, 10)
    thinned = np.array(
        [sum(wins[w] * stats.binom.pmf(j, w, 0.7) for w in range(j, k + 1)) for j in range(k + 1)]
    )
    _matches(landed, thinned)


def test_two_stages_draw_their_rates_independently():
    """Deals of two stages move with their own stage, not with each other: the total is the
    convolution of the two beta-binomials."""
    total = _wins([_stage("A", 3, 9), _stage("B", 12, 4)], [6, 5])
    _matches(
        total,
        np.convolve(stats.betabinom.pmf(np.arange(7), 6, 4, 10), stats.betabinom.pmf(np.arange(6), 5, 13, 5)),
    )


def test_win_by_age_cells_draw_their_rates_per_cell():
    """Age-rated deals of one cell share its draw, Beta(rate x deals, (1 - rate) x deals) with ``deals``
    the evidence's worth; a cell without evidence keeps its rate known."""
    table = (
        "win_by_age: {buckets_days: [30], rates: {default: [0.6, 0.1]},"
        " evidence: {default: [{deals: 12.5}, null]}}\n"
    )
    scenario = make_scenario(table + "stages: [{name: P, win_rate: 0.5}]\n")
    created = [np.datetime64("2026-06-20")] * 7 + [np.datetime64("2026-01-01")] * 4  # young, then old
    deals = make_deals(np.ones(11), stage_index=np.zeros(11, np.int64))
    deals.created = np.array(created, "datetime64[D]")
    forecast = simulate(scenario, deals, trials=TRIALS)
    young = stats.betabinom.pmf(np.arange(8), 7, 0.6 * 12.5, 0.4 * 12.5)
    _matches(forecast.trials.revenue, np.convolve(young, stats.binom.pmf(np.arange(5), 4, 0.1)))


@pytest.mark.parametrize("uncertain", [True, False])
def test_expected_revenue_is_the_known_rates_expectation(uncertain):
    """A drawn rate's mean is the rate as written: expected revenue is sum(value x rate x landing)
    with or without uncertainty (with slip, pull-in, haircut and amount noise), within 4 SE."""
    stages = [_stage("A", 3, 9, slip=0.2), _stage("B", 12, 4)]
    text = (f"stages: [{', '.join(stages)}]\nslip: {{pull_in: 0.25}}\namount: {{sigma: 0.4, haircut: 0.1}}\n"
            f"rate_uncertainty: {str(uncertain).lower()}\n")  # fmt: skip
    amounts = [100.0, 250.0, 40.0, 900.0, 75.0, 310.0]
    dates = [None, AFTER, None, None, AFTER, None]
    deals = make_deals(
        amounts, stage_index=[0, 0, 0, 1, 1, 1], close_dates=[d or "2026-08-15" for d in dates]
    )
    revenue = simulate(make_scenario(text), deals, trials=TRIALS).trials.revenue
    rate = np.array([4 / 14] * 3 + [13 / 18] * 3)
    land = np.array([0.8, 0.25, 0.8, 1.0, 0.25, 1.0])
    expected = float(np.sum(np.array(amounts) * 0.9 * rate * land))
    assert abs(revenue.mean() - expected) < 4 * revenue.std() / math.sqrt(TRIALS)


def test_thin_evidence_widens_the_range_and_ample_evidence_does_not():
    deals = 40

    def width(stage: str, extra: str = "") -> float:
        wins = _wins([stage], [deals], extra)
        return float(np.percentile(wins, 90) - np.percentile(wins, 10))

    known = width(_stage("P", 7, 13), "rate_uncertainty: false\n")
    assert width(_stage("P", 7, 13)) > 1.8 * known  # the rate's own spread dominates
    assert abs(width(_stage("P", 70_000, 130_000, win_rate=8 / 22)) - known) <= 1  # all but known


def test_deal_model_gives_each_deal_its_cell():
    scenario = make_scenario(
        f"stages: [{_stage('A', 3, 9)}, {_stage('B', 12, 4)}, {{name: C, win_rate: 0.4}}]\n"
        "win_by_age: {buckets_days: [30], rates: {default: [0.5, 0.2], B: [0.7, 0.3]},"
        " evidence: {default: [{won: 4, lost: 4}, null], b: [{deals: 30}, {deals: 8}]}}\n"
    )
    created = np.array(["NaT", "NaT", "2026-06-25", "2026-06-25", "2026-01-01", "2026-01-01", "NaT", "NaT"],
                       "datetime64[D]")  # fmt: skip
    deals = make_deals(
        np.ones(8), probabilities=[np.nan] * 7 + [0.3], stage_index=[0, 0, 0, 1, 1, 2, 2, 0],
        close_dates=["2026-08-15"] * 6 + [AFTER, "2026-08-15"],
    )  # fmt: skip
    deals.created = created
    model = deal_model(scenario, deals)
    # A by stage (x2), A young by age (default row), B young and old (B row), C old (default, known),
    # C by stage (known), a deal with its own probability (known)
    assert model.rate_deals.tolist() == [14.0, 14.0, 10.0, 30.0, 8.0, 0.0, 0.0, 0.0]
    cells = model.rate_cell
    assert cells[0] == cells[1] and len({int(c) for c in cells[:5]}) == 4 and not cells[5:].any()
    off = deal_model(scenario.model_copy(update={"rate_uncertainty": False}), deals)
    assert not off.rate_deals.any() and not off.rate_cell.any()
    np.testing.assert_array_equal(off.win_rate, model.win_rate)


def test_a_plan_that_raises_a_rate_keeps_its_cells_draws():
    """Same seed, same cell draws: raising a stage's rate can only add wins, trial by trial."""
    text = (f"stages: [{_stage('A', 3, 9)}, {_stage('B', 12, 4)}]\n"
            "plans: {better: {win_rate_delta: {A: 0.1}}}\nsimulation: {trials: 20000}\n")  # fmt: skip
    deals = make_deals(np.arange(1.0, 21.0), stage_index=[0, 1] * 10)
    scenario = make_scenario(text)
    base = simulate_plan(scenario, deals, "base").trials.revenue
    better = simulate_plan(scenario, deals, "better").trials.revenue
    assert np.all(better >= base) and better.mean() > base.mean() + 1.0


def test_draws_follow_the_seed_and_the_cell_not_the_other_deals():
    """A stage's deals win in the same trials when deals of another stage are added, and not with
    another seed."""
    stages = f"stages: [{_stage('A', 3, 9)}, {_stage('B', 12, 4)}]\n"
    targets = "targets: [{name: a, metric: deals, where: {stage: A}, at_least: 1}]\n"

    def a_wins(n_b: int, seed: int) -> np.ndarray:
        deals = make_deals(np.ones(5 + n_b), stage_index=[0] * 5 + [1] * n_b, stage=["A"] * 5 + ["B"] * n_b)
        return simulate(make_scenario(stages + targets), deals, trials=5000, seed=seed).trials.targets["a"]

    np.testing.assert_array_equal(a_wins(0, 1), a_wins(30, 1))
    assert not np.array_equal(a_wins(0, 1), a_wins(0, 2))


def test_correlated_and_uncertain_rates_together():
    """The comparison without correlation keeps the rate draws: it is the uncorrelated run, bit for bit."""
    stages = f"stages: [{_stage('A', 3, 9)}, {_stage('B', 12, 4)}]\n"
    deals = make_deals(np.arange(1.0, 31.0), stage_index=[0, 1] * 15, owner=list("abc") * 10)
    correlated = simulate(make_scenario(stages + "correlation: {market: 0.2, by: {owner: 0.1}}\n"), deals,
                          trials=20_000, independent=True)  # fmt: skip
    alone = simulate(make_scenario(stages), deals, trials=20_000)
    np.testing.assert_array_equal(correlated.independent_revenue, alone.trials.revenue)
    assert correlated.trials.revenue.std() > 1.05 * alone.trials.revenue.std()


# Results without evidence (or with the switch off) are today's: digests of every shipped config's
# trials (revenue, slipped, new logos, targets, the uncorrelated comparison) and drivers, at 20,000
# trials, recorded before rate uncertainty existed.
BEFORE = {
    "deal_age.yaml:base": "4170bf3d5100a8a3",
    "example.yaml:base": "b7606c555a68b221",
    "quarter_start.yaml:base": "7d1e63f6b618a718",
    "stretch.yaml:base": "6c7464f58a5335ca",
    "stretch.yaml:stretch": "74e04b7f3ef48f45",
    "stretch.yaml:pull_in": "1800fa684a00b15d",
    "stretch.yaml:coaching": "1071bfef8abb5823",
    "stretch.yaml:prospecting": "5434cc6f92371285",
    "team.yaml:base": "548e43581b5a2cd6",
}


def _digest(scenario, deals, plan: str) -> str:
    from forecast.analyses.drivers import drivers

    forecast = simulate_plan(scenario, deals, plan, trials=20_000, independent=True)
    trials = forecast.trials
    digest = hashlib.sha256()
    extra = [] if forecast.independent_revenue is None else [forecast.independent_revenue]
    for values in (trials.revenue, trials.slipped, trials.new_logos, *trials.targets.values(), *extra):
        digest.update(np.ascontiguousarray(values).tobytes())
    if plan == "base" and scenario.quota is not None:
        digest.update(
            repr([(row["deal_id"], row["p_landed"], row["stake"]) for row in drivers(forecast)]).encode()
        )
    return digest.hexdigest()[:16]


def _with_evidence(path: Path) -> str:
    """The config with evidence on every stage and every win_by_age cell, and the switch off."""
    text = path.read_text()
    text = re.sub(r"(win_rate: [0-9.]+)", r"\1, evidence: {won: 3, lost: 4}", text)
    scenario = load_scenario(path)
    if scenario.win_by_age is not None:
        cells = len(scenario.win_by_age.buckets_days) + 1
        rows = ", ".join(
            f"{name}: [{', '.join(['{deals: 9}'] * cells)}]" for name in scenario.win_by_age.rates
        )
        text = text.replace("win_by_age:", f"win_by_age:\n  evidence: {{{rows}}}", 1)
    return text + "\nrate_uncertainty: false\n"


@pytest.mark.parametrize("name", sorted({key.split(":")[0] for key in BEFORE}))
def test_shipped_configs_without_uncertainty_are_bit_identical_to_before(name):
    path = CONFIGS / name
    scenario = load_scenario(path)
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    plans = [key.split(":")[1] for key in BEFORE if key.startswith(f"{name}:")]
    assert plans == ["base", *scenario.plans]
    for plan in plans:
        assert _digest(scenario, deals, plan) == BEFORE[f"{name}:{plan}"], plan
    switched_off = parse_scenario(_with_evidence(path), path)
    assert switched_off.has_evidence and not switched_off.uncertain_rates
    for plan in plans:
        assert _digest(switched_off, deals, plan) == BEFORE[f"{name}:{plan}"], plan
    switched_on = switched_off.model_copy(update={"rate_uncertainty": None})
    assert _digest(switched_on, deals, "base") != BEFORE[f"{name}:base"]  # the evidence is read


def test_the_summary_says_when_rates_are_drawn():
    """Rates drawn from evidence widen a forecast: the summary counts the deals and cells drawn, the
    terminal note says so once with the setting that stops it, and known rates add nothing."""
    from forecast.engine.summary import summarize
    from forecast.reporting.terminal import summary_note

    stages = [_stage("Proposal", 7, 13), _stage("Negotiation", 12, 8), "{name: Commit, win_rate: 0.9}"]
    deals = make_deals(np.ones(6), stage_index=np.array([0, 0, 1, 1, 1, 2]))
    drawn = summarize(simulate(make_scenario(f"stages: [{', '.join(stages)}]\n"), deals, trials=1_000))
    assert drawn["rate_uncertainty"] == {"deals": 5, "cells": 2}
    assert summary_note(drawn).endswith(
        "win rates uncertain: 2 rates of 5 deals drawn per trial from their evidence "
        "(rate_uncertainty: false treats them as known)"
    )
    off = make_scenario(f"stages: [{', '.join(stages)}]\nrate_uncertainty: false\n")
    known = summarize(simulate(off, deals, trials=1_000))
    assert known["rate_uncertainty"] is None and "uncertain" not in summary_note(known)
