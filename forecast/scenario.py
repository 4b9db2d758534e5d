"""YAML scenario -> validated ``Scenario``; errors name the key path and the line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from forecast.errors import ScenarioError

MAX_TRIALS = 100_000_000
DEFAULT_TRIALS = 100_000
DEFAULT_SEED = 20260701
BASE_PLAN = "base"
QUARTER_DAYS = 91.31  # 365.25 / 4: the period win_by_age rates are measured over
MAX_LATENT = 0.99  # total latent correlation: each deal keeps at least 1 % of its own noise

CANONICAL_COLUMNS = (
    "deal_id",
    "amount",
    "stage",
    "close_date",
    "probability",
    "slip",
    "owner",
    "region",
    "sector",
    "product",
    "new_logo",
    "forecast_category",
    "push_count",
    "created_date",
)
STAGE_HISTORY_COLUMNS = ("deal_id", "stage", "date")  # one row per stage a deal entered, and when
DEFAULT_RATES = "default"  # win_by_age's row for stages without their own

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
FilterValue = str | int | float | bool


def _one_filter_value(value: Any) -> Any:
    """Reject a bad filter value with one message rather than one per type it could have been."""
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int | float) for item in values):
        raise ValueError("expected a value (text, number, true/false) or a list of values")
    return value


Where = dict[str, Annotated[FilterValue | list[FilterValue], BeforeValidator(_one_filter_value)]]


def _form(value: Any) -> str:
    """Which form of a scalar-or-mapping key was written, so errors speak of that form only."""
    return "mapping" if isinstance(value, dict | BaseModel) else "scalar"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PeriodRange(_Strict):
    """An explicit forecast period; both ends are inside it."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> PeriodRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$", re.IGNORECASE)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_period(text: str) -> PeriodRange:
    """``2026-Q3``, ``2026-07`` or ``2026`` -> the calendar period it names."""
    text = text.strip()
    if match := _QUARTER.match(text):
        year, quarter = int(match[1]), int(match[2])
        start = dt.date(year, 3 * quarter - 2, 1)
        end_month = 3 * quarter
    elif (match := _MONTH.match(text)) and 1 <= int(match[2]) <= 12:
        year, end_month = int(match[1]), int(match[2])
        start = dt.date(year, end_month, 1)
    elif match := _YEAR.match(text):
        year, end_month = int(match[1]), 12
        start = dt.date(year, 1, 1)
    else:
        raise ValueError(
            f"period {text!r} is not a quarter (2026-Q3), a month (2026-07), a year or {{start, end}}"
        )
    next_month = dt.date(year + end_month // 12, end_month % 12 + 1, 1)
    return PeriodRange(start=start, end=next_month - dt.timedelta(days=1))


def quarter_of(day: dt.date) -> PeriodRange:
    """The calendar quarter a day falls in."""
    return parse_period(f"{day.year}-Q{(day.month - 1) // 3 + 1}")


def quarters_between(first: dt.date, last: dt.date) -> list[PeriodRange]:
    """Every calendar quarter that overlaps ``first``..``last``, in order."""
    out, current = [], quarter_of(first)
    while current.start <= last:
        out.append(current)
        current = quarter_of(current.end + dt.timedelta(days=1))
    return out


def _year_as_text(period: Any) -> Any:
    """YAML reads ``period: 2026`` as a number."""
    return str(period) if isinstance(period, int) and not isinstance(period, bool) else period


def _period_range(period: str | PeriodRange) -> PeriodRange:
    return parse_period(period) if isinstance(period, str) else period


PeriodText = Annotated[str, BeforeValidator(_year_as_text, json_schema_input_type=str | int)]


def _only_known(columns: dict[str, str], known) -> dict[str, str]:
    """A column mapping whose canonical names are all in ``known``."""
    unknown = sorted(set(columns) - set(known))
    if unknown:
        raise ValueError(f"unknown column {unknown[0]!r}; expected one of {', '.join(known)}")
    return columns


class PipelineSource(_Strict):
    """Where the open deals come from and how to read them."""

    path: str = Field(description="CSV, Parquet or Excel (.xlsx) file, relative to the scenario file.")
    columns: dict[str, str] = Field(
        default_factory=dict, description="Canonical column -> the export's column name."
    )
    filter: Where = Field(
        default_factory=dict, description="Keep rows whose column equals the value (or any in a list)."
    )
    probability_scale: Literal["fraction", "percent"] = "fraction"
    date_format: str | None = Field(
        default=None, description="strptime format of close_date when not ISO (e.g. '%m/%d/%Y')."
    )
    sheet: str | None = Field(default=None, description="Excel sheet name (default: the first).")

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return _only_known(columns, CANONICAL_COLUMNS)


class Stage(_Strict):
    name: str
    win_rate: Probability
    slip: Probability | None = Field(
        default=None, description="Chance a won deal dated in the period slips past it."
    )


class Slip(_Strict):
    default: Probability = 0.0
    pull_in: Probability = Field(
        default=0.0, description="Chance a won deal dated after the period closes in it."
    )
    push_factor: float = Field(
        default=1.0,
        ge=1.0,
        le=10.0,
        description="Slip risk x this, per time the deal's close date was pushed.",
    )


class AmountNoise(_Strict):
    sigma: float = Field(
        default=0.0, ge=0.0, le=3.0, description="Sigma of the mean-one lognormal multiplier."
    )
    haircut: float = Field(default=0.0, ge=0.0, lt=1.0, description="Expected discount on won amounts.")


class Booked(_Strict):
    revenue: float = Field(default=0.0, ge=0.0)
    new_logos: int = Field(default=0, ge=0)


class Target(_Strict):
    name: str
    metric: Literal["revenue", "new_logos", "deals"]
    at_least: float = Field(ge=0.0)
    where: Where = Field(
        default_factory=dict, description="Count only deals matching every key (a list: any value)."
    )


def _fraction(value: Any) -> Any:
    """Rates may be written as fractions: '1/6'."""
    if isinstance(value, str) and "/" in value:
        numerator, _, denominator = value.partition("/")
        try:
            return float(numerator) / float(denominator)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"{value!r} is not a rate; expected a decimal (0.4) or a fraction (1/6)"
            ) from None
    return value


