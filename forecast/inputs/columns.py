"""Whole-column parsers: a column of text cells -> an array of numbers, probabilities, counts, dates or
booleans plus {position: problem}. Numbers are parsed with pyarrow.compute over the whole column;
columns of few distinct values (dates, booleans, stages) parse each distinct value once.

Numbers may carry a currency symbol or ISO code before or after (``$11,500.00``, ``USD 40,500``,
``12 500,50 €``), thousands marks (``,`` ``.`` space, no-break and narrow no-break space,
apostrophe) and a ``%`` sign. The decimal mark is one per file: ``pipeline.decimal``, else what the
cells prove (``12,50``, ``1.234,5``, ``1 234,56`` -> ','; ``1,234.5``, ``0.5`` -> '.'); a cell that
reads two ways (``1,500``) while nothing decides is an error, never a guess.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from forecast.errors import PipelineError
from forecast.inputs.cells import parse_bool, parse_date
from forecast.inputs.tables import arrow_mask

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR"}
_AROUND = "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + "".join(_SYMBOLS) + " \t\u00a0\u202f%"  # trimmed off a number
_MARKS = r"[^A-Z$€£¥₹%]"  # what is left of a cell when its currency and % sign are taken
_LEAD = r"[-+]?[1-9]\d{0,2}"
_GROUPS = (" ", r"\x{00a0}", r"\x{202f}", "'", r"\x{2019}")  # thousands marks never a decimal mark


def _grouped(thousands: tuple[str, ...], decimal: str) -> list[str]:
    """Numbers grouped in threes by one of the ``thousands`` marks (one mark per number)."""
    return [_LEAD + rf"({mark}\d{{3}})+({decimal}\d+)?" for mark in thousands]


_SIGN = r"[-+]?"
_READS = {
    ".": [_SIGN + r"\d+", _SIGN + r"\d*\.\d+", _SIGN + r"(\d+\.?\d*|\.\d+)[eE][-+]?\d+",
          *_grouped((",", *_GROUPS), r"\.")],
    ",": [_SIGN + r"\d+", _SIGN + r"\d*,\d+", _SIGN + r"(\d+,?\d*|,\d+)[eE][-+]?\d+",
          *_grouped((r"\.", *_GROUPS), ",")],
}  # fmt: skip
_READS_ONE = {mark: "^(?:" + "|".join(patterns) + ")$" for mark, patterns in _READS.items()}
_DROP = {".": rf"[,{''.join(_GROUPS)}]", ",": rf"[.{''.join(_GROUPS)}]"}
_PLAIN = r"[^0-9.,+\-eE]"  # a cell without any of these is a bare number (or not one at all)


@dataclass
class Numbers:
    """A column of number cells taken apart: the number text, its sign and currency, and which
    decimal marks it reads under."""

    cells: pa.Array  # the cells as written
    core: pa.Array  # the number without currency and % sign
    percent: np.ndarray  # bool: the cell ends with %
    currency: np.ndarray  # str objects: ISO code ('USD' for $), '' where none
    reads: dict[str, np.ndarray]  # decimal mark -> bool: the cell is a number under it
    typed: np.ndarray | None  # float64 of cells already numbers (Excel, Parquet), NaN elsewhere
    bare: bool  # no cell holds anything but digits, signs, '.', ',' and exponents

    @cached_property
    def two_ways(self) -> np.ndarray:
        """Cells that read under both marks to different numbers (``1,500``, ``1.500``)."""
        has_mark = pc.match_substring_regex(self.core, r"[.,]").to_numpy(zero_copy_only=False)
        return self.reads["."] & self.reads[","] & has_mark


def split_numbers(cells: pa.Array, typed: np.ndarray | None = None) -> Numbers:
    """Take a column of number cells apart (see ``Numbers``): the currency (a symbol or three
    capitals) and % sign at either end come off; anything else is part of the number."""
    n = len(cells)
    core, percent, currency = cells, np.zeros(n, dtype=bool), np.full(n, "", dtype=object)
    bare = not pc.any(pc.match_substring_regex(cells, _PLAIN)).as_py()
    if not bare:
        core = pc.utf8_trim(cells, characters=_AROUND)
        marks = pc.replace_substring_regex(cells, _MARKS, "")
        percent = pc.match_substring(marks, "%").to_numpy(zero_copy_only=False)
        codes = pc.replace_substring(marks, "%", "")
        for symbol, code in _SYMBOLS.items():
            codes = pc.replace_substring(codes, symbol, code)
        currency = codes.to_numpy(zero_copy_only=False)
        # a currency inside the number, or two of them: the core keeps something that does not read
        odd = ~pc.match_substring_regex(codes, r"^([A-Z]{3})?$").to_numpy(zero_copy_only=False)
        if odd.any():
            core = pc.if_else(arrow_mask(odd), cells, core)
    text = np.ones(n, dtype=bool) if typed is None else np.isnan(typed)
    reads = {
        mark: pc.match_substring_regex(core, pattern).to_numpy(zero_copy_only=False) & text
        for mark, pattern in _READS_ONE.items()
    }
    return Numbers(cells, core, percent, currency, reads, typed, bare)


def decide_decimal(
    columns: Sequence[tuple[str, Numbers, np.ndarray]], where: Callable[[str, int], str], setting: str | None
) -> str | None:
    """The file's decimal mark: ``setting`` (``pipeline.decimal``), else the one the cells prove.

    ``columns``: (canonical name, its split cells, which positions count); ``where(name, position)``
    names a cell in messages. Cells proving both marks are an error naming the setting.
    """
    if setting is not None:
        return setting
    proof: dict[str, tuple[str, int]] = {}
    for name, numbers, counted in columns:
        for mark in (".", ","):
            positions = np.flatnonzero(numbers.reads[mark] & ~numbers.reads[_other(mark)] & counted)
            if positions.size and mark not in proof:
                proof[mark] = (name, int(positions[0]))
    if len(proof) == 2:
        shown = [
            f"{where(name, position)} {_text(columns, name, position)!r} reads only with {mark!r}"
            for mark, (name, position) in proof.items()
        ]
        raise PipelineError(
            [
                f"{cell}, while another cell reads only with the other mark; set pipeline.decimal"
                for cell in shown
            ]
        )
    return next(iter(proof), None)


def _other(mark: str) -> str:
    return "," if mark == "." else "."


def _text(columns: Sequence[tuple[str, Numbers, np.ndarray]], name: str, position: int) -> str:
    numbers = next(numbers for column, numbers, _ in columns if column == name)
    return numbers.cells[position].as_py()


def _values(numbers: Numbers, decimal: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's number under ``decimal`` (None: no cell needs it), and which cells read."""
    mark = decimal or "."
    valid = numbers.reads[mark] & (decimal is not None or ~numbers.two_ways)
    if numbers.bare:  # only the other mark can be a thousands mark
        cleaned = pc.replace_substring(numbers.core, _other(mark), "")
    else:
        cleaned = pc.replace_substring_regex(numbers.core, _DROP[mark], "")
    if mark == ",":
        cleaned = pc.replace_substring(cleaned, ",", ".")
    cleaned = pc.if_else(arrow_mask(valid), cleaned, "0")
    values = pc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False).copy()
    values[~valid] = np.nan
    if numbers.typed is not None:
        typed = ~np.isnan(numbers.typed)
        values[typed], valid = numbers.typed[typed], valid | typed
    return values, valid


