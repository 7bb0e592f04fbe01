"""Experiment configuration: frozen dataclasses whose fields carry their valid range.

An experiment declares::

    @dataclasses.dataclass(frozen=True)
    class Config(ExperimentConfig):
        d: int = param(2000, lo=2, hi=100_000, help="token dimension")

and ``get_config(mode)`` returns the values for ``smoke`` / ``quick`` / ``full``. Construction
validates every field (type, range, choices) and names the field and its valid range on error;
``apply_overrides`` turns ``--set key=value`` strings into a new validated config.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["Mode", "ConfigError", "ExperimentConfig", "param", "apply_overrides", "config_to_dict"]


class Mode(enum.Enum):
    """Run scale. SMOKE: seconds (tests); QUICK: minutes on 2 CPU cores, claims must hold;
    FULL: the paper's scale, meant for accelerators."""

    SMOKE = "smoke"
    QUICK = "quick"
    FULL = "full"

    @classmethod
    def parse(cls, value: "str | Mode") -> "Mode":
        """Mode from its name; raises ``ConfigError`` listing the modes otherwise."""
        if isinstance(value, Mode):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ConfigError(f"unknown mode {value!r}; choose one of: {', '.join(m.value for m in cls)}") from None


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and what is allowed."""


def param(default: Any, *, lo: float | None = None, hi: float | None = None,
          choices: Iterable[Any] | None = None, help: str = "") -> Any:
    """Declare a config field with its default, inclusive range ``[lo, hi]`` and/or choices.

    For tuple-valued fields the range applies to every element.
    """
    meta = {"lo": lo, "hi": hi, "choices": tuple(choices) if choices is not None else None, "help": help}
    return dataclasses.field(default=default, metadata=meta)


def _range_text(lo: Any, hi: Any) -> str:
    if lo is not None and hi is not None:
        return f"[{lo}, {hi}]"
    if lo is not None:
        return f">= {lo}"
    return f"<= {hi}"


def _check_value(name: str, value: Any, default: Any, meta: dict) -> None:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config field '{name}' must be true or false, got {value!r}")
        return
    if isinstance(default, enum.Enum):
        if not isinstance(value, type(default)):
            raise ConfigError(f"config field '{name}' must be one of {[m.value for m in type(default)]}, got {value!r}")
        return
    items = value if isinstance(default, tuple) else (value,)
    if isinstance(default, tuple) and not isinstance(value, tuple):
        raise ConfigError(f"config field '{name}' must be a tuple (comma-separated on the command line), got {value!r}")
    for v in items:
        if isinstance(default, (int, float)) or (isinstance(default, tuple) and default and isinstance(default[0], (int, float))):
            want_int = (isinstance(default, int) and not isinstance(default, bool)) or (
                isinstance(default, tuple) and default and all(isinstance(x, int) for x in default))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (want_int and not isinstance(v, int)):
                raise ConfigError(f"config field '{name}' must be {'an integer' if want_int else 'a number'}, got {v!r}")
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config field '{name}' must be finite, got {v!r}")
        lo, hi = meta.get("lo"), meta.get("hi")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise ConfigError(f"config field '{name}' = {v!r} is out of range: valid range is {_range_text(lo, hi)}")
        choices = meta.get("choices")
        if choices is not None and v not in choices:
            raise ConfigError(f"config field '{name}' = {v!r} is not allowed: choose one of {list(choices)}")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    """Base of every experiment config: a frozen, hashable, validated dataclass.

    Attributes:
      seed: base seed; run r of an experiment uses ``jax.random.key(seed)`` and folds in r.
    """

    seed: int = param(0, lo=0, hi=2**31 - 1, help="base PRNG seed")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(f.name, getattr(self, f.name), f.default, dict(f.metadata))

    @classmethod
    def describe(cls) -> dict[str, str]:
        """``{field: "help (range)"}`` for CLI help and error messages."""
        out = {}
        for f in dataclasses.fields(cls):
            m = f.metadata
            rng = ""
            if m.get("lo") is not None or m.get("hi") is not None:
                rng = f" {_range_text(m.get('lo'), m.get('hi'))}"
            if m.get("choices"):
                rng += f" one of {list(m['choices'])}"
            out[f.name] = f"{m.get('help', '')}{rng}".strip()
        return out


C = TypeVar("C", bound=ExperimentConfig)


def _parse(text: str, default: Any, name: str) -> Any:
    t = text.strip()
    if isinstance(default, bool):
        if t.lower() in ("1", "true", "yes", "on"):
            return True
        if t.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"config field '{name}' must be true or false, got {text!r}")
    if isinstance(default, enum.Enum):
        for m in type(default):
            if t.lower() in (str(m.value).lower(), m.name.lower()):
                return m
        raise ConfigError(f"config field '{name}' must be one of {[m.value for m in type(default)]}, got {text!r}")
    if isinstance(default, tuple):
        elem = default[0] if default else ""
        parts = [p for p in t.strip("()[]").split(",") if p.strip()]
        return tuple(_parse(p, elem, name) for p in parts)
    if isinstance(default, int):
        try:
            return int(t)
        except ValueError:
            try:
                f = float(t)
            except ValueError:
                raise ConfigError(f"config field '{name}' must be an integer, got {text!r}") from None
            if f.is_integer():
                return int(f)
            raise ConfigError(f"config field '{name}' must be an integer, got {text!r}") from None
    if isinstance(default, float):
        try:
            return float(t)
        except ValueError:
            raise ConfigError(f"config field '{name}' must be a number, got {text!r}") from None
    return t


def apply_overrides(cfg: C, sets: Iterable[str]) -> C:
    """Return ``cfg`` with ``key=value`` overrides applied and validated.

    Raises:
      ConfigError: malformed item, unknown key (lists the allowed keys), unparsable or
        out-of-range value (names the field and its range).
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes: dict[str, Any] = {}
    for item in sets:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}; allowed keys: {', '.join(sorted(fields))}")
        changes[key] = _parse(value, getattr(cfg, key), key)
    return dataclasses.replace(cfg, **changes) if changes else cfg


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    """JSON-ready dict of a config (enums by value, tuples as lists)."""
    def conv(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return {f.name: conv(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
