"""CRM export -> ``Deals``: columns mapped, rows filtered and checked; all problems reported together,
each naming file, row and column."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from forecast.config.scenario import CANONICAL_COLUMNS, PipelineSource, Stage
from forecast.errors import PipelineError
from forecast.inputs import columns as parse
from forecast.inputs.cells import normalise, parse_bool
from forecast.inputs.closed import LOST, WON, StageVocabulary, split_closed
from forecast.inputs.deals import Deals, RowRules, wanted_values
from forecast.inputs.fx import CurrencyRates, convert
from forecast.inputs.line_items import aggregate_lines, repeated_ids_wait, unresolved
from forecast.inputs.presets import header_names, with_preset
from forecast.inputs.scale import scale_problems
from forecast.inputs.tables import Table, deal_id_problems, match_columns, read_table, require_columns
from forecast.inputs.values import map_values, missing_amounts

REQUIRED = ("deal_id", "amount", "close_date")
ATTRIBUTES = ("owner", "region", "sector", "product", "forecast_category")


NUMBERS = ("amount", "probability", "slip", "push_count")


def _filter_text(value: str, boolean: bool) -> str:
    """A cell as ``pipeline.filter`` compares it; new_logo cells read as true/false, like ``Deals.column``."""
    if boolean:
        with contextlib.suppress(ValueError):  # the row check reports a bad cell if its row is kept
            return normalise(parse_bool(value))
    return value


def _map_columns(table: Table, source: PipelineSource, path: Path) -> dict[str, str]:
    """Canonical name -> the file's column: explicit mapping first, then a name match."""
    problems = [
        f"{path}: column {wanted!r} (pipeline.columns.{canonical}) is not in the file; "
        f"columns are: {', '.join(table)}"
        for canonical, wanted in source.columns.items()
        if wanted not in table
    ]
    if problems:
        raise PipelineError(problems)
    matched = match_columns(table, CANONICAL_COLUMNS, source.columns)
    return {canonical: header for canonical, header in matched.items() if header is not None}


def load_deals(
    source: PipelineSource, path: Path, stages: list[Stage] | None, fx: CurrencyRates | None = None
) -> Deals:
    """Read, map, filter and check the pipeline; raise ``PipelineError`` listing every bad row.

    In phases, each over whole columns: read the file, map its columns (the preset's under the
    scenario's) and their values, filter its rows, apply ``missing_amount``, parse the columns,
    convert currencies (``fx``: ``fx.currency_rates`` of the scenario), check, build the ``Deals``,
    add up line items, and split the closed rows from the open deals.
    """
    names = (*CANONICAL_COLUMNS, *source.columns.values(), *source.filter, *header_names(source.preset))
    dialect = {"delimiter": source.delimiter, "encoding": source.encoding, "header_row": source.header_row}
    table = read_table(path, source.sheet, names=names, dialect=dialect)
    source = with_preset(source, list(table))
    mapping = _map_columns(table, source, path)
    required = REQUIRED + (("stage",) if stages is not None else ())
    require_columns(path, table, {name: mapping.get(name) for name in required}, "pipeline.columns.{name}")
    table = map_values(table, mapping, source, path)
    table = _filter_rows(table, source, mapping, path)
    table, blanks = missing_amounts(table, mapping["amount"], source, path)
    if len(table) == 0:
        raise PipelineError(
            f"{path}: the pipeline has no deals with an amount (pipeline.missing_amount: skip)"
        )
    vocabulary = StageVocabulary(stages)
    parsed, problems, waiting = _parse_columns(table, source, mapping, vocabulary, path)
    rows = table.rows.tolist()
    currency_cells, header, cell_problems = _currency_cells(
        table, mapping, parsed.pop("amount_currency"), fx, path
    )
    parsed["amount"], currency, converted, fx_problems = convert(
        parsed["amount"], currency_cells, fx, rows, path, header
    )
    fx_problems = cell_problems + fx_problems
    scaled = {name: parsed[name] for name in ("probability", "slip") if name in mapping}
    later = fx_problems + scale_problems(scaled, rows, mapping, source, path)
    if problems or later:
        hints = [blanks["hint"]] if blanks["hint"] else []
        ordered = [message for _, message in sorted(problems, key=lambda item: item[0])]
        raise PipelineError(ordered + later + unresolved(waiting, source, path) + hints)
    rules = RowRules(
        skipped=blanks["skipped"],
        zeroed=blanks["zeroed"],
        converted=converted,
        currency=currency,
        probability=(mapping["probability"], "probability" in source.columns)
        if "probability" in mapping
        else None,
    )
    deals = _deals(table, mapping, parsed, path, rules)
    if waiting:  # repeated deal ids: line items, summed, or the error they are
        deals = aggregate_lines(deals, source, mapping, path)
    return split_closed(deals, vocabulary)


