"""The distribution: its own name (PyPI's ``forecast`` is an unrelated project), the ``forecast`` command."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecast.cli.commands import cli

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_names_the_installed_distribution():
    name = re.search(r'^name = "([^"]+)"$', PYPROJECT.read_text(), re.MULTILINE)[1]
    assert name != "forecast"  # `pip install forecast` fetches someone else's package
    result = CliRunner().invoke(cli, ["--version"], prog_name="forecast")
    assert result.exit_code == 0, result.output
    assert result.output == f"forecast, version {metadata.version(name)}\n"
    assert 'forecast = "forecast.cli:main"' in PYPROJECT.read_text()  # the command keeps its name


def test_the_changes_example_runs_on_shipped_files(monkeypatch):
    """``forecast changes --help`` shows a command that works from the repository folder."""
    monkeypatch.chdir(PYPROJECT.parent)
    example = cli.commands["changes"].help.split("Example: forecast changes")[1].split()
    result = CliRunner().invoke(cli, ["changes", *example, "--trials", "2000"])
    assert result.exit_code == 0, result.output
    for kind in ("lost", "new", "pulled in", "pushed out", "amount", "stage", "probability"):
        row = next(line for line in result.output.splitlines() if line.startswith(f"│ {kind} "))
        assert "OPP-" in row, row  # the shipped week shows every kind but a win


MAVEN = "../shared/data/maven-crm-sales-opportunities/"  # downloaded beside the repository (README)
OUTPUTS = {"--out", "-o", "--png", ">"}  # what follows these is written, not read


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_help_example_reads_files_that_exist(command):
    """An example in ``--help`` reads shipped files, or the Maven sample where the README says to put it."""
    help_text = " ".join(cli.commands[command].help.split())
    words = help_text.split(f"Example: forecast {command}")[1].split()
    inputs = [
        word
        for before, word in zip(["", *words], words, strict=False)
        if before not in OUTPUTS and re.fullmatch(r"[\w./-]+(\.(yaml|csv|tsv|parquet|xlsx)|/)", word)
    ]
    root = PYPROJECT.parent
    for word in inputs:
        if word.startswith(MAVEN):
            assert MAVEN.removeprefix("../") in (root / "README.md").read_text(), word
        else:
            assert (root / word).exists(), f"forecast {command} --help reads {word}, which is not shipped"
