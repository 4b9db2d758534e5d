"""Line items: an export that repeats a deal's id once per product ("Opportunities with Products").

``pipeline.aggregate: sum`` adds the rows of one deal id into one deal (amounts summed, every other
mapped field agreeing), keeping each line's amount and product so that a target's ``where:
{product: X}`` counts only that product's amount. Unset, the rows are merged only when that reading
is the only one (every repeated id's rows name different products and agree on everything else);
otherwise a repeated id stays an error, with a hint naming the setting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from forecast.config.scenario import CANONICAL_COLUMNS, PipelineSource
from forecast.errors import PipelineError
from forecast.inputs.deals import Deals, LineItems
from forecast.inputs.tables import deal_id_problems

LINE_FIELDS = ("amount", "product")  # what differs between the lines of one deal
_AGREEING = ("close_date", "probability", "slip", "stage_index", "new_logo", "push_count", "created")
_FIELD_COLUMN = {"stage_index": "stage", "created": "created_date"}  # the array's canonical column


REPEATED_HINT = (
    "if rows sharing a deal id are line items of one deal (one row per product), set "
    "pipeline.aggregate: sum to add them up"
)


def repeated_ids_wait(
    id_problems: dict[int, str], deal_id: np.ndarray, source: PipelineSource
) -> tuple[dict[int, str], dict[int, str]]:
    """The deal-id problems the row check reports now, and the repeated ids that wait for
    ``aggregate_lines`` (all of them are reported now under ``pipeline.aggregate: none``)."""
    if source.aggregate == "none":
        return id_problems, {}
    now = {position: problem for position, problem in id_problems.items() if deal_id[position] == ""}
    return now, {position: problem for position, problem in id_problems.items() if position not in now}


def unresolved(waiting: dict[int, str], source: PipelineSource, path: Path) -> list[str]:
    """The waiting repeated ids when other rows are bad, so line items cannot be told apart: reported
    with the hint unless ``pipeline.aggregate: sum`` said they are line items."""
    if not waiting or source.aggregate == "sum":
        return []
    return [*waiting.values(), f"{path}: {REPEATED_HINT}"]


def _same(values: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per row: equal to its deal's first row (NaN and NaT equal themselves)."""
    if values.dtype.kind == "f":
        return (values == first) | (np.isnan(values) & np.isnan(first))
    if values.dtype.kind == "M":
        return (values == first) | (np.isnat(values) & np.isnat(first))
    return values == first


def _disagreements(deals: Deals, first: np.ndarray, headers: dict[str, str], path: Path) -> list[str]:
    """One problem per deal whose rows differ in a mapped field other than amount and product."""
    fields = {name: getattr(deals, name) for name in _AGREEING}
    fields.update(
        {
            name: values
            for name, values in deals.attributes.items()
            if name in CANONICAL_COLUMNS and name not in LINE_FIELDS
        }
    )
    problems, named = [], set()
    for name, values in fields.items():
        column = _FIELD_COLUMN.get(name, name)
        if column not in headers:  # not in the export: every row holds the same default
            continue
        differs = ~_same(values, values[first])
        for row in np.flatnonzero(differs):
            deal = deals.deal_id[row]
            if deal in named:
                continue
            named.add(deal)
            shown = deals.attributes.get(column, values)
            one, other = str(shown[first[row]]), str(shown[row])
            problems.append(
                f"{path}: rows {deals.rows[first[row]]} and {deals.rows[row]} share deal id {deal!r} but "
                f"differ in column {headers[column]!r} ({column}): {one!r} and {other!r}; "
                "the line items of one deal agree on everything but amount and product"
            )
    return problems


def _repeated_problems(deals: Deals, headers: dict[str, str], path: Path) -> list[str]:
    """A repeated id as the error it is without aggregation, and the setting that sums line items."""
    ids = pa.array(deals.deal_id.tolist(), type=pa.string())
    problems = deal_id_problems(ids, deals.rows, path, headers["deal_id"])
    return [*problems.values(), f"{path}: {REPEATED_HINT}"]


def _detected(deals: Deals, first: np.ndarray, group: np.ndarray) -> bool:
    """Rows sharing an id read as line items only one way: each names its own product, and no deal
    repeats one figure on every line (a deal's total, which summing would multiply)."""
    product = deals.attributes.get("product")
    if product is None:
        return False
    pairs = {(int(g), p) for g, p in zip(group, product, strict=True)}
    if len(pairs) != len(deals):
        return False
    repeated = np.bincount(group) > 1
    varied = np.zeros(len(repeated), dtype=bool)
    varied[group[deals.amount != deals.amount[first]]] = True
    return bool(varied[repeated].all())


def aggregate_lines(deals: Deals, source: PipelineSource, headers: dict[str, str], path: Path) -> Deals:
    """The deals with each repeated id's rows summed into one (``pipeline.aggregate``), in the order
    of their first rows; rows of one id stay an error when they are not line items."""
    ids, first_index, group = np.unique(deals.deal_id.astype(str), return_index=True, return_inverse=True)
    if len(ids) == len(deals):
        return deals
    first = first_index[group]
    problems = _disagreements(deals, first, headers, path)
    if source.aggregate is None and (problems or not _detected(deals, first, group)):
        raise PipelineError(_repeated_problems(deals, headers, path))
    if problems:
        raise PipelineError(problems)
    order = np.argsort(first_index, kind="stable")  # deals in the order of their first rows
    position = np.empty(len(ids), dtype=np.int64)
    position[order] = np.arange(len(ids))
    line_deal = position[group]
    merged = deals.subset(first_index[order])
    merged.amount = np.bincount(line_deal, weights=deals.amount, minlength=len(ids))
    varying = {
        name: values for name, values in deals.attributes.items() if not (values == values[first]).all()
    }
    by_deal = np.argsort(line_deal, kind="stable")  # each deal's lines together, in file order
    starts = np.searchsorted(line_deal[by_deal], np.arange(len(ids)))
    for name, values in varying.items():
        lines = np.split(values[by_deal], starts[1:])
        merged.attributes[name] = np.array([" + ".join(dict.fromkeys(part)) for part in lines], dtype=object)
    merged.lines = LineItems(deal=line_deal, amount=deals.amount.copy(), attributes=varying)
    merged.rules = deals.rules.with_counts(
        merged=len(deals) - len(ids), aggregate="sum" if source.aggregate == "sum" else "detected"
    )
    return merged