ConversionRate = Annotated[float, BeforeValidator(_fraction), Field(gt=0.0, le=1.0)]


class ConversionStage(_Strict):
    """A funnel step: the share of this stage's deals that move one step closer to the win."""

    name: str
    rate: ConversionRate


class LagWeeks(_Strict):
    """Weeks from first conversation to close."""

    distribution: Literal["fixed", "uniform", "gamma", "lognormal"] = "gamma"
    mean: float = Field(gt=0.0)
    sd: float = Field(default=0.0, ge=0.0)

    @model_validator(mode="after")
    def _spread_fits(self) -> LagWeeks:
        if self.distribution in ("gamma", "lognormal") and self.sd == 0:
            raise ValueError(f"a {self.distribution} lag needs sd > 0 (or distribution: fixed)")
        if self.distribution == "uniform" and self.sd * 3**0.5 > self.mean:
            raise ValueError("a uniform lag with this sd would start before week 0")
        return self


class DealSize(_Strict):
    mean: float = Field(gt=0.0)
    sigma: float = Field(default=0.0, ge=0.0, le=3.0, description="Lognormal spread of sizes.")


def _increasing(edges: list[int]) -> list[int]:
    if any(later <= earlier for earlier, later in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"age bucket edges must increase: {edges}")
    return edges


AgeBuckets = Annotated[list[Annotated[int, Field(gt=0)]], AfterValidator(_increasing)]


def age_bucket_labels(edges: list[int]) -> list[str]:
    """'<= 30 days', '31-60 days', ..., '> 120 days': the buckets that upper edges make."""
    if not edges:
        return ["any age"]
    lows = [0, *edges[:-1]]
    return (
        [f"<= {edges[0]} days"]
        + [f"{low + 1}-{high} days" for low, high in zip(lows[1:], edges[1:], strict=True)]
        + [f"> {edges[-1]} days"]
    )


