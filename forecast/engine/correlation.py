"""Deals that move together: the scenario's ``correlation:`` block and its uncertain rates as the
kernels' ``LatentFactors``.

A one-factor (Vasicek) Gaussian copula: deal ``d`` wins when
``sum_f loading_f * factor_f + sd * noise_d < Phi^-1(win_rate_d)``, with standard normal
factors (the market, and one per value of each grouping column) shared by the deals that
load on them. Each deal keeps its own win rate; wins cluster.

Deals with the same loadings form a group. Given the factors, a group's conditional win
rate depends only on the deal's latent threshold, so the kernel tabulates it per trial at
a few *levels* per group: one per win rate that several deals share (stage rates), and,
for deals with a rate of their own, a grid they interpolate on (cubic Hermite in the
latent threshold, spacing ``GRID_SPACING`` standard deviations of the conditional
variable: error below 3e-8, less than the normal CDF's own 7.5e-8).

An uncertain rate (``DealModel.rate_deals > 0``) moves the deals of its cell together too:
each trial draws it once from its Beta posterior (``draws.rate_table``, from the stream of the
cell's key), and every deal of the cell compares its own draw with it. Such deals are exact
levels of their group, one per (cell, worth, rate): a plan that shifts a stage's rate keeps its
deals on their cell's draws. Uncertain deals that load on no factor form a group with none."""

from __future__ import annotations

import numpy as np

from forecast.config.scenario import MAX_LATENT, Scenario
from forecast.engine.draws import RATE_SLICES, deal_keys, rate_table, thresholds
from forecast.engine.kernels import LATENT_LIMIT, LatentFactors
from forecast.engine.normal import normal_cdf_array
from forecast.engine.rng import factor_uniforms, stream_starts
from forecast.errors import ScenarioError
from forecast.inputs.deals import Deals

MARKET_KEY = "__market__"  # the stream of the market factor; groups: "__group__:column=value"
MAX_FACTOR_VALUES = 200_000_000  # factors x trials held for correlation (1.6 GB of float64)
GRID_SPACING = 0.05  # Hermite grid step, in standard deviations of the conditional latent variable


def correlated(scenario: Scenario) -> bool:
    """The scenario's deals move together: a market or a group correlation is set."""
    correlation = scenario.correlation
    return correlation.market != 0 or any(correlation.by.values())


def no_correlation(n_deals: int) -> LatentFactors:
    """Independent deals with known rates: every deal at level -1."""
    return LatentFactors(
        deal_order=np.arange(n_deals, dtype=np.int64), deal_level=np.full(n_deals, -1, np.int64),
        deal_interpolated=np.zeros(n_deals, bool), deal_weights=np.zeros((n_deals, 4)),
        level_group=np.zeros(0, np.int64), level_latent=np.zeros(0), level_base=np.zeros(0),
        level_table=np.zeros(0, np.int64), group_scale=np.zeros(0), factor_start=np.zeros(1, np.int64),
        factor_index=np.zeros(0, np.int64), factor_loading=np.zeros(0), factor_values=np.zeros((0, 0)),
        table_start=np.zeros(0, np.uint64), rate_base=np.zeros((0, RATE_SLICES)),
        rate_slope=np.zeros((0, RATE_SLICES)),
    )  # fmt: skip


