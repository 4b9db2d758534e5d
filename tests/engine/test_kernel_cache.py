"""numba's kernel cache follows edits of the modules the kernels inline, not only of kernels.py.

Each check runs fresh interpreters on a temporary copy of the package: compile, edit a
constant of ``rng.py`` or ``draws.py`` (compiled into the kernels), import again, and compare
with a kernel compiled from the edited source into an empty cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "forecast"

# new-pipeline deals per trial: fixed sizes, so the counts come from the Poisson draws alone
DRAW = """
import numpy as np
from forecast.engine.kernels import new_pipeline_trials
revenue, count = np.zeros(64), np.zeros(64)
new_pipeline_trials(np.uint64(7), 5.0, 1.0, np.ones(1), np.zeros(1), 0, revenue, count)
print(new_pipeline_trials.stats.cache_hits.total(), ",".join(str(int(c)) for c in count))
"""
GOLDEN = "GOLDEN = np.uint64(0x9E3779B97F4A7C15)"
EDITED = "GOLDEN = np.uint64(0x9E3779B97F4A7C17)"
EDITS = {  # module -> (a line of it, the line edited): either changes the counts DRAW prints
    "rng.py": (GOLDEN, EDITED),
    "draws.py": ("POISSON_CHUNK = 500.0", "POISSON_CHUNK = 2.0"),  # 5 deals: three chunks, not one
}


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    shutil.copytree(PACKAGE, root / "forecast", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _draw(root: Path, **environment: str) -> tuple[int, str]:
    """(cache hits, the counts) from a fresh interpreter importing the copy at ``root``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NUMBA_")}
    env.update(PYTHONPATH=str(root), NUMBA_NUM_THREADS="1", **environment)
    done = subprocess.run(
        [sys.executable, "-c", DRAW], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    hits, counts = done.stdout.split()
    return int(hits), counts


def _edit(root: Path, module: str = "rng.py") -> None:
    path = root / "forecast" / "engine" / module
    line, edited = EDITS[module]
    assert line in path.read_text()
    path.write_text(path.read_text().replace(line, edited))


@pytest.mark.parametrize("module", EDITS)
def test_an_edit_of_an_inlined_module_recompiles_the_kernels(tmp_path, module):
    root = _copy(tmp_path)
    hits, before = _draw(root)
    assert (hits, _draw(root)) == (0, (1, before))  # compiled once, then loaded from the cache
    _edit(root, module)
    hits, after = _draw(root)
    assert hits == 0 and after != before
    assert _draw(root, NUMBA_CACHE_DIR=str(tmp_path / "empty")) == (0, after)  # what the edit compiles to
    assert _draw(root) == (1, after)  # and the fresh kernel is cached again


def test_a_read_only_install_uses_the_user_wide_cache(tmp_path):
    """Where the package's folder cannot hold ``__pycache__``, numba caches in the user's cache
    folder (``XDG_CACHE_HOME``); the stamp lives beside that index. A file named ``__pycache__``
    stands in for a read-only folder (root may write anywhere)."""
    root = _copy(tmp_path)
    (root / "forecast" / "engine" / "__pycache__").write_text("")
    user = {"XDG_CACHE_HOME": str(tmp_path / "user-cache")}
    hits, before = _draw(root, **user)
    assert _draw(root, **user) == (1, before)
    stamps = list((tmp_path / "user-cache" / "numba").rglob("kernels.sources.sha256"))
    assert len(stamps) == 1 and list(stamps[0].parent.glob("kernels.new_pipeline_trials-*.nbi"))
    _edit(root)
    hits, after = _draw(root, **user)
    assert hits == 0 and after != before
