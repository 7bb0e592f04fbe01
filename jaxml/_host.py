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

**It is opt-in.** What helps one isolated train step slows whole experiments: measured end to
end on 2 idle cores (2026-11-27), ``induction_bigram`` quick took 240 s with the setting and
210 s without, ``looped_timestep`` 248 s vs 213 s, ``memorization`` 115 s vs 101 s, and the
top-down SPN sampler's sweeps were 20-45% slower with it (0.11-0.13 vs 0.09 s on baudio; each
of the single-arena and the no-``mmap`` parts alone was slower too); ``longtail_mla`` and
``physics_variety`` did not change.
So no entry point applies it by default. Set ``JAXML_MALLOC_TUNING=1`` to have the ``jaxml``
console script, the experiments' ``run_script`` and ``python -m benchmarks`` apply it at start
(:func:`tune_malloc_if_requested`); library users call ``jaxml.tune_malloc()`` early, before
the first jitted call. A ``GLIBC_TUNABLES`` that sets any ``glibc.malloc`` tunable is respected
(nothing is changed), and ``JAXML_MALLOC_TUNING=0`` makes even an explicit call a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_malloc", "tune_malloc_if_requested", "malloc_tuned"]

_applied = False  # set by a successful tune_malloc() in this process

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8


def tune_malloc(*, arena_max: int = 1, mmap_max: int = 0, trim_threshold: int = 2**31 - 1) -> bool:
    """Set glibc ``mallopt`` parameters so that freed blocks are reused instead of unmapped.

    ``M_ARENA_MAX = arena_max`` (threads share the main heap), ``M_MMAP_MAX = mmap_max`` (0: large
    blocks come from the heap, not from a fresh ``mmap`` per allocation) and
    ``M_TRIM_THRESHOLD = trim_threshold`` bytes (free memory at the top of the heap is kept up to
    this size). Applies to allocations made afterwards, so it should run before XLA's threads
    start (jaxml's entry points call it when ``JAXML_MALLOC_TUNING=1``).

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
    global _applied
    ok = True
    for param, value in ((_M_ARENA_MAX, arena_max), (_M_MMAP_MAX, mmap_max), (_M_TRIM_THRESHOLD, trim_threshold)):
        ok = bool(mallopt(param, int(value))) and ok
    _applied = _applied or ok
    return ok


def tune_malloc_if_requested() -> bool:
    """What jaxml's entry points call at start: :func:`tune_malloc` when ``JAXML_MALLOC_TUNING=1``.

    Returns:
      Whether the malloc parameters were set (False unless the variable is ``1``).
    """
    if os.environ.get("JAXML_MALLOC_TUNING", "") != "1":
        return False
    return tune_malloc()


def malloc_tuned() -> bool:
    """Whether :func:`tune_malloc` has set the malloc parameters in this process (benchmarks record it)."""
    return _applied
