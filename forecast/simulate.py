"""simulate(scenario, deals) -> Forecast: convert once to arrays, run the kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from forecast.correlation import correlation_inputs
from forecast.deal_age import aged_win_rates
from forecast.errors import ScenarioError
from forecast.kernels import (
    COUNT,
    REVENUE,
    LatentFactors,
    new_pipeline_trials,
    simulate_pipeline,
    trial_block,
)
from forecast.pipeline import Deals, by_value, load_deals
from forecast.rng import deal_keys, lognormal_table, stream_starts, thresholds
from forecast.scenario import Scenario, Target


@dataclass(frozen=True)
class DealModel:
    """Per-deal probabilities the kernel needs, resolved from the scenario."""

    win_rate: np.ndarray  # float64: the deal's probability, else its win_by_age rate, else its stage's
    slip: np.ndarray  # float64: the deal's slip, else its stage's, else slip.default
    land_rate: np.ndarray  # float64: P(lands in the period | won)
    dated_inside: np.ndarray  # bool: close date on or before the period end
    value: np.ndarray  # float64: amount after haircut


@dataclass
class Trials:
    """Per-trial results, one entry per trial."""

    revenue: np.ndarray  # in-period revenue, booked and new pipeline included
    slipped: np.ndarray  # won revenue dated inside the period that slipped past it
    new_logos: np.ndarray  # new-logo wins in the period, booked included
    targets: dict[str, np.ndarray]  # each target's metric value
    new_pipeline: np.ndarray  # revenue of deals not yet created at as_of (0 without new_pipeline)
    breakdown: dict[str, dict[str, np.ndarray]]  # column -> value -> its open deals' revenue


@dataclass
class Forecast:
    scenario: Scenario
    deals: Deals
    model: DealModel
    trials: Trials
    seed: int

    @property
    def n_trials(self) -> int:
        return len(self.trials.revenue)


def deal_model(scenario: Scenario, deals: Deals) -> DealModel:
    """Win rate, landing rate and value of every deal under the scenario's rules.

    A deal's win rate is its own probability, else (with ``win_by_age``, a created date and
    a close date inside the period) the rate for its stage and age on ``as_of`` (a win
    within the period: such a deal lands when won), else its stage's win rate. Deals dated
    after the period keep their stage's rate and land only by pull-in.
    """
    stages = scenario.stages or []
    stage_win = np.array([stage.win_rate for stage in stages] + [np.nan])
    stage_slip = np.array(
        [scenario.slip.default if stage.slip is None else stage.slip for stage in stages]
        + [scenario.slip.default]
    )
    period_end = np.datetime64(scenario.period_range.end, "D")
    dated_inside = deals.close_date <= period_end
    by_age = aged_win_rates(scenario, deals)
    aged = np.isnan(deals.probability) & ~np.isnan(by_age) & dated_inside  # a rate of winning in the period
    win_rate = np.where(np.isnan(deals.probability), stage_win[deals.stage_index], deals.probability)
    win_rate = np.where(aged, by_age, win_rate)
    slip = np.where(np.isnan(deals.slip), stage_slip[deals.stage_index], deals.slip)
    slip = np.minimum(1.0, slip * scenario.slip.push_factor**deals.push_count)  # pushed deals slip more
    land_rate = np.where(dated_inside, 1.0 - slip, scenario.slip.pull_in)
    slip = np.where(aged, 0.0, slip)  # its win is inside the period by definition: no slip, no pull-in
    land_rate = np.where(aged, 1.0, land_rate)
    value = deals.amount * (1.0 - scenario.amount.haircut)
    return DealModel(
        win_rate=win_rate, slip=slip, land_rate=land_rate, dated_inside=dated_inside, value=value
    )


def target_mask(target: Target, deals: Deals) -> np.ndarray:
    """Deals that count towards a target."""
    try:
        mask = deals.matching(target.where)
    except KeyError as error:
        raise ScenarioError(
            f"target {target.name!r}: where.{error.args[0]}: the pipeline has no such column "
            f"(columns: {', '.join(deals.columns())})"
        ) from None
    return mask & deals.new_logo if target.metric == "new_logos" else mask


@dataclass(frozen=True)
class DealDraws:
    """The kernels' per-deal inputs: stream starts, thresholds, values, the amount-noise table."""

    starts: np.ndarray  # uint64
    win_threshold: np.ndarray  # int64: win rate x 2**32
    land_threshold: np.ndarray  # int64: landing rate x 2**32
    value: np.ndarray  # float64
    noise_base: np.ndarray  # float64: rng.lognormal_table, or [1.0] for fixed amounts
    noise_slope: np.ndarray
    correlation: LatentFactors  # correlation_inputs: who moves with whom, the factors per trial

    @classmethod
    def of(cls, scenario: Scenario, deals: Deals, model: DealModel, seed: int, n_trials: int) -> DealDraws:
        sigma = scenario.amount.sigma
        base, slope = lognormal_table(sigma) if sigma > 0 else (np.ones(1), np.zeros(1))
        return cls(
            starts=stream_starts(np.uint64(seed), deal_keys(deals.deal_id)),
            win_threshold=thresholds(model.win_rate),
            land_threshold=thresholds(model.land_rate),
            value=np.ascontiguousarray(model.value, dtype=np.float64),
            noise_base=base,
            noise_slope=slope,
            correlation=correlation_inputs(scenario, deals, model.win_rate, seed, n_trials),
        )


