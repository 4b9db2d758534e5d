"""End-to-end runs of the ``forecast`` command line on files in ``tmp_path``.

Most runs go through click's ``CliRunner`` in this process; the few that must see
a fresh interpreter (``python -m forecast``, ``NUMBA_NUM_THREADS``) use a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from forecast.cli.commands import cli

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
EXAMPLE = CONFIGS / "example.yaml"
EXAMPLE_CSV = CONFIGS / "example_pipeline.csv"
TRIALS = 2000
PERCENTILE_KEYS = ["p5", "p10", "p25", "p50", "p75", "p90", "p95"]

# Win rates of 1 and 0 and no slip or amount noise: every trial ends the same way, so
# the whole report is known exactly. Revenue = booked 1,000 + D1 5,000 (D2 is lost, D3 is
# won but dated after the period); new logos = booked 1 + D1. D2 is overdue at as_of.
CERTAIN_SCENARIO = """\
name: Certain quarter
period: 2026-Q4
as_of: 2026-10-15
pipeline: {path: deals.csv}
booked: {revenue: 1000, new_logos: 1}
stages:
  - {name: Commit, win_rate: 1.0, slip: 0.0}
  - {name: Lost, win_rate: 0.0}
targets:
  - {name: quota, metric: revenue, at_least: 6000}
  - {name: logos, metric: new_logos, at_least: 3}
simulation: {trials: 500, seed: 7}
"""
CERTAIN_DEALS = """\
deal_id,amount,stage,close_date,probability,new_logo,region
D1,5000,Commit,2026-11-01,,yes,EMEA
D2,2000,Lost,2026-10-02,,yes,EMEA
D3,3000,Commit,2027-01-15,,yes,Americas
"""
CERTAIN_TABLE = """\
Certain quarter  2026-10-01 .. 2026-12-31  (as of 2026-10-15)
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
┃ measure                                 ┃           value ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
│ booked                                  │           1,000 │
│ open deals                              │               3 │
│ open pipeline in period                 │           7,000 │
│ weighted pipeline (amount x win rate)   │           5,000 │
│ pipeline coverage                       │           1.40x │
│ expected revenue                        │           6,000 │
│ revenue P5                              │           6,000 │
│ revenue P10                             │           6,000 │
│ revenue P25                             │           6,000 │
│ revenue P50                             │           6,000 │
│ revenue P75                             │           6,000 │
│ revenue P90                             │           6,000 │
│ revenue P95                             │           6,000 │
│ expected slipped revenue                │               0 │
│ expected new logos                      │            2.00 │
│ P(quota: revenue >= 6,000)              │ 100.0 % +- 0.00 │
│ P(logos: new_logos >= 3)                │   0.0 % +- 0.00 │
│ P(all targets)                          │   0.0 % +- 0.00 │
└─────────────────────────────────────────┴─────────────────┘
500 trials, seed 7; +- is one Monte Carlo standard error (points)
"""


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def table_rows(text: str) -> dict[str, str]:
    """The measure -> value cells of rendered ``forecast run`` tables."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


def write_certain(folder: Path, deals: str = CERTAIN_DEALS, scenario: str = CERTAIN_SCENARIO) -> Path:
    """The certain scenario (or a variant) in ``folder``; returns the resolved scenario path."""
    (folder / "deals.csv").write_text(deals, encoding="utf-8")
    path = folder / "scenario.yaml"
    path.write_text(scenario, encoding="utf-8")
    return path.resolve()


