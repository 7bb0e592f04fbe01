"""In-context information vs pretrained bigram knowledge in induction heads.

Paper: Shuo Wang & Issei Sato, "Rethinking Associative Memory Mechanism in Induction Head"
(v1: "Understanding Knowledge Hijack Mechanism in In-context Learning through Associative
Memory"), arXiv 2412.11459, COLM 2025; setting of Bietti et al., arXiv 2306.00802.

Data: the character bigram of tiny Shakespeare (65 characters, ``$JAXML_DATA``) with ``K = 5``
random triggers per sequence whose successor is a per-sequence output token drawn uniformly (as
in Bietti et al.'s code); frozen random N(0, 1) token/positional embeddings (their
``nn.Embedding`` default); RPE offsets clipped T5-style at T / 4.

Claims checked (quick mode, numbers in docs/induction_bigram.md):
  * length generalisation: two-layer transformers with RPE and with APE (frozen random
    embeddings, unembeddings and positions) both learn induction at the training length T;
    at 4T, RPE keeps its accuracy (within 5 points) while APE drops by >= 20 points;
  * the hand-built associative-memory transformer (jaxml.constructions.induction_head), run
    through jaxml.nn's transformer, equals its closed-form logits on every designed prompt
    (max error <= 1e-4), and its argmax switches from the bigram token to the in-context token
    exactly at the repetition count the formula predicts;
  * designed prompts (query q followed r times by a token o the global bigram does not favour,
    o drawn per prompt from the training output distribution among those tokens): the trained
    model's in-context logit of o follows the theory's curve
    c0 + c1 r e^beta / (r e^beta + L - r) (R^2 >= 0.9), its bigram term for the favourite b
    stays put, and o wins ("hijacks") once it has been seen;
  * a three-layer transformer without positional encoding learns the induction behaviour
    (reported; claim: induction accuracy at T >= 0.5).

Quick mode, seed 0 (docs/induction_bigram.md, "Measured vs paper"): 10/10 claims hold. Length:
RPE 94.5% -> 92.4% at 4T (2.0 points), APE 90.6% -> 59.9% (30.7 points), APE's previous-token
attention ~1 on most positions inside T and 0.007 beyond; construction exact (1.2e-6), hijack
point exact; RPE designed prompts R^2 1.000, b wins at r = 0 on 0.84, o at r = 12 on 0.97,
bigram drift 0.106 of the in-context range. Reported (no claim): a sweep over every admissible o
shows the trained models hijack less the more plausible o is after q (Spearman of the logit gap
with pi_b(o | q) -0.78 for RPE), the opposite of the associative-memory theory, whose in-context
term does not depend on o; with each query's most frequent admissible o (the earlier design,
``--set prompt_output=frequent``) RPE hijacks on 0.53 of prompts only.

Runtime on 2 CPU cores: smoke ~60 s; quick 231 s wall / 372 s CPU on the idle machine (459 s at
load average 4.3-4.5 before the sweep was added); full (T = 256, d = 256, 10k steps, batch 512 as
in Bietti et al.) meant for one GPU.

    jaxml run induction_bigram --mode quick
    python experiments/induction_bigram.py --mode smoke --out /tmp/ib
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import stats

from jaxml.constructions.induction_head import (
    BigramMemory,
    InductionHeadConfig,
    PrevTokenHead,
    closed_form_logits,
    designed_prompt_in_context_logit,
    init_induction_head,
    logit_decomposition,
    saturation_curve,
    to_transformer,
)
from jaxml.experiment import Claim, ExperimentConfig, Result, context, log, new_figure, param, run_script
from jaxml.nn import Activation, NormKind, PosEncoding, TransformerConfig, apply_transformer, init_transformer
from jaxml.tasks.bigram import (
    BigramSource,
    OutputKind,
    TriggerKind,
    TriggerTaskConfig,
    bigram_chain,
    bigram_from_tinyshakespeare,
    filler_bigram,
    plant_pairs,
    sample_trigger_batch,
)
from jaxml.train import train

MODELS = ("rpe", "ape", "nope3")


class PromptOutput(enum.Enum):
    """How the in-context token ``o`` of the designed prompts is chosen, among the admissible
    tokens of a query ``q`` (``o`` not ``q`` or ``b``, and ``pi_b(o | q) < pi_b(b | q) / 2``).

    SAMPLED: drawn per prompt from the training output distribution (``Config.output_kind``:
        uniform, or the unigram) restricted to the admissible tokens, so the prompts test the
        copy mechanism on the outputs the model was trained to copy.
    FREQUENT: the most frequent admissible token, the same for every prompt of ``q`` (the
        earlier design). Frequent admissible tokens are plausible bigram successors of ``q``
        (``pi_b(o | q)`` 0.05-0.11 for half the queries), the case a model trained with uniform
        outputs discounts most; kept as a stress test (docs/induction_bigram.md).
    """

    SAMPLED = "sampled"
    FREQUENT = "frequent"


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    """Knobs of the induction/bigram study (defaults: quick mode)."""

    seq_len: int = param(64, lo=8, hi=4096, help="training sequence length T")
    test_multipliers: tuple = param((1, 2, 4), lo=1, hi=64, help="test lengths as multiples of T")
    num_triggers: int = param(5, lo=1, hi=20, help="triggers per sequence K (Bietti et al.'s code: 5)")
    trigger_kind: TriggerKind = param(TriggerKind.RANDOM, help="triggers drawn per sequence from the unigram "
                                      "(random) or the K most frequent tokens (fixed)")
    output_kind: OutputKind = param(OutputKind.UNIFORM, help="outputs o_k uniform (Bietti et al.'s code) or "
                                    "from the unigram")
    d_model: int = param(64, lo=8, hi=2048, help="residual width of the trained models")
    d_ff: int = param(128, lo=0, hi=8192, help="FFN width of the trained models (0: attention only)")
    last_ffn: bool = param(True, help="keep the FFN of the last layer; False removes it, so the bigram memory "
                           "(the earlier FFNs) cannot read the induction head's output, as in the construction")
    n_heads: int = param(1, lo=1, hi=16, help="heads per attention layer")
    embed_std: float = param(1.0, lo=1e-3, hi=10.0, help="std of the frozen random token and positional "
                             "embeddings (Bietti et al.'s code: 1, N(0, 1) nn.Embedding)")
    rel_clip: int = param(0, lo=0, hi=4096, help="RPE: offsets >= rel_clip - 1 share one bias, T5-style "
                          "(0: T // 4)")
    batch_size: int = param(32, lo=1, hi=4096, help="sequences per step")
    steps: int = param(1200, lo=1, hi=1_000_000, help="training steps of the two-layer models")
    nope_steps: int = param(1200, lo=1, hi=1_000_000, help="training steps of the 3-layer NoPE model")
    lr: float = param(3e-3, lo=1e-6, hi=1.0, help="Adam learning rate")
    weight_decay: float = param(1e-4, lo=0.0, hi=1.0, help="AdamW weight decay")
    rel_lr_mult: float = param(10.0, lo=0.0, hi=1000.0, help="learning-rate multiplier of the relative biases")
    n_eval: int = param(128, lo=1, hi=100_000, help="evaluation sequences per length")
    prompt_len: int = param(64, lo=16, hi=4096, help="designed-prompt length L")
    max_repetitions: int = param(12, lo=2, hi=1000, help="largest number r of planted pairs")
    n_queries: int = param(8, lo=1, hi=60, help="query tokens of the designed prompts")
    prompts_per_query: int = param(4, lo=1, hi=1000, help="prompts per (query, r), each with its own filler "
                                   "(and, for sampled outputs, its own o)")
    prompt_output: PromptOutput = param(PromptOutput.SAMPLED, help="in-context token o of the designed prompts: "
                                        "sampled from the training outputs (among admissible tokens) or the "
                                        "most frequent admissible token")
    sweep_prompts: int = param(2, lo=0, hi=1000, help="fillers per (query, o) in the sweep over every "
                               "admissible o at r = max_repetitions (0: no sweep)")
    construction_beta1: float = param(20.0, lo=0.0, hi=100.0, help="construction: previous-token strength")
    construction_beta2: float = param(2.0, lo=0.0, hi=100.0, help="construction: induction strength")
    construction_alpha: float = param(0.5, lo=0.0, hi=100.0, help="construction: bigram-memory scale")
    log_every: int = param(200, lo=1, hi=1_000_000, help="log interval (steps)")
    checkpoint_every: int = param(600, lo=1, hi=1_000_000, help="checkpoint interval (steps, under the runner)")

    def __post_init__(self) -> None:
        super().__post_init__()
        if 1 not in self.test_multipliers:
            raise ValueError("config field 'test_multipliers' must contain 1 (the training length)")
        if self.prompt_len < 3 * self.max_repetitions + 3:
            raise ValueError(f"config field 'prompt_len' = {self.prompt_len} is too short for "
                             f"max_repetitions={self.max_repetitions}: need >= {3 * self.max_repetitions + 3}")
        if self.d_model % self.n_heads:
            raise ValueError(f"config field 'd_model' = {self.d_model} must be divisible by n_heads={self.n_heads}")


def get_config(mode: str) -> Config:
    """smoke: tiny models and few steps; quick: T = 64, d = 64 (8/10 claims hold, see the module
    docstring); full: Bietti et al.'s scale (T = 256, d = 256, batch 512)."""
    if mode == "smoke":
        return Config(seq_len=16, test_multipliers=(1, 2), d_model=32, d_ff=32, batch_size=8, steps=20,
                      nope_steps=20, n_eval=8, prompt_len=24, max_repetitions=4, n_queries=2,
                      prompts_per_query=2, sweep_prompts=1, log_every=20, checkpoint_every=20)
    if mode == "full":
        return Config(seq_len=256, d_model=256, d_ff=1024, batch_size=512, steps=10_000, nope_steps=20_000,
                      lr=1e-3, n_eval=1024, prompt_len=256, max_repetitions=40, n_queries=20,
                      prompts_per_query=16, sweep_prompts=4, log_every=1000, checkpoint_every=2000)
    return Config()


