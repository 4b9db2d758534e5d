"""Backtests: scores, a history drawn from the model itself (ranks near uniform), the Maven sample."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats

from forecast.cli.commands import cli
from forecast.config.loading import load_backtest
from forecast.config.scenario import NewPipeline
from forecast.config.specs import BacktestSpec
from forecast.history.backtest import backtest, crps, percentile_rank
from tests.builders import AGE_EDGES, synthetic_files, synthetic_history

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "maven-backtest.yaml"


def test_crps_and_rank_of_known_forecasts():
    samples = np.array([1.0, 2.0, 3.0, 4.0])
    # CRPS of an empirical forecast: mean |X - y| - mean |X - X'| / 2 (pairs over all samples)
    pairs = np.abs(samples[:, None] - samples[None, :]).mean()
    assert crps(samples, 2.5) == pytest.approx(np.abs(samples - 2.5).mean() - 0.5 * pairs)
    assert crps(np.full(10, 7.0), 7.0) == 0.0
    assert percentile_rank(samples, 2.0) == pytest.approx(0.375)  # one below, one tied


SPEC = BacktestSpec.model_validate(
    {"history": {"path": "unused"}, "periods": "2016-Q1..2024-Q4",
     "model": {"age_buckets_days": AGE_EDGES}, "simulation": {"trials": 4000, "seed": 1}}
)  # fmt: skip


@pytest.fixture(scope="module")
def synthetic_result():
    return backtest(SPEC, Path("."), history=synthetic_history(quarters=40, seed=3).as_history())


def test_history_drawn_from_the_model_gives_uniform_ranks(synthetic_result):
    result = synthetic_result
    assert result["model"] == "age x stage"
    for forecast in (result, result["total"]):
        ranks = [row["percentile_rank"] for row in forecast["periods"]]
        assert len(ranks) == 36
        assert stats.kstest(ranks, "uniform").pvalue > 0.01  # calibrated forecasts: ranks look uniform
        assert 0.6 <= forecast["summary"]["coverage_80"] <= 0.95
    crps = {key: result[key]["summary"]["mean_crps"] for key in ("age_x_stage", "age_only", "stage_only")}
    assert crps["age_x_stage"] < min(crps["age_only"], crps["stage_only"])  # both matter here
    assert result["periods"] == result["age_x_stage"]["periods"]
    assert [row["forecast"] for row in result["comparison"]] == [
        "open pipeline, age x stage", "open pipeline, deal age", "open pipeline, stage alone",
        "total (open + new pipeline)",
    ]  # fmt: skip


def test_the_total_adds_the_calibrated_new_pipeline(synthetic_result):
    trials = SPEC.simulation.trials
    for open_row, total_row in zip(
        synthetic_result["periods"], synthetic_result["total"]["periods"], strict=True
    ):
        fit = total_row["new_pipeline"]
        block = NewPipeline.model_validate(fit["new_pipeline"])
        # same seed and deals: the total is the open forecast plus the new pipeline, trial by trial
        added = total_row["mean"] - open_row["mean"]
        expected = total_row["weighted_pipeline"] - open_row["weighted_pipeline"]  # E[new deals] x mean size
        spread = np.sqrt(
            expected * block.deal_size.mean * np.exp(block.deal_size.sigma**2)
        )  # compound Poisson
        assert abs(added - expected) < 4 * spread / np.sqrt(trials)
        assert fit["deals_created"] > 0 and fit["stderr"]["share_won"] > 0


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
    assert report["model"] == "deal age" and report["age_x_stage"] is None  # no stage history in Maven
    assert report["age_only"]["periods"] == report["periods"]
    assert [row["forecast"] for row in report["comparison"]] == [
        "open pipeline, deal age",
        "open pipeline, flat rate (no stage history)",
        "total (open + new pipeline)",
    ]
    for row in report["total"]["periods"]:
        NewPipeline.model_validate(row["new_pipeline"]["new_pipeline"])


def _backtest_file(folder: Path, trials: int, stage_history: bool = True) -> Path:
    """A backtest of 2017-Q2..Q4 on ``synthetic_files`` in ``folder``."""
    stages = "  stage_history: {path: stages.csv, columns: {deal_id: Deal, date: Entered}}\n"
    config = folder / "b.yaml"
    config.write_text(
        "history:\n  path: deals.csv\n  columns: {deal_id: Id, outcome: Result, amount: Amount, "
        f"created_date: Created, close_date: Closed}}\n{stages if stage_history else ''}"
        "periods: 2017-Q2..2017-Q4\nmodel: {age_buckets_days: [30, 60, 90]}\n"
        f"simulation: {{trials: {trials}, seed: 1}}\n"
    )
    return config


def test_a_backtest_file_reads_its_stage_history(tmp_path):
    history, deals, stages = synthetic_files(tmp_path, quarters=12, seed=4)
    config = _backtest_file(tmp_path, trials=500)
    result = CliRunner().invoke(cli, ["backtest", str(config), "--json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    spec, folder = load_backtest(config)
    as_written = dataclasses.replace(history, price=history.price.round(2)).as_history()
    assert report == json.loads(json.dumps(backtest(spec, folder, history=as_written)))  # read as drawn
    assert report["model"] == "age x stage" and set(report["periods"][0]["win_by_age"]["rates"]) == {
        "default", "Early", "Late"}  # fmt: skip
    config.write_text(config.read_text().replace("deal_id: Deal, ", ""))
    result = CliRunner().invoke(cli, ["backtest", str(config)])
    assert result.exit_code == 2
    assert (
        f"{stages}: missing column 'deal_id'; map it with history.stage_history.columns.deal_id"
        in result.stderr
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
    from forecast.history.backtest import fit_correlation

    spec = SPEC.model_copy(update={"simulation": SPEC.simulation.model_copy(update={"trials": 2000})})
    independent, shocked = (
        fit_correlation(spec, Path("."), synthetic_history(40, 3, latent).as_history(), grid=(0.0, 0.3))
        for latent in (0.0, 0.3)
    )
    assert (independent["market"], shocked["market"]) == (0.0, 0.3)
    assert independent["periods"] == 36


def test_the_actuals_are_the_won_amounts_where_the_export_has_them(tmp_path):
    """A won deal brings in its ``won_amount`` (as calibrate reads it), not its pipeline amount."""
    import csv
    import json

    history, deals, _ = synthetic_files(tmp_path, quarters=12, seed=4)
    config = _backtest_file(tmp_path, trials=200, stage_history=False)

    def actuals() -> list[float]:
        result = CliRunner().invoke(cli, ["backtest", str(config), "--json"])
        assert result.exit_code == 0, result.output
        return [row["actual"] for row in json.loads(result.stdout)["total"]["periods"]]

    listed = actuals()
    rows = list(csv.reader(deals.open()))
    with deals.open("w", newline="") as handle:  # every win brought in a quarter of its amount
        csv.writer(handle).writerows(
            [[*rows[0], "Won Amount"]]
            + [[*row, float(row[2]) / 4 if row[1] == "Won" else ""] for row in rows[1:]]
        )
    assert actuals() == pytest.approx([actual / 4 for actual in listed], rel=1e-12)
    assert listed[0] > 0 and history.won.any()