def _currency_cells(
    table: Table, mapping: dict[str, str], in_cells: np.ndarray, fx: CurrencyRates | None, path: Path
) -> tuple[list | None, str | None, list[str]]:
    """Each row's currency for ``convert``, and the column it is read from: the currency column, else
    the code or symbol the amount cells carry (``$`` USD, ``€`` EUR, ``£`` GBP, ...) when they name
    several and ``fx`` converts them. A cell's currency that contradicts the currency column, and
    several currencies in the amounts without ``fx``, are problems (they would be added up)."""
    named = in_cells != ""
    amount = mapping["amount"]
    if "currency" in mapping:
        column = np.array(
            [str(code).strip().upper() for code in table.text(mapping["currency"])], dtype=object
        )
        clash = np.flatnonzero(named & (column != "") & (in_cells != column))
        problems = [
            f"{path}: row {table.rows[i]}, column {amount!r} (amount): the amount is in {in_cells[i]} but "
            f"column {mapping['currency']!r} (currency) says {column[i]}"
            for i in clash
        ]
        return column.tolist(), mapping["currency"], problems
    several = list(dict.fromkeys(code for code in in_cells if code))
    if len(several) < 2:
        return None, None, []
    if fx is None:
        return (
            None,
            None,
            [
                f"{path}: column {amount!r} (amount): amounts in several currencies ({', '.join(several)}) "
                f"would be added up; give fx: {{base: {several[0]}, rates: {{{several[1]}: ...}}}} "
                "(a unit's value in the base)"
            ],
        )
    return in_cells.tolist(), amount, []


def _filter_rows(table: Table, source: PipelineSource, mapping: dict[str, str], path: Path) -> Table:
    """The rows ``pipeline.filter`` keeps; none left is an error."""
    keep = np.ones(len(table), dtype=bool)
    for name, wanted in source.filter.items():
        header = mapping.get(name, name)
        if header not in table:
            raise PipelineError(
                f"{path}: pipeline.filter.{name}: no such column (columns are: {', '.join(table)})"
            )
        boolean = name == "new_logo" or name == mapping.get("new_logo")
        distinct, index, _ = parse.by_value(
            table.columns[header], lambda text, boolean=boolean: _filter_text(text, boolean), ""
        )
        keep &= np.isin(np.array(distinct, dtype=object), wanted_values(wanted))[index]
    if not keep.any():
        what = " after pipeline.filter" if source.filter else ""
        raise PipelineError(f"{path}: the pipeline has no deals{what}")
    return table.keep(keep)


