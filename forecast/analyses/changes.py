"""What changed: why the forecast moved between two exports of the same pipeline.

Deals are matched by id, and every difference in a field that can move the forecast (amount,
stage, close date, probability, slip, created date, push count, new logo, and the columns that
targets and correlation groups read) is given one kind. The change in expected revenue, in
P(hit quota) and in P(all targets) is attributed by applying the kinds one after the other, in
a fixed order, to the old pipeline and re-simulating on the same random numbers: each part is
the difference one step makes, so the parts add up exactly to the total. An ordered attribution
needs one simulation per kind where a Shapley attribution needs one per subset of kinds, and the
order (outcomes first, then new deals, then timing, then amounts, stages, probabilities, slip and
ages, then who and what a deal is for) follows how a manager reads a week: what closed, what
arrived, what moved, what was re-estimated, what was reassigned. Differences that cannot move the
forecast (a close date moved within the period, a push count without ``slip.push_factor``, a
column nothing reads) are applied from the start."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.config.scenario import Scenario
from forecast.engine.model import deal_model
from forecast.engine.simulate import simulate
from forecast.engine.summary import all_targets_hit, reaches
from forecast.errors import PipelineError
from forecast.inputs.deals import Deals


@dataclass(frozen=True)
class DealField:
    """A deal field that can move the forecast: a ``Deals`` array, or an attribute column."""

    name: str
    column: bool = False

    def of(self, deals: Deals) -> np.ndarray:
        return deals.attributes[self.name] if self.column else getattr(deals, self.name)


AMOUNT, CLOSE_DATE, PUSH_COUNT = DealField("amount"), DealField("close_date"), DealField("push_count")
STAGE, STAGE_NAME = DealField("stage_index"), DealField("stage", column=True)
PROBABILITY, SLIP, CREATED, NEW_LOGO = (
    DealField("probability"),
    DealField("slip"),
    DealField("created"),
    DealField("new_logo"),
)
FIELD_KINDS = {
    AMOUNT: "amount",
    STAGE: "stage",
    STAGE_NAME: "stage",
    PROBABILITY: "probability",
    SLIP: "slip",
    CREATED: "created_date",
    NEW_LOGO: "new_logo",
}  # the kind of a deal's difference in that field, unless an outcome or a move claims it
FIELDS = (AMOUNT, CLOSE_DATE, PUSH_COUNT, STAGE, STAGE_NAME, PROBABILITY, SLIP, CREATED, NEW_LOGO)
OUTCOME_FIELDS = {STAGE, STAGE_NAME, PROBABILITY, SLIP, CREATED, CLOSE_DATE, PUSH_COUNT}  # how it wins, lands
TIMING_FIELDS = {CLOSE_DATE, PUSH_COUNT}
KINDS = ("won", "lost", "new", "pulled_in", "pushed_out", *dict.fromkeys(FIELD_KINDS.values()))
COVERED_COLUMNS = ("deal_id", "new_logo", "stage")  # the match key, or a field with its own kind


def _read_columns(scenario: Scenario) -> dict[str, str]:
    """Columns (as the scenario writes them) that targets and correlation groups read -> where."""
    read = {}
    for position, target in enumerate(scenario.targets):
        for column in target.where:
            read.setdefault(column, f"targets[{position}].where.{column}")
    for column in scenario.correlation.by:
        read.setdefault(column, f"correlation.by.{column}")
    return read


def _column_fields(scenario: Scenario, old: Deals, new: Deals) -> dict[DealField, str]:
    """The attribute columns read, each as its field and its kind's name; an export lacking one is
    an error naming the file and the key that reads it."""
    problems, fields = [], {}
    for column, where in _read_columns(scenario).items():
        for deals in (old, new):
            if column not in deals.columns():
                problems.append(
                    f"{deals.source}: {where}: the export has no such column "
                    f"(columns: {', '.join(deals.columns())})"
                )
        canonical = old.aliases.get(column, column)
        if canonical not in COVERED_COLUMNS and canonical in old.attributes:
            kind = f"{canonical} (column)" if canonical in KINDS else canonical
            fields[DealField(canonical, column=True)] = kind
    if problems:
        raise PipelineError(list(dict.fromkeys(problems)))
    return fields


def _differs(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Element-wise: the values differ (two blanks, NaN or NaT, are the same)."""
    same = old == new
    if old.dtype.kind == "f":
        same |= np.isnan(old) & np.isnan(new)
    elif old.dtype.kind == "M":
        same |= np.isnat(old) & np.isnat(new)
    return ~same