class WinByAge(_Strict):
    """Chance that a deal open at a period's start is won within the period, by its age and stage.

    For deals with a ``created_date`` (and no probability of their own) it replaces the
    stage's win rate and slip; ``forecast calibrate`` estimates it from history.
    """

    buckets_days: AgeBuckets = Field(
        description="Upper edges of the age buckets, days since creation (inclusive): n edges, n + 1 buckets."
    )
    rates: dict[str, list[Probability]] = Field(
        description="'default' (by age alone) and stage names -> one win rate per age bucket."
    )
    period_days: float = Field(
        default=QUARTER_DAYS,
        gt=0.0,
        description="Length of the periods the rates were measured over (a quarter: 91.31 days).",
    )

    @model_validator(mode="after")
    def _one_rate_per_bucket(self) -> WinByAge:
        if DEFAULT_RATES not in self.rates:
            raise ValueError(
                f"rates needs a {DEFAULT_RATES!r} row: the rates by age alone, for stages without their own"
            )
        labels = age_bucket_labels(self.buckets_days)
        for name, row in self.rates.items():
            if len(row) != len(labels):
                raise ValueError(
                    f"rates.{name}: {len(row)} rates; expected {len(labels)}, one per age bucket "
                    f"({', '.join(labels)})"
                )
        keys = [stage_key(name) for name in self.rates]
        for position, key in enumerate(keys):
            if key in keys[:position]:
                raise ValueError(
                    f"rates: stage {list(self.rates)[position]!r} is listed twice (names ignore case)"
                )
        return self


class NewPipeline(_Strict):
    """Deals not yet created: weekly conversations (Poisson) that convert and close in time."""

    conversations_per_week: float = Field(ge=0.0)
    stages: list[ConversionStage] = Field(min_length=1, description="Closest to the win first.")
    lag_weeks: LagWeeks
    deal_size: DealSize
    new_logo: bool = True


class Correlation(_Strict):
    """Deals that move together: latent (asset) correlations of a one-factor Gaussian copula."""

    market: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Latent correlation of any two deals through one market factor.",
    )
    by: dict[str, Annotated[float, Field(ge=0.0, lt=1.0)]] = Field(
        default_factory=dict,
        description="Column -> extra latent correlation within a group, e.g. {owner: 0.2}.",
    )

    @model_validator(mode="after")
    def _below_one(self) -> Correlation:
        if self.market + sum(self.by.values()) > MAX_LATENT:
            raise ValueError(f"market and group correlations must add up to at most {MAX_LATENT}")
        return self


class Territories(_Strict):
    """How ``forecast territories`` may redraw the split: whole units of one column, to even out reps."""

    unit: str = Field(
        default="region", description="Column whose values are assigned whole (region, sector)."
    )
    objective: Literal["attainment", "p_hit"] = Field(
        default="attainment",
        description="Even out expected attainment (revenue / quota) or P(hit own quota).",
    )


class FunnelVariance(_Strict):
    """Which randomness the funnel's probabilistic answer includes."""

    activity: Literal["poisson", "fixed"] = Field(
        default="poisson", description="poisson: the weekly count varies around the plan; fixed: exactly it."
    )
    conversion: Literal["binomial", "expected"] = Field(
        default="binomial", description="binomial: each deal converts by chance; expected: exactly the rate."
    )


class Prices(_Strict):
    """List prices, for open deals whose export has no amount (joined on a column)."""

    path: str
    key: str = Field(description="Column shared by the history and the price list, e.g. product.")
    price: str = Field(description="The price column.")
    aliases: dict[str, str] = Field(default_factory=dict, description="History value -> price-list value.")


class StageHistorySource(_Strict):
    """A table of stage changes: one row per stage a deal entered, with the date it entered it."""

    path: str = Field(description="CSV, Parquet or Excel file (in a backtest file: relative to it).")
    columns: dict[str, str] = Field(
        default_factory=dict, description="deal_id, stage, date -> the table's column names."
    )
    date_format: str | None = Field(default=None, description="strptime format of dates when not ISO.")

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return _only_known(columns, STAGE_HISTORY_COLUMNS)


class BacktestHistory(_Strict):
    path: str = Field(description="Closed and open deals, relative to the backtest file.")
    columns: dict[str, str] = Field(default_factory=dict, description="Canonical -> the export's column.")
    won: list[str] = Field(default_factory=lambda: ["Won", "Closed Won"])
    lost: list[str] = Field(default_factory=lambda: ["Lost", "Loss", "Closed Lost"])
    prices: Prices | None = None
    date_format: str | None = None
    stage_history: StageHistorySource | None = Field(
        default=None, description="Stage changes: each open deal's stage at a period start."
    )


