"""Small scenarios and deal sets built in code, for tests."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from forecast.config.loading import parse_scenario
from forecast.config.periods import quarter_of
from forecast.config.scenario import Scenario
from forecast.inputs.deals import Deals
from forecast.inputs.history import History
from forecast.inputs.stage_history import StageHistory

PERIOD_START = dt.date(2026, 7, 1)
INSIDE = dt.date(2026, 8, 15)
AFTER = dt.date(2026, 10, 15)


def make_deals(
    amounts, probabilities=None, close_dates=None, new_logo=None, stage_index=None, **attributes
) -> Deals:
    """Deals with ids D0, D1, ...; dates inside 2026-Q3 unless given."""
    n = len(amounts)
    probabilities = np.full(n, np.nan) if probabilities is None else np.asarray(probabilities, dtype=float)
    dates = close_dates if close_dates is not None else [INSIDE] * n
    return Deals(
        deal_id=np.array([f"D{i}" for i in range(n)], dtype=object),
        amount=np.asarray(amounts, dtype=float),
        close_date=np.array([np.datetime64(d, "D") for d in dates], dtype="datetime64[D]"),
        probability=probabilities,
        stage_index=np.full(n, -1, np.int64) if stage_index is None else np.asarray(stage_index, np.int64),
        new_logo=np.zeros(n, bool) if new_logo is None else np.asarray(new_logo, bool),
        attributes={name: np.array(values, dtype=object) for name, values in attributes.items()},
        rows=np.arange(n, dtype=np.int64) + 2,
    )


def make_scenario(extra: str = "") -> Scenario:
    """A 2026-Q3 scenario whose deals carry their own probabilities."""
    return parse_scenario("period: 2026-Q3\npipeline: {path: unused.csv}\n" + extra)


_RNG = np.random.default_rng(0)
OWNERS = list(_RNG.choice(["a", "b", "c", ""], 300, p=[0.3, 0.3, 0.3, 0.1]))  # 300 deals' owners
SHARED_RATES = _RNG.choice([0.1, 0.25, 0.5, 0.75], 300)  # rates shared: exact levels
OWN_RATES = _RNG.uniform(0.05, 0.6, 300)  # a rate each: more deals than grid levels, so the grid


def latent_factors(win_rate, owner, market: float, by_owner: float, seed: int = 3, trials: int = 2000):
    """The kernels' ``LatentFactors`` for deals of these rates and owners, correlated by market and owner."""
    from forecast.engine.correlation import correlation_inputs

    scenario = make_scenario(f"correlation: {{market: {market}, by: {{owner: {by_owner}}}}}\n")
    deals = make_deals([1.0] * len(win_rate), win_rate, owner=owner)
    return correlation_inputs(scenario, deals, np.asarray(win_rate, float), seed, trials)


AGE_EDGES = [30, 60, 90]  # days: buckets <= 30, 31-60, 61-90, > 90
STAGE_RATES = {"Early": [0.35, 0.2, 0.1, 0.03], "Late": [0.7, 0.5, 0.35, 0.15]}  # win within a quarter
NEW_DEALS = {"per_week": 6.0, "share_won": 0.4, "lag_mean": 5.0, "lag_sd": 3.0, "size": 3000.0, "sigma": 0.5}


@dataclass
class SyntheticHistory:
    """Deals and their stage changes drawn from the backtest's own model (see ``synthetic_history``)."""

    deal_id: np.ndarray
    created: np.ndarray  # datetime64[D]
    closed: np.ndarray  # datetime64[D], NaT while open
    won: np.ndarray
    price: np.ndarray  # a won deal brings in its price
    changes: list[tuple[str, str, dt.date]]  # (deal, stage entered, date)

    def as_history(self, with_stages: bool = True) -> History:
        """As ``load_backtest_history`` reads it: the stage history, or no stages at all."""
        stages = None
        if with_stages:
            deal, stage, day = zip(*self.changes, strict=True)
            stages = StageHistory(np.array(deal, dtype=object), np.array(stage, dtype=object),
                                  np.array(day, dtype="datetime64[D]"))  # fmt: skip
        n, unknown = len(self.deal_id), np.datetime64("NaT", "D")
        return History(
            deal_id=self.deal_id, won=self.won, amount=self.price, won_amount=np.full(n, np.nan),
            created=self.created, closed=self.closed, expected_close=np.full(n, unknown),
            stage=np.full(n, "", dtype=object), segments={}, stage_history=stages,
        )  # fmt: skip