@dataclass
class Changes:
    """Every difference between two snapshots, each with the kind that applies it."""

    kinds: dict[str, list[str]]  # kind -> the ids of the deals whose differences it applies
    gone: np.ndarray  # bool per old deal: not in the new export's open deals nor won since
    won_gone: np.ndarray  # bool per old deal: won since, a won row of the new export
    added: np.ndarray  # bool per new deal: not in the old export
    steps: dict[DealField, list[tuple[str | None, int, int]]]  # (kind or None: from the start, old, new)


def _classify(scenario: Scenario, old: Deals, new: Deals) -> Changes:
    column_kinds = _column_fields(scenario, old, new)
    kinds: dict[str, list[str]] = {kind: [] for kind in (*KINDS, *column_kinds.values())}
    field_kinds = {**FIELD_KINDS, **column_kinds}
    fields = [
        field
        for field in (*FIELDS, *column_kinds)
        if not field.column or (field.name in old.attributes and field.name in new.attributes)
    ]
    new_at = {deal: j for j, deal in enumerate(new.deal_id)}
    matched = np.array([new_at.get(deal, -1) for deal in old.deal_id], dtype=np.int64)
    old_model, new_model = deal_model(scenario, old), deal_model(scenario, new)
    steps: dict[DealField, list[tuple[str | None, int, int]]] = {field: [] for field in fields}
    differs = {}
    for field in fields:
        differs[field] = np.zeros(len(old), dtype=bool)
        inside = matched >= 0
        differs[field][inside] = _differs(field.of(old)[inside], field.of(new)[matched[inside]])
    won_now, won_then = _won_rows(new), _won_rows(old)
    won_gone = (matched < 0) & np.isin(old.deal_id, list(won_now))
    for i, deal in enumerate(old.deal_id):
        j = matched[i]
        if j < 0:  # gone from the open pipeline: a won row now, or lost
            kinds["won" if won_gone[i] else "lost"].append(deal)
            continue
        outcome = None
        if new_model.win_rate[j] == 1.0 and old_model.win_rate[i] < 1.0:
            outcome = "won"
        elif new_model.win_rate[j] == 0.0 and old_model.win_rate[i] > 0.0:
            outcome = "lost"
        timing = None
        if old_model.dated_inside[i] != new_model.dated_inside[j]:
            timing = "pulled_in" if new_model.dated_inside[j] else "pushed_out"
        elif differs[PUSH_COUNT][i] and scenario.slip.push_factor != 1.0:  # same side of the period end
            # pushed again: its slip rose; a count that fell (reset, corrected) lowered its slip
            timing = "pushed_out" if new.push_count[j] > old.push_count[i] else "slip"
        owners = set()
        for field in fields:
            if not differs[field][i]:
                continue
            if outcome is not None and field in OUTCOME_FIELDS:
                owner = outcome
            elif field in TIMING_FIELDS:
                owner = timing  # None: a date moved within its side of the period end changes nothing
            else:
                owner = field_kinds[field]
            steps[field].append((owner, i, int(j)))
            owners.add(owner)
        for kind in kinds:
            if kind in owners:
                kinds[kind].append(deal)
    added = ~np.isin(new.deal_id, old.deal_id)
    kinds["new"] = list(new.deal_id[added])
    # won rows that changed otherwise (won outside the open pipeline, or their amount or date edited)
    kinds["won"] += sorted(
        deal
        for deal in {*won_now, *won_then}
        if won_now.get(deal) != won_then.get(deal) and deal not in kinds["won"]
    )
    return Changes(kinds=kinds, gone=(matched < 0) & ~won_gone, won_gone=won_gone, added=added, steps=steps)