def _not_a_number(numbers: Numbers, position: int, decimal: str | None, source: str) -> str:
    text = numbers.cells[position].as_py()
    if numbers.two_ways[position] and decimal is None:
        comma = float(re.sub(r"[^\d,]", "", text).replace(",", "."))
        dot = float(re.sub(r"[^\d.]", "", text))
        return (
            f"{text!r} could be {max(comma, dot):g} or {min(comma, dot):g}; "
            "set pipeline.decimal to ',' or '.'"
        )
    if decimal is not None and numbers.reads[_other(decimal)][position]:
        return f"{text!r} is not a number with decimal mark {decimal!r} ({source})"
    return f"{text!r} is not a number"


def amounts(
    numbers: Numbers, decimal: str | None, source: str, blank: str = "error"
) -> tuple[np.ndarray, dict]:
    """Amounts >= 0; a blank cell is a problem (``blank='error'``) or NaN (``'nan'``)."""
    values, valid = _values(numbers, decimal)
    empty = pc.equal(numbers.cells, "").to_numpy(zero_copy_only=False)
    problems = {}
    for position in np.flatnonzero((~valid & (~empty | (blank == "error"))) | numbers.percent | (values < 0)):
        if empty[position]:
            if blank == "error":
                problems[position] = "is empty; expected a number >= 0"
        elif numbers.percent[position]:
            problems[position] = f"{numbers.cells[position].as_py()!r} is a percentage; expected an amount"
        elif not valid[position]:
            problems[position] = _not_a_number(numbers, position, decimal, source)
        else:
            problems[position] = f"{values[position]:g} is not a number >= 0"
    return values, problems


def probabilities(
    numbers: Numbers, decimal: str | None, source: str, percent: bool
) -> tuple[np.ndarray, dict]:
    """Probabilities in [0, 1], NaN where blank. A cell with a % sign is a percentage whatever
    ``probability_scale`` says (the sign says it); a bare number is on the scale (``percent``:
    0-100, else 0-1)."""
    values, problems = amounts(numbers, decimal, source, blank="nan")
    for position in np.flatnonzero(numbers.percent):
        problems.pop(position, None)
        if not np.isfinite(values[position]):
            problems[position] = _not_a_number(numbers, position, decimal, source)
        elif values[position] < 0:
            problems[position] = f"{values[position]:g} is not a number >= 0"
    for position in np.flatnonzero(numbers.currency != ""):
        problems[position] = f"{numbers.cells[position].as_py()!r} has a currency; expected a probability"
    limit = np.where(numbers.percent | percent, 100.0, 1.0)
    for position in np.flatnonzero(values > limit):
        if position in problems:
            continue
        if numbers.percent[position]:
            problems[position] = f"{numbers.cells[position].as_py()!r} is out of range; expected 0-100 %"
        else:
            scale = (
                "0-100 (pipeline.probability_scale: percent)"
                if percent
                else "0-1 (set pipeline.probability_scale: percent for 0-100)"
            )
            problems[position] = f"{values[position]:g} is out of range; expected {scale}"
    return values / limit, problems


