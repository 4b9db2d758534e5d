"""CRM export -> ``Deals``: columns mapped, rows filtered and checked; all problems reported together,
each naming file, row and column."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.scenario import CANONICAL_COLUMNS, PipelineSource, Stage
from forecast.errors import PipelineError
from forecast.inputs.cells import (
    normalise,
    parse_amount,
    parse_bool,
    parse_count,
    parse_date,
    parse_probability,
)
from forecast.inputs.closed import LOST, WON, StageVocabulary, split_closed
from forecast.inputs.deals import Deals, RowRules, wanted_values
from forecast.inputs.fx import CurrencyRates, convert
from forecast.inputs.line_items import aggregate_lines, repeated_ids_wait, unresolved
from forecast.inputs.scale import scale_problems
from forecast.inputs.tables import deal_id_problems, filled_rows, match_columns, read_table, require_columns
from forecast.inputs.values import map_values, missing_amounts

REQUIRED = ("deal_id", "amount", "close_date")
ATTRIBUTES = ("owner", "region", "sector", "product", "forecast_category")


def _filter_text(value: Any, boolean: bool) -> str:
    """A cell as ``pipeline.filter`` compares it; new_logo cells read as true/false, like ``Deals.column``."""
    if boolean:
        with contextlib.suppress(ValueError):  # the row check reports a bad cell if its row is kept
            return normalise(parse_bool(value))
    return normalise(value)


def _map_columns(table: dict[str, list], source: PipelineSource, path: Path) -> dict[str, str]:
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

    ``fx`` (``fx.currency_rates`` of the scenario) converts a currency column into the base currency.
    """
    table, first_row = read_table(path, source.sheet)
    mapping = _map_columns(table, source, path)
    required = REQUIRED + (("stage",) if stages is not None else ())
    require_columns(path, table, {name: mapping.get(name) for name in required}, "pipeline.columns.{name}")
    raw = map_values({canonical: table[name] for canonical, name in mapping.items()}, source, path)
    kept = filled_rows(table)
    for name, wanted in source.filter.items():
        values = raw.get(name, table.get(name))
        if values is None:
            raise PipelineError(
                f"{path}: pipeline.filter.{name}: no such column (columns are: {', '.join(table)})"
            )
        boolean = name == "new_logo" or name == mapping.get("new_logo")
        texts = np.array([_filter_text(values[row], boolean) for row in kept], dtype=object)
        kept = kept[np.isin(texts, wanted_values(wanted))]
    raw, kept, blanks = missing_amounts(raw, kept, first_row, source, path)
    if kept.size == 0:
        what = " after pipeline.filter" if source.filter else ""
        raise PipelineError(f"{path}: the pipeline has no deals{what}")

    vocabulary = StageVocabulary(stages)
    percent = source.probability_scale == "percent"
    n = kept.size
    deal_id = np.array([normalise(raw["deal_id"][row]) for row in kept], dtype=object)
    rows = [int(row) + first_row for row in kept]
    id_problems, waiting = repeated_ids_wait(
        deal_id_problems(list(deal_id), rows, path, mapping["deal_id"]), deal_id, source
    )
    amount = np.zeros(n)
    close_date = np.zeros(n, dtype="datetime64[D]")
    probability = np.full(n, math.nan)
    slip = np.full(n, math.nan)
    stage_index = np.full(n, -1, dtype=np.int64)
    new_logo = np.zeros(n, dtype=bool)
    push_count = np.zeros(n, dtype=np.int64)
    created = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    problems: list[str] = []

    for out, row in enumerate(kept):
        where = f"{path}: row {rows[out]}"

        def check(column: str, parse, *args, row=row, where=where):
            try:
                return parse(raw[column][row], *args)
            except ValueError as error:
                problems.append(f"{where}, column {mapping[column]!r} ({column}): {error}")
                return None

        if out in id_problems:
            problems.append(id_problems[out])
        amount[out] = check("amount", parse_amount) or 0.0
        closes = check("close_date", parse_date, source.date_format)
        close_date[out] = np.datetime64(closes or dt.date(1970, 1, 1), "D")
        parsed = check("probability", parse_probability, percent) if "probability" in raw else math.nan
        probability[out] = math.nan if parsed is None else parsed
        if "slip" in raw:  # the deal's own slip chance, on the probability's scale
            parsed_slip = check("slip", parse_probability, percent)
            slip[out] = math.nan if parsed_slip is None else parsed_slip
        if "new_logo" in raw:
            new_logo[out] = bool(check("new_logo", parse_bool))
        if "push_count" in raw:
            push_count[out] = check("push_count", parse_count) or 0
        if "created_date" in raw and normalise(raw["created_date"][row]):
            created[out] = check("created_date", parse_date, source.date_format) or np.datetime64("NaT")
        if "stage" in raw:  # closed stages are recognised with or without the scenario's stages
            name = normalise(raw["stage"][row])
            index = vocabulary.index(name)
            if index is not None:
                stage_index[out] = index
            elif stages is not None:
                problems.append(
                    f"{where}, column {mapping['stage']!r} (stage): "
                    f"unknown stage {name!r}; stages are {vocabulary.known()}"
                )
        closed = stage_index[out] in (WON, LOST)
        if stages is None and not closed and parsed is not None and math.isnan(parsed):
            column = f", column {mapping['probability']!r} (probability)" if "probability" in raw else ""
            problems.append(
                f"{where}{column}: no probability and the scenario has no stages to fall back on; "
                "expected a probability, or stages in the scenario"
            )
    currency_cells = [raw["currency"][row] for row in kept] if "currency" in raw else None
    amount, currency, converted, fx_problems = convert(
        amount, currency_cells, fx, rows, path, mapping.get("currency")
    )
    problems += fx_problems
    scaled = {name: values for name, values in (("probability", probability), ("slip", slip)) if name in raw}
    problems += scale_problems(scaled, rows, mapping, source, path)
    if problems:
        hints = [blanks["hint"]] if blanks["hint"] else []
        raise PipelineError(problems + unresolved(waiting, source, path) + hints)

    attributes = {}
    for name in (*ATTRIBUTES, "stage"):
        if name in raw:
            attributes[name] = np.array([normalise(raw[name][row]) for row in kept], dtype=object)
    for name, values in table.items():
        if name not in attributes and name not in mapping.values():
            attributes[name] = np.array([normalise(values[row]) for row in kept], dtype=object)
    deals = Deals(
        deal_id=deal_id,
        amount=amount,
        close_date=close_date,
        probability=probability,
        stage_index=stage_index,
        new_logo=new_logo,
        slip=slip,
        push_count=push_count,
        created=created,
        attributes=attributes,
        rows=kept.astype(np.int64) + first_row,
        source=path,
        aliases={
            export: canonical
            for canonical, export in mapping.items()
            if export != canonical and (canonical in attributes or canonical in ("deal_id", "new_logo"))
        },
        rules=RowRules(
            skipped=blanks["skipped"],
            zeroed=blanks["zeroed"],
            converted=converted,
            currency=currency,
            probability=(mapping["probability"], "probability" in source.columns)
            if "probability" in raw
            else None,
        ),
    )
    return split_closed(aggregate_lines(deals, source, mapping, path), vocabulary)
