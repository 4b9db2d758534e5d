"""Each command reads, parses and simulates what it needs once: the calls counted per command.

A counter wraps the expensive steps wherever a module holds them (``from x import f``
binds ``f`` in the importing module too), so a second parse or a second simulation of
the same thing anywhere under a command shows up as a count."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import forecast
from forecast.cli.commands import cli

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXAMPLE, TEAM, STRETCH = CONFIGS / "example.yaml", CONFIGS / "team.yaml", CONFIGS / "stretch.yaml"
COUNTED = {
    "parse_scenario": "forecast.config.loading",
    "load_deals": "forecast.inputs.pipeline",
    "simulate": "forecast.engine.simulate",
    "summarize": "forecast.engine.summary",
    "target_mask": "forecast.engine.model",
}


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Counts of the ``COUNTED`` functions, and of YAML documents read (``yaml``)."""
    for module in pkgutil.walk_packages(forecast.__path__, "forecast."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    counter: Counter = Counter()
    modules = [module for name, module in sys.modules.items() if name.startswith("forecast")]
    for name, home in COUNTED.items():
        original = getattr(importlib.import_module(home), name)

        def counted(*args, _original=original, _name=name, **kwargs):
            counter[_name] += 1
            return _original(*args, **kwargs)

        for module in modules:
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counted)
    reader = yaml.reader.Reader.__init__  # every YAML parse, whichever loader, reads through one

    def read(self, stream):
        counter["yaml"] += 1
        reader(self, stream)

    monkeypatch.setattr(yaml.reader.Reader, "__init__", read)
    return counter


def _newer_export(folder: Path) -> Path:
    lines = (CONFIGS / "example_pipeline.csv").read_text().splitlines()
    newer = folder / "newer.csv"
    newer.write_text("\n".join([lines[0], *[row for row in lines[1:] if not row.startswith("OPP-0007,")]]))
    return newer


# command -> the calls it makes; a key not listed is expected to be 0
COMMANDS = {
    "run": (
        lambda tmp: ["run", EXAMPLE],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1, "summarize": 1, "target_mask": 1},
    ),
    "run, two files": (
        lambda tmp: ["run", EXAMPLE, TEAM, "--json"],
        {"yaml": 2, "parse_scenario": 2, "load_deals": 2, "simulate": 2, "summarize": 2, "target_mask": 1},
    ),
    "run, correlated": (
        lambda tmp: ["run", TEAM, "--by", "region"],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1, "summarize": 1},
    ),
    "validate": (lambda tmp: ["validate", EXAMPLE], {"yaml": 1, "parse_scenario": 1, "load_deals": 1}),
    "funnel --scenario": (
        lambda tmp: ["funnel", "--scenario", EXAMPLE],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1, "target_mask": 1},
    ),
    "drivers": (
        lambda tmp: ["drivers", TEAM],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1},
    ),
    "territories": (
        lambda tmp: ["territories", TEAM],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1},
    ),
    # one deal lost between the exports: the pipeline before, and after the one kind that changed
    "changes": (
        lambda tmp: ["changes", CONFIGS / "example_pipeline.csv", _newer_export(tmp), "--scenario", EXAMPLE],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 2, "simulate": 2, "target_mask": 2},
    ),
    # base and four plans, each simulated and summarized once (the base for the page and the plans alike)
    "report": (
        lambda tmp: ["report", STRETCH, "-o", tmp / "r.html"],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 5, "summarize": 5},
    ),
    "report, correlated": (
        lambda tmp: ["report", TEAM, "-o", tmp / "r.html"],
        {"yaml": 1, "parse_scenario": 1, "load_deals": 1, "simulate": 1, "summarize": 1},
    ),
}


@pytest.mark.parametrize("case", list(COMMANDS))
def test_each_command_computes_each_thing_once(case, calls, tmp_path):
    command, expected = COMMANDS[case]
    trials = [] if case == "validate" else ["--trials", 500]
    result = CliRunner().invoke(cli, [str(arg) for arg in [*command(tmp_path), *trials]])
    assert result.exit_code == 0, result.output
    assert dict(calls) == expected


def test_compare_summarizes_each_plan_once(calls):
    result = CliRunner().invoke(cli, ["compare", str(STRETCH), "--trials", "500", "--json"])
    assert result.exit_code == 0, result.output
    # the extra-pipeline search simulates added deals alone; each plan is summarized once
    assert (calls["yaml"], calls["parse_scenario"], calls["load_deals"], calls["summarize"]) == (1, 1, 1, 5)
