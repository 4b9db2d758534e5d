"""Shared pieces of the YAML models: strict models, probabilities, filters, stage names, simulation."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

MAX_TRIALS = 100_000_000
# The largest revenue a trial may reach, and the largest target: sums over the trials and the
# squares a standard deviation adds up stay finite in float64 (MAX_TRIALS x MAX_TOTAL**2 = 1e308,
# the float64 maximum is 1.8e308), far above any real pipeline in any currency.
MAX_TOTAL = 1e150
DEFAULT_TRIALS = 100_000
DEFAULT_SEED = 20260701

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


def _at_most_max_total(value: float) -> float:
    if value > MAX_TOTAL:
        raise ValueError(f"{value:g} is too large; expected at most {MAX_TOTAL:.0e}")
    return value


Total = Annotated[float, Field(ge=0.0), AfterValidator(_at_most_max_total)]  # a target or quota
FilterValue = str | int | float | bool


def _iso_date(value: Any) -> Any:
    """A scenario date: YAML's own date, or text ``YYYY-MM-DD`` (a time part, as CRMs write
    timestamps, is dropped); anything else is refused with the form expected, never guessed."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 10 and text[10] in " T":
            text = text[:10]
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                raise ValueError(f"{text!r} is not a calendar date") from None
    raise ValueError(f"{value!r} is not a date; expected YYYY-MM-DD (e.g. 2026-10-15)")


ScenarioDate = Annotated[dt.date, BeforeValidator(_iso_date, json_schema_input_type=str)]


def _one_filter_value(value: Any) -> Any:
    """Reject a bad filter value with one message rather than one per type it could have been."""
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int | float) for item in values):
        raise ValueError("expected a value (text, number, true/false) or a list of values")
    return value


Where = dict[str, Annotated[FilterValue | list[FilterValue], BeforeValidator(_one_filter_value)]]


def written_form(value: Any) -> str:
    """Which form of a scalar-or-mapping key was written, so errors speak of that form only."""
    return "mapping" if isinstance(value, dict | BaseModel) else "scalar"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def only_known(columns: dict[str, str], known) -> dict[str, str]:
    """A column mapping whose canonical names are all in ``known``."""
    unknown = sorted(set(columns) - set(known))
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; expected one of {', '.join(known)}")
    return columns


class Simulation(Strict):
    trials: int = Field(default=DEFAULT_TRIALS, ge=1, le=MAX_TRIALS, strict=True)
    seed: int = Field(default=DEFAULT_SEED, ge=0, lt=2**63, strict=True)


def stage_key(name: str) -> str:
    """Stage names match case-insensitively and ignoring surrounding spaces."""
    return " ".join(str(name).split()).casefold()
