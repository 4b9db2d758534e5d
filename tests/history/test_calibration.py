"""Calibration: known rates recovered from synthetic history, honest intervals, fallbacks, the fragment."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from forecast.cli.commands import cli
from forecast.config.loading import load_scenario
from forecast.config.periods import quarters_between
from forecast.config.specs import StageHistorySource
from forecast.errors import PipelineError
from forecast.history.calibration import _shrunk_worth, calibrate, fragment
from forecast.inputs.history import HistorySpec, load_history
from tests import naive
from tests.builders import AGE_EDGES, STAGE_RATES, synthetic_files

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


def test_fragment_carries_the_evidence_of_every_rate(tmp_path):
    """Stage rates carry their closed deals, so a scenario draws each from its posterior Beta(wins + 1,
    losses + 1) (its mean the rate written); a fallen-back stage keeps its own few deals' worth."""
    import yaml

    result = calibrate(load_history(_history(tmp_path / "h.csv", 60, seed=4, tiny=4), SPEC), SPEC)
    (tmp_path / "cal.yaml").write_text(yaml.safe_dump(fragment(result)))
    (tmp_path / "s.yaml").write_text("period: 2026-Q3\npipeline: {path: p.csv}\ncalibration: cal.yaml\n")
    scenario = load_scenario(tmp_path / "s.yaml")
    assert scenario.uncertain_rates
    for stage, estimate in zip(scenario.stages, result["stages"], strict=True):
        won, deals = estimate["wins"], estimate["deals"]
        assert (stage.evidence.won, stage.evidence.lost) == (won, deals - won)
        if "note" not in estimate:
            assert stage.win_rate * stage.evidence.worth == pytest.approx(won + 1, abs=1e-6 * (deals + 2))
    assert any("note" in estimate for estimate in result["stages"])  # Tiny fell back to the overall rate


def test_fragment_carries_the_evidence_of_win_by_age_cells(tmp_path):
    """Age buckets carry their deals (uniform prior); age x stage cells what their posterior is worth
    with their bucket's uncertainty: at most their deals plus the prior's strength, at least 1."""
    _, deals, stages = synthetic_files(tmp_path, quarters=12, seed=8)
    spec = _with_stages(stages)
    result = calibrate(load_history(deals, spec), spec)
    table = fragment(result)["win_by_age"]
    fit = result["win_by_age"]
    assert table["evidence"]["default"] == [
        {"won": cell["wins"], "lost": cell["deals"] - cell["wins"]} for cell in fit["by_age"]
    ]
    for name, row in fit["stages"].items():
        for evidence, cell in zip(table["evidence"][name], row, strict=True):
            assert 1.0 <= evidence["deals"] < cell["deals"] + spec.prior_strength
    parsed = _scenario_with(tmp_path, table)
    assert parsed.win_by_age.evidence_row(next(iter(fit["stages"])))[0].worth > 1.0


@pytest.mark.parametrize(("wins", "deals", "bucket_wins", "bucket_deals"),
                         [(0, 0, 3, 10), (1, 2, 3, 10), (5, 12, 40, 100), (30, 200, 60, 400)])  # fmt: skip
def test_a_shrunk_cell_is_worth_what_its_posterior_is_with_its_bucket_s_rate_uncertain(
    wins, deals, bucket_wins, bucket_deals
):
    """The cell's rate under its bucket's posterior (Beta(wins + 1, losses + 1)) as the uncertain centre
    of its prior: the drawn rate's variance, by Monte Carlo, is the one its worth gives. Treating the
    prior as known (worth = deals + strength) understates it, most for thin cells."""
    strength = 20.0
    bucket_rate = (bucket_wins + 1) / (bucket_deals + 2)
    rate = (wins + strength * bucket_rate) / (deals + strength)
    cell = {"wins": wins, "deals": deals, "win_rate": rate}
    bucket = {"wins": bucket_wins, "deals": bucket_deals, "win_rate": bucket_rate}
    worth = _shrunk_worth(cell, bucket, strength)
    rng = np.random.default_rng(3)
    centre = rng.beta(bucket_wins + 1, bucket_deals - bucket_wins + 1, 400_000)
    drawn = rng.beta(wins + strength * centre, deals - wins + strength * (1 - centre))
    variance = rate * (1 - rate) / (worth + 1)
    assert drawn.mean() == pytest.approx(rate, abs=4 * drawn.std() / np.sqrt(drawn.size))
    assert drawn.var() == pytest.approx(variance, rel=0.015)  # a Monte Carlo error of about 0.3 %
    known = rate * (1 - rate) / (deals + strength + 1)
    assert drawn.var() > known * (1.02 if deals < strength else 1.0)


