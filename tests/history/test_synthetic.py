"""Synthetic CRM histories: deterministic by seed, tables as the backtest reads them, an exact truth."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from forecast.cli.commands import cli
from forecast.config.loading import load_backtest
from forecast.config.specs import StageHistorySource
from forecast.history.synthetic import (
    CATEGORIES,
    CATEGORY_COLUMNS,
    DEAL_COLUMNS,
    STAGES,
    SyntheticParams,
    generate,
)
from forecast.inputs.history import HistorySpec, load_history
from tests import naive

WEEK = dt.timedelta(days=7)


@pytest.fixture(scope="module")
def history():
    return generate(seed=11)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k].astype(str), b[k].astype(str)) for k in a)


def test_the_same_seed_gives_the_same_history_and_another_seed_another(history):
    again = generate(seed=11)
    assert _same(history.deals, again.deals) and _same(history.stages, again.stages)
    assert np.array_equal(history.shocks, again.shocks)
    other = generate(seed=12)
    assert not np.array_equal(
        history.deals["created_date"], other.deals["created_date"][: history.deals["created_date"].size]
    )


def test_the_default_sizes_give_thousands_of_deals_and_many_weekly_origins(history):
    deals = history.deals
    assert history.end == dt.date(2023, 12, 31)
    assert 3000 < deals["deal_id"].size < 5000
    origins = [history.params.start + 26 * WEEK + k * WEEK for k in range(200)]
    origins = [o for o in origins if o + 13 * WEEK - dt.timedelta(days=1) <= history.end]
    assert len(origins) >= 40
    assert all(history.open_at(o).sum() > 150 for o in origins)
    shares = {outcome: float(np.mean(deals["outcome"] == outcome)) for outcome in ("Won", "Lost", "Open")}
    assert 0.3 < shares["Won"] < 0.5 and shares["Open"] > 0.02


def test_tables_are_consistent(history):
    deals, stages = history.deals, history.stages
    assert list(deals) == list(DEAL_COLUMNS)
    is_open = deals["outcome"] == "Open"
    assert np.array_equal(np.isnat(deals["close_date"]), is_open)
    assert np.all(deals["close_date"][~is_open] > deals["created_date"][~is_open])
    assert np.all(deals["amount"] > 0) and np.array_equal(np.round(deals["amount"], 2), deals["amount"])
    assert len(set(deals["deal_id"])) == deals["deal_id"].size
    row_of = {deal: row for row, deal in enumerate(deals["deal_id"])}
    rows = np.array([row_of[d] for d in stages["deal_id"]])
    first = np.r_[True, rows[1:] != rows[:-1]]
    assert np.all(np.diff(rows) >= 0) and np.array_equal(np.unique(rows), np.arange(deals["deal_id"].size))
    assert np.all(stages["stage"][first] == "Qualified")
    assert np.array_equal(stages["date"][first], deals["created_date"])
    order = np.array([STAGES.index(s) for s in stages["stage"]])
    assert np.all(np.diff(order)[~first[1:]] == 1)  # one stage at a time, in order
    later = ~first
    assert all(day.weekday() == 6 for day in stages["date"][later].tolist())  # entered on a Sunday
    closed = deals["close_date"][rows[later]]
    assert np.all(np.isnat(closed) | (stages["date"][later] < closed))  # advances only while open


def test_the_rep_s_call_follows_the_stage_and_the_outcome(history):
    """Pipeline at creation, Best Case on entering Proposal, Commit on entering Negotiation (same day),
    then Closed (won) or Omitted (lost) on the close date, last; open deals end on their stage's call."""
    deals, stages, calls = history.deals, history.stages, history.categories
    assert list(calls) == list(CATEGORY_COLUMNS)
    staged = {(d, str(day)): CATEGORIES[STAGES.index(s)] for d, s, day in zip(*stages.values(), strict=True)}
    row_of = {deal: row for row, deal in enumerate(deals["deal_id"])}
    last: dict[str, tuple] = {}
    for deal, call, day in zip(*calls.values(), strict=True):
        if call in ("Closed", "Omitted"):
            k = row_of[deal]
            assert str(deals["close_date"][k]) == str(day)
            assert deals["outcome"][k] == ("Won" if call == "Closed" else "Lost")
        else:
            assert staged[(deal, str(day))] == call
        assert deal not in last or last[deal][0] <= day  # by deal, then date
        last[deal] = (day, call)
    assert len(staged) + int(np.sum(deals["outcome"] != "Open")) == calls["deal_id"].size
    for k in np.flatnonzero(deals["outcome"] == "Open")[:50]:
        assert last[deals["deal_id"][k]][1] in CATEGORIES


