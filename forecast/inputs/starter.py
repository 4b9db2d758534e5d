"""``forecast init``: look at a CRM export and decide a first scenario for it.

Recognises the columns (a preset's headers, else usual English and French names), the
stages with their deal counts and amounts, each stage's win rate (the mean of the export's
probabilities at that stage, else the preset's default, else a generic ladder), the closed
stages, the date format, the probability scale, blank amounts, line items and currencies.
Every decision is stated, and what could not be decided is listed; the scenario it writes is
read back through the same loader ``forecast run`` uses before it is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.loading import parse_scenario
from forecast.config.periods import parse_period
from forecast.config.presets import (
    CLOSED_STAGE_NAMES,
    COLUMN_NAMES,
    CRM_PRESETS,
    DEAL_NAME_NAMES,
    GENERIC_LADDER,
    LINE_AMOUNT_NAMES,
    NEW_LOGO_VALUES,
    UNKNOWN_STAGE_RATE,
    PresetStage,
)
from forecast.config.scenario import CANONICAL_COLUMNS, PipelineSource, Stage
from forecast.errors import OutputError, PipelineError, ScenarioError
from forecast.inputs.cells import normalise, parse_date
from forecast.inputs.dialect import Reading
from forecast.inputs.fx import CurrencyRates, currency_rates
from forecast.inputs.output import atomic_write
from forecast.inputs.pipeline import load_deals
from forecast.inputs.presets import header_names, preset_columns
from forecast.inputs.tables import Table, match_columns, read_table

REQUIRED = ("deal_id", "amount", "close_date", "stage")
BOOLEAN_CELLS = {"true", "false", "t", "f", "yes", "no", "y", "n", "1", "0", "oui", "non"}
DATE_FORMATS = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y")
PLACEHOLDER_RATE = 0.5  # the open stages' rate while the export is read to measure them


@dataclass
class StageFound:
    """A stage of the export: its deals, their amount, and the rate init gives it and why."""

    name: str
    deals: int
    amount: float | None  # open stages: their amounts as read; closed stages: None (run books them)
    status: str
    win_rate: float | None
    reason: str
    label: str | None = None  # the preset's name for it, when the export writes another (an id)


@dataclass
class Starter:
    """What ``forecast init`` decided about an export, and the scenario it wrote."""

    export: Path
    period: str
    as_of: dt.date | None
    preset: str | None
    columns: dict[str, str]
    column_reasons: dict[str, str]
    unused: list[str]
    stages: list[StageFound]
    settings: dict[str, Any] = field(default_factory=dict)  # pipeline keys beyond path/columns
    setting_reasons: dict[str, str] = field(default_factory=dict)
    fx: dict[str, Any] | None = None
    decided: list[str] = field(default_factory=list)
    undecided: list[str] = field(default_factory=list)
    output: Path | None = None
    reading: Reading | None = None  # how the export was read: encoding, delimiter, skipped rows


def header_key(text: Any) -> str:
    """A header (or cell) as init compares names: no accents, case, punctuation or extra spaces."""
    plain = unicodedata.normalize("NFKD", normalise(text)).encode("ascii", "ignore").decode()
    return " ".join(re.sub(r"[^0-9a-zA-Z]+", " ", plain).split()).casefold()


def _named(headers: list[str], names: tuple[str, ...]) -> str | None:
    """The first header whose key is one of ``names``' keys (in the order of ``names``)."""
    by_key = {header_key(header): header for header in headers}
    return next((by_key[header_key(name)] for name in names if header_key(name) in by_key), None)


def detect_preset(headers: list[str]) -> str | None:
    """The preset whose standard headers the export has the most of, when it has all four
    required ones and no other preset has as many; else None."""
    scores = {}
    for name in CRM_PRESETS:
        found = preset_columns(name, headers)
        if all(column in found for column in REQUIRED):
            scores[name] = len(found)
    if not scores:
        return None
    best = max(scores.values())
    winners = [name for name, score in scores.items() if score == best]
    return winners[0] if len(winners) == 1 else None


