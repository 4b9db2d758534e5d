"""CRM export (CSV, Parquet, Excel) -> ``Deals``: flat arrays, one row per open deal.

Columns are mapped onto canonical names, rows are filtered, and every row is
checked; all problems are reported together, each naming file, row and column.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from forecast.errors import PipelineError
from forecast.scenario import CANONICAL_COLUMNS, PipelineSource, Stage, stage_key

REQUIRED = ("deal_id", "amount", "close_date")
ATTRIBUTES = ("owner", "region", "sector", "product", "forecast_category")
_THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d*)?$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0", ""}


@dataclass
class Deals:
    """Open deals as arrays of equal length (one entry per deal)."""

    deal_id: np.ndarray  # str objects
    amount: np.ndarray  # float64, >= 0
    close_date: np.ndarray  # datetime64[D]
    probability: np.ndarray  # float64 in [0, 1]; NaN where the stage's rate applies
    stage_index: np.ndarray  # int64 into the scenario's stages; -1 when unknown or none
    new_logo: np.ndarray  # bool
    rows: np.ndarray  # int64 row number in the file; 0 for deals a plan added
    slip: np.ndarray | None = None  # float64 in [0, 1]; NaN where the stage's (or default) slip applies
    push_count: np.ndarray | None = None  # int64: times the close date was pushed out (0 if unknown)
    created: np.ndarray | None = None  # datetime64[D]: when the deal was created (NaT if unknown)
    attributes: dict[str, np.ndarray] = field(default_factory=dict)  # normalised str values
    source: Path | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # the export's header -> canonical name

    def __post_init__(self) -> None:
        if self.slip is None:
            self.slip = np.full(len(self.deal_id), np.nan)
        if self.push_count is None:
            self.push_count = np.zeros(len(self.deal_id), dtype=np.int64)
        if self.created is None:
            self.created = np.full(len(self.deal_id), np.datetime64("NaT"), dtype="datetime64[D]")

    def __len__(self) -> int:
        return len(self.deal_id)

    def columns(self) -> list[str]:
        """Every name ``column`` accepts."""
        return ["deal_id", "new_logo", *self.attributes, *self.aliases]

    def column(self, name: str) -> np.ndarray:
        """Values of a canonical or export column, as normalised strings, for filters."""
        name = self.aliases.get(name, name)
        if name in self.attributes:
            return self.attributes[name]
        if name == "deal_id":
            return self.deal_id
        if name == "new_logo":
            return np.array([normalise(bool(v)) for v in self.new_logo], dtype=object)
        raise KeyError(name)

    def matching(self, where: dict[str, Any]) -> np.ndarray:
        """Boolean mask of deals whose columns equal the ``where`` values (lists: any of)."""
        mask = np.ones(len(self), dtype=bool)
        for name, wanted in where.items():
            mask &= np.isin(self.column(name), _wanted(wanted))
        return mask

    def subset(self, mask: np.ndarray) -> Deals:
        """The deals selected by a boolean mask or an index array."""
        return Deals(
            **{name: getattr(self, name)[mask] for name in _ARRAYS},
            attributes={name: values[mask] for name, values in self.attributes.items()},
            source=self.source,
            aliases=self.aliases,
        )

    def concat(self, other: Deals) -> Deals:
        """These deals followed by ``other``'s; a column only one side has is blank on the other."""
        names = list(dict.fromkeys([*self.attributes, *other.attributes]))

        def column(deals: Deals, name: str) -> np.ndarray:
            return deals.attributes.get(name, np.full(len(deals), "", dtype=object))

        return Deals(
            **{name: np.concatenate([getattr(self, name), getattr(other, name)]) for name in _ARRAYS},
            attributes={name: np.concatenate([column(self, name), column(other, name)]) for name in names},
            source=self.source,
            aliases={**other.aliases, **self.aliases},
        )


_ARRAYS = (
    "deal_id", "amount", "close_date", "probability", "slip", "stage_index", "new_logo", "rows", "push_count",
    "created",
)  # fmt: skip