BAD_PARAMETERS = [{"weeks": 0}, {"seasonality": 1.0}, {"win_hazard": (0.1, 0.2)},
                  {"loss_hazard": (0.1, 1.0, 0.1)}, {"shock_sd": -0.1}, {"amount_median": 0.0},
                  {"start": dt.date(2021, 1, 5)}]  # fmt: skip


@pytest.mark.parametrize("change", BAD_PARAMETERS)
def test_bad_parameters_are_refused(change):
    with pytest.raises(ValueError, match=next(iter(change))):
        SyntheticParams(**change)


WINDOWS = [
    (dt.date(2022, 3, 9), dt.date(2022, 5, 20)),  # Wednesday to a Friday: partial weeks at both ends
    (dt.date(2022, 3, 9), dt.date(2022, 3, 18)),  # mostly partial weeks
    (dt.date(2022, 3, 7), dt.date(2022, 3, 7)),  # one Monday
    (dt.date(2022, 3, 13), dt.date(2022, 3, 13)),  # one Sunday, when deals advance
]


@pytest.mark.parametrize(("origin", "end"), WINDOWS)
def test_truth_matches_a_monte_carlo_of_the_deals_futures(history, origin, end):
    truth = history.truth(origin, end)
    deals = history.deals["deal_id"][truth.index]
    stages = history.stages
    sunday = np.datetime64(origin + dt.timedelta(days=6 - origin.weekday()))
    monday = np.datetime64(origin - dt.timedelta(days=origin.weekday()))
    advancing = np.flatnonzero(
        np.isin(deals, stages["deal_id"][stages["date"] == sunday])
    )  # at the week's end
    late = np.flatnonzero(np.isin(deals, stages["deal_id"][stages["stage"] == "Negotiation"]))
    young = np.flatnonzero(history.deals["created_date"][truth.index] >= monday)  # no outcome this week
    assert advancing.size and (young.size or origin.weekday() == 0)
    assert np.all(truth.win_probability[young] == 0.0) or end > sunday.item()
    for k in np.unique(np.r_[advancing[:3], late[:3], young[:1], np.arange(0, deals.size, 50)]):
        share, kept = naive.synthetic_win_chance(history, int(truth.index[k]), origin, end, 40_000, int(k))
        p = truth.win_probability[k]
        assert abs(share - p) <= 4.5 * np.sqrt(p * (1 - p) / kept), (deals[k], share, p)


def test_realised_wins_by_age_match_the_truth_within_binomial_error():
    history = generate(SyntheticParams(weeks=260), seed=3)
    origins = [history.params.start + (26 + 13 * k) * WEEK for k in range(17)]  # windows do not overlap
    edges = [30, 60, 90, 180]
    won, chance, variance, deals = (np.zeros(len(edges) + 1) for _ in range(4))
    for origin in origins:
        truth = history.truth(origin, origin + 13 * WEEK - dt.timedelta(days=1))
        age = (np.datetime64(origin) - history.deals["created_date"][truth.index]).astype(np.int64)
        bucket = np.searchsorted(edges, age, side="left")
        p = truth.win_probability
        won += np.bincount(bucket, truth.won, len(edges) + 1)
        chance += np.bincount(bucket, p, len(edges) + 1)
        variance += np.bincount(bucket, p * (1 - p), len(edges) + 1)
        deals += np.bincount(bucket, minlength=len(edges) + 1)
    # given the shocks, deals are independent and each window's surprises are martingale differences
    z = (won - chance) / np.sqrt(variance)
    assert np.all(np.abs(z) < 3.5), z
    assert np.all(chance > 50)  # every bucket rests on enough wins
    rate = chance / deals
    assert rate.max() > 1.8 * rate[-1]  # age matters: the buckets test different chances


