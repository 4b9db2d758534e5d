"""forecast backtest: forecast from past origins with what was known then, and score what happened.

At every origin (weekly, monthly, quarterly or every N days, over the history or within
the quarters ``periods`` lists) the pipeline is rebuilt as it stood that day: deals created
before it and not closed before it, with their age and their stage the day before (from a
stage history). Everything the forecast uses is fitted on outcomes known by then:

- the chance an open deal is won within the horizon, by age bucket x stage: from the deals
  open at the same day of every earlier quarter and whether they were won within as long a
  window, among the windows that ended before the origin, shrunk toward the survival curve's
  chance of a win within the horizon's days (``deal_age.fit_win_by_age``);
- the amounts' haircut and spread, from deals won before the origin;
- the new pipeline (deals created after the origin), from the quarters that ended before it
  (``deal_flow.fit_new_pipeline``);
- the market correlation, from the earlier origins whose horizons ended before it: the grid
  value with the lowest mean CRPS of their open-pipeline forecasts.

One ``simulate`` call per origin (the machinery ``forecast run`` uses) gives three parts,
scored apart so that cancelling errors show: ``open`` (what the open pipeline wins within
the horizon), ``new`` (what deals created after the origin win within it) and ``total``.
Each is scored with ``scoring`` (randomised PIT, CRPS, interval hits) beside independent
point baselines scored the same way (the CRPS of a point is its absolute error): the
weighted pipeline, the naive forecast and, with a category history, the CRM's own call."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecast.config.base import stage_key
from forecast.config.periods import day_bounds, parse_period, quarter_of, quarters_between
from forecast.config.scenario import Scenario, WinByAge
from forecast.config.specs import BacktestSpec, Prices, StageHistorySource
from forecast.engine.model import age_rate_cells, deal_model, rates_for
from forecast.engine.simulate import simulate
from forecast.engine.summary import distribution
from forecast.errors import PipelineError
from forecast.history import scoring
from forecast.history.calibration import age_evidence
from forecast.history.deal_age import exposures, fit_win_by_age, open_at, win_by_age
from forecast.history.deal_flow import fit_new_pipeline
from forecast.history.rates import MIN_DEALS
from forecast.inputs.deals import Deals
from forecast.inputs.history import History, HistorySpec, load_history
from forecast.inputs.stage_history import StageHistory, load_stage_history
from forecast.inputs.tables import match_columns, read_table

REQUIRED_COLUMNS = ("deal_id", "outcome", "amount", "created_date", "close_date")  # what a backtest reads
PARTS = ("open", "new", "total")
LEVELS = (0.5, 0.8, 0.9)  # central intervals scored
BASELINE_PARTS = {"weighted_pipeline": ("open", "total"), "naive": PARTS, "crm_call": ("open", "total")}
CATEGORY_COLUMN = "forecast_category"  # a category history's category column unless mapped
UNIFORMITY_LEVEL = 0.01  # a PIT histogram a uniformity test rejects at this level is not calibrated
EFFECTIVE_COUNT_METHOD = (
    "scoring.effective_count of the PIT values in origin order: n / (1 + 2 x the sum of their "
    "autocorrelations up to the first lag at or below 0), corrected for the mean's estimation"
)


def load_backtest_history(spec: BacktestSpec, folder: Path) -> History:
    """The backtest's history, with its stage history and price list; paths relative to ``folder``.

    Without a stage history the export's stage column is left out: it holds each deal's stage at
    the snapshot, after the origins replayed, which a forecast made then could not know.
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


def load_categories(spec: BacktestSpec, folder: Path, history: History) -> StageHistory | None:
    """The category history (``history.category_history``): each deal's forecast category on any day,
    read as a stage history is (None without one)."""
    source = spec.history.category_history
    if source is None:
        return None
    path = (folder / source.path).resolve()
    header = source.columns.get("category", CATEGORY_COLUMN)
    table = read_table(path, what="category history", names=(header, *source.columns.values()))
    found = match_columns(table, ("category",), {"category": header})["category"]
    if found not in table:
        raise PipelineError(
            f"{path}: missing column {header!r} (the forecast category); map it with "
            f"history.category_history.columns.category (columns are: {', '.join(table) or 'none'})"
        )
    columns = {**{k: v for k, v in source.columns.items() if k != "category"}, "stage": found}
    read = StageHistorySource(path=str(path), columns=columns, date_format=source.date_format)
    return load_stage_history(read, set(history.deal_id), path, "history.category_history.columns.{name}")


