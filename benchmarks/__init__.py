"""jaxml's speed/scale suite: ``python -m benchmarks [NAME ...] [--device cpu|gpu]``.

Each module ``benchmarks/<name>.py`` exposes ``run(device: str) -> list[dict]``; a row holds
``workload``, ``metric`` (what is measured, e.g. "seconds"), ``jaxml`` (jaxml's figure), ``peer``
(the comparison's figure, measured in the same process and run), ``peer_name`` and ``ratio``
oriented so that > 1 means jaxml is faster (peer / jaxml for times, jaxml / peer for
throughputs such as tokens/s), plus any checks (for example
``same_numbers``). Results go to ``benchmarks/results/<name>.json``.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

__all__ = ["available", "load"]


def available() -> list[str]:
    """Names of the benchmark modules."""
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def load(name: str):
    """Import ``benchmarks.<name>`` (must define ``run(device)``)."""
    if name not in available():
        raise SystemExit(f"error: unknown benchmark {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"benchmarks.{name}")
