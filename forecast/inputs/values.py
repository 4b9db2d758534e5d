"""What an export's cells mean before they are parsed: ``pipeline.values`` maps export values onto
canonical ones (``New Business`` -> true), and ``pipeline.missing_amount`` decides a blank amount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forecast.config.scenario import PipelineSource
from forecast.errors import PipelineError
from forecast.inputs.cells import normalise
from forecast.inputs.tables import Table, arrow_mask


def _key(value: Any) -> str:
    """Export values match as cells compare, case ignored: 'New Business' meets 'new business '."""
    return normalise(value).casefold()


def map_values(table: Table, mapping: dict[str, str], source: PipelineSource, path: Path) -> Table:
    """The table with ``pipeline.values`` applied to its mapped columns (a cell it does not list is
    kept); each distinct cell is looked up once."""
    missing = [name for name in source.values if name not in mapping]
    if missing:
        raise PipelineError(
            [
                f"{path}: pipeline.values.{name}: the file has no {name} column "
                f"(mapped columns: {', '.join(mapping)})"
                for name in missing
            ]
        )
    if not source.values:
        return table
    columns = dict(table.columns)
    numbers = dict(table.numbers)
    for name, values in source.values.items():
        header = mapping[name]
        lookup = {_key(export): normalise(canonical) for export, canonical in values.items()}
        encoded = pc.dictionary_encode(columns[header])
        distinct = [lookup.get(_key(cell), cell) for cell in encoded.dictionary.to_pylist()]
        columns[header] = pa.array(distinct, type=pa.string()).take(encoded.indices)
        numbers.pop(header, None)  # a mapped cell is read from its new text
    return Table(columns, table.rows, table.reading, numbers)


def missing_amounts(
    table: Table, header: str, source: PipelineSource, path: Path
) -> tuple[Table, dict[str, Any]]:
    """``pipeline.missing_amount`` applied: ``skip`` leaves blank-amount rows out, ``zero`` reads
    them as 0, ``error`` keeps them for the cell check (and adds one line naming the setting).
    Returns the table and ``{"skipped" | "zeroed": file rows, "hint": line}``."""
    blank = pc.equal(table.columns[header], "").to_numpy(zero_copy_only=False)
    if header in table.numbers:
        blank &= np.isnan(table.numbers[header])
    rows = tuple(int(row) for row in table.rows[blank])
    report: dict[str, Any] = {"skipped": (), "zeroed": (), "hint": None}
    if not rows:
        return table, report
    if source.missing_amount == "skip":
        report["skipped"] = rows
        return table.keep(~blank), report
    if source.missing_amount == "zero":
        report["zeroed"] = rows
        cells = pc.if_else(arrow_mask(blank), "0", table.columns[header])
        numbers = dict(table.numbers)
        if header in numbers:
            numbers[header] = np.where(blank, 0.0, numbers[header])
        return Table({**table.columns, header: cells}, table.rows, table.reading, numbers), report
    listed = ", ".join(str(row) for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
    have = "rows have" if len(rows) > 1 else "row has"
    report["hint"] = (
        f"{path}: {len(rows)} {have} no amount (file rows {listed}); set pipeline.missing_amount: "
        "skip to leave them out, or zero to read them as 0"
    )
    return table, report
