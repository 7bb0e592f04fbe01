"""Looped transformer forward+backward: ``lax.scan`` over the shared block vs an unrolled Python
loop of the same block, at r in {8, 32}. Compile time grows with r for the unrolled program and
stays flat for scan; step times are compared too. Both compute the same gradients (checked)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxml import nn
from jaxml.nn.looped import LoopedConfig, apply_looped, init_looped, looped_block
from jaxml.nn.transformer import embed_tokens, readout


def _unrolled(params, tokens, cfg: LoopedConfig, r: int):
    def one(seq):
        x = embed_tokens(params, seq, cfg.block)
        for t in range(r):
            x = looped_block(params, x, jnp.asarray(t), cfg)
        return readout(params, x, cfg.block)[0]
    return jax.vmap(one)(tokens)


def _time(fn, *args, reps: int = 5) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    t_compile = time.perf_counter() - t0
    out = jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return t_compile, float(np.median(times)), out


def run(device: str) -> list[dict]:
    """Rows for r = 8 and 32: compile seconds and step seconds, scan (jaxml) vs unrolled (peer)."""
    width = 256 if device == "gpu" else 64
    block = nn.TransformerConfig(vocab_size=32, d_model=width, n_layers=1, n_heads=4, d_ff=4 * width, max_len=32,
                                 norm=nn.NormKind.RMS)
    cfg = LoopedConfig(block, timestep=True)
    params = init_looped(jax.random.key(0), cfg)
    tokens = jax.random.randint(jax.random.key(1), (16, 24), 0, 32)
    rows = []
    for r in (8, 32):
        def loss_scan(p, x, r=r):
            return jnp.mean(apply_looped(p, x, cfg, r) ** 2)

        def loss_unrolled(p, x, r=r):
            return jnp.mean(_unrolled(p, x, cfg, r) ** 2)

        c_s, s_s, g_s = _time(jax.grad(loss_scan), params, tokens)
        c_u, s_u, g_u = _time(jax.grad(loss_unrolled), params, tokens)
        diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(g_s), jax.tree_util.tree_leaves(g_u)))
        common = {"max_grad_diff": diff, "width": width}
        rows.append({"workload": f"looped fwd+bwd r={r}: compile", "metric": "seconds", "jaxml": c_s, "peer": c_u,
                     "peer_name": "unrolled Python loop", "ratio": c_u / c_s, **common})
        rows.append({"workload": f"looped fwd+bwd r={r}: step", "metric": "seconds", "jaxml": s_s, "peer": s_u,
                     "peer_name": "unrolled Python loop", "ratio": s_u / s_s, **common})
    return rows