# ----------------------------------------------------------------------------------------------
# models and training


def model_config(cfg: Config, model: str, vocab_size: int) -> TransformerConfig:
    """The transformer of ``model`` in ``MODELS``: frozen N(0, embed_std^2) token/position
    embeddings and N(0, 1/d) unembedding, no norms (so the logits split linearly,
    ``logit_decomposition``), one head per layer as in Bietti et al.

    APE keeps a positional table of ``max(test lengths)`` rows, of which only the first T are
    ever seen in training (they are frozen random vectors, as in Bietti et al.). RPE clips
    offsets at ``rel_clip - 1`` (default T / 4), T5-style: every offset beyond shares one bias,
    and that bias is trained on most query-key pairs of a length-T sequence. (Clipping at
    T - 1 leaves the shared far bias trained on one pair per sequence, near its zero init, while
    the trained middle offsets go negative; beyond T every far key then gets the untrained
    bias, and the offset-1 head's share falls as 1/t: the earlier 6-point RPE loss at 4T.)

    With ``last_ffn=False`` ``init_model`` drops the last layer's FFN (the transformer skips a
    layer whose parameters hold no ``ffn``).
    """
    t_max = cfg.seq_len * max(cfg.test_multipliers)
    rel_len = cfg.rel_clip or max(2, cfg.seq_len // 4)
    pe, layers, max_len = {"rpe": (PosEncoding.RELATIVE, 2, rel_len),
                           "ape": (PosEncoding.LEARNED, 2, max(t_max, cfg.prompt_len)),
                           "nope3": (PosEncoding.NONE, 3, max(t_max, cfg.prompt_len))}[model]
    return TransformerConfig(vocab_size=vocab_size, d_model=cfg.d_model, n_layers=layers, n_heads=cfg.n_heads,
                             d_ff=cfg.d_ff, max_len=max_len, pos_encoding=pe, norm=NormKind.NONE,
                             final_norm=False, activation=Activation.GELU,
                             embed_scale=cfg.embed_std)


def frozen_optimizer(params: dict, lr: float, weight_decay: float,
                     rel_lr_mult: float) -> optax.GradientTransformation:
    """AdamW on the attention/FFN weights; token/positional embeddings and unembedding frozen.

    The scalar relative-position biases (``rel``) get ``rel_lr_mult`` times the learning rate
    and no weight decay: Adam moves a parameter by about ``lr`` per step, so with the shared
    rate a bias could not reach the ``beta1 >~ log T`` the previous-token head needs within a
    quick run.
    """
    def label(path, _):
        keys = [getattr(p, "key", None) for p in path]
        if keys[0] in ("embed", "unembed"):
            return "frozen"
        return "rel" if "rel" in keys else "train"

    labels = jax.tree_util.tree_map_with_path(label, params)
    return optax.multi_transform({"train": optax.adamw(lr, weight_decay=weight_decay),
                                  "rel": optax.adam(lr * rel_lr_mult),
                                  "frozen": optax.set_to_zero()}, labels)


def induction_accuracy(logits: jax.Array, batch) -> jax.Array:
    """Argmax accuracy on the induction targets (outputs after a trigger's 2nd occurrence)."""
    hit = (jnp.argmax(logits, axis=-1) == batch.targets) & batch.induction_mask
    return jnp.sum(hit) / jnp.maximum(jnp.sum(batch.induction_mask), 1)


def _loss_fn(tcfg: TransformerConfig):
    def loss_fn(params, batch, key):
        del key
        logits = apply_transformer(params, batch.inputs, tcfg)
        logp = jax.nn.log_softmax(logits, axis=-1)
        nll = -jnp.take_along_axis(logp, batch.targets[..., None], axis=-1)[..., 0]
        return jnp.mean(nll), {"induction_acc": induction_accuracy(logits, batch)}
    return loss_fn


def trigger_task(cfg: Config, length: int) -> TriggerTaskConfig:
    """The trigger-sequence task of ``cfg`` at sequence length ``length``."""
    return TriggerTaskConfig(seq_len=length, num_triggers=cfg.num_triggers, trigger_kind=cfg.trigger_kind,
                             output_kind=cfg.output_kind)


def init_model(key: jax.Array, tcfg: TransformerConfig, last_ffn: bool = True) -> dict:
    """``init_transformer``; with ``last_ffn=False`` the last layer has no FFN (nor its norm).

    Then the decomposition's bigram term (embedding path + FFNs, ``logit_decomposition``) cannot
    read the last attention layer (the induction head), as in the associative-memory
    construction whose memory reads only the current token. With the standard layout the last
    FFN post-processes the induction head's output, so part of the in-context effect shows up
    in the "bigram" term (docs/induction_bigram.md, "What still fails").
    """
    params = init_transformer(key, tcfg)
    if not last_ffn:
        last = params["layers"][-1]
        params["layers"][-1] = {k: v for k, v in last.items() if k not in ("ffn", "norm2")}
    return params


def train_model(cfg: Config, model: str, source: BigramSource, key: jax.Array) -> tuple[dict, TransformerConfig, dict]:
    """Train one model on trigger sequences of length T with the jaxml training loop."""
    tcfg = model_config(cfg, model, source.vocab_size)
    task = trigger_task(cfg, cfg.seq_len)
    k_init, k_train = jax.random.split(key)
    params = init_model(k_init, tcfg, cfg.last_ffn)
    steps = cfg.nope_steps if model == "nope3" else cfg.steps
    ctx = context()
    res = train(_loss_fn(tcfg), params, frozen_optimizer(params, cfg.lr, cfg.weight_decay, cfg.rel_lr_mult),
                data=lambda k, step: sample_trigger_batch(k, source, task, cfg.batch_size),
                num_steps=steps, key=k_train, log_every=min(cfg.log_every, steps),
                checkpoint_dir=ctx.checkpoint_dir(model), checkpoint_every=min(cfg.checkpoint_every, steps),
                resume=ctx.resume, desc=model)
    return res.state.params, tcfg, res.history


def evaluate_lengths(cfg: Config, params: dict, tcfg: TransformerConfig, source: BigramSource,
                     key: jax.Array) -> dict[int, dict[str, float]]:
    """Induction accuracy and previous-token attention at every test length."""
    out = {}
    for mult in cfg.test_multipliers:
        length = cfg.seq_len * mult
        task = trigger_task(cfg, length)
        batch = sample_trigger_batch(jax.random.fold_in(key, length), source, task, cfg.n_eval)

        @jax.jit
        def run(p, b):
            logits, inter = apply_transformer(p, b.inputs, tcfg, return_intermediates=True)
            probs = inter["attn_probs"][0]  # (B, H, T, T), layer 1
            prev = jnp.diagonal(probs, offset=-1, axis1=-2, axis2=-1)  # (B, H, T - 1): a[t, t-1]
            return induction_accuracy(logits, b), jnp.max(jnp.mean(prev, axis=0), axis=0)

        acc, prev = run(params, batch)
        out[length] = {"acc": float(acc), "prev_attn": np.asarray(prev)}
    return out


# ----------------------------------------------------------------------------------------------
# designed prompts


def admissible_outputs(source: BigramSource, q: int, b: int) -> np.ndarray:
    """``(V,)`` bool mask of the tokens ``o`` that conflict with the bigram after ``q``: not ``q``
    or ``b = argmax pi_b(. | q)``, and ``pi_b(o | q) < pi_b(b | q) / 2`` (the bigram clearly
    prefers ``b``)."""
    trans = np.asarray(source.transition)
    mask = trans[q] < 0.5 * trans[q, b]
    mask[[q, b]] = False
    return mask


def pick_queries(source: BigramSource, n: int) -> list[tuple[int, int, int]]:
    """``(q, b, o)``: the ``n`` most frequent tokens ``q`` with their bigram favourite
    ``b = argmax pi(. | q)`` and the most frequent admissible token ``o``
    (:func:`admissible_outputs`; the ``PromptOutput.FREQUENT`` choice)."""
    uni = np.asarray(source.unigram)
    trans = np.asarray(source.transition)
    out = []
    for q in np.argsort(-uni)[:n]:
        b = int(np.argmax(trans[q]))
        ok = admissible_outputs(source, int(q), b)
        order = [int(j) for j in np.argsort(-uni) if ok[j]]
        out.append((int(q), b, order[0]))
    return out


def prompt_outputs(cfg: Config, source: BigramSource, queries, key: jax.Array) -> np.ndarray:
    """``(n_queries, prompts_per_query)`` in-context tokens ``o`` of the designed prompts.

    ``PromptOutput.SAMPLED``: per query, draws from the training output distribution
    (``cfg.output_kind``: uniform or ``pi_u``) restricted to the admissible tokens, without
    replacement while there are enough; ``PromptOutput.FREQUENT``: the query's ``o`` from
    :func:`pick_queries` in every prompt.
    """
    n_p = cfg.prompts_per_query
    if cfg.prompt_output is PromptOutput.FREQUENT:
        return np.array([[o] * n_p for _, _, o in queries], np.int32)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    weight = np.asarray(source.unigram, np.float64) if cfg.output_kind is OutputKind.UNIGRAM \
        else np.ones(source.vocab_size)
    out = np.zeros((len(queries), n_p), np.int32)
    for i, (q, b, _) in enumerate(queries):
        p = np.where(admissible_outputs(source, q, b), weight, 0.0)
        out[i] = rng.choice(source.vocab_size, n_p, replace=n_p > np.count_nonzero(p), p=p / p.sum())
    return out


@functools.partial(jax.jit, static_argnames="length")
def _filler_chains(source: BigramSource, banned: jax.Array, keys: jax.Array, *, length: int) -> jax.Array:
    """``banned (M, k)`` tokens and ``keys (M, n)`` -> ``(M, n, length)`` bigram fillers, row ``i``
    avoiding ``banned[i]`` (``filler_bigram``); one compilation per ``(M, n, length)``."""
    def one(ban, ks):
        trans, start = filler_bigram(source, list(ban))
        return jax.vmap(lambda k: bigram_chain(k, trans, start, length))(ks)

    return jax.vmap(one)(banned, keys)


def _fillers(source: BigramSource, q: int, b: int, outputs: jax.Array, keys: jax.Array, length: int) -> jax.Array:
    """Bigram fillers avoiding ``q``, ``b`` and each row's ``o``: ``keys (..., n)``, ``outputs (...)``
    -> ``(..., n, length)``. Rows are padded to a multiple of the vocabulary size so that every
    query reuses one compilation."""
    o = jnp.asarray(outputs, jnp.int32).reshape(-1)
    m, v = o.size, source.vocab_size
    pad = -m % v
    banned = jnp.stack([jnp.full((m,), q, jnp.int32), jnp.full((m,), b, jnp.int32), o], axis=1)
    ks = keys.reshape(m, -1)
    if pad:
        banned = jnp.concatenate([banned, jnp.broadcast_to(banned[:1], (pad, 3))])
        ks = jnp.concatenate([ks, jnp.broadcast_to(ks[:1], (pad,) + ks.shape[1:])])
    flat = _filler_chains(source, banned, ks, length=length)[:m]
    return flat.reshape(*jnp.shape(outputs), -1, length)


def make_prompts(cfg: Config, source: BigramSource, queries, outputs: np.ndarray, key: jax.Array) -> np.ndarray:
    """Prompts ``(n_queries, R + 1, prompts_per_query, L)``: ``q -> o`` planted ``r`` times
    (``o = outputs[i, p]`` for prompt ``p`` of query ``i``, the same ``o`` at every ``r``) into a
    bigram filler that avoids ``q``, ``o`` and ``b`` (as ``jaxml.tasks.bigram.designed_prompt``)."""
    n_r, n_p = cfg.max_repetitions + 1, cfg.prompts_per_query
    out = np.zeros((len(queries), n_r, n_p, cfg.prompt_len), np.int32)
    for i, (q, b, _) in enumerate(queries):
        keys = jax.random.split(jax.random.fold_in(key, i), n_r * n_p).reshape(n_r, n_p)
        o = jnp.broadcast_to(jnp.asarray(outputs[i], jnp.int32)[None], (n_r, n_p))
        fillers = _fillers(source, q, b, o, keys[..., None], cfg.prompt_len)[:, :, 0]  # (n_r, n_p, L)
        for r in range(n_r):
            out[i, r] = np.asarray(plant_pairs(fillers[r], q, jnp.repeat(o[r][:, None], r, axis=1)))
    return out


def _last_terms(params: dict, tcfg: TransformerConfig, prompts: np.ndarray,
                chunk: int = 2048) -> dict[str, np.ndarray]:
    """``logit_decomposition`` at the last position of every prompt ``(..., L)`` -> ``(..., V)``
    per term, ``chunk`` prompts per call (full mode has 13,120 prompts of length 256; the last
    chunk is padded, so there is one compilation)."""
    flat = prompts.reshape(-1, prompts.shape[-1])
    n = flat.shape[0]
    fn = jax.jit(lambda p, x: {k: v[:, -1, :] for k, v in logit_decomposition(p, tcfg, x).items()})
    size = min(chunk, n)
    padded = np.concatenate([flat, np.repeat(flat[:1], -n % size, axis=0)])
    parts = [jax.device_get(fn(params, jnp.asarray(padded[i:i + size]))) for i in range(0, n, size)]
    return {k: np.concatenate([p[k] for p in parts])[:n].reshape(*prompts.shape[:-1], -1) for k in parts[0]}


def prompt_logits(params: dict, tcfg: TransformerConfig, prompts: np.ndarray, queries,
                  outputs: np.ndarray) -> dict[str, np.ndarray]:
    """Last-position terms for the in-context token ``o`` and the bigram favourite ``b``.

    ``prompts``: ``(n_queries, R + 1, prompts_per_query, L)``; ``outputs``: ``(n_queries,
    prompts_per_query)``, the ``o`` of each prompt. Returns arrays ``(n_queries, R + 1,
    prompts_per_query)``: ``ic_o, bg_o, logit_o`` (and ``_b``) and ``pred_o`` / ``pred_b`` (the
    argmax is ``o`` / ``b``).
    """
    last = _last_terms(params, tcfg, prompts)
    n_r = prompts.shape[1]
    o = np.repeat(np.asarray(outputs)[:, None, :, None], n_r, axis=1)
    b = np.broadcast_to(np.array([q[1] for q in queries])[:, None, None, None], o.shape)
    argmax = last["logits"].argmax(-1)
    out = {}
    for name, idx in (("o", o), ("b", b)):
        out[f"ic_{name}"] = np.take_along_axis(last["in_context"], idx, axis=-1)[..., 0]
        out[f"bg_{name}"] = np.take_along_axis(last["bigram"], idx, axis=-1)[..., 0]
        out[f"logit_{name}"] = np.take_along_axis(last["logits"], idx, axis=-1)[..., 0]
        out[f"pred_{name}"] = argmax == idx[..., 0]
    return out


def hijack_sweep(cfg: Config, source: BigramSource, queries, models: dict, key: jax.Array) -> dict:
    """Every admissible ``o`` of every query at ``r = R`` (``cfg.sweep_prompts`` fillers each):
    does the hijack depend on how plausible ``o`` is after ``q``?

    The associative-memory theory's in-context term does not depend on ``o``, and its bigram
    margin ``B(q, b) - B(q, o)`` shrinks as ``pi_b(o | q)`` grows, so a plausible ``o`` should be
    the *easiest* to hijack with. ``models`` maps a name to ``(params, tcfg)``. Returns, per
    (query, o) pair: ``q_index``, ``o``, ``pi`` (``pi_b(o | q)``), ``frequent`` (``o`` is the
    query's :func:`pick_queries` token) and per model ``{m}_pred_o`` (fraction of fillers whose
    argmax at ``r = R`` is ``o``) and ``{m}_gap`` (mean ``logit(o) - logit(b)`` at ``r = R``).
    """
    R, n = cfg.max_repetitions, cfg.sweep_prompts
    trans = np.asarray(source.transition)
    rows: dict[str, list] = {k: [] for k in ("q_index", "o", "pi", "frequent")}
    prompts = []
    for i, (q, b, o_freq) in enumerate(queries):
        os_ = np.flatnonzero(admissible_outputs(source, q, b)).astype(np.int32)
        keys = jax.random.split(jax.random.fold_in(key, i), os_.size * n).reshape(os_.size, n)
        fill = _fillers(source, q, b, jnp.asarray(os_), keys, cfg.prompt_len)  # (m, n, L)
        prompts.append(np.asarray(plant_pairs(fill, q, jnp.broadcast_to(jnp.asarray(os_)[:, None, None],
                                                                        (os_.size, n, R)))))
        rows["q_index"] += [i] * os_.size
        rows["o"] += os_.tolist()
        rows["pi"] += trans[q, os_].tolist()
        rows["frequent"] += (os_ == o_freq).tolist()
    flat = np.concatenate(prompts)  # (pairs, n, L)
    out = {k: np.asarray(v) for k, v in rows.items()}
    b = np.array([queries[i][1] for i in out["q_index"]])
    for m, (params, tcfg) in models.items():
        lg = _last_terms(params, tcfg, flat)["logits"]  # (pairs, n, V)
        lo = np.take_along_axis(lg, out["o"][:, None, None], axis=-1)[..., 0]
        lb = np.take_along_axis(lg, b[:, None, None], axis=-1)[..., 0]
        out[f"{m}_pred_o"] = (lg.argmax(-1) == out["o"][:, None]).mean(-1)
        out[f"{m}_gap"] = (lo - lb).mean(-1)
    return out


def sweep_stats(sweep: dict, model: str) -> dict[str, float]:
    """Summary of :func:`hijack_sweep` for one model: hijack rate over all pairs, over the
    frequent-``o`` pairs and over pairs with ``pi_b(o | q) >= 0.05``; Spearman correlation of
    the logit gap with ``log pi_b(o | q)`` (``pi = 0`` ranks lowest)."""
    pred, gap, pi = sweep[f"{model}_pred_o"], sweep[f"{model}_gap"], sweep["pi"]
    plausible = pi >= 0.05
    return {"pred_o_at_rmax": float(pred.mean()),
            "frequent_pred_o_at_rmax": float(pred[sweep["frequent"]].mean()),
            "plausible_pred_o_at_rmax": float(pred[plausible].mean()) if plausible.any() else float("nan"),
            "spearman_gap_vs_pi": float(stats.spearmanr(gap, pi).statistic),
            "pairs": float(pi.size)}


def trend_stats(cfg: Config, terms: dict[str, np.ndarray]) -> dict[str, float]:
    """Fit of the theory's curve to the mean in-context logit of ``o`` vs ``r``, and the
    hijack statistics."""
    rs = np.arange(cfg.max_repetitions + 1)
    ic = terms["ic_o"].mean(axis=(0, 2))
    fit = saturation_curve(rs, cfg.prompt_len, ic)
    bg_b = terms["bg_b"].mean(axis=(0, 2))
    ic_range = float(ic.max() - ic.min())
    return {
        "fit_r2": fit["r2"], "fit_beta": fit["beta"], "fit_c0": fit["c0"], "fit_c1": fit["c1"],
        "spearman": float(stats.spearmanr(rs, ic).statistic),
        "ic_range": ic_range,
        "bigram_b_drift": float(np.abs(bg_b - bg_b[0]).max() / max(ic_range, 1e-9)),
        "pred_b_at_r0": float(terms["pred_b"][:, 0].mean()),
        "pred_o_at_rmax": float(terms["pred_o"][:, -1].mean()),
        "pred_o_at_r1": float(terms["pred_o"][:, 1].mean()),
        "_fitted": fit["fitted"], "_ic": ic, "_bg_b": bg_b,
    }


def construction_study(cfg: Config, source: BigramSource, prompts: np.ndarray, queries,
                       outputs: np.ndarray, key: jax.Array) -> dict:
    """Run the hand-built transformer (through ``jaxml.nn``) on the designed prompts and compare
    with the closed form: exactness and the predicted hijack point."""
    icfg = InductionHeadConfig(vocab_size=source.vocab_size, d_model=3 * source.vocab_size,
                               max_len=cfg.prompt_len, prev_token_head=PrevTokenHead.RELATIVE,
                               beta1=cfg.construction_beta1, beta2=cfg.construction_beta2,
                               alpha=cfg.construction_alpha, bigram_memory=BigramMemory.ARGMAX)
    cparams = init_induction_head(key, icfg, source.transition)
    tparams, tcfg = to_transformer(cparams, icfg)
    flat = jnp.asarray(prompts.reshape(-1, prompts.shape[-1]))
    theory = jax.jit(jax.vmap(lambda x: closed_form_logits(x, icfg, source.transition)))(flat)
    dec = jax.jit(lambda p, x: logit_decomposition(p, tcfg, x))(tparams, flat)
    err = max(float(jnp.max(jnp.abs(dec[k] - theory[k]))) for k in ("logits", "in_context", "bigram"))
    terms = prompt_logits(tparams, tcfg, prompts, queries, outputs)
    rs = np.arange(cfg.max_repetitions + 1)
    formula = np.asarray(designed_prompt_in_context_logit(rs, cfg.prompt_len, cfg.construction_beta2))
    above = formula > cfg.construction_alpha
    r_star_theory = int(rs[np.argmax(above)]) if above.any() else cfg.max_repetitions + 1
    switched = terms["pred_o"].all(axis=(0, 2))
    r_star_measured = int(rs[np.argmax(switched)]) if switched.any() else cfg.max_repetitions + 1
    consistent = bool(np.all(switched == (rs >= r_star_measured)))
    return {"max_abs_err": err, "formula": formula, "terms": terms, "r_star_theory": r_star_theory,
            "r_star_measured": r_star_measured if consistent else -1,
            "asymptotic_err": float(np.abs(terms["ic_o"].mean(axis=(0, 2)) - formula).max())}


# ----------------------------------------------------------------------------------------------


def _figures(cfg: Config, lengths: dict, trends: dict, cons: dict, histories: dict, sweep: dict | None) -> dict:
    figs = {}
    fig, ax = new_figure(1, 3, size=(15, 4))
    colors = {"rpe": "C0", "ape": "C3", "nope3": "C2"}
    labels = {"rpe": "2-layer RPE", "ape": "2-layer APE", "nope3": "3-layer NoPE"}
    for m, res in lengths.items():
        ls = sorted(res)
        ax[0].plot(ls, [res[t]["acc"] for t in ls], "o-", color=colors[m], label=labels[m])
    ax[0].axvline(cfg.seq_len, color="k", ls=":", lw=1, label="training length T")
    ax[0].set(xscale="log", xlabel="test sequence length", ylabel="induction accuracy",
              title="induction accuracy vs test length", ylim=(-0.02, 1.02))
    ax[0].minorticks_off()
    ax[0].set_xticks(sorted(lengths["rpe"]), [str(t) for t in sorted(lengths["rpe"])])
    ax[0].legend(fontsize=8)
    t_max = max(lengths["rpe"])
    for m in ("rpe", "ape"):
        prev = lengths[m][t_max]["prev_attn"]
        ax[1].plot(np.arange(1, len(prev) + 1), prev, color=colors[m], label=labels[m])
    ax[1].axvline(cfg.seq_len, color="k", ls=":", lw=1)
    ax[1].set(xlabel="position t", ylabel="attention a[t, t-1] (layer 1, best head)",
              title=f"previous-token head on length {t_max}", ylim=(-0.02, 1.02))
    ax[1].legend(fontsize=8)
    for m, hist in histories.items():
        acc = np.asarray(hist["induction_acc"])
        w = max(1, len(acc) // 50)
        smooth = np.convolve(acc, np.ones(w) / w, mode="valid")
        ax[2].plot(np.arange(len(smooth)) + w, smooth, color=colors[m], label=labels[m])
    ax[2].set(xlabel="training step", ylabel="induction accuracy (train batch)", title="training", ylim=(-0.02, 1.02))
    ax[2].legend(fontsize=8)
    figs["accuracy_vs_length"] = fig

    rs = np.arange(cfg.max_repetitions + 1)
    fig, ax = new_figure(1, 3, size=(15, 4))
    t = cons["terms"]
    ax[0].plot(rs, t["ic_o"].mean(axis=(0, 2)), "o", color="C1", label="in-context term of o (measured)")
    ax[0].plot(rs, cons["formula"], "-", color="C1", alpha=0.6, label="r e^b2 / (r e^b2 + L - r)")
    ax[0].plot(rs, t["bg_b"].mean(axis=(0, 2)), "s", color="C0", label="bigram term of b (measured)")
    ax[0].axhline(cfg.construction_alpha, color="C0", alpha=0.6, label="alpha")
    ax[0].axvline(cons["r_star_theory"] - 0.5, color="k", ls=":", lw=1, label="predicted hijack point")
    ax[0].set(xlabel="repetitions r of (q, o) in the prompt", ylabel="logit",
              title="associative-memory construction")
    ax[0].legend(fontsize=7)
    for a, m in ((ax[1], "rpe"), (ax[2], "ape")):
        tr = trends[m]
        terms = tr["terms"]
        ic_sd = terms["ic_o"].std(axis=(0, 2))
        a.errorbar(rs, tr["_ic"], yerr=ic_sd, fmt="o", color="C1", capsize=2, label="in-context term of o")
        a.plot(rs, tr["_fitted"], "-", color="C1", alpha=0.6,
               label=f"theory fit (R^2={tr['fit_r2']:.3f}, beta={tr['fit_beta']:.2f})")
        a.errorbar(rs, tr["_bg_b"], yerr=terms["bg_b"].std(axis=(0, 2)), fmt="s", color="C0", capsize=2,
                   label="bigram term of b")
        a.plot(rs, terms["logit_o"].mean(axis=(0, 2)), "--", color="C1", lw=1, label="total logit of o")
        a.plot(rs, terms["logit_b"].mean(axis=(0, 2)), "--", color="C0", lw=1, label="total logit of b")
        a.set(xlabel="repetitions r of (q, o) in the prompt", ylabel="logit", title=f"trained {labels[m]}")
        a.legend(fontsize=7)
    figs["logits_vs_repetitions"] = fig

    if sweep is not None:
        fig, ax = new_figure(1, 2, size=(11, 4))
        floor = 1e-4
        x = np.maximum(sweep["pi"], floor)
        for a, m in zip(ax, ("rpe", "ape")):
            won = sweep[f"{m}_pred_o"] >= 0.5
            a.scatter(x[won], sweep[f"{m}_gap"][won], s=12, color="C1", alpha=0.7,
                      label="o is the argmax on >= half the fillers")
            a.scatter(x[~won], sweep[f"{m}_gap"][~won], s=12, color="C0", alpha=0.7, label="o is the argmax on < half")
            f = sweep["frequent"]
            a.scatter(x[f], sweep[f"{m}_gap"][f], s=90, marker="*", facecolors="none", edgecolors="k",
                      label="most frequent admissible o")
            a.axhline(0, color="k", lw=0.8)
            st = sweep_stats(sweep, m)
            a.set(xscale="log", xlabel=f"bigram probability pi_b(o | q) (0 drawn at {floor:g})",
                  ylabel=f"logit(o) - logit(b) at r = {cfg.max_repetitions}",
                  title=f"trained {labels[m]}, every admissible o at r = {cfg.max_repetitions}\n"
                        f"o wins on {st['pred_o_at_rmax']:.2f} of prompts; Spearman(gap, pi) = "
                        f"{st['spearman_gap_vs_pi']:.2f}")
            a.title.set_fontsize(10)
            a.legend(fontsize=7)
        figs["hijack_vs_bigram_probability"] = fig
    return figs


def main(cfg: Config) -> Result:
    """Train RPE / APE / 3-layer NoPE models, evaluate length generalisation, run the designed
    prompts through the trained models and the construction, and check the claims."""
    source = bigram_from_tinyshakespeare()
    root = jax.random.key(cfg.seed)
    params, tcfgs, histories, lengths = {}, {}, {}, {}
    for i, m in enumerate(MODELS):
        params[m], tcfgs[m], histories[m] = train_model(cfg, m, source, jax.random.fold_in(root, i))
        lengths[m] = evaluate_lengths(cfg, params[m], tcfgs[m], source, jax.random.fold_in(root, 100))
        log("%s: induction accuracy %s", m, {t: round(v["acc"], 3) for t, v in lengths[m].items()})

    queries = pick_queries(source, cfg.n_queries)
    outputs = prompt_outputs(cfg, source, queries, jax.random.fold_in(root, 250))
    prompts = make_prompts(cfg, source, queries, outputs, jax.random.fold_in(root, 200))
    trends = {}
    for m in ("rpe", "ape"):
        terms = prompt_logits(params[m], tcfgs[m], prompts, queries, outputs)
        trends[m] = {**trend_stats(cfg, terms), "terms": terms}
        log("%s designed prompts: R^2 %.3f, beta %.2f, P(b) at r=0 %.2f, P(o) at r=R %.2f", m,
            trends[m]["fit_r2"], trends[m]["fit_beta"], trends[m]["pred_b_at_r0"], trends[m]["pred_o_at_rmax"])
    cons = construction_study(cfg, source, prompts, queries, outputs, jax.random.fold_in(root, 300))
    sweep = None
    if cfg.sweep_prompts:
        sweep = hijack_sweep(cfg, source, queries, {m: (params[m], tcfgs[m]) for m in ("rpe", "ape")},
                             jax.random.fold_in(root, 400))
        for m in ("rpe", "ape"):
            st = sweep_stats(sweep, m)
            log("%s sweep over %d (q, o) pairs: P(o) at r=R %.2f (frequent o %.2f, pi(o|q) >= 0.05: %.2f), "
                "Spearman(gap, pi) %.2f", m, st["pairs"], st["pred_o_at_rmax"], st["frequent_pred_o_at_rmax"],
                st["plausible_pred_o_at_rmax"], st["spearman_gap_vs_pi"])
    log("construction: max |logits - closed form| = %.2e, hijack at r=%d (theory %d)", cons["max_abs_err"],
        cons["r_star_measured"], cons["r_star_theory"])

    T = cfg.seq_len
    t_max = T * max(cfg.test_multipliers)
    metrics: dict[str, float] = {}
    for m in MODELS:
        for t, v in lengths[m].items():
            metrics[f"{m}_acc_len{t}"] = v["acc"]
            metrics[f"{m}_prev_attn_beyond_T_len{t}"] = float(np.mean(v["prev_attn"][T - 1:])) if t > T else float("nan")
        # a[t, t-1] inside the training length (t = 1..T-1), on the length-T evaluation batch
        metrics[f"{m}_prev_attn_within_T"] = float(np.mean(lengths[m][T]["prev_attn"]))
        metrics[f"{m}_final_train_loss"] = float(np.mean(histories[m]["loss"][-20:]))
    for m in ("rpe", "ape"):
        for k, v in trends[m].items():
            if not k.startswith("_") and k != "terms":
                metrics[f"{m}_prompt_{k}"] = float(v)
        if sweep is not None:
            metrics.update({f"{m}_sweep_{k}": v for k, v in sweep_stats(sweep, m).items()})
    metrics["construction_max_abs_err"] = cons["max_abs_err"]
    metrics["construction_asymptotic_err"] = cons["asymptotic_err"]
    metrics["construction_hijack_r_theory"] = float(cons["r_star_theory"])
    metrics["construction_hijack_r_measured"] = float(cons["r_star_measured"])
    metrics = {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}

    acc = lambda m, t: metrics[f"{m}_acc_len{t}"]
    claims = [
        Claim.check("both_learn_induction", "two-layer APE and RPE models both learn induction at the training "
                    "length T (min induction accuracy at T)", min(acc("rpe", T), acc("ape", T)), 0.9, ">="),
        Claim.check("rpe_length_generalises", f"RPE keeps its accuracy at {t_max} = {max(cfg.test_multipliers)}T "
                    "(accuracy at T minus accuracy at the longest length, points)",
                    100 * (acc("rpe", T) - acc("rpe", t_max)), 5.0, "<="),
        Claim.check("ape_degrades_beyond_T", f"APE drops clearly at {t_max} (accuracy at T minus at the longest "
                    "length, points)", 100 * (acc("ape", T) - acc("ape", t_max)), 20.0, ">="),
        Claim.check("construction_matches_closed_form", "hand-built associative-memory transformer (run by jaxml.nn) "
                    "equals its closed-form logits on every designed prompt (max abs error)",
                    cons["max_abs_err"], 1e-4, "<="),
        Claim.check("construction_hijack_point", "the construction's prediction switches from the bigram token to the "
                    "in-context token exactly at the r where r e^b2/(r e^b2 + L - r) exceeds alpha "
                    "(|measured - predicted| repetitions)",
                    abs(cons["r_star_measured"] - cons["r_star_theory"]), 0.0, "<="),
        Claim.check("rpe_trend_follows_theory", "trained RPE model: mean in-context logit of o vs r fits "
                    "c0 + c1 r e^beta/(r e^beta + L - r) (R^2)", trends["rpe"]["fit_r2"], 0.9, ">="),
        Claim.check("rpe_bigram_term_stable", "trained RPE model: the bigram term of b moves by at most a quarter "
                    f"of the in-context term's range as r grows (max drift / range; o {cfg.prompt_output.value})",
                    trends["rpe"]["bigram_b_drift"], 0.25, "<="),
        Claim.check("rpe_bigram_wins_without_context", "trained RPE model predicts the bigram favourite b when the "
                    "prompt has no (q, o) pair (fraction of prompts at r = 0)", trends["rpe"]["pred_b_at_r0"], 0.75, ">="),
        Claim.check("rpe_in_context_hijacks", f"trained RPE model predicts the in-context token o after r = "
                    f"{cfg.max_repetitions} repetitions (fraction of prompts; o {cfg.prompt_output.value})", trends["rpe"]["pred_o_at_rmax"], 0.9, ">="),
        Claim.check("nope3_learns_induction", "three-layer transformer without positional encoding reaches the "
                    "induction behaviour at T (induction accuracy)", acc("nope3", T), 0.5, ">="),
    ]
    lines = ["| model | " + " | ".join(f"acc @ {t}" for t in sorted(lengths['rpe'])) + " |",
             "|---|" + "---|" * len(lengths["rpe"])]
    for m in MODELS:
        lines.append(f"| {m} | " + " | ".join(f"{100 * lengths[m][t]['acc']:.1f}%" for t in sorted(lengths[m])) + " |")
    rows = ["| model | R^2 of theory fit | fitted beta | Spearman | P(pred b) r=0 | P(pred o) r=1 | "
            "P(pred o) r=R | bigram drift |", "|---|---|---|---|---|---|---|---|"]
    for m in ("rpe", "ape"):
        tr = trends[m]
        rows.append(f"| {m} | {tr['fit_r2']:.3f} | {tr['fit_beta']:.2f} | {tr['spearman']:.3f} | "
                    f"{tr['pred_b_at_r0']:.2f} | {tr['pred_o_at_r1']:.2f} | {tr['pred_o_at_rmax']:.2f} | "
                    f"{tr['bigram_b_drift']:.3f} |")
    return Result(
        metrics=metrics, claims=claims, figures=_figures(cfg, lengths, trends, cons, histories, sweep),
        tables={"induction accuracy vs test length": "\n".join(lines),
                "designed prompts (trained models)": "\n".join(rows)},
        data=["tiny Shakespeare character bigram ($JAXML_DATA/tinyshakespeare/input.txt) with random triggers "
              "(jaxml.tasks.bigram)"],
        notes=(f"queries (q, b, most frequent admissible o): "
               f"{[(source.alphabet[q], source.alphabet[b], source.alphabet[o]) for q, b, o in queries]}; "
               f"prompt outputs ({cfg.prompt_output.value}): "
               f"{[''.join(source.alphabet[o] for o in row) for row in outputs]}; "
               f"construction: RPE, d = {3 * source.vocab_size}, beta1 = {cfg.construction_beta1}, "
               f"beta2 = {cfg.construction_beta2}, alpha = {cfg.construction_alpha}, argmax bigram memory."))


if __name__ == "__main__":
    run_script(__file__)
