"""Calibration from history: win rates, slip, haircut, cycle time and win by deal age, with uncertainty.

Reads a table of past deals (won, lost, or still open), estimates what scenarios assume,
and writes a YAML fragment a scenario includes with ``calibration: FILE``. Win rates are
Beta posteriors (uniform prior): mean, 90 % interval and counts. Segment rates are
shrunk toward the overall rate (a Beta prior worth ``prior_strength`` deals), so a
segment of five deals is not read as gospel. Where too few deals support an
estimate, the fragment falls back to the overall figure and says so. Stages come
from a stage-history table when there is one, else from the export's stage column.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.deal_age import exposures, fit_win_by_age, win_by_age
from forecast.deal_flow import fit_new_pipeline
from forecast.errors import PipelineError
from forecast.pipeline import _parse_amount, _parse_date, match_columns, normalise, read_table
from forecast.rates import MIN_DEALS, beta_rate
from forecast.scenario import StageHistorySource, quarter_of, quarters_between
from forecast.stage_history import StageHistory, load_stage_history

HISTORY_COLUMNS = ("deal_id", "outcome", "amount", "won_amount", "created_date", "close_date",
                   "expected_close_date", "stage")  # fmt: skip


@dataclass
class HistorySpec:
    """How to read a history export: column names and which outcome values mean won or lost."""

    columns: dict[str, str] = field(default_factory=dict)  # canonical -> export header
    won: tuple[str, ...] = ("won", "closed won")
    lost: tuple[str, ...] = ("lost", "loss", "closed lost")
    segments: tuple[str, ...] = ()
    prior_strength: float = 20.0
    date_format: str | None = None
    date_format_setting: str = "--date-format"  # where a user sets it: named in date errors
    stage_history: StageHistorySource | None = None  # its path as given (resolved by the caller)
    age_buckets_days: tuple[int, ...] = (30, 60, 90, 120)
    required: tuple[str, ...] = ("outcome", "amount", "close_date")
    hint: str = "--map {name}=HEADER"  # how to map a missing column
    stage_hint: str = "--stage-map {name}=HEADER"


@dataclass
class History:
    """Every deal of the export as arrays; open deals have no close date."""

    deal_id: np.ndarray  # str objects ('' without a deal_id column)
    won: np.ndarray  # bool
    amount: np.ndarray  # float64, pipeline amount (NaN where blank)
    won_amount: np.ndarray  # float64 (NaN where unknown)
    created: np.ndarray  # datetime64[D] (NaT where unknown)
    closed: np.ndarray  # datetime64[D] (NaT while open)
    expected_close: np.ndarray  # datetime64[D] (NaT where unknown)
    stage: np.ndarray  # str objects ('' without a stage column)
    segments: dict[str, np.ndarray]
    stage_history: StageHistory | None = None

    def closed_deals(self) -> History:
        """The deals won or lost."""
        keep = ~np.isnat(self.closed)
        arrays = {f.name: getattr(self, f.name)[keep] for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), np.ndarray)}  # fmt: skip
        segments = {name: values[keep] for name, values in self.segments.items()}
        return dataclasses.replace(self, **arrays, segments=segments)

    def stage_on(self, day: np.datetime64) -> np.ndarray:
        """Every deal's stage on ``day``: from the stage history, else the export's (snapshot) stage."""
        return self.stage if self.stage_history is None else self.stage_history.on(self.deal_id, day)


def load_history(path: Path, spec: HistorySpec) -> History:
    """Read and check a history table; every bad row is reported with its row and column."""
    table, first_row = read_table(path, what="history")
    column = match_columns(table, (*HISTORY_COLUMNS, *spec.segments), spec.columns)
    required = [*spec.required, *(["deal_id"] if spec.stage_history else []), *spec.segments]
    missing = [name for name in dict.fromkeys(required) if column[name] not in table]
    if missing:
        raise PipelineError(
            [
                f"{path}: missing column {name!r} (map it with {spec.hint.format(name=name)})"
                for name in missing
            ]
        )
    won_values, lost_values = {v.casefold() for v in spec.won}, {v.casefold() for v in spec.lost}
    kept = [
        row for row in range(len(table[column["outcome"]])) if any(normalise(v[row]) for v in table.values())
    ]
    rows = len(kept)  # rows with any non-blank cell; spreadsheets leave ",,,," lines
    won, closed_any = np.zeros(rows, bool), False
    amount, won_amount = np.full(rows, np.nan), np.full(rows, np.nan)
    created, closed, expected = (np.full(rows, np.datetime64("NaT"), "datetime64[D]") for _ in range(3))
    problems: list[str] = []

    def cell(name: str, row: int) -> Any:
        return normalise(table[column[name]][kept[row]]) if column[name] in table else ""

    def parse(name: str, row: int, parser, *args) -> Any:
        try:
            return parser(table[column[name]][kept[row]], *args)
        except ValueError as error:
            problems.append(f"{path}: row {kept[row] + first_row}, column {column[name]!r} ({name}): {error}")
            return None

    def date(name: str, row: int) -> np.datetime64:
        day = parse(name, row, _parse_date, spec.date_format, spec.date_format_setting)
        return np.datetime64("NaT") if day is None else np.datetime64(day, "D")

    for row in range(rows):
        outcome = cell("outcome", row).casefold()
        is_closed = outcome in won_values | lost_values
        closed_any |= is_closed
        if is_closed or cell("amount", row):
            amount[row] = parse("amount", row, _parse_amount) or 0.0
        if is_closed:
            won[row] = outcome in won_values
            closed[row] = date("close_date", row)
            if cell("won_amount", row):
                won_amount[row] = parse("won_amount", row, _parse_amount) or 0.0
        for name, out in (("created_date", created), ("expected_close_date", expected)):
            if cell(name, row):
                out[row] = date(name, row)
    deal_id = np.array([cell("deal_id", row) for row in range(rows)], dtype=object)
    if "deal_id" in required:
        problems += _id_problems(deal_id, [row + first_row for row in kept], path, column["deal_id"])
    if problems:
        raise PipelineError(problems)
    if not closed_any:
        raise PipelineError(f"{path}: no closed deals (outcomes {sorted(won_values | lost_values)})")

    def text(name: str) -> np.ndarray:
        return np.array([cell(name, row) for row in range(rows)], dtype=object)

    stages = None
    if spec.stage_history is not None:
        stages = load_stage_history(spec.stage_history, set(deal_id), path, spec.stage_hint)
    return History(
        deal_id=deal_id, won=won, amount=amount, won_amount=won_amount, created=created, closed=closed,
        expected_close=expected, stage=text("stage"), segments={name: text(name) for name in spec.segments},
        stage_history=stages,
    )  # fmt: skip


def _id_problems(deal_id: np.ndarray, rows: list[int], path: Path, header: str) -> list[str]:
    """Empty and repeated deal ids, each with its file row: a deal id must name one deal."""
    problems, seen = [], {}
    for row, deal in zip(rows, deal_id, strict=True):
        where = f"{path}: row {row}, column {header!r} (deal_id)"
        if not deal:
            problems.append(f"{where}: is empty")
        elif deal in seen:
            problems.append(f"{where}: {deal!r} duplicates row {seen[deal]}")
        else:
            seen[deal] = row
    return problems


def _stage_rates(closed: History, overall: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage, the closed deals in it won / closed: with a stage history, every deal that reached it."""
    if closed.stage_history is not None:
        groups = {
            name: np.isin(closed.deal_id, list(deals))
            for name, deals in closed.stage_history.reached().items()
        }
    else:
        groups = {stage: closed.stage == stage for stage in set(closed.stage) - {""}}
    stages = []
    for stage in sorted(groups):
        estimate = beta_rate(int(closed.won[groups[stage]].sum()), int(groups[stage].sum()))
        if estimate["deals"] < MIN_DEALS:
            estimate = {
                **estimate,
                "win_rate": overall["win_rate"],
                "note": f"fewer than {MIN_DEALS} deals: overall rate",
            }
        stages.append({"name": stage, **estimate})
    return stages


