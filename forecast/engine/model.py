"""The resolved per-deal model: each deal's win rate, slip, landing rate and value under a scenario.

Everything that changes how a deal is simulated (its probability, a ``win_by_age`` rate, its
stage's rates, its segment's odds, push counts, the haircut) is resolved here once, from one
``StageTable``; plans and drivers act on this model, never on the raw deals."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.periods import quarter_of
from forecast.config.scenario import (
    DEFAULT_RATES,
    QUARTER_DAYS,
    Scenario,
    Target,
    WinByAge,
)
from forecast.engine.draws import deal_keys
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals


def age_bucket(ages: np.ndarray, edges: list[int]) -> np.ndarray:
    """Bucket of each age: edges are inclusive upper bounds, the last bucket is open-ended."""
    return np.searchsorted(np.asarray(edges, dtype=np.int64), ages, side="left")


def _age_cells(table: WinByAge, ages: np.ndarray, stages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's ``win_by_age`` cell: the key of its row (its stage's, else ``default``) and its bucket."""
    bucket = age_bucket(ages, table.buckets_days)
    rows = {stage_key(name) for name in table.rates}
    keys = np.array([stage_key(stage) for stage in stages], dtype=object)
    row = np.where(np.isin(keys, list(rows - {DEFAULT_RATES})), keys, DEFAULT_RATES)
    return row, bucket


def rates_for(table: WinByAge, ages: np.ndarray, stages: np.ndarray) -> np.ndarray:
    """Each deal's rate: its stage's row (else ``default``) at its age bucket."""
    row, bucket = _age_cells(table, ages, stages)
    rates = {stage_key(name): np.asarray(rates) for name, rates in table.rates.items()}
    rate = np.empty(len(row))
    for key, rates_row in rates.items():
        mask = row == key
        rate[mask] = rates_row[bucket[mask]]
    return rate