def normalise(value: Any) -> str:
    """One string form for cell and YAML values: 3, 3.0 and '3' compare equal."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def by_value(quotas: dict[Any, float]) -> dict[str, float]:
    """Quotas keyed the way cells compare (``normalise``): YAML's 3 and a cell's '3' meet."""
    return {normalise(value): quota for value, quota in quotas.items()}


def _wanted(wanted: Any) -> list[str]:
    values = wanted if isinstance(wanted, list) else [wanted]
    return [normalise(value) for value in values]


def _filter_text(value: Any, boolean: bool) -> str:
    """A cell as ``pipeline.filter`` compares it; new_logo cells read as true/false, like ``Deals.column``."""
    if boolean:
        with contextlib.suppress(ValueError):  # the row check reports a bad cell if its row is kept
            return normalise(_parse_bool(value))
    return normalise(value)


def read_table(path: Path, sheet: str | None = None, what: str = "pipeline") -> tuple[dict[str, list], int]:
    """Read a CSV, Parquet or Excel file into columns of Python values.

    Returns the columns and the row number of the first data row (2 under a
    header line, as a spreadsheet shows it; 1 for Parquet, which has no header).
    """
    if not path.exists():
        raise PipelineError(f"{path}: {what} file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            return _read_csv(path, "\t" if suffix == ".tsv" else ","), 2
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pydict(), 1
        if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
            return _read_excel(path, sheet), 2
    except PipelineError:
        raise
    except Exception as error:  # the readers raise many types for a corrupt file
        raise PipelineError(f"{path}: cannot read the file: {error}") from None
    raise PipelineError(f"{path}: unsupported file type {suffix!r}; expected .csv, .parquet or .xlsx")


def _read_csv(path: Path, delimiter: str) -> dict[str, list]:
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter=delimiter)
    names = pacsv.open_csv(path, parse_options=parse).schema.names
    convert = pacsv.ConvertOptions(
        column_types={name: "string" for name in names},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    return pacsv.read_csv(path, parse_options=parse, convert_options=convert).to_pydict()


def _read_excel(path: Path, sheet: str | None) -> dict[str, list]:
    from python_calamine import CalamineWorkbook

    workbook = CalamineWorkbook.from_path(str(path))
    if sheet is not None and sheet not in workbook.sheet_names:
        raise PipelineError(f"{path}: no sheet {sheet!r}; sheets are {', '.join(workbook.sheet_names)}")
    rows = workbook.get_sheet_by_name(sheet or workbook.sheet_names[0]).to_python(skip_empty_area=True)
    if not rows:
        return {}
    header = [normalise(name) for name in rows[0]]
    return {name: [row[i] if i < len(row) else None for row in rows[1:]] for i, name in enumerate(header)}


def _canonical_name(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip()).casefold()


def match_columns(
    table: dict[str, list], names: tuple[str, ...], explicit: dict[str, str]
) -> dict[str, str | None]:
    """Canonical name -> the table's header: the explicit mapping, else a header equal to the name
    ignoring case, spaces and dashes; None when neither (an explicit header may still be absent)."""
    by_normal = {_canonical_name(name): name for name in table}
    return {name: explicit.get(name) or by_normal.get(_canonical_name(name)) for name in names}


def _map_columns(table: dict[str, list], source: PipelineSource, path: Path) -> dict[str, str]:
    """Canonical name -> the file's column: explicit mapping first, then a name match."""
    problems = [
        f"{path}: column {wanted!r} (pipeline.columns.{canonical}) is not in the file; "
        f"columns are: {', '.join(table)}"
        for canonical, wanted in source.columns.items()
        if wanted not in table
    ]
    if problems:
        raise PipelineError(problems)
    matched = match_columns(table, CANONICAL_COLUMNS, source.columns)
    return {canonical: header for canonical, header in matched.items() if header is not None}