def _scenario_with(folder, win_by_age):
    """A scenario with this ``win_by_age`` block, read as a file."""
    import yaml

    (folder / "s.yaml").write_text(
        "period: 2026-Q3\npipeline: {path: p.csv}\n" + yaml.safe_dump({"win_by_age": win_by_age})
    )
    return load_scenario(folder / "s.yaml")


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
    undated = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *maps, "--new-pipeline"])
    assert undated.exit_code == 0 and "new pipeline: not written: it needs created_date" in undated.output
    bad = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), "--map", "outcome=Nope"])
    assert bad.exit_code == 2 and "missing column 'outcome'" in bad.stderr
    with pytest.raises(PipelineError, match="no closed deals"):
        load_history(
            history, HistorySpec(columns={"outcome": "Stage", "amount": "Amount", "close_date": "Closed"})
        )


STAGE_SPEC = HistorySpec(
    columns={"deal_id": "Id", "outcome": "Result", "amount": "Amount", "created_date": "Created",
             "close_date": "Closed"},
    age_buckets_days=tuple(AGE_EDGES),
)  # fmt: skip


def _with_stages(path) -> HistorySpec:
    source = StageHistorySource(path=str(path), columns={"deal_id": "Deal", "date": "Entered"})
    return dataclasses.replace(STAGE_SPEC, stage_history=source)


def test_win_by_age_x_stage_recovers_the_generating_rates(tmp_path):
    history, deals, stages = synthetic_files(tmp_path, quarters=40, seed=7)
    spec = _with_stages(stages)
    fit = calibrate(load_history(deals, spec), spec)["win_by_age"]
    assert fit["buckets_days"] == AGE_EDGES and set(fit["stages"]) == set(STAGE_RATES)
    for stage, truths in STAGE_RATES.items():
        for cell, truth, bucket in zip(fit["stages"][stage], truths, fit["by_age"], strict=True):
            # within 4 standard errors, plus the pull of the prior toward the bucket's rate
            pull = (
                spec.prior_strength / (cell["deals"] + spec.prior_strength) * abs(bucket["win_rate"] - truth)
            )
            assert abs(cell["win_rate"] - truth) < 4 * math.sqrt(truth * (1 - truth) / cell["deals"]) + pull
    # the counts behind every cell, against a deal-by-deal count over the same complete quarters
    closes = [None if np.isnat(c) else c.item() for c in history.closed]
    last = max(max(c for c in closes if c), history.created.max().item())
    quarters = [
        (q.start, q.end) for q in quarters_between(history.created.min().item(), last) if q.end <= last
    ]
    expected = naive.win_by_age_counts(
        list(zip(history.deal_id, [c.item() for c in history.created], closes, history.won, strict=True)),
        history.changes,
        quarters,
        AGE_EDGES,
    )
    counted = {(stage, b): [cell["wins"], cell["deals"]] for stage, row in fit["stages"].items()
               for b, cell in enumerate(row) if cell["deals"]}  # fmt: skip
    assert counted == expected and fit["periods"] == len(quarters)


