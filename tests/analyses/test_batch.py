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
from forecast.analyses.batch import BatchReport, Job, flatten, plan_jobs, run_batch, scenario_files
from forecast.cli.commands import cli
from forecast.errors import MAX_PROBLEMS

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
    jobs = plan_jobs(scenario_files([str(folder / "a.yaml")]), batch_seed=1).jobs
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
    alone = plan_jobs(scenario_files([str(folder / "c.yaml")]), batch_seed=5).jobs
    together = plan_jobs(scenario_files([str(folder)]), batch_seed=5).jobs
    c_job = next(job for job in together if job.path.endswith("c.yaml"))
    assert alone[0].seed == c_job.seed
    assert next(job for job in together if job.path.endswith("b.yaml")).seed == 11  # its own seed wins
    assert plan_jobs(scenario_files([str(folder / "c.yaml")]), batch_seed=6).jobs[0].seed != alone[0].seed


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
    jobs = plan_jobs(scenario_files([str(folder / "a.yaml")]), batch_seed=0).jobs
    run_batch(jobs, folder / "out.csv")
    assert len(batch._PIPELINES) == 1


def test_serial_processes_and_dask_give_identical_rows(folder):
    files = scenario_files([str(folder / "a.yaml"), str(folder / "c.yaml")])
    jobs = plan_jobs(files, batch_seed=3).jobs
    run_batch(jobs, folder / "serial.parquet")
    with batch.WorkerPool(2) as executor:
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
    jobs = plan_jobs(files, batch_seed=1).jobs
    assert jobs[0].content_hash == jobs[1].content_hash
    run_batch(jobs[:1], out)  # as if killed after the first
    report = run_batch(jobs, out, resume=True)
    assert (report.ran, report.skipped) == (1, 1)
    assert len(read_csv_rows(out)) == 2
    more_trials = plan_jobs(files, batch_seed=1, trials=500).jobs
    assert run_batch(more_trials, out, resume=True).ran == 2  # other trials: not the same result


def read_csv_rows(path):
    import pyarrow.csv as pacsv

    return pacsv.read_csv(path).to_pylist()


def test_csv_resume_and_mixed_sweep_values(folder):
    (folder / "mixed.yaml").write_text(
        SCENARIO + "sweep: {period: [2026-Q4, 2026], targets.0.at_least: [900000, 1.1e6]}\n"
    )
    files = scenario_files([str(folder / "mixed.yaml")])
    jobs = plan_jobs(files, batch_seed=2).jobs
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


