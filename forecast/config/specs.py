"""The funnel plan and backtest files: what ``forecast funnel`` and ``forecast backtest`` read."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from forecast.config.base import MAX_TRIALS, ScenarioDate, Simulation, Strict, only_known, stage_key
from forecast.config.periods import parse_period, quarter_name, quarters_between
from forecast.config.scenario import MAX_LATENT, AgeBuckets, ConversionStage

STAGE_HISTORY_COLUMNS = ("deal_id", "stage", "date")  # one row per stage a deal entered, and when
CATEGORY_HISTORY_COLUMNS = ("deal_id", "category", "date")  # one row per forecast category a deal was given


class FunnelVariance(Strict):
    """Which randomness the funnel's probabilistic answer includes."""

    activity: Literal["poisson", "fixed"] = Field(
        default="poisson", description="poisson: the weekly count varies around the plan; fixed: exactly it."
    )
    conversion: Literal["binomial", "expected"] = Field(
        default="binomial", description="binomial: each deal converts by chance; expected: exactly the rate."
    )


class Prices(Strict):
    """List prices, for open deals whose export has no amount (joined on a column)."""

    path: str
    key: str = Field(description="Column shared by the history and the price list, e.g. product.")
    price: str = Field(description="The price column.")
    aliases: dict[str, str] = Field(default_factory=dict, description="History value -> price-list value.")


class StageHistorySource(Strict):
    """A table of stage changes: one row per stage a deal entered, with the date it entered it."""

    path: str = Field(description="CSV, Parquet or Excel file (in a backtest file: relative to it).")
    columns: dict[str, str] = Field(
        default_factory=dict, description="deal_id, stage, date -> the table's column names."
    )
    date_format: str | None = Field(default=None, description="strptime format of dates when not ISO.")

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return only_known(columns, STAGE_HISTORY_COLUMNS)


class CategoryHistorySource(Strict):
    """A table of forecast-category changes (a CRM's field history of the rep's call): one row per
    category a deal was given, with the date; a deal's category on a day is the last given by then."""

    path: str = Field(description="CSV, Parquet or Excel file, relative to the backtest file.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="deal_id, category, date -> the table's column names "
        "(category: forecast_category unless mapped).",
    )  # fmt: skip
    date_format: str | None = Field(default=None, description="strptime format of dates when not ISO.")
    commit: list[str] = Field(
        default_factory=lambda: ["Commit", "Closed"], min_length=1,
        description="The categories the CRM's call counts as coming in (the commit forecast).",
    )  # fmt: skip

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return only_known(columns, CATEGORY_HISTORY_COLUMNS)


class BacktestHistory(Strict):
    path: str = Field(description="Closed and open deals, relative to the backtest file.")
    columns: dict[str, str] = Field(default_factory=dict, description="Canonical -> the export's column.")
    won: list[str] = Field(default_factory=lambda: ["Won", "Closed Won"])
    lost: list[str] = Field(default_factory=lambda: ["Lost", "Loss", "Closed Lost"])
    prices: Prices | None = None
    date_format: str | None = None
    stage_history: StageHistorySource | None = Field(
        default=None, description="Stage changes: each open deal's stage at a period start."
    )
    category_history: CategoryHistorySource | None = Field(
        default=None, description="Forecast-category changes: the CRM's call at each origin (a baseline)."
    )
    as_of: ScenarioDate | None = Field(
        default=None,
        description="The day the export was taken (default: its last creation or close date): outcomes "
        "after it are unknown.",
    )


CORRELATION_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4)


