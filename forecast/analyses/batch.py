"""forecast batch: many scenarios (and their sweeps and plans), one summary row each.

Jobs carry their validated scenario and the hashes of what it was computed from,
so they can run in this process, in local worker processes, or on a Dask cluster
through the same ``concurrent.futures`` interface, with identical rows. A scenario
is validated once, when the batch is planned; a pipeline is parsed once per worker
(keyed by its path and content hash), however many scenarios share it."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.errors import ForecastError, NotAScenarioError, OutputError, PipelineError

SCENARIO_SUFFIXES = (".yaml", ".yml")
META = ("job", "path", "sweep", "plan", "content_hash", "seed", "trials", "wall_time_s", "error")
TEXT_COLUMNS = ("path", "sweep", "plan", "content_hash", "error", "scenario", "file")  # never numbers
PROBLEM_SEPARATOR = " | "  # between the problems of one failed scenario in its error cell


@dataclass(frozen=True)
class Job:
    """One scenario variant to run: everything a worker needs, picklable for processes and Dask."""

    order: int  # position in the batch: rows are written in this order
    path: str
    sweep: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""  # of the scenario text, its calibration fragment, pipeline and sweep values
    seed: int | None = None
    trials: int | None = None
    scenario: Any = field(default=None, repr=False, compare=False)  # the validated variant
    pipeline_hash: str = ""  # of the pipeline file's bytes when the batch was planned
    error: str | None = None  # the job failed before it could run (unreadable or invalid scenario)

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.sweep.items())


@dataclass
class BatchPlan:
    """The jobs of a batch, and the files in folders or globs skipped as not scenarios, with what they are."""

    jobs: list[Job]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def scenario_files(paths: Iterable[str]) -> dict[Path, bool]:
    """Scenario files named by PATHS (files, folders searched recursively, or globs), in order.

    Each maps to whether it was named itself (True) or found in a folder or glob (False).
    """
    files: dict[Path, bool] = {}
    missing = []
    for text in paths:
        path = Path(text)
        named = path.is_file()
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in SCENARIO_SUFFIXES and p.is_file()
            )
        elif named:
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            missing.append(f"{text}: no scenario file, folder or matching glob")
        for file in found:
            resolved = file.resolve()
            files[resolved] = files.get(resolved, False) or named
    if missing:
        raise ForecastError(missing)
    return files


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _digest(*hashes: bytes) -> str:
    """One hash of several parts' hashes."""
    hasher = hashlib.sha256()
    for part in hashes:
        hasher.update(part)
    return hasher.hexdigest()


def _file_sha(path: Path) -> bytes:
    """The hash of a file's bytes; of nothing when it is missing (its job fails and is retried)."""
    return _sha(path.read_bytes() if path.is_file() else b"")