def counts(numbers: Numbers, decimal: str | None, source: str) -> tuple[np.ndarray, dict]:
    """Whole numbers >= 0, 0 where blank."""
    values, problems = amounts(numbers, decimal, source, blank="nan")
    for position in np.flatnonzero(np.isfinite(values) & (values != np.round(values))):
        problems.setdefault(position, f"{values[position]:g} is not a whole number")
    return np.where(np.isfinite(values), values, 0).astype(np.int64), problems


def currencies(numbers: Numbers) -> list[str]:
    """The distinct currencies the cells name, in order of appearance."""
    return list(dict.fromkeys(code for code in numbers.currency if code))


def by_value(cells: pa.Array, parse: Callable[[str], Any], empty: Any) -> tuple[list, np.ndarray, dict]:
    """Parse each distinct cell once: the parsed distinct values, each cell's index into them, and
    {position: problem} for the cells ``parse`` refuses (``ValueError``); ``empty`` fills those."""
    encoded = pc.dictionary_encode(cells)
    distinct = encoded.dictionary.to_pylist()
    index = encoded.indices.to_numpy(zero_copy_only=False)
    parsed, bad = [], {}
    for number, text in enumerate(distinct):
        try:
            parsed.append(parse(text))
        except ValueError as error:
            parsed.append(empty)
            bad[number] = str(error)
    problems = {}
    if bad:
        for position in np.flatnonzero(np.isin(index, list(bad))):
            problems[int(position)] = bad[index[position]]
    return parsed, index, problems


_NUMERIC_DATE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T].*)?$")


def date_order(
    columns: Sequence[pa.Array], date_format: str | None, where: Callable[[int, int], str], setting: str
) -> str | None:
    """Day-first ('%d/%m/%Y') or month-first dates, decided across the file's date columns: a
    first number above 12 proves day-first, a second one month-first. None: no such dates, or
    ``date_format`` is set. Both proven is an error naming ``setting``."""
    if date_format is not None:
        return None
    proof: dict[str, str] = {}
    for number, cells in enumerate(columns):
        distinct = pc.unique(cells)
        distinct = distinct.filter(pc.match_substring_regex(distinct, _NUMERIC_DATE.pattern))
        if not len(distinct):
            continue
        matches = pc.extract_regex(distinct, r"^(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})")
        first = pc.cast(matches.field("a"), pa.int64()).to_numpy(zero_copy_only=False)
        second = pc.cast(matches.field("b"), pa.int64()).to_numpy(zero_copy_only=False)
        for order, numbers in (("day", first), ("month", second)):
            hits = np.flatnonzero(numbers > 12)
            if hits.size and order not in proof:
                text = distinct[int(hits[0])].as_py()
                position = int(pc.index(cells, text).as_py())
                proof[order] = f"{where(number, position)} {text!r}"
    if len(proof) == 2:
        raise PipelineError(
            f"{proof['day']} is day-first but {proof['month']} is month-first; "
            f"set {setting} (e.g. '%d/%m/%Y')"
        )
    return {"day": "dmy", "month": "mdy"}.get(next(iter(proof), ""))


def dates(
    cells: pa.Array, date_format: str | None, order: str | None, setting: str, blank: bool = False
) -> tuple[np.ndarray, dict]:
    """Dates (datetime64[D], NaT where a problem, or where blank if ``blank``); ISO always, else
    ``date_format`` or the file's ``order`` of day and month (``date_order``)."""

    def parse(text: str) -> np.datetime64:
        if blank and text == "":
            return np.datetime64("NaT")
        match = _NUMERIC_DATE.match(text) if date_format is None else None
        if match:
            first, second, year = match.groups()
            if order is None:
                raise ValueError(
                    f"{text!r} could be day-first or month-first; expected YYYY-MM-DD, or set {setting} "
                    "('%d/%m/%Y' or '%m/%d/%Y')"
                )
            day, month = (first, second) if order == "dmy" else (second, first)
            try:
                return np.datetime64(dt.date(int(year), int(month), int(day)), "D")
            except ValueError:
                raise ValueError(f"{text!r} is not a date") from None
        return np.datetime64(parse_date(text, date_format, setting), "D")

    parsed, index, problems = by_value(cells, parse, np.datetime64("NaT"))
    return np.array(parsed, dtype="datetime64[D]")[index] if parsed else np.zeros(
        0, "datetime64[D]"
    ), problems


def booleans(cells: pa.Array) -> tuple[np.ndarray, dict]:
    """true/false cells (also yes/no, 1/0; blank is false)."""
    parsed, index, problems = by_value(cells, parse_bool, False)
    return np.array(parsed, dtype=bool)[index] if parsed else np.zeros(0, bool), problems
