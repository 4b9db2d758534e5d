"""forecast backtest: forecast past periods from what was known at their start, score against actuals.

For each period: rebuild the pipeline open at its first day (deals created before it
and not yet closed), learn from earlier periods only the chance that an open deal is
won within a period, by its age (days since creation) in buckets and by its stage at
the period's start (from a stage-history table), and forecast (a) what those open
deals win within the period and (b) the period's total: the same open deals plus a
``new_pipeline`` calibrated on the earlier periods' new deals, in one ``simulate`` call,
the machinery ``forecast run`` uses. Scores: the actual's percentile rank in the
forecast (uniform if the forecast is calibrated), CRPS, the coverage of the 50 % and
80 % intervals, and the weighted-pipeline point forecast; the open pipeline is also
scored by age alone and by stage alone, so each part's worth shows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.periods import PeriodRange, day_bounds, parse_period, quarters_between
from forecast.config.scenario import Scenario, WinByAge
from forecast.config.specs import BacktestModel, BacktestSpec, Prices, StageHistorySource
from forecast.engine.activity import expected_new_deals
from forecast.engine.model import rates_for
from forecast.engine.simulate import simulate
from forecast.engine.summary import distribution
from forecast.errors import PipelineError
from forecast.history.deal_age import exposures, fit_win_by_age, open_at, win_by_age
from forecast.history.deal_flow import fit_new_pipeline
from forecast.history.rates import MIN_DEALS
from forecast.inputs.deals import Deals
from forecast.inputs.history import History, HistorySpec, load_history

REQUIRED_COLUMNS = ("deal_id", "outcome", "amount", "created_date", "close_date")  # what a backtest reads


def load_backtest_history(spec: BacktestSpec, folder: Path) -> History:
    """The backtest's history, with its stage history and price list; paths relative to ``folder``.

    Without a stage history the export's stage column is left out: it holds each deal's stage at
    the snapshot, after the periods replayed, which a forecast at their start could not know.
    """
    source = spec.history

    def resolved(part: StageHistorySource | Prices | None) -> StageHistorySource | Prices | None:
        return None if part is None else part.model_copy(update={"path": str((folder / part.path).resolve())})

    history = load_history(
        (folder / source.path).resolve(),
        HistorySpec(
            columns=source.columns, won=tuple(source.won), lost=tuple(source.lost),
            date_format=source.date_format, date_format_setting="history.date_format",
            stage_history=resolved(source.stage_history), prices=resolved(source.prices),
            required=REQUIRED_COLUMNS, hint="history.columns.{name}",
            stage_hint="history.stage_history.columns.{name}",
        ),
    )  # fmt: skip
    if history.stage_history is None:
        return dataclasses.replace(history, stage=np.full(len(history.deal_id), "", dtype=object))
    return history


@dataclass
class Learned:
    """What earlier periods say: win-within-period rates, amounts, the new pipeline."""

    by_age: dict[str, Any]  # deal_age.fit_win_by_age over the age buckets (rows per stage)
    by_stage: dict[str, Any]  # the same without age buckets: rates by stage alone
    haircut: float
    sigma: float
    new_pipeline: dict[str, Any] | None  # deal_flow.fit_new_pipeline
    periods: int


def learn(
    history: History, earlier: list[tuple[np.datetime64, np.datetime64]], model: BacktestModel
) -> Learned:
    """What the ``earlier`` periods say, from what was known by the end of the last of them."""
    exposure = exposures(history.created, history.closed, history.won, earlier, history.stage_on)
    value = history.won_value
    ratio = value / history.price
    known = history.won & np.isfinite(ratio) & (ratio > 0) & (history.closed <= earlier[-1][1])  # by then
    haircut = float(1 - ratio[known].mean()) if known.sum() >= MIN_DEALS else 0.0
    sigma = float(np.std(np.log(ratio[known]), ddof=1)) if known.sum() >= MIN_DEALS else 0.0
    return Learned(
        by_age=fit_win_by_age(exposure, model.age_buckets_days, model.prior_strength),
        by_stage=fit_win_by_age(exposure, [], model.prior_strength),
        haircut=min(max(haircut, 0.0), 0.99), sigma=min(sigma, 3.0),
        new_pipeline=fit_new_pipeline(history.created, history.closed, history.won, value, earlier,
                                      model.lag_distribution),
        periods=len(earlier),
    )  # fmt: skip


def crps(samples: np.ndarray, actual: float) -> float:
    """Continuous ranked probability score of a sample forecast: E|X - y| - E|X - X'| / 2."""
    ordered = np.sort(samples)
    n = ordered.size
    spread = 2.0 * np.sum((2 * np.arange(1, n + 1) - n - 1) * ordered) / (n * n)
    return float(np.mean(np.abs(ordered - actual)) - 0.5 * spread)


