"""Capacity search: the smallest trained transformer that memorises a data set.

Kajitsuka & Sato (ICLR 2025, arXiv 2409.17677, Section 6) measure the *minimum network size that
reaches 100% training accuracy* as the number of sequences N and their length n vary. This
module makes that measurement a library call:

* :func:`bisect_min_size` finds the smallest integer size at which a monotone success oracle
  holds, by bisection (``probes_per_round = 1``) or k-section (``k`` sizes probed in parallel per
  round: the interval ``(fail, ok]`` shrinks by a factor ``k + 1`` per round).
* :func:`memorization_oracle` trains a transformer of every probed size on the data set with
  ``jaxml.train.train_pure`` (the exact step of ``jaxml.train.train``), over seeds, and reports
  which sizes memorise. Probed sizes and seeds run in parallel through
  ``jaxml.experiment.sweep``: the models are the *largest* one with a 0/1 mask that zeroes
  every weight outside the probed size, so all sizes share array shapes (one vmapped program).
  A masked weight gets zero gradient and Adam leaves it at zero, so a width-``w`` cell *is* the
  width-``w`` model (attention and RMS-norm constants fixed so the function equals the small
  model's, see :func:`size_mask`), and its parameter count is the number of ones in the mask.
* :func:`capacity_search` combines the two: size = d_model at a fixed depth (``SizeAxis.WIDTH``)
  or the number of blocks at a fixed width (``SizeAxis.DEPTH``).

"Memorises" means: at the end of the step budget, the argmax prediction is right for *every*
label (next-token: the last position; seq2seq: every position). A size succeeds when at least
``min_successes`` of ``num_seeds`` seeds memorise (default 1: the best of the seeds, as the paper
tunes hyperparameters per size). The oracle is monotone only in expectation; bisection assumes
it, and :class:`CapacityResult` keeps every probe so non-monotone outcomes are visible.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml.nn import AttentionKind, NormKind, PosEncoding, TransformerConfig, apply_transformer, init_transformer
from jaxml.tasks.memorize import MemorizeDataset, Setting
from jaxml.train.loop import train_pure

__all__ = [
    "SizeAxis",
    "CapacityConfig",
    "SearchResult",
    "CapacityResult",
    "bisect_min_size",
    "model_config",
    "size_mask",
    "parameter_count",
    "memorization_oracle",
    "capacity_search",
]


class SizeAxis(enum.Enum):
    """What the search varies.

    WIDTH: d_model (FFN width ``ff_ratio * d_model``) at ``depth`` blocks; parameters ~ width^2.
    DEPTH: the number of blocks at ``width``; parameters ~ depth.
    """

    WIDTH = "width"
    DEPTH = "depth"


@dataclasses.dataclass(frozen=True)
class CapacityConfig:
    """Model family, training budget and search settings of a capacity search.

    Attributes:
      axis: :class:`SizeAxis`.
      max_size: largest size searched (width for WIDTH, blocks for DEPTH).
      min_size: smallest size searched.
      width: d_model for the DEPTH axis.
      depth: blocks for the WIDTH axis.
      ff_ratio: FFN hidden width = ff_ratio * d_model.
      num_steps: Adam steps (full batch) per training run.
      learning_rate: Adam learning rate (constant after a 5% linear warm-up).
      num_seeds: independent initialisations per size.
      min_successes: seeds that must memorise for a size to count as memorising.
      probes_per_round: sizes trained in parallel per search round (1 = bisection).
    """

    axis: SizeAxis = SizeAxis.WIDTH
    max_size: int = 32
    min_size: int = 1
    width: int = 16
    depth: int = 1
    ff_ratio: int = 2
    num_steps: int = 600
    learning_rate: float = 1e-2
    num_seeds: int = 2
    min_successes: int = 1
    probes_per_round: int = 3

    def __post_init__(self) -> None:
        def bad(field: str, value: Any, rule: str) -> None:
            raise ValueError(f"CapacityConfig.{field}={value!r} is invalid: {rule}")

        if not isinstance(self.axis, SizeAxis):
            bad("axis", self.axis, f"must be one of {list(SizeAxis)}")
        for f in ("max_size", "min_size", "width", "depth", "ff_ratio", "num_steps", "num_seeds",
                  "min_successes", "probes_per_round"):
            v = getattr(self, f)
            if not isinstance(v, (int, np.integer)) or v < 1:
                bad(f, v, "must be a positive integer")
        if self.min_size > self.max_size:
            bad("min_size", self.min_size, f"must be <= max_size={self.max_size}")
        if self.min_successes > self.num_seeds:
            bad("min_successes", self.min_successes, f"must be <= num_seeds={self.num_seeds}")
        if not self.learning_rate > 0:
            bad("learning_rate", self.learning_rate, "must be positive")


class SearchResult(NamedTuple):
    """Outcome of :func:`bisect_min_size`.

    Attributes:
      min_size: smallest size found to succeed, or None if ``hi`` fails.
      probes: ``{size: success}`` for every size the oracle was asked about.
      rounds: oracle calls made.
    """

    min_size: int | None
    probes: dict[int, bool]
    rounds: int


class CapacityResult(NamedTuple):
    """Outcome of :func:`capacity_search`.

    Attributes:
      min_size: smallest memorising size (None: even ``max_size`` failed).
      min_params: parameter count of that model (None if none memorised).
      probes: ``{size: fraction of seeds that memorised}``.
      accuracy: ``{size: best final training accuracy over seeds}``.
      rounds: search rounds (each one vmapped sweep over the round's sizes x seeds).
    """

    min_size: int | None
    min_params: int | None
    probes: dict[int, float]
    accuracy: dict[int, float]
    rounds: int


def bisect_min_size(oracle: Callable[[list[int]], Sequence[bool]], lo: int, hi: int, *,
                    probes_per_round: int = 1) -> SearchResult:
    """Smallest ``s`` in ``[lo, hi]`` with ``oracle([s]) == [True]``, for a monotone oracle.

    Invariant: every size ``<= fail`` failed (or is below ``lo``) and size ``ok`` succeeded. The
    first round probes ``hi`` (and ``probes_per_round - 1`` sizes evenly inside ``[lo, hi)``); each
    later round probes ``k = probes_per_round`` sizes evenly inside ``(fail, ok)`` and keeps the
    sub-interval where success starts, so it takes ``ceil(log_{k+1}(hi - lo + 1)) + 1`` rounds.

    Args:
      oracle: ``oracle(sizes) -> successes``, evaluated on a whole round at once (in parallel).
      lo: smallest size.
      hi: largest size.
      probes_per_round: sizes per oracle call (1 = plain bisection).

    Returns:
      A :class:`SearchResult`.
    """
    if lo > hi:
        raise ValueError(f"bisect_min_size: lo={lo} must be <= hi={hi}")
    if probes_per_round < 1:
        raise ValueError(f"bisect_min_size: probes_per_round must be >= 1, got {probes_per_round}")
    probes: dict[int, bool] = {}

    def ask(sizes: list[int]) -> None:
        sizes = sorted(set(sizes) - set(probes))
        if sizes:
            for s, ok in zip(sizes, oracle(sizes)):
                probes[s] = bool(ok)

    def inner(a: int, b: int, k: int) -> list[int]:
        """k sizes evenly inside the open interval (a, b)."""
        gap = b - a - 1
        if gap <= 0:
            return []
        if gap <= k:
            return list(range(a + 1, b))
        return sorted({a + round((i + 1) * (b - a) / (k + 1)) for i in range(k)})

    rounds = 1
    ask([hi] + inner(lo - 1, hi, probes_per_round - 1))
    if not probes[hi]:
        return SearchResult(None, probes, rounds)
    fail, ok = lo - 1, hi
    while True:
        fail = max([s for s, v in probes.items() if not v and s < ok] + [fail])
        ok = min(s for s, v in probes.items() if v and s > fail)
        sizes = inner(fail, ok, probes_per_round)
        if not sizes:
            return SearchResult(ok, probes, rounds)
        ask(sizes)
        rounds += 1


def model_config(dataset: MemorizeDataset, cfg: CapacityConfig) -> TransformerConfig:
    """The largest model of the family (masks carve the smaller ones out of it).

    One-head transformer, learned positions (``max_len = n``), RMS norm, GELU FFN of width
    ``ff_ratio * d_model``, an unembedding to the C classes; causal for next-token (the label is
    read at the last position, which sees the whole sequence), bidirectional for seq2seq (a label
    per token that may depend on the whole sequence, as in arXiv 2409.17677 Section 5).
    """
    width = cfg.max_size if cfg.axis is SizeAxis.WIDTH else cfg.width
    depth = cfg.depth if cfg.axis is SizeAxis.WIDTH else cfg.max_size
    return TransformerConfig(
        vocab_size=dataset.vocab_size, d_model=width, n_layers=depth, n_heads=1, d_ff=cfg.ff_ratio * width,
        max_len=dataset.seq_len, pos_encoding=PosEncoding.LEARNED, attention=AttentionKind.SOFTMAX,
        norm=NormKind.RMS, causal=dataset.setting is Setting.NEXT_TOKEN, out_dim=dataset.num_classes,
        embed_scale=1.0)


def _dim_mask(n: int, active: jax.Array) -> jax.Array:
    return (jnp.arange(n) < active).astype(jnp.float32)


def size_mask(params: dict, model: TransformerConfig, cfg: CapacityConfig, size: jax.Array) -> dict:
    """0/1 mask (same tree as ``params``) selecting the model of ``size`` inside the largest one.

    WIDTH ``w``: residual dims ``< w`` of every matrix, FFN hidden units ``< ff_ratio * w``, head
    dims ``< w``. DEPTH ``l``: every parameter of blocks ``>= l`` is zero, so those blocks add
    nothing to the residual stream (exactly an ``l``-block model). ``size`` may be traced.
    """
    d_model, d_ff, depth = model.d_model, model.d_ff, model.n_layers
    if cfg.axis is SizeAxis.WIDTH:
        m = _dim_mask(d_model, size)
        mf = _dim_mask(d_ff, cfg.ff_ratio * size)
        blocks = jnp.ones((depth,))
    else:
        m, mf = jnp.ones((d_model,)), jnp.ones((d_ff,))
        blocks = _dim_mask(depth, size)
    layers = []
    for li, layer in enumerate(params["layers"]):
        on = blocks[li]
        head = m[:, None, None] * m[None, None, :]                            # (D, 1, Dh)
        entry: dict = {"norm1": {"scale": on * m},
                       "attn": {"wq": on * head, "wk": on * head, "wv": on * head,
                                "wo": on * jnp.transpose(head, (1, 2, 0))}}
        if "ffn" in layer:
            entry["norm2"] = {"scale": on * m}
            entry["ffn"] = {"w1": on * m[:, None] * mf[None, :], "b1": on * mf,
                            "w2": on * mf[:, None] * m[None, :], "b2": on * m}
        layers.append(entry)
    mask = {"embed": {"tokens": jnp.broadcast_to(m[None, :], params["embed"]["tokens"].shape),
                      "pos": jnp.broadcast_to(m[None, :], params["embed"]["pos"].shape)},
            "layers": layers, "final_norm": {"scale": m},
            "unembed": jnp.broadcast_to(m[:, None], params["unembed"].shape)}
    return mask


def _init_for_size(params: dict, mask: dict, model: TransformerConfig, size: jax.Array,
                   cfg: CapacityConfig) -> dict:
    """Masked initial parameters whose function equals the size-``size`` model's at init.

    RMS norm over the padded width divides by ``sqrt(mean over D_max)``, i.e. by
    ``sqrt(w / D_max)`` times the width-``w`` RMS; starting the norm scales at ``sqrt(w / D_max)``
    makes the masked model equal the width-``w`` one (the scale is trained, so the function class
    is identical). Attention logits are divided by ``sqrt(D_max)`` instead of ``sqrt(w)``; the
    query weights start scaled by ``sqrt(D_max / w)`` to compensate.
    """
    masked = jax.tree_util.tree_map(lambda p, k: p * k, params, mask)
    if cfg.axis is not SizeAxis.WIDTH:
        return masked
    width = jnp.asarray(size, jnp.float32)
    ratio = jnp.sqrt(width / model.d_model)

    def fix(path, leaf):
        names = [getattr(p, "key", None) for p in path]
        if "scale" in names:
            return leaf * ratio
        if "wq" in names:
            return leaf / ratio
        return leaf

    return jax.tree_util.tree_map_with_path(fix, masked)


def parameter_count(dataset: MemorizeDataset, cfg: CapacityConfig, size: int) -> int:
    """Parameters of the size-``size`` model of the family (ones in :func:`size_mask`)."""
    model = model_config(dataset, cfg)
    params = jax.eval_shape(lambda k: init_transformer(k, model), jax.random.PRNGKey(0))
    mask = size_mask(jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape), params), model, cfg, jnp.asarray(size))
    return int(sum(float(jnp.sum(x)) for x in jax.tree_util.tree_leaves(mask)))


def _loss_and_accuracy(params: dict, mask: dict, tokens: jax.Array, labels: jax.Array,
                       model: TransformerConfig, setting: Setting) -> tuple[jax.Array, jax.Array]:
    p = jax.tree_util.tree_map(lambda a, k: a * k, params, mask)
    logits = apply_transformer(p, tokens, model)                  # (N, n, C)
    if setting is Setting.NEXT_TOKEN:
        logits = logits[:, -1, :]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    return loss, accuracy


def memorization_oracle(key: jax.Array, dataset: MemorizeDataset, cfg: CapacityConfig
                        ) -> Callable[[list[int]], dict[str, np.ndarray]]:
    """``train_sizes(sizes) -> {"accuracy", "loss"}`` arrays of shape ``(len(sizes), num_seeds)``.

    Each cell trains the masked model of one size from one seed with Adam (5% warm-up, then
    constant), full batch, cross-entropy on the labelled positions, for ``num_steps`` steps via
    ``jaxml.train.train_pure``; cells run in parallel through ``jaxml.experiment.sweep``. Seed
    ``s`` uses the same key for every size (common random numbers).
    """
    from jaxml.experiment.sweep import sweep

    model = model_config(dataset, cfg)
    tokens = jnp.asarray(dataset.tokens)
    labels = jnp.asarray(dataset.labels)
    warmup = max(1, cfg.num_steps // 20)
    schedule = optax.join_schedules([optax.linear_schedule(0.0, cfg.learning_rate, warmup),
                                     optax.constant_schedule(cfg.learning_rate)], [warmup])
    optimizer = optax.adam(schedule)

    def cell(key: jax.Array, size: jax.Array) -> dict[str, jax.Array]:
        k_init, k_train = jax.random.split(key)
        params = init_transformer(k_init, model)
        mask = size_mask(params, model, cfg, size)
        params = _init_for_size(params, mask, model, size, cfg)

        def loss_fn(p, batch, _key):
            loss, acc = _loss_and_accuracy(p, mask, batch[0], batch[1], model, dataset.setting)
            return loss, {"accuracy": acc}

        state, _ = train_pure(loss_fn, params, optimizer, data=(tokens, labels),
                              num_steps=cfg.num_steps, key=k_train)
        loss, acc = _loss_and_accuracy(state.params, mask, tokens, labels, model, dataset.setting)
        return {"accuracy": acc, "loss": loss}

    def train_sizes(sizes: list[int]) -> dict[str, np.ndarray]:
        return sweep(cell, {"size": [int(s) for s in sizes]}, seeds=cfg.num_seeds, key=key)

    return train_sizes


def capacity_search(key: jax.Array, dataset: MemorizeDataset, cfg: CapacityConfig) -> CapacityResult:
    """Smallest size (and its parameter count) whose trained model memorises ``dataset``.

    Args:
      key: PRNG key (seeds are ``fold_in(key, s)``).
      dataset: the data set to memorise.
      cfg: :class:`CapacityConfig`.

    Returns:
      :class:`CapacityResult` with every probe's success fraction and best accuracy.
    """
    train_sizes = memorization_oracle(key, dataset, cfg)
    fractions: dict[int, float] = {}
    best: dict[int, float] = {}

    def oracle(sizes: list[int]) -> list[bool]:
        out = train_sizes(sizes)
        memorised = np.asarray(out["accuracy"]) >= 1.0 - 0.5 / dataset.num_labels
        for s, row, acc in zip(sizes, memorised, np.asarray(out["accuracy"])):
            fractions[s] = float(row.mean())
            best[s] = float(acc.max())
        return [int(row.sum()) >= cfg.min_successes for row in memorised]

    search = bisect_min_size(oracle, cfg.min_size, cfg.max_size, probes_per_round=cfg.probes_per_round)
    params = None if search.min_size is None else parameter_count(dataset, cfg, search.min_size)
    return CapacityResult(search.min_size, params, dict(sorted(fractions.items())),
                          dict(sorted(best.items())), search.rounds)