def _won_rows(deals: Deals) -> dict[str, tuple]:
    """Deal id -> (amount, close date) of each won row the export carries (booked if in the period)."""
    if deals.won is None:
        return {}
    won = deals.won
    return {deal: (won.amount[i], won.close_date[i]) for i, deal in enumerate(won.deal_id)}


def classify(scenario: Scenario, old: Deals, new: Deals) -> dict[str, list[str]]:
    """Deal ids per kind of change (a deal can have several: won and a new amount)."""
    return _classify(scenario, old, new).kinds


def _state(old: Deals, new: Deals, changes: Changes, applied: set[str]) -> Deals:
    """The old pipeline with the changes of the ``applied`` kinds made (and those of no kind)."""
    arrays, columns = {}, dict(old.attributes)
    for field, steps in changes.steps.items():
        taken = [(i, j) for owner, i, j in steps if owner is None or owner in applied]
        if not taken:
            continue
        values = field.of(old).copy()
        at_old, at_new = (np.array(side, dtype=np.int64) for side in zip(*taken, strict=True))
        values[at_old] = field.of(new)[at_new]
        if field.column:
            columns[field.name] = values
        else:
            arrays[field.name] = values
    state = dataclasses.replace(old, **arrays, attributes=columns)
    if "won" in applied:  # the deals won since leave the open pipeline; the new export's won rows are booked
        state = state.subset(~changes.won_gone)
        state.won = new.won
    if "lost" in applied:
        state = state.subset(~changes.gone[~changes.won_gone] if "won" in applied else ~changes.gone)
    if "new" in applied:
        state = state.concat(new.subset(changes.added))
    return state


def _measure(
    scenario: Scenario, deals: Deals, trials: int | None, seed: int | None
) -> tuple[float, float | None, float | None]:
    """Expected revenue, P(hit quota) and P(all targets) (None without such targets)."""
    forecast = simulate(scenario, deals, trials=trials, seed=seed)
    quota = scenario.quota
    revenue = forecast.trials.revenue
    all_hit = all_targets_hit(forecast)
    return (
        float(np.mean(revenue)),
        None if quota is None else float(np.mean(reaches(revenue, quota.at_least))),
        None if all_hit is None else float(np.mean(all_hit)),
    )


def _difference(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _changes(after: tuple, before: tuple) -> dict[str, float | None]:
    return {
        f"{name}_change": _difference(a, b)
        for name, a, b in zip(("expected_revenue", "p_hit", "p_all_targets"), after, before, strict=True)
    }


def _values(measure: tuple) -> dict[str, float | None]:
    return dict(zip(("expected_revenue", "p_hit", "p_all_targets"), measure, strict=True))


def attribute_changes(
    scenario: Scenario, old: Deals, new: Deals, trials: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """``forecast changes``: the total change and its parts, each with the deals behind it."""
    changes = _classify(scenario, old, new)
    applied: set[str] = set()
    before = _measure(scenario, _state(old, new, changes, applied), trials, seed)
    start = before
    parts = []
    for kind, deals in changes.kinds.items():
        applied.add(kind)
        # a kind no deal has leaves the state as it was: nothing to simulate again
        after = _measure(scenario, _state(old, new, changes, applied), trials, seed) if deals else before
        parts.append({"kind": kind, **_changes(after, before), "deals": deals})
        before = after
    end = before  # the old pipeline with every change made: the new one (deal order aside)
    return {
        "targets": [target.name for target in scenario.targets],
        "before": _values(start),
        "after": _values(end),
        "total_change": _changes(end, start),
        "attribution": "ordered: " + ", ".join(changes.kinds),
        "parts": parts,
    }
