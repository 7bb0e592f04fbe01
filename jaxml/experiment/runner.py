"""The one runner: resolve a config, run ``main``, write the results folder atomically.

A run writes ``DIR/`` (default ``results/<slug>/<mode>/``): ``config.json`` (the resolved
config), ``metrics.json`` (flat numbers), ``claims.json`` (``{"claims": [...]}``), one PNG per
figure, ``tables.md``, ``run.json`` (runtime, versions, data) and ``log.txt``.
"""

from __future__ import annotations

import io
import logging
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jaxml.experiment.config import ExperimentConfig, Mode, apply_overrides, config_to_dict
from jaxml.experiment.registry import load_experiment
from jaxml.experiment.results import Result, RunContext, _use_context, write_atomic, write_json_atomic

__all__ = ["OutputDirError", "default_out_dir", "prepare_out_dir", "resolve_config", "run_experiment", "run_isolated",
           "save_result"]

# what a non-zero exit code of ``jaxml run`` means (see jaxml.experiment.cli)
_EXIT_MEANING = {1: "unexpected error", 2: "bad config", 3: "missing data", 4: "non-finite loss",
                 5: "unwritable output", 130: "interrupted", -9: "killed (SIGKILL, e.g. out of memory)"}


class OutputDirError(OSError):
    """The output folder cannot be created or written."""


def default_out_dir(slug: str, mode: Mode) -> Path:
    """``results/<slug>/<mode>`` under the current folder."""
    return Path("results") / slug / mode.value


def prepare_out_dir(out: str | Path) -> Path:
    """Create ``out`` and check it is writable.

    Raises:
      OutputDirError: naming the folder and the reason, with the fix.
    """
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".jaxml_write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        reason = e.strerror or str(e)
        raise OutputDirError(f"cannot write to output folder {out}: {reason}; pass a writable --out DIR") from None
    return out


def resolve_config(module: Any, mode: Mode, sets: list[str] | None = None, seed: int | None = None) -> ExperimentConfig:
    """``module.get_config(mode)`` with ``--seed`` and ``--set`` overrides applied and validated."""
    cfg = module.get_config(mode.value)
    if not isinstance(cfg, ExperimentConfig):
        raise TypeError(f"{module.__name__}.get_config must return an ExperimentConfig, got {type(cfg).__name__}")
    overrides = list(sets or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    return apply_overrides(cfg, overrides)


def save_result(result: Result, out: Path) -> None:
    """Write metrics, claims, figures and tables of ``result`` into ``out`` atomically."""
    if not isinstance(result, Result):
        raise TypeError(f"main() must return jaxml.experiment.Result, got {type(result).__name__}")
    write_json_atomic(out / "metrics.json", {k: float(v) for k, v in result.metrics.items()})
    write_json_atomic(out / "claims.json", {"claims": [c.to_json() for c in result.claims]})
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    for name, fig in result.figures.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        write_atomic(out / f"{name}.png", buf.getvalue())
        plt.close(fig)
    if result.tables:
        write_atomic(out / "tables.md", "\n\n".join(f"### {k}\n\n{v}" for k, v in result.tables.items()) + "\n")


def run_experiment(slug: str, *, mode: str | Mode = Mode.QUICK, out: str | Path | None = None,
                   sets: list[str] | None = None, seed: int | None = None, resume: bool = False,
                   echo: bool = True) -> tuple[Result, Path]:
    """Run the experiment ``slug`` and write its results folder.

    Args:
      slug: experiment name (``jaxml list``).
      mode: smoke, quick or full.
      out: results folder (default ``results/<slug>/<mode>``).
      sets: ``key=value`` config overrides.
      seed: overrides the config's seed.
      resume: continue training runs from their checkpoints in ``out/checkpoints``.
      echo: also log to stderr.

    Returns:
      ``(result, out_dir)``.
    """
    mode = Mode.parse(mode)
    module = load_experiment(slug)
    cfg = resolve_config(module, mode, sets, seed)
    out_dir = prepare_out_dir(out if out is not None else default_out_dir(slug, mode))
    write_json_atomic(out_dir / "config.json", {"slug": slug, "mode": mode.value, **config_to_dict(cfg)})

    logger = logging.getLogger("jaxml")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    fh = logging.FileHandler(out_dir / "log.txt", mode="a" if resume else "w", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    handlers: list[logging.Handler] = [fh]
    if echo:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(logging.Formatter("[%(name)s] %(message)s"))
        handlers.append(sh)
    for h in handlers:
        logger.addHandler(h)
    t0 = time.perf_counter()
    try:
        logger.info("run %s mode=%s out=%s resume=%s", slug, mode.value, out_dir, resume)
        with _use_context(RunContext(out_dir=out_dir, mode=mode.value, resume=resume)):
            result = module.main(cfg)
        runtime = time.perf_counter() - t0
        save_result(result, out_dir)
        import jax

        write_json_atomic(out_dir / "run.json", {
            "slug": slug, "mode": mode.value, "runtime_s": runtime, "data": list(result.data),
            "notes": result.notes, "jax": jax.__version__, "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()], "python": platform.python_version(),
        })
        held = sum(c.holds for c in result.claims)
        logger.info("done %s in %.1fs: %d/%d claims hold", slug, runtime, held, len(result.claims))
        for c in result.claims:
            logger.info("  [%s] %s: measured %.4g %s %.4g", "holds" if c.holds else "FAILS", c.name,
                        c.measured, c.op, c.threshold)
    finally:
        for h in handlers:
            logger.removeHandler(h)
            h.close()
    return result, out_dir


def run_isolated(slug: str, *, mode: str | Mode, out: str | Path, seed: int | None = None,
                 timeout: float | None = None, distributed: bool = False) -> dict[str, str]:
    """Run one experiment in a fresh Python process (``python -m jaxml run``), for ``reproduce``.

    A separate process per experiment keeps one paper's failure, hang, memory use or XLA state
    from reaching the next: with ``timeout`` (seconds) a run that takes longer is killed and
    recorded as timed out, and the remaining experiments still run. Output streams through.

    Returns:
      A report record: ``{"slug", "out_dir"}`` on success, ``{"slug", "error"}`` otherwise.
    """
    mode = Mode.parse(mode)
    cmd = [sys.executable, "-m", "jaxml", "run", slug, "--mode", mode.value, "--out", str(out)]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    if distributed:
        cmd.append("--distributed")
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"slug": slug, "error": f"timed out after {timeout:g} s and was killed; run it alone with "
                                       f"`jaxml run {slug} --mode {mode.value}` or raise --timeout"}
    if proc.returncode != 0:
        why = _EXIT_MEANING.get(proc.returncode, "error")
        return {"slug": slug, "error": f"`jaxml run {slug}` exited with code {proc.returncode} ({why}); "
                                       f"its log is {Path(out) / 'log.txt'}"}
    return {"slug": slug, "out_dir": str(out)}
