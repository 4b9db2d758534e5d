"""Reading a CSV, Parquet or Excel file into whole columns of text cells, each data row with its file
row number, matching its headers to canonical names, and the checks every table of deals shares:
required columns and deal ids that name one deal."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forecast.errors import PipelineError
from forecast.inputs.cells import normalise
from forecast.inputs.dialect import (
    TOTAL_LABEL,
    Reading,
    canonical_name,
    decode,
    find_layout,
    footer_start,
    head_records,
    header_index,
    is_total_label,
    lone_text,
)


def arrow_mask(mask: np.ndarray) -> pa.BooleanArray:
    """A numpy bool array as an arrow one, equal to ``pa.array(mask)`` but built from its bits:
    pyarrow's numpy conversion imports ``numpy.ma`` (about 60 ms of every command's start-up)."""
    mask = np.asarray(mask, dtype=bool)
    bits = pa.py_buffer(np.packbits(mask, bitorder="little"))
    return pa.BooleanArray.from_buffers(pa.bool_(), mask.size, [None, bits])


FEW_SAMPLE = 4096  # cells ``Table.text`` looks at before encoding a column of few values


@dataclass
class Table:
    """A table's data rows as columns of stripped text cells ('' where blank).

    ``numbers`` holds, for files whose cells are typed (Excel, Parquet), each column's numeric cells
    as float64 (NaN where the cell is not a number): they are read as they are, not re-parsed.
    """

    columns: dict[str, pa.Array]  # header -> string array
    rows: np.ndarray  # int64: the file row of each data row, as a spreadsheet shows it
    reading: Reading
    numbers: dict[str, np.ndarray] = field(default_factory=dict)

    def __contains__(self, header: object) -> bool:
        return header in self.columns

    def __iter__(self):
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, mask: np.ndarray) -> Table:
        """The rows where ``mask`` (bool, one per row) is true; the reading is shared."""
        if mask.all():
            return self
        selected = arrow_mask(mask)
        return Table(
            {name: values.filter(selected) for name, values in self.columns.items()},
            self.rows[mask],
            self.reading,
            {name: values[mask] for name, values in self.numbers.items()},
        )

    def text(self, header: str, few: bool = True) -> np.ndarray:
        """A column's cells as an array of str objects; ``few``: cells that repeat share one object
        (much faster for a column of few values, such as a stage or region)."""
        cells = self.columns[header]
        head = cells.slice(0, FEW_SAMPLE)
        if few and len(pc.unique(head)) <= len(head) // 4:  # a column of many values is not encoded
            encoded = pc.dictionary_encode(cells)
            if len(encoded.dictionary) <= len(cells) // 4:
                distinct = np.array(encoded.dictionary.to_pylist(), dtype=object)
                return distinct[encoded.indices.to_numpy(zero_copy_only=False)]
        return cells.to_numpy(zero_copy_only=False)


def read_table(
    path: Path,
    sheet: str | None = None,
    what: str = "pipeline",
    names: Iterable[str] = (),
    dialect: dict | None = None,
) -> Table:
    """Read a CSV, Parquet or Excel file: the header row found below any title rows (by the
    recognised column ``names``), blank rows, total rows and a report footer skipped.

    ``dialect``: ``delimiter``, ``encoding``, ``header_row`` as the pipeline sets them (None: detected).
    """
    if not path.exists():
        raise PipelineError(f"{path}: {what} file not found")
    dialect = dialect or {}
    recognised = {canonical_name(name) for name in names}
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path, recognised, dialect)
        if suffix in (".parquet", ".pq"):
            return _read_parquet(path)
        if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
            return _read_excel(path, sheet, recognised, dialect.get("header_row"))
    except PipelineError:
        raise
    except Exception as error:  # the readers raise many types for a corrupt file
        raise PipelineError(f"{path}: cannot read the file: {error}") from None
    raise PipelineError(f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet or .xlsx")


def _read_csv(path: Path, names: set[str], dialect: dict) -> Table:
    import pyarrow.csv as pacsv

    data = path.read_bytes()
    text, encoding = decode(data, path, dialect.get("encoding"))
    delimiter = dialect.get("delimiter") or ("\t" if path.suffix.lower() == ".tsv" else None)
    layout = find_layout(text, path, names, delimiter, dialect.get("header_row"))
    reading = Reading(
        path, "csv", encoding=encoding, delimiter=layout.delimiter, header_row=layout.header + 1
    )
    reading.skip("title", range(1, layout.header + 1))
    header = head_records(text[layout.offset : layout.offset + (1 << 16)], layout.delimiter, 1)
    width = len(header[0][1]) if header else 0
    end, footer_rows, texty = footer_start(text, layout.delimiter, width)
    if encoding == "utf-8":  # the file's own bytes: no copy re-encoded
        body = data[len(text[: layout.offset].encode()) : len(data) - len(text[end:].encode())]
    else:
        body = text[layout.offset : end].encode("utf-8")
    if not re.search(rb"\S", body[:65536]) and not body.strip():
        return Table({}, np.zeros(0, np.int64), reading)
    parse = pacsv.ParseOptions(delimiter=layout.delimiter, ignore_empty_lines=False)
    headers = header[0][1]
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in headers},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        table = pacsv.read_csv(pa.py_buffer(body), parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid:
        try:
            table = pacsv.read_csv(
                pa.py_buffer(body),
                parse_options=pacsv.ParseOptions(
                    delimiter=layout.delimiter, ignore_empty_lines=False, newlines_in_values=True
                ),
                convert_options=convert,
            )
        except pa.ArrowInvalid:
            raise PipelineError(
                _ragged_row(body.decode("utf-8"), path, layout.delimiter, layout.header)
            ) from None
    first = layout.header + 2
    rows = np.arange(first, first + table.num_rows, dtype=np.int64)
    if footer_rows and texty:
        reading.skip("footer", range(first + table.num_rows, first + table.num_rows + footer_rows))
    elif footer_rows:
        reading.skip("blank", range(first + table.num_rows, first + table.num_rows + footer_rows))
    columns = {
        name.strip(): pc.utf8_trim_whitespace(table.column(i).combine_chunks())
        for i, name in enumerate(table.column_names)
    }
    return _data_rows(Table(columns, rows, reading))


def _ragged_row(text: str, path: Path, delimiter: str, header: int) -> str:
    """The message for the first record whose width differs from the header's."""
    import csv
    import io

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    width = len(next(reader))
    for number, fields in enumerate(reader, start=header + 2):
        if len(fields) != width:
            return (
                f"{path}: row {number}: {len(fields)} fields where the header has {width} "
                f"(delimiter {delimiter!r}); quote cells that hold it, or set pipeline.delimiter"
            )
    return f"{path}: cannot read the file as CSV with delimiter {delimiter!r}; set pipeline.delimiter"


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    columns, numbers = {}, {}
    for name in table.column_names:
        values = table.column(name).combine_chunks()
        if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
            numbers[name] = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            columns[name] = pc.utf8_trim_whitespace(pc.fill_null(values.cast(pa.string()), ""))
        else:
            columns[name] = pa.array([normalise(value) for value in values.to_pylist()], pa.string())
    reading = Reading(path, "parquet")
    return _data_rows(Table(columns, np.arange(1, table.num_rows + 1, dtype=np.int64), reading, numbers))