class _MetricSet:
    """Metrics the kernel accumulates, each a (kind, deal mask); identical ones share a slot."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, np.ndarray]] = []
        self._slots: dict[tuple[int, bytes], int] = {}

    def slot(self, kind: int, mask: np.ndarray) -> int:
        key = (kind, np.packbits(mask).tobytes() + len(mask).to_bytes(8, "little"))
        if key not in self._slots:
            self._slots[key] = len(self.metrics)
            self.metrics.append((kind, mask))
        return self._slots[key]


def breakdown_columns(scenario: Scenario, by: tuple[str, ...] = (), aliases: dict | None = None) -> list[str]:
    """Columns to break revenue down by: those with quotas, then those asked for (export names mapped)."""
    aliases = aliases or {}
    return list(dict.fromkeys(aliases.get(column, column) for column in [*scenario.quotas, *by]))


def _breakdown_values(scenario: Scenario, deals: Deals, column: str) -> list[str]:
    """The column's values in the pipeline, plus those only a quota names (a rep with no deals)."""
    try:
        present = deals.column(column)
    except KeyError:
        raise ScenarioError(
            f"{scenario.label}: cannot break down by {column!r}: the pipeline has no such column "
            f"(columns: {', '.join(deals.attributes) or 'none'})"
        ) from None
    return sorted(set(present) | set(by_value(scenario.quotas.get(column, {}))))


