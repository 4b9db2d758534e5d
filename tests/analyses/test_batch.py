"""forecast batch: expansion, seeds, failure rows, resume, and the same rows on every executor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from forecast.analyses import batch
from forecast.analyses.batch import Job, flatten, plan_jobs, run_batch, scenario_files
from forecast.cli.commands import cli

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "configs" / "example_pipeline.csv"
SCENARIO = f"""\
period: 2026-Q4
as_of: 2026-10-15
pipeline:
  path: {PIPELINE}
  columns: {{deal_id: Opportunity ID, probability: Probability (%)}}
  probability_scale: percent
stages:
  - {{name: Qualified, win_rate: 0.15, slip: 0.35}}
  - {{name: Proposal, win_rate: 0.35, slip: 0.25}}
  - {{name: Negotiation, win_rate: 0.60}}
amount: {{sigma: 0.2}}
targets: [{{name: quota, metric: revenue, at_least: 1000000}}]
simulation: {{trials: 400}}
"""


def _rows(path: Path) -> list[dict]:
    """Rows without their wall time, which is the one thing allowed to differ."""
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in pq.read_table(path).to_pylist()]


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a.yaml").write_text(
        SCENARIO + "sweep: {slip.default: [0.1, 0.2, 0.3], amount.sigma: [0.1, 0.4]}\n"
    )
    (tmp_path / "b.yaml").write_text(SCENARIO.replace("trials: 400", "trials: 400, seed: 11"))
    (tmp_path / "c.yaml").write_text(SCENARIO + "plans: {stretch: {revenue: 1500000}}\n")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "bad.yaml").write_text(SCENARIO.replace("win_rate: 0.60", "win_rate: 6"))
    return tmp_path


def test_sweep_expansion_counts_and_labels(folder):
    jobs = plan_jobs(scenario_files([str(folder / "a.yaml")]), batch_seed=1)
    assert len(jobs) == 6
    assert [job.label for job in jobs[:2]] == [
        "slip.default=0.1, amount.sigma=0.1",
        "slip.default=0.1, amount.sigma=0.4",
    ]
    assert len({job.content_hash for job in jobs}) == 6


def test_files_folders_and_globs(folder):
    assert [p.name for p in scenario_files([str(folder)])] == ["a.yaml", "b.yaml", "c.yaml", "bad.yaml"]
    assert [p.name for p in scenario_files([str(folder / "*.yaml")])] == ["a.yaml", "b.yaml", "c.yaml"]
    result = CliRunner().invoke(
        cli, ["batch", str(folder / "none*.yaml"), "--out", str(folder / "x.parquet")]
    )
    assert result.exit_code == 2
    assert "no scenario file, folder or matching glob" in result.stderr


def test_seeds_come_from_content_not_position(folder):
    alone = plan_jobs(scenario_files([str(folder / "c.yaml")]), batch_seed=5)
    together = plan_jobs(scenario_files([str(folder)]), batch_seed=5)
    c_job = next(job for job in together if job.path.endswith("c.yaml"))
    assert alone[0].seed == c_job.seed
    assert next(job for job in together if job.path.endswith("b.yaml")).seed == 11  # its own seed wins
    assert plan_jobs(scenario_files([str(folder / "c.yaml")]), batch_seed=6)[0].seed != alone[0].seed


def test_failed_scenario_is_a_row_and_the_rest_complete(folder):
    out = folder / "out.parquet"
    result = CliRunner().invoke(cli, ["batch", str(folder), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1
    rows = pq.read_table(out).to_pylist()
    failed = [row for row in rows if row["error"]]
    assert len(failed) == 1 and failed[0]["path"].endswith("bad.yaml")
    assert "stages[2].win_rate" in failed[0]["error"]
    assert len(rows) == 6 + 1 + 2 + 1  # sweep, b, c's base and stretch plans, bad
    assert all(row["revenue.mean"] is not None for row in rows if not row["error"])
    assert "1 failed" in result.stderr and "failed: " in result.stderr and "Traceback" not in result.output
    plans = [row["plan"] for row in rows if row["path"].endswith("c.yaml")]
    assert plans == ["base", "stretch"]


def test_pipeline_is_read_once_per_process(folder):
    batch._PIPELINES.clear()
    jobs = plan_jobs(scenario_files([str(folder / "a.yaml")]), batch_seed=0)
    run_batch(jobs, folder / "out.csv")
    assert len(batch._PIPELINES) == 1


def test_serial_processes_and_dask_give_identical_rows(folder):
    files = scenario_files([str(folder / "a.yaml"), str(folder / "c.yaml")])
    jobs = plan_jobs(files, batch_seed=3)
    run_batch(jobs, folder / "serial.parquet")
    with batch.local_executor(2) as executor:
        run_batch(jobs, folder / "processes.parquet", executor)
    pytest.importorskip("dask.distributed")
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, Client(cluster) as client:
        run_batch(jobs, folder / "dask.parquet", client.get_executor())
    serial = _rows(folder / "serial.parquet")
    assert len(serial) == 6 + 2
    assert _rows(folder / "processes.parquet") == serial
    assert _rows(folder / "dask.parquet") == serial


def test_killed_batch_resumes_to_the_same_file(folder):
    for i in range(24):
        (folder / f"many{i:02}.yaml").write_text(SCENARIO.replace("trials: 400", f"trials: {2000 + i}"))
    (folder / "nested" / "bad.yaml").unlink()
    (folder / "a.yaml").unlink()
    full, killed = folder / "full.parquet", folder / "killed.parquet"
    command = [sys.executable, "-m", "forecast", "batch", str(folder), "--workers", "1", "--flush-every", "1"]
    subprocess.run([*command, "--out", str(full)], check=True, capture_output=True)
    process = subprocess.Popen(
        [*command, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while not killed.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = pq.read_table(killed).to_pylist()  # a whole chunk file: written by rename, never torn
    total = pq.read_table(full).num_rows
    if len(partial) >= total:
        pytest.skip("the batch finished before it could be killed")
    result = subprocess.run([*command, "--out", str(killed), "--resume"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"{len({row['content_hash'] for row in partial})} already in" in result.stderr
    assert _rows(killed) == _rows(full)


def test_dask_missing_says_how_to_install(monkeypatch, folder):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    result = CliRunner().invoke(
        cli, ["batch", str(folder / "b.yaml"), "--out", str(folder / "o.parquet"), "--scheduler", "local"]
    )
    assert result.exit_code == 2
    assert "pip install 'dask[distributed]'" in result.stderr  # not PyPI's unrelated forecast


def test_flatten():
    row = flatten({"a": {"b": 1, "c": [1, 2]}, "targets": [{"name": "q", "probability": 0.5}]})
    assert row == {"a.b": 1, "a.c": "[1, 2]", "targets.q.probability": 0.5}


def test_job_error_is_kept():
    rows = batch.run_job(Job(0, "x.yaml", content_hash="h", error="x.yaml: broken"))
    assert rows[0]["error"] == "x.yaml: broken" and rows[0]["job"] == 0


def test_resume_reruns_what_differs_and_keeps_identical_files_apart(folder):
    twin = folder / "twin"
    twin.mkdir()
    (twin / "b.yaml").write_text((folder / "b.yaml").read_text())  # same content, another path
    files = scenario_files([str(folder / "b.yaml"), str(twin / "b.yaml")])
    out = folder / "out.csv"
    jobs = plan_jobs(files, batch_seed=1)
    assert jobs[0].content_hash == jobs[1].content_hash
    run_batch(jobs[:1], out)  # as if killed after the first
    report = run_batch(jobs, out, resume=True)
    assert (report.ran, report.skipped) == (1, 1)
    assert len(read_csv_rows(out)) == 2
    more_trials = plan_jobs(files, batch_seed=1, trials=500)
    assert run_batch(more_trials, out, resume=True).ran == 2  # other trials: not the same result


def read_csv_rows(path):
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).to_pylist()


def test_csv_resume_and_mixed_sweep_values(folder):
    (folder / "mixed.yaml").write_text(
        SCENARIO + "sweep: {period: [2026-Q4, 2026], targets.0.at_least: [900000, 1.1e6]}\n"
    )
    files = scenario_files([str(folder / "mixed.yaml")])
    jobs = plan_jobs(files, batch_seed=2)
    out = folder / "mixed.csv"
    run_batch(jobs[:2], out)
    report = run_batch(jobs, out, resume=True)
    assert (report.ran, report.skipped) == (2, 2)
    rows = batch.read_rows(out)  # sweep columns read back as text
    assert [row["job"] for row in rows] == [0, 1, 2, 3]
    assert [str(row["sweep.period"]) for row in rows] == ["2026-Q4", "2026-Q4", "2026", "2026"]
    assert [str(row["sweep.targets.0.at_least"]) for row in rows] == [
        "900000",
        "1.1e6",
    ] * 2  # text and number
    assert not any(row["error"] for row in rows)


def test_a_folder_named_like_a_scenario_is_not_one(folder):
    (folder / "dir.yaml").mkdir()
    assert "dir.yaml" not in [p.name for p in scenario_files([str(folder)])]
