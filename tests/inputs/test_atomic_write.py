"""Atomic output: a killed writer's temporary file is cleared by the next write to the same target."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from forecast.inputs.output import atomic_write

ROOT = Path(__file__).resolve().parents[2]
SLOW_WRITER = """\
import sys, time
from pathlib import Path
from forecast.inputs.output import atomic_write

def write(tmp):
    tmp.write_text("half")
    print("writing", flush=True)
    time.sleep(60)

atomic_write(Path(sys.argv[1]), write)
"""


def _temporaries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _killed_write(target: Path) -> Path:
    """Start a write to ``target``, SIGKILL the writer mid-write; the temporary file it left."""
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(target)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    (left,) = [path for path in target.parent.iterdir() if path.name.endswith(".tmp")]
    return left


def test_a_killed_writers_old_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "results.csv"
    left = _killed_write(target)
    _age(left, 120)
    atomic_write(target, lambda tmp: tmp.write_text("done"))
    assert target.read_text() == "done"
    assert _temporaries(tmp_path) == []


def test_a_recent_live_foreign_or_other_targets_temporary_file_is_kept(tmp_path):
    """Only this host's file of a gone writer, a minute old, is stale: a younger one may belong to a
    writer this process cannot see, a running writer's is in use, another host's (a shared folder)
    cannot be checked from here, another target's is not this write's business, and a name without
    its writer's host and process says nothing of who wrote it."""
    target = tmp_path / "results.csv"
    recent = _killed_write(target)  # its writer is dead, but it is not a minute old
    here, dead = recent.name.removeprefix(".results.csv.").split(".")[0].rsplit("-", 1)  # host-pid
    for name in (
        f".results.csv.{here}-{os.getpid()}.live.tmp",
        f".results.csv.elsewhere-{dead}.far.tmp",
        f".results.csv.old.{here}-{dead}.other.tmp",
        ".results.csv.unowned.tmp",
    ):
        (tmp_path / name).write_text("kept")
        _age(tmp_path / name, 120)
    kept = _temporaries(tmp_path)
    atomic_write(target, lambda tmp: tmp.write_text("done"))
    assert _temporaries(tmp_path) == kept
