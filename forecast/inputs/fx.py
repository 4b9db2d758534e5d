"""Several currencies in one export: a ``currency`` column converted into ``fx.base`` at ``fx.rates``
(code -> value of one unit in the base currency) or at a dated rate table's rate in force on
``as_of``. Every amount the engine sees is then in the base currency."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.config.scenario import Scenario
from forecast.errors import ScenarioError
from forecast.inputs import columns as parse
from forecast.inputs.cells import normalise
from forecast.inputs.tables import match_columns, read_table, require_columns

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
    """Each currency's rate in force on ``as_of``: its latest row dated on or before it. The table is
    read as exports are (``read_table``: encoding, delimiter, decimal mark, title and footer rows)."""
    table = read_table(path, what="fx table", names=TABLE_COLUMNS)
    headers = match_columns(table, TABLE_COLUMNS, {})
    require_columns(path, table, headers, "a column named {name} (date, currency, rate)")
    rows = table.rows

    def where(_: str, position: int) -> str:
        return f"{path}: row {rows[position]}:"

    numbers = parse.split_numbers(table.columns[headers["rate"]], table.numbers.get(headers["rate"]))
    decimal = parse.decide_decimal([("rate", numbers, np.ones(len(table), dtype=bool))], where, None)
    rate, bad_rates = parse.amounts(numbers, decimal, "detected")
    cells = table.columns[headers["date"]]
    order = parse.date_order([cells], None, lambda _, position: where("date", position), "fx.table")
    date, bad_dates = parse.dates(cells, None, order, "fx.table")
    problems = {**bad_rates, **bad_dates}
    for position in np.flatnonzero(rate <= 0):
        problems.setdefault(int(position), f"rate {rate[position]:g}; expected a rate > 0")
    if problems:
        raise ScenarioError([f"{where('', position)} {problems[position]}" for position in sorted(problems)])
    codes = [_code(code) for code in table.text(headers["currency"]).tolist()]
    latest: dict[str, tuple[np.datetime64, float]] = {}
    day = np.datetime64(as_of, "D")
    for code, on, value in zip(codes, date, rate, strict=True):
        if on <= day and (code not in latest or latest[code][0] <= on):
            latest[code] = (on, float(value))
    return {code: value for code, (_, value) in latest.items()}


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