def crm_call_note(spec: BacktestSpec, history: History) -> str | None:
    """Why the CRM's call is not a baseline, where the export has a forecast category but no history
    of it: the category a snapshot shows is the one each deal ended with, known only after the
    origins replayed (every deal closed since reads Closed), so scoring it would look ahead."""
    if spec.history.category_history is not None:
        return None
    header = match_columns(history.headers, (CATEGORY_COLUMN,), spec.history.columns)[CATEGORY_COLUMN]
    if header not in history.headers:
        return None
    return (f"the CRM's call is not a baseline: the history's {CATEGORY_COLUMN} is each deal's category "
            "at the export, after the origins (it would look ahead); history.category_history gives it "
            "as it stood at each origin")  # fmt: skip


@dataclass(frozen=True)
class Origin:
    """A date to forecast from, the horizon's last day, and its place on the origin grid."""

    day: dt.date
    horizon_end: dt.date
    step: int  # candidates since the grid's first: with the seed, it keys the origin's random numbers


@dataclass(frozen=True)
class Skipped:
    """An origin that cannot be scored, and why."""

    day: dt.date
    reason: str


def history_range(history: History, as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The first creation date and the last day the history knows: ``as_of`` (the day the export was
    taken) if given, else its last creation or close date."""
    created = history.created[~np.isnat(history.created)]
    if created.size == 0:
        raise PipelineError("the history has no created_date: a backtest needs to know when deals were open")
    closed = history.closed[~np.isnat(history.closed)]
    last = max(created.max(), closed.max() if closed.size else created.max()).item()
    if as_of is not None and as_of < last:
        raise PipelineError(f"history.as_of: {as_of} is before the history's last date, {last}")
    return created.min().item(), last if as_of is None else as_of


def _grid(step: str | int, first: dt.date, last: dt.date) -> list[dt.date]:
    """Origin candidates from ``first`` to ``last``: Mondays, month starts, quarter starts or every N days."""
    if isinstance(step, int):
        return [first + dt.timedelta(days=d) for d in range(0, (last - first).days + 1, step)]
    if step == "weekly":
        monday = first + dt.timedelta(days=(7 - first.weekday()) % 7)
        return [monday + dt.timedelta(days=d) for d in range(0, (last - monday).days + 1, 7)]
    days = []
    month = dt.date(first.year, first.month, 1)
    while month <= last:
        if month >= first and (step == "monthly" or month.month % 3 == 1):
            days.append(month)
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return days


def origin_candidates(spec: BacktestSpec, history: History) -> list[Origin]:
    """Every origin of the grid, with its horizon: within ``periods`` when given, else the history's range."""
    first, last = history_range(history, spec.history.as_of)
    quarters = None
    if spec.period_list is not None:
        quarters = [parse_period(name) for name in spec.period_list]
        first, last = min(q.start for q in quarters), max(q.end for q in quarters)
    out = []
    for step, day in enumerate(_grid(spec.origins, first, last)):
        if quarters is not None and quarter_of(day) not in quarters:
            continue
        end = quarter_of(day).end if spec.horizon_days is None else day + dt.timedelta(spec.horizon_days - 1)
        out.append(Origin(day, end, step))
    return out


@dataclass
class Learned:
    """What was known at an origin: win-within-horizon rates, amounts, the new pipeline."""

    fit: dict[str, Any]  # deal_age.fit_win_by_age over the earlier windows
    windows: list[tuple[np.datetime64, np.datetime64]]  # the earlier windows it was fitted on
    haircut: float
    sigma: float
    new_pipeline: dict[str, Any]  # deal_flow.fit_new_pipeline


@dataclass
class Snapshot:
    """One origin: what was known (learned, the open deals, their rates), the baselines, what happened."""

    origin: Origin
    learned: Learned
    open_now: np.ndarray  # bool over the history's deals: open at the origin, with a price
    rates: np.ndarray  # float64 per open deal: its chance to be won within the horizon
    rate_cell: np.ndarray | None  # uint64 per open deal: its age cell's key, with model.rate_uncertainty
    rate_deals: np.ndarray | None  # float64 per open deal: that cell's evidence in deals
    actual: dict[str, float]  # per part
    baselines: dict[str, dict[str, float]]  # baseline -> part -> point forecast


def _windows(origin: Origin, first: dt.date, horizon_days: int | None) -> list[tuple[dt.date, dt.date]]:
    """The same stretch of every earlier quarter (as many days into it, as long a horizon) that ended
    before the origin."""
    offset = (origin.day - quarter_of(origin.day).start).days
    out = []
    for quarter in quarters_between(first, origin.day):
        start = min(quarter.start + dt.timedelta(days=offset), quarter.end)
        end = quarter.end if horizon_days is None else start + dt.timedelta(days=horizon_days - 1)
        if end < origin.day:
            out.append((start, end))
    return out


class _Context:
    """What every origin of one backtest shares: the history's arrays and fits reused across origins."""

    def __init__(self, spec: BacktestSpec, history: History, categories: StageHistory | None = None):
        self.spec, self.history, self.categories = spec, history, categories
        source = spec.history.category_history
        self.commit = {stage_key(name) for name in (source.commit if source else [])}
        self.first, self.last = history_range(history, spec.history.as_of)
        self.value = history.won_value
        ratio = self.value / history.price
        self.ratio_known = history.won & np.isfinite(ratio) & (ratio > 0)
        self.ratio = ratio
        self.reached = self._reached()
        self._new_pipeline: dict[tuple, dict[str, Any] | None] = {}
        self._stages: dict[np.datetime64, np.ndarray] = {}

    def stage_on(self, day: np.datetime64) -> np.ndarray:
        """``History.stage_on``, remembered: earlier quarters' windows recur across origins."""
        if day not in self._stages:
            self._stages[day] = self.history.stage_on(day)
        return self._stages[day]

    def _reached(self) -> dict[str, np.ndarray]:
        """Stage key -> the deals (bool) that ever entered it: the weighted pipeline's stage groups."""
        stages = self.history.stage_history
        if stages is None:
            return {}
        return {stage_key(name): np.array([deal in deals for deal in self.history.deal_id], dtype=bool)
                for name, deals in stages.reached().items()}  # fmt: skip

    def new_pipeline(self, origin: dt.date) -> dict[str, Any] | None:
        """The new pipeline fitted on the quarters that ended before ``origin`` (shared by their origins)."""
        quarters = [q for q in quarters_between(self.first, origin) if q.end < origin]
        key = tuple(q.start for q in quarters)
        if key not in self._new_pipeline:
            history = self.history
            self._new_pipeline[key] = fit_new_pipeline(
                history.created, history.closed, history.won, self.value, day_bounds(quarters),
                self.spec.model.lag_distribution,
            ) if quarters else None  # fmt: skip
        return self._new_pipeline[key]

    def snapshot(self, origin: Origin) -> Snapshot | str:
        """The origin's snapshot, or why it cannot be scored."""
        history, model = self.history, self.spec.model
        if origin.horizon_end > self.last:
            return f"its horizon ends after the history's last date, {self.last}"
        windows = _windows(origin, self.first, self.spec.horizon_days)
        complete = [(start, end) for start, end in windows if quarter_of(start).start >= self.first]
        if not complete:
            return "no complete quarter before it to learn from and compare with"
        day = np.datetime64(origin.day, "D")
        bounds = [(np.datetime64(start, "D"), np.datetime64(end, "D")) for start, end in windows]
        exposure = exposures(history.created, history.closed, history.won, bounds, self.stage_on)
        if exposure.won.size < MIN_DEALS:
            return f"fewer than {MIN_DEALS} deals open at the same day of earlier quarters to learn from"
        new_pipeline = self.new_pipeline(origin.day)
        if new_pipeline is None:
            return (f"fewer than {MIN_DEALS} deals won within the quarter they were created in, "
                    "in the quarters before it")  # fmt: skip
        known = self.ratio_known & (history.closed < day)
        haircut = float(1 - self.ratio[known].mean()) if known.sum() >= MIN_DEALS else 0.0
        sigma = float(np.std(np.log(self.ratio[known]), ddof=1)) if known.sum() >= MIN_DEALS else 0.0
        learned = Learned(
            fit=fit_win_by_age(exposure, model.age_buckets_days if model.age else [], model.prior_strength,
                               half_life_days=model.half_life_days,
                               horizon_days=(origin.horizon_end - origin.day).days + 1),
            windows=bounds, haircut=min(max(haircut, 0.0), 0.99), sigma=min(sigma, 3.0),
            new_pipeline=new_pipeline,
        )  # fmt: skip
        open_now = open_at(history.created, history.closed, day) & ~np.isnan(history.price)
        ages = (day - history.created[open_now]).astype(np.int64)
        stages = self.stage_on(day - 1)[open_now]
        table = win_by_age(learned.fit)
        rates = rates_for(table, ages, stages)
        cells = worth = None
        if model.rate_uncertainty:  # each rate drawn per trial from its cell's posterior
            table = WinByAge.model_validate({**table.model_dump(), "evidence": age_evidence(learned.fit)})
            cells, worth = age_rate_cells(table, ages, stages)
        return Snapshot(
            origin=origin, learned=learned, open_now=open_now, rates=rates, rate_cell=cells, rate_deals=worth,
            actual=self._won(open_now, day, np.datetime64(origin.horizon_end, "D")),
            baselines={"weighted_pipeline": self._weighted_pipeline(open_now, stages, day),
                       "naive": self._naive(complete[-1], origin),
                       **({} if self.categories is None else {"crm_call": self._crm_call(open_now, day)})},
        )  # fmt: skip

    def _won(self, open_now: np.ndarray, start: np.datetime64, end: np.datetime64) -> dict[str, float]:
        """What each part won within start..end: the deals open at ``start``, those created in it."""
        history = self.history
        won = history.won & (history.closed >= start) & (history.closed <= end)
        opened = float(np.nansum(self.value[open_now & won]))
        new = float(np.nansum(self.value[won & (history.created >= start) & (history.created <= end)]))
        return {"open": opened, "new": new, "total": opened + new}

    def _weighted_pipeline(self, open_now: np.ndarray, stages: np.ndarray, day: np.datetime64) -> dict:
        """Each open deal's amount x the win rate of its stage among deals closed before ``day``
        (the overall rate for a stage unknown, never reached, or reached by fewer than ``MIN_DEALS``)."""
        history = self.history
        closed = ~np.isnat(history.closed) & (history.closed < day)
        overall = float(history.won[closed].mean()) if closed.any() else 0.0
        rate = np.full(stages.size, overall)
        keys = np.array([stage_key(stage) for stage in stages], dtype=object)
        for key, reached in self.reached.items():
            group = closed & reached
            if group.sum() >= MIN_DEALS:
                rate[keys == key] = history.won[group].mean()
        point = float(np.sum(history.price[open_now] * rate))
        return {part: point for part in BASELINE_PARTS["weighted_pipeline"]}

    def _crm_call(self, open_now: np.ndarray, day: np.datetime64) -> dict[str, float]:
        """The CRM's commit call: the open deals whose forecast category the day before ``day`` was one of
        ``commit``, at their amounts (nothing is booked within the horizon before its first day)."""
        category = self.categories.on(self.history.deal_id[open_now], day - 1)
        committed = np.array([stage_key(name) in self.commit for name in category], dtype=bool)
        point = float(np.sum(self.history.price[open_now][committed]))
        return {part: point for part in BASELINE_PARTS["crm_call"]}

    def _naive(self, window: tuple[dt.date, dt.date], origin: Origin) -> dict[str, float]:
        """What each part won over the same stretch of the last complete quarter, scaled to the horizon."""
        start, end = (np.datetime64(day, "D") for day in window)
        open_then = open_at(self.history.created, self.history.closed, start) & ~np.isnan(self.history.price)
        scale = ((origin.horizon_end - origin.day).days + 1) / ((window[1] - window[0]).days + 1)
        return {part: value * scale for part, value in self._won(open_then, start, end).items()}


def _scenario(snapshot: Snapshot, market: float, new_pipeline: bool) -> Scenario:
    """The scenario ``forecast run`` would simulate at the origin: the horizon as its period, the learned
    amounts, the market correlation, and the new pipeline (``new_pipeline``) fitted by then."""
    learned, origin = snapshot.learned, snapshot.origin
    settings: dict[str, Any] = {
        "period": {"start": origin.day, "end": origin.horizon_end}, "pipeline": {"path": "history"},
        "amount": {"sigma": learned.sigma, "haircut": learned.haircut}, "correlation": {"market": market},
        "new_pipeline": learned.new_pipeline["new_pipeline"] if new_pipeline else None,
    }  # fmt: skip
    return Scenario.model_validate(settings)


def _deals(history: History, snapshot: Snapshot) -> Deals:
    """The open deals at the origin, each at its learned rate, dated inside the horizon."""
    mask, rates = snapshot.open_now, snapshot.rates
    return Deals(
        deal_id=history.deal_id[mask], amount=history.price[mask],
        close_date=np.full(rates.size, np.datetime64(snapshot.origin.horizon_end, "D")), probability=rates,
        stage_index=np.full(rates.size, -1), new_logo=np.zeros(rates.size, bool),
        rows=np.zeros(rates.size, np.int64),
    )  # fmt: skip


def _seed(spec: BacktestSpec, origin: Origin) -> int:
    """The origin's simulation seed: the file's, offset by the origin's place on the grid."""
    return (spec.simulation.seed + origin.step) % 2**63


def forecast_samples(
    spec: BacktestSpec, history: History, snapshot: Snapshot, market: float, trials: int, parts=PARTS
) -> dict[str, np.ndarray]:
    """The origin's forecast of each part, as trials (the new pipeline is left out without ``new``)."""
    with_new = "new" in parts or "total" in parts
    scenario = _scenario(snapshot, market, with_new)
    deals = _deals(history, snapshot)
    model = None
    if snapshot.rate_deals is not None:  # the deals' rates are their age cells', drawn per trial
        model = dataclasses.replace(
            deal_model(scenario, deals), rate_cell=snapshot.rate_cell, rate_deals=snapshot.rate_deals
        )
    forecast = simulate(scenario, deals, trials=trials, seed=_seed(spec, snapshot.origin), model=model)
    total, new = forecast.trials.revenue, forecast.trials.new_pipeline
    samples = {"open": total - new, "new": new, "total": total}
    return {part: samples[part] for part in parts}


def _score(samples: np.ndarray, actual: float, uniform: float) -> dict[str, Any]:
    spread = distribution(samples)
    pit = scoring.pit(samples, actual, uniform)
    return {
        "actual": actual, "mean": spread["mean"], "p10": spread["p10"], "p50": spread["p50"],
        "p90": spread["p90"], "pit": pit, "crps": scoring.crps(samples, actual),
        **{f"inside_{round(100 * level)}": bool(abs(pit - 0.5) <= level / 2) for level in LEVELS},
    }  # fmt: skip


def _rows(spec: BacktestSpec, history: History, snapshot: Snapshot, market: float) -> list[dict[str, Any]]:
    """The origin's scores, one row per part, with the baselines' points and their CRPS."""
    origin = snapshot.origin
    samples = forecast_samples(spec, history, snapshot, market, spec.simulation.trials)
    uniform = scoring.pit_uniform(spec.simulation.seed, origin.step)
    rows = []
    for part in PARTS:
        actual = snapshot.actual[part]
        baselines = {name: {"point": points[part], "crps": abs(points[part] - actual)}
                     for name, points in snapshot.baselines.items() if part in points}  # fmt: skip
        rows.append({
            "origin": origin.day.isoformat(), "horizon_end": origin.horizon_end.isoformat(), "part": part,
            **_score(samples[part], actual, uniform), "baselines": baselines,
        })  # fmt: skip
    return rows


def _verdict(
    pits: np.ndarray, effective: float, uniformity: dict[str, float], coverage: dict[str, dict]
) -> str:
    """``scoring.verdict``, never "calibrated" beside numbers that say otherwise: where it finds no
    departure but a uniformity test rejects at 1 % (its moment tests are weak against a few extreme
    values), or a coverage interval excludes its nominal level, the departure the moments point to
    at 50 %; failing that, "not uniform", or "too narrow" / "too wide" from the coverage."""
    said = scoring.verdict(pits, effective)
    missed = [
        (level, held)
        for level, held in ((level, coverage[f"coverage_{round(100 * level)}"]) for level in LEVELS)
        if not held["low"] <= level <= held["high"]
    ]
    if said != "calibrated" or (min(uniformity.values()) >= UNIFORMITY_LEVEL and not missed):
        return said
    said = scoring.verdict(pits, effective, confidence=0.5)
    if said != "calibrated":
        return said
    if not missed:
        return "not uniform"
    level, held = missed[0]
    return "too narrow" if held["high"] < level else "too wide"


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One part's scores over the origins: coverage on the effective count, PIT histogram, skill, verdict."""
    pits = np.array([row["pit"] for row in rows])
    effective = scoring.effective_count(pits)
    uniformity = scoring.uniformity(pits, effective)
    crps = np.array([row["crps"] for row in rows])
    skill: dict[str, float | None] = {}
    for name in rows[0]["baselines"]:
        baseline = np.array([row["baselines"][name]["crps"] for row in rows])
        skill[name] = scoring.skill(crps, baseline) if baseline.mean() > 0 else None
    coverage = {}
    for level in LEVELS:
        key = round(100 * level)
        coverage[f"coverage_{key}"] = scoring.coverage([row[f"inside_{key}"] for row in rows], effective)
    return {
        "origins": len(rows), "effective_origins": effective, **coverage,
        "mean_crps": float(crps.mean()), "pit_histogram": scoring.pit_histogram(pits).tolist(),
        "uniformity": uniformity, "skill": skill, "verdict": _verdict(pits, effective, uniformity, coverage),
    }  # fmt: skip


@dataclass
class Replay:
    """Every scorable origin of a backtest, with what was known at each, and the origins skipped."""

    context: _Context
    snapshots: list[Snapshot]
    skipped: list[Skipped]


def replay(spec: BacktestSpec, history: History, categories: StageHistory | None = None) -> Replay:
    """The origins' snapshots; origins that cannot be scored are listed with the reason."""
    context = _Context(spec, history, categories)
    snapshots, skipped = [], []
    for origin in origin_candidates(spec, history):
        snapshot = context.snapshot(origin)
        if isinstance(snapshot, str):
            skipped.append(Skipped(origin.day, snapshot))
        else:
            snapshots.append(snapshot)
    if not snapshots:
        reasons = sorted({f"{s.reason}" for s in skipped})
        raise PipelineError(f"no origin to score, {len(skipped)} skipped: " + "; ".join(reasons or
                            ["the periods hold no origin"]))  # fmt: skip
    return Replay(context, snapshots, skipped)


def grid_crps(spec: BacktestSpec, replayed: Replay, upto: int | None = None) -> np.ndarray:
    """The CRPS of each origin's open-pipeline forecast at every correlation of the grid
    (``model.correlation_trials`` trials, the same draws for every value), origins x grid."""
    model, history = spec.model, replayed.context.history
    snapshots = replayed.snapshots[:upto]
    out = np.empty((len(snapshots), len(model.correlation_grid)))
    for i, snapshot in enumerate(snapshots):
        for g, market in enumerate(model.correlation_grid):
            samples = forecast_samples(spec, history, snapshot, market, model.correlation_trials, ("open",))
            out[i, g] = scoring.crps(samples["open"], snapshot.actual["open"])
    return out


def rolling_choice(replayed: Replay, crps: np.ndarray, min_origins: int) -> list[tuple[int | None, int]]:
    """Per origin, the column of ``crps`` (origins x choices) with the lowest mean over the earlier origins
    whose horizons ended before it (None with fewer than ``min_origins`` of them), and their count."""
    out = []
    for snapshot in replayed.snapshots:
        known = [j for j, earlier in enumerate(replayed.snapshots[: len(crps)])
                 if earlier.origin.horizon_end < snapshot.origin.day]  # fmt: skip
        best = int(np.argmin(crps[known].mean(axis=0))) if len(known) >= min_origins else None
        out.append((best, len(known)))
    return out


def rolling_correlation(spec: BacktestSpec, replayed: Replay, crps: np.ndarray) -> list[dict[str, Any]]:
    """Each origin's fitted correlation: the grid value with the lowest mean CRPS over the earlier origins
    whose horizons ended before it, or 0 with fewer than ``model.correlation_min_origins`` of them."""
    grid, picks = (
        spec.model.correlation_grid,
        rolling_choice(replayed, crps, spec.model.correlation_min_origins),
    )
    return [{"market": 0.0 if best is None else float(grid[best]), "earlier_origins": known,
             "fitted": best is not None} for best, known in picks]  # fmt: skip


def _with_half_life(spec: BacktestSpec, half_life_days: float | None) -> BacktestSpec:
    return spec.model_copy(update={"model": spec.model.model_copy(update={"half_life_days": half_life_days})})


def _with_grid(spec: BacktestSpec, half_life_days: float | None, grid: list[float]) -> BacktestSpec:
    """``spec`` with this half-life and correlation grid (a fixed correlation: a grid of one)."""
    model = spec.model.model_copy(update={"half_life_days": half_life_days, "correlation_grid": grid})
    return spec.model_copy(update={"model": model})


@dataclass
class _Choice:
    """What an origin is scored with: its snapshot (fitted with its half-life) and the correlation."""

    snapshot: Snapshot
    correlation: dict[str, Any]  # market, earlier_origins, fitted, half_life_days, half_life_fitted


def _choices(spec: BacktestSpec, history: History, categories: StageHistory | None) -> tuple[Replay, list]:
    """Each origin's half-life and correlation: the file's values, or the pair of the grids (a fitted
    half-life: ``model.half_life_grid``; a fitted correlation: ``model.correlation_grid``) with the
    lowest mean CRPS of the open-pipeline forecasts over the earlier origins whose horizons had ended;
    the grids' first half-life and correlation 0 until ``model.correlation_min_origins`` had."""
    model = spec.model
    lives = list(model.half_life_grid) if model.half_life_days == "fitted" else [model.half_life_days]
    replays = [replay(_with_half_life(spec, life), history, categories) for life in lives]
    base = replays[0]
    fitted_corr = model.correlation == "fitted"
    grid = list(model.correlation_grid) if fitted_corr else [float(model.correlation)]
    picks: list[tuple[int | None, int]] = [(None, 0)] * len(base.snapshots)
    if len(lives) > 1 or fitted_corr:
        last = base.snapshots[-1].origin.day
        resolved = sum(s.origin.horizon_end < last for s in base.snapshots)  # later ones are never used
        crps = np.concatenate([grid_crps(_with_grid(spec, life, grid), r, upto=resolved)
                               for life, r in zip(lives, replays, strict=True)], axis=1)  # fmt: skip
        picks = rolling_choice(base, crps, model.correlation_min_origins)
    out = []
    for i, (best, known) in enumerate(picks):
        life, corr = (0, None) if best is None else divmod(best, len(grid))
        market = grid[corr] if corr is not None else (0.0 if fitted_corr else grid[0])
        out.append(_Choice(replays[life].snapshots[i], {
            "market": float(market), "earlier_origins": known, "fitted": fitted_corr and best is not None,
            "half_life_days": lives[life], "half_life_fitted": len(lives) > 1 and best is not None,
        }))  # fmt: skip
    return base, out


def _skipped_summary(skipped: list[Skipped]) -> list[dict[str, Any]]:
    groups: dict[str, list[dt.date]] = {}
    for item in skipped:
        groups.setdefault(item.reason, []).append(item.day)
    return [{"reason": reason, "origins": len(days), "first": days[0].isoformat(),
             "last": days[-1].isoformat()} for reason, days in groups.items()]  # fmt: skip


def _settings(spec: BacktestSpec, replayed: Replay, crm_call: str | None) -> dict[str, Any]:
    first, last = replayed.context.first, replayed.context.last
    return {
        "origins": spec.origins, "periods": spec.period_list,
        "horizon_days": spec.horizon_days,
        "history": {"first": first.isoformat(), "last": last.isoformat()},
        "scored": len(replayed.snapshots), "skipped": _skipped_summary(replayed.skipped),
        "trials": spec.simulation.trials, "seed": spec.simulation.seed, "model": spec.model.model_dump(),
        "stage_history": replayed.context.history.stage_history is not None,
        "category_history": replayed.context.categories is not None, "crm_call_note": crm_call,
        "effective_origins_method": EFFECTIVE_COUNT_METHOD,
    }  # fmt: skip


def _fitted(snapshot: Snapshot, correlation: dict[str, Any]) -> dict[str, Any]:
    """What the origin's forecast was fitted on, and with."""
    learned = snapshot.learned
    flow = learned.new_pipeline
    return {
        "origin": snapshot.origin.day.isoformat(), "open_deals": int(snapshot.open_now.sum()),
        "windows": len(learned.windows), "deals_learned_from": learned.fit["overall"]["deals"],
        "correlation": correlation["market"], "correlation_fitted": correlation["fitted"],
        "correlation_earlier_origins": correlation["earlier_origins"],
        "half_life_days": correlation["half_life_days"], "half_life_fitted": correlation["half_life_fitted"],
        "haircut": learned.haircut, "sigma": learned.sigma,
        "new_pipeline": {
            "conversations_per_week": flow["new_pipeline"]["conversations_per_week"],
            "won_within_period": flow["won_within_period"], "deals_created": flow["deals_created"],
        },
    }  # fmt: skip


def backtest(
    spec: BacktestSpec, folder: Path, history: History | None = None, categories: StageHistory | None = None
) -> dict[str, Any]:
    """Forecast from every origin with what was known then; score each part against what happened.

    Returns ``settings`` (how the run was made, the origins skipped and why), ``origins`` (one row
    per origin and part), ``summary`` (per part) and ``fitted`` (per origin: what it learned from,
    the correlation it used). ``history`` and ``categories``: as read from the file when not given.
    """
    history = load_backtest_history(spec, folder) if history is None else history
    categories = load_categories(spec, folder, history) if categories is None else categories
    replayed, choices = _choices(spec, history, categories)
    rows = []
    for choice in choices:
        rows += _rows(spec, history, choice.snapshot, choice.correlation["market"])
    return {
        "name": spec.name, "settings": _settings(spec, replayed, crm_call_note(spec, history)),
        "origins": rows,
        "summary": {part: _summary([row for row in rows if row["part"] == part]) for part in PARTS},
        "fitted": [_fitted(choice.snapshot, choice.correlation) for choice in choices],
    }  # fmt: skip


def fit_correlation(spec: BacktestSpec, folder: Path, history: History | None = None) -> dict[str, Any]:
    """The market correlation for a forecast made now, and how choosing it at each origin fared.

    ``market``: the grid value with the lowest mean CRPS of the open-pipeline forecasts over every
    origin of the backtest (all earlier than now). ``rolling``: the value each origin would have
    been given by its earlier origins only, as ``backtest`` scores it.
    """
    if spec.model.half_life_days == "fitted":
        raise PipelineError(
            "model.half_life_days: fitted is chosen at each origin by forecast backtest; the correlation "
            "is fitted here at one half-life: give it in days, or null"
        )
    history = load_backtest_history(spec, folder) if history is None else history
    replayed = replay(spec, history)
    crps = grid_crps(spec, replayed)
    mean = crps.mean(axis=0)
    best = int(np.argmin(mean))
    rolling = rolling_correlation(spec, replayed, crps)
    return {
        "market": float(spec.model.correlation_grid[best]), "mean_crps": float(mean[best]),
        "origins": len(replayed.snapshots), "trials": spec.model.correlation_trials,
        "min_origins": spec.model.correlation_min_origins,
        "grid": [{"market": float(m), "mean_crps": float(c)}
                 for m, c in zip(spec.model.correlation_grid, mean, strict=True)],
        "rolling": [{"origin": s.origin.day.isoformat(), **r}
                    for s, r in zip(replayed.snapshots, rolling, strict=True)],
    }  # fmt: skip