def derived_seed(batch_seed: int, content_hash: str) -> int:
    """A scenario's seed in a batch when its file sets none: the same in any batch that has it."""
    digest = hashlib.blake2b(f"{batch_seed}:{content_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def problem_text(error: ForecastError) -> str:
    """A failure as one cell: its first problems, then how many more (as ``forecast run`` prints them)."""
    return PROBLEM_SEPARATOR.join(error.lines)


def plan_jobs(files: dict[Path, bool], batch_seed: int, trials: int | None = None) -> BatchPlan:
    """Validate every file and expand its sweep into jobs with content hashes and seeds.

    A bad file becomes one error job; another forecast file (funnel plan, backtest, calibration
    fragment) found in a folder or glob is skipped (named, it is an error job saying what reads it).
    """
    from forecast.config.loading import OTHER_FILES, calibration_path
    from forecast.config.sweeps import sweep_variants

    plan = BatchPlan([])
    file_sha: dict[Path, bytes] = {}  # each input file read once

    def sha_of(path: Path) -> bytes:
        if path not in file_sha:
            file_sha[path] = _file_sha(path)
        return file_sha[path]

    for path, named in files.items():
        text = b""
        try:
            text = path.read_bytes()
            variants = sweep_variants(text.decode("utf-8"), path)
        except Exception as error:  # one unreadable scenario must not end the batch
            if isinstance(error, NotAScenarioError) and not named:
                plan.skipped.append((path, OTHER_FILES[error.kind]))
                continue
            if isinstance(error, ForecastError):
                message = problem_text(error)
            elif isinstance(error, (OSError, UnicodeDecodeError)):
                message = f"{path}: {error}"
            else:
                message = f"{path}: unexpected failure ({type(error).__name__}: {error})"
            plan.jobs.append(Job(len(plan.jobs), str(path), content_hash=_digest(_sha(text)), error=message))
            continue
        for values, scenario in variants:
            pipeline = sha_of(scenario.pipeline_path)
            parts = [_sha(text), pipeline, _sha(json.dumps(values, sort_keys=True).encode())]
            if scenario.calibration is not None:
                parts.append(sha_of(calibration_path(scenario.calibration, scenario.source)))
            content = _digest(*parts)
            explicit = "seed" in scenario.simulation.model_fields_set
            seed = scenario.simulation.seed if explicit else derived_seed(batch_seed, content)
            plan.jobs.append(
                Job(len(plan.jobs), str(path), values, content, seed, trials or scenario.simulation.trials,
                    scenario, pipeline.hex())
            )  # fmt: skip
    return plan


_PIPELINES: dict[tuple, Any] = {}  # per process: (file, content hash, reading settings) -> Deals or error


def _deals(scenario, pipeline_hash: str):
    """The scenario's deals, parsed once per process for every scenario that shares the file.

    The key holds the file's content hash from planning, so an edited file is read again;
    a file that no longer has that content is refused rather than run under the old hash.
    """
    from forecast.inputs.fx import currency_rates
    from forecast.inputs.pipeline import load_deals

    path = scenario.pipeline_path
    read = {"name", "status", "aliases"}  # what load_deals reads of a stage: a swept win rate shares the read
    stages = (
        None if scenario.stages is None else [stage.model_dump(include=read) for stage in scenario.stages]
    )
    fx = currency_rates(scenario)
    key = (
        str(path), pipeline_hash, scenario.pipeline.model_dump_json(), json.dumps(stages),
        None if fx is None else json.dumps([fx.base, sorted(fx.rates.items())]),
    )  # fmt: skip
    if key not in _PIPELINES:
        try:
            deals = load_deals(scenario.pipeline, path, scenario.stages, fx)
            if _file_sha(path).hex() != pipeline_hash:
                raise PipelineError(f"{path}: changed while the batch ran; finish it with --resume")
            _PIPELINES[key] = deals
        except PipelineError as error:
            _PIPELINES[key] = error
    if isinstance(_PIPELINES[key], ForecastError):
        raise _PIPELINES[key]
    return _PIPELINES[key]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested results -> one level of dotted columns; lists of named items are keyed by name."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(item, dict) and "name" in item for item in value):
        out = {}
        for item in value:
            rest = {key: val for key, val in item.items() if key != "name"}
            out.update(flatten(rest, f"{prefix}.{item['name']}"))
        return out
    if isinstance(value, list):
        return {prefix: json.dumps(value)}
    return {prefix: value}


def _text(value: Any) -> str:
    """Sweep values as text, so one column can hold 2026-Q4 and 2026, or 0.1 and '1.1e6'."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def resume_key(row: dict[str, Any]) -> tuple:
    """What makes a finished row the same job: file, sweep values, content, seed and trials."""
    return (
        row["path"],
        row["sweep"] or "",
        row["content_hash"],
        int(row["seed"] or 0),
        int(row["trials"] or 0),
    )


def _job_key_row(job: Job) -> dict[str, Any]:
    return {"path": job.path, "sweep": job.label, "content_hash": job.content_hash, "seed": job.seed,
            "trials": job.trials}  # fmt: skip


def run_job(job: Job, single_thread: bool = False) -> list[dict[str, Any]]:
    """Run one job; never raises: a failure is a row with its message in ``error``."""
    started = time.perf_counter()
    meta = {
        "job": job.order,
        "path": job.path,
        "sweep": job.label,
        "content_hash": job.content_hash,
        "seed": job.seed,
        "trials": job.trials,
        **{f"sweep.{key}": _text(value) for key, value in job.sweep.items()},
    }
    if single_thread:
        import numba

        numba.set_num_threads(1)  # one core per worker: no oversubscription
    try:
        if job.error is not None:
            raise ForecastError(job.error)
        from forecast.analyses.compare import compare_plans

        scenario = job.scenario
        deals = _deals(scenario, job.pipeline_hash)
        results = compare_plans(scenario, deals, trials=job.trials, seed=job.seed, levels=())
        rows = []
        for result in results:
            result.pop("required_extra_pipeline", None)
            rows.append({**meta, **flatten(result), "error": None})
        if not scenario.plans:
            for row in rows:
                row.pop("plan", None)
                for key in [key for key in row if key.startswith("delta_vs_base.")]:
                    del row[key]
    except ForecastError as error:
        rows = [{**meta, "error": problem_text(error)}]
    except Exception as error:  # a crash in one scenario must not end the batch
        rows = [{**meta, "error": f"unexpected failure ({type(error).__name__}: {error})"}]
    wall = time.perf_counter() - started
    for row in rows:
        row["wall_time_s"] = wall
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows already in an output file (for --resume); none if it does not exist."""
    if not path.exists():
        return []
    import pyarrow as pa

    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pacsv

            names = pacsv.open_csv(path).schema.names
            text = {name: pa.string() for name in names if name.startswith("sweep") or name in TEXT_COLUMNS}
            table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=text))
            for index, column in enumerate(table.schema):  # CSV reading guessed dates: back to text
                if pa.types.is_temporal(column.type) or pa.types.is_null(column.type):
                    table = table.set_column(index, column.name, table.column(index).cast(pa.string()))
        return table.to_pylist()
    except Exception as error:
        raise OutputError(f"{path}: cannot read it to resume: {error}") from None


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    """All rows so far, in job order, atomically (a killed batch keeps every finished chunk)."""
    import pyarrow as pa

    from forecast.inputs.output import write_table

    ordered = sorted(rows, key=lambda row: row["job"])  # stable: a job's plans keep their order
    columns = list(dict.fromkeys([*META, *(key for row in ordered for key in row)]))
    try:
        table = pa.Table.from_pylist([{key: row.get(key) for key in columns} for row in ordered])
    except pa.ArrowException as error:  # e.g. a column whose values mix types
        raise OutputError(f"{path}: cannot build the results table: {error}") from None
    write_table(table, path)