def percentile_rank(samples: np.ndarray, actual: float) -> float:
    """Share of the forecast below the actual (ties count half): uniform when calibrated."""
    return float(np.mean(samples < actual) + 0.5 * np.mean(samples == actual))


@dataclass
class PastPeriod:
    """A period to forecast: what was known at its start (learned, the open deals) and what happened."""

    name: str
    period: PeriodRange
    index: int
    learned: Learned
    open_now: np.ndarray  # bool over the history's deals: open at the start, with a price
    ages: np.ndarray  # int64 days, of the open deals
    stages: np.ndarray  # their stages as the period began ('' unknown)
    actual_open: float  # won within the period by the deals open at its start
    actual_total: float  # plus the deals created and won within it

    def known(self) -> dict[str, Any]:
        return {"open_deals": int(self.open_now.sum()), "learned_from_periods": self.learned.periods}


def _earlier_quarters(history: History, first: dt.date) -> list[tuple[np.datetime64, np.datetime64]]:
    """The calendar quarters before ``first``, back to the one of the history's first creation."""
    dated = history.created[~np.isnat(history.created)]
    if dated.size == 0 or dated.min().item() >= first:
        return []
    return day_bounds(quarters_between(dated.min().item(), first - dt.timedelta(days=1)))


def past_periods(spec: BacktestSpec, history: History) -> list[PastPeriod]:
    """Every period of the backtest, each learned from the periods before it only."""
    periods = [parse_period(name) for name in spec.period_list]
    earlier_all = _earlier_quarters(history, periods[0].start)
    out = []
    for index, (period, (start, end)) in enumerate(zip(periods, day_bounds(periods), strict=True)):
        earlier = [(s, e) for s, e in earlier_all if e < start] + day_bounds(periods[:index])
        if not earlier:
            raise PipelineError(f"{spec.periods}: no earlier period to learn from before {period.start}")
        open_now = open_at(history.created, history.closed, start) & ~np.isnan(history.price)
        won_within = history.won & (history.closed >= start) & (history.closed <= end)
        actual_open = float(np.nansum(history.won_value[open_now & won_within]))
        created_inside = (history.created >= start) & (history.created <= end) & won_within
        out.append(PastPeriod(
            name=spec.period_list[index], period=period, index=index,
            learned=learn(history, earlier, spec.model),
            open_now=open_now, ages=(start - history.created[open_now]).astype(np.int64),
            stages=history.stage_on(start - 1)[open_now], actual_open=actual_open,
            actual_total=actual_open + float(np.nansum(history.won_value[created_inside])),
        ))  # fmt: skip
    return out


def _main_model(history: History) -> str:
    """The open-pipeline model reported first: age x stage with a stage history, else age alone."""
    return "age_only" if history.stage_history is None else "age_x_stage"


def _labels(history: History) -> dict[str, str]:
    stage = "stage alone" if history.stage_history is not None else "flat rate (no stage history)"
    return {"age_x_stage": "age x stage", "age_only": "deal age", "stage_only": stage}


def _models(history: History, learned: Learned) -> dict[str, WinByAge]:
    """The open-pipeline models compared: age x stage (with a stage history), age alone, stage alone."""
    models = {
        "age_only": win_by_age(learned.by_age, by_stage=False),
        "stage_only": win_by_age(learned.by_stage),
    }
    return models if history.stage_history is None else {"age_x_stage": win_by_age(learned.by_age)} | models


def _cell_counts(fit: dict[str, Any]) -> dict[str, list[int]]:
    return {"default": [cell["deals"] for cell in fit["by_age"]]} | {
        name: [cell["deals"] for cell in row] for name, row in fit["stages"].items()
    }


