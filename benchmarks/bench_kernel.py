"""Benchmark the compiled pipeline kernel against an idiomatic chunked numpy version.

All timings of one run come from one process, so they can be compared as ratios even
on a noisy shared machine. Peak memory is measured in a fresh subprocess per
configuration (see ``--probe``). Run ``python benchmarks/bench_kernel.py --help``.

The kernel is compiled into a private numba cache (shared with the probes) unless
NUMBA_CACHE_DIR is set, so a run neither reads nor fills the package's own cache. (That
cache follows edits of the modules the kernels inline: ``forecast/engine/kernel_cache.py``.)
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

if "NUMBA_CACHE_DIR" not in os.environ:  # must be set before numba is imported
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-kernel-numba-")
    atexit.register(shutil.rmtree, os.environ["NUMBA_CACHE_DIR"], ignore_errors=True)

import llvmlite.binding as llvm  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402

from forecast.engine.correlation import no_correlation
from forecast.engine.draws import lognormal_table
from forecast.engine.kernels import COUNT, MAX_TRIAL_BLOCK, simulate_pipeline, trial_block
from forecast.engine.rng import stream_starts

SIGMA = 0.25  # amount noise of the "lognormal" runs
SEED = 42
CHUNK_BYTES = 8 * 2**20  # numpy: trials per chunk chosen so one float64 chunk matrix is ~8 MiB
MAX_DEAL_TRIALS = 10**9  # larger configurations run only with --full
AMOUNTS = ("lognormal", "fixed")
Z_LIMIT = 5.0

Outputs = tuple[np.ndarray, np.ndarray, np.ndarray]  # revenue, slipped, count; one value per trial


@dataclass(frozen=True)
class Pipeline:
    """A synthetic pipeline: per-deal model parameters and the kernel's encoded inputs."""

    p_win: np.ndarray
    p_land: np.ndarray
    value: np.ndarray
    dated_inside: np.ndarray
    member: np.ndarray  # deals counted by the count metric
    starts: np.ndarray
    win_threshold: np.ndarray
    land_threshold: np.ndarray
    metric_start: np.ndarray
    metric_index: np.ndarray

    @property
    def deals(self) -> int:
        return self.value.shape[0]


def make_pipeline(deals: int) -> Pipeline:
    """Random B2B-like pipeline: win rates U(0.05, 0.6), land rates U(0.6, 1)."""
    rs = np.random.default_rng(1)
    starts = stream_starts(np.uint64(SEED), rs.integers(0, 2**63, deals).astype(np.uint64))
    p_win = rs.uniform(0.05, 0.6, deals)
    p_land = rs.uniform(0.6, 1.0, deals)
    value = rs.lognormal(10, 1, deals)
    dated_inside = rs.uniform(size=deals) < 0.7
    member = rs.uniform(size=deals) < 0.3
    return Pipeline(
        p_win=p_win,
        p_land=p_land,
        value=value,
        dated_inside=dated_inside,
        member=member,
        starts=starts,
        win_threshold=np.round(p_win * 2**32).astype(np.int64),
        land_threshold=np.round(p_land * 2**32).astype(np.int64),
        metric_start=np.concatenate([[0], np.cumsum(member)]).astype(np.int64),
        metric_index=np.zeros(member.sum(), np.int64),
    )


def noise_tables(amounts: str) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's amount-multiplier table, or length-1 arrays for fixed amounts."""
    return lognormal_table(SIGMA) if amounts == "lognormal" else (np.ones(1), np.zeros(1))


def run_kernel(pipe: Pipeline, trials: int, tables: tuple[np.ndarray, np.ndarray]) -> Outputs:
    """One call of the compiled kernel, output allocation included."""
    revenue = np.empty(trials)
    slipped = np.empty(trials)
    metrics = np.empty((1, trials))
    simulate_pipeline(
        pipe.starts,
        pipe.win_threshold,
        pipe.land_threshold,
        pipe.value,
        pipe.dated_inside,
        *tables,
        pipe.metric_start,
        pipe.metric_index,
        np.array([COUNT], np.int64),
        no_correlation(len(pipe.starts)),
        0,
        trial_block(trials, numba.get_num_threads()),
        revenue,
        slipped,
        metrics,
    )
    return revenue, slipped, metrics[0]