@dataclass
class BatchReport:
    """What a batch left in its file: every row, and how many jobs ran, were kept or failed."""

    rows: list[dict[str, Any]]
    ran: int
    skipped: int  # jobs whose rows an earlier run left in the file (--resume)
    failed: list[dict[str, Any]]  # every row of the file with an error
    dropped: int = 0  # rows of an earlier run not kept: failed, computed from other inputs, or gone


def _reusable(old: list[dict[str, Any]], jobs: list[Job]) -> tuple[list[dict[str, Any]], list[Job]]:
    """Rows of an earlier run that a job of this batch can keep, renumbered to it; the jobs left to run.

    A row is kept only when its job is in this batch with the same inputs (path, sweep,
    content hash, seed, trials) and it did not fail: failed and outdated rows are redone.
    """
    waiting: dict[tuple, list[Job]] = {}
    for job in jobs:
        if job.error is None:
            waiting.setdefault(resume_key(_job_key_row(job)), []).append(job)
    by_job: dict[Any, list[dict[str, Any]]] = {}
    for row in old:  # a job's rows (its plans) are written together
        by_job.setdefault(row["job"], []).append(row)
    kept: list[dict[str, Any]] = []
    done: set[int] = set()
    for rows in by_job.values():
        candidates = waiting.get(resume_key(rows[0]), [])
        if candidates and not any(row.get("error") for row in rows):
            job = candidates.pop(0)
            done.add(job.order)
            kept += [{**row, "job": job.order} for row in rows]
    return kept, [job for job in jobs if job.order not in done]