def simulate(
    scenario: Scenario,
    deals: Deals,
    trials: int | None = None,
    seed: int | None = None,
    by: tuple[str, ...] = (),
) -> Forecast:
    """Simulate the scenario's pipeline; ``trials`` and ``seed`` override the file.

    ``by`` adds per-trial revenue for every value of those columns (and of the
    columns ``quotas`` names), from the same trials as the total.
    """
    n_trials = scenario.simulation.trials if trials is None else trials
    seed = scenario.simulation.seed if seed is None else seed
    model = deal_model(scenario, deals)
    metric_set = _MetricSet()
    new_logo_slot = metric_set.slot(COUNT, deals.new_logo.copy())
    slot = {
        target.name: metric_set.slot(
            REVENUE if target.metric == "revenue" else COUNT, target_mask(target, deals)
        )
        for target in scenario.targets
        if target.where or target.metric == "deals"
    }
    breakdown_slots = {
        column: {
            value: metric_set.slot(REVENUE, deals.column(column) == value)
            for value in _breakdown_values(scenario, deals, column)
        }
        for column in breakdown_columns(scenario, by, deals.aliases)
    }
    metrics = metric_set.metrics
    membership = np.array([mask for _, mask in metrics])  # metrics x deals booleans (CSR below)
    metric_start = np.concatenate([[0], np.cumsum(membership.sum(axis=0))]).astype(np.int64)
    metric_index = np.nonzero(membership.T)[1].astype(np.int64)
    metric_kind = np.array([kind for kind, _ in metrics], dtype=np.int64)
    draws = DealDraws.of(scenario, deals, model, seed, n_trials)
    revenue = np.empty(n_trials)
    slipped = np.empty(n_trials)
    values = np.empty((len(metrics), n_trials))
    simulate_pipeline(
        draws.starts,
        draws.win_threshold,
        draws.land_threshold,
        draws.value,
        model.dated_inside,
        draws.noise_base,
        draws.noise_slope,
        metric_start,
        metric_index,
        metric_kind,
        draws.correlation,
        0,
        trial_block(n_trials, numba.get_num_threads()),
        revenue,
        slipped,
        values,
    )
    new_revenue, new_deals = _new_pipeline(scenario, n_trials, seed)
    booked = scenario.booked_totals
    revenue += booked.revenue + new_revenue
    new_logos = values[new_logo_slot] + booked.new_logos
    if scenario.new_pipeline is not None and scenario.new_pipeline.new_logo:
        new_logos += new_deals
    targets = {}
    for target in scenario.targets:
        if target.name in slot:
            targets[target.name] = values[slot[target.name]]
            if target.metric == "deals" and not target.where:
                targets[target.name] = targets[target.name] + new_deals
        else:
            targets[target.name] = revenue if target.metric == "revenue" else new_logos
    return Forecast(
        scenario=scenario,
        deals=deals,
        model=model,
        trials=Trials(
            revenue=revenue,
            slipped=slipped,
            new_logos=new_logos,
            targets=targets,
            new_pipeline=new_revenue,
            breakdown={
                column: {value: values[index] for value, index in slots.items()}
                for column, slots in breakdown_slots.items()
            },
        ),
        seed=seed,
    )


NEW_PIPELINE_KEY = "__new_pipeline__"  # the stream of deals not yet created
MAX_NEW_DEALS = 10_000  # expected new deals per trial; each is drawn, so the cost grows with it


def _new_pipeline(scenario: Scenario, n_trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial revenue and count of deals that activity from ``as_of`` on closes in the period."""
    revenue = np.zeros(n_trials)
    count = np.zeros(n_trials)
    pipeline = scenario.new_pipeline
    if pipeline is None:
        return revenue, count
    from forecast.activity import expected_new_deals

    sigma = pipeline.deal_size.sigma
    base, slope = lognormal_table(sigma) if sigma > 0 else (np.ones(1), np.zeros(1))
    stream = stream_starts(np.uint64(seed), deal_keys([NEW_PIPELINE_KEY]))[0]
    expected = expected_new_deals(scenario)
    if expected > MAX_NEW_DEALS:
        raise ScenarioError(
            f"{scenario.source or scenario.label}: new_pipeline would create {expected:,.0f} deals per "
            f"trial; at most {MAX_NEW_DEALS:,} are simulated one by one (lower conversations_per_week)"
        )
    new_pipeline_trials(stream, expected, pipeline.deal_size.mean, base, slope, 0, revenue, count)
    return revenue, count


def load_and_simulate(scenario: Scenario, trials: int | None = None, seed: int | None = None) -> Forecast:
    """Load the scenario's pipeline and simulate it."""
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages)
    return simulate(scenario, deals, trials=trials, seed=seed)


def overdue_deals(scenario: Scenario, deals: Deals) -> np.ndarray:
    """Deals whose close date is before ``as_of``: CRM hygiene to fix."""
    return deals.close_date < np.datetime64(scenario.snapshot_date, "D")
