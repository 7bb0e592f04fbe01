"""Run benchmarks and print a markdown table; see ``benchmarks/__init__.py``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from benchmarks import available, load
from jaxml._host import tune_malloc_if_requested


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "n/a" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    tune_malloc_if_requested()   # JAXML_MALLOC_TUNING=1 only, as for the jaxml CLI (jaxml/_host.py)
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available())})")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = p.parse_args(argv)
    if args.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    if args.device == "gpu" and jax.default_backend() != "gpu":
        print(f"error: --device gpu but JAX sees backend {jax.default_backend()!r}; install jax[cuda12]", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("| benchmark | workload | metric | jaxml | peer | peer figure | ratio (>1: jaxml faster) | checks |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.names or available():
        t0 = time.perf_counter()
        rows = load(name).run(args.device)
        rec = {"benchmark": name, "device": args.device, "backend": jax.default_backend(),
               "devices": [str(d) for d in jax.devices()], "wall_s": time.perf_counter() - t0, "rows": rows}
        tmp = out / f".{name}.json.tmp"
        tmp.write_text(json.dumps(rec, indent=2))
        tmp.replace(out / f"{name}.json")
        for r in rows:
            checks = ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()
                               if k not in ("workload", "metric", "jaxml", "peer", "peer_name", "ratio"))
            print(f"| {name} | {r['workload']} | {r.get('metric', 'seconds')} | {_fmt(r['jaxml'])} | "
                  f"{r.get('peer_name', '')} | {_fmt(r.get('peer'))} | {_fmt(r.get('ratio'))} | {checks} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