def test_stage_rates_count_every_deal_that_reached_the_stage(tmp_path):
    rows = ["Id,Result,Amount,Closed"] + [
        f"D{i},{'Won' if i < 6 else 'Lost'},100,2026-03-01" for i in range(12)
    ] + ["D12,Open,100,"]  # fmt: skip
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")
    changes = [f"D{i},Early,2026-01-01" for i in range(13)] + [
        f"D{i},Late,2026-02-01" for i in (1, 2, 3, 4, 8)
    ]
    (tmp_path / "s.csv").write_text("Deal,Stage,Entered\n" + "\n".join(changes) + "\n")
    columns = {"deal_id": "Id", "outcome": "Result", "amount": "Amount", "close_date": "Closed"}
    spec = dataclasses.replace(_with_stages(tmp_path / "s.csv"), columns=columns)
    result = calibrate(load_history(tmp_path / "h.csv", spec), spec)
    by_name = {stage["name"]: stage for stage in result["stages"]}
    assert (by_name["Early"]["wins"], by_name["Early"]["deals"]) == (6, 12)  # the open D12 is not counted
    assert by_name["Early"]["win_rate"] == pytest.approx(7 / 14)  # uniform prior: (wins + 1) / (deals + 2)
    assert (by_name["Late"]["wins"], by_name["Late"]["deals"]) == (4, 5)
    assert "fewer than" in by_name["Late"]["note"]
    assert result["win_by_age"] is None  # no creation dates


def test_cli_calibrates_win_by_age_into_the_fragment(tmp_path):
    _, deals, stages = synthetic_files(tmp_path, quarters=12, seed=8)
    maps = [f"--map={name}={header}" for name, header in STAGE_SPEC.columns.items()]
    out = tmp_path / "cal.yaml"
    stage_maps = ["--stage-map", "deal_id=Deal", "--stage-map", "date=Entered"]
    args = ["calibrate", str(deals), "--out", str(out), *maps, "--stage-history", str(stages), *stage_maps]
    result = CliRunner().invoke(cli, [*args, "--age-buckets", "30,60,90"])
    assert result.exit_code == 0, result.output
    assert "Win within a quarter by deal age x stage" in result.output
    (tmp_path / "s.yaml").write_text("period: 2026-Q3\npipeline: {path: p.csv}\ncalibration: cal.yaml\n")
    table = load_scenario(tmp_path / "s.yaml").win_by_age
    assert table.buckets_days == AGE_EDGES and set(table.rates) == {"default", *STAGE_RATES}


