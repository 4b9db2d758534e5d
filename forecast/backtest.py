"""forecast backtest: forecast past periods from what was known at their start, score against actuals.

For each period: rebuild the pipeline open at its first day (deals created before it
and not yet closed), estimate from earlier periods only the chance that an open deal
is won within a period, by its age (days since creation) in buckets, and forecast:
(a) what those open deals win within the period and (b) that plus deals created and
won within it (the new pipeline of earlier periods, Poisson). Scores: the actual's
percentile rank in the forecast (uniform if the forecast is calibrated), CRPS, the
coverage of the 50 % and 80 % intervals, and the same for a model that ignores age
("stage rates alone") and for the weighted-pipeline point forecast.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.calibration import MIN_DEALS
from forecast.errors import PipelineError
from forecast.kernels import new_pipeline_trials
from forecast.pipeline import Deals, _parse_amount, _parse_date, normalise, read_table
from forecast.rng import deal_keys, lognormal_table, stream_starts
from forecast.scenario import BacktestSpec, parse_period, parse_scenario
from forecast.simulate import simulate


@dataclass
class Book:
    """Every deal of the history as arrays (open deals have no close date)."""

    deal_id: np.ndarray
    created: np.ndarray  # datetime64[D], NaT if unknown
    closed: np.ndarray  # datetime64[D], NaT while open
    won: np.ndarray  # bool
    value: np.ndarray  # float64: won value (NaN unless won)
    price: np.ndarray  # float64: list price (the amount an open deal is forecast at)


def load_book(spec: BacktestSpec, folder: Path) -> Book:
    history = spec.history
    path = (folder / history.path).resolve()
    table, first_row = read_table(path)
    names = ("deal_id", "outcome", "amount", "created_date", "close_date")
    column = {name: history.columns.get(name, name) for name in names}
    key_column = history.prices.key if history.prices else None
    missing = [name for name, header in column.items() if header not in table]
    missing += [key_column] if key_column and key_column not in table else []
    if missing:
        raise PipelineError([f"{path}: missing column {name!r}" for name in missing])
    prices: dict[str, float] = {}
    if history.prices:
        price_path = (folder / history.prices.path).resolve()
        price_table, _ = read_table(price_path)
        if history.prices.key not in price_table or history.prices.price not in price_table:
            raise PipelineError(
                f"{price_path}: needs columns {history.prices.key!r} and {history.prices.price!r}"
            )
        pairs = zip(price_table[history.prices.key], price_table[history.prices.price], strict=True)
        prices = {normalise(k): _parse_amount(v) for k, v in pairs}
    won_values = {v.casefold() for v in history.won}
    lost_values = {v.casefold() for v in history.lost}
    n = len(table[column["deal_id"]])
    created = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    closed = created.copy()
    won, value, price = np.zeros(n, bool), np.full(n, np.nan), np.full(n, np.nan)
    problems = []
    for row in range(n):
        outcome = normalise(table[column["outcome"]][row]).casefold()
        try:
            if normalise(table[column["created_date"]][row]):
                created[row] = _parse_date(table[column["created_date"]][row], history.date_format)
            if outcome in won_values | lost_values:
                closed[row] = _parse_date(table[column["close_date"]][row], history.date_format)
                won[row] = outcome in won_values
                if won[row]:
                    value[row] = _parse_amount(table[column["amount"]][row])
        except ValueError as error:
            problems.append(f"{path}: row {row + first_row}: {error}")
        if key_column:
            key = normalise(table[key_column][row])
            price[row] = prices.get(normalise(history.prices.aliases.get(key, key)), np.nan)
        elif won[row]:
            price[row] = value[row]
    if problems:
        raise PipelineError(problems)
    ids = np.array([normalise(v) for v in table[column["deal_id"]]], dtype=object)
    return Book(deal_id=ids, created=created, closed=closed, won=won, value=value, price=price)


def _open_at(book: Book, start: np.datetime64) -> np.ndarray:
    """Deals open on ``start``: created before it, not closed before it, with a price."""
    return (book.created < start) & ~(book.closed < start) & ~np.isnan(book.price)


def _won_within(book: Book, start: np.datetime64, end: np.datetime64) -> np.ndarray:
    return book.won & (book.closed >= start) & (book.closed <= end)


def _bucket(ages: np.ndarray, edges: list[int]) -> np.ndarray:
    return np.searchsorted(np.asarray(edges), ages, side="left")


@dataclass
class Learned:
    """What earlier periods say: win-within-period rates by age bucket, amounts, new pipeline."""

    by_age: np.ndarray  # rate per bucket
    overall: float
    haircut: float
    sigma: float
    new_deals: float  # expected deals created and won within a period
    new_size: float
    new_sigma: float
    periods: int


def learn(book: Book, earlier: list[tuple[np.datetime64, np.datetime64]], edges: list[int]) -> Learned:
    buckets = len(edges) + 1
    wins, deals = np.zeros(buckets), np.zeros(buckets)
    new_counts, new_values = [], []
    for start, end in earlier:
        open_now = _open_at(book, start)
        age = (start - book.created[open_now]).astype(np.int64)
        bucket = _bucket(age, edges)
        np.add.at(deals, bucket, 1)
        np.add.at(wins, bucket, _won_within(book, start, end)[open_now])
        created_inside = (book.created >= start) & (book.created <= end) & _won_within(book, start, end)
        new_counts.append(int(created_inside.sum()))
        new_values += list(book.value[created_inside])
    overall = (wins.sum() + 1) / (deals.sum() + 2)
    by_age = np.where(deals >= MIN_DEALS, (wins + 1) / (deals + 2), overall)
    ratio = book.value / book.price
    known = book.won & np.isfinite(ratio) & (ratio > 0) & (book.closed <= earlier[-1][1])  # known by then
    haircut = float(1 - ratio[known].mean()) if known.sum() >= MIN_DEALS else 0.0
    sigma = float(np.std(np.log(ratio[known]), ddof=1)) if known.sum() >= MIN_DEALS else 0.0
    values = np.array(new_values)
    new_sigma = float(np.std(np.log(values[values > 0]), ddof=1)) if (values > 0).sum() >= MIN_DEALS else 0.0
    return Learned(
        by_age=by_age, overall=float(overall), haircut=min(max(haircut, 0.0), 0.99), sigma=min(sigma, 3.0),
        new_deals=float(np.mean(new_counts)) if new_counts else 0.0,
        new_size=float(values.mean()) if values.size else 0.0, new_sigma=min(new_sigma, 3.0),
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


def _forecast(
    book, open_now, period, rates, learned, spec, index, with_new, market: float = 0.0
) -> np.ndarray:
    trials, seed = spec.simulation.trials, spec.simulation.seed
    n = int(open_now.sum())
    deals = Deals(
        deal_id=book.deal_id[open_now], amount=book.price[open_now],
        close_date=np.full(n, np.datetime64(period.end, "D")), probability=rates, stage_index=np.full(n, -1),
        new_logo=np.zeros(n, bool), rows=np.zeros(n, np.int64),
    )  # fmt: skip
    scenario = parse_scenario(
        f"period: {{start: {period.start}, end: {period.end}}}\npipeline: {{path: history}}\n"
        f"amount: {{sigma: {learned.sigma}, haircut: {learned.haircut}}}\n"
        f"correlation: {{market: {market}}}\n"
    )
    revenue = simulate(scenario, deals, trials=trials, seed=seed + index).trials.revenue
    if with_new and learned.new_deals > 0:
        base, slope = (
            lognormal_table(learned.new_sigma) if learned.new_sigma > 0 else (np.ones(1), np.zeros(1))
        )
        extra, count = np.empty(trials), np.empty(trials)
        stream = stream_starts(np.uint64(seed + index), deal_keys(["__backtest_new__"]))[0]
        new_pipeline_trials(stream, learned.new_deals, learned.new_size, base, slope, 0, extra, count)
        revenue = revenue + extra
    return revenue


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


CORRELATION_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


def fit_correlation(
    spec: BacktestSpec, folder: Path, book: Book | None = None, grid=CORRELATION_GRID
) -> dict:
    """The latent market correlation whose backtest ranks are closest to uniform (Kolmogorov distance).

    With few periods the choice is rough: the result says how many periods it rests on.
    """
    from scipy import stats

    book = load_book(spec, folder) if book is None else book
    distances = []
    for market in grid:
        ranks = [row["percentile_rank"] for row in backtest(spec, folder, book, market=market)["periods"]]
        distances.append(float(stats.kstest(ranks, "uniform").statistic))
    best = int(np.argmin(distances))
    return {
        "market": grid[best],
        "ks_distance": distances[best],
        "periods": len(spec.period_list),
        "grid": [{"market": m, "ks_distance": d} for m, d in zip(grid, distances, strict=True)],
    }


def backtest(
    spec: BacktestSpec, folder: Path, book: Book | None = None, market: float = 0.0
) -> dict[str, Any]:
    """Score the forecast of every period (open pipeline, and total) with and without deal age.

    ``market``: a latent market correlation between the open deals (0: independent).
    """
    book = load_book(spec, folder) if book is None else book
    edges = spec.model.age_buckets_days
    periods = [parse_period(name) for name in spec.period_list]
    first = periods[0].start
    earlier_all = []  # quarters before the first period, back to the history's start
    start = np.datetime64(first, "D")
    oldest = np.nanmin(book.created.astype("datetime64[D]").astype(np.int64)[~np.isnat(book.created)])
    while True:
        end = start - 1
        begin = np.datetime64(parse_period(_quarter_name(end.astype(dt.date))).start, "D")
        if begin.astype(np.int64) < oldest - 92:
            break
        earlier_all.insert(0, (begin, end))
        start = begin
    results = {"open_pipeline": [], "total": [], "open_pipeline_stage_only": []}
    for index, period in enumerate(periods):
        start, end = np.datetime64(period.start, "D"), np.datetime64(period.end, "D")
        earlier = [(s, e) for s, e in earlier_all if e < start] + [
            (np.datetime64(p.start, "D"), np.datetime64(p.end, "D")) for p in periods[:index]
        ]
        if not earlier:
            raise PipelineError(f"{spec.periods}: no earlier period to learn from before {period.start}")
        learned = learn(book, earlier, edges)
        open_now = _open_at(book, start)
        ages = (start - book.created[open_now]).astype(np.int64)
        by_age = learned.by_age[_bucket(ages, edges)]
        flat = np.full(ages.size, learned.overall)
        actual_open = float(np.nansum(book.value[open_now & _won_within(book, start, end)]))
        created_inside = (book.created >= start) & (book.created <= end) & _won_within(book, start, end)
        actual_total = actual_open + float(np.nansum(book.value[created_inside]))
        for key, rates, with_new, actual in (
            ("open_pipeline", by_age, False, actual_open),
            ("total", by_age, True, actual_total),
            ("open_pipeline_stage_only", flat, False, actual_open),
        ):
            samples = _forecast(book, open_now, period, rates, learned, spec, index, with_new, market)
            weighted = float(np.sum(book.price[open_now] * (1 - learned.haircut) * rates))
            p10, p25, p50, p75, p90 = np.percentile(samples, [10, 25, 50, 75, 90])
            results[key].append({
                "period": spec.period_list[index], "actual": actual, "mean": float(samples.mean()),
                "p10": float(p10), "p25": float(p25), "p50": float(p50), "p75": float(p75), "p90": float(p90),
                "percentile_rank": percentile_rank(samples, actual), "crps": crps(samples, actual),
                "weighted_pipeline": weighted + (learned.new_deals * learned.new_size if with_new else 0.0),
                "open_deals": int(open_now.sum()), "learned_from_periods": learned.periods,
            })  # fmt: skip
    return {
        "name": spec.name,
        "periods": results["open_pipeline"],
        "summary": _scores(results["open_pipeline"]),
        "total": {"periods": results["total"], "summary": _scores(results["total"])},
        "stage_only": {
            "periods": results["open_pipeline_stage_only"],
            "summary": _scores(results["open_pipeline_stage_only"]),
        },  # fmt: skip
    }


def _quarter_name(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
