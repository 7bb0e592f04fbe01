"""Dyck languages without positional encoding (Hayakawa & Sato, ACL 2025, arXiv 2410.12413).

Claims reproduced:
  * constructed model: the hand-built NoPE transformer (:mod:`jaxml.constructions.dyck`: causal
    mask + BOS + RMSNorm, no positional encoding) decides Dyck_k and its legal next-token sets
    with zero errors on random valid strings and near misses of lengths up to 1,024 and depth up
    to 50, for k = 1..4, and every string it generates is in Dyck_k;
  * trained models: small causal transformers with positional encoding none (NoPE) / learned
    absolute / sinusoidal / RoPE (same width, depth, optimiser, budget), trained on Dyck_2 strings
    of length <= L and evaluated at L, 2L, 4L: NoPE's per-position next-token-set accuracy at 2L
    and 4L is at least the best explicit PE's (mean over seeds, spread in the figure);
  * without BOS, NoPE loses its position signal: the measured accuracy gap to NoPE + BOS.

Expected (paper notes, measured on 2 CPU cores with L = 40, depth <= 8, 3 seeds, 3,000 steps):
string accuracy at L / 2L: NoPE + BOS 92% / 31%, RoPE 95% / 11%, learned 89% / 0%, sinusoidal
78% / 0%, NoPE without BOS 45% / 1%. The construction: 0 errors.

Runtime: smoke ~80 s of CPU time (compilation-bound); quick (the notes' setting L = 40, depth <= 8,
1,500 steps, 3 seeds, 2,400 construction strings; the construction checks and the five variants
run as tasks on 2 worker processes, jaxml.experiment.TaskPool) took 277 s wall / 534 s CPU on the
idle 2-core machine (345 s / 643 s with the tasks on 2 threads of one process; per-phase times
in docs/dyck_nope.md); full (Dyck_2 and Shuffle-Dyck_2, width 64, 10,000 steps, 5 seeds, 20,000
construction strings up to length 2,048) is meant for one GPU.

Measured in quick mode: 6/6 claims; construction 0 errors on 2,400 strings (k = 1..4, length
<= 1,025, depth <= 50), 64/64 generated strings valid; per-position accuracy at 2L / 4L: NoPE
97.0 / 90.8%, RoPE 94.4 / 87.8%, learned 86.8 / 80.3%, sinusoidal 76.0 / 51.2%, NoPE without BOS
92.2 / 85.3%; string accuracy at 2L: NoPE 21.0%, RoPE 3.3%, learned and sinusoidal 0%. At the
earlier quick setting L = 20, depth <= 4, RoPE was 1.1 / 5.0 points ahead of NoPE (see
docs/dyck_nope.md).

    jaxml run dyck_nope --mode quick
    python experiments/dyck_nope.py --mode smoke --out /tmp/dyck
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.constructions import dyck as construction
from jaxml.experiment import Claim, ExperimentConfig, Result, TaskPool, context, log, new_figure, param, run_script
from jaxml.nn import (
    Activation,
    AttentionKind,
    NormKind,
    PosEncoding,
    TransformerConfig,
    apply_transformer,
    init_transformer,
)
from jaxml.tasks import dyck as dyck_tasks
from jaxml.train import train

# name -> (positional encoding, BOS token fed)
VARIANTS: dict[str, tuple[PosEncoding, bool]] = {
    "nope": (PosEncoding.NONE, True),
    "learned": (PosEncoding.LEARNED, True),
    "sinusoidal": (PosEncoding.SINUSOIDAL, True),
    "rope": (PosEncoding.ROPE, True),
    "nope_no_bos": (PosEncoding.NONE, False),
}
EXPLICIT = ("learned", "sinusoidal", "rope")


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the Dyck / NoPE study."""

    # constructed model
    construct_k: tuple = param((1, 2, 3, 4), lo=1, hi=64, help="bracket types checked on the construction")
    construct_n: int = param(300, lo=1, hi=1_000_000, help="valid strings per k (as many near misses)")
    construct_max_len: int = param(1024, lo=8, hi=8192, help="longest construction test string")
    construct_n_long: int = param(8, lo=0, hi=100_000, help="valid strings per k of exactly the longest length")
    construct_depth: int = param(50, lo=2, hi=1000, help="depth cap of the construction test strings")
    generate_n: int = param(16, lo=0, hi=100_000, help="strings generated per k by the construction")
    generate_len: int = param(60, lo=2, hi=126, help="length bound of generated strings (even)")
    # trained models
    k: int = param(2, lo=1, hi=4, help="bracket types of the trained task")
    kinds: tuple = param(("dyck",), choices=("dyck", "shuffle"), help="trained languages")
    variants: tuple = param(tuple(VARIANTS), choices=tuple(VARIANTS), help="positional encodings trained")
    train_len: int = param(40, lo=4, hi=512, help="L: longest training string (even)")
    depth_cap: int = param(8, lo=1, hi=256, help="depth cap of training and test strings")
    test_mults: tuple = param((1, 2, 4), lo=1, hi=64, help="test lengths as multiples of L")
    d_model: int = param(32, lo=4, hi=4096, help="width")
    n_layers: int = param(2, lo=1, hi=64, help="layers")
    n_heads: int = param(2, lo=1, hi=64, help="heads")
    d_ff: int = param(64, lo=0, hi=16384, help="FFN width")
    steps: int = param(1500, lo=1, hi=10_000_000, help="AdamW steps")
    batch: int = param(32, lo=1, hi=65536, help="strings per step")
    lr: float = param(3e-3, lo=1e-6, hi=1.0, help="peak learning rate (cosine decay, 5% warm-up)")
    weight_decay: float = param(0.01, lo=0.0, hi=1.0, help="AdamW weight decay")
    seeds: int = param(3, lo=1, hi=1000, help="seeds per positional encoding (trained together, vmapped)")
    n_test: int = param(300, lo=1, hi=1_000_000, help="test strings per length (and as many near misses)")
    workers: int = param(2, lo=1, hi=64, help="workers running the construction checks and the trained variants "
                                              "concurrently (processes on CPU, jaxml.experiment.TaskPool; 1: one "
                                              "after another in this process; see docs/dyck_nope.md)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_len % 2:
            raise ValueError(f"config field 'train_len' = {self.train_len} must be even (Dyck strings are)")
        if self.generate_len % 2:
            raise ValueError(f"config field 'generate_len' = {self.generate_len} must be even")
        if "nope" not in self.variants or not set(EXPLICIT) & set(self.variants):
            raise ValueError("config field 'variants' needs 'nope' and at least one explicit encoding "
                             f"from {EXPLICIT} for the comparison")


def get_config(mode: str) -> Config:
    """smoke: tiny everything; quick: the paper notes' setting L = 40, depth <= 8, 3 seeds, width 32,
    1,500 steps (the claims' scale); full: the same L and depth cap on Dyck_2 and Shuffle-Dyck_2,
    5 seeds, width 64, 10,000 steps, longer construction strings."""
    if mode == "smoke":
        return Config(construct_k=(3,), construct_n=12, construct_max_len=120, construct_n_long=2,
                      construct_depth=12, generate_n=4, generate_len=20, train_len=8, depth_cap=3,
                      variants=("nope", "rope"), test_mults=(1, 2), steps=40, batch=16,
                      seeds=2, n_test=16, d_model=16, d_ff=32)
    if mode == "full":
        return Config(construct_n=2500, construct_max_len=2048, construct_n_long=50, generate_n=64,
                      kinds=("dyck", "shuffle"), train_len=40, depth_cap=8, steps=10_000, seeds=5,
                      n_test=1000, d_model=64, d_ff=128)
    return Config()


# ----------------------------------------------------------------------------- constructed model


def _assign_types(shapes: np.ndarray, u: np.ndarray, k: int) -> np.ndarray:
    """Bracket types for Dyck_1 shapes (0 open, 1 close, -1 padding), as :func:`dyck_tasks.sample`
    draws them: each opening bracket gets type ``floor(u k)``, each closing bracket closes the
    innermost open one (a batched stack). Returns Dyck_k symbols, -1 after the end."""
    n, width = shapes.shape
    rows = np.arange(n)
    stack = np.zeros((n, width + 1), np.int32)
    depth = np.zeros(n, np.int64)
    out = np.full((n, width), dyck_tasks.PAD_SYMBOL, np.int32)
    types = np.minimum(np.floor(u * k).astype(np.int32), k - 1)
    for i in range(width):
        op, cl = shapes[:, i] == 0, shapes[:, i] == 1
        stack[rows[op], depth[op]] = types[op, i]
        out[op, i] = types[op, i]
        depth[cl] -= 1
        out[cl, i] = k + stack[rows[cl], depth[cl]]
        depth[op] += 1
    return out


def _construct_strings(cfg: Config, key: jax.Array) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per k: valid strings (log-uniform lengths up to construct_max_len, plus some of exactly
    that length) followed by one near miss of each, as padded symbols (2n, max_len + 1) and
    lengths. The bracket shapes of every k come from one compiled sampler call (uniform capped
    Dyck paths, :func:`jaxml.tasks.dyck.sample` with k = 1); types are then drawn uniformly per
    opening bracket, which gives the same distribution as sampling Dyck_k directly (uniform over
    capped Dyck_k words)."""
    n, top = cfg.construct_n, cfg.construct_max_len - cfg.construct_max_len % 2
    keys, lengths = [], []
    for k in cfg.construct_k:
        k_len, k_str, k_edit = jax.random.split(jax.random.fold_in(key, k), 3)
        u = np.asarray(jax.random.uniform(k_len, (n,)))
        lens = (np.exp(np.log(2) + u * (np.log(top) - np.log(2))) // 2 * 2).astype(np.int32)
        lens[: min(cfg.construct_n_long, n)] = top
        keys.append((k_str, k_edit))
        lengths.append(lens)
    sampler = jax.jit(jax.vmap(lambda kk, m: dyck_tasks.sample(kk, m, 1, cfg.construct_depth, max_len=top + 1)))
    shapes = np.asarray(sampler(jnp.concatenate([jax.random.split(ks, n) for ks, _ in keys]),
                                jnp.asarray(np.concatenate(lengths))))
    valid = {k: _assign_types(shapes[j * n: (j + 1) * n],
                              np.asarray(jax.random.uniform(jax.random.fold_in(keys[j][0], 1), (n, top + 1))), k)
             for j, k in enumerate(cfg.construct_k)}

    @jax.jit
    def near_misses(edit_keys, syms, lens):  # every k in one compiled program
        return [jax.vmap(lambda kk, s, m, k=k: dyck_tasks.near_miss(kk, s, m, k)[:2])(jax.random.split(ke, n), sy, ln)
                for k, ke, sy, ln in zip(cfg.construct_k, edit_keys, syms, lens)]

    edits = near_misses([ke for _, ke in keys], [valid[k] for k in cfg.construct_k], lengths)
    return {k: (np.concatenate([valid[k], np.asarray(e_syms)]), np.concatenate([lengths[j], np.asarray(e_len)]))
            for j, (k, (e_syms, e_len)) in enumerate(zip(cfg.construct_k, edits))}


@functools.lru_cache(maxsize=None)
def _generator(mcfg: TransformerConfig, n: int, length: int):
    """Jitted sampler ``(params, k, key) -> (tokens (n, length + 2), lengths, ended)`` that draws
    each next token uniformly from the construction's legal set (one compiled program for
    every k sharing ``mcfg``; k is traced)."""
    width = length + 2  # BOS, up to `length` symbols, one spare slot
    rows = jnp.arange(n)

    @jax.jit
    def gen(params, k, key):
        cols = jnp.arange(mcfg.output_dim)
        tok0 = jnp.full((n, width), 2 * k + 1, jnp.int32).at[:, 0].set(dyck_tasks.BOS)
        zeros = jnp.zeros((n,), jnp.int32)

        def step(carry, kk):
            tok, pos, depth, ended, stuck = carry
            last = apply_transformer(params, tok, mcfg)[rows, pos]  # logits after `pos` symbols
            legal = (last > 0) & (cols <= 2 * k)[None, :]  # [open_*, close_*, END]; not OVERFLOW
            wind_down = (length - pos) <= depth  # must close to fit the length bound
            legal = legal & (~wind_down[:, None] | (cols >= k)[None, :])
            has = legal.any(-1)
            choice = jnp.argmax(jnp.where(legal, jax.random.uniform(kk, legal.shape), -1.0), -1)
            live = ~ended & ~stuck
            stuck = stuck | (live & ~has)
            emit = live & has & (choice != 2 * k)
            ended = ended | (live & has & (choice == 2 * k))
            nxt = jnp.minimum(pos + 1, width - 1)
            tok = tok.at[rows, nxt].set(jnp.where(emit, choice + 1, tok[rows, nxt]))
            depth = depth + jnp.where(emit, jnp.where(choice < k, 1, -1), 0)
            return (tok, pos + emit, depth, ended, stuck), None

        init = (tok0, zeros, zeros, jnp.zeros((n,), bool), jnp.zeros((n,), bool))
        (tok, pos, _, ended, stuck), _ = jax.lax.scan(step, init, jax.random.split(key, length + 1))
        return tok, pos, ended & ~stuck

    return gen


def _generate(cfg: Config, k: int, key: jax.Array, max_depth: int) -> list[np.ndarray | None]:
    """Sample ``generate_n`` strings token by token from the construction's legal next-token
    sets (uniform over the legal set; only closing brackets / END once the remaining budget
    equals the depth). A string that never chose END, or met an empty legal set, is None
    (a failure)."""
    params, mcfg = construction.built_recognizer(k, max_depth=max_depth, max_len=_construct_len(cfg),
                                                 pad_k=max(cfg.construct_k))
    tok, lens, ended = (np.asarray(x) for x in _generator(mcfg, cfg.generate_n, cfg.generate_len)(
        params, jnp.int32(k), key))
    return [tok[i, 1: lens[i] + 1] - 1 if ended[i] else None for i in range(cfg.generate_n)]


def _construct_len(cfg: Config) -> int:
    """The construction's ``max_len`` (the same for every k, so the compiled programs are shared)."""
    return max(4096, 1 << cfg.construct_max_len.bit_length())


