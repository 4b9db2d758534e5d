"""A scenario's ``sweep``: every combination of the listed settings, each as its own scenario."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from forecast.config.loading import load_yaml, parse_scenario
from forecast.config.scenario import Scenario
from forecast.errors import ScenarioError


def _with_setting(data: Any, key: str, value: Any) -> None:
    """Set a dotted setting (``slip.default``, ``stages.1.win_rate``) in raw scenario data."""
    *parents, last = key.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data.setdefault(part, {})
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def sweep_variant(text: str, source: Path | None, values: dict[str, Any]) -> Scenario:
    """The scenario with the sweep settings ``values`` applied (none: the file as written)."""
    if not values:
        return parse_scenario(text, source)
    label = str(source) if source else "scenario"
    where = ", ".join(f"{key}={value}" for key, value in values.items())
    data = load_yaml(text, label)[0]
    data.pop("sweep", None)
    try:
        for key, value in values.items():
            _with_setting(data, key, value)
    except (IndexError, ValueError, TypeError, AttributeError):
        raise ScenarioError(f"{label}: sweep {where}: no such setting") from None
    try:
        return parse_scenario(yaml.safe_dump(data), source)
    except ScenarioError as error:  # lines refer to the re-written text: drop them
        raise ScenarioError(
            [
                f"{label}: sweep {where}: " + re.sub(r" \(line \d+\)", "", problem.removeprefix(f"{label}: "))
                for problem in error.problems
            ]
        ) from None


def sweep_variants(text: str, source: Path | None = None) -> list[tuple[dict[str, Any], Scenario]]:
    """Every combination of a scenario's ``sweep`` values, each as its own scenario.

    Returns ``(values, scenario)`` pairs in a fixed order (the cartesian product of
    the lists as written); a scenario without ``sweep`` is the one pair ``({}, it)``.
    """
    import itertools

    scenario = parse_scenario(text, source)
    if not scenario.sweep:
        return [({}, scenario)]
    keys = list(scenario.sweep)
    combinations = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*scenario.sweep.values())
    ]
    return [(values, sweep_variant(text, source, values)) for values in combinations]