def run_numpy(pipe: Pipeline, trials: int, sigma: float, seed: int = SEED) -> Outputs:
    """The same model in chunked numpy: trials x deals matrices of ~8 MiB per chunk.

    One uniform per deal and trial decides both events: a deal is won if
    ``u < p_win`` and a won deal lands if ``u < p_win * p_land`` (so it lands with
    probability ``p_land`` given won). Multipliers are drawn only for won deals.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_BYTES // (8 * pipe.deals))
    p_landed = pipe.p_win * pipe.p_land
    p_slipped = np.where(pipe.dated_inside, pipe.p_win, p_landed)  # p_landed <= u < this: slipped
    revenue = np.empty(trials)
    slipped = np.empty(trials)
    count = np.empty(trials)
    draws = np.empty((chunk, pipe.deals))
    amounts = np.empty((chunk, pipe.deals)) if sigma else None
    for lo in range(0, trials, chunk):
        n = min(chunk, trials - lo)
        u = draws[:n]
        rng.random(out=u)
        landed = u < p_landed
        slip = (u < p_slipped) & ~landed
        if amounts is None:
            amount = pipe.value
        else:
            won = u < pipe.p_win
            multiplier = rng.standard_normal(np.count_nonzero(won))
            multiplier *= sigma
            multiplier -= 0.5 * sigma**2
            np.exp(multiplier, out=multiplier)
            amount = amounts[:n]
            amount.fill(0.0)
            amount[won] = multiplier
            amount *= pipe.value
        revenue[lo : lo + n] = np.where(landed, amount, 0.0).sum(axis=1)
        slipped[lo : lo + n] = np.where(slip, amount, 0.0).sum(axis=1)
        count[lo : lo + n] = np.count_nonzero(landed & pipe.member, axis=1)
    return revenue, slipped, count


def best_of(run: Callable[[], Outputs], repeats: int) -> tuple[float, Outputs]:
    """Best wall time of ``repeats`` calls, and the outputs of the last one."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = run()
        best = min(best, time.perf_counter() - start)
    return best, outputs


def z_scores(a: Outputs, b: Outputs) -> list[float]:
    """Difference of means over its standard error, per output."""
    return [
        (x.mean() - y.mean()) / np.sqrt(x.var(ddof=1) / x.size + y.var(ddof=1) / y.size)
        for x, y in zip(a, b, strict=True)
    ]


# --- memory probe (runs in a fresh subprocess per configuration) ---------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def peak_rss_growth_mb(run: Callable[[], object]) -> float:
    """Peak resident memory during ``run()`` minus resident memory before it, MiB.

    On Linux the peak (VmHWM) is reset first through /proc/self/clear_refs, so
    earlier peaks (imports, set-up) cannot hide this one. Elsewhere it falls back
    to the growth of ru_maxrss, which under-reports if an earlier peak was higher.
    """
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run()
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    before = _status_kib("VmRSS")
    run()
    return (_status_kib("VmHWM") - before) / 1024


def traced_peak_mb(run: Callable[[], object]) -> float:
    """Peak of memory allocated through Python and numpy during ``run()``, MiB."""
    gc.collect()
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def probe(impl: str, amounts: str, deals: int, trials: int) -> None:
    """Print the peak memory of one configuration as JSON (subprocess entry point)."""
    pipe = make_pipeline(deals)
    if impl == "kernel":
        tables = noise_tables(amounts)
        run_kernel(pipe, 10, tables)  # tiny warm-up: load the compiled kernel, start its threads
        run = partial(run_kernel, pipe, trials, tables)
    else:
        run = partial(run_numpy, pipe, trials, SIGMA if amounts == "lognormal" else 0.0)
    print(json.dumps({"rss_mb": peak_rss_growth_mb(run), "traced_mb": traced_peak_mb(run)}))


def measure_memory(impl: str, amounts: str, deals: int, trials: int) -> dict[str, float]:
    """Run ``probe`` in a fresh interpreter and return its result."""
    command = [sys.executable, __file__, "--probe", impl, amounts, str(deals), str(trials)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.splitlines()[-1])


# --- the benchmark ----------------------------------------------------------------------


@dataclass
class Row:
    """One implementation on one configuration."""

    deals: int
    trials: int
    amounts: str
    impl: str
    trials_timed: int
    seconds: float
    rss_mb: float
    traced_mb: float

    @property
    def ns_per_deal_trial(self) -> float:
        return self.seconds / (self.deals * self.trials_timed) * 1e9


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else the machine type."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def environment() -> str:
    """One paragraph describing the machine and library versions."""
    features = llvm.get_host_cpu_features()
    avx2, avx512 = ("yes" if features.get(flag, False) else "no" for flag in ("avx2", "avx512f"))
    return (
        f"CPU: {cpu_model()}, LLVM target {llvm.get_host_cpu_name()}, AVX2 {avx2}, AVX-512 {avx512}; "
        f"kernel threads: {numba.get_num_threads()}; numpy single-threaded. "
        f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}."
    )