def run_construction_checks(cfg: Config, key: jax.Array) -> dict:
    """Errors of the constructed transformer against the stack algorithm, per k.

    Every k runs on the weights laid out for the largest k (``pad_k``) with fixed-size batches
    per length bucket, so the whole check compiles one program per bucket (plus the generator)
    instead of one per k and batch size; the reference sets come from the batched stack
    algorithm :func:`jaxml.tasks.dyck.next_token_sets_batch`."""
    out: dict = {"errors": 0, "strings": 0, "max_len": 0, "max_depth": 0, "generated": 0, "generated_valid": 0}
    top = cfg.construct_max_len - cfg.construct_max_len % 2
    buckets = tuple(b for b in (64, 128, 256, 512, 768) if b < top + 2) + (top + 2,)
    max_depth = cfg.construct_depth + 2  # near misses may open one level deeper
    pad_k = max(cfg.construct_k)
    strings = _construct_strings(cfg, key)
    for k in cfg.construct_k:
        syms, lens = strings[k]
        strs = [syms[i, : lens[i]] for i in range(len(lens))]
        logits = construction.run_construction(strs, k, max_depth=max_depth, max_len=_construct_len(cfg),
                                               buckets=buckets, pad_k=pad_k, fixed_rows=True,
                                               batch_tokens=2 ** 13)
        want = dyck_tasks.next_token_sets_batch(syms, lens, k)
        errs = 0
        for i, lg in enumerate(logits):
            got = lg[:, : 2 * k + 1] > 0
            errs += int((got != want[i, : lens[i] + 1]).any()
                        or bool(lg[-1, 2 * k] > 0) != bool(want[i, lens[i], 2 * k]))
        n_valid = len(strs) // 2
        steps = np.where(syms[:n_valid] < k, 1, -1) * (np.arange(syms.shape[1])[None, :] < lens[:n_valid, None])
        max_dep = int(np.cumsum(steps, axis=1).max())
        gen = _generate(cfg, k, jax.random.fold_in(key, 1000 + k), max_depth) if cfg.generate_n else []
        gen_ok = sum(g is not None and dyck_tasks.is_valid(g, k) for g in gen)
        log("construction k=%d: %d strings (lengths <= %d, depth <= %d): %d errors; generated %d/%d valid",
            k, len(strs), int(lens.max()), max_dep, errs, gen_ok, len(gen))
        out[f"errors_k{k}"] = errs
        out["errors"] += errs
        out["strings"] += len(strs)
        out["max_len"] = max(out["max_len"], int(lens.max()))
        out["max_depth"] = max(out["max_depth"], max_dep)
        out["generated"] += len(gen)
        out["generated_valid"] += gen_ok
        if k == cfg.construct_k[0]:
            out["example"] = (k, max(strs[:n_valid], key=len), max_depth)
    if "example" in out:
        out["figure"] = construction_figure_data(out["example"])
    return out


