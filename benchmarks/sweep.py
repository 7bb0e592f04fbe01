"""Sweep helper vs a Python loop over grid cells: the benign-attention quick heatmap grid.

Both compute the same cells (same keys, same training step); the loop calls a jitted
single-cell function once per (d, ||mu||, seed), the sweep calls one jitted, vmapped,
device-sharded function per d. Times include compilation (each side compiles once per d).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))


def run(device: str) -> list[dict]:
    """Time the quick heatmap grid both ways and check they give the same accuracies."""
    import benign_attention as ba

    cfg = ba.get_config("quick")
    key = jax.random.fold_in(jax.random.key(cfg.seed), 7)
    t0 = time.perf_counter()
    loop = np.zeros((len(cfg.heat_d), len(cfg.heat_mu), cfg.heat_seeds))
    for i, d in enumerate(cfg.heat_d):
        cell = jax.jit(lambda k, mu, d=d: ba.train_cell(k, mu, cfg=cfg, d=d))
        kd = jax.random.fold_in(key, d)
        for j, mu in enumerate(cfg.heat_mu):
            for s in range(cfg.heat_seeds):
                loop[i, j, s] = float(cell(jax.random.fold_in(kd, s), np.float32(mu))["test_acc"])
    t_loop = time.perf_counter() - t0
    t0 = time.perf_counter()
    swept = ba.heatmap(cfg, key)["test_acc"]
    t_sweep = time.perf_counter() - t0
    diff = float(np.max(np.abs(swept - loop)))
    return [{
        "workload": f"benign_attention quick heatmap: {len(cfg.heat_d)}x{len(cfg.heat_mu)} cells x {cfg.heat_seeds} seeds, "
                    f"{cfg.steps} GD steps",
        "metric": "seconds", "jaxml": t_sweep, "peer": t_loop, "peer_name": "Python loop over cells (jit per cell)",
        "ratio": t_loop / t_sweep, "max_test_acc_diff": diff,
        "same_numbers": bool(diff <= 2.0 / cfg.n_test), "devices": jax.device_count(),
    }]
