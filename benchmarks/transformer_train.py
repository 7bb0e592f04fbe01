"""Transformer training throughput: a jaxml decoder train step vs the same model in PyTorch.

Serves the "Benchmark" sections of the ``dyck_nope`` issue (a jaxml decoder train step vs an
equivalent PyTorch model at two sizes) and of the ``induction_bigram`` issue (the trained model's
step at T = 256). For every workload both sides train the same decoder-only pre-norm transformer

    h^0 = E[x] (+ P[t]);  h += Attn(Norm(h));  h += W2 GELU(W1 Norm(h) + b1) + b2;  logits = Norm(h) U

with the same sizes (equal parameter counts are checked), the same next-token cross-entropy on a
fixed batch and the same optimiser (AdamW with equal hyperparameters; the induction model uses
the experiment's own ``frozen_optimizer``: AdamW on attention/FFN, 10x-rate Adam on the relative
biases, frozen embeddings/unembedding, mirrored in PyTorch with ``requires_grad=False``):

* jaxml: ``jaxml.nn`` (``init_transformer`` / ``apply_transformer``) and optax through
  ``jaxml.train``: the headline figure runs ``jaxml.train.make_chunk`` (the program
  ``jaxml.train.train`` runs: ``k`` steps of ``make_step`` in one ``lax.scan``); the ``step``
  columns call ``jax.jit(make_step(...))`` once per step (state donated), like a hand-written loop.
* peer: ``torch.nn`` modules in eager mode with ``F.scaled_dot_product_attention``,
  ``torch.optim.AdamW`` (foreach) and ``torch.set_num_threads`` equal to XLA's CPU thread count.

Timing: after compilation and warm-up, each round runs the jaxml chunk, the jaxml per-step loop
and PyTorch one after another (about ``seconds`` each), so a loaded, shared machine slows all of
them alike; figures are medians over rounds of tokens/s and of the per-round ratios
``jaxml / torch`` (> 1: jaxml is faster). Checks per row: parameter counts, and that both losses
are finite and decrease over the first steps.

PyTorch runs with ``OMP_WAIT_POLICY=PASSIVE`` unless the environment sets it: on a shared machine
libgomp's spin-waiting made 2-thread PyTorch steps up to 10x slower (threads spinning on cores
other processes need), which would flatter jaxml. This module sets it at import, before torch is
imported; the row records the policy in force.

``--device gpu`` runs the same workloads on the accelerator with larger batches; the PyTorch peer
runs on CUDA when ``torch.cuda.is_available()``, otherwise the row has jaxml's figures only.

``python -m benchmarks.transformer_train --ablation`` replays the speed fixes of ``jaxml.nn`` one
at a time (each step switches one implementation back on; step 0 has them all off, which
reproduces the code before the fixes) against PyTorch in the same process.

``python -m benchmarks.transformer_train --pieces`` times the parts of one layer of the width-256
decoder (forward, and forward + backward via ``jax.vjp`` / ``Tensor.backward``), the readout with
the loss, the embedding, and the whole train step, in process CPU time (``time.process_time``,
both sides on the same threads), which other processes' load inflates far less than wall time.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_OMP_POLICY_PRESET = "OMP_WAIT_POLICY" in os.environ
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxml._host import malloc_tuned  # noqa: E402
from jaxml.nn import (  # noqa: E402
    Activation,
    NormKind,
    PosEncoding,
    TransformerConfig,
    apply_transformer,
    init_transformer,
)
from jaxml.train import TrainState, make_chunk, make_step  # noqa: E402

__all__ = ["Workload", "Trainer", "workloads", "jax_trainers", "torch_trainer", "measure", "run", "ablation",
           "pieces"]


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmarked model and batch.

    Attributes:
      name: row label.
      cfg: the jaxml transformer configuration (the PyTorch model mirrors it).
      batch: sequences per step.
      seq_len: tokens per sequence T.
      optimizer: "adamw" (every parameter, weight decay ``weight_decay``) or "induction" (the
        induction_bigram experiment's ``frozen_optimizer``).
      lr: learning rate.
      weight_decay: AdamW weight decay.
    """

    name: str
    cfg: TransformerConfig
    batch: int
    seq_len: int
    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-2

    @property
    def tokens(self) -> int:
        """Tokens per step, ``batch * seq_len``."""
        return self.batch * self.seq_len


