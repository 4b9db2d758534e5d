"""Several currencies in one export: a ``currency`` column converted into ``fx.base`` at ``fx.rates``
(code -> value of one unit in the base currency) or at a dated rate table's rate in force on
``as_of``. Every amount the engine sees is then in the base currency."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.config.scenario import Scenario
from forecast.errors import ScenarioError
from forecast.inputs.cells import normalise, parse_amount, parse_date

TABLE_COLUMNS = ("date", "currency", "rate")


@dataclass(frozen=True)
class CurrencyRates:
    """Currency code (upper case) -> value of one unit in ``base``; the base itself is 1."""

    base: str
    rates: dict[str, float]
    source: str  # where the rates come from, for messages: 'fx.rates' or the table's path and date


def _code(value: object) -> str:
    return normalise(value).upper()


def _table_rates(path: Path, as_of: dt.date) -> dict[str, float]:
    """Each currency's rate in force on ``as_of``: its latest row dated on or before it."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise ScenarioError(f"fx.table: cannot read {path}: {error.strerror or error}") from None
    header = [name.strip().casefold() for name in (rows[0].keys() if rows else [])]
    if any(name not in header for name in TABLE_COLUMNS):
        raise ScenarioError(
            f"fx.table: {path} needs the columns date, currency, rate (has: {', '.join(header)})"
        )
    latest: dict[str, tuple[dt.date, float]] = {}
    problems = []
    for number, row in enumerate(rows, start=2):
        cells = {name.strip().casefold(): value for name, value in row.items()}
        try:
            date = parse_date(cells["date"], None, "fx.table")
            rate = parse_amount(cells["rate"])
        except ValueError as error:
            problems.append(f"{path}: row {number}: {error}")
            continue
        if rate <= 0:
            problems.append(f"{path}: row {number}: rate {rate:g}; expected a rate > 0")
            continue
        code = _code(cells["currency"])
        if date <= as_of and (code not in latest or latest[code][0] <= date):
            latest[code] = (date, rate)
    if problems:
        raise ScenarioError(problems)
    return {code: rate for code, (_, rate) in latest.items()}


def currency_rates(scenario: Scenario) -> CurrencyRates | None:
    """The scenario's ``fx`` resolved: the table's rates on ``as_of``, then ``fx.rates`` over them."""
    fx = scenario.fx
    if fx is None:
        return None
    rates: dict[str, float] = {}
    source = "fx.rates"
    if fx.table is not None:
        path = Path(fx.table).expanduser()
        if not path.is_absolute() and scenario.source is not None:
            path = scenario.source.parent / path
        rates.update(_table_rates(path, scenario.snapshot_date))
        source = f"fx.table ({path}, rates on {scenario.snapshot_date})"
    rates.update({_code(code): rate for code, rate in fx.rates.items()})
    rates[_code(fx.base)] = 1.0
    return CurrencyRates(base=_code(fx.base), rates=rates, source=source)


def convert(
    amount: np.ndarray,
    currency: list | None,
    rates: CurrencyRates | None,
    rows: list[int],
    path: Path,
    header: str | None,
) -> tuple[np.ndarray, str | None, tuple[tuple[str, int], ...], list[str]]:
    """Amounts in the base currency: (amounts, their currency, rows converted per currency, problems).

    ``currency`` holds the kept rows' currency cells (None without the column). Without ``fx`` the
    amounts stay as written: one currency is named, several are an error (they would be added up).
    """
    if currency is None:
        return amount, None if rates is None else rates.base, (), []
    codes = np.array([_code(cell) for cell in currency], dtype=object)
    where = f"column {header!r} (currency)"
    if rates is None:  # amounts as written; a blank cell is in the one currency the others name
        found = sorted(set(codes) - {""})
        if len(found) > 1:
            several = (
                f"{path}: {where}: amounts in {', '.join(found)} would be added up; give "
                f"fx: {{base: {found[0]}, rates: {{{found[1]}: ...}}}} (a unit's value in the base)"
            )
            return amount, None, (), [several]
        return amount, found[0] if found else None, (), []
    blank = [
        f"{path}: row {rows[i]}, {where}: is empty; expected a currency code"
        for i in np.flatnonzero(codes == "")
    ]
    unknown = [
        f"{path}: row {rows[i]}, {where}: no rate for {codes[i]!r} in {rates.source}; "
        f"rates are given for {', '.join(sorted(rates.rates))}"
        for i in np.flatnonzero((codes != "") & ~np.isin(codes, list(rates.rates)))
    ]
    if blank or unknown:
        return amount, rates.base, (), blank + unknown
    factor = np.array([rates.rates[code] for code in codes])
    converted = tuple((code, int((codes == code).sum())) for code in sorted(set(codes)) if code != rates.base)
    return amount * factor, rates.base, converted, []