def _complete_quarters(history: History) -> list[tuple[np.datetime64, np.datetime64]]:
    """The calendar quarters the history covers from their first day to their last."""
    known = np.concatenate(
        [history.created[~np.isnat(history.created)], history.closed[~np.isnat(history.closed)]]
    )
    if not known.size:
        return []
    first, last = known.min().item(), known.max().item()
    return [
        (np.datetime64(quarter.start, "D"), np.datetime64(quarter.end, "D"))
        for quarter in quarters_between(first, last)
        if quarter.end <= last
    ]


def _win_by_age(history: History, spec: HistorySpec) -> dict[str, Any] | None:
    """Win within a quarter by deal age x stage, over the complete calendar quarters of the history."""
    if (~np.isnat(history.created)).sum() < MIN_DEALS:
        return None
    periods = _complete_quarters(history)
    exposure = exposures(history.created, history.closed, history.won, periods, history.stage_on)
    if exposure.won.size < MIN_DEALS:
        return None
    return fit_win_by_age(exposure, list(spec.age_buckets_days), spec.prior_strength)


def _new_pipeline(history: History) -> dict[str, Any] | None:
    """A ``new_pipeline`` block fitted on the deals each complete quarter created (``deal_flow``)."""
    if (~np.isnat(history.created)).sum() < MIN_DEALS:
        return None
    value = np.where(np.isnan(history.won_amount), history.amount, history.won_amount)
    return fit_new_pipeline(history.created, history.closed, history.won, value, _complete_quarters(history))