class BacktestModel(_Strict):
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


class Simulation(_Strict):
    trials: int = Field(default=DEFAULT_TRIALS, ge=1, le=MAX_TRIALS, strict=True)
    seed: int = Field(default=DEFAULT_SEED, ge=0, lt=2**63, strict=True)


class FunnelSpec(_Strict):
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


class BacktestSpec(_Strict):
    """forecast backtest: replay past periods from history and score the forecasts."""

    name: str | None = None
    history: BacktestHistory
    periods: str | list[str] = Field(description="2017-Q2..2017-Q4, or a list of periods.")
    model: BacktestModel = Field(default_factory=BacktestModel)
    simulation: Simulation = Field(default_factory=Simulation)

    @property
    def period_list(self) -> list[str]:
        if isinstance(self.periods, list):
            return self.periods
        first, _, last = self.periods.partition("..")
        start, end = parse_period(first).start, parse_period(last or first).start
        out, current = [], start
        while current <= end:
            quarter = (current.month - 1) // 3 + 1
            out.append(f"{current.year}-Q{quarter}")
            month = current.month + 3
            current = dt.date(current.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)
        return out


class DealTemplate(_Strict):
    """A synthetic deal: what ``add_deals`` adds and the extra-pipeline search counts in."""

    stage: str | None = Field(default=None, description="Stage of the new deals (default: the first stage).")
    amount: float | None = Field(default=None, gt=0, description="Mean amount (default: mean open amount).")
    amount_spread: float = Field(
        default=0.0, ge=0.0, le=3.0, description="Lognormal sigma of sizes across the added deals."
    )
    win_rate: Probability | None = Field(default=None, description="Default: the stage's win rate.")
    close_date: dt.date | None = Field(default=None, description="Default: the period's last day.")
    new_logo: bool = Field(default=True, description="New pipeline is new business unless told otherwise.")


class AddDeals(DealTemplate):
    count: int = Field(ge=1, le=100_000, strict=True)