@pytest.fixture(scope="module")
def example_text() -> str:
    result = invoke("run", EXAMPLE, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def example_json(example_text: str) -> dict:
    return json.loads(example_text)


@pytest.fixture
def no_targets(tmp_path: Path) -> Path:
    """A target-free scenario on the shipped pipeline, referenced by absolute path."""
    path = tmp_path / "no_targets.yaml"
    path.write_text(
        f"""\
name: No targets
period: 2026-Q4
as_of: 2026-10-15
pipeline:
  path: {json.dumps(str(EXAMPLE_CSV))}
  columns: {{deal_id: Opportunity ID, probability: Probability (%)}}
  probability_scale: percent
stages:
  - {{name: Qualified, win_rate: 0.15}}
  - {{name: Proposal, win_rate: 0.35}}
  - {{name: Negotiation, win_rate: 0.60}}
""",
        encoding="utf-8",
    )
    return path


# forecast run: the shipped example


def test_run_table_shows_every_measure(example_json):
    result = invoke("run", EXAMPLE, "--trials", TRIALS)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    title = result.stdout.splitlines()[0].rstrip()
    assert title == "Team Q4 2026  2026-10-01 .. 2026-12-31  (as of 2026-10-15)"
    assert result.stdout.endswith(
        "2,000 trials, seed 2026; +- is one Monte Carlo standard error (points)\n"
        "note: column 'Probability (%)' replaces the stage win rate of 16 deals; "
        "to use the scenario's rates, drop pipeline.columns.probability\n"
    )
    rows = table_rows(result.stdout)
    assert list(rows) == [
        "booked",
        "open deals",
        "open pipeline in period",
        "weighted pipeline (amount x win rate)",
        "pipeline coverage",
        "expected revenue",
        *(f"revenue P{key[1:]}" for key in PERCENTILE_KEYS),
        "commit call (its percentile)",
        "best-case call (its percentile)",
        "expected slipped revenue",
        "expected new logos",
        "P(quota: revenue >= 1,000,000)",
        "P(new customers: new_logos >= 8)",
        "P(analytics deals: deals >= 7)",
        "P(all targets)",
    ]
    # the table shows the same numbers as --json
    revenue = example_json["revenue"]
    assert rows["booked"] == "180,000"
    assert rows["open deals"] == "200"
    assert rows["weighted pipeline (amount x win rate)"] == f"{example_json['weighted_pipeline']:,.0f}"
    assert rows["pipeline coverage"] == f"{example_json['coverage']:.2f}x"
    assert rows["expected revenue"] == f"{revenue['mean']:,.0f}"
    for key in PERCENTILE_KEYS:
        assert rows[f"revenue P{key[1:]}"] == f"{revenue[key]:,.0f}"
    assert rows["expected slipped revenue"] == f"{example_json['slipped_revenue']['mean']:,.0f}"
    quota = example_json["targets"][0]
    assert rows["P(quota: revenue >= 1,000,000)"] == (
        f"{100 * quota['probability']:.1f} % +- {100 * quota['stderr']:.2f}"
    )
    assert rows["P(all targets)"] == (
        f"{100 * example_json['p_all_targets']:.1f} % +- {100 * example_json['p_all_targets_stderr']:.2f}"
    )


def test_run_json_has_every_key(example_json):
    summary = example_json
    assert summary["scenario"] == "Team Q4 2026"
    assert summary["file"] == str(EXAMPLE)
    assert summary["trials"] == TRIALS
    assert summary["seed"] == 2026
    assert summary["booked"] == 180000.0
    assert summary["open_deals"] == 200
    assert isinstance(summary["open_deals"], int)
    assert isinstance(summary["weighted_pipeline"], float)
    assert 0 < summary["weighted_pipeline"] <= summary["open_pipeline"]

    revenue = summary["revenue"]
    assert set(revenue) == {"mean", "std", *PERCENTILE_KEYS}
    assert all(isinstance(value, float) for value in revenue.values())
    percentiles = [revenue[key] for key in PERCENTILE_KEYS]
    assert percentiles == sorted(percentiles)
    assert summary["booked"] <= revenue["p5"] <= revenue["mean"] <= revenue["p95"]
    assert revenue["std"] > 0
    assert summary["slipped_revenue"]["mean"] > 0

    targets = summary["targets"]
    assert [(t["name"], t["metric"], t["at_least"]) for t in targets] == [
        ("quota", "revenue", 1000000.0),
        ("new customers", "new_logos", 8.0),
        ("analytics deals", "deals", 7.0),
    ]
    for target in targets:
        p = target["probability"]
        assert 0.0 < p < 1.0
        assert target["stderr"] == pytest.approx(math.sqrt(p * (1 - p) / TRIALS), rel=1e-12)
    assert summary["p_all_targets"] <= min(target["probability"] for target in targets)
    assert summary["p_all_targets"] > 0


def test_run_seed_changes_numbers_and_same_seed_repeats_them(example_text):
    first = invoke("run", EXAMPLE, "--trials", TRIALS, "--seed", 1, "--json")
    again = invoke("run", EXAMPLE, "--trials", TRIALS, "--seed", 1, "--json")
    other = invoke("run", EXAMPLE, "--trials", TRIALS, "--seed", 2, "--json")
    assert first.exit_code == again.exit_code == other.exit_code == 0
    assert first.stdout == again.stdout
    one, two = json.loads(first.stdout), json.loads(other.stdout)
    assert (one["seed"], two["seed"]) == (1, 2)
    assert one["revenue"]["mean"] != two["revenue"]["mean"]
    assert one["targets"] != two["targets"]
    assert first.stdout != example_text  # the file's seed, 2026, is a third stream
    # what does not depend on the draws does not change
    assert one["weighted_pipeline"] == two["weighted_pipeline"]


def test_run_trials_option_overrides_the_file(tmp_path):
    scenario = write_certain(tmp_path)
    assert json.loads(invoke("run", scenario, "--json").stdout)["trials"] == 500
    assert json.loads(invoke("run", scenario, "--json", "--trials", 37).stdout)["trials"] == 37


# forecast run: exact results of a scenario whose outcome is certain


def test_run_certain_scenario_table(tmp_path):
    result = invoke("run", write_certain(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stdout == CERTAIN_TABLE


def test_run_certain_scenario_json(tmp_path):
    scenario = write_certain(tmp_path)
    result = invoke("run", scenario, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "scenario": "Certain quarter",
        "file": str(scenario),
        "period": {"start": "2026-10-01", "end": "2026-12-31"},
        "as_of": "2026-10-15",
        "currency": None,
        "trials": 500,
        "seed": 7,
        "booked": 1000.0,
        "booked_new_logos": 1,
        "booked_deals": 0,
        "rate_overrides": None,
        "rows": {
            "open": 3,
            "won_in_period": 0,
            "won_in_period_amount": 0.0,
            "won_before_period": 0,
            "won_after_period": 0,
            "lost": 0,
            "skipped_missing_amount": [],
            "zero_missing_amount": [],
            "line_items_merged": 0,
            "line_items": None,
            "converted": {},
        },  # fmt: skip
        "open_deals": 3,
        "open_pipeline": 7000.0,
        "weighted_pipeline": 5000.0,
        "coverage": 1.4,
        "overdue_deals": 1,
        "revenue": {"mean": 6000.0, "std": 0.0, **{key: 6000.0 for key in PERCENTILE_KEYS}},
        "revenue_split": {"booked": 1000.0, "open_pipeline": 5000.0, "new_pipeline": 0.0},
        "judgement": None,
        "breakdown": {},
        "correlation": None,
        "rate_uncertainty": None,
        "slipped_revenue": {"mean": 0.0},
        "new_logos": {"mean": 2.0},
        "targets": [
            {
                "name": "quota",
                "metric": "revenue",
                "at_least": 6000.0,
                "where": None,
                "probability": 1.0,
                "stderr": 0.0,
                "expected_shortfall": 0.0,
                "gap_at_p10": 0.0,
            },
            {
                "name": "logos",
                "metric": "new_logos",
                "at_least": 3.0,
                "where": None,
                "probability": 0.0,
                "stderr": 0.0,
                "expected_shortfall": 1.0,
                "gap_at_p10": 1.0,
            },
        ],
        "p_all_targets": 0.0,
        "p_all_targets_stderr": 0.0,
    }


# forecast run: several files, samples


def test_run_several_files_json_is_a_list(example_json, no_targets):
    result = invoke("run", EXAMPLE, no_targets, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    first, second = json.loads(result.stdout)
    assert first == example_json  # a scenario's numbers do not depend on its companions
    assert second["scenario"] == "No targets"
    assert second["trials"] == TRIALS
    assert second["targets"] == []
    assert second["p_all_targets"] is None
    assert second["p_all_targets_stderr"] is None
    assert second["coverage"] is None  # no revenue target to cover


def test_run_several_files_table(no_targets):
    result = invoke("run", EXAMPLE, no_targets, "--trials", TRIALS)
    assert result.exit_code == 0, result.output
    assert "Team Q4 2026  2026-10-01" in result.stdout
    assert "No targets  2026-10-01" in result.stdout
    assert result.stdout.count("P(all targets)") == 1
    assert result.stdout.count("2,000 trials, seed 2026;") == 1
    assert result.stdout.count("2,000 trials, seed 20260701;") == 1  # the default seed


def _read_samples(path: Path):
    return pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_run_samples(tmp_path, no_targets, suffix):
    samples = tmp_path / f"samples{suffix}"
    result = invoke("run", EXAMPLE, no_targets, "--trials", TRIALS, "--json", "--samples", samples)
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["no_targets.yaml", samples.name]
    summaries = {summary["scenario"]: summary for summary in json.loads(result.stdout)}

    table = _read_samples(samples)
    assert table.num_rows == 2 * TRIALS
    assert table.column_names == [
        "scenario",
        "trial",
        "revenue",
        "slipped_revenue",
        "new_logos",
        "new_pipeline_revenue",
        "target:quota",
        "target:new customers",
        "target:analytics deals",
    ]
    columns = table.to_pydict()
    scenario = np.array(columns["scenario"])
    assert list(dict.fromkeys(scenario)) == ["Team Q4 2026", "No targets"]
    for name, summary in summaries.items():
        rows = scenario == name
        assert rows.sum() == TRIALS
        assert np.array(columns["trial"])[rows].tolist() == list(range(TRIALS))
        revenue = np.array(columns["revenue"])[rows]
        assert np.mean(revenue) == summary["revenue"]["mean"]
        assert np.percentile(revenue, 50) == summary["revenue"]["p50"]
        slipped = np.array(columns["slipped_revenue"])[rows]
        assert np.mean(slipped) == summary["slipped_revenue"]["mean"]
        assert np.mean(np.array(columns["new_logos"])[rows]) == summary["new_logos"]["mean"]
    example = scenario == "Team Q4 2026"
    quota = np.array(columns["target:quota"])[example]
    assert quota.tolist() == np.array(columns["revenue"])[example].tolist()
    for target in summaries["Team Q4 2026"]["targets"]:
        values = np.array(columns[f"target:{target['name']}"])[example]
        assert np.mean(values >= target["at_least"]) == target["probability"]
    for name in ("target:quota", "target:new customers", "target:analytics deals"):
        assert set(np.array(columns[name], dtype=object)[~example]) == {None}


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_run_samples_get_the_usual_file_mode(tmp_path):
    samples = tmp_path / "samples.parquet"
    assert invoke("run", write_certain(tmp_path), "--samples", samples).exit_code == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert samples.stat().st_mode & 0o777 == 0o666 & ~umask  # not tempfile's private 0o600


# forecast run: bad input


BAD_INPUT = [
    pytest.param(
        "deal_id,amount,stage\nD1,5000,Commit\n",
        CERTAIN_SCENARIO,
        [
            "{deals}: missing column 'close_date'; map it with pipeline.columns.close_date "
            "(columns are: deal_id, amount, stage)"
        ],
        id="missing column",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("D1,5000,", "D1,lots,"),
        CERTAIN_SCENARIO,
        ["{deals}: row 2, column 'amount' (amount): 'lots' is not a number"],
        id="non-numeric amount",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("D2,2000,", "D2,-2000,"),
        CERTAIN_SCENARIO,
        ["{deals}: row 3, column 'amount' (amount): -2000 is not a number >= 0"],
        id="negative amount",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("D3,3000,Commit,", "D3,3000,Closing,"),
        CERTAIN_SCENARIO,
        ["{deals}: row 4, column 'stage' (stage): unknown stage 'Closing'; stages are Commit, Lost"],
        id="unknown stage",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("2026-11-01,,", "2026-11-01,1.5,"),
        CERTAIN_SCENARIO,
        [
            "{deals}: row 2, column 'probability' (probability): 1.5 is out of range; "
            "expected 0-1 (set pipeline.probability_scale: percent for 0-100)"
        ],
        id="probability out of range",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("2026-10-02", "02/10/2026"),
        CERTAIN_SCENARIO,
        [
            "{deals}: row 3, column 'close_date' (close_date): '02/10/2026' could be day-first or "
            "month-first; expected YYYY-MM-DD, or set pipeline.date_format ('%d/%m/%Y' or '%m/%d/%Y')"
        ],
        id="unparsable date",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("D3,", "D1,"),
        CERTAIN_SCENARIO,
        [
            "{deals}: row 4, column 'deal_id' (deal_id): 'D1' duplicates row 2",
            "{deals}: if rows sharing a deal id are line items of one deal (one row per product), set "
            "pipeline.aggregate: sum to add them up",
        ],
        id="duplicate deal id",
    ),
    pytest.param(
        CERTAIN_DEALS,
        CERTAIN_SCENARIO.replace("{path: deals.csv}", "{path: deals.csv, filter: {region: APAC}}"),
        ["{deals}: the pipeline has no deals after pipeline.filter"],
        id="empty pipeline after filter",
    ),
    pytest.param(
        CERTAIN_DEALS,
        CERTAIN_SCENARIO + "horizon: 3\n",
        ["{scenario}: horizon (line 13): unknown key"],
        id="unknown scenario key",
    ),
    pytest.param(
        CERTAIN_DEALS,
        CERTAIN_SCENARIO.replace("trials: 500", "trials: 200000000"),
        ["{scenario}: simulation.trials (line 12): Input should be less than or equal to 100000000"],
        id="trials too large",
    ),
    pytest.param(
        CERTAIN_DEALS.replace("D1,5000,", "D1,lots,").replace("Lost,2026-10-02", "Dormant,2026-10-32"),
        CERTAIN_SCENARIO,
        [
            "{deals}: row 2, column 'amount' (amount): 'lots' is not a number",
            "{deals}: row 3, column 'close_date' (close_date): '2026-10-32' is not a date; "
            "expected YYYY-MM-DD, or set pipeline.date_format (e.g. '%m/%d/%Y')",
            "{deals}: row 3, column 'stage' (stage): unknown stage 'Dormant'; stages are Commit, Lost",
        ],
        id="several problems, one line each",
    ),
]


def assert_rejected(result: Result, expected: list[str], folder: Path, output: Path | None = None) -> None:
    """Exit 2, exactly the expected ``Error:`` lines, no traceback, nothing written."""
    assert result.exit_code == 2, result.output
    assert result.stderr == "".join(f"Error: {line}\n" for line in expected)
    assert result.stdout == ""
    assert "Traceback" not in result.output
    if output is not None:
        assert not output.exists()
    assert list(folder.rglob(".*.tmp")) == []


@pytest.mark.parametrize(("deals", "scenario", "expected"), BAD_INPUT)
def test_run_rejects_bad_input(tmp_path, deals, scenario, expected):
    path = write_certain(tmp_path, deals, scenario)
    samples = tmp_path / "samples.parquet"
    result = invoke("run", path, "--json", "--samples", samples)
    names = {"deals": path.parent / "deals.csv", "scenario": path}
    assert_rejected(result, [line.format(**names) for line in expected], tmp_path, samples)


@pytest.mark.parametrize(("deals", "scenario", "expected"), BAD_INPUT[:2])
def test_validate_rejects_bad_input(tmp_path, deals, scenario, expected):
    path = write_certain(tmp_path, deals, scenario)
    result = invoke("validate", path)
    names = {"deals": path.parent / "deals.csv", "scenario": path}
    assert_rejected(result, [line.format(**names) for line in expected], tmp_path)


def test_run_reports_the_problems_of_every_file(tmp_path):
    bad = write_certain(tmp_path, CERTAIN_DEALS.replace("D1,5000,", "D1,lots,"))
    missing = tmp_path / "missing.yaml"
    samples = tmp_path / "samples.csv"
    result = invoke("run", missing, bad, "--samples", samples)
    expected = [
        f"{missing}: scenario file not found",
        f"{tmp_path.resolve() / 'deals.csv'}: row 2, column 'amount' (amount): 'lots' is not a number",
    ]
    assert_rejected(result, expected, tmp_path, samples)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("samples.txt", "{path}: unsupported output type '.txt'; expected .parquet or .csv"),
        ("samples", "{path}: unsupported output type ''; expected .parquet or .csv"),
        ("missing/samples.parquet", "{path}: folder {folder}/missing does not exist"),
        ("deals.csv/samples.parquet", "{path}: folder {folder}/deals.csv does not exist"),
    ],
)
def test_run_rejects_bad_samples_path(tmp_path, name, expected):
    scenario = write_certain(tmp_path)
    samples = tmp_path / name
    result = invoke("run", scenario, "--samples", samples)
    assert_rejected(result, [expected.format(path=samples, folder=tmp_path)], tmp_path, samples)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deals.csv", "scenario.yaml"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--trials", "200000000"], "Error: Invalid value for '--trials': 200000000 is not in the range"),
        (["--trials", "0"], "Error: Invalid value for '--trials': 0 is not in the range"),
        (["--seed", "-1"], "Error: Invalid value for '--seed': -1 is not in the range"),
        (["--samples", "."], "Error: Invalid value for '--samples': File '.' is a directory."),
    ],
)
def test_run_rejects_bad_options(tmp_path, monkeypatch, options, expected):
    monkeypatch.chdir(tmp_path)
    result = invoke("run", write_certain(tmp_path), "--json", *options)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[-1].startswith(expected)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["deals.csv", "scenario.yaml"]