def test_cli_names_bad_stage_history_rows(tmp_path):
    _, deals, stages = synthetic_files(tmp_path, quarters=4, seed=9)
    stages.write_text(stages.read_text() + "NOPE,Early,2015-02-01\nS1,Late,someday\n")
    maps = [f"--map={name}={header}" for name, header in STAGE_SPEC.columns.items()]
    args = ["calibrate", str(deals), "--out", str(tmp_path / "c.yaml"), *maps, "--stage-history", str(stages)]
    result = CliRunner().invoke(cli, [*args, "--stage-map", "deal_id=Deal", "--stage-map", "date=Entered"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.splitlines()
    rows = len(stages.read_text().splitlines())
    unknown = f"row {rows - 1}, column 'Deal' (deal_id): unknown deal id 'NOPE': it is not in {deals}"
    assert f"Error: {stages}: {unknown}" in lines
    assert any(
        line.startswith(f"Error: {stages}: row {rows}, column 'Entered' (date): 'someday'") for line in lines
    )
    missing = CliRunner().invoke(cli, args)
    assert missing.exit_code == 2
    assert "map it with --stage-map deal_id=HEADER" in missing.stderr
    bad = CliRunner().invoke(cli, [*args, "--stage-map", "when=Entered"])
    assert bad.exit_code == 2 and "--stage-map: columns: unknown column 'when'" in bad.stderr
    bad = CliRunner().invoke(cli, [*args, "--age-buckets", "60,30"])
    assert bad.exit_code == 2 and "age bucket edges must increase" in bad.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_a_joined_history_needs_one_row_per_deal(tmp_path):
    (tmp_path / "h.csv").write_text(
        "Id,Result,Amount,Closed\nA,Won,1,2026-03-01\n,,,\nA,Lost,1,2026-03-02\n,Lost,1,2026-03-02\n"
    )
    (tmp_path / "s.csv").write_text("Deal,Stage,Entered\nA,Early,2026-01-01\n")
    spec = dataclasses.replace(
        _with_stages(tmp_path / "s.csv"),
        columns={"deal_id": "Id", "outcome": "Result", "close_date": "Closed"},
    )
    with pytest.raises(PipelineError) as error:
        load_history(tmp_path / "h.csv", spec)
    assert error.value.problems == [  # the blank line 3 is skipped, not an empty id
        f"{tmp_path / 'h.csv'}: row 4, column 'Id' (deal_id): 'A' duplicates row 2",
        f"{tmp_path / 'h.csv'}: row 5, column 'Id' (deal_id): is empty",
    ]


def test_calibrate_reads_dates_in_the_format_given_or_proven(tmp_path):
    from click.testing import CliRunner

    from forecast.cli.commands import cli

    def write(day: int) -> None:
        rows = [
            f"D{i},{'Won' if i % 3 else 'Lost'},100,{(i % 12) + 1:02d}/{day}/2020,12/{day}/2020"
            for i in range(30)
        ]
        (tmp_path / "h.csv").write_text(
            "deal_id,outcome,amount,created_date,close_date\n" + "\n".join(rows) + "\n"
        )

    out = tmp_path / "cal.yaml"
    write(day=5)  # every date reads day-first and month-first: an error, never a guess
    failed = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "h.csv"), "--out", str(out)])
    assert failed.exit_code == 2 and "or set --date-format ('%d/%m/%Y'" in failed.output and not out.exists()
    write(day=15)  # a 15 in second place proves month-first, for every date column of the file
    for given in ([], ["--date-format", "%m/%d/%Y"]):
        result = CliRunner().invoke(
            cli, ["calibrate", str(tmp_path / "h.csv"), "--out", str(out), *given, "--json"]
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["cycle_time"]["deals"] == 20  # every won deal's dates read


def test_cli_writes_the_fitted_new_pipeline_only_when_asked(tmp_path):
    from tests.builders import NEW_DEALS

    _, deals, _ = synthetic_files(tmp_path, quarters=12, seed=8)
    maps = [f"--map={name}={header}" for name, header in STAGE_SPEC.columns.items()]
    out = tmp_path / "cal.yaml"
    args = ["calibrate", str(deals), "--out", str(out), *maps]
    plain = CliRunner().invoke(cli, args)
    assert plain.exit_code == 0 and "not written: add --new-pipeline" in plain.output
    assert "new_pipeline" not in out.read_text()
    result = CliRunner().invoke(cli, [*args, "--new-pipeline", "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.output)["new_pipeline"]
    rate, stderr = fit["new_pipeline"]["conversations_per_week"], fit["stderr"]["conversations_per_week"]
    assert abs(rate - NEW_DEALS["per_week"]) < 4 * stderr  # the synthetic creation rate, recovered
    (tmp_path / "s.yaml").write_text("period: 2026-Q3\npipeline: {path: p.csv}\ncalibration: cal.yaml\n")
    block = load_scenario(tmp_path / "s.yaml").new_pipeline
    assert block.conversations_per_week == pytest.approx(rate, rel=1e-5)
    assert block.stages[0].rate == pytest.approx(fit["new_pipeline"]["stages"][0]["rate"], rel=1e-5)


def _undated_history(path):
    """A win/loss export without dates (as IBM's sample): 20 East deals, 12 won; 20 West, 4 won; the won
    deals of East are the small ones."""
    rows = ["Opportunity Number,Opportunity Result,Opportunity Amount USD,Region"]
    for i in range(20):
        rows.append(f"E{i},{'Won' if i < 12 else 'Loss'},{1000 if i < 12 else 3000},East")
        rows.append(f"W{i},{'Won' if i < 4 else 'Loss'},2000,West")
    path.write_text("\n".join(rows) + "\n")
    return path


UNDATED = [
    "--map",
    "outcome=Opportunity Result",
    "--map",
    "amount=Opportunity Amount USD",
    "--segment",
    "Region",
]


def test_a_history_without_dates_gives_segment_rates_with_revenue_weighted_ones(tmp_path):
    """Before, a history without a close_date column was refused, and segment rates had no scenario key."""
    history = _undated_history(tmp_path / "h.csv")
    out = tmp_path / "cal.yaml"
    result = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *UNDATED, "--json"])
    assert result.exit_code == 0, result.output
    fit = json.loads(result.output)
    overall = (16 + 1) / (40 + 2)  # uniform prior
    assert (fit["overall"]["wins"], fit["overall"]["deals"]) == (16, 40)
    assert fit["overall"]["win_rate"] == pytest.approx(overall)
    # won / closed amount: East 12 x 1000 of 12 x 1000 + 8 x 3000; West 4 x 2000 of 20 x 2000
    assert fit["overall"]["revenue_rate"] == pytest.approx(20_000 / 76_000)
    east, west = fit["segments"]["Region"]
    assert east["revenue_rate"] == pytest.approx(12_000 / 36_000) and west["revenue_rate"] == pytest.approx(
        0.2
    )
    assert east["win_rate"] == pytest.approx((12 + 20 * overall) / 40)  # shrunk by 20 deals' worth
    assert fit["win_by_age"] is None and fit["slip"] is None and not fit["dated"]
    keys = yaml.safe_load(out.read_text())
    assert keys == {"segment_rates": {
        "column": "Region", "overall": round(overall, 6),
        "rates": {"East": round(east["win_rate"], 6), "West": round(west["win_rate"], 6)},
    }}  # fmt: skip
    text = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *UNDATED])
    assert "  revenue-weighted (won / closed amount): 26.3%, 1.54x below the count rate" in text.output
    assert "    East: 50.2% of 20 (33.3%)" in text.output
    assert "no close dates: slip, cycle time, win by deal age and new pipeline need them" in text.output
    timed = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *UNDATED,
                                     "--half-life-days", "90"])  # fmt: skip
    assert timed.exit_code == 2
    assert "Error: a recency half-life needs the close date of every closed deal" in timed.stderr
    other = CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(out), *UNDATED,
                                     "--segment-rates", "Product"])  # fmt: skip
    assert other.exit_code == 2
    assert "Error: --segment-rates 'Product': expected a --segment column (Region)" in other.stderr


