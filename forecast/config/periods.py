"""Forecast periods: ``2026-Q3``, ``2026-07``, ``2026`` or ``{start, end}``, and quarter arithmetic."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BeforeValidator,
    model_validator,
)

from forecast.config.base import ScenarioDate, Strict


class PeriodRange(Strict):
    """An explicit forecast period; both ends are inside it."""

    start: ScenarioDate
    end: ScenarioDate

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> PeriodRange:
    """``2026-Q3``, ``2026-07`` or ``2026`` -> the calendar period it names."""
    text = text.strip()
    if match := _QUARTER.match(text):
        year, quarter = int(match[1]), int(match[2])
        start = dt.date(year, 3 * quarter - 2, 1)
        end_month = 3 * quarter
    elif (match := _MONTH.match(text)) and 1 <= int(match[2]) <= 12:
        year, end_month = int(match[1]), int(match[2])
        start = dt.date(year, end_month, 1)
    elif match := _YEAR.match(text):
        year, end_month = int(match[1]), 12
        start = dt.date(year, 1, 1)
    else:
        raise ValueError(
            f"period {text!r} is not a quarter (2026-Q3), a month (2026-07), a year or {{start, end}}"
        )
    next_month = dt.date(year + end_month // 12, end_month % 12 + 1, 1)
    return PeriodRange(start=start, end=next_month - dt.timedelta(days=1))


def quarter_name(day: dt.date) -> str:
    """The calendar quarter a day falls in, as ``2026-Q3``."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_of(day: dt.date) -> PeriodRange:
    """The calendar quarter a day falls in."""
    return parse_period(quarter_name(day))


def quarters_between(first: dt.date, last: dt.date) -> list[PeriodRange]:
    """Every calendar quarter that overlaps ``first``..``last``, in order."""
    out, current = [], quarter_of(first)
    while current.start <= last:
        out.append(current)
        current = quarter_of(current.end + dt.timedelta(days=1))
    return out


def day_bounds(periods: list[PeriodRange]) -> list[tuple[np.datetime64, np.datetime64]]:
    """Each period's first and last day as ``datetime64[D]``, as the history fits take them."""
    return [(np.datetime64(period.start, "D"), np.datetime64(period.end, "D")) for period in periods]


def _year_as_text(period: Any) -> Any:
    """YAML reads ``period: 2026`` as a number; a single date names no period, and says so."""
    if isinstance(period, dt.date):
        raise ValueError(
            f"{period.isoformat()} is a date, not a period; expected a quarter (2026-Q3), a month "
            "(2026-07), a year (2026) or {start: YYYY-MM-DD, end: YYYY-MM-DD}"
        )
    return str(period) if isinstance(period, int) and not isinstance(period, bool) else period


def period_range_of(period: str | PeriodRange) -> PeriodRange:
    return parse_period(period) if isinstance(period, str) else period


PeriodText = Annotated[str, BeforeValidator(_year_as_text, json_schema_input_type=str | int)]