def test_run_rejects_bad_thread_count(tmp_path):
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    for threads in (0, most + 1):
        result = invoke("run", write_certain(tmp_path), "--threads", threads)
        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == (
            f"Error: Invalid value for '--threads': {threads} is not in the range 1<=x<={most}."
        )
        assert "Traceback" not in result.output


# any working directory, any thread count, python -m forecast


def test_run_from_another_working_directory(tmp_path, monkeypatch, example_json):
    monkeypatch.chdir(tmp_path)
    relative = os.path.relpath(EXAMPLE, tmp_path)
    result = invoke("run", relative, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == example_json
    assert invoke("validate", relative).exit_code == 0


def test_json_is_identical_for_any_thread_count(tmp_path, example_text):
    outputs = []
    for threads in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-m", "forecast", "run", str(EXAMPLE), "--trials", str(TRIALS), "--json"],
            cwd=tmp_path,
            env={**os.environ, "NUMBA_NUM_THREADS": threads},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1] == example_text


# forecast funnel

FUNNEL = CONFIGS / "funnel" / "textbook.yaml"
TEXTBOOK_OPTIONS = (
    "--quota", 1000000, "--deal-size", 50000, "--stage", "proposal:0.4", "--stage", "opportunity:0.5",
    "--stage", "conversation:1/6", "--periods", 4, "--weeks", 12,
)  # fmt: skip


