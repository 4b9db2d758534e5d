"""Backtests: scores, a history drawn from the model itself (ranks near uniform), the Maven sample."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from forecast.backtest import Book, backtest, crps, percentile_rank
from forecast.cli import cli
from forecast.scenario import BacktestSpec, load_backtest

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "maven-backtest.yaml"
AGE_RATES = [0.5, 0.35, 0.2, 0.1]  # win within a quarter, by age bucket (< 30, < 60, < 90, older)


def test_crps_and_rank_of_known_forecasts():
    samples = np.array([1.0, 2.0, 3.0, 4.0])
    # CRPS of an empirical forecast: mean |X - y| - mean |X - X'| / 2 (pairs over all samples)
    pairs = np.abs(samples[:, None] - samples[None, :]).mean()
    assert crps(samples, 2.5) == pytest.approx(np.abs(samples - 2.5).mean() - 0.5 * pairs)
    assert crps(np.full(10, 7.0), 7.0) == 0.0
    assert percentile_rank(samples, 2.0) == pytest.approx(0.375)  # one below, one tied


def _synthetic_book(quarters: int, seed: int, latent: float = 0.0) -> Book:
    """Deals created each quarter; every quarter an open deal wins with its age bucket's rate.

    With ``latent`` > 0 a quarterly market shock moves every deal's rate together (Vasicek).
    """
    from scipy.special import ndtr, ndtri

    rng = np.random.default_rng(seed)
    ids, created, closed, won, value, price = [], [], [], [], [], []
    open_deals: list[int] = []
    start = dt.date(2015, 1, 1)
    for q in range(quarters):
        begin = dt.date(start.year + (start.month - 1 + 3 * q) // 12, (start.month - 1 + 3 * q) % 12 + 1, 1)
        end_month = begin.month + 2
        end = dt.date(begin.year, end_month, 28)
        still_open = []
        shock = rng.standard_normal()
        for d in open_deals:  # deals open at the quarter's start
            age = (begin - created[d]).days
            rate = AGE_RATES[min(np.searchsorted([30, 60, 90], age, side="left"), 3)]
            rate = ndtr((ndtri(rate) - np.sqrt(latent) * shock) / np.sqrt(1 - latent))
            if rng.random() < rate:
                won[d], closed[d], value[d] = True, end, price[d]
            elif rng.random() < 0.3:
                closed[d] = end
            else:
                still_open.append(d)
        for _ in range(rng.poisson(60)):  # new deals; some close within their first quarter (new pipeline)
            d = len(ids)
            ids.append(f"S{d}")
            created.append(begin + dt.timedelta(days=int(rng.integers(0, 80))))
            price.append(float(rng.choice([1000.0, 3000.0, 8000.0])))
            won.append(False)
            closed.append(None)
            value.append(np.nan)
            if rng.random() < 0.1:
                won[d], closed[d], value[d] = True, end, price[d]
            else:
                still_open.append(d)
        open_deals = still_open
    as_dates = lambda days: np.array([np.datetime64(x, "D") if x else np.datetime64("NaT") for x in days])  # noqa: E731
    return Book(
        deal_id=np.array(ids, dtype=object), created=as_dates(created), closed=as_dates(closed),
        won=np.array(won), value=np.array(value), price=np.array(price),
    )  # fmt: skip


def test_history_drawn_from_the_model_gives_uniform_ranks():
    book = _synthetic_book(quarters=40, seed=3)
    spec = BacktestSpec.model_validate(
        {"history": {"path": "unused"}, "periods": "2016-Q1..2024-Q4",
         "model": {"age_buckets_days": [30, 60, 90]}, "simulation": {"trials": 4000, "seed": 1}}
    )  # fmt: skip
    result = backtest(spec, Path("."), book=book)
    ranks = [row["percentile_rank"] for row in result["periods"]]
    assert len(ranks) == 36
    assert stats.kstest(ranks, "uniform").pvalue > 0.01  # calibrated forecasts: ranks look uniform
    assert 0.6 <= result["summary"]["coverage_80"] <= 0.95
    assert result["summary"]["mean_crps"] < result["stage_only"]["summary"]["mean_crps"]  # age matters here


MAVEN = (CONFIG.parent / "../../shared/data/maven-crm-sales-opportunities").resolve()


@pytest.mark.skipif(not MAVEN.exists(), reason="the Maven CRM sample is not next to the repository")
def test_maven_backtest_runs_as_shipped():
    result = CliRunner().invoke(cli, ["backtest", str(CONFIG), "--trials", "2000", "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    assert [row["period"] for row in report["periods"]] == ["2017-Q2", "2017-Q3", "2017-Q4"]
    for row in report["periods"]:
        assert {"actual", "mean", "p10", "p50", "p90", "percentile_rank", "crps", "weighted_pipeline"} <= set(
            row
        )
        assert row["actual"] > 0 and row["open_deals"] > 100
    assert {"coverage_50", "coverage_80", "mean_crps", "weighted_pipeline_mean_abs_error"} <= set(
        report["summary"]
    )


def test_bad_backtest_files(tmp_path):
    bad = tmp_path / "b.yaml"
    bad.write_text("history: {path: nowhere.csv}\nperiods: 2017-Q9\n")
    result = CliRunner().invoke(cli, ["backtest", str(bad)])
    assert result.exit_code == 2 and "periods" in result.stderr
    bad.write_text("history: {path: nowhere.csv}\nperiods: 2017-Q2\n")
    assert load_backtest(bad)[0].period_list == ["2017-Q2"]
    result = CliRunner().invoke(cli, ["backtest", str(bad)])
    assert result.exit_code == 2 and "not found" in result.stderr


def test_the_fitted_correlation_follows_the_history():
    from forecast.backtest import fit_correlation

    spec = BacktestSpec.model_validate(
        {"history": {"path": "unused"}, "periods": "2016-Q1..2024-Q4",
         "model": {"age_buckets_days": [30, 60, 90]}, "simulation": {"trials": 2000, "seed": 1}}
    )  # fmt: skip
    independent = fit_correlation(spec, Path("."), _synthetic_book(40, seed=3), grid=(0.0, 0.3))
    shocked = fit_correlation(spec, Path("."), _synthetic_book(40, seed=3, latent=0.3), grid=(0.0, 0.3))
    assert (independent["market"], shocked["market"]) == (0.0, 0.3)
    assert independent["periods"] == 36
