"""What an export's cells mean before they are parsed: ``pipeline.values`` maps export values onto
canonical ones (``New Business`` -> true), and ``pipeline.missing_amount`` decides a blank amount."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.scenario import PipelineSource
from forecast.errors import PipelineError
from forecast.inputs.cells import normalise


def _key(value: Any) -> str:
    """Export values match as cells compare, case ignored: 'New Business' meets 'new business '."""
    return normalise(value).casefold()


def map_values(raw: dict[str, list], source: PipelineSource, path: Path) -> dict[str, list]:
    """The canonical columns' cells with ``pipeline.values`` applied (a cell it does not list is kept)."""
    missing = [name for name in source.values if name not in raw]
    if missing:
        raise PipelineError(
            [
                f"{path}: pipeline.values.{name}: the file has no {name} column "
                f"(mapped columns: {', '.join(raw)})"
                for name in missing
            ]
        )
    mapped = dict(raw)
    for name, table in source.values.items():
        lookup = {_key(export): canonical for export, canonical in table.items()}
        mapped[name] = [lookup.get(_key(cell), cell) for cell in raw[name]]
    return mapped


def blank_amounts(amounts: list, kept: np.ndarray) -> np.ndarray:
    """Positions in ``kept`` of the rows whose amount cell is blank."""
    blank = [position for position, row in enumerate(kept) if normalise(amounts[row]) == ""]
    return np.array(blank, dtype=np.int64)


def missing_amounts(
    raw: dict[str, list], kept: np.ndarray, first_row: int, source: PipelineSource, path: Path
) -> tuple[dict[str, list], np.ndarray, dict[str, Any]]:
    """``pipeline.missing_amount`` applied to the kept rows: ``skip`` leaves blank-amount rows out,
    ``zero`` reads them as 0, ``error`` keeps them for the cell check (and adds one line naming the
    setting). Returns the cells, the rows kept and ``{"skipped" | "zeroed": file rows, "hint": line}``."""
    blank = blank_amounts(raw["amount"], kept)
    rows = tuple(int(row) + first_row for row in kept[blank])
    report: dict[str, Any] = {"skipped": (), "zeroed": (), "hint": None}
    if blank.size == 0:
        return raw, kept, report
    if source.missing_amount == "skip":
        report["skipped"] = rows
        return raw, np.delete(kept, blank), report
    if source.missing_amount == "zero":
        amounts = list(raw["amount"])
        for row in kept[blank]:
            amounts[row] = 0.0
        report["zeroed"] = rows
        return {**raw, "amount": amounts}, kept, report
    listed = ", ".join(str(row) for row in rows[:10]) + (", ..." if len(rows) > 10 else "")
    have = "rows have" if len(rows) > 1 else "row has"
    report["hint"] = (
        f"{path}: {len(rows)} {have} no amount (file rows {listed}); set pipeline.missing_amount: "
        "skip to leave them out, or zero to read them as 0"
    )
    return raw, kept, report
