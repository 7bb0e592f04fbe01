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
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = (
    "nn", "tasks", "data", "constructions", "train", "spn", "ntk", "longtail", "physics",
    "fairt2i", "stats", "experiment",
)

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"jaxml.{name}")
    raise AttributeError(f"module 'jaxml' has no attribute {name!r}")
