"""Reading a CSV, Parquet or Excel file into columns, matching its headers to canonical names, and the
checks every table of deals shares: required columns, which rows hold anything, deal ids that name
one deal."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from forecast.errors import PipelineError
from forecast.inputs.cells import normalise


def read_table(path: Path, sheet: str | None = None, what: str = "pipeline") -> tuple[dict[str, list], int]:
    """Read a CSV, Parquet or Excel file into columns of Python values.

    Returns the columns and the row number of the first data row (2 under a
    header line, as a spreadsheet shows it; 1 for Parquet, which has no header).
    """
    if not path.exists():
        raise PipelineError(f"{path}: {what} file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ","), 2
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pydict(), 1
        if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
            return _read_excel(path, sheet), 2
    except PipelineError:
        raise
    except Exception as error:  # the readers raise many types for a corrupt file
        raise PipelineError(f"{path}: cannot read the file: {error}") from None
    raise PipelineError(f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet or .xlsx")


def _read_csv(path: Path, delimiter: str) -> dict[str, list]:
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter)
    names = pacsv.open_csv(path, parse_options=parse).schema.names
    convert = pacsv.ConvertOptions(
        column_types={name: "string" for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(path, parse_options=parse, convert_options=convert).to_pydict()


def _read_excel(path: Path, sheet: str | None) -> dict[str, list]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    if sheet is not None and sheet not in workbook.sheet_names:
        raise PipelineError(f"{path}: no sheet {sheet!r}; sheets are {', '.join(workbook.sheet_names)}")
    rows = workbook.get_sheet_by_name(sheet or workbook.sheet_names[0]).to_python(skip_empty_area=True)
    if not rows:
        return {}
    header = [normalise(name) for name in rows[0]]
    return {name: [row[i] if i < len(row) else None for row in rows[1:]] for i, name in enumerate(header)}


def _canonical_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip()).casefold()


def match_columns(
    table: dict[str, list], names: tuple[str, ...], explicit: dict[str, str]
) -> dict[str, str | None]:
    """Canonical name -> the table's header: the explicit mapping, else a header equal to the name
    ignoring case, spaces and dashes; None when neither (an explicit header may still be absent)."""
    by_normal = {_canonical_name(name): name for name in table}
    return {name: explicit.get(name) or by_normal.get(_canonical_name(name)) for name in names}


def require_columns(path: Path, table: dict[str, list], headers: dict[str, str | None], hint: str) -> None:
    """Fail with one problem per canonical name whose header (``match_columns``) the table lacks.

    ``hint`` says how to map a column, e.g. ``pipeline.columns.{name}``.
    """
    missing = [name for name, header in headers.items() if header not in table]
    if missing:
        raise PipelineError(
            [
                f"{path}: missing column {name!r}; map it with {hint.format(name=name)} "
                f"(columns are: {', '.join(table) or 'none'})"
                for name in missing
            ]
        )


def filled_rows(table: dict[str, list]) -> np.ndarray:
    """Indices of the rows with any non-blank cell: spreadsheets leave ``,,,,`` lines, which are skipped."""
    filled = np.zeros(len(next(iter(table.values()), [])), dtype=bool)
    for values in table.values():
        filled |= np.array([normalise(value) != "" for value in values], dtype=bool)
    return np.flatnonzero(filled)


def deal_id_problems(deal_ids: list[str], rows: list[int], path: Path, header: str) -> dict[int, str]:
    """Position -> problem of each empty or repeated deal id (``rows``: their file rows).

    A deal id must name one deal: the random numbers, plans and joins follow it.
    """
    problems, seen = {}, {}
    for position, (row, deal) in enumerate(zip(rows, deal_ids, strict=True)):
        where = f"{path}: row {row}, column {header!r} (deal_id)"
        if not deal:
            problems[position] = f"{where}: is empty"
        elif deal in seen:
            problems[position] = f"{where}: {deal!r} duplicates row {seen[deal]}"
        else:
            seen[deal] = row
    return problems