class Plan(_Strict):
    """A what-if: target overrides and changes to the pipeline, compared on common random numbers."""

    targets: dict[str, Annotated[float, Field(ge=0.0)]] = Field(
        default_factory=dict, description="Target name -> new at_least."
    )
    revenue: float | None = Field(default=None, ge=0.0, description="Revenue target (created if absent).")
    new_logos: float | None = Field(default=None, ge=0.0, description="New-logo target (created if absent).")
    accelerate: list[str] = Field(
        default_factory=list, description="Deal ids pulled into the period, no slip."
    )
    exclude: list[str] = Field(default_factory=list, description="Deal ids left out.")
    add_deals: list[AddDeals] = Field(default_factory=list)
    win_rate_delta: dict[str, Annotated[float, Field(ge=-1.0, le=1.0)]] = Field(
        default_factory=dict, description="Stage -> points added to its deals' win rates (0.05 = 5 points)."
    )
    slip_delta: dict[str, Annotated[float, Field(ge=-1.0, le=1.0)]] = Field(
        default_factory=dict, description="Stage -> change of its slip rate."
    )

    @field_validator("add_deals", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class Scenario(_Strict):
    """A forecast question: a period, a pipeline, the model's rates and the targets."""

    name: str | None = None
    period: Annotated[
        Annotated[PeriodText, Tag("scalar")] | Annotated[PeriodRange, Tag("mapping")], Discriminator(_form)
    ] = Field(description="2026-Q3, 2026-07, 2026, or {start, end}.")
    as_of: dt.date | None = Field(
        default=None, description="Date of the pipeline snapshot (default: period start)."
    )
    pipeline: PipelineSource
    booked: Annotated[
        Annotated[float, Tag("scalar"), Field(ge=0.0, allow_inf_nan=False)]
        | Annotated[Booked, Tag("mapping")],
        Discriminator(_form),
    ] = Field(default=0.0, description="Revenue (or {revenue, new_logos}) already won.")
    stages: list[Stage] | None = None
    slip: Slip = Field(default_factory=Slip)
    amount: AmountNoise = Field(default_factory=AmountNoise)
    targets: list[Target] = Field(default_factory=list)
    simulation: Simulation = Field(default_factory=Simulation)
    new_deal: DealTemplate = Field(
        default_factory=DealTemplate, description="The deal 'what it takes' adds to reach a probability."
    )
    plans: dict[str, Plan] = Field(
        default_factory=dict, description="Named what-ifs; the file itself is 'base'."
    )
    new_pipeline: NewPipeline | None = Field(
        default=None, description="Activity that creates and closes deals within the period."
    )
    win_by_age: WinByAge | None = Field(
        default=None, description="Win within the period by deal age and stage (needs created_date)."
    )
    territories: Territories = Field(default_factory=Territories)
    correlation: Correlation = Field(default_factory=Correlation)
    calibration: str | None = Field(
        default=None, description="YAML fragment from forecast calibrate; keys set here take precedence."
    )
    quotas: dict[str, dict[str, Annotated[float, Field(ge=0.0)]]] = Field(
        default_factory=dict,
        description="Column -> value -> quota, e.g. {owner: {Alice: 300000}, region: {EMEA: 600000}}.",
    )

    sweep: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="Dotted setting -> values; forecast batch runs every combination (run: as written).",
    )

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("period")
    @classmethod
    def _period_parses(cls, period: str | PeriodRange) -> str | PeriodRange:
        if isinstance(period, str):
            parse_period(period)
        return period

    @field_validator("as_of")
    @classmethod
    def _inside_period(cls, as_of: dt.date | None, info: ValidationInfo) -> dt.date | None:
        if as_of is not None and "period" in info.data:
            period = _period_range(info.data["period"])
            if not period.start <= as_of <= period.end:
                raise ValueError(f"as_of {as_of} is outside the period {period.start}..{period.end}")
        return as_of

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, stages: list[Stage] | None) -> list[Stage] | None:
        keys = [stage_key(stage.name) for stage in stages or []]
        for position, key in enumerate(keys):
            if key in keys[:position]:
                raise ValueError(f"stage {stages[position].name!r} is listed twice (names ignore case)")
        return stages

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, targets: list[Target]) -> list[Target]:
        names = [target.name for target in targets]
        for position, name in enumerate(names):
            if name in names[:position]:
                raise ValueError(f"target name {name!r} is used twice")
        return targets

    @field_validator("sweep")
    @classmethod
    def _sweep_settings(cls, sweep: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key in sweep:
            head = key.split(".")[0]
            if head not in cls.model_fields or head in ("sweep", "name"):
                raise ValueError(f"{key!r}: no such setting to sweep (e.g. slip.default, amount.sigma)")
        return sweep

    @field_validator("plans")
    @classmethod
    def _plans_named(cls, plans: dict[str, Plan]) -> dict[str, Plan]:
        if BASE_PLAN in plans:
            raise ValueError(f"{BASE_PLAN!r} is the scenario as written; give the plan another name")
        return plans

    @property
    def quota(self) -> Target | None:
        """The quota: the first revenue target without ``where`` (what diagnoses and drivers use)."""
        return next((t for t in self.targets if t.metric == "revenue" and not t.where), None)

    @property
    def period_range(self) -> PeriodRange:
        return _period_range(self.period)

    @property
    def snapshot_date(self) -> dt.date:
        return self.as_of or self.period_range.start

    @property
    def booked_totals(self) -> Booked:
        return self.booked if isinstance(self.booked, Booked) else Booked(revenue=self.booked)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self._source.stem if self._source else "scenario"

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def pipeline_path(self) -> Path:
        path = Path(self.pipeline.path).expanduser()
        if not path.is_absolute() and self._source is not None:
            path = self._source.parent / path
        return path


def stage_key(name: str) -> str:
    """Stage names match case-insensitively and ignoring surrounding spaces."""
    return " ".join(str(name).split()).casefold()


def _line_index(node: yaml.Node, path: tuple = (), index: dict | None = None) -> dict[tuple, int]:
    """Map every key path in a composed YAML document to its 1-based line."""
    index = {} if index is None else index
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            index[child] = key_node.start_mark.line + 1
            _line_index(value_node, child, index)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            child = (*path, position)
            index[child] = item.start_mark.line + 1
            _line_index(item, child, index)
    return index


def _data_path(loc: tuple, data: Any, keep_last: bool) -> tuple:
    """Drop the union-branch names pydantic puts in a location, keeping the data's keys."""
    path: list = []
    for position, part in enumerate(loc):
        in_dict = isinstance(data, dict) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if in_dict or in_list:
            data = data[part]
        elif not (keep_last and position == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def _located(path: tuple, lines: dict[tuple, int]) -> str:
    """'targets[0].at_least (line 12)' for a key path."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    text = text or "(top level)"
    for cut in range(len(path), 0, -1):
        if path[:cut] in lines:
            return f"{text} (line {lines[path[:cut]]})"
    return text


def _where(loc: tuple, data: Any, lines: dict[tuple, int], keep_last: bool) -> str:
    """The location of a pydantic error, as the YAML shows it."""
    return _located(_data_path(loc, data, keep_last), lines)


def _describe(error: dict, data: Any, lines: dict[tuple, int]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    keep_last = error["type"] in ("missing", "extra_forbidden")
    return f"{_where(error['loc'], data, lines, keep_last)}: {message}"


def reference_problems(scenario: Scenario) -> list[tuple[tuple, str]]:
    """Stages and targets that plans and deal templates name but the scenario lacks."""
    known = {stage_key(stage.name) for stage in scenario.stages or []}
    listed = ", ".join(stage.name for stage in scenario.stages or []) or "none"
    target_names = [target.name for target in scenario.targets]
    problems: list[tuple[tuple, str]] = []

    def check_template(path: tuple, template: DealTemplate, required: bool) -> None:
        if template.stage is not None and stage_key(template.stage) not in known:
            problems.append(((*path, "stage"), f"unknown stage {template.stage!r}; stages are {listed}"))
        elif required and template.win_rate is None and not scenario.stages:
            problems.append((path, "give a win_rate or a stage: the scenario has no stages"))

    check_template(("new_deal",), scenario.new_deal, required=False)
    for name, plan in scenario.plans.items():
        for position, added in enumerate(plan.add_deals):
            check_template(("plans", name, "add_deals", position), added, required=True)
        for key in ("win_rate_delta", "slip_delta"):
            for stage in getattr(plan, key):
                if stage_key(stage) not in known:
                    problems.append((("plans", name, key, stage), f"unknown stage; stages are {listed}"))
        for target in plan.targets:
            if target not in target_names:
                problems.append(
                    (
                        ("plans", name, "targets", target),
                        f"no such target; targets are {', '.join(target_names) or 'none'}",
                    )
                )
    return problems


def _validate_yaml(
    text: str, model: type[BaseModel], label: str, prepare=None
) -> tuple[BaseModel, dict[tuple, int]]:
    """YAML text -> a validated model and the line of every key path; errors name key and line.

    ``prepare`` may complete the raw data first (a scenario's calibration fragment).
    """
    try:
        document = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ScenarioError(f"{label}{where}: not valid YAML: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{label}: expected a mapping of keys at the top level")
    lines = _line_index(document) if document is not None else {}
    if prepare is not None:
        data = prepare(data)
    try:
        return model.model_validate(data), lines
    except ValidationError as error:
        raise ScenarioError(
            list(dict.fromkeys(f"{label}: {_describe(item, data, lines)}" for item in error.errors()))
        ) from None


def _with_calibration(data: dict, source: Path | None, label: str) -> dict:
    """Scenario data completed by its ``calibration`` fragment: what the scenario sets wins."""
    name = data.get("calibration")
    if not isinstance(name, str):
        return data
    path = Path(name).expanduser()
    if not path.is_absolute() and source is not None:
        path = Path(source).parent / path
    fragment = yaml.safe_load(_read(path, "calibration")) or {}
    if not isinstance(fragment, dict):
        raise ScenarioError(f"{label}: calibration {path}: expected a mapping of scenario keys")
    merged = dict(data)
    for key, value in fragment.items():
        if key not in merged:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(merged[key], dict):
            merged[key] = {**value, **merged[key]}
    return merged


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: {what} file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read {what} file: {error}") from None


def parse_scenario(text: str, source: Path | None = None) -> Scenario:
    """Validate scenario YAML text; ``source`` resolves relative paths and names the file."""
    label = str(source) if source else "scenario"
    scenario, lines = _validate_yaml(
        text, Scenario, label, lambda data: _with_calibration(data, source, label)
    )
    problems = reference_problems(scenario)
    if problems:
        raise ScenarioError([f"{label}: {_located(path, lines)}: {message}" for path, message in problems])
    scenario._source = source
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    path = Path(path)
    return parse_scenario(_read(path, "scenario"), path.resolve())


def _with_setting(data: Any, key: str, value: Any) -> None:
    """Set a dotted setting (``slip.default``, ``stages.1.win_rate``) in raw scenario data."""
    *parents, last = key.split(".")
    for part in parents:
        data = data[int(part)] if isinstance(data, list) else data.setdefault(part, {})
    if isinstance(data, list):
        data[int(last)] = value
    else:
        data[last] = value


def sweep_variant(text: str, source: Path | None, values: dict[str, Any]) -> Scenario:
    """The scenario with the sweep settings ``values`` applied (none: the file as written)."""
    import copy

    if not values:
        return parse_scenario(text, source)
    label = str(source) if source else "scenario"
    where = ", ".join(f"{key}={value}" for key, value in values.items())
    data = copy.deepcopy(yaml.safe_load(text))
    data.pop("sweep", None)
    try:
        for key, value in values.items():
            _with_setting(data, key, value)
    except (IndexError, ValueError, TypeError, AttributeError):
        raise ScenarioError(f"{label}: sweep {where}: no such setting") from None
    try:
        return parse_scenario(yaml.safe_dump(data), source)
    except ScenarioError as error:  # lines refer to the re-written text: drop them
        raise ScenarioError(
            [
                f"{label}: sweep {where}: " + re.sub(r" \(line \d+\)", "", problem.removeprefix(f"{label}: "))
                for problem in error.problems
            ]
        ) from None


def sweep_variants(text: str, source: Path | None = None) -> list[tuple[dict[str, Any], Scenario]]:
    """Every combination of a scenario's ``sweep`` values, each as its own scenario.

    Returns ``(values, scenario)`` pairs in a fixed order (the cartesian product of
    the lists as written); a scenario without ``sweep`` is the one pair ``({}, it)``.
    """
    import itertools

    scenario = parse_scenario(text, source)
    if not scenario.sweep:
        return [({}, scenario)]
    keys = list(scenario.sweep)
    combinations = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*scenario.sweep.values())
    ]
    return [(values, sweep_variant(text, source, values)) for values in combinations]


def parse_funnel(text: str, source: Path | None = None) -> FunnelSpec:
    """Validate a funnel plan's YAML text."""
    return _validate_yaml(text, FunnelSpec, str(source) if source else "funnel")[0]


def load_backtest(path: str | Path, periods: str | None = None) -> tuple[BacktestSpec, Path]:
    """A backtest file (its periods replaced by ``periods`` if given) and the folder its paths start from."""
    path = Path(path)
    spec = _validate_yaml(_read(path, "backtest"), BacktestSpec, str(path))[0]
    if periods is not None:
        spec = spec.model_copy(update={"periods": periods})
    try:
        for period in spec.period_list:
            parse_period(period)
    except ValueError as error:
        raise ScenarioError(f"{path}: periods: {error}") from None
    return spec, path.resolve().parent


def load_funnel(path: str | Path) -> FunnelSpec:
    path = Path(path)
    return parse_funnel(_read(path, "funnel"), path.resolve())


def validated(model: type[BaseModel], data: dict[str, Any], label: str) -> Any:
    """``model`` from data built in code (e.g. command-line options); errors name the key."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(
            list(dict.fromkeys(f"{label}: {_describe(item, data, {})}" for item in error.errors()))
        ) from None


def funnel_with(
    base: FunnelSpec | None, changes: dict[str, Any], label: str = "funnel options"
) -> FunnelSpec:
    """A funnel spec from a file's (or nothing) with keys replaced, e.g. from command-line options."""
    return validated(FunnelSpec, {**(base.model_dump() if base else {}), **changes}, label)


def json_schema() -> dict[str, Any]:
    """The scenario's JSON Schema, for editors."""
    schema = Scenario.model_json_schema()
    schema["title"] = "forecast scenario"
    return schema
