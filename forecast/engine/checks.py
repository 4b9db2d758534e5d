"""``check(scenario, deals)``: the one gate before the engine, so no kernel sees a value outside its
contract.

``load_deals`` parses a file cell by cell; deals built in code (the Python API, plans, backtests)
are not parsed at all. Both pass here before a simulation: every array has one entry per deal and
the dtype the kernels take, every value is in its range, and the largest revenue a trial could
reach stays below ``MAX_TOTAL``, so sums and squares over the trials stay finite."""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from forecast.config.base import MAX_TOTAL, MAX_TRIALS
from forecast.config.scenario import Scenario
from forecast.engine.activity import expected_new_deals
from forecast.engine.draws import largest_multiplier, poisson_chunks, poisson_limit
from forecast.errors import DealError, ScenarioError
from forecast.inputs.deals import Deals

MAX_NEW_DEALS = 10_000  # expected new deals per trial; each is drawn, so the cost grows with it
LARGEST_SHOWN = 3  # deals named when the total is too large

# field -> (numpy kinds accepted, the dtype the engine keeps, what the values must be)
_FIELDS = {
    "amount": ("fiu", np.float64, "numbers"),
    "probability": ("fiu", np.float64, "numbers (NaN: the stage's win rate)"),
    "slip": ("fiu", np.float64, "numbers (NaN: the stage's slip)"),
    "stage_index": ("iu", np.int64, "whole numbers"),
    "push_count": ("iu", np.int64, "whole numbers"),
    "rows": ("iu", np.int64, "whole numbers"),
    "new_logo": ("b", np.bool_, "booleans"),
    "close_date": ("M", "datetime64[D]", "datetime64 dates"),
    "created": ("M", "datetime64[D]", "datetime64 dates (NaT: unknown)"),
}


def deal_label(deals: Deals, index: int) -> str:
    """How errors name a deal: its file and row when it came from one, and its id."""
    row = int(deals.rows[index])
    where = f"{deals.source}: " if deals.source is not None and row > 0 else ""
    return f"{where}{f'row {row}, ' if row > 0 else ''}deal {str(deals.deal_id[index])!r}"


def run_settings(scenario: Scenario, trials: int | None, seed: int | None) -> tuple[int, int]:
    """The trials and seed to run: the overrides (checked as the scenario file's are), else the file's."""
    problems = []
    if trials is not None and not (isinstance(trials, Integral) and 1 <= trials <= MAX_TRIALS):
        problems.append(
            f"{scenario.label}: trials {trials!r}; expected a whole number from 1 to {MAX_TRIALS:,}"
        )
    if seed is not None and not (isinstance(seed, Integral) and 0 <= seed < 2**63):
        problems.append(f"{scenario.label}: seed {seed!r}; expected a whole number from 0 to 2**63 - 1")
    if problems:
        raise ScenarioError(problems)
    return (
        scenario.simulation.trials if trials is None else int(trials),
        scenario.simulation.seed if seed is None else int(seed),
    )


def check(scenario: Scenario, deals: Deals) -> None:
    """Raise a ``ForecastError`` listing every reason the engine cannot simulate these deals under
    this scenario; each message names the deal (id, and file row when known), the field and what
    was expected.

    Passing records the scenario in ``deals.checked``: a second call for it does nothing. The
    deals' own values are checked only the first time (their arrays then become read-only copies
    in the kernels' dtypes); under another scenario (a plan, a sweep) only what depends on it is:
    stage positions, the expected new deals, the largest total.
    """
    if deals.checked is scenario:
        return
    if deals.checked is None:
        _check_values(deals)
        if deals.won is not None:  # the won rows are booked: a NaN amount there is a NaN revenue
            _check_values(deals.won)
    problems = _stage_problems(scenario, deals)
    if problems:
        raise DealError(problems)
    _check_totals(scenario, deals, _most_new_revenue(scenario))
    deals.checked = scenario


def _check_values(deals: Deals) -> None:
    """Shapes and kinds first (nothing per deal can be read without them), then every value."""
    ids = np.asarray(deals.deal_id)
    where = f"{deals.source}: deals" if deals.source is not None else "deals"
    if ids.ndim != 1:
        raise DealError(f"{where}.deal_id: shape {ids.shape}; expected one id per deal")
    n = ids.size
    arrays = {name: np.asarray(getattr(deals, name)) for name in _FIELDS}
    problems = [
        f"{where}.{name}: shape {array.shape} for {n} deals; expected one entry per deal"
        for name, array in [
            *arrays.items(),
            *((f"attributes[{k!r}]", np.asarray(v)) for k, v in deals.attributes.items()),
        ]
        if array.shape != (n,)
    ]
    problems += [
        f"{where}.{name}: {arrays[name].dtype} values; expected {what}"
        for name, (kinds, _, what) in _FIELDS.items()
        if arrays[name].dtype.kind not in kinds
    ]
    if problems:
        raise DealError(problems)
    values = {name: np.array(arrays[name], dtype=dtype) for name, (_, dtype, _) in _FIELDS.items()}
    values["deal_id"] = np.array([str(deal) for deal in ids], dtype=object)
    problems = _value_problems(deals, values)
    if problems:
        raise DealError(problems)
    for name, array in values.items():
        array.flags.writeable = False
        setattr(deals, name, array)