def _parse_amount(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = normalise(value)
        if text == "":
            raise ValueError("is empty; expected a number >= 0")
        if _THOUSANDS.match(text):
            text = text.replace(",", "")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{number:g} is not a number >= 0")
    return number


def _parse_probability(value: Any, percent: bool) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    number = _parse_amount(value)
    limit = 100.0 if percent else 1.0
    if number > limit:
        scale = (
            "0-100 (probability_scale: percent)"
            if percent
            else "0-1 (set probability_scale: percent for 0-100)"
        )
        raise ValueError(f"{number:g} is out of range; expected {scale}")
    return number / limit


def _parse_date(value: Any, date_format: str | None, setting: str = "pipeline.date_format") -> dt.date:
    """A cell as a date: ISO (a time part is dropped), or ``date_format``; the error names the
    ``setting`` that gives the format."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = normalise(value)
    try:
        if date_format:
            return dt.datetime.strptime(text, date_format).date()
        if len(text) > 10 and text[10] in " T":
            text = text[:10]
        return dt.date.fromisoformat(text)
    except ValueError:
        expected = (
            f"format {date_format!r}" if date_format else f"YYYY-MM-DD, or set {setting} (e.g. '%m/%d/%Y')"
        )
        raise ValueError(f"{text!r} is not a date; expected {expected}") from None


def _parse_count(value: Any) -> int:
    if value is None or normalise(value) == "":
        return 0
    number = _parse_amount(value)
    if not number.is_integer():
        raise ValueError(f"{number:g} is not a whole number")
    return int(number)


def _parse_bool(value: Any) -> bool:
    text = normalise(value).casefold()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true/false (also accepted: yes/no, 1/0)")


def load_deals(source: PipelineSource, path: Path, stages: list[Stage] | None) -> Deals:
    """Read, map, filter and check the pipeline; raise ``PipelineError`` listing every bad row."""
    table, first_row = read_table(path, source.sheet)
    mapping = _map_columns(table, source, path)
    missing = [name for name in REQUIRED + (("stage",) if stages is not None else ()) if name not in mapping]
    if missing:
        raise PipelineError(
            [
                f"{path}: missing column {name!r}; map it with pipeline.columns.{name} "
                f"(columns are: {', '.join(table) or 'none'})"
                for name in missing
            ]
        )
    n_rows = len(next(iter(table.values()), []))
    raw = {canonical: table[name] for canonical, name in mapping.items()}
    keep = np.zeros(n_rows, dtype=bool)  # rows with any non-blank cell; spreadsheets leave ",,,," lines
    for values in table.values():
        keep |= np.array([normalise(value) != "" for value in values], dtype=bool)
    for name, wanted in source.filter.items():
        values = raw.get(name, table.get(name))
        if values is None:
            raise PipelineError(
                f"{path}: pipeline.filter.{name}: no such column (columns are: {', '.join(table)})"
            )
        boolean = name == "new_logo" or name == mapping.get("new_logo")
        keep &= np.isin(np.array([_filter_text(v, boolean) for v in values], dtype=object), _wanted(wanted))
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        what = " after pipeline.filter" if source.filter else ""
        raise PipelineError(f"{path}: the pipeline has no deals{what}")

    stage_lookup = {stage_key(stage.name): i for i, stage in enumerate(stages or [])}
    known = ", ".join(stage.name for stage in stages or [])
    percent = source.probability_scale == "percent"
    n = kept.size
    deal_id = np.empty(n, dtype=object)
    amount = np.zeros(n)
    close_date = np.zeros(n, dtype="datetime64[D]")
    probability = np.full(n, math.nan)
    slip = np.full(n, math.nan)
    stage_index = np.full(n, -1, dtype=np.int64)
    new_logo = np.zeros(n, dtype=bool)
    push_count = np.zeros(n, dtype=np.int64)
    created = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    first_seen: dict[str, int] = {}
    problems: list[str] = []

    for out, row in enumerate(kept):
        row_label = int(row) + first_row
        where = f"{path}: row {row_label}"

        def check(column: str, parse, *args, row=row, where=where):
            try:
                return parse(raw[column][row], *args)
            except ValueError as error:
                problems.append(f"{where}, column {mapping[column]!r} ({column}): {error}")
                return None

        identifier = normalise(raw["deal_id"][row])
        if identifier == "":
            problems.append(f"{where}, column {mapping['deal_id']!r} (deal_id): is empty")
        elif identifier in first_seen:
            problems.append(
                f"{where}, column {mapping['deal_id']!r} (deal_id): "
                f"{identifier!r} duplicates row {first_seen[identifier]}"
            )
        else:
            first_seen[identifier] = row_label
        deal_id[out] = identifier
        amount[out] = check("amount", _parse_amount) or 0.0
        closes = check("close_date", _parse_date, source.date_format)
        close_date[out] = np.datetime64(closes or dt.date(1970, 1, 1), "D")
        parsed = check("probability", _parse_probability, percent) if "probability" in raw else math.nan
        probability[out] = math.nan if parsed is None else parsed
        if "slip" in raw:  # the deal's own slip chance, on the probability's scale
            parsed_slip = check("slip", _parse_probability, percent)
            slip[out] = math.nan if parsed_slip is None else parsed_slip
        if "new_logo" in raw:
            new_logo[out] = bool(check("new_logo", _parse_bool))
        if "push_count" in raw:
            push_count[out] = check("push_count", _parse_count) or 0
        if "created_date" in raw and normalise(raw["created_date"][row]):
            created[out] = check("created_date", _parse_date, source.date_format) or np.datetime64("NaT")
        if "stage" in raw and stages is not None:
            name = normalise(raw["stage"][row])
            index = stage_lookup.get(stage_key(name))
            if index is None:
                problems.append(
                    f"{where}, column {mapping['stage']!r} (stage): "
                    f"unknown stage {name!r}; stages are {known}"
                )
            else:
                stage_index[out] = index
        if stages is None and parsed is not None and math.isnan(parsed):
            column = f", column {mapping['probability']!r} (probability)" if "probability" in raw else ""
            problems.append(
                f"{where}{column}: no probability and the scenario has no stages to fall back on; "
                "expected a probability, or stages in the scenario"
            )
    if problems:
        raise PipelineError(problems)

    attributes = {}
    for name in (*ATTRIBUTES, "stage"):
        if name in raw:
            attributes[name] = np.array([normalise(raw[name][row]) for row in kept], dtype=object)
    for name, values in table.items():
        if name not in attributes and name not in mapping.values():
            attributes[name] = np.array([normalise(values[row]) for row in kept], dtype=object)
    return Deals(
        deal_id=deal_id,
        amount=amount,
        close_date=close_date,
        probability=probability,
        stage_index=stage_index,
        new_logo=new_logo,
        slip=slip,
        push_count=push_count,
        created=created,
        attributes=attributes,
        rows=kept.astype(np.int64) + first_row,
        source=path,
        aliases={
            export: canonical
            for canonical, export in mapping.items()
            if export != canonical and (canonical in attributes or canonical in ("deal_id", "new_logo"))
        },
    )
