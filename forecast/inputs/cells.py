"""Cell parsers: one spreadsheet or CSV cell -> its text, a date or a boolean (numbers are parsed a whole
column at a time, in ``forecast.inputs.columns``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

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


def parse_bool(value: Any) -> bool:
    text = normalise(value).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true/false (also accepted: yes/no, 1/0, oui/non, vrai/faux)")