def _recognise_columns(
    headers: list[str], preset: str | None, explicit: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Canonical column -> header, and why each (option, preset or usual name)."""
    unknown = [f"--column {name}={header}: no such column in the export" for name, header in explicit.items()
               if header not in headers]  # fmt: skip
    unknown += [f"--column {name}=...: unknown column name; expected one of {', '.join(CANONICAL_COLUMNS)}"
                for name in explicit if name not in CANONICAL_COLUMNS]  # fmt: skip
    if unknown:
        raise PipelineError(unknown)
    columns, reasons = dict(explicit), dict.fromkeys(explicit, "--column")
    found = preset_columns(preset, headers) if preset else {}
    for canonical in CANONICAL_COLUMNS:
        if canonical in columns:
            continue
        taken = set(columns.values())
        header = found.get(canonical)
        reason = f"{preset} preset"
        if header is None or header in taken:
            header = _named(
                [h for h in headers if h not in taken], (canonical, *COLUMN_NAMES.get(canonical, ()))
            )
            reason = "usual name"
        if header is not None:
            columns[canonical], reasons[canonical] = header, reason
    if "deal_id" not in columns:
        name = _named([h for h in headers if h not in columns.values()], DEAL_NAME_NAMES)
        if name is not None:
            columns["deal_id"], reasons["deal_id"] = name, "deal names (no id column)"
    return columns, reasons


def _cells_of(table: Table) -> dict[str, list]:
    """Header -> the column's cells: typed numbers (Excel, Parquet) as they are, else the text."""
    out = {}
    for header in table:
        text = table.text(header).tolist()
        numbers = table.numbers.get(header)
        if numbers is not None:
            text = [text[i] if np.isnan(number) else float(number) for i, number in enumerate(numbers)]
        out[header] = text
    return out


def _cells(table: dict[str, list], header: str, rows: np.ndarray) -> list[str]:
    return [normalise(table[header][row]) for row in rows]


def _raw(table: dict[str, list], header: str, rows: np.ndarray) -> list[Any]:
    return [table[header][row] for row in rows]


def _number(text: str) -> float | None:
    """A loose reading of a probability cell, only to tell 0-1 from 0-100 (never a deal's value)."""
    digits = re.sub(r"[^0-9,.\-]", "", text).replace(",", ".")
    try:
        return float(digits)
    except ValueError:
        return None


def _probability_scale(header: str, cells: list[Any]) -> tuple[str | None, str]:
    """'percent' or 'fraction' for a probability column, and why; None when it is empty."""
    texts = [normalise(cell) for cell in cells if normalise(cell)]
    if not texts:
        return None, "the column is empty"
    if "%" in header or any("%" in text for text in texts):
        return "percent", "its cells or header carry %"
    numbers = [cell if isinstance(cell, int | float) else _number(normalise(cell)) for cell in cells]
    numbers = [number for number in numbers if number is not None]
    if any(number > 1 for number in numbers):
        return "percent", "values above 1"
    return "fraction", "every value lies in 0-1"


def _fits(cells: list[Any], date_format: str | None) -> bool:
    """Every filled cell reads as a date with ``date_format`` (None: ISO), as ``load_deals`` reads it."""
    for cell in cells:
        if normalise(cell):
            try:
                parse_date(cell, date_format)
            except ValueError:
                return False
    return True


def _date_format(cells: list[Any]) -> tuple[str | None, list[str]]:
    """The format of the date cells: None when they read as they are (ISO or spreadsheet dates),
    else the one usual format they all fit; and every format that fits (several: ambiguous)."""
    if _fits(cells, None):
        return None, []
    fitting = [form for form in DATE_FORMATS if _fits(cells, form)]
    return (fitting[0] if len(fitting) == 1 else None), fitting


def _named_in(name: str, names: tuple[str, ...]) -> bool:
    return header_key(name) in {header_key(known) for known in names}


def _preset_stage(name: str, preset: str | None) -> tuple[int, PresetStage] | None:
    """The preset's stage called ``name`` (by its label or an alias) and its place in the pipeline."""
    for rank, stage in enumerate(CRM_PRESETS[preset].stages if preset else ()):
        if _named_in(name, (stage.name, *stage.aliases)):
            return rank, stage
    return None


def _closed_status(name: str, preset: str | None) -> str:
    """'won', 'lost' or 'open' for a stage name: the preset's stage, else the usual closed names."""
    known = _preset_stage(name, preset)
    if known is not None:
        return known[1].status
    return next((status for status, names in CLOSED_STAGE_NAMES.items() if _named_in(name, names)), "open")


def _currencies(cells: list[str]) -> Counter:
    return Counter(cell.upper() for cell in cells if cell)


def survey_export(
    export: str | Path,
    period: str,
    as_of: dt.date | None = None,
    preset: str | None = None,
    columns: dict[str, str] | None = None,
    date_format: str | None = None,
    rates: dict[str, float] | None = None,
    base: str | None = None,
    sheet: str | None = None,
) -> Starter:
    """Decide a first scenario for ``export``: columns, stages and their rates, settings.

    Raises ``PipelineError`` when a required column cannot be found, dates fit several formats,
    amounts come in several currencies without their rates, or the export does not read with the
    settings decided (each problem names the file, row and column, as ``forecast run`` would).
    """
    export = Path(export)
    try:
        span = parse_period(period)
    except ValueError as error:
        raise ScenarioError(str(error)) from None
    if as_of is not None and not span.start <= as_of <= span.end:
        raise ScenarioError(f"as_of {as_of} is outside the period {period} ({span.start}..{span.end})")
    read = read_table(export, sheet, names=header_names(preset) + tuple(columns.values() if columns else ()))
    table = _cells_of(read)
    headers = list(table)
    rows = np.arange(len(read), dtype=np.int64)  # title, blank, total and footer rows are gone
    decided: list[str] = []
    undecided: list[str] = []
    if preset is not None:
        decided.append(f"preset: {preset} ({CRM_PRESETS[preset].crm}; --preset)")
    else:
        preset = detect_preset(headers)
        if preset is not None:
            decided.append(f"preset: {preset} ({CRM_PRESETS[preset].crm}: its standard headers are there)")
    mapping, reasons = _recognise_columns(headers, preset, dict(columns or {}))
    missing = [name for name in REQUIRED if name not in mapping]
    if missing:
        raise PipelineError(
            [
                f"{export}: no column recognised as {name}; name it with --column {name}=HEADER"
                for name in missing
            ]
            + [f"{export}: columns are: {', '.join(headers) or 'none'}"]
        )
    settings: dict[str, Any] = {} if sheet is None else {"sheet": sheet}
    reasons_of: dict[str, str] = {}  # setting -> why
    if date_format is not None:
        reasons_of["date_format"] = "--date-format"
    ids = _cells(table, mapping["deal_id"], rows)
    _amount_settings(table, rows, ids, mapping, reasons, settings, reasons_of)
    _probability_settings(table, rows, mapping, settings, reasons_of, undecided)
    _date_settings(export, table, rows, mapping, date_format, settings, reasons_of, undecided)
    _new_logo_values(table, rows, mapping, settings, decided, undecided)

    fx = None
    currencies = _currencies(_cells(table, mapping["currency"], rows)) if "currency" in mapping else None
    if currencies == Counter():
        undecided.append(f"currency column {mapping.pop('currency')!r} is empty: not used")
    elif currencies:
        fx = _fx(export, mapping["currency"], currencies, rates or {}, base)
        given = ", ".join(f"{code} {rate:g}" for code, rate in fx["rates"].items())
        decided.append(
            f"fx: base {fx['base']}" + (f", rates {given} (given)" if given else " (the only currency)")
        )

    by_stage: dict[str, set] = {}  # stage key -> its deal ids
    spelled: dict[str, str] = {}  # stage key -> the export's first spelling
    for name, deal in zip(_cells(table, mapping["stage"], rows), ids, strict=True):
        if name:
            spelled.setdefault(stage_key(name), name)
            by_stage.setdefault(stage_key(name), set()).add(deal)
    ordered = list(spelled.values())
    statuses = {name: _closed_status(name, preset) for name in ordered}
    stages = [
        Stage(
            name=name, status=statuses[name], win_rate=PLACEHOLDER_RATE if statuses[name] == "open" else None
        )
        for name in ordered
    ]
    source = PipelineSource(path=str(export.resolve()), columns=mapping, **settings)
    try:
        rates = None if fx is None else CurrencyRates(fx["base"], {**fx["rates"], fx["base"]: 1.0}, "--rate")
        deals = load_deals(source, export, stages, rates)
    except PipelineError as error:
        raise PipelineError(
            [
                *error.problems,
                f"{export}: read with the settings init decided: {_settings_text(mapping, settings)}",
            ]
        ) from None

    found = _stages_found(ordered, statuses, by_stage, deals, preset)
    for stage in found:
        if stage.status == "open" and "generic" in stage.reason:
            undecided.append(
                f"stage {stage.name!r}: no probability in the export; "
                f"win rate {stage.win_rate:g} is a generic default, edit it"
            )
    if not any(stage.status == "won" for stage in found):
        undecided.append(
            "no stage recognised as won: closed won deals, if any, count as open (mark them status: won)"
        )
    decided += [f"{key}: {_setting_text(key, settings[key])} ({why})" for key, why in reasons_of.items()]
    used = set(mapping.values())
    return Starter(
        export=export,
        period=period,
        as_of=as_of,
        preset=preset,
        columns=mapping,
        column_reasons={name: reasons[name] for name in mapping},
        unused=[header for header in headers if header not in used],
        stages=found,
        settings=settings,
        setting_reasons=reasons_of,
        fx=fx,
        decided=decided,
        undecided=undecided,
        reading=read.reading,
    )


def _amount_settings(table, rows, ids, mapping, reasons, settings, reasons_of) -> None:
    """Line items (deal ids that repeat): their line amounts summed; blank amounts: skipped."""
    if len(set(ids)) < len(ids):
        line_amount = _named(list(table), LINE_AMOUNT_NAMES)
        if line_amount is not None and reasons["amount"] != "--column":
            mapping["amount"], reasons["amount"] = line_amount, "line items' amounts, summed per deal"
        settings["aggregate"] = "sum"
        reasons_of["aggregate"] = (
            f"{len(ids) - len(set(ids))} rows repeat a deal id: line items, "
            f"{mapping['amount']!r} summed per deal"
        )
    blank = sum(1 for cell in _cells(table, mapping["amount"], rows) if not cell)
    if blank:
        settings["missing_amount"] = "skip"
        reasons_of["missing_amount"] = (
            f"{blank} row{'s' if blank > 1 else ''} without an amount left out; "
            "zero counts them as deals worth 0"
        )


def _probability_settings(table, rows, mapping, settings, reasons_of, undecided) -> None:
    """The probability column's scale, or the column left out when it is empty."""
    if "probability" not in mapping:
        return
    scale, why = _probability_scale(mapping["probability"], _raw(table, mapping["probability"], rows))
    if scale is None:
        undecided.append(f"probability column {mapping.pop('probability')!r} is empty: not used")
    else:
        settings["probability_scale"], reasons_of["probability_scale"] = scale, why


def _date_settings(export, table, rows, mapping, date_format, settings, reasons_of, undecided) -> None:
    """The close dates' format (refused when several fit, or none), and the created dates kept
    only when they read with it."""
    close = _raw(table, mapping["close_date"], rows)
    if date_format is None:
        date_format, fitting = _date_format(close)
        where = f"{export}: column {mapping['close_date']!r} (close_date)"
        if len(fitting) > 1:
            raise PipelineError(
                f"{where}: every date fits {' and '.join(repr(form) for form in fitting)}; "
                "say which with --date-format"
            )
        if not fitting and not _fits(close, None):
            raise PipelineError(
                f"{where}: the dates fit no usual format; give it with --date-format (e.g. '%d/%m/%Y')"
            )
        if date_format is not None:
            reasons_of["date_format"] = "every close date fits it, and no other"
    if date_format is not None:
        settings["date_format"] = date_format
    if "created_date" in mapping and not _fits(_raw(table, mapping["created_date"], rows), date_format):
        header = mapping.pop("created_date")
        if match_columns(table, ("created_date",), {})["created_date"] == header:  # read by its name anyway
            raise PipelineError(
                f"{export}: column {header!r} (created_date) is not written like the close dates "
                f"({date_format or 'YYYY-MM-DD'}), and both are read with pipeline.date_format: "
                "rename the column to leave it out, or write its dates like the close dates"
            )
        undecided.append(f"created dates ({header!r}) are not written like close dates: not used")


def _new_logo_values(table, rows, mapping, settings, decided, undecided) -> None:
    """A type column as new_logo: true/false cells as they are, known values mapped in
    ``pipeline.values``, anything else left out."""
    if "new_logo" not in mapping:
        return
    kinds = sorted({cell for cell in _cells(table, mapping["new_logo"], rows) if cell})
    known = {header_key(text): flag for text, flag in NEW_LOGO_VALUES.items()}
    if all(header_key(kind) in BOOLEAN_CELLS for kind in kinds):
        return
    if all(header_key(kind) in known for kind in kinds):
        settings["values"] = {"new_logo": {kind: known[header_key(kind)] for kind in kinds}}
        decided.append(
            f"new_logo from {mapping['new_logo']!r}: "
            + ", ".join(f"{kind} -> {str(known[header_key(kind)]).lower()}" for kind in kinds)
        )
        return
    undecided.append(
        f"column {mapping.pop('new_logo')!r} ({', '.join(kinds[:5])}) does not say new_logo: not used; "
        "map its values with pipeline.values.new_logo"
    )


def _fx(export: Path, header: str, counts: Counter, rates: dict[str, float], base: str | None) -> dict:
    """The fx block: the base (given, else the most common currency) and a rate for every other."""
    base = (base or counts.most_common(1)[0][0]).upper()
    others = sorted(code for code in counts if code != base)
    given = {code.upper(): rate for code, rate in rates.items()}
    lacking = [code for code in others if code not in given]
    if lacking:
        listed = ", ".join(f"{code} ({counts[code]} rows)" for code in counts)
        raise PipelineError(
            f"{export}: column {header!r} (currency) has amounts in {listed}: give the value of one unit "
            f"in {base} of each other currency, e.g. "
            + " ".join(f"--rate {code}=RATE" for code in lacking)
            + " (the base is the most common currency; --base to choose another)"
        )
    return {"base": base, "rates": {code: given[code] for code in others}}


def _stages_found(
    ordered: list[str], statuses: dict[str, str], by_stage: dict[str, set], deals, preset: str | None
) -> list[StageFound]:
    """Each stage's deals and amount, and its win rate with the reason: the mean probability of its
    deals in the export, else the preset's default, else the generic ladder by its name."""
    read = deals.attributes.get("stage", np.array([], dtype=object))
    keys = np.array([stage_key(name) for name in read], dtype=object)
    found = []
    for name in ordered:
        status = statuses[name]
        at_stage = keys == stage_key(name)
        known = _preset_stage(name, preset)
        label = known[1].name if known is not None and known[1].name != name else None
        if status != "open":
            deals_at = len(by_stage[stage_key(name)])
            found.append(StageFound(name, deals_at, None, status, None, f"closed {status}", label))
            continue
        amount = float(deals.amount[at_stage].sum())
        probabilities = deals.probability[at_stage]
        probabilities = probabilities[~np.isnan(probabilities)]
        if probabilities.size:
            rate = float(np.mean(probabilities))
            reason = f"mean of its {probabilities.size} probabilit{'ies' if probabilities.size > 1 else 'y'}"
        elif known is not None and known[1].win_rate is not None:
            rate, reason = known[1].win_rate, f"{preset} default"
        else:
            rate = next((rung for rung, names in GENERIC_LADDER.items() if _named_in(name, names)), None)
            reason = "generic default for its name"
            if rate is None:
                rate, reason = UNKNOWN_STAGE_RATE, "unknown stage: the generic ladder's lowest rate"
        rate = min(max(round(rate, 4), 0.0), 1.0)
        found.append(StageFound(name, int(at_stage.sum()), amount, status, rate, reason, label))
    order = {"open": 0, "won": 1, "lost": 2}

    def place(stage: StageFound) -> tuple:
        known = _preset_stage(stage.name, preset)
        return order[stage.status], known[0] if known is not None else 0, stage.win_rate or 0.0

    return sorted(found, key=place)


def _settings_text(mapping: dict[str, str], settings: dict[str, Any]) -> str:
    parts = [f"columns {', '.join(f'{k}={v!r}' for k, v in mapping.items())}"]
    parts += [f"{key} {value!r}" for key, value in settings.items() if key != "values"]
    return "; ".join(parts)


def _setting_text(key: str, value: Any) -> str:
    """A pipeline setting as the scenario writes it: texts of the user's quoted (a date format
    holds %, a sheet name anything)."""
    return _text(value) if key in ("date_format", "sheet") else str(value)


def _text(value: Any) -> str:
    """A YAML scalar: JSON strings and numbers are valid YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, ensure_ascii=False)


def scenario_text(starter: Starter, output: Path) -> str:
    """The commented scenario YAML for ``starter``, with the export's path relative to ``output``."""
    export = os.path.relpath(starter.export.resolve(), output.resolve().parent)
    lines = [
        f"# Written by `forecast init` from {starter.export.name}: a first scenario to edit.",
        "# Every choice below says where it came from; check the stages' win rates first.",
        f"period: {_text(starter.period)}",
    ]
    if starter.as_of is not None:
        lines.append(f"as_of: {starter.as_of.isoformat()}")
    lines += ["pipeline:", f"  path: {_text(export)}  # relative to this file"]
    if starter.preset:
        lines.append(f"  preset: {starter.preset}  # {CRM_PRESETS[starter.preset].crm}")
    lines.append("  columns:  # canonical name: the export's header")
    lines += [
        f"    {name}: {_text(header)}  # {starter.column_reasons[name]}"
        for name, header in starter.columns.items()
    ]
    for key, value in starter.settings.items():
        if key == "values":
            lines.append("  values:  # export value -> canonical value")
            for column, mapping in value.items():
                lines.append(f"    {column}:")
                lines += [f"      {_text(text)}: {_text(flag)}" for text, flag in mapping.items()]
        else:
            why = starter.setting_reasons.get(key)
            lines.append(f"  {key}: {_setting_text(key, value)}" + (f"  # {why}" if why else ""))
    if starter.fx is not None:
        lines += [
            "fx:  # every amount in the output is in the base currency",
            f"  base: {_text(starter.fx['base'])}",
        ]
        if starter.fx["rates"]:
            lines.append("  rates:  # value of one unit in the base currency")
            lines += [f"    {_text(code)}: {rate:g}" for code, rate in starter.fx["rates"].items()]
    lines.append("stages:  # as the export names them")
    for stage in starter.stages:
        label = f"{stage.label}, " if stage.label else ""
        lines.append(
            f"  - name: {_text(stage.name)}  # {label}{stage.deals} deal{'s' if stage.deals != 1 else ''}"
        )
        if stage.status == "open":
            lines.append(f"    win_rate: {stage.win_rate:g}  # {stage.reason}")
        else:
            lines.append(f"    status: {stage.status}")
    lines += [
        "# targets:  # add yours, e.g.",
        "#   - {name: quarter, metric: revenue, at_least: 1000000}",
    ]
    return "\n".join(lines) + "\n"


def check_new_output(output: Path, force: bool) -> None:
    """Refuse to replace an existing scenario unless ``force`` (checked before any work, and again
    when writing)."""
    if Path(output).exists() and not force:
        raise OutputError(f"{output}: already exists; give --force to replace it, or another -o")


def write_scenario(starter: Starter, output: Path, force: bool = False) -> Starter:
    """Write the scenario atomically after reading it back as ``forecast run`` will.

    An existing ``output`` is kept unless ``force``.
    """
    output = Path(output)
    check_new_output(output, force)
    text = scenario_text(starter, output)
    scenario = parse_scenario(text, output.resolve())
    load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages, currency_rates(scenario))
    atomic_write(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    starter.output = output
    return starter