_RANGES = {
    "amount": "expected a finite number >= 0",
    "probability": "expected 0 to 1, or NaN for the stage's win rate",
    "slip": "expected 0 to 1, or NaN for the stage's slip",
    "stage_index": "expected -1 (no stage) or a stage's position in the scenario's stages",
    "push_count": "expected a whole number >= 0",
    "close_date": "expected a date",
}


def _value_problems(deals: Deals, values: dict[str, np.ndarray]) -> list[str]:
    """Every value out of its range, and every empty or repeated id, in deal order."""
    amount, probability, slip = values["amount"], values["probability"], values["slip"]
    bad = {
        "amount": ~(np.isfinite(amount) & (amount >= 0)),
        "probability": ~(np.isnan(probability) | ((probability >= 0) & (probability <= 1))),
        "slip": ~(np.isnan(slip) | ((slip >= 0) & (slip <= 1))),
        "stage_index": values["stage_index"] < -1,
        "push_count": values["push_count"] < 0,
        "close_date": np.isnat(values["close_date"]),
    }
    found = [
        (index, f"{deal_label(deals, index)}: {name} {values[name][index]}; {_RANGES[name]}")
        for name, mask in bad.items()
        for index in np.flatnonzero(mask)
    ]
    ids = values["deal_id"]
    # else every id is fine; the strip runs over the array in order (the set's order is 5x slower)
    if len(set(ids)) < len(ids) or not all(map(str.strip, ids)):
        seen: dict[str, int] = {}
        for index, deal in enumerate(ids):
            if deal.strip() == "":
                found.append((index, f"{deal_label(deals, index)}: deal_id is empty; expected a unique id"))
            elif deal in seen:
                found.append(
                    (
                        index,
                        f"{deal_label(deals, index)}: deal_id duplicates {deal_label(deals, seen[deal])}; "
                        "expected a unique id (a deal's random numbers follow its id)",
                    )
                )
            else:
                seen[deal] = index
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def _stage_problems(scenario: Scenario, deals: Deals) -> list[str]:
    """Stage positions within the scenario's stages, and a rate for every deal."""
    stages = scenario.stages or []
    names = ", ".join(stage.name for stage in stages)
    problems = [
        f"{deal_label(deals, index)}: stage_index {deals.stage_index[index]}; expected "
        + (
            f"-1 (no stage) to {len(stages) - 1} (stages: {names})"
            if stages
            else "-1: the scenario has no stages"
        )
        for index in np.flatnonzero(deals.stage_index >= len(stages))
    ]
    fallback = "a stage_index" if stages else "stages in the scenario"
    problems += [
        f"{deal_label(deals, index)}: no probability and no stage to take a win rate from; "
        f"expected a probability, or {fallback}"
        for index in np.flatnonzero(np.isnan(deals.probability) & (deals.stage_index < 0))
    ]
    return problems


def _most_new_revenue(scenario: Scenario) -> float:
    """The most revenue the new pipeline can draw in a trial: every Poisson chunk at its limit,
    every size at the largest multiplier. Refuses more expected deals than ``MAX_NEW_DEALS``."""
    pipeline = scenario.new_pipeline
    if pipeline is None:
        return 0.0
    expected = expected_new_deals(scenario)
    if expected > MAX_NEW_DEALS:
        raise ScenarioError(
            f"{scenario.source or scenario.label}: new_pipeline would create {expected:,.0f} deals per "
            f"trial; at most {MAX_NEW_DEALS:,} are simulated one by one (lower conversations_per_week)"
        )
    chunks = poisson_chunks(expected)
    most_deals = chunks * (math.floor(poisson_limit(expected / chunks)) + 1)
    return most_deals * pipeline.deal_size.mean * largest_multiplier(pipeline.deal_size.sigma)


def _check_totals(scenario: Scenario, deals: Deals, new_revenue: float) -> None:
    """The largest revenue a trial could reach (booked, with every won row of the export, every deal
    won at the largest amount noise, the new pipeline's most) must be at most ``MAX_TOTAL``."""
    with np.errstate(over="ignore"):  # an overflow is a total too large: reported below
        won = float(np.sum(deals.won.amount)) if deals.won is not None else 0.0  # at most what is booked
        booked = scenario.booked_totals.revenue + won
        open_amount = float(np.sum(deals.amount)) * (1.0 - scenario.amount.haircut)
    multiplier = largest_multiplier(scenario.amount.sigma)
    total = booked + open_amount * multiplier + new_revenue
    if total <= MAX_TOTAL:
        return
    largest = np.argsort(-deals.amount, kind="stable")[:LARGEST_SHOWN]
    reach = f"{total:.3g}" if math.isfinite(total) else "more than float64 holds (1.8e308)"
    raise DealError(
        f"{scenario.source or scenario.label}: a trial's revenue could reach {reach} (booked "
        f"{booked:.3g} + open deals {open_amount:.3g} after haircut x amount noise up to {multiplier:.3g} "
        f"+ new pipeline up to {new_revenue:.3g}); expected at most {MAX_TOTAL:.0e}, so that sums over "
        "the trials and their squares stay finite; the largest deals: "
        + ", ".join(f"{deal_label(deals, index)} ({deals.amount[index]:.3g})" for index in largest)
    )
