"""Bayesian SPN samplers: seconds per sweep of the top-down collapsed sampler (jaxml's
contribution, Yokoi & Sato 2024) against the bottom-up Gibbs sampler (Trapp et al. 2019, the
baseline, written here) on nltcs over network sizes spanning 16x (repetitions 2..32 at 10 sums /
10 inputs per region, depth 4), in one run; plus log-likelihood throughput (data points per second)
of the jitted bottom-up pass on the largest structure.

Target (issue 5): top-down >= 30x faster per sweep at the largest size. SPFlow 1.1.0 has no Bayesian
sampler, so the sweep comparison has no external peer. The throughput row compares the jitted pass
with the same log-space einsum pass in NumPy (float64); an SPFlow likelihood peer in its own venv is
not wired in (see docs/spn_topdown.md).

Both samplers run in the same process with their sweeps interleaved (top-down, bottom-up,
top-down, ...), so a change in machine load hits both; each figure is the fastest of the timed
sweeps. The top-down sampler is jaxml's default blocked exact variant (128 data per block).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.data.debd import load_debd
from jaxml.spn import (
    RatSpnConfig,
    SamplerKind,
    batch_log_likelihood,
    build_structure,
    describe,
    init_params,
    make_prior,
    make_sampler,
)


def _sweep_seconds(st, x, prior, reps: int) -> dict:
    """Fastest of ``reps`` timed sweeps per sampler (after one warm-up sweep), interleaved."""
    key = jax.random.key(0)
    runs = {}
    for kind in (SamplerKind.TOP_DOWN, SamplerKind.BOTTOM_UP):
        sampler = make_sampler(kind, st, x, prior)
        state = jax.jit(sampler.init)(key)
        step = jax.jit(sampler.step).lower(key, state).compile()
        state, _ = step(key, state)
        jax.block_until_ready(state.counts)
        runs[kind] = [step, state, []]
    for i in range(reps):
        for kind, run in runs.items():
            t0 = time.perf_counter()
            run[1], _ = run[0](jax.random.fold_in(key, i), run[1])
            jax.block_until_ready(run[1].counts)
            run[2].append(time.perf_counter() - t0)
    return {kind: float(np.min(run[2])) for kind, run in runs.items()}


def run(device: str) -> list[dict]:
    """Rows: seconds per sweep per size (jaxml = top-down, peer = bottom-up), LL throughput."""
    data = load_debd("nltcs")
    rows_n = 2000 if device == "cpu" else 16000
    x = jnp.asarray(data.train[:rows_n], jnp.float32)
    prior = make_prior(x.shape[1])
    out = []
    reps_list = (2, 4, 8, 16, 32)
    for reps in reps_list:
        cfg = RatSpnConfig(num_vars=16, depth=4, num_sums=10, num_inputs=10, num_repetitions=reps)
        st = build_structure(jax.random.key(reps), cfg)
        secs = _sweep_seconds(st, x, prior, 3)
        td, bu = secs[SamplerKind.TOP_DOWN], secs[SamplerKind.BOTTOM_UP]
        out.append({"workload": f"nltcs {rows_n} rows, R={reps} ({describe(cfg)['sum_edges']} sum edges): "
                                "seconds per sweep", "metric": "seconds", "jaxml": td, "peer": bu,
                    "peer_name": "bottom-up Gibbs (Trapp et al. 2019, jaxml)", "ratio": bu / td})
    # log-likelihood throughput on the largest structure
    cfg = RatSpnConfig(num_vars=16, depth=4, num_sums=10, num_inputs=10, num_repetitions=reps_list[-1])
    st = build_structure(jax.random.key(0), cfg)
    params = init_params(jax.random.key(1), st)
    test = jnp.asarray(data.test, jnp.float32)
    f = jax.jit(lambda p, t: batch_log_likelihood(p, t, st, batch_size=512)).lower(params, test).compile()
    jax.block_until_ready(f(params, test))
    t0 = time.perf_counter()
    for _ in range(3):
        jax.block_until_ready(f(params, test))
    throughput = 3 * len(test) / (time.perf_counter() - t0)
    xs_np = np.asarray(test, np.float64)
    t0 = time.perf_counter()
    ll_np = _numpy_ll(params, xs_np, st)
    peer = len(test) / (time.perf_counter() - t0)
    diff = float(np.max(np.abs(ll_np - np.asarray(f(params, test)))))
    out.append({"workload": f"log-likelihood, R={reps_list[-1]} ({describe(cfg)['sum_edges']} sum edges), "
                            f"{len(test)} rows", "metric": "data points per second", "jaxml": throughput,
                "peer": peer, "peer_name": "NumPy einsum pass (float64)", "ratio": throughput / peer,
                "max_abs_ll_diff": diff})
    return out


def _numpy_ll(params, xs: np.ndarray, st) -> np.ndarray:
    """The same bottom-up pass in NumPy (log-space cross products), batched over rows."""
    from scipy.special import logsumexp

    cfg = st.cfg
    logit = np.asarray(params["leaf"]["logit"], np.float64)  # (R, D, I)
    lp1 = -np.logaddexp(0, -logit)
    lp0 = -np.logaddexp(0, logit)
    per_var = xs[:, None, :, None] * lp1[None] + (1 - xs[:, None, :, None]) * lp0[None]  # (N, R, D, I)
    onehot = np.eye(2**cfg.depth)[np.asarray(st.leaf_of)]  # (R, D, J)
    vals = np.einsum("nrdi,rdj->nrji", per_var, onehot)
    for m in range(cfg.depth - 1, 0, -1):
        w = np.exp(np.asarray(params["sums"][m - 1], np.float64))  # (R, 2^m, S, K, K)
        left, right = vals[:, :, 0::2], vals[:, :, 1::2]
        ml, mr = left.max(-1, keepdims=True), right.max(-1, keepdims=True)
        s = np.einsum("rjsab,nrja,nrjb->nrjs", w, np.exp(left - ml), np.exp(right - mr))
        vals = np.log(s) + ml + mr
    root = np.asarray(params["root"], np.float64)  # (R, K, K)
    scores = root[None] + vals[:, :, 0, :, None] + vals[:, :, 1, None, :]
    return logsumexp(scores.reshape(len(xs), -1), axis=-1)
