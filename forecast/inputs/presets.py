"""How a ``pipeline.preset`` fills a pipeline source for one export: the CRM's standard headers
that the file has, its value mappings and its probability scale, under what the scenario sets."""

from __future__ import annotations

from forecast.config.presets import COLUMN_NAMES, CRM_PRESETS
from forecast.config.scenario import PipelineSource


def _header_key(header: str) -> str:
    return " ".join(str(header).split()).casefold()


def header_names(preset: str | None) -> tuple[str, ...]:
    """Header names that mark a header row (below an export's title rows): the usual English and
    French names of the canonical columns, and the preset's own."""
    names = [name for group in COLUMN_NAMES.values() for name in group]
    if preset is not None:
        names += [name for group in CRM_PRESETS[preset].columns.values() for name in group]
    return tuple(names)


def preset_columns(preset: str, headers: list[str]) -> dict[str, str]:
    """Canonical column -> the header of ``headers`` that the preset names for it (the first of
    its names found, ignoring case and spacing); columns the file lacks are left out."""
    by_key = {_header_key(header): header for header in headers}
    found = {}
    for canonical, names in CRM_PRESETS[preset].columns.items():
        header = next((by_key[_header_key(name)] for name in names if _header_key(name) in by_key), None)
        if header is not None:
            found[canonical] = header
    return found


def with_preset(source: PipelineSource, headers: list[str]) -> PipelineSource:
    """``source`` completed by its preset for a file with these ``headers``.

    Explicit settings always win: a column the scenario maps, a value it maps (per export value),
    a ``probability_scale`` it sets. A header already mapped explicitly is not mapped twice.
    Without a preset, ``source`` is returned as it is.
    """
    if source.preset is None:
        return source
    preset = CRM_PRESETS[source.preset]
    taken = set(source.columns.values())
    columns = {
        canonical: header
        for canonical, header in preset_columns(source.preset, headers).items()
        if canonical not in source.columns and header not in taken
    }
    values = {
        name: dict(mapping) for name, mapping in preset.values.items() if name in {*columns, *source.columns}
    }
    for name, mapping in source.values.items():
        values[name] = {**values.get(name, {}), **mapping}
    update = {"columns": {**columns, **source.columns}, "values": values}
    if "probability_scale" not in source.model_fields_set:
        update["probability_scale"] = preset.probability_scale
    return source.model_copy(update=update)
