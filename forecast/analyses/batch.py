"""forecast batch: many scenarios (and their sweeps and plans), one summary row each.

Jobs are described by plain data (path, sweep values, seed) so they can run in
this process, in local worker processes, or on a Dask cluster through the same
``concurrent.futures`` interface, with identical rows. Each job re-reads its
scenario (cheap) and takes its pipeline from a per-process cache, so a pipeline
shared by many scenarios is parsed once per worker."""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forecast.errors import ForecastError, OutputError

SCENARIO_SUFFIXES = (".yaml", ".yml")
META = ("job", "path", "sweep", "plan", "content_hash", "seed", "trials", "wall_time_s", "error")
TEXT_COLUMNS = ("path", "sweep", "plan", "content_hash", "error", "scenario", "file")  # never numbers


@dataclass(frozen=True)
class Job:
    """One scenario variant to run: everything a worker needs, as plain data."""

    order: int  # position in the batch: rows are written in this order
    path: str
    sweep: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    seed: int | None = None
    trials: int | None = None
    error: str | None = None  # the job failed before it could run (unreadable scenario)

    @property
    def label(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.sweep.items())


def scenario_files(paths: Iterable[str]) -> list[Path]:
    """Scenario files named by PATHS: files, folders (searched recursively) or globs."""
    files: list[Path] = []
    missing = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in SCENARIO_SUFFIXES and p.is_file()
            )
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not found:
            missing.append(f"{text}: no scenario file, folder or matching glob")
        files += found
    if missing:
        raise ForecastError(missing)
    return list(dict.fromkeys(p.resolve() for p in files))


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()


def derived_seed(batch_seed: int, content_hash: str) -> int:
    """A scenario's seed in a batch when its file sets none: the same in any batch that has it."""
    digest = hashlib.blake2b(f"{batch_seed}:{content_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def plan_jobs(files: list[Path], batch_seed: int, trials: int | None = None) -> list[Job]:
    """Expand every file's sweep into jobs, with content hashes and seeds; bad files become error jobs."""
    from forecast.config.sweeps import sweep_variants

    jobs: list[Job] = []
    pipeline_bytes: dict[Path, bytes] = {}
    for path in files:
        text = b""
        try:
            text = path.read_bytes()
            variants = sweep_variants(text.decode("utf-8"), path)
        except (ForecastError, OSError, UnicodeDecodeError) as error:
            message = " | ".join(error.problems) if isinstance(error, ForecastError) else f"{path}: {error}"
            jobs.append(Job(len(jobs), str(path), content_hash=_digest(text), error=message))
            continue
        for values, scenario in variants:
            source = scenario.pipeline_path
            if source not in pipeline_bytes:
                pipeline_bytes[source] = source.read_bytes() if source.is_file() else b""
            content = _digest(text, pipeline_bytes[source], json.dumps(values, sort_keys=True).encode())
            explicit = "seed" in scenario.simulation.model_fields_set
            seed = scenario.simulation.seed if explicit else derived_seed(batch_seed, content)
            jobs.append(
                Job(len(jobs), str(path), values, content, seed, trials or scenario.simulation.trials)
            )
    return jobs


_PIPELINES: dict[tuple, Any] = {}  # per process: (file, stamp, reading settings) -> Deals


def _deals(scenario):
    """The scenario's deals, parsed once per process for every scenario that shares the file."""
    from forecast.inputs.pipeline import load_deals

    path = scenario.pipeline_path
    stat = path.stat() if path.exists() else None
    stages = [stage.model_dump() for stage in scenario.stages] if scenario.stages is not None else None
    key = (
        str(path),
        stat and (stat.st_mtime_ns, stat.st_size),
        scenario.pipeline.model_dump_json(),
        json.dumps(stages),
    )
    if key not in _PIPELINES:
        _PIPELINES[key] = load_deals(scenario.pipeline, path, scenario.stages)
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
        from forecast.config.sweeps import sweep_variant

        scenario = sweep_variant(Path(job.path).read_text(encoding="utf-8"), Path(job.path), job.sweep)
        results = compare_plans(scenario, _deals(scenario), trials=job.trials, seed=job.seed, levels=())
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
        rows = [{**meta, "error": " | ".join(error.problems)}]
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
    rows: list[dict[str, Any]]
    ran: int
    skipped: int
    failed: list[dict[str, Any]]


def run_batch(
    jobs: list[Job],
    out: Path,
    executor: Executor | None = None,
    resume: bool = False,
    flush_every: int | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> BatchReport:
    """Run jobs (serially, or on ``executor``), writing ``out`` in chunks as they finish.

    With ``resume``, jobs whose content hash is already in ``out`` are skipped and
    their rows kept. ``on_progress(done, failed, total)`` is called after each job.
    """
    rows = read_rows(out) if resume else []
    done = {resume_key(row) for row in rows}
    todo = [job for job in jobs if resume_key(_job_key_row(job)) not in done]
    flush_every = flush_every or max(1, min(50, math.ceil(len(todo) / 20)))
    done = failed = 0
    failures: list[dict[str, Any]] = []

    def finished(new_rows: list[dict[str, Any]]) -> None:
        nonlocal done, failed
        rows.extend(new_rows)
        done += 1
        errors = [row for row in new_rows if row.get("error")]
        failed += bool(errors)
        failures.extend(errors)
        if done % flush_every == 0:
            write_rows(rows, out)
        if on_progress:
            on_progress(done, failed, len(todo))

    if executor is None:
        for job in todo:
            finished(run_job(job))
    else:
        futures = [executor.submit(run_job, job, True) for job in todo]
        for future in as_completed(futures):
            finished(future.result())
    write_rows(rows, out)
    return BatchReport(rows=rows, ran=len(todo), skipped=len(jobs) - len(todo), failed=failures)


def local_executor(workers: int) -> Executor:
    """Worker processes (spawned: no numba threads inherited through fork)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def dask_executor(scheduler: str):
    """A Dask ``Client`` and its ``concurrent.futures`` executor: ``local`` starts a LocalCluster."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ForecastError(
            f"--scheduler {scheduler}: Dask is not installed; install it with: "
            "pip install 'dask[distributed]'"
        ) from None
    if scheduler == "local":
        client = Client(LocalCluster(n_workers=os.cpu_count() or 1, threads_per_worker=1, processes=True))
    else:
        try:
            client = Client(scheduler, timeout=10)
        except OSError as error:
            raise ForecastError(f"--scheduler {scheduler}: cannot connect: {error}") from None
    return client, client.get_executor()
