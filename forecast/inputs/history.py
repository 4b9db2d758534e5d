"""A table of past deals (won, lost, still open) -> ``History`` arrays, checked row by row; with its
stage history and price list when given. Calibration and the backtest both read history this way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.specs import Prices, StageHistorySource
from forecast.errors import PipelineError
from forecast.inputs.cells import normalise, parse_amount, parse_date
from forecast.inputs.stage_history import StageHistory, load_stage_history
from forecast.inputs.tables import deal_id_problems, filled_rows, match_columns, read_table, require_columns

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
    """Read and check a history table; every bad row is reported with its row and column."""
    table, first_row = read_table(path, what="history")
    keys = (*spec.segments, *([spec.prices.key] if spec.prices else []))  # text columns read as they are
    column = match_columns(table, (*HISTORY_COLUMNS, *keys), spec.columns)
    required = [*spec.required, *(["deal_id"] if spec.stage_history else []), *keys]
    require_columns(path, table, {name: column[name] for name in required}, spec.hint)
    won_values, lost_values = {v.casefold() for v in spec.won}, {v.casefold() for v in spec.lost}
    kept = filled_rows(table)
    rows = len(kept)
    won, decided = np.zeros(rows, bool), np.zeros(rows, bool)
    amount, won_amount = np.full(rows, np.nan), np.full(rows, np.nan)
    created, closed, expected = (np.full(rows, np.datetime64("NaT"), "datetime64[D]") for _ in range(3))
    problems: list[str] = []

    def cell(name: str, row: int) -> Any:
        return normalise(table[column[name]][kept[row]]) if column[name] in table else ""

    def parse(name: str, row: int, parser, *args) -> Any:
        try:
            return parser(table[column[name]][kept[row]], *args)
        except ValueError as error:
            problems.append(f"{path}: row {kept[row] + first_row}, column {column[name]!r} ({name}): {error}")
            return None

    def date(name: str, row: int) -> np.datetime64:
        day = parse(name, row, parse_date, spec.date_format, spec.date_format_setting)
        return np.datetime64("NaT") if day is None else np.datetime64(day, "D")

    for row in range(rows):
        outcome = cell("outcome", row).casefold()
        is_closed = decided[row] = outcome in won_values | lost_values
        if is_closed or cell("amount", row):
            amount[row] = parse("amount", row, parse_amount) or 0.0
        if is_closed:
            won[row] = outcome in won_values
            if column["close_date"] in table:
                closed[row] = date("close_date", row)
            if cell("won_amount", row):
                won_amount[row] = parse("won_amount", row, parse_amount) or 0.0
        for name, out in (("created_date", created), ("expected_close_date", expected)):
            if cell(name, row):
                out[row] = date(name, row)
    deal_id = np.array([cell("deal_id", row) for row in range(rows)], dtype=object)
    if "deal_id" in required:
        file_rows = [int(row) + first_row for row in kept]
        problems += deal_id_problems(list(deal_id), file_rows, path, column["deal_id"]).values()
    if problems:
        raise PipelineError(problems)
    if not decided.any():
        raise PipelineError(f"{path}: no closed deals (outcomes {sorted(won_values | lost_values)})")

    def text(name: str) -> np.ndarray:
        return np.array([cell(name, row) for row in range(rows)], dtype=object)

    stages = None
    if spec.stage_history is not None:
        stages = load_stage_history(spec.stage_history, set(deal_id), path, spec.stage_hint)
    prices = list_prices(spec.prices, text(spec.prices.key)) if spec.prices else None
    return History(
        deal_id=deal_id, won=won, amount=amount, won_amount=won_amount, created=created, closed=closed,
        expected_close=expected, stage=text("stage"), segments={name: text(name) for name in spec.segments},
        stage_history=stages, list_price=prices, decided=decided,
    )  # fmt: skip


def list_prices(prices: Prices, keys: np.ndarray) -> np.ndarray:
    """Each deal's list price, joined on ``prices.key`` (NaN where the list lacks its value)."""
    path = Path(prices.path)
    table, first_row = read_table(path, what="price list")
    missing = [name for name in (prices.key, prices.price) if name not in table]
    if missing:
        raise PipelineError([f"{path}: missing column {name!r}" for name in missing])
    lookup, problems = {}, []
    for row in filled_rows(table):
        try:
            lookup[normalise(table[prices.key][row])] = parse_amount(table[prices.price][row])
        except ValueError as error:
            problems.append(f"{path}: row {row + first_row}, column {prices.price!r}: {error}")
    if problems:
        raise PipelineError(problems)
    return np.array([lookup.get(normalise(prices.aliases.get(key, key)), np.nan) for key in keys])
