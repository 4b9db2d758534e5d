"""simulate(scenario, deals) -> Forecast: convert once to arrays, run the kernel."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from forecast.config.scenario import Correlation, Scenario
from forecast.engine.booked import BookedParts, booked, value_part
from forecast.engine.checks import check, run_settings
from forecast.engine.correlation import correlated, correlation_inputs
from forecast.engine.draws import deal_keys, noise_table, thresholds
from forecast.engine.kernels import (
    COUNT,
    REVENUE,
    LatentFactors,
    new_pipeline_trials,
    simulate_pipeline,
    trial_block,
)
from forecast.engine.model import DealModel, deal_model, target_mask
from forecast.engine.rng import stream_starts
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals, by_value
from forecast.inputs.fx import currency_rates
from forecast.inputs.pipeline import load_deals


@dataclass
class Trials:
    """Per-trial results, one entry per trial."""

    revenue: np.ndarray  # in-period revenue, booked and new pipeline included
    slipped: np.ndarray  # won revenue dated inside the period that slipped past it
    new_logos: np.ndarray  # new-logo wins in the period, booked included
    targets: dict[str, np.ndarray]  # each target's metric value, its booked part included
    new_pipeline: np.ndarray  # revenue of deals not yet created at as_of (0 without new_pipeline)
    # column -> value -> the revenue of its open deals and of its won rows booked in the period
    breakdown: dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class DealDraws:
    """The kernels' per-deal inputs: stream starts, thresholds, values, the amount-noise table."""

    starts: np.ndarray  # uint64
    win_threshold: np.ndarray  # int64: win rate x 2**32
    land_threshold: np.ndarray  # int64: landing rate x 2**32
    value: np.ndarray  # float64
    noise_base: np.ndarray  # float64: rng.lognormal_table, or [1.0] for fixed amounts
    noise_slope: np.ndarray
    correlation: LatentFactors  # correlation_inputs: who moves with whom, the factors and rate cells

    @classmethod
    def of(cls, scenario: Scenario, deals: Deals, model: DealModel, seed: int, n_trials: int) -> DealDraws:
        base, slope = noise_table(scenario.amount.sigma)
        return cls(
            starts=stream_starts(np.uint64(seed), deal_keys(deals.deal_id)),
            win_threshold=thresholds(model.win_rate),
            land_threshold=thresholds(model.land_rate),
            value=np.ascontiguousarray(model.value, dtype=np.float64),
            noise_base=base,
            noise_slope=slope,
            correlation=_shared_rates(scenario, deals, model, seed, n_trials),
        )


def _shared_rates(
    scenario: Scenario, deals: Deals, model: DealModel, seed: int, n_trials: int
) -> LatentFactors:
    """The deals' correlation and uncertain rates as the kernels take them."""
    cells = {"rate_cell": model.rate_cell, "rate_deals": model.rate_deals}
    return correlation_inputs(scenario, deals, model.win_rate, seed, n_trials, **cells)


@dataclass
class Forecast:
    """A simulated scenario: its deals and their rates, the draws the trials ran on, the trials.

    ``draws`` are kept so that analyses replaying the same trials (drivers) need not rebuild them.
    """

    scenario: Scenario
    deals: Deals
    model: DealModel
    draws: DealDraws
    trials: Trials
    seed: int
    breakdown_deals: dict[str, dict[str, np.ndarray]]  # column -> value -> its deals (bool), as simulated
    booked: BookedParts  # the scenario's booked and the export's won rows in the period
    independent_revenue: np.ndarray | None = None  # the same trials with independent deals (if asked)

    @property
    def n_trials(self) -> int:
        return len(self.trials.revenue)


