"""Synthetic CRM histories with a known truth, to check that a backtest can tell honest uncertainty.

Real exports show one draw of what might have happened; here the process is known.
Week by week (Monday to Sunday, from ``SyntheticParams.start``):

- new deals: Poisson with mean ``deals_per_week x (1 + seasonality x cos(2 pi f))``, f the
  share of the calendar quarter gone by the week's middle (busiest around quarter ends);
  created on a uniform day of the week in stage Qualified, amount lognormal;
- in every later week an open deal of age k weeks (k = 1 the week after its creation
  week), in stage s, is won with chance
  ``expit(logit(win_hazard[s]) - age_decay (k - 1) + shock[q] + drift_per_year x years)``
  (q the calendar quarter of the week's Monday, years since ``start`` at that Monday),
  else lost with chance ``loss_hazard[s]``, on a uniform day of the week; if neither, it
  advances one stage (Qualified -> Proposal -> Negotiation) with chance ``advance[s]``,
  entering it on the week's Sunday;
- ``shock``: one normal draw (sd ``shock_sd``) per calendar quarter, shared by every deal,
  so a quarter's deals win or miss together.

Deals still open at the end of the last week are Open. The rep's forecast category (the CRM's
call) follows the stage, with a known optimism: Pipeline from creation, Best Case on entering
Proposal, Commit on entering Negotiation (every such deal, though some are lost or close after
the quarter), then Closed when won or Omitted when lost, on the close date. Given the shocks, deals are
independent and Markov in (stage, age, week), so the chance that a deal open at an
origin wins by a date is a short exact recursion over the weeks between: ``truth``."""

from __future__ import annotations

import csv
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

from forecast.config.periods import quarter_of, quarters_between
from forecast.inputs.output import atomic_write

STAGES = ("Qualified", "Proposal", "Negotiation")
DEAL_COLUMNS = ("deal_id", "outcome", "amount", "created_date", "close_date")
STAGE_COLUMNS = ("deal_id", "stage", "date")
CATEGORIES = ("Pipeline", "Best Case", "Commit")  # the rep's call in each stage
CATEGORY_COLUMNS = ("deal_id", "forecast_category", "date")