def construction_figure_data(example: tuple) -> dict:
    """What :func:`construction_figure` draws, computed by the construction (the layer-1
    residual on the longest test string and the matching head's attention on a short one)."""
    k, s, max_depth = example
    params, cfg = construction.build_recognizer(k, max_depth=max_depth, max_len=max(len(s), 64))
    lay = construction.layout(k, max_depth, max(len(s), 64))
    short = "([]{()})[]" if k >= 3 else ("([])[()]" if k == 2 else "(()())()")
    width = max(len(s), len(short)) + 1
    tok = np.full((2, width), dyck_tasks.pad_token(k), np.int32)  # one compiled call for both
    tok[0, : len(s) + 1] = dyck_tasks.encode(s, k)
    tok[1, : len(short) + 1] = dyck_tasks.encode(short, k)
    _, inter = jax.jit(lambda p, t: apply_transformer(p, t, cfg, return_intermediates=True))(params, jnp.asarray(tok))
    n_short = len(short) + 1
    return {"k": k, "s": s, "lay": lay, "short": short,
            "res1": np.asarray(inter["residual"][1][0])[: len(s) + 1],
            "probs": np.asarray(inter["attn_probs"][2][1])[0, :n_short, :n_short]}


def construction_figure(data: dict) -> object:
    """Depth decoded by layer 1 from the normalised uniform-attention signal, and the matching
    head's attention on a short string (from :func:`construction_figure_data`)."""
    k, s, lay, short, res1 = data["k"], data["s"], data["lay"], data["short"], data["res1"]
    fig, ax = new_figure(1, 2, size=(11, 4))
    pos = np.arange(len(s) + 1)
    ax[0].plot(pos, dyck_tasks.depth_profile(s, k), color="C0", lw=2.5, alpha=0.5, label="true depth (stack)")
    ax[0].plot(pos, res1[:, lay.dep], color="C3", lw=0.8, label="decoded by layer 1 (RMSNorm + FFN)")
    ax2 = ax[0].twinx()
    ax2.plot(pos, res1[:, lay.depth_signal] / lay.signal_scale * lay.sigma, color="C2", lw=0.6,
             label="uniform attention: d/(i+1)")
    ax2.set_ylabel("raw signal d/(i+1)", color="C2")
    ax[0].set(xlabel="position i", ylabel="depth", title=f"depth from the causal mask + BOS (n={len(s)})")
    ax[0].legend(fontsize=7, loc="upper left")
    probs = data["probs"]
    im = ax[1].imshow(probs, cmap="viridis", vmin=0, vmax=1)
    labels = ["BOS"] + list(short)
    ax[1].set_xticks(range(len(labels)), labels)
    ax[1].set_yticks(range(len(labels)), labels)
    ax[1].set(xlabel="key", ylabel="query", title="layer 3: attention to BOS + equal level")
    fig.colorbar(im, ax=ax[1])
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- trained models