@dataclasses.dataclass
class Trainer:
    """A training loop under test: ``run(n)`` queues ``n`` steps (``n`` a multiple of
    ``steps_per_call``), ``sync()`` waits for them, ``loss()`` is the last step's loss (blocks)."""

    run: Callable[[int], None]
    sync: Callable[[], None]
    loss: Callable[[], float]
    steps_per_call: int = 1


def _decoder(width: int, layers: int, seq: int, vocab: int = 256) -> TransformerConfig:
    return TransformerConfig(vocab_size=vocab, d_model=width, n_layers=layers, n_heads=4, d_ff=4 * width,
                             max_len=seq, pos_encoding=PosEncoding.LEARNED, norm=NormKind.LAYER,
                             activation=Activation.GELU)


def _induction_cfg(seq: int, mode: str) -> tuple[TransformerConfig, float, float]:
    """The induction_bigram experiment's RPE model (``model_config``) at sequence length ``seq``."""
    from experiments.induction_bigram import get_config, model_config

    ecfg = dataclasses.replace(get_config(mode), seq_len=seq, test_multipliers=(1,))
    return model_config(ecfg, "rpe", 65), ecfg.lr, ecfg.weight_decay


def workloads(device: str) -> list[Workload]:
    """The benchmarked workloads; ``device="gpu"`` keeps the models and raises the batches.

    The induction_bigram rows take the experiment's RPE model (vocabulary 65, 2 layers, 1 head, no
    norms, relative bias) at T = 256 in its quick size (d = 64, FFN 128) and full size (d = 256,
    FFN 1024; the full mode's batch 512 on GPU, 4 on CPU).
    """
    gpu = device == "gpu"
    out = [Workload("decoder d=64 L=2 T=64", _decoder(64, 2, 64), 256 if gpu else 32, 64),
           Workload("decoder d=256 L=4 T=128", _decoder(256, 4, 128), 128 if gpu else 16, 128)]
    for mode, b_cpu in (("quick", 16), ("full", 4)):
        cfg, lr, wd = _induction_cfg(256, mode)
        out.append(Workload(f"induction_bigram RPE {mode}-size d={cfg.d_model} T=256", cfg,
                            512 if gpu else b_cpu, 256, optimizer="induction", lr=lr, weight_decay=wd))
    return out