def calibrate(history: History, spec: HistorySpec) -> dict[str, Any]:
    """Every estimate, with its counts and what it falls back on."""
    everything, history = history, history.closed_deals()
    overall = beta_rate(int(history.won.sum()), history.won.size)
    stages = _stage_rates(history, overall)
    segments = {}
    for name, values in history.segments.items():
        rows = []
        for value in sorted(set(values)):
            mask = values == value
            shrunk = beta_rate(
                int(history.won[mask].sum()), int(mask.sum()), overall["win_rate"], spec.prior_strength
            )
            rows.append({"value": value, **shrunk})
        segments[name] = rows
    won = history.won
    slip = None
    dated = won & ~np.isnat(history.expected_close)
    if dated.sum() >= MIN_DEALS:
        late = np.array(
            [
                c > np.datetime64(quarter_of(e.astype(dt.date)).end, "D")
                for c, e in zip(history.closed[dated], history.expected_close[dated], strict=True)
            ]
        )
        slip = beta_rate(int(late.sum()), int(late.size))
    amounts = won & ~np.isnan(history.won_amount) & (history.amount > 0)
    haircut = None
    if amounts.sum() >= MIN_DEALS:
        ratio = history.won_amount[amounts] / history.amount[amounts]
        haircut = {
            "haircut": float(1 - ratio.mean()),
            "haircut_stderr": float(ratio.std(ddof=1) / np.sqrt(ratio.size)),
            "sigma": float(np.std(np.log(ratio), ddof=1)),
            "deals": int(ratio.size),
        }
    cycle = None
    timed = won & ~np.isnat(history.created)
    if timed.sum() >= MIN_DEALS:
        days = (history.closed[timed] - history.created[timed]).astype(np.int64)
        cycle = {"median_days": float(np.median(days)), "p10_days": float(np.percentile(days, 10)),
                 "p90_days": float(np.percentile(days, 90)), "deals": int(days.size)}  # fmt: skip
    return {"overall": overall, "stages": stages, "segments": segments, "slip": slip, "amount": haircut,
            "cycle_time": cycle, "win_by_age": _win_by_age(everything, spec),
            "new_pipeline": _new_pipeline(everything)}  # fmt: skip


def fragment(result: dict[str, Any], with_new_pipeline: bool = False) -> dict[str, Any]:
    """The scenario keys the estimates set (``calibration: FILE`` in a scenario merges them).

    ``with_new_pipeline``: also the fitted ``new_pipeline`` block (deals not yet created), which
    adds revenue to every forecast that includes the fragment: the user opts in.
    """
    slip = result["slip"]["win_rate"] if result["slip"] else None
    out: dict[str, Any] = {}
    if result["stages"]:
        out["stages"] = [{"name": s["name"], "win_rate": round(s["win_rate"], 6)} for s in result["stages"]]
    if slip is not None:
        out["slip"] = {"default": round(slip, 6)}
    if result["amount"]:
        out["amount"] = {"haircut": round(max(0.0, result["amount"]["haircut"]), 6),
                         "sigma": round(min(3.0, result["amount"]["sigma"]), 6)}  # fmt: skip
    if result.get("win_by_age"):
        out["win_by_age"] = win_by_age(result["win_by_age"]).model_dump()
    if with_new_pipeline and result.get("new_pipeline"):
        out["new_pipeline"] = _rounded(result["new_pipeline"]["new_pipeline"])
    return out


def _rounded(value: Any) -> Any:
    """Floats to six significant digits, for a readable fragment."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return float(f"{value:.6g}") if isinstance(value, float) else value
