"""``Deals``: open deals as flat arrays, one entry per deal, with the columns filters and targets read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecast.inputs.cells import normalise

if TYPE_CHECKING:
    from forecast.config.scenario import Scenario
    from forecast.inputs.dialect import Reading


@dataclass(frozen=True)
class RowRules:
    """What loading did with the export's rows besides keeping them as open deals, rule by rule
    (``forecast validate`` lists them, ``run --json`` gives them); won rows are ``Deals.won``."""

    lost: int = 0  # rows at a lost stage, left out
    skipped: tuple[int, ...] = ()  # file rows without an amount, left out (missing_amount: skip)
    zeroed: tuple[int, ...] = ()  # file rows without an amount, read as 0 (missing_amount: zero)
    merged: int = 0  # line-item rows added into an earlier row of the same deal (aggregate)
    aggregate: str | None = None  # how line items were merged: 'sum' (pipeline.aggregate) or 'detected'
    converted: tuple[tuple[str, int], ...] = ()  # (currency, rows) converted into the base currency
    currency: str | None = None  # the amounts' currency: fx.base, or the export's one currency (None: unsaid)
    probability: tuple[str, bool] | None = None  # the export's probability column, and if mapped by name

    def with_counts(self, **counts: Any) -> RowRules:
        return replace(self, **counts)


@dataclass(frozen=True)
class LineItems:
    """The rows a line-item export gave each deal (``pipeline.aggregate``), one entry per line: what a
    ``where`` on a column that differs between a deal's lines (its product) counts of the deal."""

    deal: np.ndarray  # int64: the line's deal (its position in ``Deals``)
    amount: np.ndarray  # float64: the line's amount; a deal's amount is the sum of its lines'
    attributes: dict[str, np.ndarray]  # columns whose values differ between lines of a deal -> per line

    def take(self, positions: np.ndarray, n_deals: int) -> LineItems:
        """The lines of the deals at ``positions`` (old positions, in their new order)."""
        order = np.argsort(self.deal, kind="stable")
        count = np.bincount(self.deal, minlength=n_deals)
        first = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        taken = count[positions]
        new_first = np.concatenate([[0], np.cumsum(taken)[:-1]]).astype(np.int64)
        lines = order[np.repeat(first[positions] - new_first, taken) + np.arange(taken.sum())]
        return LineItems(
            deal=np.repeat(np.arange(len(positions), dtype=np.int64), taken),
            amount=self.amount[lines],
            attributes={name: values[lines] for name, values in self.attributes.items()},
        )


