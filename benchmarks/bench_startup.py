"""Benchmark CLI start-up: cold (empty numba cache), warm (cache filled), against ``import numpy``.

Each command runs in a fresh subprocess; wall time, median of ``--repeats``. Ratios are
against ``python -c "import numpy"`` measured in the same run, since absolute times on a
shared machine vary from one run to the next. Run from the repository root:
``python benchmarks/bench_startup.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "example.yaml"
CLI = [sys.executable, "-m", "forecast", "run", str(CONFIG)]
BASELINE = [sys.executable, "-c", "import numpy"]


def wall_time(command: list[str], env: dict[str, str]) -> float:
    """Wall time of one run of ``command``, seconds; raises CalledProcessError on failure."""
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement, median kept")
    args = parser.parse_args()

    base_env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    cold, warm = [], []
    try:
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
                env = {**base_env, "NUMBA_CACHE_DIR": cache}
                cold.append(wall_time(CLI, env))  # empty cache: compile included
                warm.append(wall_time(CLI, env))  # same cache, now filled
    except (subprocess.CalledProcessError, OSError) as error:
        stderr = getattr(error, "stderr", "") or ""
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else str(error)
        command = "python " + " ".join(CLI[1:])
        print(f"`{command}` failed, so start-up was not measured (is the CLI there yet?): {detail}")
        return 0
    baseline = [wall_time(BASELINE, base_env) for _ in range(args.repeats)]

    rows = [
        ("`import numpy` (baseline)", baseline),
        ("cold: empty NUMBA_CACHE_DIR", cold),
        ("warm: cache filled", warm),
    ]
    reference = statistics.median(baseline)
    print(f"Median of {args.repeats} runs, wall time, fresh process each.\n")
    print("| command | median (s) | vs `import numpy` |\n|---|---|---|")
    for name, times in rows:
        median = statistics.median(times)
        print(f"| {name} | {median:.3f} | {median / reference:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
