"""A table of past deals (won, lost, still open) -> ``History`` arrays, checked row by row; with its
stage history and price list when given. Calibration and the backtest both read history this way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from forecast.config.specs import Prices, StageHistorySource
from forecast.errors import PipelineError
from forecast.inputs import columns as parse
from forecast.inputs.cells import normalise
from forecast.inputs.stage_history import StageHistory, load_stage_history
from forecast.inputs.tables import Table, deal_id_problems, match_columns, read_table, require_columns

HISTORY_COLUMNS = ("deal_id", "outcome", "amount", "won_amount", "created_date", "close_date",
                   "expected_close_date", "stage")  # fmt: skip


@dataclass
class HistorySpec:
    """How to read a history export: column names and which outcome values mean won or lost."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> export header
    won: tuple[str, ...] = ("won", "closed won")
    lost: tuple[str, ...] = ("lost", "loss", "closed lost")
    segments: tuple[str, ...] = ()
    prior_strength: float = 20.0
    date_format: str | None = None
    date_format_setting: str = "--date-format"  # where a user sets it: named in date errors
    stage_history: StageHistorySource | None = None  # its path as given (resolved by the caller)
    prices: Prices | None = None  # a price list joined on a column (its path resolved by the caller)
    age_buckets_days: tuple[int, ...] = (30, 60, 90, 120)
    required: tuple[str, ...] = ("outcome", "amount")  # without dates: the rates by stage and segment
    hint: str = "--map {name}=HEADER"  # how to map a missing column
    stage_hint: str = "--stage-map {name}=HEADER"


@dataclass
class History:
    """Every deal of the export as arrays; open deals have no close date (nor have closed ones in an
    export without dates: ``decided`` tells them apart)."""

    deal_id: np.ndarray  # str objects ('' without a deal_id column)
    won: np.ndarray  # bool
    amount: np.ndarray  # float64, pipeline amount (NaN where blank)
    won_amount: np.ndarray  # float64 (NaN where unknown)
    created: np.ndarray  # datetime64[D] (NaT where unknown)
    closed: np.ndarray  # datetime64[D] (NaT while open)
    expected_close: np.ndarray  # datetime64[D] (NaT where unknown)
    stage: np.ndarray  # str objects ('' without a stage column)
    segments: dict[str, np.ndarray]
    stage_history: StageHistory | None = None
    list_price: np.ndarray | None = None  # float64: from the price list (NaN where it lacks the deal's key)
    decided: np.ndarray | None = None  # bool: won or lost (None: the deals with a close date)
    headers: tuple[str, ...] = ()  # the export's column headers, as written

    @property
    def price(self) -> np.ndarray:
        """The amount a deal is forecast at while open: its list price, else its own amount."""
        return self.amount if self.list_price is None else self.list_price

    @property
    def won_value(self) -> np.ndarray:
        """What each won deal brought in: its won amount where known, else its amount (NaN unless won)."""
        return np.where(self.won, np.where(np.isnan(self.won_amount), self.amount, self.won_amount), np.nan)

    def closed_deals(self) -> History:
        """The deals won or lost."""
        keep = ~np.isnat(self.closed) if self.decided is None else self.decided
        arrays = {f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}  # fmt: skip
        segments = {name: values[keep] for name, values in self.segments.items()}
        return dataclasses.replace(self, **arrays, segments=segments)

    def stage_on(self, day: np.datetime64) -> np.ndarray:
        """Every deal's stage on ``day``: from the stage history, else the export's (snapshot) stage."""
        return self.stage if self.stage_history is None else self.stage_history.on(self.deal_id, day)