def _parse_columns(
    table: Table, source: PipelineSource, mapping: dict[str, str], vocabulary: StageVocabulary, path: Path
) -> tuple[dict[str, np.ndarray], list[tuple[tuple[int, int], str]], dict[int, str]]:
    """Each mapped column parsed whole: canonical name -> array, every problem keyed by
    (position, column order) so they read row by row, and the repeated deal ids that wait for
    ``aggregate_lines`` (line items)."""
    rows = table.rows
    cells = {name: table.columns[header] for name, header in mapping.items()}
    problems: list[tuple[tuple[int, int], str]] = []

    def where(name: str, position: int) -> str:
        return f"{path}: row {rows[position]}, column {mapping[name]!r} ({name}):"

    def report(order: int, name: str, found: dict) -> None:
        problems.extend(
            ((int(position), order), f"{where(name, position)} {message}")
            for position, message in found.items()
        )

    id_problems, waiting = repeated_ids_wait(
        deal_id_problems(cells["deal_id"], rows, path, mapping["deal_id"]),
        table.text(mapping["deal_id"], few=False),
        source,
    )
    for position, message in id_problems.items():
        problems.append(((position, 0), message))
    numbers = {
        name: parse.split_numbers(cells[name], table.numbers.get(mapping[name]))
        for name in NUMBERS
        if name in cells
    }
    counted = np.ones(len(table), dtype=bool)
    decimal = parse.decide_decimal(
        [(name, split, counted) for name, split in numbers.items()], where, source.decimal
    )
    table.reading.decimal = decimal
    table.reading.decimal_source = "pipeline.decimal" if source.decimal else "detected"
    setting = "pipeline.decimal" if source.decimal else "detected"
    percent = source.probability_scale == "percent"
    n = len(table)
    parsed: dict[str, np.ndarray] = {}
    parsed["amount"], found = parse.amounts(numbers["amount"], decimal, setting)
    report(1, "amount", found)
    parsed["amount_currency"] = numbers["amount"].currency  # '' where the cell names none
    date_columns = [name for name in ("close_date", "created_date") if name in cells]
    order = parse.date_order(
        [cells[name] for name in date_columns],
        source.date_format,
        lambda column, position: where(date_columns[column], position),
        "pipeline.date_format",
    )
    parsed["close_date"], found = parse.dates(
        cells["close_date"], source.date_format, order, "pipeline.date_format"
    )
    report(2, "close_date", found)
    for number, name in ((3, "probability"), (4, "slip")):
        parsed[name] = np.full(n, np.nan)
        if name in numbers:
            parsed[name], found = parse.probabilities(numbers[name], decimal, setting, percent)
            report(number, name, found)
    parsed["new_logo"] = np.zeros(n, dtype=bool)
    if "new_logo" in cells:
        parsed["new_logo"], found = parse.booleans(cells["new_logo"])
        report(5, "new_logo", found)
    parsed["push_count"] = np.zeros(n, dtype=np.int64)
    if "push_count" in numbers:
        parsed["push_count"], found = parse.counts(numbers["push_count"], decimal, setting)
        report(6, "push_count", found)
    parsed["created"] = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if "created_date" in cells:
        parsed["created"], found = parse.dates(
            cells["created_date"], source.date_format, order, "pipeline.date_format", blank=True
        )
        report(7, "created_date", found)
    parsed["stage_index"] = np.full(n, -1, dtype=np.int64)
    listed = vocabulary.listed
    if "stage" in cells:  # closed stages are recognised with or without the scenario's stages

        def stage_index(name: str) -> int:
            index = vocabulary.index(name)
            if index is None and listed:
                raise ValueError(f"unknown stage {name!r}; stages are {vocabulary.known()}")
            return -1 if index is None else index

        distinct, index, found = parse.by_value(cells["stage"], stage_index, -1)
        parsed["stage_index"] = np.array(distinct, dtype=np.int64)[index]
        report(8, "stage", found)
    if not listed:
        has = "probability" in cells
        missing = np.isnan(parsed["probability"]) & ~np.isin(parsed["stage_index"], (WON, LOST))
        if has:
            missing &= pc.equal(cells["probability"], "").to_numpy(zero_copy_only=False)
        column = f", column {mapping['probability']!r} (probability)" if has else ""
        for position in np.flatnonzero(missing):
            problems.append(
                (
                    (int(position), 9),
                    f"{path}: row {rows[position]}{column}: no probability and the scenario has no "
                    "stages to fall back on; expected a probability, or stages in the scenario",
                )
            )
    return parsed, problems, waiting


def _deals(
    table: Table, mapping: dict[str, str], parsed: dict[str, np.ndarray], path: Path, rules: RowRules
) -> Deals:
    """The checked columns as ``Deals``; every column the mapping does not take kept as an attribute."""
    attributes = {name: table.text(mapping[name]) for name in (*ATTRIBUTES, "stage") if name in mapping}
    for name in table:
        if name not in attributes and name not in mapping.values():
            attributes[name] = table.text(name)
    return Deals(
        deal_id=table.text(mapping["deal_id"], few=False),
        amount=parsed["amount"],
        close_date=parsed["close_date"],
        probability=parsed["probability"],
        stage_index=parsed["stage_index"],
        new_logo=parsed["new_logo"],
        slip=parsed["slip"],
        push_count=parsed["push_count"],
        created=parsed["created"],
        attributes=attributes,
        rows=table.rows,
        source=path,
        aliases={
            export: canonical
            for canonical, export in mapping.items()
            if export != canonical and (canonical in attributes or canonical in ("deal_id", "new_logo"))
        },
        reading=table.reading,
        rules=rules,
    )