def correlation_inputs(
    scenario: Scenario,
    deals: Deals,
    win_rate: np.ndarray,
    seed: int,
    n_trials: int,
    rate_cell: np.ndarray | None = None,
    rate_deals: np.ndarray | None = None,
) -> LatentFactors:
    """The deals' factor loadings and uncertain rates, grouped and levelled, and the factors' values
    in every trial.

    Memory is O(deals + factors x trials + uncertain levels x RATE_SLICES): one row of standard
    normals per factor, drawn from the counter generator keyed by the factor's name, so every
    plan sees the same factors. ``rate_cell`` (uint64) and ``rate_deals`` (float64) are the
    ``DealModel``'s: a deal with ``rate_deals > 0`` draws its rate per trial from its cell's
    Beta. Deals that can only win or only lose stay independent (level -1).
    """
    from scipy.special import ndtri

    names, loadings = _loadings(scenario, deals)
    win_at = thresholds(win_rate)
    certain = (win_at <= 0) | (win_at >= 2**32)
    uncertain = np.zeros(len(deals), bool) if rate_deals is None else (rate_deals > 0) & ~certain
    if not names and not uncertain.any():
        return no_correlation(len(deals))
    if len(names) * n_trials > MAX_FACTOR_VALUES:
        raise ScenarioError(
            f"{scenario.source or scenario.label}: correlation needs {len(names):,} factors x "
            f"{n_trials:,} trials of memory; at most {MAX_FACTOR_VALUES:,} values "
            "(group by a column with fewer values, or fewer trials)"
        )
    members: dict[tuple, list[int]] = {}  # a group's loadings -> its deals
    for d, row in enumerate(loadings):
        if (row or uncertain[d]) and not certain[d]:
            members.setdefault(tuple(row), []).append(d)
    rows = list(members)
    idiosyncratic = np.maximum(1.0 - np.array([sum(a * a for _, a in row) for row in rows]), 1.0 - MAX_LATENT)
    scale = 1.0 / np.sqrt(idiosyncratic)
    levels = _Levels(len(deals), _RateTables(seed, win_rate, rate_cell, rate_deals, uncertain))
    for group, row in enumerate(rows):
        levels.add_group(group, np.array(members[row], dtype=np.int64), win_at, scale[group])
    values = np.empty((len(names), n_trials))
    factor_uniforms(stream_starts(np.uint64(seed), deal_keys(names)), values)
    ndtri(values, out=values)  # in place: one factors x trials array
    tables = levels.tables
    return LatentFactors(
        deal_order=np.argsort(levels.deal_level, kind="stable"), deal_level=levels.deal_level,
        deal_interpolated=levels.deal_interpolated, deal_weights=levels.deal_weights,
        level_group=np.array(levels.group, np.int64), level_latent=np.array(levels.latent, np.float64),
        level_base=np.array(levels.base, np.float64), level_table=np.array(levels.table, np.int64),
        group_scale=scale,
        factor_start=np.concatenate([[0], np.cumsum([len(row) for row in rows])]).astype(np.int64),
        factor_index=np.array([f for row in rows for f, _ in row], dtype=np.int64),
        factor_loading=np.array([a for row in rows for _, a in row], dtype=np.float64), factor_values=values,
        table_start=np.array(tables.start, np.uint64).reshape(-1),
        rate_base=np.array(tables.base).reshape(-1, RATE_SLICES),
        rate_slope=np.array(tables.slope).reshape(-1, RATE_SLICES),
    )  # fmt: skip


def _loadings(scenario: Scenario, deals: Deals) -> tuple[list[str], list[list[tuple[int, float]]]]:
    """The factors' names, and each deal's (factor, loading) pairs."""
    correlation = scenario.correlation
    names: list[str] = []
    per_deal: list[list[tuple[int, float]]] = [[] for _ in range(len(deals))]
    if correlation.market > 0:
        names.append(MARKET_KEY)
        for row in per_deal:
            row.append((0, np.sqrt(correlation.market)))
    columns_seen = set()
    for column, rho in correlation.by.items():
        try:
            values = deals.column(column)
        except KeyError:
            raise ScenarioError(
                f"{scenario.source or scenario.label}: correlation.by.{column}: the pipeline has no such "
                f"column (columns: {', '.join(deals.columns())})"
            ) from None
        canonical = deals.aliases.get(column, column)
        if canonical in columns_seen:
            raise ScenarioError(
                f"{scenario.source or scenario.label}: correlation.by names {canonical!r} twice"
            )
        columns_seen.add(canonical)
        if rho == 0:
            continue
        index = {}
        for d, value in enumerate(values):
            if value == "":
                continue  # no group: its share of the latent variable is the deal's own noise
            if value not in index:
                index[value] = len(names)
                names.append(f"__group__:{canonical}={value}")
            per_deal[d].append((index[value], np.sqrt(rho)))
    return names, per_deal