def test_funnel_textbook_from_options():
    result = invoke("funnel", *TEXTBOOK_OPTIONS, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    planned = json.loads(result.stdout)["funnel"]
    rows = {row["stage"]: row for row in planned["chain"]["stages"]}
    assert (rows["wins"]["total"], rows["proposal"]["total"], rows["opportunity"]["total"]) == (20, 50, 100)
    assert (rows["conversation"]["total"], rows["conversation"]["per_period"]) == (600, 150)
    assert rows["conversation"]["per_week"] == 12.5
    levels = [row["probability"] for row in planned["activity"]]
    assert levels == [0.5, 0.8, 0.9]
    table = invoke("funnel", *TEXTBOOK_OPTIONS, "--trials", TRIALS).stdout
    assert "the average path" in table and "conversation / week" in table


def test_funnel_file_and_option_override():
    from_file = json.loads(invoke("funnel", FUNNEL, "--trials", TRIALS, "--json").stdout)["funnel"]
    assert from_file["chain"]["stages"][-1]["per_week"] == 12.5
    doubled = json.loads(invoke("funnel", FUNNEL, "--quota", 2000000, "--trials", TRIALS, "--json").stdout)
    assert doubled["funnel"]["chain"]["stages"][-1]["per_week"] == 25.0


def test_funnel_diagnoses_a_scenario():
    result = invoke("funnel", "--scenario", CONFIGS / "quarter_start.yaml", "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    diagnosis = json.loads(result.stdout)["diagnosis"]
    assert diagnosis["status"] in ("covered", "slip_risk", "not_enough_pipeline")
    assert diagnosis["gap"] == pytest.approx(diagnosis["at_least"] - diagnosis["expected_revenue"])
    text = invoke("funnel", "--scenario", CONFIGS / "quarter_start.yaml", "--trials", TRIALS).stdout
    assert "Gap to quota" in text


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--stage", "proposal"), "--stage 'proposal': expected NAME:VALUE, e.g. proposal:0.4"),
        (
            ("--quota", 1000, "--deal-size", 10, "--stage", "a:1.5"),
            "funnel options: stages[0].rate: Input should be",
        ),
        (
            ("--quota", 1000, "--deal-size", 10, "--stage", "a:0"),
            "funnel options: stages[0].rate: Input should be",
        ),
        (
            ("--quota", 1000, "--deal-size", 10, "--stage", "a:0.5", "--weeks", 14),
            "14 selling weeks do not fit in a period of 13.0 weeks",
        ),
        ((), "give a funnel FILE, the funnel options"),
    ],
)
def test_funnel_rejects_bad_input(tmp_path, options, expected):
    result = invoke("funnel", *options)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr
    assert "Traceback" not in result.output


