"""Calibration from history: win rates, slip, haircut, cycle time and win by deal age, with uncertainty.

Reads a table of past deals (won, lost, or still open), estimates what scenarios assume,
and writes a YAML fragment a scenario includes with ``calibration: FILE``. Win rates are
Beta posteriors (uniform prior): mean, 90 % interval and counts. Segment rates are
shrunk toward the overall rate (a Beta prior worth ``prior_strength`` deals), so a
segment of five deals is not read as gospel; each comes with its revenue-weighted rate
(won amount / closed amount), which departs from the count rate where large deals win
more or less often than small ones. Where too few deals support an estimate, the
fragment falls back to the overall figure and says so. Stages come from a stage-history
table when there is one, else from the export's stage column. A history without dates
still gives the rates by stage and segment; everything timed (slip, cycle time, win by
deal age, new pipeline, recency weights) needs the close dates. The fragment carries
each rate's evidence (what its posterior is worth in deals), so a forecast draws the
rate per trial instead of treating it as known."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from forecast.config.periods import day_bounds, quarter_of, quarters_between
from forecast.engine.summary import distribution
from forecast.errors import PipelineError
from forecast.history.deal_age import exposures, fit_win_by_age, win_by_age
from forecast.history.deal_flow import fit_new_pipeline
from forecast.history.rates import MIN_DEALS, beta_rate, recency_weights
from forecast.inputs.history import History, HistorySpec


def _rate(
    closed: History,
    weight: np.ndarray | None,
    group: np.ndarray,
    prior_rate: float = 0.5,
    strength: float = 2,
) -> dict[str, Any]:
    """A group's win rate (Beta posterior; recency-weighted counts unless ``weight`` is None, then
    also ``weighted_wins`` and ``weighted_deals``) and its revenue-weighted rate, won / closed amount
    (None where the lost deals carry no amount: then the column holds what was won, not what was
    at stake)."""
    won = closed.won & group
    counted = np.ones(group.size) if weight is None else weight
    estimate = beta_rate(float(counted[won].sum()), float(counted[group].sum()), prior_rate, strength)
    value = np.where(np.isnan(closed.amount), 0.0, closed.amount) * counted
    priced = not np.any(~closed.won) or np.any(value[~closed.won] > 0)
    revenue = float(value[won].sum() / value[group].sum()) if priced and value[group].sum() > 0 else None
    counts = {"wins": int(won.sum()), "deals": int(group.sum())}
    if weight is not None:
        counts |= {"weighted_wins": estimate["wins"], "weighted_deals": estimate["deals"]}
    return {**estimate, **counts, "revenue_rate": revenue}


def _stage_rates(closed: History, overall: dict[str, Any], weight: np.ndarray | None) -> list[dict[str, Any]]:
    """Per stage, the closed deals in it won / closed: with a stage history, every deal that reached it."""
    if closed.stage_history is not None:
        groups = {
            name: np.isin(closed.deal_id, list(deals))
            for name, deals in closed.stage_history.reached().items()
        }
    else:
        groups = {stage: closed.stage == stage for stage in set(closed.stage) - {""}}
    stages = []
    for stage in sorted(groups):
        estimate = _rate(closed, weight, groups[stage])
        if estimate["deals"] < MIN_DEALS:
            estimate = {
                **estimate,
                "win_rate": overall["win_rate"],
                "note": f"fewer than {MIN_DEALS} deals: overall rate",
            }
        stages.append({"name": stage, **estimate})
    return stages


def _complete_quarters(history: History) -> list[tuple[np.datetime64, np.datetime64]]:
    """The calendar quarters the history covers from their first day to their last."""
    known = _known_days(history)
    if not known.size:
        return []
    first, last = known.min().item(), known.max().item()
    return day_bounds([quarter for quarter in quarters_between(first, last) if quarter.end <= last])


def _win_by_age(history: History, spec: HistorySpec, half_life_days: float | None) -> dict[str, Any] | None:
    """Win within a quarter by deal age x stage, over the complete calendar quarters of the history."""
    if (~np.isnat(history.created)).sum() < MIN_DEALS:
        return None
    periods = _complete_quarters(history)
    exposure = exposures(history.created, history.closed, history.won, periods, history.stage_on)
    if exposure.won.size < MIN_DEALS:
        return None
    return fit_win_by_age(exposure, list(spec.age_buckets_days), spec.prior_strength,
                          half_life_days=half_life_days)  # fmt: skip


def _new_pipeline(history: History) -> dict[str, Any] | None:
    """A ``new_pipeline`` block fitted on the deals each complete quarter created (``deal_flow``)."""
    if (~np.isnat(history.created)).sum() < MIN_DEALS:
        return None
    return fit_new_pipeline(
        history.created, history.closed, history.won, history.won_value, _complete_quarters(history)
    )


def _recency(history: History, half_life_days: float | None) -> np.ndarray | None:
    """Each closed deal's weight by its close date: halved every ``half_life_days`` before the last
    day the history knows (None without a half-life)."""
    if half_life_days is None:
        return None
    if np.isnat(history.closed).any():
        raise PipelineError(
            "a recency half-life needs the close date of every closed deal; this history has none"
        )
    last = _known_days(history).max()
    return recency_weights((last - history.closed).astype(np.int64), half_life_days)


def _known_days(history: History) -> np.ndarray:
    """Every creation and close date the history holds."""
    return np.concatenate(
        [history.created[~np.isnat(history.created)], history.closed[~np.isnat(history.closed)]]
    )


def calibrate(history: History, spec: HistorySpec, half_life_days: float | None = None) -> dict[str, Any]:
    """Every estimate, with its counts and what it falls back on.

    ``half_life_days``: outcomes count half as much every that many days before the history's last
    date (rates by stage, segment and deal age); None: every outcome alike.
    """
    everything, history = history, history.closed_deals()
    weight = _recency(history, half_life_days)
    everyone = np.ones(history.won.size, bool)
    overall = _rate(history, weight, everyone)
    stages = _stage_rates(history, overall, weight)
    segments = {}
    for name, values in history.segments.items():
        segments[name] = [
            {
                "value": value,
                **_rate(history, weight, values == value, overall["win_rate"], spec.prior_strength),
            }
            for value in sorted(set(values))
        ]
    won = history.won
    slip = None
    dated = won & ~np.isnat(history.expected_close) & ~np.isnat(history.closed)
    if dated.sum() >= MIN_DEALS:
        late = np.array(
            [
                c > np.datetime64(quarter_of(e.astype(dt.date)).end, "D")
                for c, e in zip(history.closed[dated], history.expected_close[dated], strict=True)
            ]
        )
        slip = beta_rate(int(late.sum()), int(late.size))
    amounts = won & ~np.isnan(history.won_amount) & (history.amount > 0)
    haircut = None
    if amounts.sum() >= MIN_DEALS:
        ratio = history.won_amount[amounts] / history.amount[amounts]
        haircut = {
            "haircut": float(1 - ratio.mean()),
            "haircut_stderr": float(ratio.std(ddof=1) / np.sqrt(ratio.size)),
            "sigma": float(np.std(np.log(ratio), ddof=1)),
            "deals": int(ratio.size),
        }
    cycle = None
    timed = won & ~np.isnat(history.created) & ~np.isnat(history.closed)
    if timed.sum() >= MIN_DEALS:
        days = distribution((history.closed[timed] - history.created[timed]).astype(np.int64))
        cycle = {"median_days": days["p50"], "p10_days": days["p10"], "p90_days": days["p90"],
                 "deals": int(timed.sum())}  # fmt: skip
    timeless = bool(np.isnat(history.closed).any())  # closed deals without dates: nothing timed
    return {"overall": overall, "stages": stages, "segments": segments, "slip": slip, "amount": haircut,
            "cycle_time": cycle, "half_life_days": half_life_days, "dated": not timeless,
            "win_by_age": None if timeless else _win_by_age(everything, spec, half_life_days),
            "new_pipeline": None if timeless else _new_pipeline(everything)}  # fmt: skip


def fragment(
    result: dict[str, Any], with_new_pipeline: bool = False, segment: str | None = None
) -> dict[str, Any]:
    """The scenario keys the estimates set (``calibration: FILE`` in a scenario merges them).

    ``with_new_pipeline``: also the fitted ``new_pipeline`` block (deals not yet created), which
    adds revenue to every forecast that includes the fragment: the user opts in. ``segment``: the
    segment column whose rates become ``segment_rates`` (default: the first one estimated).
    """
    slip = result["slip"]["win_rate"] if result["slip"] else None
    out: dict[str, Any] = {}
    if result["stages"]:
        out["stages"] = [
            {"name": s["name"], "win_rate": round(s["win_rate"], 6), "evidence": _counts(s)}
            for s in result["stages"]
        ]
    if slip is not None:
        out["slip"] = {"default": round(slip, 6)}
    if result["amount"]:
        out["amount"] = {"haircut": round(max(0.0, result["amount"]["haircut"]), 6),
                         "sigma": round(min(3.0, result["amount"]["sigma"]), 6)}  # fmt: skip
    if result.get("win_by_age"):
        fit = result["win_by_age"]
        table = win_by_age(fit).model_dump(exclude={"evidence"})
        out["win_by_age"] = table | {"evidence": age_evidence(fit)}
    if with_new_pipeline and result.get("new_pipeline"):
        out["new_pipeline"] = _rounded(result["new_pipeline"]["new_pipeline"])
    column = segment if segment is not None else next(iter(result["segments"]), None)
    if column is not None:
        out["segment_rates"] = {
            "column": column, "overall": round(result["overall"]["win_rate"], 6),
            "rates": {str(row["value"]): round(row["win_rate"], 6) for row in result["segments"][column]},
        }  # fmt: skip
    return out


def _rests_on(estimate: dict[str, Any]) -> tuple[float, float]:
    """The wins and deals a rate rests on: the recency-weighted ones where the fit weighed outcomes
    (the counts as counted would overstate its evidence), else the counts."""
    return estimate.get("weighted_wins", estimate["wins"]), estimate.get("weighted_deals", estimate["deals"])


def _counts(estimate: dict[str, Any]) -> dict[str, float]:
    """The closed deals behind a uniform-prior rate, as a scenario's ``evidence`` (``beta_rate``'s counts)."""
    wins, deals = _rests_on(estimate)
    return {"won": _rounded(wins), "lost": _rounded(deals - wins)}


def _shrunk_worth(cell: dict[str, Any], bucket: dict[str, Any], prior_strength: float) -> float:
    """The worth in deals of an age x stage cell's rate, shrunk toward its bucket's rate with
    ``prior_strength``, with the bucket's rate uncertain (its uniform-prior posterior): by the law
    of total variance, Var = (rate (1 - rate) - inherited) / (deals + prior_strength + 1) +
    inherited, inherited = (prior_strength / (deals + prior_strength))^2 x Var(bucket rate). A thin
    cell is so worth about its bucket's evidence, not ``prior_strength`` known deals more than its
    own (a cell of 2 deals drawn as if it rested on 22). At least 1 deal."""
    deals = _rests_on(cell)[1]
    rate, prior = cell["win_rate"], bucket["win_rate"]
    if rate * (1 - rate) <= 0 or deals + prior_strength <= 0:
        return float(max(deals + prior_strength, 1.0))
    shrink = prior_strength / (deals + prior_strength)
    bucket_worth = _rests_on(bucket)[1] + 2  # the uniform-prior posterior's worth, as ``_counts`` gives it
    inherited = shrink**2 * prior * (1 - prior) / (bucket_worth + 1)
    variance = (rate * (1 - rate) - inherited) / (deals + prior_strength + 1) + inherited
    return float(max(rate * (1 - rate) / variance - 1, 1.0))


def age_evidence(fit: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    """Each cell's posterior in a ``fit_win_by_age`` fit as a ``WinByAge.evidence``: an age bucket's
    deals (uniform prior), an age x stage cell's worth with its bucket's uncertainty (``_shrunk_worth``)."""
    evidence: dict[str, list[dict[str, float]]] = {"default": [_counts(cell) for cell in fit["by_age"]]}
    for name, row in fit["stages"].items():
        evidence[name] = [
            {"deals": _rounded(_shrunk_worth(cell, bucket, fit["prior_strength"]))}
            for cell, bucket in zip(row, fit["by_age"], strict=True)
        ]
    return evidence


def _rounded(value: Any) -> Any:
    """Floats to six significant digits, for a readable fragment."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return float(f"{value:.6g}") if isinstance(value, float) else value
