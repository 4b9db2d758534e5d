"""The allowed imports between the package's layers, read from every module's source with ``ast``.

Data flows one way: errors < config < inputs < engine < {analyses, history} < reporting < cli.
A module imports its own layer and the layers below it; analyses and history do not import
each other; ``forecast/__init__.py`` only re-exports. Imports inside functions count too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "forecast"

RANK = {"errors": 0, "config": 1, "inputs": 2, "engine": 3, "analyses": 4, "history": 4,
        "reporting": 5, "cli": 6, "__main__": 7}  # fmt: skip

FORBIDDEN = {  # (importer, what it imports): edges the layer ranks allow but a module's job does not
    ("forecast.engine.summary", "forecast.engine.simulate.simulate"),  # statistics never re-simulate
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted target) of every import of a ``forecast`` module in ``path``, wherever it stands.

    ``from forecast.a import b`` gives ``forecast.a.b`` (``b`` may be a module or a name in ``a``);
    relative imports are resolved against the module's package.
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return [(line, target) for line, target in out if target.split(".")[0] == "forecast"]


def layer(dotted: str) -> str | None:
    """The layer of ``forecast.<layer>...`` (None for the package root itself)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_problems(path: Path) -> list[str]:
    """Every import in ``path`` that goes up, or sideways between analyses and history."""
    name = _module_name(path)
    if name == "forecast":
        return []  # the public API: see test_the_package_root_only_re_exports
    own = layer(name)
    where = path.relative_to(PACKAGE.parent)
    if own not in RANK:
        return [f"{where}: layer {own!r} is not in RANK; add it where it belongs in the data flow"]
    below = sorted((other for other, rank in RANK.items() if rank < RANK[own]), key=RANK.get)
    out = []
    for line, target in imports(path):
        other = layer(target)
        if other is None:
            out.append(f"{where}:{line} imports {target}: the package root re-exports the layers above")
        elif other not in RANK:
            out.append(f"{where}:{line} imports {target}: layer {other!r} is not in RANK")
        elif other != own and RANK[other] >= RANK[own]:
            out.append(
                f"{where}:{line} imports {target}: {own} may import only {', '.join(below) or 'nothing'}"
            )
    return out


def forbidden_imports(path: Path) -> list[str]:
    """Every import in ``path`` that ``FORBIDDEN`` names."""
    name, where = _module_name(path), path.relative_to(PACKAGE.parent)
    return [
        f"{where}:{line} imports {target}: forbidden in {name}"
        for line, target in imports(path)
        for importer, banned in FORBIDDEN
        if name == importer and (target == banned or target.startswith(banned + "."))
    ]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_imports_only_the_layers_below_it():
    found = [problem for path in MODULES for problem in layer_problems(path)]
    assert not found, "imports against the data flow:\n" + "\n".join(found)


def test_no_forbidden_imports_within_a_layer():
    found = [problem for path in MODULES for problem in forbidden_imports(path)]
    assert not found, "forbidden imports:\n" + "\n".join(found)


def test_the_output_writer_knows_nothing_of_the_engine():
    """The atomic writer takes bytes and tables, not results: it imports only the errors it raises."""
    path = PACKAGE / "inputs" / "output.py"
    assert {target for _, target in imports(path)} <= {"forecast.errors.OutputError"}


ROOT_STATEMENTS = {  # what forecast/__init__.py may hold besides its docstring
    ast.Import: {"importlib"},
    ast.Assign: {"_EXPORTS", "__all__"},
    ast.FunctionDef: {"__getattr__", "__dir__"},
}


def test_the_package_root_only_re_exports():
    """The root holds its docstring, the lazy ``_EXPORTS`` mapping, ``__all__`` and the two PEP 562
    hooks; every exported name comes from a module of a layer, is listed in ``__all__``, and is that
    module's own object."""
    path = PACKAGE / "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        elif isinstance(node, ast.Assign):
            names = {target.id for target in node.targets if isinstance(target, ast.Name)}
            literals.update(dict.fromkeys(names, ast.literal_eval(node.value)))
        elif isinstance(node, ast.FunctionDef):
            names = {node.name}
        else:
            names = None
        if not names or not names <= ROOT_STATEMENTS.get(type(node), set()):
            pytest.fail(
                f"forecast/__init__.py:{node.lineno}: only a docstring, import importlib, _EXPORTS, "
                "__all__, __getattr__ and __dir__ belong here"
            )
    exports, listed = literals["_EXPORTS"], literals["__all__"]
    assert sorted(exports) == sorted(listed) and len(set(listed)) == len(listed)
    assert not [module for module in exports.values() if layer(module) not in RANK]
    import forecast

    for name, module in exports.items():
        assert getattr(forecast, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        forecast.nothing  # noqa: B018


def test_the_check_sees_upward_sideways_and_nested_imports(tmp_path, monkeypatch):
    """The checker itself: a bad import at module level or inside a function is reported."""
    root = tmp_path / "forecast"
    for folder in ("engine", "history", "analyses"):
        (root / folder).mkdir(parents=True)
    (root / "engine" / "upward.py").write_text("def f():\n    from forecast.history.rates import beta_rate\n")
    (root / "history" / "sideways.py").write_text("import forecast.analyses.plans\n")
    (root / "analyses" / "relative.py").write_text("from ..history import rates\nfrom . import plans\n")
    (root / "engine" / "summary.py").write_text("from forecast.engine.simulate import Forecast, simulate\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", root)
    assert layer_problems(root / "engine" / "upward.py") == [
        "forecast/engine/upward.py:2 imports forecast.history.rates.beta_rate: "
        "engine may import only errors, config, inputs"
    ]
    assert layer_problems(root / "history" / "sideways.py") == [
        "forecast/history/sideways.py:1 imports forecast.analyses.plans: "
        "history may import only errors, config, inputs, engine"
    ]
    assert layer_problems(root / "analyses" / "relative.py") == [
        "forecast/analyses/relative.py:1 imports forecast.history.rates: "
        "analyses may import only errors, config, inputs, engine"
    ]
    assert forbidden_imports(root / "engine" / "summary.py") == [
        "forecast/engine/summary.py:1 imports forecast.engine.simulate.simulate: "
        "forbidden in forecast.engine.summary"
    ]
