"""The funnel plan and backtest files: what ``forecast funnel`` and ``forecast backtest`` read."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from forecast.config.base import Simulation, Strict, only_known, stage_key
from forecast.config.periods import parse_period, quarter_name, quarters_between
from forecast.config.scenario import AgeBuckets, ConversionStage

STAGE_HISTORY_COLUMNS = ("deal_id", "stage", "date")  # one row per stage a deal entered, and when


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


class BacktestModel(Strict):
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


class BacktestSpec(Strict):
    """forecast backtest: replay past periods from history and score the forecasts."""

    name: str | None = None
    history: BacktestHistory
    periods: str | list[str] = Field(description="2017-Q2..2017-Q4, or a list of periods.")
    model: BacktestModel = Field(default_factory=BacktestModel)
    simulation: Simulation = Field(default_factory=Simulation)

    @property
    def period_list(self) -> list[str]:
        """The periods as quarter names: a list as given, or every quarter of ``first..last``."""
        if isinstance(self.periods, list):
            return self.periods
        first, _, last = self.periods.partition("..")
        quarters = quarters_between(parse_period(first).start, parse_period(last or first).start)
        return [quarter_name(quarter.start) for quarter in quarters]
