"""The scenario model: period, pipeline source, stages, slip, targets, plans and the rest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from forecast.config.base import (
    Probability,
    ScenarioDate,
    Simulation,
    Strict,
    Total,
    Where,
    only_known,
    stage_key,
    written_form,
)
from forecast.config.periods import PeriodRange, PeriodText, parse_period, period_range_of
from forecast.config.presets import CRM_PRESETS

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
    "currency",
)
PRESETS = tuple(CRM_PRESETS)
DEFAULT_RATES = "default"  # win_by_age's row for stages without their own


class PipelineSource(Strict):
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
    preset: Literal[PRESETS] | None = Field(
        default=None, description="A CRM's standard export: its column names and stage vocabulary."
    )
    delimiter: str | None = Field(default=None, description="CSV field separator (default: detected).")
    encoding: str | None = Field(
        default=None, description="CSV text encoding, e.g. utf-8, cp1252 (default: detected)."
    )
    decimal: Literal[",", "."] | None = Field(
        default=None, description="Decimal mark of the numbers (default: detected; ambiguous is an error)."
    )
    header_row: int | None = Field(
        default=None, ge=1, description="File row of the column headers (default: found below title rows)."
    )
    values: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Canonical column -> export value -> canonical value, e.g. "
        "{new_logo: {New Business: true, Existing Business: false}}.",
    )
    missing_amount: Literal["skip", "zero", "error"] = Field(
        default="error", description="A row without an amount: skipped (reported), read as 0, or an error."
    )
    aggregate: Literal["sum", "none"] | None = Field(
        default=None,
        description="Rows sharing a deal id (line items): summed into one deal, or an error "
        "(default: detected).",
    )

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        return only_known(columns, CANONICAL_COLUMNS)


MAX_EVIDENCE_DEALS = 1e9  # a rate worth more deals than this is known to within 2e-5: no need to draw it


class Evidence(Strict):
    """What a win rate was estimated from: how far a trial's rate may stray from it.

    ``won`` and ``lost`` are the closed deals behind the rate; under the uniform prior that
    ``forecast calibrate`` uses, its posterior is worth ``won + lost + 2`` deals. ``deals`` gives
    that worth directly (a shrunk rate: its own deals plus the prior's strength). A trial draws
    the rate from Beta(rate x worth, (1 - rate) x worth), whose mean is the rate as written: with
    the posterior mean as the rate (what calibrate writes) that is Beta(won + 1, lost + 1).
    """

    won: float | None = Field(default=None, ge=0.0, le=MAX_EVIDENCE_DEALS)
    lost: float | None = Field(default=None, ge=0.0, le=MAX_EVIDENCE_DEALS)
    deals: float | None = Field(
        default=None, gt=0.0, le=MAX_EVIDENCE_DEALS, description="The posterior's worth in deals."
    )

    @model_validator(mode="after")
    def _one_form(self) -> Evidence:
        counts = self.won is not None or self.lost is not None
        if counts and self.deals is not None:
            raise ValueError("give either won and lost, or deals, not both")
        if counts and (self.won is None or self.lost is None):
            raise ValueError("give both won and lost (the closed deals behind the rate)")
        if not counts and self.deals is None:
            raise ValueError("give won and lost (the closed deals behind the rate), or deals")
        return self

    @property
    def worth(self) -> float:
        """The posterior's worth in deals: the sum of its Beta parameters."""
        return self.deals if self.deals is not None else self.won + self.lost + 2.0


STAGE_STATUSES = ("open", "won", "lost")


class Stage(Strict):
    name: str
    win_rate: Probability | None = Field(
        default=None, description="Chance an open deal at this stage is won (closed stages: 1 or 0)."
    )
    status: Literal[STAGE_STATUSES] = Field(
        default="open", description="won / lost: rows at this stage are closed deals, not open ones."
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other names of this stage in the export (e.g. CRM ids)."
    )
    slip: Probability | None = Field(
        default=None, description="Chance a won deal dated in the period slips past it."
    )
    evidence: Evidence | None = Field(
        default=None, description="{won, lost} or {deals}: what the win rate was estimated from."
    )

    @model_validator(mode="after")
    def _rate_by_status(self) -> Stage:
        """An open stage needs its win rate; a closed one has it: 1 for won, 0 for lost."""
        if self.status == "open" and self.win_rate is None:
            raise ValueError(f"stage {self.name!r}: give its win_rate (or status: won / lost)")
        closed_rate = {"won": 1.0, "lost": 0.0}.get(self.status)
        if closed_rate is not None:
            if self.win_rate is not None and self.win_rate != closed_rate:
                raise ValueError(
                    f"stage {self.name!r} is {self.status}: its win_rate is {closed_rate:g}, "
                    f"not {self.win_rate:g}"
                )
            self.win_rate = closed_rate
        return self

    @property
    def is_open(self) -> bool:
        return self.status == "open"


class Slip(Strict):
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


class AmountNoise(Strict):
    sigma: float = Field(
        default=0.0, ge=0.0, le=3.0, description="Sigma of the mean-one lognormal multiplier."
    )
    haircut: float = Field(default=0.0, ge=0.0, lt=1.0, description="Expected discount on won amounts.")


class Fx(Strict):
    """Currency conversion: every amount in the output is in ``base``."""

    base: str = Field(description="The output's currency code, e.g. EUR.")
    rates: dict[str, Annotated[float, Field(gt=0.0)]] = Field(
        default_factory=dict, description="Currency code -> value of one unit in the base currency."
    )
    table: str | None = Field(
        default=None,
        description="CSV of dated rates (date, currency, rate), relative to the scenario; the rate on as_of.",
    )


class Booked(Strict):
    revenue: float = Field(default=0.0, ge=0.0)
    new_logos: int = Field(default=0, ge=0)


class Target(Strict):
    name: str
    metric: Literal["revenue", "new_logos", "deals"]
    at_least: Total
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


class ConversionStage(Strict):
    """A funnel step: the share of this stage's deals that move one step closer to the win."""

    name: str
    rate: ConversionRate


class LagWeeks(Strict):
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


class DealSize(Strict):
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


class WinByAge(Strict):
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
    evidence: dict[str, list[Evidence | None]] = Field(
        default_factory=dict,
        description="Rows of rates -> per bucket what the rate was estimated from (null: known).",
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
        evidence_keys = [stage_key(name) for name in self.evidence]
        for position, (name, row) in enumerate(self.evidence.items()):
            if evidence_keys[position] not in keys:
                raise ValueError(f"evidence.{name}: no such row in rates (rows: {', '.join(self.rates)})")
            if evidence_keys[position] in evidence_keys[:position]:
                raise ValueError(f"evidence: row {name!r} is listed twice (names ignore case)")
            if len(row) != len(labels):
                raise ValueError(
                    f"evidence.{name}: {len(row)} entries; expected {len(labels)}, one per age bucket "
                    f"({', '.join(labels)}; null where the rate is known)"
                )
        return self

    def evidence_row(self, name: str) -> list[Evidence | None]:
        """The evidence of rates row ``name`` (names ignore case), one entry per bucket."""
        rows = {stage_key(row): cells for row, cells in self.evidence.items()}
        return rows.get(stage_key(name), [None] * (len(self.buckets_days) + 1))


def _text_keys(rates: Any) -> Any:
    """Segment values as the pipeline's cells read: YAML's 3, 3.0 and true as '3' and 'true'."""
    if not isinstance(rates, dict):
        return rates
    written = {}
    for key, rate in rates.items():
        if isinstance(key, bool):
            text = str(key).lower()
        elif isinstance(key, float) and key.is_integer():
            text = str(int(key))
        else:
            text = str(key)
        if text in written:
            raise ValueError(f"segment value {text!r} is listed twice")
        written[text] = rate
    return written


OpenRate = Annotated[float, Field(gt=0.0, lt=1.0)]


class SegmentRates(Strict):
    """Win rates by the values of one pipeline column (``forecast calibrate --segment``).

    A deal without a probability of its own keeps its stage's (or ``win_by_age``) rate scaled by its
    segment's odds against ``overall``: odds x (rate / (1 - rate)) / (overall / (1 - overall)). The
    segment and stage effects combine as in a logistic model without interaction; a deal of a
    segment at the overall rate, or of a value not listed, keeps its rate.
    """

    column: str = Field(description="Pipeline column whose values the rates are for, e.g. region.")
    overall: OpenRate = Field(description="The win rate over all segments, which the rates are relative to.")
    rates: Annotated[dict[str, OpenRate], BeforeValidator(_text_keys)] = Field(
        description="Segment value -> its win rate (strictly between 0 and 1)."
    )


class NewPipeline(Strict):
    """Deals not yet created: weekly conversations (Poisson) that convert and close in time."""

    conversations_per_week: float = Field(ge=0.0)
    stages: list[ConversionStage] = Field(min_length=1, description="Closest to the win first.")
    lag_weeks: LagWeeks
    deal_size: DealSize
    new_logo: bool = True


class Correlation(Strict):
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


class Territories(Strict):
    """How ``forecast territories`` may redraw the split: whole units of one column, to even out reps."""

    unit: str = Field(
        default="region", description="Column whose values are assigned whole (region, sector)."
    )
    objective: Literal["attainment", "p_hit"] = Field(
        default="attainment",
        description="Even out expected attainment (revenue / quota) or P(hit own quota).",
    )


class DealTemplate(Strict):
    """A synthetic deal: what ``add_deals`` adds and the extra-pipeline search counts in."""

    stage: str | None = Field(default=None, description="Stage of the new deals (default: the first stage).")
    amount: float | None = Field(default=None, gt=0, description="Mean amount (default: mean open amount).")
    amount_spread: float = Field(
        default=0.0, ge=0.0, le=3.0, description="Lognormal sigma of sizes across the added deals."
    )
    win_rate: Probability | None = Field(default=None, description="Default: the stage's win rate.")
    close_date: ScenarioDate | None = Field(default=None, description="Default: the period's last day.")
    new_logo: bool = Field(default=True, description="New pipeline is new business unless told otherwise.")


class AddDeals(DealTemplate):
    count: int = Field(ge=1, le=100_000, strict=True)


class Plan(Strict):
    """A what-if: target overrides and changes to the pipeline, compared on common random numbers."""

    targets: dict[str, Total] = Field(default_factory=dict, description="Target name -> new at_least.")
    revenue: Total | None = Field(default=None, description="Revenue target (created if absent).")
    new_logos: Total | None = Field(default=None, description="New-logo target (created if absent).")
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


class Scenario(Strict):
    """A forecast question: a period, a pipeline, the model's rates and the targets."""

    name: str | None = None
    period: Annotated[
        Annotated[PeriodText, Tag("scalar")] | Annotated[PeriodRange, Tag("mapping")],
        Discriminator(written_form),
    ] = Field(description="2026-Q3, 2026-07, 2026, or {start, end}.")
    as_of: ScenarioDate | None = Field(
        default=None, description="Date of the pipeline snapshot (default: period start)."
    )
    pipeline: PipelineSource
    booked: Annotated[
        Annotated[float, Tag("scalar"), Field(ge=0.0, allow_inf_nan=False)]
        | Annotated[Booked, Tag("mapping")],
        Discriminator(written_form),
    ] = Field(default=0.0, description="Revenue (or {revenue, new_logos}) already won.")
    stages: list[Stage] | None = None
    fx: Fx | None = Field(default=None, description="Convert a currency column into one base currency.")
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
    segment_rates: SegmentRates | None = Field(
        default=None, description="Win rates by a pipeline column, scaling the stage or age rates."
    )
    territories: Territories = Field(default_factory=Territories)
    correlation: Correlation = Field(default_factory=Correlation)
    calibration: str | None = Field(
        default=None, description="YAML fragment from forecast calibrate; keys set here take precedence."
    )
    rate_uncertainty: bool | None = Field(
        default=None,
        description="Draw every rate that has evidence per trial from its Beta posterior "
        "(default: on when any rate has evidence).",
    )
    quotas: dict[str, dict[str, Total]] = Field(
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
            period = period_range_of(info.data["period"])
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

    @model_validator(mode="after")
    def _stages_from_preset(self) -> Scenario:
        """A preset's default stages stand in when the scenario lists none (listed stages win whole)."""
        if self.stages is None and self.pipeline.preset is not None:
            self.stages = [
                Stage(
                    name=stage.name, win_rate=stage.win_rate, status=stage.status, aliases=list(stage.aliases)
                )
                for stage in CRM_PRESETS[self.pipeline.preset].stages
            ]
        return self

    @field_validator("rate_uncertainty")
    @classmethod
    def _evidence_to_draw(cls, switch: bool | None, info: ValidationInfo) -> bool | None:
        valid = "stages" in info.data and "win_by_age" in info.data  # else their own errors say it
        if switch and valid and not _has_evidence(info.data["stages"], info.data["win_by_age"]):
            raise ValueError(
                "true, but no stage or win_by_age rate has evidence to draw from "
                "(give a stage evidence: {won, lost}, or include a calibration fragment)"
            )
        return switch

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
    def has_evidence(self) -> bool:
        """Some stage or ``win_by_age`` rate says what it was estimated from."""
        return _has_evidence(self.stages, self.win_by_age)

    @property
    def uncertain_rates(self) -> bool:
        """Rates with evidence are drawn per trial: ``rate_uncertainty``, by default when there is any."""
        return self.has_evidence if self.rate_uncertainty is None else self.rate_uncertainty

    @property
    def period_range(self) -> PeriodRange:
        return period_range_of(self.period)

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


def _has_evidence(stages: list[Stage] | None, win_by_age: WinByAge | None) -> bool:
    cells = win_by_age.evidence.values() if win_by_age is not None else []
    return any(stage.evidence for stage in stages or []) or any(any(row) for row in cells)


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