class _MetricSet:
    """Metrics the kernel accumulates, each a (kind, deal mask, share of each deal's amount that counts);
    identical ones share a slot."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._slots: dict[tuple[int, bytes], int] = {}

    def slot(self, kind: int, mask: np.ndarray, share: np.ndarray | None = None) -> int:
        share = np.ones(len(mask)) if share is None or kind == COUNT else np.asarray(share, np.float64)
        key = (kind, np.packbits(mask).tobytes() + len(mask).to_bytes(8, "little") + share[mask].tobytes())
        if key not in self._slots:
            self._slots[key] = len(self.metrics)
            self.metrics.append((kind, mask, share))
        return self._slots[key]

    def csr(self, n_deals: int) -> tuple[np.ndarray, ...]:
        """The kernel's metric arrays: start, index and share per membership (deal by deal), kind."""
        shape = (len(self.metrics), n_deals)  # metrics x deals
        membership = np.array([mask for _, mask, _ in self.metrics], bool).reshape(shape)
        shares = np.array([share for _, _, share in self.metrics], np.float64).reshape(shape)
        start = np.concatenate([[0], np.cumsum(membership.sum(axis=0))]).astype(np.int64)
        index = np.nonzero(membership.T)[1].astype(np.int64)
        share = np.ascontiguousarray(shares.T[membership.T], dtype=np.float64)
        kind = np.array([kind for kind, _, _ in self.metrics], dtype=np.int64)
        return start, index, share, kind


def breakdown_columns(scenario: Scenario, by: tuple[str, ...] = (), aliases: dict | None = None) -> list[str]:
    """Columns to break revenue down by: those with quotas, then those asked for (export names mapped)."""
    aliases = aliases or {}
    return list(dict.fromkeys(aliases.get(column, column) for column in [*scenario.quotas, *by]))


def _breakdown_groups(
    scenario: Scenario, deals: Deals, column: str, won: Deals | None
) -> dict[str, np.ndarray]:
    """Each of the column's values (those in the pipeline or its ``won`` rows, and those only a
    quota names: a rep with no deals) and its open deals, as a boolean mask."""
    if column not in deals.columns():
        raise ScenarioError(
            f"{scenario.label}: cannot break down by {column!r}: the pipeline has no such column "
            f"(columns: {', '.join(deals.attributes) or 'none'})"
        )
    values = set(deals.values_of(column)) | set(by_value(scenario.quotas.get(column, {})))
    if won is not None and column in won.columns():  # a rep whose deals are all won this period
        values |= set(won.values_of(column))
    return {value: deals.matching({column: value}) for value in sorted(values)}


def simulate(
    scenario: Scenario,
    deals: Deals,
    trials: int | None = None,
    seed: int | None = None,
    by: tuple[str, ...] = (),
    model: DealModel | None = None,
    independent: bool = False,
) -> Forecast:
    """Simulate the scenario's pipeline; ``trials`` and ``seed`` override the file.

    ``by`` adds per-trial revenue for every value of those columns (and of the
    columns ``quotas`` names), from the same trials as the total. ``model`` is the
    deals' resolved model (default: ``deal_model(scenario, deals)``); a plan passes
    the model it changed. ``independent`` (for a correlated scenario) also sums the
    same draws with the deals independent, the comparison ``summarize`` reports: what
    the correlation does to the range. The deals and the settings pass ``checks`` first:
    bad input is a ``ForecastError``, never a number.
    """
    n_trials, seed = run_settings(scenario, trials, seed)
    check(scenario, deals)
    if model is None:
        model = deal_model(scenario, deals)
    elif len(model) != len(deals):
        raise ValueError(f"the model has {len(model)} deals, the pipeline {len(deals)}")
    metric_set = _MetricSet()
    new_logo_slot = metric_set.slot(COUNT, deals.new_logo.copy())
    slot = {
        target.name: metric_set.slot(
            REVENUE if target.metric == "revenue" else COUNT,
            target_mask(target, deals),
            deals.share(target.where),
        )
        for target in scenario.targets
        if target.where or target.metric == "deals"
    }
    already = booked(scenario, deals)
    breakdown_deals = {
        column: _breakdown_groups(scenario, deals, column, already.rows)
        for column in breakdown_columns(scenario, by, deals.aliases)
    }
    breakdown_slots = {
        column: {
            value: metric_set.slot(REVENUE, mask, deals.share({column: value}))
            for value, mask in groups.items()
        }
        for column, groups in breakdown_deals.items()
    }
    metrics = metric_set.csr(len(deals))
    draws = DealDraws.of(scenario, deals, model, seed, n_trials)
    revenue, slipped, values = _run_pipeline(draws, model, metrics, draws.correlation, n_trials)
    new_revenue, new_deals = _new_pipeline(scenario, n_trials, seed)
    revenue += already.revenue + new_revenue
    independent_revenue = None
    if independent and correlated(scenario):
        independent_revenue = _independent_revenue(scenario, deals, model, draws, seed, n_trials)
        independent_revenue += already.revenue + new_revenue
    new_logos = values[new_logo_slot] + already.new_logos
    if scenario.new_pipeline is not None and scenario.new_pipeline.new_logo:
        new_logos += new_deals
    targets = {}
    for target in scenario.targets:
        if target.name in slot:
            targets[target.name] = values[slot[target.name]] + already.targets[target.name]
            if target.metric == "deals" and not target.where:
                targets[target.name] = targets[target.name] + new_deals
        else:
            targets[target.name] = revenue if target.metric == "revenue" else new_logos
    return Forecast(
        scenario=scenario,
        deals=deals,
        model=model,
        draws=draws,
        trials=Trials(
            revenue=revenue,
            slipped=slipped,
            new_logos=new_logos,
            targets=targets,
            new_pipeline=new_revenue,
            breakdown={
                column: {
                    value: values[index] + value_part(already, column, value)
                    for value, index in slots.items()
                }
                for column, slots in breakdown_slots.items()
            },
        ),
        seed=seed,
        breakdown_deals=breakdown_deals,
        booked=already,
        independent_revenue=independent_revenue,
    )