@dataclass
class Deals:
    """Open deals as arrays of equal length (one entry per deal).

    ``engine.checks.check`` validates them and records in ``checked`` the scenario they passed
    under, so they are not checked again for it; it also makes the arrays read-only, and assigning
    any field clears ``checked``, so it cannot outlive a change.
    """

    deal_id: np.ndarray  # str objects
    amount: np.ndarray  # float64, >= 0
    close_date: np.ndarray  # datetime64[D]
    probability: np.ndarray  # float64 in [0, 1]; NaN where the stage's rate applies
    stage_index: np.ndarray  # int64 into the scenario's stages; -1 when unknown or none
    new_logo: np.ndarray  # bool
    rows: np.ndarray  # int64 row number in the file; 0 for deals a plan added
    slip: np.ndarray | None = None  # float64 in [0, 1]; NaN where the stage's (or default) slip applies
    push_count: np.ndarray | None = None  # int64: times the close date was pushed out (0 if unknown)
    created: np.ndarray | None = None  # datetime64[D]: when the deal was created (NaT if unknown)
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # normalised str values
    source: Path | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # the export's header -> canonical name
    reading: Reading | None = None  # how the file was read (encoding, delimiter, rows skipped)
    won: Deals | None = None  # the export's rows at a won stage, any close date (None: built in code)
    lines: LineItems | None = None  # line items of deals merged from several rows (None: one row each)
    rules: RowRules = field(default_factory=RowRules)
    checked: Scenario | None = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name != "checked":
            super().__setattr__("checked", None)

    def __post_init__(self) -> None:
        if self.slip is None:
            self.slip = np.full(len(self.deal_id), np.nan)
        if self.push_count is None:
            self.push_count = np.zeros(len(self.deal_id), dtype=np.int64)
        if self.created is None:
            self.created = np.full(len(self.deal_id), np.datetime64("NaT"), dtype="datetime64[D]")

    def __len__(self) -> int:
        return len(self.deal_id)

    def columns(self) -> list[str]:
        """Every name ``column`` accepts."""
        return ["deal_id", "new_logo", *self.attributes, *self.aliases]

    def column(self, name: str) -> np.ndarray:
        """Values of a canonical or export column, as normalised strings, for filters."""
        name = self.aliases.get(name, name)
        if name in self.attributes:
            return self.attributes[name]
        if name == "deal_id":
            return self.deal_id
        if name == "new_logo":
            return np.array([normalise(bool(v)) for v in self.new_logo], dtype=object)
        raise KeyError(name)

    def values_of(self, column: str) -> list[str]:
        """The column's distinct values; of line items, each line's own value."""
        name = self.aliases.get(column, column)
        if self.lines is not None and name in self.lines.attributes:
            return sorted(set(self.lines.attributes[name]))
        return sorted(set(self.column(column)))

    def _line_matches(self, where: dict[str, Any]) -> np.ndarray | None:
        """Per line item: it matches every ``where`` key (None: no line items, or ``where`` names no
        column that differs between a deal's lines, so deals match as a whole)."""
        lines = self.lines
        names = [self.aliases.get(name, name) for name in where]
        if lines is None or not any(name in lines.attributes for name in names):
            return None
        match = np.ones(len(lines.deal), dtype=bool)
        for (column, wanted), name in zip(where.items(), names, strict=True):
            values = lines.attributes[name] if name in lines.attributes else self.column(column)[lines.deal]
            match &= np.isin(values, wanted_values(wanted))
        return match

    def matching(self, where: dict[str, Any]) -> np.ndarray:
        """Boolean mask of deals whose columns equal the ``where`` values (lists: any of); a deal of
        line items matches when one of its lines does."""
        mask = np.ones(len(self), dtype=bool)
        for name, wanted in where.items():
            mask &= np.isin(self.column(name), wanted_values(wanted))
        line = self._line_matches(where)
        if line is not None:
            itemised = np.zeros(len(self), dtype=bool)
            itemised[self.lines.deal] = True
            matched = np.zeros(len(self), dtype=bool)
            matched[self.lines.deal[line]] = True
            mask = np.where(itemised, matched, mask)
        return mask

    def share(self, where: dict[str, Any]) -> np.ndarray:
        """Each deal's share of its amount that counts for ``where``: its matching lines' amounts over
        its amount (1 for a deal counted whole; ``matching`` says whether it counts at all)."""
        share = np.ones(len(self))
        line = self._line_matches(where)
        if line is None:
            return share
        lines = self.lines
        total = np.bincount(lines.deal, weights=lines.amount, minlength=len(self))
        matched = np.bincount(lines.deal, weights=lines.amount * line, minlength=len(self))
        itemised = np.bincount(lines.deal, minlength=len(self)) > 0
        part = np.divide(matched, total, out=np.ones(len(self)), where=total > 0)
        return np.where(itemised, part, share)

    def subset(self, mask: np.ndarray) -> Deals:
        """The deals selected by a boolean mask or an index array."""
        lines = None if self.lines is None else self.lines.take(np.arange(len(self))[mask], len(self))
        return Deals(
            **{name: getattr(self, name)[mask] for name in _ARRAYS},
            attributes={name: values[mask] for name, values in self.attributes.items()},
            source=self.source,
            aliases=self.aliases,
            reading=self.reading,
            won=self.won,
            lines=lines,
            rules=self.rules,
        )

    def concat(self, other: Deals) -> Deals:
        """These deals followed by ``other``'s; a column only one side has is blank on the other."""
        names = list(dict.fromkeys([*self.attributes, *other.attributes]))

        def column(deals: Deals, name: str) -> np.ndarray:
            return deals.attributes.get(name, np.full(len(deals), "", dtype=object))

        return Deals(
            **{name: np.concatenate([getattr(self, name), getattr(other, name)]) for name in _ARRAYS},
            attributes={name: np.concatenate([column(self, name), column(other, name)]) for name in names},
            source=self.source,
            aliases={**other.aliases, **self.aliases},
            reading=self.reading,
            won=self.won,
            lines=_concat_lines(self, other),
            rules=self.rules,
        )


def _concat_lines(first: Deals, second: Deals) -> LineItems | None:
    """The line items of ``first`` then ``second`` (deals of one row have none); a column that differs
    between lines on one side takes the deal's value on the other."""
    sides = [
        (deals, deals.lines, offset)
        for deals, offset in ((first, 0), (second, len(first)))
        if deals.lines is not None
    ]
    if not sides:
        return None
    names = list(dict.fromkeys(name for _, lines, _ in sides for name in lines.attributes))

    def column(deals: Deals, lines: LineItems, name: str) -> np.ndarray:
        return lines.attributes[name] if name in lines.attributes else deals.column(name)[lines.deal]

    return LineItems(
        deal=np.concatenate([lines.deal + offset for _, lines, offset in sides]),
        amount=np.concatenate([lines.amount for _, lines, _ in sides]),
        attributes={
            name: np.concatenate([column(deals, lines, name) for deals, lines, _ in sides]) for name in names
        },
    )


_ARRAYS = (
    "deal_id", "amount", "close_date", "probability", "slip", "stage_index", "new_logo", "rows", "push_count",
    "created",
)  # fmt: skip


def by_value(quotas: dict[Any, float]) -> dict[str, float]:
    """Quotas keyed the way cells compare (``normalise``): YAML's 3 and a cell's '3' meet."""
    return {normalise(value): quota for value, quota in quotas.items()}


def wanted_values(wanted: Any) -> list[str]:
    values = wanted if isinstance(wanted, list) else [wanted]
    return [normalise(value) for value in values]