def _batch(w: Workload, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    seq = rng.integers(0, w.cfg.vocab_size, size=(w.batch, w.seq_len + 1), dtype=np.int64)
    return seq[:, :-1], seq[:, 1:]


# ------------------------------------------------------------------------------------------------
# jaxml side


def _jax_optimizer(w: Workload, params: dict) -> optax.GradientTransformation:
    if w.optimizer == "induction":
        from experiments.induction_bigram import frozen_optimizer

        return frozen_optimizer(params, w.lr, w.weight_decay, 10.0)
    return optax.adamw(w.lr, weight_decay=w.weight_decay)


def jax_trainers(w: Workload, *, chunk: bool = True, step: bool = True,
                 chunk_seconds: float = 0.3, max_chunk: int = 8) -> tuple[dict[str, Trainer], int]:
    """The jaxml loops on a fixed batch, compiled and warmed up: ``({"chunk": ..., "step": ...},
    n_params)``.

    ``step`` calls ``jax.jit(make_step(...), donate_argnums=0)`` once per step. ``chunk`` runs
    ``jaxml.train.make_chunk`` (what ``train`` runs) with ``k`` steps per call, ``k`` about
    ``chunk_seconds`` of steps (1..``max_chunk``; ``train`` uses its log interval, 100 by default,
    where the per-call cost is amortised further). Both start from the same parameters.
    """
    cfg = w.cfg
    params = init_transformer(jax.random.key(0), cfg)
    n_params = sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(params))
    x, y = _batch(w)
    batch = (jnp.asarray(x, jnp.int32), jnp.asarray(y, jnp.int32))

    def loss_fn(p: dict, b: tuple[jax.Array, jax.Array], key: jax.Array) -> tuple[jax.Array, dict]:
        del key
        logits = apply_transformer(p, b[0], cfg)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, b[1])), {}

    opt = _jax_optimizer(w, params)
    key = jax.random.key(1)
    out: dict[str, Trainer] = {}

    step_fn = jax.jit(make_step(loss_fn, opt, batch), donate_argnums=(0,))
    sbox: dict[str, Any] = {"state": TrainState.create(jax.tree_util.tree_map(jnp.copy, params), opt)}

    def step_run(n: int) -> None:
        for _ in range(n):
            sbox["state"], sbox["m"] = step_fn(sbox["state"], key, batch)

    st = Trainer(step_run, lambda: jax.block_until_ready(sbox["state"]), lambda: float(sbox["m"]["loss"]))
    st.run(1)
    st.sync()
    if step:
        out["step"] = st
    if chunk:
        k = max(1, min(max_chunk, int(chunk_seconds / max(_seconds(st, 1), 1e-6))))
        chunk_fn = make_chunk(loss_fn, opt, batch)
        cbox: dict[str, Any] = {"state": TrainState.create(params, opt)}

        def chunk_run(n: int) -> None:
            for _ in range(n // k):
                cbox["state"], cbox["m"] = chunk_fn(cbox["state"], key, batch, k)

        ch = Trainer(chunk_run, lambda: jax.block_until_ready(cbox["state"]),
                     lambda: float(cbox["m"]["loss"][-1]), k)
        ch.run(k)
        ch.sync()
        out["chunk"] = ch
    return out, n_params


# ------------------------------------------------------------------------------------------------
# PyTorch side


def _torch_model(cfg: TransformerConfig):
    """A ``torch.nn.Module`` with jaxml's transformer architecture and parameter count."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def make_norm(d: int):
        if cfg.norm is NormKind.LAYER:
            return nn.LayerNorm(d, eps=1e-5)
        if cfg.norm is NormKind.RMS:
            return nn.RMSNorm(d, eps=1e-6)
        return nn.Identity()

    d, h, dh, f = cfg.d_model, cfg.n_heads, cfg.head_dim, cfg.d_ff
    act = {Activation.GELU: nn.GELU(), Activation.RELU: nn.ReLU(), Activation.TANH: nn.Tanh(),
           Activation.IDENTITY: nn.Identity()}[cfg.activation]
    if cfg.pos_encoding not in (PosEncoding.LEARNED, PosEncoding.RELATIVE, PosEncoding.NONE):
        raise ValueError(f"no PyTorch mirror for {cfg.pos_encoding}")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm1 = make_norm(d)
            self.qkv = nn.Linear(d, 3 * h * dh, bias=False)
            self.wo = nn.Linear(h * dh, d, bias=False)
            if cfg.pos_encoding is PosEncoding.RELATIVE:
                self.rel = nn.Parameter(torch.zeros(h, 2 * cfg.max_len - 1))
            if f:
                self.norm2 = make_norm(d)
                self.w1, self.w2 = nn.Linear(d, f), nn.Linear(f, d)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, h, dh).permute(2, 0, 3, 1, 4)
            if cfg.pos_encoding is PosEncoding.RELATIVE:
                m = cfg.max_len
                off = torch.arange(t, device=x.device)[:, None] - torch.arange(t, device=x.device)[None, :]
                bias = self.rel[:, off.clamp(-(m - 1), m - 1) + m - 1]
                bias = bias.masked_fill(off < 0, float("-inf"))
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            else:
                o = F.scaled_dot_product_attention(q, k, v, is_causal=cfg.causal)
            x = x + self.wo(o.transpose(1, 2).reshape(b, t, h * dh))
            if f:
                x = x + self.w2(act(self.w1(self.norm2(x))))
            return x

    class Decoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(cfg.vocab_size, d)
            if cfg.pos_encoding is PosEncoding.LEARNED:
                self.pos = nn.Parameter(0.02 * torch.randn(cfg.max_len, d))
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.n_layers))
            self.norm = make_norm(d) if cfg.final_norm else nn.Identity()
            self.unembed = nn.Linear(d, cfg.output_dim, bias=False)

        def forward(self, idx):
            x = self.tok(idx)
            if cfg.pos_encoding is PosEncoding.LEARNED:
                x = x + self.pos[: idx.shape[1]]
            for blk in self.blocks:
                x = blk(x)
            return self.unembed(self.norm(x))

    return Decoder()


def torch_trainer(w: Workload, device: str = "cpu") -> tuple[Trainer, int]:
    """The PyTorch mirror of the jaxml loops (eager, one step per call) and its parameter count."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    dev = torch.device(device)
    model = _torch_model(w.cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    if w.optimizer == "induction":  # the experiment's frozen_optimizer, in torch terms
        for name, p in model.named_parameters():
            if name.startswith(("tok.", "pos", "unembed.")):
                p.requires_grad_(False)
        rel = [p for n, p in model.named_parameters() if n.endswith(".rel")]
        rest = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith(".rel")]
        opt = torch.optim.AdamW([{"params": rest, "lr": w.lr, "weight_decay": w.weight_decay},
                                 {"params": rel, "lr": 10.0 * w.lr, "weight_decay": 0.0}])
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=w.lr, weight_decay=w.weight_decay)
    x, y = (torch.as_tensor(a, device=dev) for a in _batch(w))
    box: dict[str, Any] = {}

    def run(n: int) -> None:
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            loss.backward()
            opt.step()
            box["loss"] = loss.detach()

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    return Trainer(run, sync, lambda: float(box["loss"])), n_params


