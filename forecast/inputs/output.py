"""Writing result files atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from glob import escape as glob_escape
from pathlib import Path

import pyarrow as pa

from forecast.errors import OutputError

TABLE_FORMATS = (".parquet", ".csv")
STALE_AFTER_S = 60.0  # a temporary file this old whose writer is gone was left by a killed write
_RANDOM = "[a-z0-9_]+"  # what ``tempfile`` puts between prefix and suffix


def _new_file_mode() -> int:
    """The mode ``open()`` gives a new file (0o666 less the umask); ``mkstemp`` gives 0o600."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def check_output(path: Path, formats: tuple[str, ...] = TABLE_FORMATS) -> None:
    """Fail before any work when ``path`` has an unsupported extension or no folder to go in."""
    path = Path(path)
    if path.suffix.lower() not in formats:
        raise OutputError(f"{path}: unsupported output type {path.suffix!r}; expected {' or '.join(formats)}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")


def output_folder(path: Path) -> Path:
    """Make a folder for output files (and its parents), checking a file can be created in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".forecast.", suffix=".tmp", dir=path)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror or error}") from None
    return path


def _host() -> str:
    return socket.gethostname().replace(".", "_").replace("-", "_") or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Remove what killed writes to ``path`` left: temporary files of this host whose process is
    gone, once a minute old (a file being written has a recent time, which spares a writer this
    process cannot see, e.g. in another container on a shared folder). Another host's are kept."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.{re.escape(_host())}-(\d+)\.{_RANDOM}\.tmp")
    now = time.time()
    for left in path.parent.glob(f".{glob_escape(path.name)}.*.tmp"):
        owner = pattern.fullmatch(left.name)
        if owner is None or _alive(int(owner[1])):
            continue
        try:
            if now - left.stat().st_mtime > STALE_AFTER_S:
                left.unlink()
        except OSError:  # gone meanwhile, or not ours to remove: the write goes on regardless
            pass


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then rename ``tmp`` to ``path``; nothing is left on failure.

    The temporary file is named after the target, the host and the process, so that the next
    write to the same target removes one a killed process (SIGKILL) left behind.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    _remove_stale(path)
    tmp = None
    try:
        handle, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=path.parent
        )
        os.close(handle)
        tmp = Path(tmp_name)
        os.chmod(tmp, _new_file_mode())
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise OutputError(f"{path}: cannot write: {error.strerror or error}") from None
    except pa.ArrowException as error:
        raise OutputError(f"{path}: cannot write the table: {error}") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def write_table(table: pa.Table, path: Path) -> None:
    """Write a table as Parquet or CSV, chosen by the file extension, atomically."""
    path = Path(path)
    check_output(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    else:
        import pyarrow.csv as pacsv

        atomic_write(path, lambda tmp: pacsv.write_csv(table, tmp))
