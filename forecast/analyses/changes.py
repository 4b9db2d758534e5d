"""What changed: why the forecast moved between two exports of the same pipeline.

Deals are matched by id and every difference is given one kind. The change in
expected revenue and in P(hit) is attributed by applying the kinds one after the
other, in a fixed order, to the old pipeline and re-simulating on the same random
numbers: each part is the difference one step makes, so the parts add up exactly
to the total. An ordered attribution needs one simulation per kind where a Shapley
attribution needs one per subset of kinds (2**8), and the order (outcomes first,
then new deals, then timing, then amounts, stages and probabilities) follows how a
manager reads a week: what closed, what arrived, what moved, what was re-estimated."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from forecast.config.scenario import Scenario
from forecast.engine.model import deal_model
from forecast.engine.simulate import simulate
from forecast.engine.summary import reaches
from forecast.inputs.deals import Deals

KINDS = ("won", "lost", "new", "pulled_in", "pushed_out", "amount", "stage", "probability")


def _same(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or a == b


def classify(scenario: Scenario, old: Deals, new: Deals) -> dict[str, list[str]]:
    """Deal ids per kind of change (a deal can have several: won and a new amount)."""
    old_at = {deal: i for i, deal in enumerate(old.deal_id)}
    new_at = {deal: i for i, deal in enumerate(new.deal_id)}
    old_model, new_model = deal_model(scenario, old), deal_model(scenario, new)
    kinds: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for deal, i in old_at.items():
        if deal not in new_at:
            kinds["lost"].append(deal)  # gone from the open pipeline
            continue
        j = new_at[deal]
        if new_model.win_rate[j] == 1.0 and old_model.win_rate[i] < 1.0:
            kinds["won"].append(deal)
        elif new_model.win_rate[j] == 0.0 and old_model.win_rate[i] > 0.0:
            kinds["lost"].append(deal)
        else:
            if old.stage_index[i] != new.stage_index[j]:
                kinds["stage"].append(deal)
            if not _same(old.probability[i], new.probability[j]):
                kinds["probability"].append(deal)
        if old_model.dated_inside[i] != new_model.dated_inside[j]:
            kinds["pulled_in" if new_model.dated_inside[j] else "pushed_out"].append(deal)
        elif new.push_count[j] != old.push_count[i]:  # pushed (or count reset), same side of the period end
            kinds["pushed_out"].append(deal)
        if old.amount[i] != new.amount[j]:
            kinds["amount"].append(deal)
    kinds["new"] = [deal for deal in new.deal_id if deal not in old_at]
    return kinds


def _state(old: Deals, new: Deals, kinds: dict[str, list[str]], applied: set[str]) -> Deals:
    """The old pipeline with the changes of the ``applied`` kinds made."""
    new_at = {deal: j for j, deal in enumerate(new.deal_id)}
    owned = {field: set() for field in ("close_date", "amount", "stage_index", "probability", "push_count")}
    outcome = set(kinds["won"]) | set(kinds["lost"])
    for kind, fields in (
        ("won", ("stage_index", "probability", "close_date")),
        ("lost", ("stage_index", "probability")),
        ("pulled_in", ("close_date", "push_count")),
        ("pushed_out", ("close_date", "push_count")),
        ("amount", ("amount",)),
        ("stage", ("stage_index",)),
        ("probability", ("probability",)),
    ):
        if kind in applied:
            for field in fields:
                owned[field] |= set(kinds[kind])
    moved = set(kinds["pulled_in"]) | set(kinds["pushed_out"])
    keep = np.array(
        [not (deal in kinds["lost"] and deal not in new_at and "lost" in applied) for deal in old.deal_id]
    )
    state = old.subset(keep)
    arrays = {field: getattr(state, field).copy() for field in owned}
    for i, deal in enumerate(state.deal_id):
        j = new_at.get(deal)
        if j is None:
            continue
        for field, deals in owned.items():
            unattributed = field == "close_date" and deal not in moved and deal not in outcome
            if deal in deals or unattributed or (field == "push_count" and deal not in moved):
                arrays[field][i] = getattr(new, field)[j]  # changes no kind owns do not move the forecast
    state = dataclasses.replace(state, **arrays)
    if "new" in applied:
        state = state.concat(new.subset(np.isin(new.deal_id, kinds["new"])))
    return state


def _measure(
    scenario: Scenario, deals: Deals, trials: int | None, seed: int | None
) -> tuple[float, float | None]:
    forecast = simulate(scenario, deals, trials=trials, seed=seed)
    quota = scenario.quota
    revenue = forecast.trials.revenue
    return float(np.mean(revenue)), None if quota is None else float(
        np.mean(reaches(revenue, quota.at_least))
    )


def attribute_changes(
    scenario: Scenario, old: Deals, new: Deals, trials: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """``forecast changes``: the total change and its parts, each with the deals behind it."""
    kinds = classify(scenario, old, new)
    applied: set[str] = set()
    before = _measure(scenario, _state(old, new, kinds, applied), trials, seed)
    start = before
    parts = []
    for kind in KINDS:
        applied.add(kind)
        # a kind no deal has leaves the state as it was: nothing to simulate again
        after = _measure(scenario, _state(old, new, kinds, applied), trials, seed) if kinds[kind] else before
        parts.append(
            {
                "kind": kind,
                "expected_revenue_change": after[0] - before[0],
                "p_hit_change": None if after[1] is None else after[1] - before[1],
                "deals": kinds[kind],
            }
        )
        before = after
    end = before  # the old pipeline with every change made: the new one (deal order aside)
    return {
        "before": {"expected_revenue": start[0], "p_hit": start[1]},
        "after": {"expected_revenue": end[0], "p_hit": end[1]},
        "total_change": {
            "expected_revenue_change": end[0] - start[0],
            "p_hit_change": None if end[1] is None else end[1] - start[1],
        },
        "attribution": "ordered: " + ", ".join(KINDS),
        "parts": parts,
    }
