"""YAML text -> validated models; every error names the file, the key path and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ValidationError,
)

from forecast.config.periods import parse_period, quarter_of
from forecast.config.scenario import Scenario, reference_problems
from forecast.config.specs import BacktestSpec, FunnelSpec
from forecast.errors import NotAScenarioError, ScenarioError


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    index = {} if index is None else index
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            index[child] = key_node.start_mark.line + 1
            _line_index(value_node, child, index)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            child = (*path, position)
            index[child] = item.start_mark.line + 1
            _line_index(item, child, index)
    return index


def _data_path(loc: tuple, data: Any, keep_last: bool) -> tuple:
    """Drop the union-branch names pydantic puts in a location, keeping the data's keys."""
    path: list = []
    for position, part in enumerate(loc):
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if in_dict or in_list:
            data = data[part]
        elif not (keep_last and position == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def located(path: tuple, lines: dict[tuple, int]) -> str:
    """'targets[0].at_least (line 12)' for a key path."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    text = text or "(top level)"
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return f"{text} (line {lines[path[:cut]]})"
    return text


def _where(loc: tuple, data: Any, lines: dict[tuple, int], keep_last: bool) -> str:
    """The location of a pydantic error, as the YAML shows it."""
    return located(_data_path(loc, data, keep_last), lines)


def _describe(error: dict, data: Any, lines: dict[tuple, int]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    keep_last = error["type"] in ("missing", "extra_forbidden")
    return f"{_where(error['loc'], data, lines, keep_last)}: {message}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but an impossible date (``2026-02-30``) is a located problem."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise _ImpossibleDate(node, str(error)) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


class _ImpossibleDate(Exception):
    def __init__(self, node: yaml.Node, reason: str):
        super().__init__(reason)
        self.node, self.reason = node, reason


def _node_path(node: yaml.Node, target: yaml.Node, path: tuple = ()) -> tuple | None:
    """The key path of ``target`` inside the composed document ``node``."""
    if node is target:
        return path
    children: list = []
    if isinstance(node, yaml.MappingNode):
        children = [((*path, key.value), child) for key, value in node.value for child in (key, value)]
    elif isinstance(node, yaml.SequenceNode):
        children = [((*path, position), item) for position, item in enumerate(node.value)]
    for child_path, child in children:
        found = _node_path(child, target, child_path)
        if found is not None:
            return found
    return None


def load_yaml(text: str, label: str) -> tuple[Any, dict[tuple, int]]:
    """YAML text -> its data and the line of every key path, parsed once.

    Malformed YAML and impossible dates raise ``ScenarioError`` naming ``label``, the key and the line.
    """
    loader = _Loader(text)
    try:
        document = loader.get_single_node()
        lines = _line_index(document) if document is not None else {}  # before merge keys are flattened
        data = None if document is None else loader.construct_document(document)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ScenarioError(f"{label}{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    except _ImpossibleDate as bad:
        path = _node_path(document, bad.node) or ()
        where = located(path, {path: bad.node.start_mark.line + 1})
        raise ScenarioError(
            f"{label}: {where}: {bad.node.value} is not a calendar date ({bad.reason})"
        ) from None
    finally:
        loader.dispose()
    return data, lines


def validate_yaml(
    text: str, model: type[BaseModel], label: str, prepare=None
) -> tuple[BaseModel, dict[tuple, int]]:
    """YAML text -> a validated model and the line of every key path; errors name key and line.

    ``prepare`` may check or complete the raw data first (a scenario's calibration fragment).
    """
    data, lines = load_yaml(text, label)
    if not isinstance(data, dict):
        raise ScenarioError(f"{label}: expected a mapping of keys at the top level")
    if prepare is not None:
        data = prepare(data)
    try:
        return model.model_validate(data), lines
    except ValidationError as error:
        raise ScenarioError(
            list(dict.fromkeys(f"{label}: {_describe(item, data, lines)}" for item in error.errors()))
        ) from None


# The keys `forecast calibrate` writes in a fragment (history/calibration.py fragment, --backtest).
CALIBRATION_KEYS = ("stages", "slip", "amount", "win_by_age", "new_pipeline", "correlation", "segment_rates")


OTHER_FILES = {  # what another forecast file is, and what reads it
    "backtest": "a backtest file (it has history); run it with forecast backtest",
    "funnel": "a funnel plan (quota and stages, no pipeline or period); run it with forecast funnel",
    "calibration": (
        "a calibration fragment (rates, no pipeline or period); "
        "include it in a scenario with calibration: FILE"
    ),
}


def other_file_kind(data: dict) -> str | None:
    """Which other forecast file (a key of ``OTHER_FILES``) a YAML mapping is, by its top-level keys;
    None for a scenario."""
    if {"pipeline", "period"} & data.keys():
        return None
    if "history" in data:
        return "backtest"
    if {"quota", "stages"} <= data.keys():
        return "funnel"
    if data and data.keys() <= set(CALIBRATION_KEYS):
        return "calibration"
    return None


def calibration_path(name: str, source: Path | None) -> Path:
    """A scenario's ``calibration`` fragment file: relative to the scenario's folder."""
    path = Path(name).expanduser()
    if not path.is_absolute() and source is not None:
        path = Path(source).parent / path
    return path


def _scenario_data(data: dict, source: Path | None, label: str) -> dict:
    """Scenario data completed by its ``calibration`` fragment: what the scenario sets wins.

    Another forecast file (funnel plan, backtest, calibration fragment) is refused, saying what reads it.
    """
    kind = other_file_kind(data)
    if kind is not None:
        raise NotAScenarioError(f"{label}: this looks like {OTHER_FILES[kind]}", kind)
    name = data.get("calibration")
    if not isinstance(name, str):
        return data
    path = calibration_path(name, source)
    fragment = load_yaml(read_text(path, "calibration"), f"{label}: calibration {path}")[0] or {}
    if not isinstance(fragment, dict):
        raise ScenarioError(f"{label}: calibration {path}: expected a mapping of scenario keys")
    merged = dict(data)
    for key, value in fragment.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**value, **merged[key]}
    return merged


def read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read {what} file: {error}") from None


def parse_scenario(text: str, source: Path | None = None) -> Scenario:
    """Validate scenario YAML text; ``source`` resolves relative paths and names the file."""
    label = str(source) if source else "scenario"
    scenario, lines = validate_yaml(text, Scenario, label, lambda data: _scenario_data(data, source, label))
    problems = reference_problems(scenario)
    if problems:
        raise ScenarioError([f"{label}: {located(path, lines)}: {message}" for path, message in problems])
    scenario._source = source
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    return parse_scenario(read_text(path, "scenario"), path.resolve())


def parse_funnel(text: str, source: Path | None = None) -> FunnelSpec:
    """Validate a funnel plan's YAML text."""
    return validate_yaml(text, FunnelSpec, str(source) if source else "funnel")[0]


def load_backtest(
    path: str | Path,
    periods: str | None = None,
    origins: str | int | None = None,
    horizon_days: int | None = None,
) -> tuple[BacktestSpec, Path]:
    """A backtest file and the folder its paths start from; ``periods``, ``origins`` and
    ``horizon_days`` replace the file's when given (command-line options)."""
    path = Path(path)
    spec = validate_yaml(read_text(path, "backtest"), BacktestSpec, str(path))[0]
    update = {"periods": periods, "origins": origins, "horizon_days": horizon_days}
    update = {key: value for key, value in update.items() if value is not None}
    if update:
        spec = validated(BacktestSpec, spec.model_dump() | update, f"{path}:")
    try:
        parsed = [parse_period(period) for period in spec.period_list or []]
    except ValueError as error:
        raise ScenarioError(f"{path}: periods: {error}") from None
    for period, quarter in zip(spec.period_list or [], parsed, strict=True):
        if quarter != quarter_of(quarter.start):
            raise ScenarioError(f"{path}: periods: {period!r} is not a calendar quarter (e.g. 2017-Q2)")
    return spec, path.resolve().parent


def load_funnel(path: str | Path) -> FunnelSpec:
    path = Path(path)
    return parse_funnel(read_text(path, "funnel"), path.resolve())


def validated(model: type[BaseModel], data: dict[str, Any], label: str) -> Any:
    """``model`` from data built in code (e.g. command-line options); errors name the key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(
            list(dict.fromkeys(f"{label}: {_describe(item, data, {})}" for item in error.errors()))
        ) from None


def funnel_with(
    base: FunnelSpec | None, changes: dict[str, Any], label: str = "funnel options"
) -> FunnelSpec:
    """A funnel spec from a file's (or nothing) with keys replaced, e.g. from command-line options."""
    return validated(FunnelSpec, {**(base.model_dump() if base else {}), **changes}, label)


def json_schema() -> dict[str, Any]:
    """The scenario's JSON Schema, for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "forecast scenario"
    return schema
