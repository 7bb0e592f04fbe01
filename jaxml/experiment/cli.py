"""The ``jaxml`` command line (also ``python -m jaxml`` and ``python experiments/<slug>.py``).

::

    jaxml list
    jaxml run SLUG [--mode smoke|quick|full] [--out DIR] [--set key=value ...] [--seed N] [--resume] [--distributed]
    jaxml reproduce [SLUG ...] [--mode quick] [--out DIR] [--timeout SECONDS]

Exit codes: 0 success (also when a claim does not hold: that is a result); 2 bad usage or
config; 3 missing data; 4 non-finite loss; 5 unwritable output; 1 any other error. Errors print
one line ``error: <cause>; <fix>``.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from jaxml._host import tune_malloc_if_requested

__all__ = ["main", "run_script"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxml", description="Reproduce ML-theory papers with jaxml.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    r = sub.add_parser("run", help="run one experiment")
    r.add_argument("slug")
    _run_flags(r)
    rp = sub.add_parser("reproduce", help="run several experiments, then write report.md/html")
    rp.add_argument("slugs", nargs="*", help="experiments (default: all)")
    rp.add_argument("--mode", default="quick", help="smoke | quick | full (default quick)")
    rp.add_argument("--out", default="results", help="results root (default results/)")
    rp.add_argument("--seed", type=int, default=None)
    rp.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="kill an experiment that runs longer and go on with the next (default: no limit)")
    rp.add_argument("--distributed", action="store_true",
                    help="each experiment's process calls jax.distributed.initialize() first")
    return p


def _run_flags(r: argparse.ArgumentParser) -> None:
    r.add_argument("--mode", default="quick", help="smoke | quick | full (default quick)")
    r.add_argument("--out", default=None, help="results folder (default results/SLUG/MODE)")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (repeatable)")
    r.add_argument("--seed", type=int, default=None, help="override the config's seed")
    r.add_argument("--resume", action="store_true", help="continue from checkpoints in --out")
    r.add_argument("--distributed", action="store_true",
                   help="call jax.distributed.initialize() so sweeps span several hosts")


def _error(msg: str, code: int) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _dispatch(args: argparse.Namespace) -> int:
    from jaxml.data.core import DataNotFoundError
    from jaxml.experiment.config import ConfigError, Mode
    from jaxml.experiment.registry import UnknownExperimentError, describe, list_experiments
    from jaxml.experiment.runner import OutputDirError, run_experiment, run_isolated
    from jaxml.train.loop import NonFiniteLossError

    if args.command == "list":
        for slug in list_experiments():
            try:
                print(f"{slug:20s} {describe(slug)}")
            except Exception as e:  # a broken script must not hide the others
                print(f"{slug:20s} (cannot import: {e})")
        return 0

    if args.command == "run" and args.distributed:  # reproduce passes the flag to each child process
        import jax

        jax.distributed.initialize()

    try:
        if args.command == "run":
            result, out = run_experiment(args.slug, mode=args.mode, out=args.out, sets=args.sets,
                                         seed=args.seed, resume=args.resume)
            held = sum(c.holds for c in result.claims)
            print(f"{args.slug}: {held}/{len(result.claims)} claims hold; results in {out}")
            return 0
        # reproduce
        from jaxml.experiment.report import write_report
        from jaxml.experiment.runner import prepare_out_dir

        mode = Mode.parse(args.mode)
        slugs = args.slugs or list_experiments()
        unknown = [s for s in slugs if s not in list_experiments()]
        if unknown:
            raise UnknownExperimentError(
                f"unknown experiment(s) {', '.join(unknown)}; known experiments: {', '.join(list_experiments())}")
        if args.timeout is not None and not args.timeout > 0:
            raise ConfigError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
        root = prepare_out_dir(args.out)
        records = []
        for slug in slugs:  # one process per experiment: a crash or hang stays in its own record
            rec = run_isolated(slug, mode=mode, out=root / slug / mode.value, seed=args.seed,
                               timeout=args.timeout, distributed=args.distributed)
            try:
                rec["title"] = describe(slug)
            except Exception as e:  # the child already reported why the script cannot be imported
                rec["title"] = f"(cannot import: {type(e).__name__})"
            if "error" in rec:
                print(f"error in {slug}: {rec['error']}", file=sys.stderr)
            records.append(rec)
        md, html = write_report(records, root, mode=mode.value)
        print(f"report: {md} and {html}")
        return 0 if all("error" not in r for r in records) else 1
    except UnknownExperimentError as e:
        return _error(str(e), 2)
    except ConfigError as e:
        return _error(f"{e}", 2)
    except DataNotFoundError as e:
        return _error(f"{e}", 3)
    except NonFiniteLossError as e:
        return _error(f"{e}", 4)
    except OutputDirError as e:
        return _error(f"{e}", 5)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxml`` console script; returns the exit code."""
    tune_malloc_if_requested()
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return _error("interrupted; rerun with --resume to continue from the last checkpoint", 130)
    except Exception as e:  # unexpected: keep the traceback for bug reports
        traceback.print_exc()
        return _error(f"{type(e).__name__}: {e}", 1)


def run_script(script_file: str, argv: list[str] | None = None) -> None:
    """``if __name__ == "__main__": run_script(__file__)`` in ``experiments/<slug>.py``.

    Accepts the flags of ``jaxml run`` and exits with its code.
    """
    tune_malloc_if_requested()
    p = argparse.ArgumentParser(prog=Path(script_file).name)
    _run_flags(p)
    ns = p.parse_args(sys.argv[1:] if argv is None else argv)
    ns.command, ns.slug = "run", Path(script_file).stem
    try:
        code = _dispatch(ns)
    except Exception as e:
        traceback.print_exc()
        code = _error(f"{type(e).__name__}: {e}", 1)
    raise SystemExit(code)