def _model_config(cfg: Config, pe: PosEncoding) -> TransformerConfig:
    k = cfg.k
    return TransformerConfig(
        vocab_size=dyck_tasks.vocab_size(k), d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads,
        d_ff=cfg.d_ff, max_len=max(cfg.test_mults) * cfg.train_len + 2, pos_encoding=pe,
        attention=AttentionKind.SOFTMAX, norm=NormKind.RMS, causal=True, out_dim=dyck_tasks.num_labels(k),
        activation=Activation.GELU, embed_scale=0.1)


def _batch(symbols: jax.Array, lengths: jax.Array, k: int, kind: dyck_tasks.DyckKind, bos: bool) -> dict:
    """Tokens, next-token labels and mask for padded symbols (..., L); without BOS the empty
    prefix (row 0) has no position and is dropped."""
    lab, mask = jax.vmap(lambda s, n: dyck_tasks.next_token_labels(s, n, k, kind))(symbols, lengths)
    tokens = dyck_tasks.tokens_from_symbols(symbols, k, bos=bos)
    if not bos:
        lab, mask = lab[:, 1:], mask[:, 1:]
    return {"tokens": tokens, "labels": lab.astype(jnp.float32), "mask": mask}


def _seed_loss(params, batch, cfg_model: TransformerConfig):
    logits = apply_transformer(params, batch["tokens"], cfg_model)
    bce = optax.sigmoid_binary_cross_entropy(logits, batch["labels"]).mean(axis=-1)
    m = batch["mask"].astype(bce.dtype)
    loss = jnp.sum(bce * m) / jnp.maximum(jnp.sum(m), 1.0)
    pos_ok = jnp.all((logits > 0) == (batch["labels"] > 0.5), axis=-1)
    acc = jnp.sum(pos_ok * m) / jnp.maximum(jnp.sum(m), 1.0)
    return loss, acc


