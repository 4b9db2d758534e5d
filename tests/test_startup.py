"""What start-up loads: validation never imports numba (nor the other heavy modules only a simulation
or a batch needs), so ``forecast validate`` does not pay for them. Each check runs a fresh interpreter;
the time itself is measured in ``benchmarks/bench_read.py``, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
VALIDATION = (  # what forecast validate imports
    "forecast.cli.commands",
    "forecast.config.loading",
    "forecast.engine.checks",
    "forecast.inputs.pipeline",
    "forecast.analyses.hygiene",
    "forecast.reporting.terminal",
)
HEAVY = ("numba", "llvmlite", "scipy", "numpy.ma", "concurrent.futures")
LOADED = "print(json.dumps(sorted(name for name in sys.modules if name in {heavy!r})))"


def _loaded(code: str, *args: str) -> list[str]:
    """The modules of ``HEAVY`` (as ``code`` names them) loaded once ``code`` has run."""
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_modules_validate_imports_load_no_numba():
    assert _loaded(f"import {', '.join(VALIDATION)}\n{LOADED.format(heavy=HEAVY)}") == []


def test_the_package_root_imports_nothing_until_a_name_is_used():
    code = "import forecast\nprint(json.dumps(sorted(n for n in sys.modules if n.startswith('forecast.'))))"
    assert _loaded(code) == []


MAVEN = (CONFIGS / "../../shared/data/maven-crm-sales-opportunities").resolve()


def test_validate_of_every_shipped_config_loads_no_numba():
    """The command itself, end to end (checks, hygiene, the lines it prints), on every shipped
    scenario, funnel plan and backtest file: numba stays out (scipy may come in, for the largest
    amount multiplier of a scenario with amount noise)."""
    files = sorted(str(path) for path in [*CONFIGS.glob("*.yaml"), *CONFIGS.glob("funnel/*.yaml")])
    if not MAVEN.exists():  # the shipped backtest reads the shared Maven sample, absent from a clean clone
        files.remove(str(CONFIGS / "maven-backtest.yaml"))
    code = (
        "import atexit\n"
        f"atexit.register(lambda: {LOADED.format(heavy=('numba', 'llvmlite'))})\n"
        "sys.argv[0] = 'forecast'\n"
        "from forecast.cli import main\n"
        "main()"
    )
    assert _loaded(code, "validate", *files) == []
