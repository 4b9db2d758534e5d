"""The one JSON writer of every ``--json``: strict JSON, never ``Infinity`` or ``NaN``.

``Infinity`` and ``NaN`` are not JSON (strict parsers reject the document). The rule: a
float that is not finite (an infinite count, an undefined ratio) is written as ``null``,
and the writer returns where it did so, for the command to say it on stderr."""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(value: Any, path: str, replaced: list[str]) -> Any:
    """``value`` with every non-finite float replaced by None; their paths appended to ``replaced``."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        replaced.append(path)
        return None
    if isinstance(value, dict):
        return {
            key: _finite(item, f"{path}.{key}" if path else str(key), replaced) for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{path}[{index}]", replaced) for index, item in enumerate(value)]
    return value


def json_text(value: Any) -> tuple[str, list[str]]:
    """The JSON document of a result (indented), and the paths of the numbers written as null."""
    replaced: list[str] = []
    text = json.dumps(_finite(value, "", replaced), indent=2, allow_nan=False)
    return text, replaced


def non_finite_warning(replaced: list[str], shown: int = 5) -> str:
    """One stderr line naming the numbers ``json_text`` wrote as null."""
    more = f", ... {len(replaced) - shown} more" if len(replaced) > shown else ""
    count = "1 number is" if len(replaced) == 1 else f"{len(replaced)} numbers are"
    names = ", ".join(replaced[:shown])
    return f"warning: {count} not finite (infinite or undefined); written as null: {names}{more}"
