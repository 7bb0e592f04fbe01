"""Results of an experiment: named metrics, claims checked against measurements, figures,
tables; the run context (output folder, resume flag) and atomic writers."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import logging
import math
import operator
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["Claim", "Result", "RunContext", "context", "log", "write_atomic", "write_json_atomic"]

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
_log = logging.getLogger("jaxml")


@dataclasses.dataclass(frozen=True)
class Claim:
    """A statement of the paper checked against what this run measured.

    ``holds`` is always computed from ``measured`` and ``threshold`` by ``Claim.check``; a claim
    that does not hold is a result, not an error.
    """

    name: str
    statement: str
    measured: float
    threshold: float
    holds: bool
    op: str = ">="

    @classmethod
    def check(cls, name: str, statement: str, measured: float, threshold: float, op: str = ">=") -> "Claim":
        """Build a claim whose ``holds`` is ``measured <op> threshold`` (NaN never holds)."""
        if op not in _OPS:
            raise ValueError(f"Claim.check: op must be one of {list(_OPS)}, got {op!r}")
        m, t = float(measured), float(threshold)
        holds = bool(math.isfinite(m) and _OPS[op](m, t))
        return cls(name=name, statement=statement, measured=m, threshold=t, holds=holds, op=op)

    def to_json(self) -> dict[str, Any]:
        """JSON form (non-finite measurements become null)."""
        m = self.measured if math.isfinite(self.measured) else None
        return {"name": self.name, "statement": self.statement, "measured": m,
                "threshold": self.threshold, "op": self.op, "holds": self.holds}


@dataclasses.dataclass
class Result:
    """What ``main(config)`` of an experiment returns.

    Attributes:
      metrics: flat ``{name: number}`` of everything measured.
      claims: the paper's claims checked against ``metrics``.
      figures: ``{name: matplotlib Figure}``; saved as ``<name>.png``.
      tables: ``{name: markdown table}``; saved in ``tables.md`` and shown in the report.
      data: the data used (files, generators), for the report.
      notes: free text for the report (deviations, caveats).
    """

    metrics: dict[str, float]
    claims: list[Claim]
    figures: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, str] = dataclasses.field(default_factory=dict)
    data: list[str] = dataclasses.field(default_factory=list)
    notes: str = ""


@dataclasses.dataclass(frozen=True)
class RunContext:
    """Where and how the current run writes: out_dir (None outside the runner), mode, resume."""

    out_dir: Path | None = None
    mode: str = "quick"
    resume: bool = False

    def checkpoint_dir(self, name: str) -> Path | None:
        """Checkpoint folder for the training run ``name`` (None when not under the runner)."""
        return None if self.out_dir is None else self.out_dir / "checkpoints" / name


_CONTEXT: contextvars.ContextVar[RunContext] = contextvars.ContextVar("jaxml_run", default=RunContext())


def context() -> RunContext:
    """The current run's context (a default one with no output folder outside the runner)."""
    return _CONTEXT.get()


@contextlib.contextmanager
def _use_context(ctx: RunContext) -> Iterator[RunContext]:
    token = _CONTEXT.set(ctx)
    try:
        yield ctx
    finally:
        _CONTEXT.reset(token)


def log(msg: str, *args: Any) -> None:
    """Log a line to the run's ``log.txt`` (and stderr)."""
    _log.info(msg, *args)


def write_atomic(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (numpy scalars converted, NaN as null)."""
    write_atomic(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")
