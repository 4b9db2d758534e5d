"""Calibration: known rates recovered from synthetic history, honest intervals, fallbacks, the fragment."""

from __future__ import annotations

import csv
import datetime as dt
import math

import numpy as np
import pytest
from click.testing import CliRunner

from forecast.calibration import HistorySpec, calibrate, fragment, load_history
from forecast.cli import cli
from forecast.errors import PipelineError
from forecast.scenario import load_scenario

TRUTH = {"Qualified": 0.2, "Proposal": 0.6}


def _history(path, per_stage: int, seed: int, late_share: float = 0.3, ratio: float = 0.9, tiny: int = 0):
    """Closed deals drawn from known rates; a 'Tiny' stage with few deals if asked."""
    rng = np.random.default_rng(seed)
    rows = []
    stages = [(name, rate, per_stage) for name, rate in TRUTH.items()] + (
        [("Tiny", 0.9, tiny)] if tiny else []
    )
    for stage, rate, count in stages:
        for i in range(count):
            won = rng.random() < rate
            created = dt.date(2026, 1, 1) + dt.timedelta(days=int(rng.integers(0, 60)))
            expected = dt.date(2026, 5, 15)
            closed = dt.date(2026, 7, 20) if (won and rng.random() < late_share) else dt.date(2026, 6, 10)
            amount = float(rng.integers(10, 100) * 1000)
            rows.append({
                "Id": f"{stage}-{i}", "Result": "Won" if won else "Lost", "Amount": amount,
                "Won Amount": round(amount * ratio * math.exp(rng.normal(0, 0.1) - 0.005), 2) if won else "",
                "Created": created.isoformat(), "Closed": closed.isoformat(),
                "Expected": expected.isoformat(),
                "Stage": stage, "Product": "X" if i % 10 else "Rare",
            })  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


SPEC = HistorySpec(
    columns={"deal_id": "Id", "outcome": "Result", "amount": "Amount", "won_amount": "Won Amount",
             "created_date": "Created", "close_date": "Closed", "expected_close_date": "Expected",
             "stage": "Stage"},
    segments=("Product",),
)  # fmt: skip


def test_recovers_known_rates_slip_and_haircut(tmp_path):
    result = calibrate(load_history(_history(tmp_path / "h.csv", 3000, seed=1), SPEC), SPEC)
    for stage in result["stages"]:
        truth = TRUTH[stage["name"]]
        assert abs(stage["win_rate"] - truth) < 4 * math.sqrt(truth * (1 - truth) / stage["deals"])
        assert stage["interval_90"][0] < stage["win_rate"] < stage["interval_90"][1]
    wins = result["slip"]["deals"]
    assert abs(result["slip"]["win_rate"] - 0.3) < 4 * math.sqrt(0.3 * 0.7 / wins)
    assert abs(result["amount"]["haircut"] - 0.1) < 4 * result["amount"]["haircut_stderr"]
    assert result["cycle_time"]["deals"] == wins


def test_intervals_cover_the_truth_at_about_their_rate(tmp_path):
    histories, covered = 200, 0
    for seed in range(histories):
        result = calibrate(load_history(_history(tmp_path / "h.csv", 40, seed=100 + seed), SPEC), SPEC)
        low, high = next(s for s in result["stages"] if s["name"] == "Qualified")["interval_90"]
        covered += low <= TRUTH["Qualified"] <= high
    # covered ~ Binomial(200, 0.9) if the intervals are honest: within 4 standard deviations
    assert abs(covered - 180) <= 4 * math.sqrt(histories * 0.9 * 0.1)


def test_small_stages_and_segments_fall_back(tmp_path):
    result = calibrate(load_history(_history(tmp_path / "h.csv", 400, seed=3, tiny=5), SPEC), SPEC)
    tiny = next(s for s in result["stages"] if s["name"] == "Tiny")
    assert tiny["win_rate"] == result["overall"]["win_rate"] and "fewer than" in tiny["note"]
    rare = next(row for row in result["segments"]["Product"] if row["value"] == "Rare")
    raw = rare["wins"] / rare["deals"]
    overall = result["overall"]["win_rate"]
    assert min(raw, overall) <= rare["win_rate"] <= max(raw, overall)  # pulled toward the overall rate


def test_fragment_feeds_a_scenario_and_the_scenario_wins(tmp_path):
    result = calibrate(load_history(_history(tmp_path / "h.csv", 500, seed=4), SPEC), SPEC)
    import yaml

    (tmp_path / "cal.yaml").write_text(yaml.safe_dump(fragment(result)))
    (tmp_path / "s.yaml").write_text(
        "period: 2026-Q3\npipeline: {path: p.csv}\ncalibration: cal.yaml\n"
        "slip: {pull_in: 0.1, default: 0.05}\n"
    )
    scenario = load_scenario(tmp_path / "s.yaml")
    assert [s.name for s in scenario.stages] == ["Proposal", "Qualified"]
    assert scenario.stages[1].win_rate == pytest.approx(result["stages"][1]["win_rate"], abs=1e-6)
    assert scenario.slip.default == 0.05 and scenario.slip.pull_in == 0.1  # the scenario's own keys win
    assert scenario.amount.haircut == pytest.approx(result["amount"]["haircut"], abs=1e-6)


def test_cli_writes_the_fragment_and_rejects_bad_history(tmp_path):
    history = _history(tmp_path / "h.csv", 100, seed=5)
    out = tmp_path / "cal.yaml"
    maps = [
        "--map",
        "outcome=Result",
        "--map",
        "close_date=Closed",
        "--map",
        "stage=Stage",
        "--map",
        "amount=Amount",
    ]
    result = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *maps])
    assert result.exit_code == 0, result.output
    assert "stages:" in out.read_text() and "win rate" in result.output
    bad = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), "--map", "outcome=Nope"])
    assert bad.exit_code == 2 and "missing column 'outcome'" in bad.stderr
    with pytest.raises(PipelineError, match="no closed deals"):
        load_history(
            history, HistorySpec(columns={"outcome": "Stage", "amount": "Amount", "close_date": "Closed"})
        )
