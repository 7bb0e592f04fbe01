"""The registry of experiments: every ``experiments/<slug>.py`` of the checkout.

The folder is ``$JAXML_EXPERIMENTS`` if set, else ``experiments/`` beside the ``jaxml`` package
(an editable install from a clone, the documented set-up). Files starting with ``_`` are skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["UnknownExperimentError", "experiments_dir", "list_experiments", "load_experiment", "describe"]


class UnknownExperimentError(KeyError):
    """No experiment has that slug; the message lists the known slugs."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def experiments_dir() -> Path:
    """Folder holding the experiment scripts."""
    env = os.environ.get("JAXML_EXPERIMENTS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "experiments"


def list_experiments() -> list[str]:
    """Sorted slugs of all experiments."""
    d = experiments_dir()
    if not d.is_dir():
        return []
    return sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("_"))


def register_experiments_package() -> None:
    """Make ``jaxml_experiments`` a package over :func:`experiments_dir`, so that
    ``import jaxml_experiments.<slug>`` finds ``experiments/<slug>.py`` and an experiment's
    functions pickle by reference (``jaxml.experiment.TaskPool`` workers import them that way)."""
    if "jaxml_experiments" not in sys.modules:
        package = ModuleType("jaxml_experiments", "experiments/<slug>.py as loaded by jaxml")
        package.__path__ = [str(experiments_dir())]
        sys.modules["jaxml_experiments"] = package


def load_experiment(slug: str) -> ModuleType:
    """Import ``experiments/<slug>.py`` and check it has ``get_config`` and ``main``.

    Raises:
      UnknownExperimentError: unknown slug (lists the known ones).
    """
    slugs = list_experiments()
    if slug not in slugs:
        raise UnknownExperimentError(
            f"unknown experiment {slug!r}; known experiments: {', '.join(slugs) or '(none found in ' + str(experiments_dir()) + ')'}")
    name = f"jaxml_experiments.{slug}"
    if name in sys.modules:
        return sys.modules[name]
    register_experiments_package()
    path = experiments_dir() / f"{slug}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    for attr in ("get_config", "main"):
        if not callable(getattr(module, attr, None)):
            raise TypeError(f"{path} must define {attr}(); see experiments/benign_attention.py")
    return module


def describe(slug: str) -> str:
    """First line of the experiment's docstring."""
    doc = (load_experiment(slug).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""
