"""Closed rows of an export: the stage vocabulary that marks a deal won or lost, and the split of the
loaded rows into open deals and won ones (lost rows are dropped, and counted).

The usual closed-stage names are ``forecast.config.presets.CLOSED_STAGE_NAMES``; a name matches as
stage names do (``stage_key``: case and surrounding spaces ignored).
"""

from __future__ import annotations

import numpy as np

from forecast.config.base import stage_key
from forecast.config.periods import PeriodRange
from forecast.config.presets import CLOSED_STAGE_NAMES
from forecast.config.scenario import Stage
from forecast.inputs.deals import Deals

WON = -2  # stage_index of a row at a won stage, until ``split_closed`` takes it out of the open deals
LOST = -3  # likewise for a lost stage


class StageVocabulary:
    """Stage names (and aliases) -> stage index; the usual closed names not listed -> ``WON`` / ``LOST``.

    A listed stage wins over the usual names: a scenario that lists ``Won`` as an open stage keeps it.
    """

    def __init__(self, stages: list[Stage] | None) -> None:
        self.stages = stages or []
        self.listed = stages is not None  # the scenario lists stages: another name is an error
        self._index: dict[str, int] = {stage_key(name): WON for name in CLOSED_STAGE_NAMES["won"]}
        self._index.update({stage_key(name): LOST for name in CLOSED_STAGE_NAMES["lost"]})
        for position, stage in enumerate(self.stages):
            for name in (stage.name, *stage.aliases):
                self._index[stage_key(name)] = position

    def index(self, name: str) -> int | None:
        """The stage index of a cell's stage name (``WON`` / ``LOST`` for the usual closed names), or
        None when the name is unknown."""
        return self._index.get(stage_key(name))

    def known(self) -> str:
        """The names a message lists as expected."""
        return ", ".join(stage.name for stage in self.stages)

    def status(self, stage_index: np.ndarray) -> np.ndarray:
        """Each row's status: ``open``, ``won`` or ``lost`` (object strings)."""
        listed = np.array([stage.status for stage in self.stages] + ["open"], dtype=object)
        status = listed[np.where(stage_index >= 0, stage_index, len(self.stages))]
        status[stage_index == WON] = "won"
        status[stage_index == LOST] = "lost"
        return status


def won_in_period(close_date: np.ndarray, period: PeriodRange) -> np.ndarray:
    """Won rows that are the period's booked revenue: closed on or after its start and on or before
    its end (before: an earlier period's; after: not this one's)."""
    start, end = np.datetime64(period.start, "D"), np.datetime64(period.end, "D")
    return (close_date >= start) & (close_date <= end)


def won_outside(close_date: np.ndarray, period: PeriodRange) -> dict[str, int]:
    """How many won rows were closed before the period start and after its end (both ignored)."""
    start, end = np.datetime64(period.start, "D"), np.datetime64(period.end, "D")
    return {"before": int((close_date < start).sum()), "after": int((close_date > end).sum())}


def split_closed(deals: Deals, vocabulary: StageVocabulary) -> Deals:
    """The open deals, carrying the won rows (``won``) and the count of lost ones (``rules.lost``)."""
    status = vocabulary.status(deals.stage_index)
    if (status == "open").all():
        deals.won = deals.subset(np.zeros(len(deals), dtype=bool))
        return deals
    won = deals.subset(status == "won")
    won.stage_index = np.where(won.stage_index >= 0, won.stage_index, -1)
    open_deals = deals.subset(status == "open")
    open_deals.won = won
    open_deals.rules = deals.rules.with_counts(lost=int((status == "lost").sum()))
    return open_deals