_BATCH_FNS: dict = {}


def _jit_batch(k: int, kind: dyck_tasks.DyckKind, bos: bool):
    if (k, kind, bos) not in _BATCH_FNS:
        _BATCH_FNS[(k, kind, bos)] = jax.jit(lambda s, n: _batch(s, n, k, kind, bos))
    return _BATCH_FNS[(k, kind, bos)]


def make_test_sets(cfg: Config, kind: dyck_tasks.DyckKind, key: jax.Array) -> dict:
    """Per test multiple m: ``n_test`` valid strings of length m L (depth cap as in training)
    followed by one near miss of each, as symbols padded to the longest test length + 1 (one
    compiled shape for every length) and lengths."""
    top = max(cfg.test_mults) * cfg.train_len

    @jax.jit
    def make(kk, n_len):
        k_s, k_e = jax.random.split(kk)
        syms = jax.vmap(lambda ks: dyck_tasks.sample(ks, n_len, cfg.k, cfg.depth_cap, max_len=top + 1, kind=kind))(
            jax.random.split(k_s, cfg.n_test))
        lens = jnp.full((cfg.n_test,), n_len, jnp.int32)
        e_sym, e_len, _ = jax.vmap(lambda ke, s, n: dyck_tasks.near_miss(ke, s, n, cfg.k))(
            jax.random.split(k_e, cfg.n_test), syms, lens)
        return jnp.concatenate([syms, e_sym]), jnp.concatenate([lens, e_len])

    return {m: make(jax.random.fold_in(key, m), jnp.int32(m * cfg.train_len)) for m in cfg.test_mults}