def _quarter_dispersion(shock_sd: float, seed: int) -> float:
    """Squared surprises of quarters' wins (deals open at their start) over their shock-free variance."""
    params = SyntheticParams(weeks=520, shock_sd=shock_sd, drift_per_year=0.0)
    history = generate(params, seed=seed)
    squares, variance = 0.0, 0.0
    for start, end in history.quarters[1:]:
        if end > history.end:
            break
        truth = history.truth(start, end, shocks=np.zeros_like(history.shocks))
        p = truth.win_probability
        squares += (truth.won.sum() - p.sum()) ** 2
        variance += np.sum(p * (1 - p))
    return squares / variance


def test_the_quarter_shock_makes_quarter_totals_overdispersed():
    assert _quarter_dispersion(0.4, seed=7) > 5
    quarters = 39
    ratio = _quarter_dispersion(0.0, seed=7)
    # without shocks the squared standardised surprises are about chi-square with one degree each
    assert stats.chi2.ppf(0.001, quarters) / quarters < ratio < stats.chi2.ppf(0.999, quarters) / quarters


def test_truth_uses_the_given_shocks(history):
    origin, end = dt.date(2022, 4, 4), dt.date(2022, 6, 30)
    realised = history.truth(origin, end).win_probability
    zero = history.truth(origin, end, shocks=np.zeros_like(history.shocks)).win_probability
    quarter = [start for start, _ in history.quarters].index(dt.date(2022, 4, 1))
    assert np.all((realised > zero) == (history.shocks[quarter] > 0))
    calm = generate(dataclasses.replace(history.params, shock_sd=0.0), seed=11)
    without = calm.truth(origin, end, shocks=np.zeros_like(calm.shocks)).win_probability
    assert np.array_equal(calm.truth(origin, end).win_probability, without)


@pytest.mark.parametrize(("origin", "end"), [(dt.date(2020, 12, 31), dt.date(2021, 3, 1)),
                                             (dt.date(2023, 11, 1), dt.date(2024, 1, 1)),
                                             (dt.date(2022, 5, 1), dt.date(2022, 4, 1))])  # fmt: skip
def test_truth_refuses_dates_outside_the_history(history, origin, end):
    with pytest.raises(ValueError, match="origin"):
        history.truth(origin, end)


def test_truth_refuses_shocks_of_the_wrong_length(history):
    with pytest.raises(ValueError, match="one per quarter"):
        history.truth(dt.date(2022, 4, 4), dt.date(2022, 6, 30), shocks=np.zeros(3))


def test_written_files_load_as_the_backtest_reads_them(history, tmp_path):
    path = history.write(tmp_path, trials=300)
    spec, folder = load_backtest(path)
    assert spec.period_list[0] == "2021-Q3" and spec.period_list[-1] == "2023-Q4"
    read = load_history(
        folder / spec.history.path,
        HistorySpec(stage_history=StageHistorySource(path=str(folder / "stages.csv")),
                    required=("deal_id", "outcome", "amount", "created_date", "close_date")),
    )  # fmt: skip
    deals = history.deals
    assert np.array_equal(read.deal_id, deals["deal_id"])
    assert np.array_equal(read.won, deals["outcome"] == "Won")
    assert np.array_equal(read.amount, deals["amount"])
    assert np.array_equal(read.created, deals["created_date"])
    assert np.array_equal(read.closed, deals["close_date"], equal_nan=True)
    day = np.datetime64("2022-08-17")
    expected = [
        history.stages["stage"][(history.stages["deal_id"] == d) & (history.stages["date"] <= day)][-1]
        if deals["created_date"][k] <= day else ""
        for k, d in enumerate(deals["deal_id"][:300])
    ]  # fmt: skip
    assert list(read.stage_on(day)[:300]) == expected


def test_forecast_backtest_runs_on_the_written_file(history, tmp_path):
    path = history.write(tmp_path, periods="2022-Q1..2022-Q2", trials=300)
    result = CliRunner().invoke(cli, ["backtest", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 origins (quarterly), 2022-01-01 to 2022-04-01, each forecasting the rest of its quarter" in (
        result.output
    )
    assert "rates by deal age x stage" in result.output


def test_a_history_too_short_for_a_backtest_is_refused(tmp_path):
    with pytest.raises(ValueError, match="fewer than 3 complete quarters"):
        generate(SyntheticParams(weeks=20), seed=1).write(tmp_path)
