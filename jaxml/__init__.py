"""jaxml: a JAX toolkit for machine-learning theory research.

Ten papers (mostly Issei Sato's lab, University of Tokyo, 2024-2025) turned into one library
that research code imports, one command per paper that reproduces its headline result
(``jaxml run SLUG``), and a benchmark suite (``python -m benchmarks``).

Subpackages are imported lazily so that ``import jaxml`` stays cheap and never touches the
network: ``jaxml.nn``, ``jaxml.train``, ``jaxml.experiment``, ``jaxml.data``, ``jaxml.tasks``,
``jaxml.constructions`` and the per-paper packages.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# jaxlib's CPU LAPACK kernels (solve, LU, Cholesky, SVD) call scipy's OpenBLAS, which scipy loads
# lazily at the first decomposition. XLA already spreads a batch of decompositions over its own
# threads; OpenBLAS threads on top of those oversubscribe the cores and spin: on 2 busy cores a
# batched 201x201 solve took 55 s with OpenBLAS's default threads and 1 s with one thread, and
# the physics_variety experiment hung. Set OPENBLAS_NUM_THREADS yourself to override this default.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# glibc malloc tuning (reuse freed blocks instead of unmapping them, so jitted steps do not
# page-fault their temporaries in again on every call: ~7% of an isolated transformer train step
# on 2 cores, but whole experiments ran slower with it; see jaxml/_host.py). Opt-in: call
# jaxml.tune_malloc() early, or set JAXML_MALLOC_TUNING=1 for jaxml's entry points.
from jaxml._host import tune_malloc  # noqa: E402

__version__ = "0.1.0"

_SUBPACKAGES = (
    "nn", "tasks", "data", "constructions", "train", "spn", "ntk", "longtail", "physics",
    "fairt2i", "stats", "experiment",
)

__all__ = ["__version__", "tune_malloc", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"jaxml.{name}")
    raise AttributeError(f"module 'jaxml' has no attribute {name!r}")
