"""The funnel planner: from a quota back to weekly activity, and what a scenario lacks.

``backward_chain`` is the textbook's expected-value arithmetic. ``activity_needed``
adds the randomness the textbook leaves out (Poisson activity, binomial conversion,
deal sizes) and finds, by simulation, the weekly activity that reaches the quota
with a given probability. ``diagnose`` tells a scenario's owner whether the gap to
quota is missing pipeline or pipeline at risk of slipping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.scenario import Plan
from forecast.config.specs import FunnelSpec
from forecast.engine.activity import conversion_product, expected_new_deals, in_period_share, stage_counts
from forecast.engine.draws import deal_keys, lognormal_table
from forecast.engine.kernels import wins_to_cover
from forecast.engine.rng import stream_starts
from forecast.engine.simulate import Forecast
from forecast.engine.summary import reaches

FUNNEL_KEY = "__funnel__"  # the stream of the funnel's deal sizes
_ROUNDING = 1e-9  # needs computed in floating point: 3.0000000001 wins is 3


def _win_rates(spec: FunnelSpec) -> dict[str, float]:
    """Stage key -> chance a deal at that stage is eventually won."""
    rates, product = {}, 1.0
    for stage in spec.stages:
        product *= stage.rate
        rates[stage_key(stage.name)] = product
    return rates


def expected_open_wins(spec: FunnelSpec) -> float:
    win_rates = _win_rates(spec)
    return float(sum(count * win_rates[stage_key(name)] for name, count in spec.open.items()))


def backward_chain(spec: FunnelSpec) -> dict[str, Any]:
    """Wins and the count at every stage needed on average, in total, per period and per week."""
    horizon = spec.periods * spec.weeks
    open_wins = expected_open_wins(spec)
    wins = max(0.0, (spec.quota - spec.booked) / spec.deal_size - open_wins)
    rows = [("wins", wins)]
    count = wins
    for stage in spec.stages:
        count /= stage.rate
        rows.append((stage.name, count))
    return {
        "wins_from_open_pipeline": open_wins,
        "selling_weeks": horizon,
        "stages": [
            {"stage": name, "total": total, "per_period": total / spec.periods, "per_week": total / horizon}
            for name, total in rows
        ],
    }


def _wins_needed(spec: FunnelSpec, trials: int, seed: int) -> np.ndarray:
    """Per trial, the won deals (fractional) whose sizes cover the quota left after booked."""
    remaining = np.full(trials, spec.quota - spec.booked)
    if spec.deal_size_spread == 0:
        return remaining / spec.deal_size
    base, slope = lognormal_table(spec.deal_size_spread)
    stream = stream_starts(np.uint64(seed), deal_keys([FUNNEL_KEY]))[0]
    needed = np.empty(trials)
    wins_to_cover(stream, remaining, spec.deal_size, base, slope, needed)
    return needed


def _open_wins(spec: FunnelSpec, rng: np.random.Generator, trials: int) -> np.ndarray:
    win_rates = _win_rates(spec)
    wins = np.zeros(trials)
    for name, count in spec.open.items():
        rate = win_rates[stage_key(name)]
        if spec.variance.conversion == "binomial":
            wins += rng.binomial(int(round(count)), rate, size=trials)
        else:
            wins += count * rate
    return wins


def _least_conversations(wins: np.ndarray, u: np.ndarray, rate: float) -> np.ndarray:
    """Fewest conversations n with Binomial(n, rate) >= wins at inverse-CDF uniform u."""
    from scipy.special import bdtr

    def short(n: np.ndarray) -> np.ndarray:  # P(Binomial(n) <= wins - 1) >= u: n is too few
        return (wins > 0) & (bdtr(np.maximum(wins - 1, 0).astype(np.int64), n.astype(np.int64), rate) >= u)

    low = np.maximum(wins - 1, 0.0)  # always too few (or no wins needed)
    high = np.ceil(wins / rate) + 1.0
    while np.any(too_few := short(high)):
        high = np.where(too_few, 2 * high, high)
    while np.any(high - low > 1):
        middle = np.floor((low + high) / 2)
        too_few = short(middle)
        low, high = np.where(too_few, middle, low), np.where(too_few, high, middle)
    return np.where(wins > 0, high, 0.0)


def threshold_activity(spec: FunnelSpec, trials: int | None = None, seed: int | None = None) -> np.ndarray:
    """Per trial, the least weekly activity (outermost stage) that reaches the quota.

    The activity's draws are common to every activity level (inverse CDF of one
    uniform per trial), so reaching the quota is monotone in the activity and
    P(hit | activity a) is the share of trials whose threshold is at most a.
    """
    from scipy.special import gammainccinv

    trials = spec.simulation.trials if trials is None else trials
    seed = spec.simulation.seed if seed is None else seed
    rng = np.random.default_rng([seed, 0xF0E1])
    u = rng.random(trials)
    horizon = spec.periods * spec.weeks
    product = conversion_product(spec.stages)
    need = np.maximum(_wins_needed(spec, trials, seed) - _open_wins(spec, rng, trials), 0.0)
    poisson = spec.variance.activity == "poisson"
    if spec.variance.conversion == "expected":
        if not poisson:
            return need / (horizon * product)
        conversations = np.ceil(need / product - _ROUNDING)  # W = conversations x rate
        with np.errstate(invalid="ignore"):
            rate = np.where(conversations > 0, gammainccinv(np.maximum(conversations, 1), u), 0.0)
        return rate / horizon
    wins = np.ceil(need - _ROUNDING)
    if poisson:  # wins ~ Poisson(a T product); W >= k  <=>  Q(k, lambda) < u
        with np.errstate(invalid="ignore"):
            mean_wins = np.where(wins > 0, gammainccinv(np.maximum(wins, 1), u), 0.0)
        return mean_wins / (horizon * product)
    return _least_conversations(wins, u, product) / horizon


def activity_needed(
    spec: FunnelSpec, trials: int | None = None, seed: int | None = None
) -> list[dict[str, Any]]:
    """Weekly activity for each of the spec's probability levels, with every stage's count."""
    thresholds = threshold_activity(spec, trials, seed)
    out = []
    for level in spec.levels:
        per_week = float(np.quantile(thresholds, level, method="inverted_cdf"))
        counts = stage_counts(per_week, spec.stages)
        out.append(
            {
                "probability": level,
                "per_week": per_week,
                "per_period": per_week * spec.weeks,
                "total": per_week * spec.periods * spec.weeks,
                "stages_per_week": {
                    stage.name: count for stage, count in zip(spec.stages, counts, strict=True)
                },
                "achieved": float(np.mean(thresholds <= per_week)),
            }
        )
    return out


def plan_funnel(spec: FunnelSpec, trials: int | None = None, seed: int | None = None) -> dict[str, Any]:
    """``forecast funnel``: the deterministic chain and the activity for each probability."""
    return {
        "quota": spec.quota,
        "deal_size": spec.deal_size,
        "booked": spec.booked,
        "outermost_stage": spec.stages[-1].name,
        "variance": spec.variance.model_dump(),
        "trials": spec.simulation.trials if trials is None else trials,
        "seed": spec.simulation.seed if seed is None else seed,
        "chain": backward_chain(spec),
        "activity": activity_needed(spec, trials, seed),
    }


def diagnose(forecast: Forecast) -> dict[str, Any] | None:
    """Is the gap to the quota missing pipeline, or pipeline that risks slipping?

    Acceleration (no slip, dates pulled into the period) is tried on the deals with
    the most expected revenue to gain, fewest first; the rest of the gap needs new
    pipeline: extra conversations per week from now on (with ``new_pipeline``). ``status`` is
    ``covered`` (expected revenue reaches the quota, which says nothing of how likely it is:
    ``probability`` does), ``slip_risk`` or ``not_enough_pipeline``.
    """
    scenario = forecast.scenario
    quota = scenario.quota
    if quota is None:
        return None
    trials = forecast.trials
    expected = float(np.mean(trials.revenue))
    slipped = float(np.mean(trials.slipped))
    gap = quota.at_least - expected
    model = forecast.model
    gain = model.win_rate * (1.0 - model.land_rate) * model.value  # expected revenue back if accelerated
    order = np.argsort(-gain, kind="stable")
    cumulative = np.cumsum(gain[order])
    out: dict[str, Any] = {
        "target": quota.name,
        "at_least": quota.at_least,
        "expected_revenue": expected,
        "gap": gap,
        "probability": float(np.mean(reaches(trials.revenue, quota.at_least))),
        "expected_slipped_revenue": slipped,
        "acceleration_available": float(cumulative[-1]) if cumulative.size else 0.0,
    }
    if gap <= 0:
        return {
            **out,
            "status": "covered",
            "slip_share_of_gap": 0.0,
            "accelerate": None,
            "new_activity": None,
        }
    count = int(np.searchsorted(cumulative, gap - _ROUNDING * gap)) + 1
    reachable = count <= cumulative.size
    chosen = order[: min(count, cumulative.size)]
    accelerate = {
        "deals": [str(deal) for deal in forecast.deals.deal_id[chosen]],
        "expected_gain": float(gain[chosen].sum()),
        "closes_gap": reachable,
    }
    if chosen.size:
        plan = Plan(accelerate=accelerate["deals"])
        faster = _simulate_plan(forecast, plan)
        accelerate["probability_after"] = float(np.mean(reaches(faster.trials.revenue, quota.at_least)))
        accelerate["expected_revenue_after"] = float(np.mean(faster.trials.revenue))
    missing = max(0.0, gap - out["acceleration_available"])
    return {
        **out,
        "status": "slip_risk" if reachable else "not_enough_pipeline",
        "slip_share_of_gap": min(1.0, slipped / gap),
        "accelerate": accelerate,
        "pipeline_gap": missing,
        "new_activity": _new_activity(scenario, missing) if missing > 0 else None,
    }


def _simulate_plan(forecast: Forecast, plan: Plan) -> Forecast:
    from forecast.analyses.plans import simulate_plan

    name = "__diagnosis__"
    scenario = forecast.scenario.model_copy(update={"plans": {name: plan}})
    return simulate_plan(
        scenario, forecast.deals, name, trials=forecast.n_trials, seed=forecast.seed, model=forecast.model
    )


def _new_activity(scenario, missing: float) -> dict[str, Any]:
    """Extra weekly activity from ``as_of`` that closes ``missing`` revenue in the period, on average."""
    pipeline = scenario.new_pipeline
    if pipeline is None:
        return {"note": "declare new_pipeline (rates, lag, deal size) to turn the gap into weekly activity"}
    weeks, share = in_period_share(scenario)
    per_conversation = expected_new_deals(scenario, 1.0) - expected_new_deals(scenario, 0.0)
    revenue_per_weekly_conversation = per_conversation * pipeline.deal_size.mean
    if revenue_per_weekly_conversation <= 0:
        return {"note": f"no conversation from now on can close by the period's end (lag fits {share:.0%})"}
    extra = missing / revenue_per_weekly_conversation
    counts = stage_counts(extra, pipeline.stages)
    return {
        "weeks_left": weeks,
        "share_closing_in_period": share,
        "extra_per_week": {stage.name: count for stage, count in zip(pipeline.stages, counts, strict=True)},
        "extra_conversations_per_week": extra if math.isfinite(extra) else None,
    }