def age_rate_cells(table: WinByAge, ages: np.ndarray, stages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's uncertain ``win_by_age`` cell: its key, and its evidence's worth in deals (0: known)."""
    row, bucket = _age_cells(table, ages, stages)
    keys, worth = np.zeros(len(row), np.uint64), np.zeros(len(row))
    for name in table.rates:
        cells = table.evidence_row(name)
        mask = row == stage_key(name)
        worth[mask] = np.array([0.0 if cell is None else cell.worth for cell in cells])[bucket[mask]]
        labels = [f"{RATE_CELL}win_by_age={stage_key(name)}:{b}" for b in range(len(cells))]
        keys[mask] = deal_keys(labels)[bucket[mask]]
    return keys, worth


RATE_CELL = "__rate__:"  # streams of uncertain rates: "__rate__:stage=NAME", "__rate__:win_by_age=ROW:BUCKET"


@dataclass(frozen=True)
class StageTable:
    """The scenario's stages, resolved once: names, win rates and slip by stage index.

    Arrays have one entry per stage and a last one for index -1 (no stage): a NaN win rate
    (such a deal has its own probability) and ``slip.default``.
    """

    names: tuple[str, ...]
    win_rate: np.ndarray  # float64: the stage's win rate; NaN for index -1
    slip: np.ndarray  # float64: the stage's slip, else slip.default
    rate_cell: np.ndarray  # uint64: key of the stage's uncertain rate; 0 for index -1
    rate_deals: np.ndarray  # float64: its evidence's worth in deals; 0: known

    @classmethod
    def of(cls, scenario: Scenario) -> StageTable:
        stages = scenario.stages or []
        default = scenario.slip.default
        cells = [f"{RATE_CELL}stage={stage_key(stage.name)}" for stage in stages]
        return cls(
            names=tuple(stage.name for stage in stages),
            win_rate=np.array([stage.win_rate for stage in stages] + [np.nan]),
            slip=np.array([default if stage.slip is None else stage.slip for stage in stages] + [default]),
            rate_cell=np.concatenate([deal_keys(cells), np.zeros(1, np.uint64)]),
            rate_deals=np.array([stage.evidence.worth if stage.evidence else 0.0 for stage in stages] + [0]),
        )

    def index(self, name: str) -> int:
        """Index of a stage by name (names ignore case and surrounding spaces)."""
        return [stage_key(stage) for stage in self.names].index(stage_key(name))

    def name(self, index: int) -> str | None:
        """The stage's name; None for index -1."""
        return self.names[index] if index >= 0 else None

    def names_of(self, stage_index: np.ndarray) -> np.ndarray:
        """Each deal's stage name ("" for index -1), as object strings."""
        return np.array([*self.names, ""], dtype=object)[stage_index]


def aged_win_rates(
    scenario: Scenario, deals: Deals, stages: StageTable
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each deal's ``win_by_age`` rate for the time left in the period (NaN without the table or a
    created_date), and its cell's key and evidence's worth in deals (0: known).

    The table gives the chance of a win within ``period_days`` from the deal's age on ``as_of``.
    The time from ``as_of`` to the period end is usually a different length (a run mid-quarter,
    a month, a year): the rate is converted at a constant hazard, ``1 - (1 - rate) ** (left /
    period_days)``, which ignores that deals age within the period (for long periods, fit the
    table over periods of that length).
    """
    rate = np.full(len(deals), np.nan)
    cell, worth = np.zeros(len(deals), np.uint64), np.zeros(len(deals))
    dated = ~np.isnat(deals.created)
    table = scenario.win_by_age
    if table is None or not dated.any():
        return rate, cell, worth
    as_of = np.datetime64(scenario.snapshot_date, "D")
    ages = np.maximum((as_of - deals.created[dated]).astype(np.int64), 0)  # created after as_of: brand new
    names = stages.names_of(deals.stage_index[dated])
    per_period = rates_for(table, ages, names)
    share = _share_of_a_period_left(scenario, table.period_days)
    rate[dated] = per_period if share == 1.0 else 1.0 - (1.0 - per_period) ** share
    cell[dated], worth[dated] = age_rate_cells(table, ages, names)
    return rate, cell, worth


def segment_odds(scenario: Scenario, deals: Deals) -> np.ndarray:
    """Each deal's ``segment_rates`` factor: its segment's odds over the overall odds (1 without the
    table, or for a value it does not list)."""
    table = scenario.segment_rates
    if table is None:
        return np.ones(len(deals))
    if table.column not in deals.columns():
        raise ScenarioError(
            f"segment_rates.column: the pipeline has no column {table.column!r} "
            f"(columns: {', '.join(deals.columns())})"
        )

    def odds(rate: float) -> float:
        return rate / (1.0 - rate)

    factor = {value: odds(rate) / odds(table.overall) for value, rate in table.rates.items()}
    return np.array([factor.get(value, 1.0) for value in deals.column(table.column)])


def _share_of_a_period_left(scenario: Scenario, period_days: float) -> float:
    """The time from ``as_of`` to the period end, in periods the table was measured over: a
    calendar quarter counts as one whatever its days (the table is measured on quarters)."""
    start, end = scenario.period_range.start, scenario.period_range.end
    left = (end - scenario.snapshot_date).days + 1  # both ends counted
    if quarter_of(start) == scenario.period_range and period_days == QUARTER_DAYS:
        return left / ((end - start).days + 1)
    return left / period_days


@dataclass(frozen=True)
class DealModel:
    """Per-deal probabilities the kernel needs, resolved from the scenario.

    What-ifs (plans) change this model, never the deals it was resolved from: a deal's
    resolved rates are not its inputs (an age rate is no probability override, a slip
    already carries its pushes), so writing them back and resolving again would count
    them twice.
    """

    win_rate: np.ndarray  # float64: the deal's probability, else its win_by_age rate, else its stage's
    slip: np.ndarray  # float64: the deal's slip, else its stage's, else slip.default; 0 when age-rated
    land_rate: np.ndarray  # float64: P(lands in the period | won)
    dated_inside: np.ndarray  # bool: close date on or before the period end
    value: np.ndarray  # float64: amount after haircut
    age_rated: np.ndarray  # bool: win_rate is a win_by_age rate of winning inside the period (no slip)
    rate_cell: np.ndarray  # uint64: key of the deal's uncertain rate (its stage's or win_by_age cell's)
    rate_deals: np.ndarray  # float64: that rate's evidence in deals, 0 when the rate is known

    def __len__(self) -> int:
        return len(self.win_rate)

    def subset(self, mask: np.ndarray) -> DealModel:
        """The model of the deals selected by a boolean mask or an index array."""
        return DealModel(**{name: getattr(self, name)[mask] for name in _MODEL_ARRAYS})

    def concat(self, other: DealModel) -> DealModel:
        """This model followed by ``other``'s, as ``Deals.concat`` orders the deals."""
        return DealModel(
            **{name: np.concatenate([getattr(self, name), getattr(other, name)]) for name in _MODEL_ARRAYS}
        )

    def with_win_rate_delta(self, mask: np.ndarray, delta: float) -> DealModel:
        """``delta`` added to the win rates of the deals in ``mask`` (clipped to 0-1); slip as resolved."""
        win_rate = self.win_rate.copy()
        win_rate[mask] = np.clip(win_rate[mask] + delta, 0.0, 1.0)
        return dataclasses.replace(self, win_rate=win_rate)

    def with_slip_delta(self, mask: np.ndarray, delta: float) -> DealModel:
        """``delta`` added to the slip of the deals in ``mask`` (clipped to 0-1), and their landing
        rate with it if dated in the period; age-rated deals have no slip to change (their rate is
        a win inside the period) and deals dated later still land only by pull-in."""
        changed = mask & ~self.age_rated
        slip = self.slip.copy()
        slip[changed] = np.clip(slip[changed] + delta, 0.0, 1.0)
        land_rate = np.where(changed & self.dated_inside, 1.0 - slip, self.land_rate)
        return dataclasses.replace(self, slip=slip, land_rate=land_rate)

    def accelerated(self, positions: np.ndarray) -> DealModel:
        """The deals at ``positions`` land in the period when won: no slip, their win rate kept."""
        slip, land_rate, dated_inside = self.slip.copy(), self.land_rate.copy(), self.dated_inside.copy()
        slip[positions], land_rate[positions], dated_inside[positions] = 0.0, 1.0, True
        return dataclasses.replace(self, slip=slip, land_rate=land_rate, dated_inside=dated_inside)


_MODEL_ARRAYS = tuple(field.name for field in dataclasses.fields(DealModel))


def deal_model(scenario: Scenario, deals: Deals) -> DealModel:
    """Win rate, landing rate and value of every deal under the scenario's rules.

    A deal's win rate is its own probability, else (with ``win_by_age``, a created date and
    a close date inside the period) the rate for its stage and age on ``as_of`` (a win
    within the period: such a deal lands when won), else its stage's win rate; with
    ``segment_rates``, the latter two are scaled by the deal's segment odds. Deals dated
    after the period keep their stage's rate and land only by pull-in. With
    ``scenario.uncertain_rates``, a stage or age rate with evidence is uncertain: the deal
    keeps the key of its cell and the evidence's worth, and the simulation draws the rate per
    trial (the deal's own probability is the CRM's word: known).
    """
    stages = StageTable.of(scenario)
    period_end = np.datetime64(scenario.period_range.end, "D")
    dated_inside = deals.close_date <= period_end
    by_age, age_cell, age_deals = aged_win_rates(scenario, deals, stages)
    aged = np.isnan(deals.probability) & ~np.isnan(by_age) & dated_inside  # a rate of winning in the period
    own = ~np.isnan(deals.probability)
    win_rate = np.where(own, deals.probability, stages.win_rate[deals.stage_index])
    win_rate = np.where(aged, by_age, win_rate)
    odds = segment_odds(scenario, deals)
    scaled = win_rate * odds / (win_rate * odds + 1.0 - win_rate)  # the rate's odds times the segment's
    win_rate = np.where(np.isnan(deals.probability) & (odds != 1.0), scaled, win_rate)
    rate_cell = np.where(aged, age_cell, stages.rate_cell[deals.stage_index])
    rate_deals = np.where(aged, age_deals, np.where(own, 0.0, stages.rate_deals[deals.stage_index]))
    if not scenario.uncertain_rates:
        rate_deals = np.zeros(len(deals))
    slip = np.where(np.isnan(deals.slip), stages.slip[deals.stage_index], deals.slip)
    slip = np.minimum(1.0, slip * scenario.slip.push_factor**deals.push_count)  # pushed deals slip more
    land_rate = np.where(dated_inside, 1.0 - slip, scenario.slip.pull_in)
    slip = np.where(aged, 0.0, slip)  # its win is inside the period by definition: no slip, no pull-in
    land_rate = np.where(aged, 1.0, land_rate)
    value = deals.amount * (1.0 - scenario.amount.haircut)
    return DealModel(
        win_rate=win_rate,
        slip=slip,
        land_rate=land_rate,
        dated_inside=dated_inside,
        value=value,
        age_rated=aged,
        rate_cell=np.where(rate_deals > 0, rate_cell, np.uint64(0)).astype(np.uint64),
        rate_deals=rate_deals,
    )


def rate_overrides(scenario: Scenario, deals: Deals) -> dict[str, Any] | None:
    """Deals whose own probability (the export's probability column) shadows the rate the scenario
    would give them: a ``win_by_age`` rate (created date, dated in the period) or their stage's win
    rate. None when it shadows nothing; said once, since the scenario's rates then do not count."""
    column = deals.rules.probability
    own = ~np.isnan(deals.probability)
    if column is None or not own.any():
        return None
    dated_inside = deals.close_date <= np.datetime64(scenario.period_range.end, "D")
    by_age = own & ~np.isnat(deals.created) & dated_inside if scenario.win_by_age is not None else own & False
    by_stage = own & ~by_age & (deals.stage_index >= 0) if scenario.stages else own & False
    if not (by_age.any() or by_stage.any()):
        return None
    header, mapped = column
    return {
        "column": header,
        "win_by_age": int(by_age.sum()),
        "stage_rates": int(by_stage.sum()),
        "setting": "drop pipeline.columns.probability"
        if mapped
        else f"remove the column {header!r} from the export (it is read as the probability by its name)",
    }


def where_problems(target: Target, deals: Deals) -> list[str]:
    """The columns a target's ``where`` names that the pipeline lacks (checked without a mask)."""
    usable = deals.columns()
    return [
        f"target {target.name!r}: where.{column}: the pipeline has no such column "
        f"(columns: {', '.join(usable)})"
        for column in target.where
        if column not in usable
    ]


def target_mask(target: Target, deals: Deals) -> np.ndarray:
    """Deals that count towards a target."""
    problems = where_problems(target, deals)
    if problems:
        raise ScenarioError(problems)
    mask = deals.matching(target.where)
    return mask & deals.new_logo if target.metric == "new_logos" else mask


def overdue_deals(scenario: Scenario, deals: Deals) -> np.ndarray:
    """Deals whose close date is before ``as_of``: CRM hygiene to fix."""
    return deals.close_date < np.datetime64(scenario.snapshot_date, "D")
