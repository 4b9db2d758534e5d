"""Time to close as a survival question: the daily chances of a win and of a loss by deal age, fitted on
every deal's days open, and from them the chance to win within a horizon from any age.

An open deal at age ``a`` days is won that day with chance ``won(a)``, lost with ``lost(a)``, or stays
open: competing outcomes. The chances are constant within age bins of ``BIN_DAYS`` days and estimated
from every day each deal was open and observed (from its creation, or the window's first day, to its
close, or the last known day, where a deal still open is censored): a bin's wins / its deal-days.
Three things keep thin evidence from making up a shape:

- each bin's chance is shrunk toward the pooled chance of its bin and its two neighbours by a prior
  worth ``prior_strength`` deals open for a whole bin (a Gamma-Poisson posterior mean), and that
  pooled chance toward the chance over all ages the same way;
- past the usual cycle (the age bin by which ``CYCLE_SHARE`` of the wins had happened) the win
  chance never rises again (pool-adjacent-violators, weighted by deal-days): a deal that has
  outlived the cycle does not become likelier to close; before it the data speak, so a chance
  that rises as deals near their decision is kept;
- past the last bin with at least ``MIN_DEALS`` deals at risk, one tail bin pools what is left, and its
  chances hold for every older age, so a deal older than any seen gets the tail's rate, not the
  overall one.

The chance to win within ``h`` days from age ``a`` is the cumulative incidence of a win,
``sum_k won(k) prod_{a <= j < k} (1 - won(j) - lost(j))`` over ``k = a .. a + h - 1``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast.engine.model import age_bucket
from forecast.history.rates import MIN_DEALS, recency_weights

BIN_DAYS = 7  # width of an age bin: a week
OPEN, WON, LOST = 0, 1, 2  # a lifetime's state on its last observed day
CYCLE_SHARE = 0.9  # the share of wins by whose age the usual cycle is over


@dataclass(frozen=True)
class Lifetimes:
    """Each dated deal's days open within an observation window, as known on the window's last day."""

    first_age: np.ndarray  # int64: age on the first day observed (its creation, or the window's first day)
    last_age: np.ndarray  # int64: age on the last day observed (its close, or the window's last day)
    outcome: np.ndarray  # int8: WON or LOST on the last day; OPEN if still open at the window's end
    days_before: np.ndarray  # int64: days from the last day observed to the window's last day

    @classmethod
    def of(
        cls,
        created: np.ndarray,
        closed: np.ndarray,
        won: np.ndarray,
        first_day: np.datetime64,
        last_day: np.datetime64,
    ) -> Lifetimes:
        """The deals open at some point of ``first_day..last_day``; closes after ``last_day`` are unknown."""
        dated = ~np.isnat(created) & (created <= last_day)
        created, closed, won = created[dated], closed[dated], won[dated]
        closed_by_then = ~np.isnat(closed) & (closed <= last_day)
        end = np.where(closed_by_then, closed, last_day)
        start = np.maximum(created, first_day)
        seen = end >= start  # closed before the window (or before its own creation): never observed open
        outcome = np.where(closed_by_then, np.where(won, WON, LOST), OPEN).astype(np.int8)
        return cls(
            first_age=(start - created)[seen].astype(np.int64),
            last_age=(end - created)[seen].astype(np.int64),
            outcome=outcome[seen],
            days_before=(last_day - end)[seen].astype(np.int64),
        )


@dataclass(frozen=True)
class Hazards:
    """Daily chances of a win and of a loss by age bin; the last bin is the tail, held for every older age."""

    won: np.ndarray  # float64 per bin: chance an open deal is won on a day at that age
    lost: np.ndarray  # float64 per bin: chance it is lost that day
    wins: np.ndarray  # float64 per bin: wins observed (recency weighted)
    losses: np.ndarray  # float64 per bin: losses observed (recency weighted)
    deal_days: np.ndarray  # float64 per bin: days deals were open (recency weighted)
    deals: np.ndarray  # int64 per bin: deals open at some age of the bin
    deal_days_by_age: np.ndarray  # float64 per day of age: days deals were open at that age (weighted)

    @property
    def tail_from(self) -> int:
        """The youngest age, in days, of the tail bin."""
        return (self.won.size - 1) * BIN_DAYS

    def daily(self, ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chances of a win and of a loss on a day at each age."""
        index = np.minimum(np.asarray(ages) // BIN_DAYS, self.won.size - 1)
        return self.won[index], self.lost[index]

    def win_within(self, ages: np.ndarray, horizon_days: float) -> np.ndarray:
        """Chance that a deal open at each age is won within ``horizon_days`` (a fraction of a day counts
        in proportion): the cumulative incidence of a win, a loss competing."""
        ages = np.minimum(np.asarray(ages, dtype=np.int64), self.tail_from)  # the tail's chances hold beyond
        whole = int(np.floor(horizon_days))
        won, lost = self.daily(ages[:, None] + np.arange(whole + 1)[None, :])
        still_open = np.cumprod(np.concatenate([np.ones((ages.size, 1)), (1.0 - won - lost)[:, :-1]], axis=1),
                                axis=1)  # fmt: skip
        incidence = still_open * won
        chance = incidence[:, :whole].sum(axis=1) + (horizon_days - whole) * incidence[:, whole]
        return np.minimum(chance, 1.0)  # at most 1 but for the rounding of the sum

    def bucket_rates(self, edges: list[int], horizon_days: float) -> list[float]:
        """Chance to win within the horizon per age bucket: the average over the bucket's ages, each
        weighted by the deal-days seen at it (the age mix of open deals); a bucket never seen gets the
        chance at its youngest age."""
        ages = np.arange(self.deal_days_by_age.size)
        chance, bucket = self.win_within(ages, horizon_days), age_bucket(ages, edges)
        rates = []
        for b, youngest in enumerate([0, *(edge + 1 for edge in edges)]):
            weight = self.deal_days_by_age[bucket == b]
            if weight.sum() > 0:
                rates.append(min(1.0, float(np.sum(weight * chance[bucket == b]) / weight.sum())))
            else:
                rates.append(float(self.win_within(np.array([youngest]), horizon_days)[0]))
        return rates

    def report(self) -> dict[str, Any]:
        """The fitted bins, for ``--json``: ages, evidence and daily chances."""
        rows = []
        for b in range(self.won.size):
            high = (b + 1) * BIN_DAYS - 1 if b < self.won.size - 1 else None
            rows.append({
                "age_days": [b * BIN_DAYS, high], "deals": int(self.deals[b]),
                "deal_days": float(self.deal_days[b]), "wins": float(self.wins[b]),
                "losses": float(self.losses[b]), "won_daily": float(self.won[b]),
                "lost_daily": float(self.lost[b]),
            })  # fmt: skip
        return {"bin_days": BIN_DAYS, "tail_from_days": self.tail_from, "bins": rows}


def fit_hazards(
    lifetimes: Lifetimes, prior_strength: float, half_life_days: float | None = None
) -> Hazards | None:
    """Daily win and loss chances by age bin (see the module docstring); None without a day at risk.

    ``half_life_days``: a day's outcome (or survival) counts ``2 ** (-days before the last known
    day / half_life_days)``, so the curve follows recent deals.
    """
    days = lifetimes.last_age - lifetimes.first_age + 1
    if days.sum() == 0:
        return None
    first = np.repeat(np.cumsum(days) - days, days)  # each deal's first record
    ages = np.repeat(lifetimes.first_age, days) + np.arange(days.sum()) - first
    days_before = np.repeat(lifetimes.days_before + lifetimes.last_age, days) - ages  # each day's
    weight = recency_weights(days_before, half_life_days)
    bins = ages // BIN_DAYS
    last = np.cumsum(days) - 1  # each deal's last record: where its outcome falls
    count = bins.max() + 1

    def per_bin(rows: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(bins[rows], None if values is None else values[rows], count).astype(np.float64)

    every = np.arange(ages.size)
    deal_days = per_bin(every, weight)
    wins = per_bin(last[lifetimes.outcome == WON], weight)
    losses = per_bin(last[lifetimes.outcome == LOST], weight)
    deals = per_bin(np.flatnonzero((ages % BIN_DAYS == 0) | (every == first))).astype(np.int64)
    observed = np.flatnonzero(deals >= MIN_DEALS)
    tail = int(observed.max()) + 1 if observed.size else 0  # bins from here on pool into the tail

    def pooled(values: np.ndarray) -> np.ndarray:
        return np.append(values[:tail], values[tail:].sum())

    deal_days, wins, losses = pooled(deal_days), pooled(wins), pooled(losses)
    deals = np.append(deals[:tail], np.sum(lifetimes.last_age >= tail * BIN_DAYS))  # the tail's, once each
    strength = prior_strength * BIN_DAYS  # deal-days
    won = _shrunk_to_neighbours(wins, deal_days, strength)
    lost = _shrunk_to_neighbours(losses, deal_days, strength)
    cycle = int(np.searchsorted(np.cumsum(wins), CYCLE_SHARE * wins.sum()))  # its last bin
    won[cycle:] = _non_increasing(won[cycle:], deal_days[cycle:] + strength)
    return Hazards(
        won=won, lost=np.minimum(lost, 1.0 - won), wins=wins, losses=losses, deal_days=deal_days,
        deals=deals, deal_days_by_age=np.bincount(ages, weight),
    )  # fmt: skip


def _shrunk_to_neighbours(events: np.ndarray, deal_days: np.ndarray, strength: float) -> np.ndarray:
    """Each bin's chance: (events + strength x local) / (deal-days + strength), where ``local``, the
    pooled chance of the bin and its neighbours, is itself shrunk the same way toward the chance over
    all ages (so no bin's chance is 0 unless no age saw such an outcome)."""
    overall = events.sum() / deal_days.sum()
    local = _posterior_mean(_with_neighbours(events), _with_neighbours(deal_days), overall, strength)
    return _posterior_mean(events, deal_days, local, strength)


def _with_neighbours(values: np.ndarray) -> np.ndarray:
    """Each bin's value plus its neighbours' (none beyond the ends)."""
    padded = np.pad(values, 1)
    return padded[:-2] + padded[1:-1] + padded[2:]


def _posterior_mean(events: np.ndarray, deal_days: np.ndarray, prior: np.ndarray | float, strength: float):
    """(events + strength x prior) / (deal-days + strength); the prior where both are 0."""
    total = deal_days + strength
    return np.where(total > 0, (events + strength * prior) / np.where(total > 0, total, 1.0), prior)


def _non_increasing(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The weighted least-squares non-increasing fit (pool-adjacent-violators)."""
    blocks: list[list[float]] = []  # [mean, weight, bins]
    for value, weight in zip(values.tolist(), weights.tolist(), strict=True):
        blocks.append([value, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            mean, weight, size = blocks.pop()
            before = blocks[-1]
            total = before[1] + weight
            before[0] = (before[0] * before[1] + mean * weight) / total if total > 0 else min(before[0], mean)
            before[1], before[2] = total, before[2] + size
    return np.repeat([block[0] for block in blocks], [block[2] for block in blocks])
