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

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.periods import PeriodRange, parse_period, quarters_between
from forecast.config.scenario import Scenario, WinByAge
from forecast.config.specs import BacktestModel, BacktestSpec, Prices
from forecast.engine.activity import expected_new_deals
from forecast.engine.model import rates_for
from forecast.engine.simulate import simulate
from forecast.errors import PipelineError
from forecast.history.deal_age import exposures, fit_win_by_age, open_at, win_by_age
from forecast.history.deal_flow import fit_new_pipeline
from forecast.history.rates import MIN_DEALS
from forecast.inputs.cells import normalise, parse_amount
from forecast.inputs.deals import Deals
from forecast.inputs.history import HistorySpec, load_history
from forecast.inputs.stage_history import StageHistory
from forecast.inputs.tables import read_table

BOOK_COLUMNS = ("deal_id", "outcome", "amount", "created_date", "close_date")


@dataclass
class Book:
    """Every deal of the history as arrays (open deals have no close date)."""

    deal_id: np.ndarray
    created: np.ndarray  # datetime64[D], NaT if unknown
    closed: np.ndarray  # datetime64[D], NaT while open
    won: np.ndarray  # bool
    value: np.ndarray  # float64: won value (NaN unless won)
    price: np.ndarray  # float64: the amount an open deal is forecast at (NaN if unknown)
    stages: StageHistory | None = None

    def stage_on(self, day: np.datetime64) -> np.ndarray:
        """Every deal's stage on ``day`` ('' without a stage history)."""
        if self.stages is None:
            return np.full(len(self.deal_id), "", dtype=object)
        return self.stages.on(self.deal_id, day)


def load_book(spec: BacktestSpec, folder: Path) -> Book:
    """The backtest's history (and its stage history and price list), paths relative to ``folder``."""
    history = spec.history
    stage_source = history.stage_history
    if stage_source is not None:
        stage_source = stage_source.model_copy(update={"path": str((folder / stage_source.path).resolve())})
    read = load_history(
        (folder / history.path).resolve(),
        HistorySpec(
            columns=history.columns, won=tuple(history.won), lost=tuple(history.lost),
            segments=(history.prices.key,) if history.prices else (), date_format=history.date_format,
            date_format_setting="history.date_format",
            stage_history=stage_source, required=BOOK_COLUMNS, hint="history.columns.{name}",
            stage_hint="history.stage_history.columns.{name}",
        ),
    )  # fmt: skip
    price = (
        _list_prices(history.prices, folder, read.segments[history.prices.key])
        if history.prices
        else read.amount
    )
    value = np.where(read.won, read.amount, np.nan)
    return Book(deal_id=read.deal_id, created=read.created, closed=read.closed, won=read.won, value=value,
                price=price, stages=read.stage_history)  # fmt: skip


def _list_prices(prices: Prices, folder: Path, keys: np.ndarray) -> np.ndarray:
    """Each deal's list price, joined on ``prices.key`` (NaN where the list lacks its value)."""
    path = (folder / prices.path).resolve()
    table, first_row = read_table(path, what="price list")
    missing = [name for name in (prices.key, prices.price) if name not in table]
    if missing:
        raise PipelineError([f"{path}: missing column {name!r}" for name in missing])
    lookup, problems = {}, []
    for row, (key, price) in enumerate(zip(table[prices.key], table[prices.price], strict=True)):
        try:
            lookup[normalise(key)] = parse_amount(price)
        except ValueError as error:
            problems.append(f"{path}: row {row + first_row}, column {prices.price!r}: {error}")
    if problems:
        raise PipelineError(problems)
    return np.array([lookup.get(normalise(prices.aliases.get(key, key)), np.nan) for key in keys])


@dataclass
class Learned:
    """What earlier periods say: win-within-period rates, amounts, the new pipeline."""

    by_age: dict[str, Any]  # deal_age.fit_win_by_age over the age buckets (rows per stage)
    by_stage: dict[str, Any]  # the same without age buckets: rates by stage alone
    haircut: float
    sigma: float
    new_pipeline: dict[str, Any] | None  # deal_flow.fit_new_pipeline
    periods: int