def _independent_revenue(
    scenario: Scenario, deals: Deals, model: DealModel, draws: DealDraws, seed: int, n_trials: int
) -> np.ndarray:
    """The open pipeline's revenue per trial on the same draws with no correlation (uncertain rates
    still drawn): what re-simulating without ``correlation`` gives, bit for bit, with no metrics
    to accumulate."""
    uncorrelated = scenario.model_copy(update={"correlation": Correlation()})
    no_metrics = _MetricSet().csr(len(deals))
    factors = _shared_rates(uncorrelated, deals, model, seed, n_trials)
    return _run_pipeline(draws, model, no_metrics, factors, n_trials)[0]


def _run_pipeline(
    draws: DealDraws, model: DealModel, metrics: tuple[np.ndarray, ...], factors, n_trials: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel over every trial: revenue, slipped revenue and each metric (``_MetricSet.csr``: start,
    index, share, kind), on the ``factors`` given (the scenario's correlation, or none)."""
    revenue, slipped = np.empty(n_trials), np.empty(n_trials)
    values = np.empty((len(metrics[3]), n_trials))
    simulate_pipeline(
        draws.starts, draws.win_threshold, draws.land_threshold, draws.value, model.dated_inside,
        draws.noise_base, draws.noise_slope, *metrics, factors, 0,
        trial_block(n_trials, numba.get_num_threads()), revenue, slipped, values,
    )  # fmt: skip
    return revenue, slipped, values


NEW_PIPELINE_KEY = "__new_pipeline__"  # the stream of deals not yet created


def _new_pipeline(scenario: Scenario, n_trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-trial revenue and count of deals that activity from ``as_of`` on closes in the period."""
    revenue = np.zeros(n_trials)
    count = np.zeros(n_trials)
    pipeline = scenario.new_pipeline
    if pipeline is None:
        return revenue, count
    from forecast.engine.activity import expected_new_deals

    base, slope = noise_table(pipeline.deal_size.sigma)
    stream = stream_starts(np.uint64(seed), deal_keys([NEW_PIPELINE_KEY]))[0]
    expected = expected_new_deals(scenario)
    new_pipeline_trials(stream, expected, pipeline.deal_size.mean, base, slope, 0, revenue, count)
    return revenue, count


def load_and_simulate(scenario: Scenario, trials: int | None = None, seed: int | None = None) -> Forecast:
    """Load the scenario's pipeline and simulate it (``simulate`` checks the deals)."""
    deals = load_deals(scenario.pipeline, scenario.pipeline_path, scenario.stages, currency_rates(scenario))
    return simulate(scenario, deals, trials=trials, seed=seed)