def _process(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a running process, from /proc; None when it is gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return None if fields[0] in "ZX" else (fields[0], fields[19])


def _children(pid: int) -> dict[int, str]:
    """The running children of ``pid`` (workers and the resource tracker) -> their start times."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] not in "ZX":
            found[int(stat.parent.name)] = fields[19]
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_batch_leaves_no_worker_running(folder, stop):
    for name in ("a.yaml", "b.yaml", "c.yaml", "nested/bad.yaml"):
        (folder / name).unlink()
    for i in range(8):
        (folder / f"long{i}.yaml").write_text(SCENARIO.replace("trials: 400", f"trials: {1_000_000 + i}"))
    out = folder / "out.parquet"
    command = [sys.executable, "-m", "forecast", "batch", str(folder), "--out", str(out), "--workers", "2",
               "--flush-every", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not out.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the first rows are written: both workers are busy simulating
    children = _children(process.pid)
    assert process.poll() is None and len(children) == 3, "expected two workers and the resource tracker"
    os.kill(process.pid, stop)
    returncode = process.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(_process(pid) for pid in children):
        time.sleep(0.1)
    left = [pid for pid, started in children.items() if _process(pid) and _process(pid)[1] == started]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert pq.read_table(out).num_rows >= 1  # a whole file, written by rename
    if stop == signal.SIGTERM:
        assert returncode == 128 + signal.SIGTERM
        assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_resume_retries_failed_rows_and_counts_every_row(folder):
    for name in ("a.yaml", "c.yaml"):
        (folder / name).unlink()
    for i in (1, 2):
        (folder / "nested" / f"bad{i}.yaml").write_text((folder / "nested" / "bad.yaml").read_text())
    out = folder / "out.parquet"
    command = ["batch", str(folder), "--out", str(out), "--workers", "1"]
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 1 and "3 failed" in first.stderr
    again = CliRunner().invoke(cli, [*command, "--resume"])  # a complete file with failures
    assert again.exit_code == 1, again.stderr
    assert again.stderr.startswith("3 scenarios run, 1 already in") and "3 failed" in again.stderr
    assert again.stderr.count("failed: ") == 3
    assert len([row for row in pq.read_table(out).to_pylist() if row["error"]]) == 3
    for path in (folder / "nested").iterdir():
        path.write_text(SCENARIO)
    fixed = CliRunner().invoke(cli, [*command, "--resume"])
    assert fixed.exit_code == 0, fixed.stderr
    assert fixed.stderr.startswith("3 scenarios run, 1 already in")
    assert "; 4 rows written; 0 failed" in fixed.stderr
    assert not any(row["error"] for row in pq.read_table(out).to_pylist())


def test_resume_replaces_rows_whose_inputs_changed(tmp_path):
    pipeline = tmp_path / "deals.csv"
    pipeline.write_bytes(PIPELINE.read_bytes())
    (tmp_path / "rates.yaml").write_text("slip: {default: 0.1}\n")
    calibrated = SCENARIO.replace(str(PIPELINE), "deals.csv") + "calibration: rates.yaml\n"
    (tmp_path / "a.yaml").write_text(calibrated)
    (tmp_path / "b.yaml").write_text(SCENARIO.replace(str(PIPELINE), "later.csv"))  # not there yet
    (tmp_path / "c.yaml").write_text(SCENARIO)
    out, fresh = tmp_path / "out.parquet", tmp_path / "fresh.parquet"

    def resume() -> BatchReport:
        plan = plan_jobs(scenario_files([str(tmp_path)]), batch_seed=4)
        assert [(path.name, kind.split(" (")[0]) for path, kind in plan.skipped] == [
            ("rates.yaml", "a calibration fragment")
        ]
        return run_batch(plan.jobs, out, resume=True)

    def assert_as_fresh() -> None:
        run_batch(plan_jobs(scenario_files([str(tmp_path)]), batch_seed=4).jobs, fresh)
        assert _rows(out) == _rows(fresh)

    assert resume().failed[0]["path"].endswith("b.yaml")
    (tmp_path / "later.csv").write_bytes(PIPELINE.read_bytes())  # the missing pipeline appears
    report = resume()
    assert (report.ran, report.skipped, report.dropped, report.failed) == (1, 2, 1, [])
    assert_as_fresh()
    changes = [
        lambda: (tmp_path / "rates.yaml").write_text("slip: {default: 0.3}\n"),  # its calibration fragment
        lambda: pipeline.write_bytes(pipeline.read_bytes().replace(b"2026-11", b"2026-12")),  # its pipeline
        lambda: (tmp_path / "a.yaml").write_text(calibrated.replace("trials: 400", "trials: 401")),  # itself
    ]
    for change in changes:
        change()
        report = resume()
        assert (report.ran, report.skipped, report.dropped) == (1, 2, 1)
        assert_as_fresh()
    (tmp_path / "0.yaml").write_text(SCENARIO)  # a new first job: the kept rows move down one
    (tmp_path / "c.yaml").unlink()
    report = resume()
    assert (report.ran, report.skipped, report.dropped) == (1, 2, 1)
    assert_as_fresh()


def test_error_cells_are_capped_as_run_caps_them(tmp_path):
    targets = "".join(f"  - {{name: t{i}, metric: revenue, at_least: -1}}\n" for i in range(500))
    head = f"period: 2026-Q4\npipeline: {{path: {PIPELINE}}}\ntargets:\n"
    (tmp_path / "many.yaml").write_text(head + targets)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["batch", str(tmp_path / "many.yaml"), "--out", str(out)])
    assert result.exit_code == 1
    (error,) = [row["error"] for row in read_csv_rows(out)]
    problems = error.split(batch.PROBLEM_SEPARATOR)
    assert len(problems) == MAX_PROBLEMS + 1 and problems[-1] == "... and 480 more problems"
    assert problems[0].endswith("targets[0].at_least (line 4): Input should be greater than or equal to 0")
    assert len(result.stderr.splitlines()) == 2 + MAX_PROBLEMS + 1  # summary, "failed:", the problems


BACKTEST = "history: {path: closed.csv}\nperiods: 2017-Q2\n"
FUNNEL = "quota: 1000000\ndeal_size: 50000\nstages: [{name: proposal, rate: 0.4}]\n"


def test_funnel_plans_and_backtest_files_in_folders_are_skipped(folder):
    (folder / "nested" / "bad.yaml").unlink()
    (folder / "a.yaml").unlink()
    (folder / "backtest.yaml").write_text(BACKTEST)
    (folder / "nested" / "funnel.yaml").write_text(FUNNEL)
    out = folder / "out.parquet"
    result = CliRunner().invoke(cli, ["batch", str(folder), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[:2] == [
        f"skipped {folder / 'backtest.yaml'}: a backtest file (it has history); "
        "run it with forecast backtest",
        f"skipped {folder / 'nested' / 'funnel.yaml'}: a funnel plan (quota and stages, "
        "no pipeline or period); run it with forecast funnel",
    ]
    assert {Path(row["path"]).name for row in pq.read_table(out).to_pylist()} == {"b.yaml", "c.yaml"}
    named = CliRunner().invoke(cli, ["batch", str(folder / "backtest.yaml"), "--out", str(out)])
    assert named.exit_code == 1  # named where a scenario is expected: a failed row that says why
    assert "this looks like a backtest file" in pq.read_table(out).to_pylist()[0]["error"]


def test_shipped_folder_runs_as_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "results.parquet"
    command = ["batch", "configs/", "--out", str(out), "--trials", "500", "--workers", "1"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "skipped configs/funnel/textbook.yaml: a funnel plan (quota and stages, no pipeline or period); "
        "run it with forecast funnel\n"
        "skipped configs/maven-backtest.yaml: a backtest file (it has history); "
        "run it with forecast backtest\n"
        f"5 scenarios run, 0 already in {out}; 9 rows written; 0 failed\n"
    )


def test_an_impossible_date_is_one_failed_row(folder):
    (folder / "nested" / "bad.yaml").write_text(SCENARIO.replace("as_of: 2026-10-15", "as_of: 2026-02-30"))
    out = folder / "out.parquet"
    result = CliRunner().invoke(cli, ["batch", str(folder), "--out", str(out), "--workers", "1"])
    assert result.exit_code == 1
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == 6 + 1 + 2 + 1
    (failed,) = [row for row in rows if row["error"]]
    assert failed["error"] == (
        f"{folder / 'nested' / 'bad.yaml'}: as_of (line 2): 2026-02-30 is not a calendar date "
        "(day is out of range for month)"
    )


def test_each_variant_is_validated_once_and_its_pipeline_read_once(folder, monkeypatch):
    from forecast.analyses.compare import compare_plans
    from forecast.config import loading, sweeps
    from forecast.inputs import pipeline

    sweep = "sweep: {stages.1.win_rate: [0.3, 0.5], amount.sigma: [0.1, 0.2]}\n"
    (folder / "w.yaml").write_text(SCENARIO + sweep)
    calls = {"parse_scenario": 0, "read_table": 0}

    def counted(module, name):
        original = getattr(module, name)

        def call(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, call)

    counted(sweeps, "parse_scenario")
    counted(pipeline, "read_table")
    batch._PIPELINES.clear()
    jobs = plan_jobs(scenario_files([str(folder / "w.yaml")]), batch_seed=0).jobs
    report = run_batch(jobs, folder / "out.parquet")
    assert calls == {"parse_scenario": 1 + 4, "read_table": 1}
    variant = (folder / "w.yaml").read_text().replace("win_rate: 0.35", "win_rate: 0.5")
    scenario = loading.parse_scenario(variant.replace("sigma: 0.2", "sigma: 0.1"), folder / "w.yaml")
    deals = pipeline.load_deals(scenario.pipeline, PIPELINE, scenario.stages)
    expected = compare_plans(scenario, deals, trials=jobs[2].trials, seed=jobs[2].seed, levels=())[0]
    assert report.rows[2]["sweep"] == "stages.1.win_rate=0.5, amount.sigma=0.1"
    assert report.rows[2]["revenue.mean"] == expected["revenue"]["mean"]


def test_a_pipeline_edited_during_the_batch_is_read_again_or_refused(tmp_path):
    pipeline = tmp_path / "deals.csv"
    pipeline.write_bytes(PIPELINE.read_bytes())
    (tmp_path / "a.yaml").write_text(SCENARIO.replace(str(PIPELINE), "deals.csv"))
    batch._PIPELINES.clear()
    before = plan_jobs(scenario_files([str(tmp_path)]), batch_seed=0).jobs
    assert not run_batch(before, tmp_path / "out.csv").failed
    pipeline.write_bytes(pipeline.read_bytes().replace(b"2026-11", b"2026-12"))
    batch._PIPELINES.clear()  # as in another worker
    report = run_batch(before, tmp_path / "out.csv")  # planned before the edit: not run on other deals
    assert report.failed[0]["error"] == f"{pipeline}: changed while the batch ran; finish it with --resume"
    after = plan_jobs(scenario_files([str(tmp_path)]), batch_seed=0).jobs
    assert not run_batch(after, tmp_path / "out.csv").failed
    assert len(batch._PIPELINES) == 2  # one key per content the file had


def test_dask_local_scheduler_through_the_cli(folder):
    pytest.importorskip("dask.distributed")
    out = folder / "out.parquet"
    command = ["batch", str(folder / "c.yaml"), "--out", str(out), "--scheduler", "local"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert [row["plan"] for row in pq.read_table(out).to_pylist()] == ["base", "stretch"]
