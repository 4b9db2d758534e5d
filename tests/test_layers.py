"""The layers import only the layers below them: config -> inputs -> engine -> analyses, history
-> reporting -> cli (``errors`` is everyone's)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "forecast"
RANK = {"errors": 0, "config": 1, "inputs": 2, "engine": 3, "analyses": 4, "history": 4, "reporting": 5,
        "cli": 6}  # fmt: skip


def imported(path: Path) -> set[str]:
    """The ``forecast`` modules a file imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] == "forecast"}


def _layer(module: str) -> str:
    """``forecast.engine.simulate`` -> ``engine``; the package itself (it imports all) -> ``forecast``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "forecast"


LAYERED = sorted(path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] in RANK)


@pytest.mark.parametrize("path", LAYERED, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_a_layer_imports_only_the_layers_below(path):
    layer = path.relative_to(PACKAGE).parts[0]
    below = [
        name for name in imported(path) if _layer(name) == layer or RANK.get(_layer(name), 99) < RANK[layer]
    ]
    assert sorted(imported(path) - set(below)) == []


def test_the_output_writer_knows_nothing_of_the_engine():
    assert imported(PACKAGE / "inputs" / "output.py") == {"forecast.errors"}
