"""Calibration from history: win rates, slip, amount haircut and cycle time, with uncertainty.

Reads a table of closed deals (won or lost), estimates what scenarios assume, and
writes a YAML fragment a scenario includes with ``calibration: FILE``. Win rates are
Beta posteriors (uniform prior): mean, 90 % interval and counts. Segment rates are
shrunk toward the stage's rate (a Beta prior worth ``prior_strength`` deals), so a
segment of five deals is not read as gospel. Where too few deals support an
estimate, the fragment falls back to the overall figure and says so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import PipelineError
from forecast.pipeline import _parse_amount, _parse_date, normalise, read_table

MIN_DEALS = 10  # fewer closed deals than this: fall back to the broader estimate
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


@dataclass
class History:
    """Closed deals as arrays."""

    won: np.ndarray  # bool
    amount: np.ndarray  # float64, pipeline amount
    won_amount: np.ndarray  # float64 (NaN where unknown)
    created: np.ndarray  # datetime64[D] (NaT where unknown)
    closed: np.ndarray  # datetime64[D]
    expected_close: np.ndarray  # datetime64[D] (NaT where unknown)
    stage: np.ndarray  # str objects ('' without a stage column)
    segments: dict[str, np.ndarray]


def load_history(path: Path, spec: HistorySpec) -> History:
    """Read and check a history table; every bad row is reported with its row and column."""
    table, first_row = read_table(path)
    header = {name.strip().casefold().replace(" ", "_"): name for name in table}
    column = {
        name: spec.columns.get(name)
        or (name if name in table else header.get(name.strip().casefold().replace(" ", "_")))
        for name in (*HISTORY_COLUMNS, *spec.segments)
    }
    missing = [name for name in ("outcome", "amount", "close_date") if column[name] not in table]
    missing += [name for name in spec.segments if column[name] not in table]
    if missing:
        raise PipelineError(
            [f"{path}: missing column {name!r} (map it with --map {name}=HEADER)" for name in missing]
        )
    won_values, lost_values = {v.casefold() for v in spec.won}, {v.casefold() for v in spec.lost}
    rows = len(table[column["outcome"]])
    won, keep = np.zeros(rows, bool), np.zeros(rows, bool)
    amount, won_amount = np.zeros(rows), np.full(rows, np.nan)
    created, closed, expected = (np.full(rows, np.datetime64("NaT"), "datetime64[D]") for _ in range(3))
    problems: list[str] = []

    def cell(name: str, row: int) -> Any:
        return table[column[name]][row] if column[name] in table else None

    for row in range(rows):
        outcome = normalise(cell("outcome", row)).casefold()
        if outcome not in won_values | lost_values:
            continue  # still open: not history
        where = f"{path}: row {row + first_row}"
        try:
            keep[row] = True
            won[row] = outcome in won_values
            amount[row] = _parse_amount(cell("amount", row))
            if column["won_amount"] in table and normalise(cell("won_amount", row)):
                won_amount[row] = _parse_amount(cell("won_amount", row))
            closed[row] = np.datetime64(_parse_date(cell("close_date", row), spec.date_format), "D")
            for name, out in (("created_date", created), ("expected_close_date", expected)):
                if column[name] in table and normalise(cell(name, row)):
                    out[row] = np.datetime64(_parse_date(cell(name, row), spec.date_format), "D")
        except ValueError as error:
            problems.append(f"{where}: {error}")
    if problems:
        raise PipelineError(problems)
    if not keep.any():
        raise PipelineError(f"{path}: no closed deals (outcomes {sorted(won_values | lost_values)})")

    def text(name: str) -> np.ndarray:
        values = table.get(column[name]) if column[name] else None
        return np.array([normalise(v) for v in values] if values else [""] * rows, dtype=object)[keep]

    return History(
        won=won[keep], amount=amount[keep], won_amount=won_amount[keep], created=created[keep],
        closed=closed[keep], expected_close=expected[keep], stage=text("stage"),
        segments={name: text(name) for name in spec.segments},
    )  # fmt: skip


def beta_rate(wins: int, deals: int, prior_rate: float = 0.5, prior_strength: float = 2.0) -> dict[str, Any]:
    """Posterior of a win rate: Beta(prior + wins, prior + losses); the default prior is uniform."""
    from scipy.stats import beta

    a = prior_rate * prior_strength + wins
    b = (1 - prior_rate) * prior_strength + deals - wins
    return {
        "win_rate": a / (a + b),
        "interval_90": [float(beta.ppf(0.05, a, b)), float(beta.ppf(0.95, a, b))],
        "wins": int(wins),
        "deals": int(deals),
    }


def _quarter_end(day: np.datetime64) -> np.datetime64:
    date = day.astype(dt.date)
    month = 3 * ((date.month - 1) // 3) + 3
    following = dt.date(date.year + month // 12, month % 12 + 1, 1)
    return np.datetime64(following - dt.timedelta(days=1), "D")


def calibrate(history: History, spec: HistorySpec) -> dict[str, Any]:
    """Every estimate, with its counts and what it falls back on."""
    overall = beta_rate(int(history.won.sum()), history.won.size)
    stages = []
    for stage in sorted(set(history.stage) - {""}):
        in_stage = history.stage == stage
        estimate = beta_rate(int(history.won[in_stage].sum()), int(in_stage.sum()))
        if estimate["deals"] < MIN_DEALS:
            estimate = {
                **estimate,
                "win_rate": overall["win_rate"],
                "note": f"fewer than {MIN_DEALS} deals: overall rate",
            }
        stages.append({"name": stage, **estimate})
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
                c > _quarter_end(e)
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
            "cycle_time": cycle}  # fmt: skip


def fragment(result: dict[str, Any]) -> dict[str, Any]:
    """The scenario keys the estimates set (``calibration: FILE`` in a scenario merges them)."""
    slip = result["slip"]["win_rate"] if result["slip"] else None
    out: dict[str, Any] = {}
    if result["stages"]:
        out["stages"] = [{"name": s["name"], "win_rate": round(s["win_rate"], 6)} for s in result["stages"]]
    if slip is not None:
        out["slip"] = {"default": round(slip, 6)}
    if result["amount"]:
        out["amount"] = {"haircut": round(max(0.0, result["amount"]["haircut"]), 6),
                         "sigma": round(min(3.0, result["amount"]["sigma"]), 6)}  # fmt: skip
    return out
