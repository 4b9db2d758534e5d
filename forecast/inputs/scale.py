"""The probability column's scale checked as a whole: under ``probability_scale: percent`` a column
whose every value lies in [0, 1] is fractions (an Excel cell shown as 40 % stores 0.4), and reading
them as percent would divide every weighted amount by 100. Refused, with the setting that fixes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forecast.config.scenario import PipelineSource


def scale_problems(
    columns: dict[str, np.ndarray],
    rows: list[int],
    mapping: dict[str, str],
    source: PipelineSource,
    path: Path,
) -> list[str]:
    """One problem per probability-scaled column (``probability``, ``slip``) that holds only fractions
    under ``percent``. ``columns``: canonical name -> parsed values (NaN: blank); a column of zeros
    reads the same on both scales and passes."""
    if source.probability_scale != "percent":
        return []
    problems = []
    for name, parsed in columns.items():
        cells = np.asarray(parsed, dtype=np.float64) * 100.0  # the cells as written
        filled = ~np.isnan(cells)
        if not filled.any() or cells[filled].max() == 0.0 or cells[filled].max() > 1.0:
            continue
        first = int(np.flatnonzero(filled & (cells > 0.0))[0])
        value = f"{cells[first]:g}"
        problems.append(
            f"{path}: column {mapping[name]!r} ({name}): every value lies between 0 and 1 "
            f"({value} on row {rows[first]}), which pipeline.probability_scale: percent reads as {value} %; "
            "set pipeline.probability_scale: fraction"
        )
    return problems