def load_history(path: Path, spec: HistorySpec) -> History:
    """Read and check a history table; every bad row is reported with its row and column.

    Read as the pipeline is (``read_table``): encoding, delimiter, title and footer rows, decimal mark.
    """
    keys = (*spec.segments, *([spec.prices.key] if spec.prices else []))  # text columns read as they are
    table = read_table(path, what="history", names=(*HISTORY_COLUMNS, *keys, *spec.columns.values()))
    column = match_columns(table, (*HISTORY_COLUMNS, *keys), spec.columns)
    required = [*spec.required, *(["deal_id"] if spec.stage_history else []), *keys]
    require_columns(path, table, {name: column[name] for name in required}, spec.hint)
    won_values, lost_values = {v.casefold() for v in spec.won}, {v.casefold() for v in spec.lost}
    rows = len(table)
    problems: list[tuple[tuple[int, int], str]] = []

    def text(name: str) -> np.ndarray:
        return table.text(column[name]) if column[name] in table else np.full(rows, "", dtype=object)

    def filled(name: str) -> np.ndarray:
        if column[name] not in table:
            return np.zeros(rows, dtype=bool)
        return pc.not_equal(table.columns[column[name]], "").to_numpy(zero_copy_only=False)

    def report(order: int, name: str, found: dict, wanted: np.ndarray) -> None:
        problems.extend(
            (
                (int(position), order),
                f"{path}: row {table.rows[position]}, column {column[name]!r} ({name}): {message}",
            )
            for position, message in found.items()
            if wanted[position]
        )

    outcome = np.array([value.casefold() for value in text("outcome")], dtype=object)
    decided = np.isin(outcome, list(won_values | lost_values))
    won = np.isin(outcome, list(won_values))
    numbers = {
        name: parse.split_numbers(table.columns[column[name]], table.numbers.get(column[name]))
        for name in ("amount", "won_amount")
        if column[name] in table
    }
    wanted = {"amount": decided | filled("amount"), "won_amount": decided & filled("won_amount")}
    decimal = parse.decide_decimal(
        [(name, split, wanted[name]) for name, split in numbers.items()],
        lambda name, position: f"{path}: row {table.rows[position]}, column {column[name]!r} ({name}):",
        None,
    )
    table.reading.decimal, table.reading.decimal_source = decimal, "detected"
    amount, won_amount = np.full(rows, np.nan), np.full(rows, np.nan)
    for order, (name, out) in enumerate((("amount", amount), ("won_amount", won_amount))):
        if name in numbers:
            values, found = parse.amounts(numbers[name], decimal, "detected")
            out[wanted[name]] = np.where(np.isnan(values), 0.0, values)[wanted[name]]
            report(order, name, found, wanted[name])
    date_names = [
        name for name in ("close_date", "created_date", "expected_close_date") if column[name] in table
    ]
    day_order = parse.date_order(
        [table.columns[column[name]] for name in date_names],
        spec.date_format,
        lambda number, position: (
            f"{path}: row {table.rows[position]}, column {column[date_names[number]]!r}:"
        ),
        spec.date_format_setting,
    )
    days = {}
    for order, name in enumerate(("close_date", "created_date", "expected_close_date"), start=2):
        days[name] = np.full(rows, np.datetime64("NaT"), "datetime64[D]")
        if name in date_names:
            values, found = parse.dates(
                table.columns[column[name]],
                spec.date_format,
                day_order,
                spec.date_format_setting,
                blank=name != "close_date",
            )
            need = decided if name == "close_date" else filled(name)  # an open deal has no close date
            days[name][need] = values[need]
            report(order, name, found, need)
    deal_id = text("deal_id")
    if "deal_id" in required:
        found = deal_id_problems(table.columns[column["deal_id"]], table.rows, path, column["deal_id"])
        problems += [((position, 5), message) for position, message in found.items()]
    if problems:
        raise PipelineError([message for _, message in sorted(problems, key=lambda item: item[0])])
    if not decided.any():
        raise PipelineError(f"{path}: no closed deals (outcomes {sorted(won_values | lost_values)})")
    stages = None
    if spec.stage_history is not None:
        stages = load_stage_history(spec.stage_history, set(deal_id), path, spec.stage_hint)
    prices = list_prices(spec.prices, text(spec.prices.key)) if spec.prices else None
    return History(
        deal_id=deal_id,
        won=won & decided,
        amount=amount,
        won_amount=won_amount,
        created=days["created_date"],
        closed=days["close_date"],
        expected_close=days["expected_close_date"],
        stage=text("stage"),
        segments={name: text(name) for name in spec.segments},
        stage_history=stages,
        list_price=prices,
        decided=decided,
        headers=tuple(table),
    )


def list_prices(prices: Prices, keys: np.ndarray) -> np.ndarray:
    """Each deal's list price, joined on ``prices.key`` (NaN where the list lacks its value)."""
    path = Path(prices.path)
    table: Table = read_table(path, what="price list", names=(prices.key, prices.price))
    missing = [name for name in (prices.key, prices.price) if name not in table]
    if missing:
        raise PipelineError([f"{path}: missing column {name!r}" for name in missing])
    numbers = parse.split_numbers(table.columns[prices.price], table.numbers.get(prices.price))
    where = lambda name, position: f"{path}: row {table.rows[position]}, column {prices.price!r}:"  # noqa: E731
    decimal = parse.decide_decimal([(prices.price, numbers, np.ones(len(table), bool))], where, None)
    values, found = parse.amounts(numbers, decimal, "detected")
    if found:
        raise PipelineError(
            [f"{where(prices.price, position)} {message}" for position, message in found.items()]
        )
    lookup = dict(zip(table.text(prices.key), values, strict=True))
    return np.array([lookup.get(normalise(prices.aliases.get(key, key)), np.nan) for key in keys])