class _RateTables:
    """The uncertain rates' tables, one per (cell, worth, rate), and the streams of their cells."""

    def __init__(self, seed, win_rate, rate_cell, rate_deals, uncertain):
        self.win_rate, self.rate_cell, self.rate_deals = win_rate, rate_cell, rate_deals
        self.uncertain = uncertain
        self.seed = np.uint64(seed)
        self.start: list[np.uint64] = []
        self.base: list[np.ndarray] = []
        self.slope: list[np.ndarray] = []
        self._rows: dict[tuple, int] = {}

    def key(self, d: int) -> tuple:
        """What the rate of deal ``d`` is drawn from: its cell, its evidence's worth, its mean."""
        return int(self.rate_cell[d]), float(self.rate_deals[d]), float(self.win_rate[d])

    def row(self, key: tuple) -> int:
        """The table of a (cell, worth, rate), built on first use."""
        if key not in self._rows:
            cell, worth, rate = key
            self._rows[key] = len(self.start)
            self.start.append(stream_starts(self.seed, np.array([cell], np.uint64))[0])
            base, slope = rate_table(rate, worth)
            self.base.append(base)
            self.slope.append(slope)
        return self._rows[key]


class _Levels:
    """Builds the levels of every group and places each deal on them."""

    def __init__(self, n_deals: int, tables: _RateTables):
        self.deal_level = np.full(n_deals, -1, np.int64)
        self.deal_interpolated = np.zeros(n_deals, bool)
        self.deal_weights = np.zeros((n_deals, 4))
        self.group: list[int] = []
        self.latent: list[float] = []
        self.base: list[float] = []
        self.table: list[int] = []
        self.tables = tables

    def add_group(self, group: int, members: np.ndarray, win_at: np.ndarray, scale: float) -> None:
        """Uncertain rates and shared win rates get exact levels; deals with a rate of their own go on
        a grid, unless the grid would have more levels than there are such deals."""
        from scipy.special import ndtri

        tables = self.tables
        uncertain = tables.uncertain[members]
        own_levels: dict[tuple, int] = {}
        for d in members[uncertain]:
            key = tables.key(d)
            if key not in own_levels:
                rate = key[2]
                latent = float(np.clip(ndtri(rate), -LATENT_LIMIT, LATENT_LIMIT))
                own_levels[key] = self._add(group, latent, rate, tables.row(key))
            self.deal_level[d] = own_levels[key]
        members = members[~uncertain]
        if not members.size:
            return
        rates, inverse, counts = np.unique(win_at[members], return_inverse=True, return_counts=True)
        latent = np.clip(ndtri(rates / 2.0**32), -LATENT_LIMIT, LATENT_LIMIT)
        step = GRID_SPACING / scale
        alone = counts == 1
        grid_levels = (
            int(np.floor((latent[alone].max() - latent[alone].min()) / step)) + 2 if alone.any() else 0
        )
        on_grid = alone if alone.sum() > grid_levels else np.zeros_like(alone)
        exact_level = np.full(rates.size, -1, np.int64)
        for k in np.flatnonzero(~on_grid):
            exact_level[k] = self._add(group, latent[k], rates[k] / 2.0**32)
        self.deal_level[members] = exact_level[inverse]
        if not on_grid.any():
            return
        low = latent[on_grid].min()
        grid = low + step * np.arange(grid_levels)
        grid_base = normal_cdf_array(grid)  # the approximate Phi: rate = Phi~((g - shift) * scale)
        grid_first = len(self.latent)
        for g, base in zip(grid, grid_base, strict=True):
            self._add(group, g, base)
        gridded = members[on_grid[inverse]]
        x = latent[inverse[on_grid[inverse]]]
        j = np.minimum(np.floor((x - low) / step).astype(np.int64), grid_levels - 2)
        t = (x - grid[j]) / step
        self.deal_level[gridded] = grid_first + j
        self.deal_interpolated[gridded] = True
        self.deal_weights[gridded] = np.column_stack([
            2 * t**3 - 3 * t**2 + 1, (t**3 - 2 * t**2 + t) * step, -2 * t**3 + 3 * t**2, (t**3 - t**2) * step
        ])  # fmt: skip

    def _add(self, group: int, latent: float, base: float, table: int = -1) -> int:
        self.group.append(group)
        self.latent.append(float(latent))
        self.base.append(float(base))
        self.table.append(table)
        return len(self.latent) - 1