@dataclass(frozen=True)
class SyntheticParams:
    """The process behind a synthetic history; the defaults give 3 years, about 3,900 deals.

    With them about 265 deals are open at a week's start after the first half year,
    about 38 % of them are won within the next 13 weeks, and about 43 % of all deals
    are won; 3 years leave 117 weekly origins with a quarter's horizon after half a
    year of learning.
    """

    start: dt.date = dt.date(2021, 1, 4)  # a Monday: the first week's first day
    weeks: int = 156  # through 2023-12-31
    deals_per_week: float = 25.0  # mean new deals a week
    seasonality: float = 0.3  # the creation rate's swing over a quarter, in [0, 1)
    win_hazard: tuple[float, float, float] = (0.02, 0.06, 0.18)  # weekly, by stage, at age 1 week
    age_decay: float = 0.06  # the win hazard's logit falls this much per week of age
    loss_hazard: tuple[float, float, float] = (0.06, 0.05, 0.04)  # weekly, by stage, when not won
    advance: tuple[float, float] = (0.15, 0.12)  # weekly: Qualified -> Proposal, Proposal -> Negotiation
    shock_sd: float = 0.3  # sd of the quarter's shift of the win hazard's logit
    drift_per_year: float = 0.1  # trend of the win hazard's logit
    amount_median: float = 20_000.0
    amount_sigma: float = 0.8  # lognormal sigma of amounts

    def __post_init__(self) -> None:
        problems = []
        if self.start.weekday() != 0:
            problems.append(
                f"start must be a Monday (weeks run Monday to Sunday), got {self.start:%A %Y-%m-%d}"
            )
        if self.weeks < 1:
            problems.append(f"weeks must be at least 1, got {self.weeks}")
        if self.deals_per_week <= 0:
            problems.append(f"deals_per_week must be positive, got {self.deals_per_week}")
        if not 0 <= self.seasonality < 1:
            problems.append(f"seasonality must be in [0, 1), got {self.seasonality}")
        for name, size in (("win_hazard", 3), ("loss_hazard", 3), ("advance", 2)):
            values = getattr(self, name)
            if len(values) != size:
                problems.append(f"{name} needs {size} values (one per stage), got {len(values)}")
            low_ok = (lambda v: v > 0) if name == "win_hazard" else (lambda v: v >= 0)
            if not all(low_ok(v) and v < 1 for v in values):
                problems.append(f"{name} values must be weekly chances below 1, got {values}")
        for name in ("age_decay", "shock_sd", "amount_sigma"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative, got {getattr(self, name)}")
        if self.amount_median <= 0:
            problems.append(f"amount_median must be positive, got {self.amount_median}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class OpenAtOrigin:
    """The deals open at an origin (rows of ``SyntheticHistory.deals``) and their truth up to an end."""

    index: np.ndarray  # int64 rows, in table order
    win_probability: np.ndarray  # float64: the chance each is won in origin..end, given the shocks
    won: np.ndarray  # bool: whether it was


@dataclass(frozen=True)
class SyntheticHistory:
    """A drawn history: the deal and stage-history tables, the shocks behind them, and the truth."""

    params: SyntheticParams
    seed: int
    deals: dict[str, np.ndarray]  # DEAL_COLUMNS; dates datetime64[D], close_date NaT while open
    stages: dict[str, np.ndarray]  # STAGE_COLUMNS: one row per stage entered, by deal then date
    categories: dict[str, np.ndarray]  # CATEGORY_COLUMNS: one row per call the rep made, by deal then date
    quarters: list[tuple[dt.date, dt.date]]  # the calendar quarters the weeks start in
    shocks: np.ndarray  # float64, one per quarter
    _created_week: np.ndarray = field(repr=False)  # int64 per deal
    # int64 [deals, 2]: the week at whose end a deal entered Proposal, Negotiation (``weeks``: never)
    _entered_week: np.ndarray = field(repr=False)
    _week_quarter: np.ndarray = field(repr=False)  # int64 per week: index into quarters

    @property
    def end(self) -> dt.date:
        """The history's last day (a Sunday): outcomes after it are unknown."""
        return self.params.start + dt.timedelta(days=7 * self.params.weeks - 1)

    def open_at(self, origin: dt.date) -> np.ndarray:
        """Deals open when ``origin`` begins: created before it and not closed before it."""
        day = np.datetime64(origin, "D")
        return (self.deals["created_date"] < day) & ~(self.deals["close_date"] < day)

    def truth(self, origin: dt.date, end: dt.date, shocks: np.ndarray | None = None) -> OpenAtOrigin:
        """Each deal open at ``origin``: its exact chance of a win dated origin..end (both included).

        Conditioned on what was observable at the origin, as a backtest sees it: the deal
        was created, is open, and had the stage of the day before the origin. ``shocks``
        (one per ``quarters``): the world to compute the chance in; by default the shocks
        this history was drawn with, e.g. zeros for the chance without them.
        """
        first, last = self.params.start, self.end
        if not first <= origin <= end <= last:
            raise ValueError(f"origin {origin} and end {end} must satisfy {first} <= origin <= end <= {last}")
        shocks = self.shocks if shocks is None else np.asarray(shocks, dtype=float)
        if shocks.shape != self.shocks.shape:
            raise ValueError(
                f"shocks: expected {self.shocks.size} values (one per quarter), got {shocks.size}"
            )
        index = np.flatnonzero(self.open_at(origin))
        week0, day0 = divmod((origin - self.params.start).days, 7)
        week1, day1 = divmod((end - self.params.start).days, 7)
        created = self._created_week[index]
        loss = np.asarray(self.params.loss_hazard)

        def hazard(stage, week: int) -> np.ndarray:
            return _win_hazard(self.params, self._week_quarter, shocks, stage, week - created[:, None], week)

        # the origin's week: the stage is known (advances take effect the week after), and the
        # deal was open at its Monday with no outcome dated before the origin
        stage = (self._entered_week[index] < week0).sum(axis=1)
        exposed = created < week0
        win = np.where(exposed, hazard(stage[:, None], week0)[:, 0], 0.0)
        outcome = np.where(exposed, win + (1 - win) * loss[stage], 0.0)
        open_at_origin = 1 - outcome * day0 / 7
        chance = win * ((day1 if week1 == week0 else 6) - day0 + 1) / 7
        in_stage = np.zeros((index.size, len(STAGES)))  # chance of being open in each stage
        in_stage[np.arange(index.size), stage] = 1 - outcome
        in_stage = np.where(exposed[:, None], _advanced(self.params, in_stage), in_stage)
        for week in range(week0 + 1, week1 + 1):
            win = hazard(np.arange(len(STAGES))[None, :], week)
            chance += (in_stage * win).sum(axis=1) * (1.0 if week < week1 else (day1 + 1) / 7)
            in_stage = _advanced(self.params, in_stage * (1 - win) * (1 - loss))
        day, stop = np.datetime64(origin, "D"), np.datetime64(end, "D")
        closed = self.deals["close_date"][index]
        won = (self.deals["outcome"][index] == "Won") & (closed >= day) & (closed <= stop)
        return OpenAtOrigin(index=index, win_probability=chance / open_at_origin, won=won)

    def write(self, folder: Path, periods: str | None = None, trials: int = 20_000, seed: int = 1) -> Path:
        """Write deals.csv, stages.csv, categories.csv and backtest.yaml (for ``forecast backtest``) into
        ``folder``.

        ``periods``: the quarters to backtest, by default from the history's third
        quarter to its last complete one. Returns the backtest file's path.
        """
        folder = Path(folder)
        tables = (("deals", self.deals, DEAL_COLUMNS), ("stages", self.stages, STAGE_COLUMNS),
                  ("categories", self.categories, CATEGORY_COLUMNS))  # fmt: skip
        for name, table, columns in tables:
            atomic_write(folder / f"{name}.csv", lambda tmp, t=table, c=columns: _write_csv(tmp, t, c))
        if periods is None:
            complete = [start for start, end in self.quarters if end <= self.end]
            if len(complete) < 3:
                raise ValueError(f"{self.params.weeks} weeks hold fewer than 3 complete quarters to backtest")
            periods = f"{_quarter_name(self.quarters[2][0])}..{_quarter_name(complete[-1])}"
        lines = [
            f"# Synthetic CRM history: forecast.history.synthetic, seed {self.seed}",
            f"name: {json.dumps(f'synthetic history, seed {self.seed}')}",
            "history:",
            "  path: deals.csv",
            "  won: [Won]",
            "  lost: [Lost]",
            "  stage_history: {path: stages.csv}",
            "  category_history: {path: categories.csv}",
            f"periods: {json.dumps(periods)}",
            f"simulation: {{trials: {int(trials)}, seed: {int(seed)}}}",
        ]
        path = folder / "backtest.yaml"
        atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8"))
        return path


def _win_hazard(
    params: SyntheticParams, week_quarter: np.ndarray, shocks: np.ndarray, stage, age, week: int
) -> np.ndarray:
    """The weekly win chance in ``week`` of open deals in ``stage`` at ``age`` weeks (1 or more)."""
    shift = shocks[week_quarter[week]] + params.drift_per_year * 7 * week / 365.25
    return expit(logit(np.asarray(params.win_hazard))[stage] - params.age_decay * (age - 1) + shift)


def _advanced(params: SyntheticParams, in_stage: np.ndarray) -> np.ndarray:
    """Chances by stage [deals, stages] after a week's end, where an open deal advances with ``advance``."""
    moving = in_stage[:, :-1] * np.asarray(params.advance)
    out = in_stage.copy()
    out[:, :-1] -= moving
    out[:, 1:] += moving
    return out


def _quarter_name(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _write_csv(path: Path, table: dict[str, np.ndarray], columns: tuple[str, ...]) -> None:
    def text(value) -> str:
        if isinstance(value, np.datetime64):
            return "" if np.isnat(value) else str(value)
        if isinstance(value, float | np.floating):
            return f"{value:.2f}"
        return str(value)

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(
            [text(value) for value in row] for row in zip(*(table[c] for c in columns), strict=True)
        )


def generate(params: SyntheticParams | None = None, seed: int = 0) -> SyntheticHistory:
    """Draw a history from ``params`` (default ``SyntheticParams()``); the same seed gives the same tables."""
    params = SyntheticParams() if params is None else params
    rng = np.random.default_rng(seed)
    weeks = params.weeks
    mondays = [params.start + dt.timedelta(days=7 * w) for w in range(weeks)]
    quarters = [(q.start, q.end) for q in quarters_between(mondays[0], mondays[-1])]
    starts = [start for start, _ in quarters]
    week_quarter = np.array([starts.index(quarter_of(day).start) for day in mondays], dtype=np.int64)
    shocks = rng.normal(0.0, params.shock_sd, len(quarters))

    into_quarter = np.array([(day - quarter_of(day).start).days + 3.5 for day in mondays])  # mid-week
    length = np.array([(quarter_of(day).end - quarter_of(day).start).days + 1 for day in mondays])
    rate = params.deals_per_week * (1 + params.seasonality * np.cos(2 * np.pi * into_quarter / length))
    created_week = np.repeat(np.arange(weeks), rng.poisson(rate))
    created_day = np.sort(7 * created_week + rng.integers(0, 7, created_week.size))  # days since start
    created_week = created_day // 7
    n = created_day.size
    amount = np.round(params.amount_median * np.exp(params.amount_sigma * rng.standard_normal(n)), 2)

    stage = np.zeros(n, np.int64)
    closed_day = np.full(n, -1, np.int64)
    won = np.zeros(n, bool)
    entered_week = np.full((n, len(STAGES) - 1), weeks, np.int64)  # weeks: never
    loss, advance = np.asarray(params.loss_hazard), np.r_[params.advance, 0.0]
    for week in range(weeks):
        live = np.flatnonzero((created_week < week) & (closed_day < 0))
        win = _win_hazard(params, week_quarter, shocks, stage[live], week - created_week[live], week)
        draw, day, step = rng.random(live.size), rng.integers(0, 7, live.size), rng.random(live.size)
        closes = draw < win + (1 - win) * loss[stage[live]]
        won[live[draw < win]] = True
        closed_day[live[closes]] = 7 * week + day[closes]
        moves = live[~closes & (step < advance[stage[live]])]
        entered_week[moves, stage[moves]] = week
        stage[moves] += 1

    start = np.datetime64(params.start, "D")
    is_open = closed_day < 0
    deal_id = np.array([f"D{row:05d}" for row in range(n)], dtype=object)
    deals = {
        "deal_id": deal_id,
        "outcome": np.where(is_open, "Open", np.where(won, "Won", "Lost")).astype(object),
        "amount": amount,
        "created_date": start + created_day,
        "close_date": np.where(is_open, np.datetime64("NaT"), start + closed_day),
    }
    advanced, step = np.nonzero(entered_week < weeks)
    row = np.r_[np.arange(n), advanced]
    entered = np.r_[np.zeros(n, np.int64), step + 1]
    order = np.lexsort((entered, row))  # by deal, then stage (and so by date)
    day = np.r_[created_day, 7 * entered_week[advanced, step] + 6][order]  # advances on the week's Sunday
    stages = {
        "deal_id": deal_id[row[order]],
        "stage": np.array(STAGES, dtype=object)[entered[order]],
        "date": start + day,
    }
    closed = np.flatnonzero(~is_open)
    call_row = np.r_[row[order], closed]
    call_day = np.r_[day, closed_day[closed]]
    call = np.r_[np.array(CATEGORIES, dtype=object)[entered[order]],
                 np.where(won[closed], "Closed", "Omitted").astype(object)]  # fmt: skip
    calls = np.lexsort((call_day, call_row))  # by deal, then date (the close after every stage)
    categories = {"deal_id": deal_id[call_row[calls]], "forecast_category": call[calls],
                  "date": start + call_day[calls]}  # fmt: skip
    return SyntheticHistory(params, seed, deals, stages, categories, quarters, shocks, created_week,
                            entered_week, week_quarter)  # fmt: skip