def test_run_scales_stage_rates_by_the_segment_odds(tmp_path):
    history = _undated_history(tmp_path / "h.csv")
    assert CliRunner().invoke(cli, ["calibrate", str(history), "--out", str(tmp_path / "cal.yaml"),
                                    *UNDATED]).exit_code == 0  # fmt: skip
    (tmp_path / "p.csv").write_text(
        "Deal ID,Amount,Stage,Close Date,Probability,Region\n"
        "A,1000,Proposal,2026-08-01,,East\nB,2000,Proposal,2026-08-01,,West\n"
        "C,4000,Proposal,2026-08-01,,North\nD,8000,Proposal,2026-08-01,0.9,East\n"
    )
    (tmp_path / "s.yaml").write_text(
        "period: 2026-Q3\npipeline: {path: p.csv}\ncalibration: cal.yaml\n"
        "stages: [{name: Proposal, win_rate: 0.5}]\nsimulation: {trials: 40000, seed: 5}\n"
    )
    table = load_scenario(tmp_path / "s.yaml").segment_rates

    def odds(rate):
        return rate / (1 - rate)

    def scaled(segment):  # the stage's 0.5 has odds 1: the deal's odds are its segment's over the overall
        factor = odds(table.rates[segment]) / odds(table.overall)
        return factor / (1 + factor)

    rates = [scaled("East"), scaled("West"), 0.5, 0.9]  # North is not listed; D has its own probability
    expected = float(np.dot([1000, 2000, 4000, 8000], rates))
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.output)
    assert run["weighted_pipeline"] == pytest.approx(expected, rel=1e-12)
    spread = math.sqrt(np.dot(np.square([1000, 2000, 4000, 8000]), np.multiply(rates, 1 - np.array(rates))))
    assert abs(run["revenue"]["mean"] - expected) < 4 * spread / math.sqrt(40000)
    (tmp_path / "s.yaml").write_text((tmp_path / "s.yaml").read_text() + "segment_rates: {column: Sector}\n")
    wrong = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml")])
    assert (
        wrong.exit_code == 2 and "segment_rates.column: the pipeline has no column 'Sector'" in wrong.stderr
    )


