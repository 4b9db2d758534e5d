"""Cell parsers: one spreadsheet or CSV cell -> a number, probability, date, count or boolean."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d*)?$")
_TRUE = {"true", "t", "yes", "y", "1", "oui", "o", "vrai"}
_FALSE = {"false", "f", "no", "n", "0", "", "non", "faux"}


def normalise(value: Any) -> str:
    """One string form for cell and YAML values: 3, 3.0 and '3' compare equal."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def parse_amount(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = normalise(value)
        if text == "":
            raise ValueError("is empty; expected a number >= 0")
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{number:g} is not a number >= 0")
    return number


def parse_probability(value: Any, percent: bool) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    number = parse_amount(value)
    limit = 100.0 if percent else 1.0
    if number > limit:
        scale = (
            "0-100 (pipeline.probability_scale: percent)"
            if percent
            else "0-1 (set pipeline.probability_scale: percent for 0-100)"
        )
        raise ValueError(f"{number:g} is out of range; expected {scale}")
    return number / limit


def parse_date(value: Any, date_format: str | None, setting: str = "pipeline.date_format") -> dt.date:
    """A cell as a date: ISO (a time part is dropped), or ``date_format``; the error names the
    ``setting`` that gives the format."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = normalise(value)
    try:
        if date_format:
            return dt.datetime.strptime(text, date_format).date()
        if len(text) > 10 and text[10] in " T":
            text = text[:10]
        return dt.date.fromisoformat(text)
    except ValueError:
        expected = (
            f"format {date_format!r}" if date_format else f"YYYY-MM-DD, or set {setting} (e.g. '%m/%d/%Y')"
        )
        raise ValueError(f"{text!r} is not a date; expected {expected}") from None


def parse_count(value: Any) -> int:
    if value is None or normalise(value) == "":
        return 0
    number = parse_amount(value)
    if not number.is_integer():
        raise ValueError(f"{number:g} is not a whole number")
    return int(number)


def parse_bool(value: Any) -> bool:
    text = normalise(value).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true/false (also accepted: yes/no, 1/0, oui/non, vrai/faux)")
