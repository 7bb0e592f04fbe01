"""Host (CPU) runtime defaults for jaxml's entry points: glibc ``malloc`` tuning.

XLA:CPU allocates the temporaries of a jitted program (hundreds of MB for a transformer train
step) afresh on every call and frees them at its end. With glibc's defaults those blocks are
large enough to be ``mmap``-ed per call (or served from per-thread arenas that are trimmed), so
every step page-faults its working set in again: the width-256 decoder step of
``benchmarks/transformer_train.py`` took ~62,000 minor page faults and ~100 ms of kernel time per
step (PyTorch's step: ~7,000 and ~20 ms). Keeping freed memory in one arena for reuse,

    M_ARENA_MAX = 1, M_MMAP_MAX = 0, M_TRIM_THRESHOLD = 2 GiB - 1,

cut that to ~15,000-30,000 faults and ~40 ms, and the step's wall time by ~7% on 2 cores
(docs/dyck_nope.md, "Benchmark"). The price: the process keeps its peak heap instead of
returning freed memory to the OS (what jemalloc/tcmalloc-style allocators do anyway).

The setting changes the whole process (every library in it, PyTorch included), so ``import jaxml``
does not apply it. The entry points jaxml owns do: the ``jaxml`` console script, the experiments'
``run_script`` and ``python -m benchmarks`` (and ``benchmarks.transformer_train``). Library users
who want it call ``jaxml.tune_malloc()`` early, before the first jitted call. Set
``JAXML_MALLOC_TUNING=0`` to leave malloc alone; a ``GLIBC_TUNABLES`` that sets any
``glibc.malloc`` tunable is also respected (nothing is changed).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_malloc"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def tune_malloc(*, arena_max: int = 1, mmap_max: int = 0, trim_threshold: int = 2**31 - 1) -> bool:
    """Set glibc ``mallopt`` parameters so that freed blocks are reused instead of unmapped.

    ``M_ARENA_MAX = arena_max`` (threads share the main heap), ``M_MMAP_MAX = mmap_max`` (0: large
    blocks come from the heap, not from a fresh ``mmap`` per allocation) and
    ``M_TRIM_THRESHOLD = trim_threshold`` bytes (free memory at the top of the heap is kept up to
    this size). Applies to allocations made afterwards, so it should run before XLA's threads
    start (jaxml's entry points call it unless ``JAXML_MALLOC_TUNING=0``).

    Returns:
      True if all three were set; False on non-glibc platforms, when ``JAXML_MALLOC_TUNING=0``, when
      ``GLIBC_TUNABLES`` already sets malloc tunables, or when ``mallopt`` refused a value.
    """
    if os.environ.get("JAXML_MALLOC_TUNING", "1") == "0" or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = True
    for param, value in ((_M_ARENA_MAX, arena_max), (_M_MMAP_MAX, mmap_max), (_M_TRIM_THRESHOLD, trim_threshold)):
        ok = bool(mallopt(param, int(value))) and ok
    return ok