# forecast drivers


def test_drivers_json_and_table():
    result = invoke("drivers", CONFIGS / "team.yaml", "--top", 5, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 5
    for row in rows:
        assert {"deal_id", "account", "stake", "stake_stderr", "swing", "acceleration_gain"} <= set(row)
        assert row["swing"] == pytest.approx(row["p_hit_if_won"] - row["p_hit_if_lost"])
        assert row["account"].startswith("Account ")  # the export's Account column
    assert [row["stake"] for row in rows] == sorted((row["stake"] for row in rows), reverse=True)
    table = invoke("drivers", CONFIGS / "team.yaml", "--top", 5, "--trials", TRIALS).stdout
    assert rows[0]["deal_id"] in table and "at stake" in table and "account" in table
    assert "No deal stands out" in table  # at 2,000 trials the top stakes are within error


def test_drivers_without_quota_is_an_error(no_targets, tmp_path):
    assert_rejected(
        invoke("drivers", no_targets, "--trials", TRIALS),
        ["No targets: drivers need a revenue target (the quota) to measure deals against"],
        tmp_path,
    )


# forecast territories


def test_territories_json_and_table():
    result = invoke("territories", CONFIGS / "team.yaml", "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    split = json.loads(result.stdout)
    assert split["unit"] == "sector" and split["search"]["method"] == "exact"
    assert split["search"]["fairer"]
    assert split["suggested"]["spread"]["range"] < split["current"]["spread"]["range"]
    assert sorted(u for row in split["suggested"]["reps"] for u in row["units"]) == [
        "Finance", "Healthcare", "Manufacturing", "Retail",
    ]  # fmt: skip
    assert sum(row["open_pipeline"] for row in split["suggested"]["reps"]) == sum(
        row["open_pipeline"] for row in split["current"]["reps"]
    )  # the same open deals, split another way


TERRITORIES_BY_REGION = """\
Current split: p_hit from 0.18 to 0.61 (range 0.43, attainment CV 0.21)
┏━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━┓
┃ rep          ┃ units    ┃ open pipeline ┃   quota ┃ expected ┃ attainment ┃ P(hit) ┃
┡━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━┩
│ Alice Martin │ EMEA     │     1,054,700 │ 250,000 │  255,135 │       1.02 │ 47.6 % │
│ Bruno Silva  │ EMEA     │       916,400 │ 250,000 │  244,058 │       0.98 │ 44.6 % │
│ Chen Wei     │ Americas │     1,005,300 │ 250,000 │  301,476 │       1.21 │ 61.0 % │
│ Dana Okafor  │ Americas │       407,300 │ 150,000 │   95,595 │       0.64 │ 17.7 % │
└──────────────┴──────────┴───────────────┴─────────┴──────────┴────────────┴────────┘
No split by whole region is fairer than today's: p_hit range 0.87 at best, 0.43 today (exact search).
2 region values for 4 reps: some reps cannot own a whole one; try a unit with at least 4 values
"""


def test_territories_never_suggest_a_split_less_fair_than_today():
    """Two regions for four reps leave two reps with nothing: no whole-region split is fairer on P(hit)."""
    args = (
        "territories",
        CONFIGS / "team.yaml",
        "--unit",
        "region",
        "--objective",
        "p_hit",
        "--trials",
        TRIALS,
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert [line.rstrip() for line in result.stdout.splitlines()] == TERRITORIES_BY_REGION.splitlines()
    search = json.loads(invoke(*args, "--json").stdout)["search"]
    assert search["best_range"] > search["current_range"] and not search["fairer"]


def test_territories_without_owner_quotas_measure_reps_against_the_average_rep():
    """configs/example.yaml has no quotas.owner: every rep's target is the average rep's expected revenue."""
    result = invoke("territories", EXAMPLE, "--trials", TRIALS)
    assert result.exit_code == 0, result.output
    assert "No split by whole region is fairer than today's" in result.stdout
    split = json.loads(
        invoke("territories", EXAMPLE, "--trials", TRIALS, "--unit", "sector", "--json").stdout
    )
    average = sum(row["expected"] for row in split["current"]["reps"]) / 4
    for key in ("current", "suggested"):
        assert [row["quota"] for row in split[key]["reps"]] == [pytest.approx(average, rel=1e-12)] * 4
    assert split["suggested"]["spread"]["range"] < split["current"]["spread"]["range"]


# forecast changes


def test_changes_between_two_exports(tmp_path):
    lines = EXAMPLE_CSV.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    kept = [row for row in rows if not row.startswith("OPP-0007,")]  # one deal gone
    newer = tmp_path / "newer.csv"
    newer.write_text("\n".join([header, *kept]) + "\n")
    result = invoke("changes", EXAMPLE_CSV, newer, "--scenario", EXAMPLE, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)
    parts = {part["kind"]: part for part in changes["parts"]}
    assert parts["lost"]["deals"] == ["OPP-0007"]
    assert parts["lost"]["expected_revenue_change"] == pytest.approx(
        changes["total_change"]["expected_revenue_change"]
    )
    table = invoke("changes", EXAMPLE_CSV, newer, "--scenario", EXAMPLE, "--trials", TRIALS).stdout
    assert "OPP-0007" in table and "total" in table
    missing = invoke("changes", EXAMPLE_CSV, tmp_path / "nope.csv", "--scenario", EXAMPLE)
    assert missing.exit_code == 2 and "pipeline file not found" in missing.stderr


CHANGES_TABLE = """\
Certain quarter: expected revenue 6,000 -> 9,000, P(hit) 100.0 % -> 100.0 %, P(all targets) 0.0 % -> 0.0 %
┏━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━┓
┃ change           ┃      expected revenue ┃      P(hit), points ┃       P(all targets), points ┃ deals  ┃
┡━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━┩
│ won              │                    +0 │                +0.0 │                         +0.0 │        │
│ lost             │                    +0 │                +0.0 │                         +0.0 │        │
│ new              │                    +0 │                +0.0 │                         +0.0 │        │
│ pulled in        │                +3,000 │                +0.0 │                       +100.0 │ D3     │
│ pushed out       │                    +0 │                +0.0 │                         +0.0 │        │
│ amount           │                    +0 │                +0.0 │                         +0.0 │ D2     │
│ stage            │                    +0 │                +0.0 │                         +0.0 │        │
│ probability      │                    +0 │                +0.0 │                         +0.0 │        │
│ slip             │                    +0 │                +0.0 │                         +0.0 │        │
│ created date     │                    +0 │                +0.0 │                         +0.0 │        │
│ new logo         │                    +0 │                +0.0 │                       -100.0 │ D1     │
│ total            │                +3,000 │                +0.0 │                         +0.0 │        │
└──────────────────┴───────────────────────┴─────────────────────┴──────────────────────────────┴────────┘
"""


def test_changes_table_of_certain_deals(tmp_path):
    """D3 pulled into the period (+3,000, and a third new logo), D1 no longer a new logo (back to
    two), the lost D2 re-priced (no effect) and D1 moved to another region (nothing reads it)."""
    scenario = write_certain(tmp_path)
    newer = tmp_path / "newer.csv"
    newer.write_text(
        CERTAIN_DEALS.replace("D1,5000,Commit,2026-11-01,,yes,EMEA", "D1,5000,Commit,2026-11-01,,no,Americas")
        .replace("D2,2000,", "D2,2500,")
        .replace("D3,3000,Commit,2027-01-15", "D3,3000,Commit,2026-12-15")
    )
    result = invoke("changes", tmp_path / "deals.csv", newer, "--scenario", scenario)
    assert result.exit_code == 0, result.output
    assert result.stdout == CHANGES_TABLE


def test_changes_sees_created_dates_moved_a_year_back(tmp_path):
    """Every deal a year older: its age rate falls, and the change is the created dates'."""
    lines = EXAMPLE_CSV.read_text().splitlines()
    column = lines[0].split(",").index("Created Date")
    rows = [row.split(",") for row in lines[1:]]
    for row in rows:
        row[column] = f"{int(row[column][:4]) - 1}{row[column][4:]}" if row[column] else ""
    older = tmp_path / "older.csv"
    older.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")
    scenario = CONFIGS / "deal_age.yaml"
    result = invoke("changes", EXAMPLE_CSV, older, "--scenario", scenario, "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    changes = json.loads(result.stdout)
    moved = tmp_path / "moved.yaml"
    moved.write_text(scenario.read_text().replace("path: example_pipeline.csv", f"path: {older}"))
    before = json.loads(invoke("run", scenario, "--trials", TRIALS, "--json").stdout)
    after = json.loads(invoke("run", moved, "--trials", TRIALS, "--json").stdout)
    assert changes["before"]["expected_revenue"] == before["revenue"]["mean"]
    assert changes["after"]["expected_revenue"] == pytest.approx(after["revenue"]["mean"], rel=1e-12)
    assert after["revenue"]["mean"] < 0.6 * before["revenue"]["mean"]
    parts = {part["kind"]: part for part in changes["parts"]}
    total = changes["total_change"]["expected_revenue_change"]
    assert parts["created_date"]["expected_revenue_change"] == total
    assert len(parts["created_date"]["deals"]) == len(rows)


# forecast compare

STRETCH = CONFIGS / "stretch.yaml"
RUN_KEYS = {"scenario", "trials", "seed", "booked", "open_deals", "weighted_pipeline", "revenue", "targets"}


def test_compare_json_has_run_keys_and_plan_keys(example_json):
    result = invoke("compare", STRETCH, "--plans", "stretch,pull_in", "--trials", TRIALS, "--json")
    assert result.exit_code == 0, result.output
    plans = json.loads(result.stdout)
    assert [plan["plan"] for plan in plans] == ["base", "stretch", "pull_in"]
    for plan in plans:
        assert RUN_KEYS | {"plan", "delta_vs_base", "required_extra_pipeline", "p_all_targets"} <= set(plan)
        assert [row["probability"] for row in plan["required_extra_pipeline"]["levels"]] == [0.5, 0.8, 0.9]
    base, stretch, _ = plans
    assert stretch["p_all_targets"] < base["p_all_targets"]
    assert stretch["targets"][0]["at_least"] == 1_500_000
    assert base["delta_vs_base"]["p_all_targets"]["estimate"] == 0.0


def test_compare_table_names_every_plan():
    result = invoke("compare", STRETCH, "--trials", TRIALS)
    assert result.exit_code == 0, result.output
    for name in ("base", "stretch", "pull_in", "coaching", "prospecting", "Targets per plan", "paired"):
        assert name in result.stdout


def test_compare_rejects_unknown_plans_and_bad_plans(tmp_path):
    result = invoke("compare", STRETCH, "--plans", "stretch,moonshot", "--trials", TRIALS)
    assert_rejected(
        result,
        ["Stretch Q4 2026: no plan 'moonshot'; plans are base, stretch, pull_in, coaching, prospecting"],
        tmp_path,
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        STRETCH.read_text().replace("example_pipeline.csv", str(EXAMPLE_CSV)).replace("OPP-0043", "OPP-9999")
    )
    result = invoke("compare", bad, "--trials", TRIALS)
    assert_rejected(result, [f"{bad}: plans.pull_in.accelerate: unknown deal id 'OPP-9999'"], tmp_path)


# forecast validate, forecast schema


def test_validate_example(example_json):
    result = invoke("validate", EXAMPLE)
    assert result.exit_code == 0, result.output
    ok, read, note, warning = result.stdout.splitlines()
    assert ok == f"OK {EXAMPLE}: 200 open deals, period 2026-10-01..2026-12-31"
    assert read == "  read example_pipeline.csv: utf-8, delimiter ',', decimal '.', header on row 1"
    assert note == (
        "note: column 'Probability (%)' replaces the stage win rate of 16 deals; "
        "to use the scenario's rates, drop pipeline.columns.probability"
    )
    overdue = example_json["overdue_deals"]
    assert overdue > 0
    assert warning.startswith(
        f"warning: {overdue} deals are overdue at 2026-10-15 "
        "(counted in the period; update their close dates): OPP-0002 (2026-10-01), "
    )
    assert warning.count("(2026-10-") == min(overdue, 10)


def test_validate_certain_scenario(tmp_path):
    scenario = write_certain(tmp_path)
    result = invoke("validate", scenario)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"OK {scenario}: 3 open deals, period 2026-10-01..2026-12-31\n"
        "  read deals.csv: utf-8, delimiter ',', header on row 1\n"  # whole amounts: no decimal mark
        "warning: 1 deal is overdue at 2026-10-15 (counted in the period; update their close dates): "
        "D2 (2026-10-02)\n"
    )


def test_schema_is_json():
    result = invoke("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["title"] == "forecast scenario"
    assert {"period", "pipeline", "stages", "targets", "simulation"} <= set(schema["properties"])
    assert schema["required"] == ["period", "pipeline"]


# help, README, shipped configs


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {command}" in result.stdout
    assert "Example:" in result.stdout


def test_readme_shows_every_command():
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing; it should show each command with real output"
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## Commands\n") :].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `forecast ")]
    listed = [row.split("`")[1].split()[1] for row in rows]
    assert listed == list(dict.fromkeys(listed))  # each command once
    assert sorted(listed) == sorted(cli.commands)  # the table lists every command, and only commands


SCENARIO_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml") if "\nperiod:" in p.read_text())


def test_every_shipped_config_is_a_scenario_or_a_backtest():
    backtests = [p for p in CONFIGS.glob("*.yaml") if p not in SCENARIO_CONFIGS]
    assert [p.name for p in backtests] == ["maven-backtest.yaml"]


@pytest.mark.parametrize("config", SCENARIO_CONFIGS, ids=lambda path: path.name)
def test_shipped_config_runs(config):
    result = invoke("run", config, "--trials", 1000, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["trials"] == 1000
    assert summary["open_deals"] > 0


def test_validate_checks_what_the_scenario_names_in_the_pipeline(tmp_path):
    scenario = tmp_path / "refs.yaml"
    scenario.write_text(
        EXAMPLE.read_text().replace("example_pipeline.csv", str(EXAMPLE_CSV))
        + "plans: {p: {accelerate: [OPP-9999]}}\nquotas: {segment: {x: 1}}\n"
    )
    scenario.write_text(scenario.read_text().replace("where: {product: Analytics}", "where: {colour: red}"))
    result = invoke("validate", scenario)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert f"Error: {scenario}: plans.p.accelerate: unknown deal id 'OPP-9999'" in lines
    assert any(
        "target 'analytics deals': where.colour: the pipeline has no such column" in line for line in lines
    )
    assert any("quotas.segment: the pipeline has no such column" in line for line in lines)


def test_run_by_an_export_header_and_quota_warnings(tmp_path):
    result = invoke("run", CONFIGS / "team.yaml", "--by", "Region", "--trials", TRIALS, "--json")
    assert list(json.loads(result.stdout)["breakdown"]) == [
        "owner",
        "region",
    ]  # 'Region' is the export's name
    scenario = tmp_path / "typo.yaml"
    scenario.write_text(
        (CONFIGS / "team.yaml")
        .read_text()
        .replace("example_pipeline.csv", str(EXAMPLE_CSV))
        .replace("Dana Okafor: 150000", "Dana Okafr: 150000")
    )
    assert (
        "warning: quotas.owner names Dana Okafr, who have no deals in the pipeline"
        in invoke("validate", scenario).stdout
    )


def test_report_and_plot_through_the_cli(tmp_path):
    out = tmp_path / "r.html"
    result = invoke(
        "report", CONFIGS / "stretch.yaml", "-o", out, "--png", tmp_path / "png", "--trials", TRIALS
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and (tmp_path / "png" / "distribution.png").exists()
    assert invoke("report", EXAMPLE, "-o", tmp_path / "r.txt").exit_code == 2
    assert invoke("report", EXAMPLE, "-o", tmp_path / "missing" / "r.html").exit_code == 2
    plot = invoke("run", EXAMPLE, "--plot", "--trials", TRIALS).stdout
    assert "<- quota" in plot and "#" in plot


# files that are not what a command expects


IMPOSSIBLE = "2026-02-30 is not a calendar date (day is out of range for month)"


@pytest.mark.parametrize(
    ("command", "source", "bad", "where"),
    [
        ("run", EXAMPLE, ("as_of: 2026-10-15", "as_of: 2026-02-30"), "as_of (line 5)"),
        ("validate", EXAMPLE, ("as_of: 2026-10-15", "as_of: 2026-02-30"), "as_of (line 5)"),
        ("drivers", EXAMPLE, ("period: 2026-Q4", "period: {start: 2026-02-30, end: 2026-12-31}"),
         "period.start (line 4)"),
        ("funnel", FUNNEL, ("quota: 1000000", "quota: 2026-02-30"), "quota (line 3)"),
        ("backtest", CONFIGS / "maven-backtest.yaml", ("periods: 2017-Q2..2017-Q4", "periods: [2026-02-30]"),
         "periods[0] (line 16)"),
    ],
)  # fmt: skip
def test_an_impossible_date_is_a_located_error_in_every_command(tmp_path, command, source, bad, where):
    text = source.read_text(encoding="utf-8")
    assert bad[0] in text
    path = tmp_path / source.name
    path.write_text(text.replace(bad[0], bad[1]), encoding="utf-8")
    (tmp_path / "example_pipeline.csv").write_bytes(EXAMPLE_CSV.read_bytes())
    result = invoke(command, path)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {path}: {where}: {IMPOSSIBLE}\n"


@pytest.mark.parametrize("command", ["run", "drivers", "compare"])
@pytest.mark.parametrize(
    ("file", "kind"),
    [
        (CONFIGS / "maven-backtest.yaml", "a backtest file (it has history); run it with forecast backtest"),
        (FUNNEL, "a funnel plan (quota and stages, no pipeline or period); run it with forecast funnel"),
    ],
)
def test_a_backtest_or_funnel_file_where_a_scenario_is_expected_says_so(command, file, kind):
    result = invoke(command, file)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"Error: {file.resolve()}: this looks like {kind}\n"


def test_validate_checks_funnel_plans_and_backtest_files_as_what_they_are(tmp_path):
    """The README's ``forecast validate configs/*.yaml``: a backtest file or funnel plan beside the
    scenarios is checked as what it is, not refused as a broken scenario."""
    (tmp_path / "deals.csv").write_text("deal_id,outcome,amount,created_date,close_date\n")
    backtest = tmp_path / "past.yaml"
    backtest.write_text("history: {path: deals.csv}\nperiods: 2017-Q2..2017-Q4\n")
    scenarios = [str(path) for path in sorted(CONFIGS.glob("*.yaml")) if "\nperiod:" in path.read_text()]
    result = CliRunner().invoke(cli, ["validate", *scenarios, str(FUNNEL), str(backtest)])
    assert result.exit_code == 0, result.output
    assert f"OK {FUNNEL.resolve()}: a funnel plan, quota 1,000,000 through 3 stages" in result.output
    assert (
        f"OK {backtest.resolve()}: a backtest file, periods 2017-Q2..2017-Q4, its history files present"
        in (result.output)
    )
    broken = tmp_path / "backtest.yaml"
    broken.write_text("history: {path: missing.csv}\nperiods: 2017-Q2\n")
    result = CliRunner().invoke(cli, ["validate", str(broken), str(CONFIGS / "example.yaml")])
    assert result.exit_code == 2
    assert f"Error: {broken.resolve()}: history.path: {(tmp_path / 'missing.csv').resolve()} not found" in (
        result.output
    )