def benchmark(
    sizes: list[tuple[int, int]], repeats: int, numpy_budget: int
) -> tuple[list[Row], list[tuple[int, int, str, Outputs, Outputs]]]:
    """Time and memory-probe every implementation on every size; keep outputs for checks."""
    rows: list[Row] = []
    samples = []
    pipes: dict[int, Pipeline] = {}
    for deals, trials in sizes:
        if deals not in pipes:
            pipes[deals] = make_pipeline(deals)
        pipe = pipes[deals]
        numpy_trials = min(trials, max(1, numpy_budget // deals))
        for amounts in AMOUNTS:
            sigma = SIGMA if amounts == "lognormal" else 0.0
            kernel_s, kernel_out = best_of(partial(run_kernel, pipe, trials, noise_tables(amounts)), repeats)
            numpy_s, numpy_out = best_of(partial(run_numpy, pipe, numpy_trials, sigma), repeats)
            for impl, n, seconds in (("kernel", trials, kernel_s), ("numpy", numpy_trials, numpy_s)):
                mem = measure_memory(impl, amounts, deals, n)
                rows.append(Row(deals, trials, amounts, impl, n, seconds, mem["rss_mb"], mem["traced_mb"]))
            samples.append((deals, trials, amounts, kernel_out, numpy_out))
            print(f"  done: {deals:,} deals x {trials:,} trials, {amounts} amounts", file=sys.stderr)
    return rows, samples


def thread_scaling(deals: int, trials: int, repeats: int) -> list[tuple[int, float, bool]]:
    """(threads, best seconds, outputs identical to one thread) with amount noise on."""
    run = partial(run_kernel, make_pipeline(deals), trials, noise_tables("lognormal"))
    results = []
    reference = None
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        seconds, outputs = best_of(run, repeats)
        if reference is None:
            reference = outputs
        identical = all(np.array_equal(a, b) for a, b in zip(outputs, reference, strict=True))
        results.append((threads, seconds, identical))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return results


def markdown(header: list[str], lines: list[list[str]]) -> str:
    """A markdown table."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def report_rows(rows: list[Row]) -> str:
    """The timing and memory table; speed-up is numpy over kernel, per deal-trial."""
    numpy_ns = {(r.deals, r.trials, r.amounts): r.ns_per_deal_trial for r in rows if r.impl == "numpy"}
    lines = []
    for r in rows:
        ns = r.ns_per_deal_trial
        subset = "" if r.trials_timed == r.trials else " *"
        speedup = numpy_ns[r.deals, r.trials, r.amounts] / ns
        lines.append(
            [
                f"{r.deals:,}",
                f"{r.trials:,}",
                r.amounts,
                r.impl,
                f"{r.trials_timed:,}{subset}",
                f"{r.seconds:.3f}",
                f"{1e9 / ns:.3g}",
                f"{ns:.2f}",
                f"{speedup:.1f}x" if r.impl == "kernel" else "1",
                f"{r.rss_mb:.1f}",
                f"{r.traced_mb:.1f}",
            ]
        )
    header = [
        "deals",
        "trials",
        "amounts",
        "impl",
        "trials timed",
        "best time (s)",
        "deal-trials/s",
        "ns/deal-trial",
        "speed-up vs numpy",
        "peak RSS growth (MiB)",
        "tracemalloc peak (MiB)",
    ]
    return markdown(header, lines)


def report_checks(samples: list[tuple[int, int, str, Outputs, Outputs]]) -> tuple[str, bool]:
    """The kernel-vs-numpy z-score table, and whether every |z| is below the limit."""
    lines = []
    ok_all = True
    for deals, trials, amounts, kernel_out, numpy_out in samples:
        z = z_scores(kernel_out, numpy_out)
        ok = max(abs(v) for v in z) < Z_LIMIT
        ok_all &= ok
        lines.append(
            [
                f"{deals:,}",
                f"{trials:,}",
                amounts,
                f"{kernel_out[0].mean():.6g}",
                f"{numpy_out[0].mean():.6g} (n={numpy_out[0].size:,})",
                *(f"{v:+.2f}" for v in z),
                "ok" if ok else "FAIL",
            ]
        )
    header = ["deals", "trials", "amounts", "kernel mean revenue", "numpy mean revenue"]
    header += ["z revenue", "z slipped", "z count", f"|z| < {Z_LIMIT:g}"]
    return markdown(header, lines), ok_all


def report_threads(deals: int, trials: int, results: list[tuple[int, float, bool]]) -> str:
    """The thread-scaling table of one size."""
    one = results[0][1]
    lines = [
        [
            f"{deals:,}",
            f"{trials:,}",
            str(threads),
            f"{seconds:.3f}",
            f"{seconds / (deals * trials) * 1e9:.2f}",
            f"{one / seconds:.2f}x",
            "yes" if identical else "NO",
        ]
        for threads, seconds, identical in results
    ]
    header = ["deals", "trials", "threads", "best time (s)", "ns/deal-trial", "vs 1 thread", "bit-identical"]
    return markdown(header, lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--full", action="store_true", help=f"run sizes over {MAX_DEAL_TRIALS:.0e} deal-trials"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, best kept (default 3)")
    parser.add_argument("--probe", nargs=4, help=argparse.SUPPRESS)  # impl amounts deals trials
    args = parser.parse_args()
    if args.probe:
        impl, amounts, deals, trials = args.probe
        probe(impl, amounts, int(deals), int(trials))
        return 0

    if args.quick:
        deal_sizes, trial_sizes, numpy_budget = (1_000, 10_000), (10_000,), 5 * 10**6
        thread_sizes = [(1_000, 10_000)]
        repeats = args.repeats or 2
    else:
        deal_sizes, trial_sizes, numpy_budget = (1_000, 10_000, 100_000), (10_000, 100_000), 5 * 10**7
        thread_sizes = [(10_000, 100_000), (10_000, 10_000)]
        repeats = args.repeats or 3
    sizes = [(d, t) for d in deal_sizes for t in trial_sizes]
    skipped = [(d, t) for d, t in sizes if d * t > MAX_DEAL_TRIALS and not args.full]
    sizes = [s for s in sizes if s not in skipped]

    run_kernel(make_pipeline(10), 10, noise_tables("lognormal"))  # compile outside the timings
    rows, samples = benchmark(sizes, repeats, numpy_budget)
    threads = [(d, t, thread_scaling(d, t, repeats)) for d, t in thread_sizes]
    checks, checks_ok = report_checks(samples)

    print(f"## Kernel benchmark\n\n{environment()}\n")
    print(f"Best of {repeats} repeats; kernel compile excluded (warmed up first).")
    print(f"numpy: chunks of ~{CHUNK_BYTES / 2**20:.0f} MiB per trials x deals float64 matrix.")
    print(
        f"* numpy timed on a subset of trials (about {numpy_budget:.0e} deal-trials) and reported per "
        "deal-trial; its speed does not depend on the number of trials. Speed-up is the ratio of ns "
        "per deal-trial, numpy over kernel."
    )
    if skipped:
        print("Skipped (use --full): " + ", ".join(f"{d:,} deals x {t:,} trials" for d, t in skipped) + ".")
    print(f"\n{report_rows(rows)}\n")
    kernel_rss = [r.rss_mb for r in rows if r.impl == "kernel"]
    largest = max(r.trials for r in rows)
    print(
        f"Kernel peak RSS growth over all sizes: {min(kernel_rss):.1f} to {max(kernel_rss):.1f} MiB "
        f"(its outputs alone are 24 bytes per trial = {24 * largest / 2**20:.1f} MiB at {largest:,} trials). "
        "tracemalloc sees only numpy-allocated memory: for the kernel just its output arrays, not its "
        f"per-thread block buffers of up to {MAX_TRIAL_BLOCK} trials.\n"
    )
    print(f"### Statistical agreement (kernel vs numpy, means of per-trial outputs)\n\n{checks}\n")
    print("### Thread scaling (kernel, lognormal amounts)\n")
    print("\n\n".join(report_threads(d, t, r) for d, t, r in threads) + "\n")
    identical = all(same for _, _, results in threads for _, _, same in results)
    if not checks_ok:
        print("FAILED: kernel and numpy disagree statistically.")
    if not identical:
        print("FAILED: kernel outputs differ across thread counts.")
    return 0 if checks_ok and identical else 1


if __name__ == "__main__":
    sys.exit(main())