def _read_excel(path: Path, sheet: str | None, names: set[str], header_row: int | None) -> Table:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    if sheet is not None and sheet not in workbook.sheet_names:
        raise PipelineError(f"{path}: no sheet {sheet!r}; sheets are {', '.join(workbook.sheet_names)}")
    grid = workbook.get_sheet_by_name(sheet or workbook.sheet_names[0]).to_python(skip_empty_area=False)
    reading = Reading(path, "excel")
    if not grid:
        return Table({}, np.zeros(0, np.int64), reading)
    if header_row is not None and header_row > len(grid):
        raise PipelineError(
            f"{path}: pipeline.header_row: {header_row} is beyond the sheet's {len(grid)} rows"
        )
    header = header_row - 1 if header_row is not None else header_index(grid[:60], names)
    reading.header_row = header + 1
    reading.skip("title", [row + 1 for row in range(header) if any(normalise(c) for c in grid[row])])
    body = grid[header + 1 :]
    width = len(grid[header])
    end = len(body)
    while end and _excel_footer(body[end - 1], width):
        end -= 1
    reading.skip(
        "footer" if any(_filled(r) for r in body[end:]) else "blank",
        range(header + 2 + end, header + 2 + len(body)),
    )
    body = body[:end]
    columns, numbers = {}, {}
    for i, cell in enumerate(grid[header]):
        name = normalise(cell)
        if not name and not any(normalise(row[i]) for row in body):
            continue
        cells = [row[i] if i < len(row) else None for row in body]
        columns[name] = pa.array([normalise(value) for value in cells], pa.string())
        numbers[name] = np.array(
            [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in cells]
        )
    rows = np.arange(header + 2, header + 2 + len(body), dtype=np.int64)
    return _data_rows(Table(columns, rows, reading, numbers))