class BacktestModel(Strict):
    """The model each origin's forecast is fitted with; the switches let a backtest measure each part."""

    age: bool = Field(
        default=True, description="Rates by deal age (and stage); false: by stage alone (stage rates)."
    )
    age_buckets_days: AgeBuckets = Field(
        default_factory=lambda: [30, 60, 90, 120], description="Upper edges of deal-age buckets, in days."
    )
    prior_strength: float = Field(
        default=20.0,
        ge=0.0,
        description="Deals' worth of its age bucket's rate a stage's cell is shrunk toward.",
    )
    lag_distribution: Literal["gamma", "lognormal"] = Field(
        default="gamma", description="The new pipeline's lag from creation to win, as fitted."
    )
    correlation: Literal["fitted"] | Annotated[float, Field(ge=0.0, le=MAX_LATENT)] = Field(
        default="fitted",
        description="Latent market correlation of the open deals: a number, or fitted at each origin on "
        "the earlier origins' outcomes (0 until enough of them are known).",
    )
    correlation_grid: list[Annotated[float, Field(ge=0.0, le=MAX_LATENT)]] = Field(
        default_factory=lambda: list(CORRELATION_GRID), min_length=1,
        description="The values a fitted correlation is chosen from.",
    )  # fmt: skip
    correlation_trials: int = Field(
        default=1000, ge=100, le=MAX_TRIALS, description="Trials per origin and value when fitting it."
    )
    correlation_min_origins: int = Field(
        default=8, ge=1, description="Earlier origins with known outcomes a fitted correlation needs."
    )
    rate_uncertainty: bool = Field(
        default=False, description="Draw each open deal's age-cell rate per trial from its Beta posterior."
    )
    half_life_days: Literal["fitted"] | Annotated[float, Field(gt=0.0)] | None = Field(
        default=None,
        description="Weigh earlier outcomes by recency: half their weight every N days; or fitted at each "
        "origin with the correlation, on the earlier origins' outcomes (none until enough are known).",
    )
    half_life_grid: list[Annotated[float, Field(gt=0.0)] | None] = Field(
        default_factory=lambda: [None, 180.0, 90.0, 45.0], min_length=1,
        description="The half-lives a fitted one is chosen from (null: no recency); the first until enough "
        "earlier origins are known.",
    )  # fmt: skip


class FunnelSpec(Strict):
    """A rep's plan: from a quota back through the conversion rates to weekly activity."""

    quota: float = Field(gt=0.0, description="Revenue to reach over periods x weeks (e.g. a year).")
    deal_size: float = Field(gt=0.0, description="Average won amount.")
    deal_size_spread: float = Field(
        default=0.0, ge=0.0, le=3.0, description="Lognormal sigma of won amounts."
    )
    stages: list[ConversionStage] = Field(min_length=1, description="Closest to the win first.")
    periods: int = Field(default=4, ge=1, le=52, description="Periods in the quota's horizon.")
    weeks: float = Field(default=12.0, gt=0.0, description="Selling weeks per period.")
    booked: float = Field(default=0.0, ge=0.0, description="Revenue already won towards the quota.")
    open: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict, description="Open deals per stage, e.g. {proposal: 10}."
    )
    variance: FunnelVariance = Field(default_factory=FunnelVariance)
    levels: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(default_factory=lambda: [0.5, 0.8, 0.9])
    simulation: Simulation = Field(default_factory=Simulation)

    @model_validator(mode="after")
    def _consistent(self) -> FunnelSpec:
        period_weeks = 52.0 / self.periods
        if self.weeks > period_weeks + 1e-9:
            raise ValueError(
                f"weeks: {self.weeks:g} selling weeks do not fit in a period of {period_weeks:.1f} weeks "
                f"({self.periods} periods a year)"
            )
        keys = [stage_key(stage.name) for stage in self.stages]
        if len(set(keys)) < len(keys):
            raise ValueError("stages: a stage is listed twice")
        if self.variance.conversion == "binomial":
            fractional = [name for name, count in self.open.items() if not float(count).is_integer()]
            if fractional:
                raise ValueError(
                    f"open: {fractional[0]!r} has a fractional count; deals convert one by one "
                    "(binomial), so give whole deals or use variance.conversion: expected"
                )
        unknown = [name for name in self.open if stage_key(name) not in keys]
        if unknown:
            raise ValueError(
                f"open: unknown stage {unknown[0]!r}; stages are {', '.join(s.name for s in self.stages)}"
            )
        return self


Origins = Literal["weekly", "monthly", "quarterly"] | Annotated[int, Field(ge=1, le=366)]


class BacktestSpec(Strict):
    """forecast backtest: forecast from past origins with what was known then, and score the forecasts."""

    name: str | None = None
    history: BacktestHistory
    periods: str | list[str] | None = Field(
        default=None,
        description="The quarters whose origins are scored: 2017-Q2..2017-Q4 or a list (default: all).",
    )
    origins: Origins = Field(
        default="quarterly",
        description="How often to forecast: weekly, monthly, quarterly (quarter starts) or a step in days.",
    )
    horizon_days: int | None = Field(
        default=None, ge=1, le=366, description="Horizon in days (default: the rest of the origin's quarter)."
    )
    model: BacktestModel = Field(default_factory=BacktestModel)
    simulation: Simulation = Field(default_factory=Simulation)

    @property
    def period_list(self) -> list[str] | None:
        """The periods as quarter names: a list as given, or every quarter of ``first..last``; None: all."""
        if self.periods is None or isinstance(self.periods, list):
            return self.periods
        first, _, last = self.periods.partition("..")
        quarters = quarters_between(parse_period(first).start, parse_period(last or first).start)
        return [quarter_name(quarter.start) for quarter in quarters]
