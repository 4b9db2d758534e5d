"""How the command line talks: strict JSON, shared options, exit codes, closed pipes, output files.

The exact tables and numbers are in ``test_cli.py``; here every command is held to the
same rules (every ``--json`` is strict JSON, every simulating command takes the same
``--trials``, ``--seed`` and ``--threads``), and the ways out of a command are checked:
bad input (2), a failed run (1), an unexpected failure, a reader that stopped reading.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from forecast.cli.commands import cli
from forecast.reporting.json_text import json_text
from tests.builders import synthetic_files

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
EXAMPLE = CONFIGS / "example.yaml"
EXAMPLE_CSV = CONFIGS / "example_pipeline.csv"
TRIALS = "1000"
BACKTEST = """\
history:
  path: deals.csv
  columns: {deal_id: Id, outcome: Result, amount: Amount, created_date: Created, close_date: Closed}
periods: 2017-Q2..2017-Q3
model: {age_buckets_days: [30, 60, 90]}
simulation: {trials: 300, seed: 1}
"""


def invoke(*args: object, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args], env=env)


def strict_json(text: str):
    """Parse as JSON proper: ``Infinity``, ``-Infinity`` and ``NaN`` are not JSON."""

    def refuse(name: str):
        raise AssertionError(f"{name} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def _newer_export(folder: Path) -> Path:
    lines = EXAMPLE_CSV.read_text().splitlines()
    newer = folder / "newer.csv"
    newer.write_text("\n".join([lines[0], *[row for row in lines[1:] if not row.startswith("OPP-0007,")]]))
    return newer


def _backtest(folder: Path) -> Path:
    synthetic_files(folder, quarters=12, seed=4)
    config = folder / "b.yaml"
    config.write_text(BACKTEST)
    return config


def _history(folder: Path) -> Path:
    _, deals, _ = synthetic_files(folder, quarters=12, seed=8)
    return deals


HISTORY_MAPS = ["--map=outcome=Result", "--map=amount=Amount", "--map=created_date=Created",
                "--map=close_date=Closed", "--map=deal_id=Id"]  # fmt: skip
TEXTBOOK = ["--quota", "1000000", "--deal-size", "50000", "--stage", "proposal:0.4",
            "--stage", "opportunity:0.5", "--stage", "conversation:1/6"]  # fmt: skip

# every command that prints JSON, on files a test can build in tmp_path
JSON_RUNS = {
    "run": lambda tmp: ["run", EXAMPLE, CONFIGS / "team.yaml", "--trials", TRIALS, "--json"],
    "compare": lambda tmp: ["compare", CONFIGS / "team.yaml", "--trials", TRIALS, "--json"],
    "funnel": lambda tmp: [
        "funnel",
        *TEXTBOOK,
        "--scenario",
        CONFIGS / "stretch.yaml",
        "--trials",
        TRIALS,
        "--json",
    ],  # fmt: skip
    "drivers": lambda tmp: ["drivers", CONFIGS / "team.yaml", "--trials", TRIALS, "--json"],
    "territories": lambda tmp: ["territories", CONFIGS / "team.yaml", "--trials", TRIALS, "--json"],
    "changes": lambda tmp: [
        "changes",
        EXAMPLE_CSV,
        _newer_export(tmp),
        "--scenario",
        EXAMPLE,
        "--trials",
        TRIALS,
        "--json",
    ],  # fmt: skip
    "calibrate": lambda tmp: ["calibrate", _history(tmp), "--out", tmp / "cal.yaml", *HISTORY_MAPS, "--json"],
    "backtest": lambda tmp: ["backtest", _backtest(tmp), "--json"],
    "schema": lambda tmp: ["schema"],
}


def test_every_json_printing_command_is_checked():
    printing = {
        name for name, command in cli.commands.items() if any(p.name == "as_json" for p in command.params)
    }
    assert printing | {"schema"} == set(JSON_RUNS)


@pytest.mark.parametrize("command", sorted(JSON_RUNS))
def test_every_json_output_is_strict_json(command, tmp_path):
    result = invoke(*JSON_RUNS[command](tmp_path))
    assert result.exit_code == 0, result.output
    assert strict_json(result.stdout)
    assert result.stderr == ""


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_a_number_that_is_not_finite_is_null_and_named_on_stderr():
    # a stage that converts 1e-310 of its deals needs more than the largest float of them
    result = invoke("funnel", "--quota", 1000000, "--deal-size", 50000, "--stage", "proposal:1e-310",
                    "--trials", 100, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    chain = strict_json(result.stdout)["funnel"]["chain"]["stages"]
    assert chain[0]["total"] == 20.0  # wins: finite, kept
    assert chain[1] == {"stage": "proposal", "total": None, "per_period": None, "per_week": None}
    first = result.stderr.splitlines()[0]
    assert first.startswith("warning: 15 numbers are not finite (infinite or undefined); written as null: ")
    assert "funnel.chain.stages[1].total" in first


def test_json_text_writes_non_finite_numbers_as_null():
    text, replaced = json_text({"a": math.inf, "b": [1.5, -math.inf, {"c": math.nan}], "d": None, "e": 2})
    assert json.loads(text) == {"a": None, "b": [1.5, None, {"c": None}], "d": None, "e": 2}
    assert replaced == ["a", "b[1]", "b[2].c"]
    assert json_text([0.1, True])[1] == []


# the same options on every command that simulates

SIMULATING = ["backtest", "batch", "calibrate", "changes", "compare", "drivers", "funnel", "report", "run",
              "territories"]  # fmt: skip


def _option(command: str, name: str) -> click.Option:
    return next(p for p in cli.commands[command].params if name in p.opts)


@pytest.mark.parametrize("name", ["--trials", "--seed", "--threads"])
def test_every_simulating_command_has_the_shared_options(name):
    options = {command: _option(command, name) for command in SIMULATING}
    ranges = {
        (type(o.type), getattr(o.type, "min", None), getattr(o.type, "max", None)) for o in options.values()
    }
    assert len(ranges) == 1, ranges
    helps = {o.help for command, o in options.items() if not (command == "batch" and name == "--seed")}
    assert len(helps) == 1, helps


def test_backtest_takes_a_seed(tmp_path):
    config = _backtest(tmp_path)
    seeds = ([], ["--seed", 1], ["--seed", 2])
    runs = [invoke("backtest", config, "--json", "--trials", 200, *seed) for seed in seeds]
    file_seed, same, other = (strict_json(result.stdout)["origins"] for result in runs)
    assert file_seed == same != other  # the file's seed is 1


def test_the_commands_that_do_not_simulate():
    assert sorted(set(cli.commands) - set(SIMULATING)) == ["init", "schema", "validate"]
    assert all(
        not any("--threads" in p.opts for p in cli.commands[c].params) for c in ("init", "schema", "validate")
    )


@pytest.mark.parametrize("command", ["compare", "drivers", "territories", "backtest"])
def test_a_bad_thread_count_is_a_usage_error(command):
    result = invoke(command, EXAMPLE, "--threads", 0)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1].startswith(
        "Error: Invalid value for '--threads': 0 is not in the range"
    )


# exit codes and unexpected failures

UNEXPECTED = (
    "Error: unexpected failure (RuntimeError: boom); please report it, or rerun with FORECAST_DEBUG=1 "
    "to see the traceback\n"
)


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_an_unexpected_failure_is_one_line_and_exit_1(monkeypatch):
    monkeypatch.setattr("forecast.engine.simulate.simulate", _boom)
    monkeypatch.delenv("FORECAST_DEBUG", raising=False)
    result = invoke("run", EXAMPLE, "--trials", TRIALS)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", UNEXPECTED)


def test_forecast_debug_shows_the_traceback():
    code = (
        "import sys, forecast.engine.simulate as engine\n"
        "def boom(*args, **kwargs): raise RuntimeError('boom')\n"
        "engine.simulate = boom\n"
        f"sys.argv = ['forecast', 'run', {str(EXAMPLE)!r}, '--trials', '100']\n"
        "from forecast.cli import main\nmain()\n"
    )
    for debug, expected in (("1", "Traceback (most recent call last)"), ("0", UNEXPECTED)):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                              env={**os.environ, "FORECAST_DEBUG": debug})  # fmt: skip
        assert done.returncode == 1
        assert expected in done.stderr
    assert done.stderr == UNEXPECTED


def test_bad_input_is_exit_2_and_a_failed_batch_is_exit_1(tmp_path):
    assert invoke("run", tmp_path / "missing.yaml").exit_code == 2
    (tmp_path / "bad.yaml").write_text("period: 2026-Q4\npipeline: {path: nowhere.csv}\n")
    result = invoke("batch", tmp_path / "bad.yaml", "--out", tmp_path / "out.csv", "--workers", 1)
    assert result.exit_code == 1
    assert "pipeline file not found" in result.stderr


# a reader that stops reading: `forecast run ... | head`


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["run", str(EXAMPLE), "--trials", TRIALS], id="run: written when the output is flushed"),
        pytest.param(["schema"], id="schema: more than a buffer, written while the command runs"),
    ],
)
def test_a_closed_pipe_ends_the_command_quietly(args):
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first line
    try:
        command = [sys.executable, "-m", "forecast", *args]
        done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(writer)
    assert done.stderr == ""
    assert done.returncode == 141  # 128 + SIGPIPE: what a shell reports for any tool whose reader left


# output files: every failure to write is one "cannot write" line


def test_report_png_folder_that_cannot_be_made(tmp_path):
    (tmp_path / "a_file").write_text("")
    png, out = tmp_path / "a_file" / "png", tmp_path / "r.html"
    result = invoke("report", EXAMPLE, "-o", out, "--png", png, "--trials", TRIALS)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"Error: {png}: cannot write: Not a directory\n"
    assert not out.exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_report_into_read_only_folders(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        png = invoke("report", EXAMPLE, "-o", tmp_path / "r.html", "--png", locked, "--trials", TRIALS)
        html = invoke("report", EXAMPLE, "-o", locked / "r.html", "--trials", TRIALS)
    finally:
        locked.chmod(0o700)
    assert (png.exit_code, png.stderr) == (2, f"Error: {locked}: cannot write: Permission denied\n")
    assert (html.exit_code, html.stderr) == (
        2,
        f"Error: {locked / 'r.html'}: cannot write: Permission denied\n",
    )
    assert list(locked.iterdir()) == []
