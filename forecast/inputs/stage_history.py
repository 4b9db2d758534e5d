"""Stage changes (deal id, stage entered, date entered) -> each deal's stage on any date.

A CRM's field-history export has one row per stage a deal entered. A deal's stage on
a date is the last stage it entered on or before that date, so a backtest sees the
stage each deal had at a period's start, not the one it ended in; calibration reads
per-stage win rates from the stages deals reached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from forecast.config.base import stage_key
from forecast.config.specs import STAGE_HISTORY_COLUMNS, StageHistorySource
from forecast.errors import PipelineError
from forecast.inputs.columns import date_order, dates
from forecast.inputs.tables import match_columns, read_table, require_columns

_DAY_OFFSET = 2**31  # days since 1970 shifted to be non-negative inside a (deal, day) sort key


class StageHistory:
    """Stage changes, sorted by deal and date (file order within a day)."""

    def __init__(self, deal_id: np.ndarray, stage: np.ndarray, entered: np.ndarray):
        self._code = {deal: code for code, deal in enumerate(dict.fromkeys(deal_id))}
        key = self._keys(np.asarray(deal_id, dtype=object), np.asarray(entered, dtype="datetime64[D]"))
        order = np.argsort(key, kind="stable")
        self.deal_id = np.asarray(deal_id, dtype=object)[order]
        self.stage = np.asarray(stage, dtype=object)[order]
        self.entered = np.asarray(entered, dtype="datetime64[D]")[order]
        self._key = key[order]

    def _keys(self, deal_ids: np.ndarray, days: np.ndarray) -> np.ndarray:
        code = np.array([self._code.get(deal, -1) for deal in deal_ids], dtype=np.int64)
        return code * 2**32 + days.astype(np.int64) + _DAY_OFFSET

    def on(self, deal_ids: np.ndarray, day: np.datetime64) -> np.ndarray:
        """Each deal's stage on ``day``: the last it entered on or before it ('' before its first)."""
        deal_ids = np.asarray(deal_ids, dtype=object)
        if self._key.size == 0:
            return np.full(len(deal_ids), "", dtype=object)
        wanted = self._keys(deal_ids, np.full(len(deal_ids), np.datetime64(day, "D")))
        position = np.searchsorted(self._key, wanted, side="right") - 1
        found = (position >= 0) & (wanted >= 0)
        found[found] = self.deal_id[position[found]] == deal_ids[found]
        return np.where(found, self.stage[np.maximum(position, 0)], "").astype(object)

    def reached(self) -> dict[str, set[str]]:
        """Stage -> the deals that ever entered it (names compare as stages do; first spelling kept)."""
        names: dict[str, str] = {}
        deals: dict[str, set[str]] = {}
        for deal, stage in zip(self.deal_id, self.stage, strict=True):
            key = stage_key(stage)
            names.setdefault(key, stage)
            deals.setdefault(key, set()).add(deal)
        return {names[key]: members for key, members in deals.items()}


def load_stage_history(
    source: StageHistorySource, known: set[str], history: Path, hint: str = "--stage-map {name}=HEADER"
) -> StageHistory:
    """Read and check a stage-history table; every bad row is reported with its row and column.

    ``known``: the deal ids of the ``history`` table, which every row must name.
    ``hint``: how to map a missing column, e.g. ``history.stage_history.columns.{name}``; date
    errors name the matching date-format setting.
    """
    setting = "--date-format" if hint.startswith("--") else hint.split(".columns.")[0] + ".date_format"
    path = Path(source.path)
    table = read_table(path, what="stage history", names=(*STAGE_HISTORY_COLUMNS, *source.columns.values()))
    column = match_columns(table, STAGE_HISTORY_COLUMNS, source.columns)
    require_columns(path, table, column, hint)
    found = {name: {} for name in STAGE_HISTORY_COLUMNS}
    deal_id, stage = table.text(column["deal_id"]), table.text(column["stage"])
    for position in np.flatnonzero((deal_id == "") | ~np.isin(deal_id, list(known))):
        found["deal_id"][position] = (
            f"unknown deal id {deal_id[position]!r}: it is not in {history}"
            if deal_id[position]
            else "is empty"
        )
    for position in np.flatnonzero(stage == ""):
        found["stage"][position] = "is empty"
    order = date_order(
        [table.columns[column["date"]]],
        source.date_format,
        lambda _, position: f"{path}: row {table.rows[position]}, column {column['date']!r}:",
        setting,
    )
    entered, found["date"] = dates(table.columns[column["date"]], source.date_format, order, setting)
    problems = [
        f"{path}: row {table.rows[position]}, column {column[name]!r} ({name}): {message}"
        for position in sorted({p for messages in found.values() for p in messages})
        for name in STAGE_HISTORY_COLUMNS
        if (message := found[name].get(position))
    ]
    keep = ~np.isnat(entered)
    deal_id, stage, entered = deal_id[keep], stage[keep], entered[keep]
    if problems:
        raise PipelineError(problems)
    return StageHistory(deal_id, stage, entered)
