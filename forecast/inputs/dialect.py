"""How an export is written: its text encoding, CSV delimiter, header row below title rows, and the
report footers and total rows that follow the data. Decided from the file's own evidence; what the
file leaves open is an error naming the setting that decides it, never a guess."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from forecast.errors import PipelineError

DELIMITERS = (",", ";", "\t", "|")
HEAD_RECORDS = 60  # records looked at to find the delimiter and the header row
TAIL_CHARS = 65536  # the end of a CSV looked at for footers
TOTAL_LABEL = (  # Python and RE2 (pyarrow.compute) read it alike
    r"(?i)^(?:(?:grand\s+|sub-?|sous-)?(?:totals?|totaux)(?:\s+g[ée]n[ée]ral)?(?:\s*\([^)]*\))?\s*:?|somme)$"
)
_TOTAL = re.compile(TOTAL_LABEL)
_NAME = re.compile(r"[\s\-]+")


@dataclass
class Reading:
    """How a file was read, for ``validate`` and ``init`` to print: encoding, delimiter, decimal mark,
    header row and the rows skipped, each reason with its file rows."""

    path: Path
    kind: str  # "csv", "excel" or "parquet"
    encoding: str | None = None
    delimiter: str | None = None
    header_row: int | None = None  # file row of the headers (None: Parquet has none)
    decimal: str | None = None  # "," or "."; None while no number needed one
    decimal_source: str = ""  # "detected" or "pipeline.decimal"
    skipped: dict[str, list[int]] = field(default_factory=dict)  # reason -> file rows

    def skip(self, reason: str, rows: Iterable[int]) -> None:
        rows = list(rows)
        if rows:
            self.skipped.setdefault(reason, []).extend(rows)


def canonical_name(header: str) -> str:
    """A header as names are compared: case, spaces and dashes ignored."""
    return _NAME.sub("_", header.strip()).casefold()


def is_total_label(text: str) -> bool:
    """A cell that labels a total row: Total, Grand Totals (21 records), Subtotal, Sous-total, Somme."""
    return bool(_TOTAL.match(text.strip()))


def lone_text(fields: Sequence[object], width: int) -> bool:
    """Text in the first cell only, in a table of three or more columns: a report's footer line
    (Salesforce's 'Confidential Information - Do Not Distribute', its copyright line)."""
    return width >= 3 and str(fields[0]).strip() != "" and not any(str(cell).strip() for cell in fields[1:])


def decode(data: bytes, path: Path, encoding: str | None) -> tuple[str, str]:
    """The file's text and the encoding it was read with.

    Without ``pipeline.encoding``: a byte-order mark decides (UTF-8 or UTF-16); else strict UTF-8,
    which text in another encoding with any accented letter almost never passes; else cp1252 (what
    Excel writes on Western Windows), else latin-1, which reads any bytes.
    """
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise PipelineError(f"{path}: pipeline.encoding: unknown encoding {encoding!r}") from None
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError as error:
            row = data.count(b"\n", 0, error.start) + 1
            raise PipelineError(
                f"{path}: row {row}: byte 0x{data[error.start]:02x} is not {encoding} text; "
                "set pipeline.encoding to the file's encoding (e.g. utf-8, cp1252)"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    for name in ("utf-8", "cp1252", "latin-1"):
        try:
            return data.decode(name), name
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")


def head_records(text: str, delimiter: str, limit: int = HEAD_RECORDS) -> list[tuple[int, list[str]]]:
    """The first ``limit`` records of CSV ``text`` with the offset where each starts (quotes kept
    together, so a quoted line break stays in its record)."""
    offsets: list[int] = []
    consumed = 0

    def feed():
        nonlocal consumed
        position = 0
        for match in re.finditer(r"[^\r\n]*(?:\r\n|\n|\r|$)", text):
            if not match.group():
                return
            offsets.append(position)
            position += len(match.group())
            consumed += 1
            yield match.group()

    records = []
    reader = csv.reader(feed(), delimiter=delimiter)
    while len(records) < limit:
        start = consumed
        try:
            fields = next(reader)
        except (StopIteration, csv.Error):
            break
        records.append((offsets[start], fields))
    return records


def _recognised(fields: Sequence[str], names: set[str]) -> int:
    return sum(canonical_name(cell) in names for cell in fields if cell.strip())


def _filled(fields: Sequence[object]) -> int:
    return sum(str(cell).strip() != "" for cell in fields)


def header_index(records: Sequence[Sequence[object]], names: set[str]) -> int:
    """Which of the first records holds the column headers: the one naming the most recognised
    columns (the earliest on a tie); without any, the first as wide as the widest."""
    counts = [_recognised([str(cell) for cell in fields], names) for fields in records]
    if counts and max(counts) > 0:
        return counts.index(max(counts))
    filled = [_filled(fields) for fields in records]
    return filled.index(max(filled)) if filled else 0


@dataclass
class Layout:
    """Where a CSV's table is: its delimiter, the header record and the offset where it starts."""

    delimiter: str
    header: int  # index of the header record (file row - 1)
    offset: int  # character offset of the header record in the text


def find_layout(
    text: str, path: Path, names: set[str], delimiter: str | None, header_row: int | None
) -> Layout:
    """The delimiter (``pipeline.delimiter``, else the one under which the header names the most
    recognised columns and the rows below it have the header's width) and the header record
    (``pipeline.header_row``, else ``header_index``)."""
    candidates = [delimiter] if delimiter is not None else list(DELIMITERS)
    scored = []
    for candidate in candidates:
        records = head_records(text, candidate)
        if not records:
            return Layout(candidate, 0, 0)
        if header_row is not None and header_row > len(records):
            raise PipelineError(f"{path}: pipeline.header_row: {header_row} is beyond the file's first rows")
        index = header_row - 1 if header_row is not None else header_index([f for _, f in records], names)
        width = len(records[index][1])
        below = [fields for _, fields in records[index + 1 : -1] if _filled(fields)] or [
            fields for _, fields in records[index + 1 :] if _filled(fields)
        ]
        steady = all(len(fields) == width for fields in below)
        scored.append(
            (candidate, index, records[index][0], width, steady, _recognised(records[index][1], names))
        )
    if delimiter is not None:
        candidate, index, offset, *_ = scored[0]
        return Layout(candidate, index, offset)
    fitting = [score for score in scored if score[3] >= 2 and score[4]]
    if not fitting:
        return Layout(",", *scored[0][1:3])
    best = max(score[5] for score in fitting)
    top = [score for score in fitting if score[5] == best]
    if len(top) > 1:
        shown = " or ".join(f"{_shown(score[0])} ({score[3]} columns)" for score in top)
        raise PipelineError(
            f"{path}: the delimiter could be {shown}; set pipeline.delimiter "
            f"(or map the headers with pipeline.columns so they can be recognised)"
        )
    candidate, index, offset, *_ = top[0]
    return Layout(candidate, index, offset)


def _shown(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else repr(delimiter)


def footer_start(text: str, delimiter: str, width: int) -> tuple[int, int, bool]:
    """Where the trailing report footer starts in ``text``, how many records it has, and whether any
    of them holds text (only blank lines: no footer, just blank rows).

    A footer record is blank, a total row, a row of a different width than the header, or
    ``lone_text``.
    """
    tail_start = max(0, len(text) - TAIL_CHARS)
    if tail_start:
        tail_start = text.find("\n", tail_start) + 1 or len(text)
    lines = re.findall(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$", text[tail_start:])
    end, count, texty = len(text), 0, False
    for line in reversed(lines):
        fields = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
        filled = [cell for cell in fields if cell.strip()]
        footer = not filled or is_total_label(filled[0]) or len(fields) != width or lone_text(fields, width)
        if not footer:
            break
        end -= len(line)
        count += 1
        texty = texty or bool(filled)
    return end, count, texty