def test_segment_rates_read_numbers_as_the_pipeline_cells_do():
    from forecast.config.loading import parse_scenario
    from forecast.errors import ScenarioError

    base = "period: 2026-Q3\npipeline: {path: p.csv}\nsegment_rates: {column: Size, overall: 0.3, rates: "
    scenario = parse_scenario(base + "{1: 0.4, 2.0: 0.2, Big: 0.05}}\n")
    assert scenario.segment_rates.rates == {"1": 0.4, "2": 0.2, "Big": 0.05}
    assert parse_scenario(base + "{true: 0.1}}\n").segment_rates.rates == {"true": 0.1}
    with pytest.raises(ScenarioError, match="segment value '1' is listed twice"):
        parse_scenario(base + "{1: 0.4, '1': 0.2}}\n")
    with pytest.raises(ScenarioError, match=r"segment_rates\.rates\.Big"):
        parse_scenario(base + "{Big: 0.0}}\n")  # a rate of exactly 0 (or 1) has no odds to scale by


def test_recent_outcomes_weigh_more_in_the_stage_and_segment_rates(tmp_path):
    # 10 deals lost 360 days before the history's last day, 10 won on it; a half-life of 90 days
    rows = ["Id,Result,Amount,Closed,Product"]
    rows += [f"L{i},Lost,100,2025-01-06,X" for i in range(10)] + [
        f"W{i},Won,100,2026-01-01,X" for i in range(10)
    ]
    (tmp_path / "h.csv").write_text("\n".join(rows) + "\n")
    columns = {"deal_id": "Id", "outcome": "Result", "amount": "Amount", "close_date": "Closed"}
    spec = HistorySpec(columns=columns, segments=("Product",))
    old = 2.0 ** (-360 / 90)  # each lost deal's weight
    result = calibrate(load_history(tmp_path / "h.csv", spec), spec, half_life_days=90)
    overall = result["overall"]
    assert overall["weighted_deals"] == pytest.approx(10 + 10 * old) and overall["deals"] == 20
    assert overall["win_rate"] == pytest.approx((10 + 1) / (10 + 10 * old + 2))
    assert result["segments"]["Product"][0]["revenue_rate"] == pytest.approx(10 / (10 + 10 * old))
    assert calibrate(load_history(tmp_path / "h.csv", spec), spec)["overall"]["win_rate"] == pytest.approx(
        0.5
    )


def test_recency_weighted_rates_carry_the_weighted_evidence(tmp_path):
    """With a half-life a rate rests on its weighted counts, so that is the evidence a scenario draws it
    with: the counts as counted would claim more deals than the rate was estimated from."""
    _, deals, stages = synthetic_files(tmp_path, quarters=12, seed=8)
    spec = _with_stages(stages)
    result = calibrate(load_history(deals, spec), spec, half_life_days=90.0)
    out = fragment(result)
    for stage, estimate in zip(out["stages"], result["stages"], strict=True):
        wins, weighted = estimate["weighted_wins"], estimate["weighted_deals"]
        assert weighted < estimate["deals"]  # the weights are below 1: evidence is lost, not invented
        assert stage["evidence"]["won"] + stage["evidence"]["lost"] == pytest.approx(weighted, rel=1e-5)
        assert stage["evidence"]["won"] == pytest.approx(wins, rel=1e-5, abs=1e-6)
    fit = result["win_by_age"]
    for cell, evidence in zip(fit["by_age"], out["win_by_age"]["evidence"]["default"], strict=True):
        assert evidence["won"] + evidence["lost"] == pytest.approx(cell["weighted_deals"], rel=1e-5)
    for name, row in fit["stages"].items():
        cells = zip(row, fit["by_age"], out["win_by_age"]["evidence"][name], strict=True)
        for cell, bucket, evidence in cells:
            worth = _shrunk_worth(cell, bucket, spec.prior_strength)  # on the weighted counts
            assert evidence["deals"] == pytest.approx(worth, rel=1e-5)
            counted = {key: value for key, value in cell.items() if not key.startswith("weighted_")}
            if cell["weighted_deals"] < 0.9 * cell["deals"]:
                assert _shrunk_worth(counted, bucket, spec.prior_strength) > worth