def _forecast(
    spec: BacktestSpec,
    history: History,
    past: PastPeriod,
    table: WinByAge,
    market: float,
    total: bool = False,
) -> dict[str, Any]:
    """The period's forecast row: open deals at ``table``'s rates, plus (``total``) the new pipeline."""
    learned = past.learned
    rates = rates_for(table, past.ages, past.stages)
    deals = Deals(
        deal_id=history.deal_id[past.open_now], amount=history.price[past.open_now],
        close_date=np.full(rates.size, np.datetime64(past.period.end, "D")), probability=rates,
        stage_index=np.full(rates.size, -1), new_logo=np.zeros(rates.size, bool),
        rows=np.zeros(rates.size, np.int64),
    )  # fmt: skip
    fitted = learned.new_pipeline if total else None
    block = fitted["new_pipeline"] if fitted else None
    scenario = Scenario.model_validate({
        "period": past.period.model_dump(), "pipeline": {"path": "history"},
        "amount": {"sigma": learned.sigma, "haircut": learned.haircut}, "correlation": {"market": market},
        "new_pipeline": block,
    })  # fmt: skip
    trials, seed = spec.simulation.trials, spec.simulation.seed + past.index
    samples = simulate(scenario, deals, trials=trials, seed=seed).trials.revenue
    weighted = float(np.sum(deals.amount * (1 - learned.haircut) * rates))
    if block:
        weighted += expected_new_deals(scenario) * block["deal_size"]["mean"]
    actual = past.actual_total if total else past.actual_open
    spread = distribution(samples)
    return {
        "period": past.name, "actual": actual, "mean": spread["mean"],
        **{key: spread[key] for key in ("p10", "p25", "p50", "p75", "p90")},
        "percentile_rank": percentile_rank(samples, actual), "crps": crps(samples, actual),
        "weighted_pipeline": weighted, **past.known(),
    }  # fmt: skip


def _scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "coverage_50": float(np.mean([r["p25"] <= r["actual"] <= r["p75"] for r in rows])),
        "coverage_80": float(np.mean([r["p10"] <= r["actual"] <= r["p90"] for r in rows])),
        "mean_crps": float(np.mean([r["crps"] for r in rows])),
        "weighted_pipeline_mean_abs_error": float(
            np.mean([abs(r["weighted_pipeline"] - r["actual"]) for r in rows])
        ),
        "mean_abs_error": float(np.mean([abs(r["mean"] - r["actual"]) for r in rows])),
    }


def _scored(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"periods": rows, "summary": _scores(rows)}


def backtest(
    spec: BacktestSpec, folder: Path, history: History | None = None, market: float = 0.0
) -> dict[str, Any]:
    """Score every period's forecasts: the open pipeline by age x stage, by age, by stage; the total.

    ``market``: a latent market correlation between the open deals (0: independent).
    """
    history = load_backtest_history(spec, folder) if history is None else history
    past = past_periods(spec, history)
    main, labels = _main_model(history), _labels(history)
    rows: dict[str, list] = {key: [] for key in (*labels, "total")}
    for period in past:
        models = _models(history, period.learned)
        for key, table in models.items():
            rows[key].append(_forecast(spec, history, period, table, market))
        cells = _cell_counts(period.learned.by_age)
        rows[main][-1]["win_by_age"] = {**models[main].model_dump(), "deals": cells}
        total = _forecast(spec, history, period, models[main], market, total=True)
        rows["total"].append({**total, "new_pipeline": period.learned.new_pipeline})
    scored = {key: _scored(forecasts) if forecasts else None for key, forecasts in rows.items()}
    names = {key: f"open pipeline, {label}" for key, label in labels.items()}
    names["total"] = "total (open + new pipeline)"
    comparison = [
        {"forecast": names[key], "periods": len(past), **block["summary"]}
        for key, block in scored.items()
        if block
    ]
    return {"name": spec.name, "model": labels[main], **scored[main], **scored, "comparison": comparison}


CORRELATION_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def fit_correlation(
    spec: BacktestSpec, folder: Path, history: History | None = None, grid=CORRELATION_GRID
) -> dict:
    """The latent market correlation whose open-pipeline ranks are closest to uniform (Kolmogorov distance).

    With few periods the choice is rough: the result says how many periods it rests on.
    """
    from scipy import stats

    history = load_backtest_history(spec, folder) if history is None else history
    past = past_periods(spec, history)
    main = [_models(history, period.learned)[_main_model(history)] for period in past]
    distances = []
    for market in grid:
        ranks = [
            _forecast(spec, history, p, table, market)["percentile_rank"]
            for p, table in zip(past, main, strict=True)
        ]
        distances.append(float(stats.kstest(ranks, "uniform").statistic))
    best = int(np.argmin(distances))
    return {
        "market": grid[best],
        "ks_distance": distances[best],
        "periods": len(past),
        "grid": [{"market": m, "ks_distance": d} for m, d in zip(grid, distances, strict=True)],
    }