def synthetic_history(
    quarters: int, seed: int, latent: float = 0.0, advance: float = 0.5
) -> SyntheticHistory:
    """Quarters of deals drawn from known rates, from 2015-Q1.

    Deals are created at ``NEW_DEALS['per_week']`` (Poisson), in stage Early, priced lognormally;
    a share of them are future wins, won after a gamma lag if it ends within their first quarter.
    From then on, at every quarter's start an Early deal moves to Late with chance ``advance``
    (entered the day before), then wins within the quarter with ``STAGE_RATES`` for its stage and
    age, else is lost with chance 0.3, else stays open. With ``latent`` > 0 a quarterly market
    shock moves every open deal's rate together (Vasicek).
    """
    from scipy.special import ndtr, ndtri

    rng = np.random.default_rng(seed)
    flow = NEW_DEALS
    shape, scale = (flow["lag_mean"] / flow["lag_sd"]) ** 2, flow["lag_sd"] ** 2 / flow["lag_mean"]
    created, closed, won, price, stage, changes = [], [], [], [], [], []
    open_deals: list[int] = []
    quarter = quarter_of(dt.date(2015, 1, 1))
    for _ in range(quarters):
        begin, end = quarter.start, quarter.end
        shock, still_open = rng.standard_normal(), []
        for d in open_deals:
            if stage[d] == "Early" and rng.random() < advance:
                stage[d] = "Late"
                changes.append((f"S{d}", "Late", begin - dt.timedelta(days=1)))
            age = (begin - created[d]).days
            rate = STAGE_RATES[stage[d]][int(np.searchsorted(AGE_EDGES, age, side="left"))]
            rate = ndtr((ndtri(rate) - np.sqrt(latent) * shock) / np.sqrt(1 - latent))
            day = begin + dt.timedelta(days=int(rng.integers(0, (end - begin).days + 1)))
            if rng.random() < rate:
                won[d], closed[d] = True, day
            elif rng.random() < 0.3:
                closed[d] = day
            else:
                still_open.append(d)
        days = (end - begin).days + 1
        for _ in range(rng.poisson(flow["per_week"] * days / 7)):
            d = len(created)
            created.append(begin + dt.timedelta(days=int(rng.integers(0, days))))
            price.append(
                flow["size"] * float(np.exp(flow["sigma"] * rng.standard_normal() - flow["sigma"] ** 2 / 2))
            )
            stage.append("Early")
            changes.append((f"S{d}", "Early", created[d]))
            won.append(False)
            closed.append(None)
            if rng.random() < flow["share_won"]:
                win_day = created[d] + dt.timedelta(days=int(np.floor(0.5 + 7 * rng.gamma(shape, scale))))
                if win_day <= end:
                    won[d], closed[d] = True, win_day
                    continue
            still_open.append(d)
        open_deals = still_open
        quarter = quarter_of(end + dt.timedelta(days=1))
    return SyntheticHistory(
        deal_id=np.array([f"S{d}" for d in range(len(created))], dtype=object),
        created=np.array(created, dtype="datetime64[D]"),
        closed=np.array([np.datetime64(day, "D") if day else np.datetime64("NaT") for day in closed]),
        won=np.array(won), price=np.array(price), changes=changes,
    )  # fmt: skip


def synthetic_files(folder: Path, quarters: int, seed: int) -> tuple[SyntheticHistory, Path, Path]:
    """``synthetic_history`` as a history export (Id, Result, Amount, Created, Closed) and its
    stage-history table (Deal, Stage, Entered)."""
    history = synthetic_history(quarters, seed)
    with (folder / "deals.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Id", "Result", "Amount", "Created", "Closed"])
        for deal, price, created, closed, won in zip(history.deal_id, history.price, history.created,
                                                     history.closed, history.won, strict=True):  # fmt: skip
            result = "Open" if np.isnat(closed) else ("Won" if won else "Lost")
            writer.writerow([deal, result, f"{price:.2f}", created, "" if np.isnat(closed) else closed])
    with (folder / "stages.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Deal", "Stage", "Entered"])
        writer.writerows(history.changes)
    return history, folder / "deals.csv", folder / "stages.csv"
