"""``Deals``: open deals as flat arrays, one entry per deal, with the columns filters and targets read."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from forecast.inputs.cells import normalise

if TYPE_CHECKING:
    from forecast.config.scenario import Scenario


@dataclass(frozen=True)
class RowRules:
    """What loading did with the export's rows besides keeping them as open deals, rule by rule
    (``forecast validate`` lists them, ``run --json`` gives them); won rows are ``Deals.won``."""

    lost: int = 0  # rows at a lost stage, left out
    skipped: tuple[int, ...] = ()  # file rows without an amount, left out (missing_amount: skip)
    zeroed: tuple[int, ...] = ()  # file rows without an amount, read as 0 (missing_amount: zero)
    merged: int = 0  # line-item rows added into an earlier row of the same deal (aggregate)
    converted: tuple[tuple[str, int], ...] = ()  # (currency, rows) converted into the base currency
    currency: str | None = None  # the amounts' currency: fx.base, or the export's one currency (None: unsaid)
    probability: tuple[str, bool] | None = None  # the export's probability column, and if mapped by name

    def with_counts(self, **counts: Any) -> RowRules:
        return replace(self, **counts)


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
    won: Deals | None = None  # the export's rows at a won stage, any close date (None: built in code)
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

    def matching(self, where: dict[str, Any]) -> np.ndarray:
        """Boolean mask of deals whose columns equal the ``where`` values (lists: any of)."""
        mask = np.ones(len(self), dtype=bool)
        for name, wanted in where.items():
            mask &= np.isin(self.column(name), wanted_values(wanted))
        return mask

    def share(self, where: dict[str, Any]) -> np.ndarray:
        """Each deal's share of its amount that counts for ``where``: 1 for a deal of one line."""
        return np.ones(len(self))

    def subset(self, mask: np.ndarray) -> Deals:
        """The deals selected by a boolean mask or an index array."""
        return Deals(
            **{name: getattr(self, name)[mask] for name in _ARRAYS},
            attributes={name: values[mask] for name, values in self.attributes.items()},
            source=self.source,
            aliases=self.aliases,
            won=self.won,
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
            won=self.won,
            rules=self.rules,
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
