"""numba's on-disk kernel cache, kept in step with every source file the kernels compile in.

numba checks a cached kernel against its own file only, but the kernels inline functions and
read constants from other modules (``rng.py``, ``normal.py``, ``draws.py``): after an edit there,
the old compiled code would keep running. ``refresh`` hashes all those files and, when the hash
differs from the stamp stored beside numba's cache index (wherever numba keeps it: ``__pycache__``
next to the source, ``NUMBA_CACHE_DIR``, or the user-wide cache of a read-only install), flushes the
kernels' cached code before any of it is loaded, then stores the new stamp."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from forecast.errors import OutputError

STAMP_SUFFIX = ".sources.sha256"


def sources_hash(modules: Iterable[ModuleType]) -> str:
    """SHA-256 of the modules' source files, in order."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def cached_kernels(module: ModuleType) -> list:
    """The dispatchers defined in ``module`` with an on-disk cache (``cache=True``)."""
    return [
        kernel
        for kernel in vars(module).values()
        if getattr(getattr(kernel, "py_func", None), "__module__", None) == module.__name__
        and getattr(getattr(kernel, "_cache", None), "cache_path", None) is not None
    ]


def refresh(module: ModuleType, inlined: Iterable[ModuleType]) -> None:
    """Flush ``module``'s cached kernels when it or a module they ``inlined`` has changed.

    Call it at the end of ``module``, before any kernel runs. Where the stamp cannot be
    written, the kernels compile afresh in this process rather than risk stale code.
    """
    kernels = cached_kernels(module)
    current = sources_hash([module, *inlined])
    for folder in {Path(kernel._cache.cache_path) for kernel in kernels}:
        in_folder = [kernel for kernel in kernels if Path(kernel._cache.cache_path) == folder]
        stamp = folder / f"{Path(module.__file__).stem}{STAMP_SUFFIX}"
        try:
            if stamp.read_text(encoding="ascii") == current:
                continue
        except (OSError, UnicodeDecodeError):
            pass  # no stamp yet, or unreadable: treat the cache as stale
        from forecast.inputs.output import atomic_write  # only here: it imports pyarrow

        try:
            for kernel in in_folder:
                kernel._cache.flush()  # an empty index: the next call compiles and saves afresh
            atomic_write(stamp, lambda tmp: tmp.write_text(current, encoding="ascii"))
        except (OSError, OutputError):
            for kernel in in_folder:
                kernel._cache.disable()