def run_batch(
    jobs: list[Job],
    out: Path,
    executor: Executor | None = None,
    resume: bool = False,
    flush_every: int | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> BatchReport:
    """Run jobs (serially, or on ``executor``), writing ``out`` in chunks as they finish.

    With ``resume``, the rows in ``out`` of jobs with the same inputs are kept and those
    jobs skipped; failed rows and rows computed from other inputs are redone or dropped.
    ``on_progress(done, failed, total)`` is called after each job. Interrupted (Ctrl-C,
    SIGTERM, an error), the finished rows are written before the exception goes on.
    """
    old = read_rows(out) if resume else []
    rows, todo = _reusable(old, jobs)
    dropped = len(old) - len(rows)
    flush_every = flush_every or max(1, min(50, math.ceil(len(todo) / 20)))
    done = failed = unwritten = 0

    def finished(new_rows: list[dict[str, Any]]) -> None:
        nonlocal done, failed, unwritten
        rows.extend(new_rows)
        done += 1
        failed += any(row.get("error") for row in new_rows)
        unwritten += 1
        if done % flush_every == 0:
            write_rows(rows, out)
            unwritten = 0
        if on_progress:
            on_progress(done, failed, len(todo))

    try:
        if executor is None:
            for job in todo:
                finished(run_job(job))
        else:
            futures = [executor.submit(run_job, job, True) for job in todo]
            for future in as_completed(futures):
                finished(future.result())
    except BaseException as error:
        if unwritten and not isinstance(error, OutputError):
            write_rows(rows, out)
        raise
    write_rows(rows, out)
    failures = [row for row in sorted(rows, key=lambda row: row["job"]) if row.get("error")]
    return BatchReport(rows, ran=len(todo), skipped=len(jobs) - len(todo), failed=failures, dropped=dropped)


PR_SET_PDEATHSIG = 1  # linux/prctl.h: the signal a process gets when its parent dies


def _end_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as the batch that started it is gone, however it ended.

    On Linux the kernel sends SIGKILL when the parent dies (even killed by SIGKILL itself,
    and while this worker runs a kernel that holds the GIL); elsewhere, and for a parent
    that died before this ran, a thread polls the parent's pid. The pool must be used
    from the thread that created it: Linux counts the parent thread's exit as its death.
    Ctrl-C reaches the whole process group: workers ignore it and the batch stops them.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


class WorkerPool(ProcessPoolExecutor):
    """Local worker processes (spawned: no numba threads inherited through fork) that end with the batch."""

    def __init__(self, workers: int):
        import multiprocessing

        super().__init__(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_end_with_parent,
            initargs=(os.getpid(),),
        )

    def stop(self) -> None:
        """Cancel the queued jobs and end the running ones now (Ctrl-C, SIGTERM, an error)."""
        processes = list((self._processes or {}).values())
        self.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()


@contextmanager
def batch_executor(workers: int | None, scheduler: str | None, jobs: int) -> Iterator[Executor | None]:
    """Where a batch runs: Dask (``scheduler``), local processes, or this process (None).

    Closed on the way out; on an error, Ctrl-C or SIGTERM the queued jobs are cancelled
    and the running ones ended instead of waited for.
    """
    if scheduler is not None:
        with _dask(scheduler) as executor:
            yield executor
        return
    count = workers or os.cpu_count() or 1
    if count == 1 or jobs <= 1:
        yield None
        return
    pool = WorkerPool(count)
    try:
        yield pool
    except BaseException:
        pool.stop()
        raise
    finally:
        pool.shutdown(wait=True)


@contextmanager
def _dask(scheduler: str) -> Iterator[Executor]:
    """A Dask ``Client``'s ``concurrent.futures`` executor: ``local`` starts a LocalCluster."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ForecastError(
            f"--scheduler {scheduler}: Dask is not installed; install it with: "
            "pip install 'dask[distributed]'"
        ) from None
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True)
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as error:
            raise ForecastError(f"--scheduler {scheduler}: cannot connect: {error}") from None
    executor = client.get_executor()
    try:
        yield executor
        executor.shutdown(wait=True)
    except BaseException:
        executor.shutdown(wait=False)  # cancels the queued and running jobs
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