def _filled(row: list) -> int:
    return sum(normalise(cell) != "" for cell in row)


def _excel_footer(row: list, width: int) -> bool:
    filled = [normalise(cell) for cell in row if normalise(cell)]
    return not filled or is_total_label(filled[0]) or lone_text([normalise(cell) for cell in row], width)


def _data_rows(table: Table) -> Table:
    """Drop the blank rows (spreadsheets leave ``,,,,`` lines) and total rows (a first non-blank cell
    such as 'Total' or 'Grand Totals (21 records)'), recording both in the reading."""
    if not table.columns or not len(table.rows):
        return table
    first = None
    for values in table.columns.values():
        first = values if first is None else pc.if_else(pc.equal(first, ""), values, first)
    blank = pc.equal(first, "").to_numpy(zero_copy_only=False)
    total = pc.match_substring_regex(first, TOTAL_LABEL).to_numpy(zero_copy_only=False)
    drop = blank | total
    if not drop.any():
        return table
    table.reading.skip("blank", table.rows[blank].tolist())
    table.reading.skip("total", table.rows[total & ~blank].tolist())
    return table.keep(~drop)


def match_columns(
    table: Iterable[str], names: tuple[str, ...], explicit: dict[str, str]
) -> dict[str, str | None]:
    """Canonical name -> the table's header: the explicit mapping, else a header equal to the name
    ignoring case, spaces and dashes; None when neither (an explicit header may still be absent)."""
    by_normal = {canonical_name(name): name for name in table}
    return {name: explicit.get(name) or by_normal.get(canonical_name(name)) for name in names}


def require_columns(path: Path, table: Table, headers: dict[str, str | None], hint: str) -> None:
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


def deal_id_problems(deal_ids: pa.Array, rows: np.ndarray, path: Path, header: str) -> dict[int, str]:
    """Position -> problem of each empty or repeated deal id (``rows``: their file rows).

    A deal id must name one deal: the random numbers, plans and joins follow it.
    """
    encoded = pc.dictionary_encode(deal_ids)
    empty = pc.equal(deal_ids, "").to_numpy(zero_copy_only=False)
    if len(encoded.dictionary) == len(deal_ids) and not empty.any():
        return {}
    index = encoded.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(index, return_index=True)
    firsts = first[index]
    problems = {}
    for position in np.flatnonzero(empty | (firsts != np.arange(len(index)))):
        where = f"{path}: row {rows[position]}, column {header!r} (deal_id)"
        deal = deal_ids[int(position)].as_py()
        problems[int(position)] = (
            f"{where}: is empty" if not deal else f"{where}: {deal!r} duplicates row {rows[firsts[position]]}"
        )
    return problems