def _scores(pred: np.ndarray, labels: np.ndarray, mask: np.ndarray, sym: np.ndarray, lens: np.ndarray,
            k: int, bos: bool, n_valid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: per-position set accuracy and whole-string accuracy on the valid strings (the
    first ``n_valid``; prefixes of length >= 1, the ones both BOS and no-BOS models see), and
    recognition accuracy on valid + near misses. A string is accepted iff
    every actual next symbol is predicted legal and END is predicted legal after the last one
    (without BOS the first symbol has no prediction and must be an opening bracket)."""
    pos_ok = (pred == labels[None]).all(-1)  # (S, N, R)
    first = 1 if bos else 0  # score the same prefixes with and without BOS (lengths >= 1)
    mv = mask[:n_valid, first:][None]
    pos_ok = pos_ok[:, :, first:]
    pos_acc = (pos_ok[:, :n_valid] * mv).sum((1, 2)) / mv.sum()
    str_acc = (pos_ok[:, :n_valid] | ~mv).all(-1).mean(-1)
    off = 0 if bos else -1  # row of the prefix of length i (pred keeps every row)
    n, lp = sym.shape
    rows = np.arange(lp)[None, :] + off
    use = (np.arange(lp)[None, :] < lens[:, None]) & (rows >= 0)
    g = pred[:, np.arange(n)[:, None], np.clip(rows, 0, None), np.clip(sym, 0, None)]  # (S, N, lp)
    ok_tok = (g | ~use[None]).all(-1)
    end_row = lens + off
    end_ok = np.where(end_row >= 0, pred[:, np.arange(n), np.clip(end_row, 0, None), 2 * k], True)
    first_ok = True if bos else ((lens == 0) | (sym[:, 0] < k))[None]
    accept = ok_tok & end_ok & first_ok
    truth = np.arange(n) < n_valid
    return pos_acc, str_acc, (accept == truth[None]).mean(-1)


def train_variant(cfg: Config, name: str, kind: dyck_tasks.DyckKind, key: jax.Array, test_sets: dict) -> dict:
    """Train ``cfg.seeds`` models of one positional-encoding variant together (parameters stacked
    on a seed axis, one ``jaxml.train.train`` run), then evaluate each at L, 2L, 4L."""
    pe, bos = VARIANTS[name]
    mcfg = _model_config(cfg, pe)
    k, S, L = cfg.k, cfg.seeds, cfg.train_len
    k_init, k_train = jax.random.split(key)
    params = jax.vmap(lambda kk: init_transformer(kk, mcfg))(jax.random.split(k_init, S))

    def batch_fn(kk, step):
        del step
        per_seed = jax.random.split(kk, S)
        b = jax.vmap(lambda ks: dyck_tasks.sample_batch(ks, cfg.batch, k, min_len=2, max_len=L,
                                                        max_depth=cfg.depth_cap, kind=kind))(per_seed)
        return jax.vmap(lambda s, n: _batch(s, n, k, kind, bos))(b.symbols, b.lengths)

    def loss_fn(p, batch, kk):
        del kk
        losses, accs = jax.vmap(lambda ps, bs: _seed_loss(ps, bs, mcfg))(p, batch)
        return jnp.sum(losses), {"loss_mean": jnp.mean(losses), "pos_acc": jnp.mean(accs)}

    sched = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, max(1, cfg.steps // 20), cfg.steps, cfg.lr * 0.05)
    opt = optax.adamw(sched, weight_decay=cfg.weight_decay)
    ctx = context()
    res = train(loss_fn, params, opt, data=batch_fn, num_steps=cfg.steps, key=k_train,
                log_every=max(1, cfg.steps // 10),
                checkpoint_dir=ctx.checkpoint_dir(f"{kind.value}_{name}"),
                checkpoint_every=max(1, cfg.steps // 4), resume=ctx.resume, desc=f"{kind.value}/{name}")
    trained = res.state.params

    @jax.jit
    def evaluate(p, tokens):  # each test length at its own width, one seed after another
        return {m: jax.lax.map(lambda ps: apply_transformer(ps, t, mcfg), p) for m, t in tokens.items()}

    out = {"final_train_loss": float(res.history["loss_mean"][-1]),
           "final_train_pos_acc": float(res.history["pos_acc"][-1])}
    # labels of the padded test sets, cut to each length's width: m L symbols (+1 for a near miss
    # with an extra bracket), + BOS; a prefix's labels and (causal) logits do not see the padding
    widths = {m: m * L + 1 for m in cfg.test_mults}
    batches = {m: _jit_batch(k, kind, bos)(*test_sets[m]) for m in cfg.test_mults}
    logits = evaluate(trained, {m: b["tokens"][:, : widths[m] + bos] for m, b in batches.items()})
    for mult in cfg.test_mults:
        sym, lens = test_sets[mult]
        rows = widths[mult] + bos
        b = batches[mult]
        pos_acc, str_acc, rec_acc = _scores(np.asarray(logits[mult]) > 0, np.asarray(b["labels"][:, :rows]) > 0.5,
                                            np.asarray(b["mask"][:, :rows]), np.asarray(sym[:, : widths[mult]]),
                                            np.asarray(lens), k, bos, cfg.n_test)
        out[f"pos_acc_{mult}L"] = pos_acc.tolist()
        out[f"str_acc_{mult}L"] = str_acc.tolist()
        out[f"rec_acc_{mult}L"] = rec_acc.tolist()
    log("%s/%s: train loss %.4f; pos acc %s; string acc %s", kind.value, name, out["final_train_loss"],
        [round(float(np.mean(out[f'pos_acc_{m}L'])), 3) for m in cfg.test_mults],
        [round(float(np.mean(out[f'str_acc_{m}L'])), 3) for m in cfg.test_mults])
    return out


def accuracy_figure(cfg: Config, runs: dict) -> object:
    kinds = list(runs)
    fig, axes = new_figure(len(kinds), 3, size=(14, 3.8 * len(kinds)))
    axes = np.atleast_2d(axes)
    xs = [m * cfg.train_len for m in cfg.test_mults]
    for r, kind in enumerate(kinds):
        for c, (metric, title) in enumerate((("pos_acc", "per-position next-token-set accuracy"),
                                             ("str_acc", "whole-string accuracy (all positions right)"),
                                             ("rec_acc", "recognition accuracy (valid vs near miss)"))):
            ax = axes[r, c]
            for i, name in enumerate(cfg.variants):
                vals = np.array([runs[kind][name][f"{metric}_{m}L"] for m in cfg.test_mults])  # (lengths, seeds)
                mean = vals.mean(1)
                ax.plot(xs, mean, "o-", color=f"C{i}", label=name)
                ax.fill_between(xs, vals.min(1), vals.max(1), color=f"C{i}", alpha=0.15)
            ax.axvline(cfg.train_len, color="k", ls=":", lw=0.8)
            ax.set_xscale("log", base=2)
            ax.set_xticks(xs, [str(x) for x in xs])
            ax.set(xlabel="test length (dotted: longest training length L)", ylabel="accuracy", ylim=(-0.02, 1.02),
                   title=f"{kind}-{cfg.k}: {title}")
            ax.title.set_fontsize(9)
            if c == 0:
                ax.legend(fontsize=7)
    fig.suptitle(f"mean over {cfg.seeds} seeds, band = min..max", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- main


def main(cfg: Config) -> Result:
    """Check the construction, train every positional encoding, compute the claims."""
    key = jax.random.key(cfg.seed)
    # The construction checks and the trained variants are independent: they run as tasks on
    # `workers` workers (jaxml.experiment.TaskPool: on CPU, processes with one XLA thread each;
    # each task's numbers are those of a sequential run up to float summation order).
    with TaskPool(cfg.workers) as pool:
        cons_task = pool.submit(run_construction_checks, cfg, jax.random.fold_in(key, 1))
        tasks: dict = {}
        for kind_name in cfg.kinds:
            kind = dyck_tasks.DyckKind(kind_name)
            tests = make_test_sets(cfg, kind, jax.random.fold_in(key, 50))
            tasks[kind_name] = {name: pool.submit(train_variant, cfg, name, kind, jax.random.fold_in(key, 100 + i),
                                                  tests)
                                for i, name in enumerate(cfg.variants)}
        cons = cons_task.result()
        runs = {kind_name: {name: t.result() for name, t in ts.items()} for kind_name, ts in tasks.items()}
    metrics: dict[str, float] = {
        "construction_errors": float(cons["errors"]), "construction_strings": float(cons["strings"]),
        "construction_max_len": float(cons["max_len"]), "construction_max_depth": float(cons["max_depth"]),
        "construction_generated": float(cons["generated"]),
        "construction_generated_valid_frac": cons["generated_valid"] / max(cons["generated"], 1),
    }
    for k in cfg.construct_k:
        metrics[f"construction_errors_k{k}"] = float(cons[f"errors_k{k}"])
    for kind_name in cfg.kinds:
        for name, r in runs[kind_name].items():
            for m in cfg.test_mults:
                for metric in ("pos_acc", "str_acc", "rec_acc"):
                    vals = r[f"{metric}_{m}L"]
                    metrics[f"{kind_name}_{name}_{metric}_{m}L"] = float(np.mean(vals))
                    metrics[f"{kind_name}_{name}_{metric}_{m}L_min"] = float(np.min(vals))
                    metrics[f"{kind_name}_{name}_{metric}_{m}L_max"] = float(np.max(vals))
            metrics[f"{kind_name}_{name}_final_train_loss"] = r["final_train_loss"]

    main_kind = cfg.kinds[0]
    explicit = [v for v in EXPLICIT if v in cfg.variants]

    def gap(mult: int, metric: str = "pos_acc") -> float:
        nope = metrics[f"{main_kind}_nope_{metric}_{mult}L"]
        return nope - max(metrics[f"{main_kind}_{v}_{metric}_{mult}L"] for v in explicit)

    claims = [
        Claim.check("construction_exact",
                    f"hand-built NoPE transformer: errors (recognition or next-token set) on "
                    f"{cons['strings']} valid + near-miss strings, k in {list(cfg.construct_k)}, lengths up to "
                    f"{cons['max_len']}, depth up to {cons['max_depth']}",
                    metrics["construction_errors"], 0.0, "<="),
    ]
    if cfg.generate_n:
        claims.append(Claim.check("construction_generates",
                                  "strings generated from the construction's legal next-token sets are all in "
                                  "Dyck_k (fraction valid)", metrics["construction_generated_valid_frac"], 1.0, ">="))
    for mult in (m for m in cfg.test_mults if m > 1):
        claims.append(Claim.check(
            f"nope_ge_best_pe_{mult}L",
            f"{main_kind}-{cfg.k}, test length {mult}L = {mult * cfg.train_len}: NoPE's per-position accuracy minus the "
            f"best explicit PE's ({', '.join(explicit)}), means over {cfg.seeds} seeds",
            gap(mult), 0.0, ">="))
    if "nope_no_bos" in cfg.variants:
        for mult in cfg.test_mults[:2]:
            claims.append(Claim.check(
                f"bos_gap_{mult}L",
                f"without BOS NoPE loses the position signal: per-position accuracy gap (with BOS minus without) at "
                f"{mult}L",
                metrics[f"{main_kind}_nope_pos_acc_{mult}L"] - metrics[f"{main_kind}_nope_no_bos_pos_acc_{mult}L"],
                0.0, ">"))
    metrics.update({f"gap_nope_minus_best_pe_{m}L": gap(m) for m in cfg.test_mults})
    metrics.update({f"gap_nope_minus_best_pe_str_{m}L": gap(m, "str_acc") for m in cfg.test_mults})

    table = ["| encoding | " + " | ".join(f"pos {m}L" for m in cfg.test_mults) + " | "
             + " | ".join(f"string {m}L" for m in cfg.test_mults) + " | "
             + " | ".join(f"recog. {m}L" for m in cfg.test_mults) + " |",
             "|---|" + "---|" * (3 * len(cfg.test_mults))]
    for name in cfg.variants:
        cells = []
        for metric in ("pos_acc", "str_acc", "rec_acc"):
            for m in cfg.test_mults:
                base = f"{main_kind}_{name}_{metric}_{m}L"
                cells.append(f"{100 * metrics[base]:.1f} [{100 * metrics[base + '_min']:.0f}-"
                             f"{100 * metrics[base + '_max']:.0f}]")
        table.append(f"| {name} | " + " | ".join(cells) + " |")
    figures = {"accuracy_vs_length": accuracy_figure(cfg, runs)}
    if "figure" in cons:
        figures["construction"] = construction_figure(cons["figure"])
    return Result(
        metrics=metrics, claims=claims, figures=figures,
        tables={f"{main_kind}-{cfg.k} accuracy in % (mean [min-max] over seeds)": "\n".join(table)},
        data=["synthetic Dyck_k / Shuffle-Dyck_k strings (jaxml.tasks.dyck)"],
        notes=(f"trained on lengths <= L = {cfg.train_len}, depth <= {cfg.depth_cap}; test strings of exactly "
               f"{', '.join(str(m * cfg.train_len) for m in cfg.test_mults)} symbols with the same depth cap; "
               f"{cfg.seeds} seeds per encoding; width {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, "
               f"RMSNorm, AdamW {cfg.lr:g}, {cfg.steps} steps x {cfg.batch} strings."))


if __name__ == "__main__":
    run_script(__file__)