# ------------------------------------------------------------------------------------------------
# measurement


def xla_cpu_threads() -> int:
    """Threads XLA's CPU client uses for intra-op parallelism (its Eigen pool: the cores this
    process may run on)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _losses(t: Trainer, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t.run(t.steps_per_call)
        out.append(t.loss())
    return out


def _seconds(t: "Trainer", n: int) -> float:
    t.sync()
    t0 = time.perf_counter()
    t.run(n)
    t.sync()
    return time.perf_counter() - t0


def measure(tokens_per_step: int, trainers: dict[str, Trainer], *, rounds: int = 5,
            seconds: float = 1.0, reference: str | None = None) -> dict[str, dict[str, float]]:
    """Interleaved throughput of several loops.

    Each round runs every trainer once for a step count calibrated to about ``seconds``. Returns,
    per trainer, the median tokens/s and, when ``reference`` names one of them, the median, min
    and max over rounds of ``tokens/s / reference's tokens/s``.
    """
    counts = {}
    for name, t in trainers.items():
        per = t.steps_per_call
        dt = _seconds(t, per) / per
        counts[name] = per * max(1, int(round(seconds / max(dt, 1e-6) / per)))
    tps: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, t in trainers.items():
            tps[name].append(tokens_per_step * counts[name] / _seconds(t, counts[name]))
    out = {}
    for name, v in tps.items():
        out[name] = {"tps": float(np.median(v))}
        if reference is not None:
            r = np.asarray(v) / np.asarray(tps[reference])
            out[name].update(ratio=float(np.median(r)), ratio_min=float(r.min()), ratio_max=float(r.max()))
    return out


def _decreasing(ls: list[float] | None) -> bool:
    return ls is None or (all(math.isfinite(v) for v in ls) and ls[-1] < ls[0])


def run(device: str, *, rounds: int = 5, seconds: float = 1.0, names: tuple[str, ...] | None = None) -> list[dict]:
    """One row per workload (those whose name contains one of ``names``, default all): tokens/s of
    jaxml (``train``'s chunked program) and of PyTorch, the ratio, the per-step-jit figures, and
    the checks."""
    import torch

    threads = xla_cpu_threads()
    torch.set_num_threads(threads)
    torch_dev = "cuda" if device == "gpu" and torch.cuda.is_available() else ("cpu" if device == "cpu" else None)
    policy = os.environ.get("OMP_WAIT_POLICY", "unset") + ("" if _OMP_POLICY_PRESET else " (set by this benchmark)")
    rows = []
    for w in workloads(device):
        if names and not any(n in w.name for n in names):
            continue
        t0 = time.perf_counter()
        jt, n_a = jax_trainers(w)
        compile_s = time.perf_counter() - t0
        la = _losses(jt["step"], 5)
        trainers = {"jaxml": jt["chunk"], "jaxml_step": jt["step"]}
        b, n_b, lb = None, None, None
        if torch_dev is not None:
            b, n_b = torch_trainer(w, torch_dev)
            lb = _losses(b, 6)[1:]
            trainers["torch"] = b
        m = measure(w.tokens, trainers, rounds=rounds, seconds=seconds,
                    reference="torch" if b is not None else None)
        peer = m.get("torch", {})
        rows.append({
            "workload": f"{w.name} B={w.batch}", "metric": "tokens/s", "jaxml": m["jaxml"]["tps"],
            "peer": peer.get("tps"),
            "peer_name": f"PyTorch {torch.__version__} eager ({torch_dev})" if torch_dev else "none (no CUDA torch)",
            "ratio": m["jaxml"].get("ratio"), "ratio_min": m["jaxml"].get("ratio_min"),
            "ratio_max": m["jaxml"].get("ratio_max"),
            "jaxml_step_tps": m["jaxml_step"]["tps"], "ratio_step": m["jaxml_step"].get("ratio"),
            "params_jaxml": n_a, "params_torch": n_b, "same_params": n_b is None or n_a == n_b,
            "loss_decreases": _decreasing(la) and _decreasing(lb),
            "jax_loss": [round(v, 4) for v in la], "torch_loss": None if lb is None else [round(v, 4) for v in lb],
            "chunk_steps": jt["chunk"].steps_per_call, "threads": threads, "omp_wait_policy": policy,
            "malloc_tuning": malloc_tuned(),
            "rounds": rounds, "compile_s": round(compile_s, 2),
        })
    return rows


# ------------------------------------------------------------------------------------------------
# ablation: the jaxml.nn speed fixes one at a time

FIXES = ("2-D matmuls (linear)", "erf GELU", "LayerNorm custom_jvp", "block-causal attention",
         "CPU matmul derivatives (linear)", "train() chunk")


@contextmanager
def _fixes_enabled(n: int) -> Iterator[None]:
    """Trace with only the first ``n`` of :data:`FIXES` (the jaxml.nn ones) switched on.

    Switched off, each fix is replaced by the code it replaced: a batched ``x @ W`` with the
    leading axes kept (what ``vmap`` of the per-sequence model compiled to), ``jax.nn.gelu``'s
    erfc form, LayerNorm by plain autodiff, the full T x T causal attention, ``linear`` without its
    CPU custom-derivative product (the row threshold raised out of reach).
    """
    import importlib

    att = importlib.import_module("jaxml.nn.attention")  # (jaxml.nn.attention is also a function name)
    lay = importlib.import_module("jaxml.nn.layers")
    tr = importlib.import_module("jaxml.nn.transformer")

    saved = (tr.linear, lay.gelu, lay._standardize, tr.causal_attention, lay.CPU_MATMUL_MIN_ROWS)

    def linear_3d(x, w, n_contract=1):
        return jnp.tensordot(x, w, axes=n_contract)

    def standardize_autodiff(x, eps):
        mu = jnp.mean(x, axis=-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True) + eps)

    def causal_full(*args, **kw):
        kw["block"] = 0
        return att.causal_attention(*args, **kw)

    try:
        if n < 1:
            tr.linear = linear_3d
        if n < 2:
            lay.gelu = lambda x: jax.nn.gelu(x, approximate=False)
        if n < 3:
            lay._standardize = standardize_autodiff
        if n < 4:
            tr.causal_attention = causal_full
        if n < 5:
            lay.CPU_MATMUL_MIN_ROWS = 1 << 62
        yield
    finally:
        tr.linear, lay.gelu, lay._standardize, tr.causal_attention, lay.CPU_MATMUL_MIN_ROWS = saved


def ablation(device: str = "cpu", *, rounds: int = 5, seconds: float = 0.8,
             names: tuple[str, ...] | None = None) -> list[dict]:
    """The fix ladder: per workload, tokens/s and the ratio to PyTorch with fixes 0..5 enabled
    (fix 6, ``train()``'s chunk, is the ``make_chunk`` loop with all fixes), all in one run."""
    import torch

    torch.set_num_threads(xla_cpu_threads())
    rows = []
    for w in workloads(device):
        if names and not any(n in w.name for n in names):
            continue
        trainers: dict[str, Trainer] = {}
        for n in range(len(FIXES)):
            last = n == len(FIXES) - 1
            with _fixes_enabled(n):
                jt, _ = jax_trainers(w, chunk=last)
            trainers[f"{n} fixes"] = jt["step"]
            if last:
                trainers[f"{n + 1} fixes"] = jt["chunk"]
        trainers["torch"], _ = torch_trainer(w)
        m = measure(w.tokens, trainers, rounds=rounds, seconds=seconds, reference="torch")
        for n in range(len(FIXES) + 1):
            r = m[f"{n} fixes"]
            rows.append({"workload": w.name, "fixes": n, "last_fix": FIXES[n - 1] if n else "none (old code)",
                         "jaxml_tps": r["tps"], "torch_tps": m["torch"]["tps"], "ratio": r["ratio"],
                         "ratio_min": r["ratio_min"], "ratio_max": r["ratio_max"]})
            print(f"| {w.name} | {n} | {rows[-1]['last_fix']} | {r['tps']:.0f} | {m['torch']['tps']:.0f} | "
                  f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f}) |", flush=True)
    return rows


# ------------------------------------------------------------------------------------------------
# pieces: where the step's time goes, jaxml vs PyTorch


def pieces(workload: int = 1, *, rounds: int = 5, calls: int = 8) -> list[dict]:
    """Per-piece CPU time of one workload (default: the width-256 decoder), jaxml vs PyTorch.

    Pieces: the FFN sublayer with its residual ``x + W2 GELU(W1 LN(x) + b1) + b2`` and the
    attention sublayer ``x + Attn(LN(x))`` of layer 0, forward and forward + backward (input and
    parameter gradients for a fixed cotangent); the readout ``CE(LN(x) U)`` and the embedding
    ``E[ids] + P`` forward + backward; and the whole train step (forward, backward, AdamW). Each
    figure is the median over ``rounds`` of the mean process CPU time over ``calls`` calls, with
    jaxml and PyTorch alternating; ``ratio`` is PyTorch / jaxml time (> 1: jaxml faster).
    """
    import torch
    import torch.nn.functional as F

    from jaxml.nn import transformer as tr
    from jaxml.nn.layers import norm

    torch.set_num_threads(xla_cpu_threads())
    w = workloads("cpu")[workload]
    cfg = w.cfg
    p = init_transformer(jax.random.key(0), cfg)
    lay0 = p["layers"][0]
    rng = np.random.default_rng(0)
    shape = (w.batch, w.seq_len, cfg.d_model)
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    g = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    ids = jnp.asarray(rng.integers(0, cfg.vocab_size, shape[:2]), jnp.int32)

    def ffn(lp: dict, h: jax.Array) -> jax.Array:
        return h + tr.ffn_sublayer(lp["ffn"], norm(cfg.norm, lp["norm2"], h), cfg)

    def att(lp: dict, h: jax.Array) -> jax.Array:
        return h + tr.attention_sublayer(lp["attn"], norm(cfg.norm, lp["norm1"], h), cfg, 0)[0]

    def head(pp: dict, h: jax.Array) -> jax.Array:
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(tr.readout(pp, h, cfg)[0], ids))

    def vjp_of(f: Callable) -> Callable:
        return jax.jit(lambda a, h, ct: jax.vjp(f, a, h)[1](ct))

    emb_vjp = jax.jit(lambda pp, ct: jax.vjp(lambda q: tr.embed_tokens(q, ids, cfg), pp)[1](ct))
    fns = {"FFN sublayer fwd": (jax.jit(ffn), (lay0, x)), "FFN sublayer fwd+bwd": (vjp_of(ffn), (lay0, x, g)),
           "attention sublayer fwd": (jax.jit(att), (lay0, x)),
           "attention sublayer fwd+bwd": (vjp_of(att), (lay0, x, g)),
           "readout + loss fwd+bwd": (jax.jit(jax.grad(head, argnums=(0, 1))), (p, x)),
           "embedding fwd+bwd": (emb_vjp, (p, g))}

    model = _torch_model(cfg)
    blk = model.blocks[0]
    tx = torch.tensor(np.asarray(x)).requires_grad_(True)
    tg, tid = torch.tensor(np.asarray(g)), torch.tensor(np.asarray(ids)).long()
    h_, dh_ = cfg.n_heads, cfg.head_dim

    def t_ffn():
        return tx + blk.w2(F.gelu(blk.w1(blk.norm2(tx))))

    def t_att():
        b, t, _ = tx.shape
        q, k, v = blk.qkv(blk.norm1(tx)).view(b, t, 3, h_, dh_).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return tx + blk.wo(o.transpose(1, 2).reshape(b, t, h_ * dh_))

    def no_grad(f):
        def r():
            with torch.no_grad():
                f()
        return r

    def fwd_bwd(f):
        def r():
            tx.grad = None
            model.zero_grad(set_to_none=True)
            f().backward(tg)
        return r

    def t_head():
        tx.grad = None
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model.unembed(model.norm(tx)).reshape(-1, cfg.output_dim), tid.reshape(-1)).backward()

    def t_emb():
        model.zero_grad(set_to_none=True)
        (model.tok(tid) + model.pos[: w.seq_len]).backward(tg)

    th = {"FFN sublayer fwd": no_grad(t_ffn), "FFN sublayer fwd+bwd": fwd_bwd(t_ffn),
          "attention sublayer fwd": no_grad(t_att), "attention sublayer fwd+bwd": fwd_bwd(t_att),
          "readout + loss fwd+bwd": t_head, "embedding fwd+bwd": t_emb}
    jt, _ = jax_trainers(w, chunk=False)
    tt, _ = torch_trainer(w)
    pairs: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
        name: ((lambda f=f, a=a: jax.block_until_ready(f(*a))), th[name]) for name, (f, a) in fns.items()}
    pairs["train step (fwd+bwd+AdamW)"] = (lambda: (jt["step"].run(1), jt["step"].sync()), lambda: tt.run(1))

    def cpu(f: Callable[[], Any], n: int) -> float:
        c0 = time.process_time()
        for _ in range(n):
            f()
        return (time.process_time() - c0) / n

    rows = []
    for name, (fj, ft) in pairs.items():
        n = 2 if name.startswith("train step") else calls
        for _ in range(2):
            fj()
            ft()
        js, ts = [], []
        for _ in range(rounds):
            js.append(cpu(fj, n))
            ts.append(cpu(ft, n))
        r = np.asarray(ts) / np.asarray(js)
        rows.append({"piece": name, "jaxml_cpu_ms": 1e3 * float(np.median(js)), "torch_cpu_ms": 1e3 * float(np.median(ts)),
                     "ratio": float(np.median(r)), "ratio_min": float(r.min()), "ratio_max": float(r.max())})
        print(f"| {name} | {rows[-1]['jaxml_cpu_ms']:.1f} | {rows[-1]['torch_cpu_ms']:.1f} | "
              f"{rows[-1]['ratio']:.2f} ({rows[-1]['ratio_min']:.2f}-{rows[-1]['ratio_max']:.2f}) |", flush=True)
    return rows


if __name__ == "__main__":
    import argparse
    import json

    from jaxml._host import tune_malloc_if_requested

    tune_malloc_if_requested()  # as `python -m benchmarks` and the jaxml CLI (jaxml/_host.py)

    ap = argparse.ArgumentParser(prog="python -m benchmarks.transformer_train")
    ap.add_argument("--ablation", action="store_true", help="replay the jaxml.nn speed fixes one at a time")
    ap.add_argument("--pieces", action="store_true", help="per-piece CPU time of the width-256 decoder vs PyTorch")
    ap.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="workload name substrings")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args()
    if a.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if a.pieces:
        print("| piece | jaxml CPU ms | PyTorch CPU ms | PyTorch / jaxml time (min-max) |")
        print("|---|---|---|---|")
        res = pieces(rounds=a.rounds)
    elif a.ablation:
        print("| workload | fixes on | last fix | jaxml tok/s | torch tok/s | jaxml/torch (min-max) |")
        print("|---|---|---|---|---|---|")
        res = ablation(a.device, rounds=a.rounds, names=tuple(a.only) if a.only else None)
    else:
        res = run(a.device, rounds=a.rounds, names=tuple(a.only) if a.only else None)
        for row in res:
            print(row)
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=2)