def learn(book: Book, earlier: list[tuple[np.datetime64, np.datetime64]], model: BacktestModel) -> Learned:
    """What the ``earlier`` periods say, from what was known by the end of the last of them."""
    exposure = exposures(book.created, book.closed, book.won, earlier, book.stage_on)
    ratio = book.value / book.price
    known = book.won & np.isfinite(ratio) & (ratio > 0) & (book.closed <= earlier[-1][1])  # known by then
    haircut = float(1 - ratio[known].mean()) if known.sum() >= MIN_DEALS else 0.0
    sigma = float(np.std(np.log(ratio[known]), ddof=1)) if known.sum() >= MIN_DEALS else 0.0
    return Learned(
        by_age=fit_win_by_age(exposure, model.age_buckets_days, model.prior_strength),
        by_stage=fit_win_by_age(exposure, [], model.prior_strength),
        haircut=min(max(haircut, 0.0), 0.99), sigma=min(sigma, 3.0),
        new_pipeline=fit_new_pipeline(book.created, book.closed, book.won, book.value, earlier,
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
    open_now: np.ndarray  # bool over the book: open at the start, with a price
    ages: np.ndarray  # int64 days, of the open deals
    stages: np.ndarray  # their stages as the period began ('' unknown)
    actual_open: float  # won within the period by the deals open at its start
    actual_total: float  # plus the deals created and won within it

    def known(self) -> dict[str, Any]:
        return {"open_deals": int(self.open_now.sum()), "learned_from_periods": self.learned.periods}


def _earlier_quarters(book: Book, first: dt.date) -> list[tuple[np.datetime64, np.datetime64]]:
    """The calendar quarters before ``first``, back to the one of the history's first creation."""
    dated = book.created[~np.isnat(book.created)]
    if dated.size == 0 or dated.min().item() >= first:
        return []
    return [
        (np.datetime64(quarter.start, "D"), np.datetime64(quarter.end, "D"))
        for quarter in quarters_between(dated.min().item(), first - dt.timedelta(days=1))
    ]


def past_periods(spec: BacktestSpec, book: Book) -> list[PastPeriod]:
    """Every period of the backtest, each learned from the periods before it only."""
    periods = [parse_period(name) for name in spec.period_list]
    earlier_all = _earlier_quarters(book, periods[0].start)
    out = []
    for index, period in enumerate(periods):
        start, end = np.datetime64(period.start, "D"), np.datetime64(period.end, "D")
        earlier = [(s, e) for s, e in earlier_all if e < start] + [
            (np.datetime64(p.start, "D"), np.datetime64(p.end, "D")) for p in periods[:index]
        ]
        if not earlier:
            raise PipelineError(f"{spec.periods}: no earlier period to learn from before {period.start}")
        open_now = open_at(book.created, book.closed, start) & ~np.isnan(book.price)
        won_within = book.won & (book.closed >= start) & (book.closed <= end)
        actual_open = float(np.nansum(book.value[open_now & won_within]))
        created_inside = (book.created >= start) & (book.created <= end) & won_within
        out.append(PastPeriod(
            name=spec.period_list[index], period=period, index=index,
            learned=learn(book, earlier, spec.model),
            open_now=open_now, ages=(start - book.created[open_now]).astype(np.int64),
            stages=book.stage_on(start - 1)[open_now], actual_open=actual_open,
            actual_total=actual_open + float(np.nansum(book.value[created_inside])),
        ))  # fmt: skip
    return out


def _main_model(book: Book) -> str:
    """The open-pipeline model reported first: age x stage with a stage history, else age alone."""
    return "age_only" if book.stages is None else "age_x_stage"


def _labels(book: Book) -> dict[str, str]:
    stage = "stage alone" if book.stages is not None else "flat rate (no stage history)"
    return {"age_x_stage": "age x stage", "age_only": "deal age", "stage_only": stage}


def _models(book: Book, learned: Learned) -> dict[str, WinByAge]:
    """The open-pipeline models compared: age x stage (with a stage history), age alone, stage alone."""
    models = {
        "age_only": win_by_age(learned.by_age, by_stage=False),
        "stage_only": win_by_age(learned.by_stage),
    }
    return models if book.stages is None else {"age_x_stage": win_by_age(learned.by_age)} | models


def _cell_counts(fit: dict[str, Any]) -> dict[str, list[int]]:
    return {"default": [cell["deals"] for cell in fit["by_age"]]} | {
        name: [cell["deals"] for cell in row] for name, row in fit["stages"].items()
    }


def _forecast(
    spec: BacktestSpec, book: Book, past: PastPeriod, table: WinByAge, market: float, total: bool = False
) -> dict[str, Any]:
    """The period's forecast row: open deals at ``table``'s rates, plus (``total``) the new pipeline."""
    learned = past.learned
    rates = rates_for(table, past.ages, past.stages)
    deals = Deals(
        deal_id=book.deal_id[past.open_now], amount=book.price[past.open_now],
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
    p10, p25, p50, p75, p90 = np.percentile(samples, [10, 25, 50, 75, 90])
    return {
        "period": past.name, "actual": actual, "mean": float(samples.mean()),
        "p10": float(p10), "p25": float(p25), "p50": float(p50), "p75": float(p75), "p90": float(p90),
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
    spec: BacktestSpec, folder: Path, book: Book | None = None, market: float = 0.0
) -> dict[str, Any]:
    """Score every period's forecasts: the open pipeline by age x stage, by age, by stage; the total.

    ``market``: a latent market correlation between the open deals (0: independent).
    """
    book = load_book(spec, folder) if book is None else book
    past = past_periods(spec, book)
    main, labels = _main_model(book), _labels(book)
    rows: dict[str, list] = {key: [] for key in (*labels, "total")}
    for period in past:
        models = _models(book, period.learned)
        for key, table in models.items():
            rows[key].append(_forecast(spec, book, period, table, market))
        cells = _cell_counts(period.learned.by_age)
        rows[main][-1]["win_by_age"] = {**models[main].model_dump(), "deals": cells}
        total = _forecast(spec, book, period, models[main], market, total=True)
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
    spec: BacktestSpec, folder: Path, book: Book | None = None, grid=CORRELATION_GRID
) -> dict:
    """The latent market correlation whose open-pipeline ranks are closest to uniform (Kolmogorov distance).

    With few periods the choice is rough: the result says how many periods it rests on.
    """
    from scipy import stats

    book = load_book(spec, folder) if book is None else book
    past = past_periods(spec, book)
    main = [_models(book, period.learned)[_main_model(book)] for period in past]
    distances = []
    for market in grid:
        ranks = [
            _forecast(spec, book, p, table, market)["percentile_rank"]
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
