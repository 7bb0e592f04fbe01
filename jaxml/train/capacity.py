"""Capacity search: the smallest trained transformer that memorises a data set.

Kajitsuka & Sato (ICLR 2025, arXiv 2409.17677, Section 6) measure the *minimum network size that
reaches 100% training accuracy* as the number of sequences N and their length n vary. This
module makes that measurement a library call:

* :func:`bisect_min_size` finds the smallest integer size at which a monotone success oracle
  holds, by bisection (``probes_per_round = 1``) or k-section (``k`` sizes probed in parallel per
  round: the interval ``(fail, ok]`` shrinks by a factor ``k + 1`` per round).
* :func:`make_trainer` trains a transformer of every probed size on its data set with
  ``jaxml.train.train_pure`` (the exact step of ``jaxml.train.train``), over seeds. Probed
  sizes, data sets and seeds run in parallel in one vmapped program: every model is the
  *largest* one with a 0/1 mask that zeroes every weight outside the probed size, and data sets
  are padded to one shape (:func:`pad_datasets`), so all cells share array shapes and the
  program compiles once per search.
  A masked weight gets zero gradient and Adam leaves it at zero, so a width-``w`` cell *is* the
  width-``w`` model (attention and RMS-norm constants fixed so the function equals the small
  model's, see :func:`size_mask`), and its parameter count is the number of ones in the mask.
* :func:`capacity_search` combines the two: size = d_model at a fixed depth (``SizeAxis.WIDTH``)
  or the number of blocks at a fixed width (``SizeAxis.DEPTH``).
* :func:`capacity_map` trains *every* given size on every data set (no search): the whole
  memorisation map, which shows where the success oracle is not monotone and where the budget,
  not the size, decides.

"Memorises" means: at the end of the step budget, the argmax prediction is right for *every*
label (next-token: the last position; seq2seq: every position). A size succeeds when at least
``min_successes`` of ``num_seeds`` seeds memorise (default 1: the best of the seeds, as the paper
tunes hyperparameters per size). The oracle is monotone only in expectation; bisection assumes
it, and :class:`CapacityResult` keeps every probe so non-monotone outcomes are visible.
"""

from __future__ import annotations

import dataclasses
import enum
import time
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
    "PaddedData",
    "bisect_min_size",
    "bisect_min_sizes",
    "pad_datasets",
    "model_config",
    "size_mask",
    "parameter_count",
    "make_trainer",
    "capacity_search",
    "CapacityMap",
    "capacity_map",
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


class CapacityMap(NamedTuple):
    """Outcome of :func:`capacity_map` for ``P`` data sets and ``Z`` sizes.

    Attributes:
      sizes: the sizes trained, ``(Z,)``.
      accuracy: final training accuracy, ``(P, Z, seeds)``.
      memorised: whether at least ``min_successes`` seeds memorised, ``(P, Z)``.
      params: parameter count of each (data set, size) model, ``(P, Z)``.
      min_size: per data set, the smallest memorising size (None: none memorised).
      violations: per data set, sizes that failed although a smaller size memorised (the oracle's
        departures from monotonicity; a search assumes there are none).
    """

    sizes: np.ndarray
    accuracy: np.ndarray
    memorised: np.ndarray
    params: np.ndarray
    min_size: list[int | None]
    violations: list[list[int]]


def bisect_min_sizes(oracle: Callable[[list[list[int]]], Sequence[Sequence[bool]]], lo: int, hi: int,
                     num_problems: int, *, probes_per_round: int = 1) -> list[SearchResult]:
    """k-section for several monotone problems in lockstep (one oracle call per round for all).

    For problem ``j`` finds the smallest ``s`` in ``[lo, hi]`` with success. Round 1 probes ``hi``
    and ``k - 1`` sizes evenly inside ``[lo, hi)``; each later round probes ``k`` sizes evenly
    inside the open interval ``(fail_j, ok_j)`` where ``fail_j`` is the largest failing and
    ``ok_j`` the smallest succeeding size so far; the interval shrinks by about ``k + 1`` per
    round (``k = 1``: bisection), so about ``log_{k+1}(hi - lo + 1) + 1`` rounds. Every call
    asks exactly ``k`` sizes per problem (finished problems repeat a probed size) so the
    oracle's batch shape never changes (one compiled program).

    Args:
      oracle: ``oracle(sizes_per_problem) -> successes_per_problem``.
      lo: smallest size.
      hi: largest size.
      num_problems: number of independent problems.
      probes_per_round: k, sizes per problem per round.

    Returns:
      One :class:`SearchResult` per problem.
    """
    if lo > hi:
        raise ValueError(f"bisect_min_sizes: lo={lo} must be <= hi={hi}")
    if probes_per_round < 1:
        raise ValueError(f"bisect_min_sizes: probes_per_round must be >= 1, got {probes_per_round}")
    k = probes_per_round
    probes: list[dict[int, bool]] = [{} for _ in range(num_problems)]

    def inner(a: int, b: int, count: int) -> list[int]:
        gap = b - a - 1
        if gap <= 0 or count <= 0:
            return []
        if gap <= count:
            return list(range(a + 1, b))
        return sorted({a + round((i + 1) * (b - a) / (count + 1)) for i in range(count)})

    def bracket(p: dict[int, bool]) -> tuple[int, int | None]:
        ok = min([s for s, v in p.items() if v], default=None)
        if ok is None:
            return hi, None
        fail = max([s for s, v in p.items() if not v and s < ok], default=lo - 1)
        return fail, ok

    proposals = [sorted({hi, *inner(lo - 1, hi, k - 1)}) for _ in range(num_problems)]
    rounds = 0
    while any(proposals):
        padded = []
        for sizes, p in zip(proposals, probes):
            base = sizes if sizes else [bracket(p)[1] or hi]
            padded.append((base + base[-1:] * k)[:k])
        results = oracle(padded)
        rounds += 1
        for j, (sizes, res) in enumerate(zip(padded, results)):
            for s, ok in zip(sizes, res):
                probes[j].setdefault(int(s), bool(ok))
        proposals = []
        for p in probes:
            fail, ok = bracket(p)
            proposals.append([] if ok is None else [s for s in inner(fail, ok, k) if s not in p])
    return [SearchResult(bracket(p)[1], dict(sorted(p.items())), rounds) for p in probes]


def bisect_min_size(oracle: Callable[[list[int]], Sequence[bool]], lo: int, hi: int, *,
                    probes_per_round: int = 1) -> SearchResult:
    """Smallest ``s`` in ``[lo, hi]`` with ``oracle([s])[0]`` true, for a monotone oracle.

    Single-problem form of :func:`bisect_min_sizes`; ``min_size`` is None when ``hi`` fails.
    """
    return bisect_min_sizes(lambda sizes: [oracle(sizes[0])], lo, hi, 1,
                            probes_per_round=probes_per_round)[0]


class PaddedData(NamedTuple):
    """Several data sets stacked to one shape so one compiled program trains them all.

    Sequences are left-padded to ``seq_len`` with a PAD token whose embedding row, like the
    positional rows of padded positions, is masked to zero: a pad contributes a zero vector
    (a zero-value attention sink) and no parameters. Rows beyond a data set's N and unlabelled
    positions get weight 0 in the loss and are ignored by the accuracy.

    Attributes:
      tokens: int32 ``(P, N_max, n_max)``.
      labels: int32 ``(P, N_max, n_max)``.
      weights: float32 ``(P, N_max, n_max)``, 1 at labelled positions of real rows.
      vocab: int32 ``(P,)`` true vocabulary sizes.
      seq_len: int32 ``(P,)`` true sequence lengths.
      classes: int32 ``(P,)`` true class counts.
    """

    tokens: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    vocab: np.ndarray
    seq_len: np.ndarray
    classes: np.ndarray


def pad_datasets(datasets: Sequence[MemorizeDataset]) -> tuple[PaddedData, int, int]:
    """Stack data sets into :class:`PaddedData`; also returns ``(vocab_max, classes_max)``."""
    if not datasets:
        raise ValueError("pad_datasets: give at least one data set")
    n_rows = max(d.num_sequences for d in datasets)
    n_max = max(d.seq_len for d in datasets)
    v_max = max(d.vocab_size for d in datasets)
    c_max = max(d.num_classes for d in datasets)
    P = len(datasets)
    tokens = np.full((P, n_rows, n_max), v_max, np.int32)           # PAD id = v_max
    labels = np.zeros((P, n_rows, n_max), np.int32)
    weights = np.zeros((P, n_rows, n_max), np.float32)
    for j, d in enumerate(datasets):
        N, n = d.tokens.shape
        tokens[j, :N, n_max - n:] = d.tokens
        if d.setting is Setting.NEXT_TOKEN:
            labels[j, :N, -1] = d.labels
            weights[j, :N, -1] = 1.0
        else:
            labels[j, :N, n_max - n:] = d.labels
            weights[j, :N, n_max - n:] = 1.0
    meta = [np.asarray([getattr(d, a) for d in datasets], np.int32) for a in ("vocab_size", "seq_len", "num_classes")]
    return PaddedData(tokens, labels, weights, *meta), v_max, c_max


def model_config(vocab_max: int, seq_len: int, classes_max: int, cfg: CapacityConfig) -> TransformerConfig:
    """The largest model of the family (masks carve the smaller ones out of it).

    One-head bidirectional transformer (for next-token data the label is read at the last
    position, which sees the whole sequence either way), learned positions, RMS norm, GELU FFN of
    width ``ff_ratio * d_model``, unembedding to the classes; one extra token id for PAD.
    """
    width = cfg.max_size if cfg.axis is SizeAxis.WIDTH else cfg.width
    depth = cfg.depth if cfg.axis is SizeAxis.WIDTH else cfg.max_size
    return TransformerConfig(
        vocab_size=vocab_max + 1, d_model=width, n_layers=depth, n_heads=1, d_ff=cfg.ff_ratio * width,
        max_len=seq_len, pos_encoding=PosEncoding.LEARNED, attention=AttentionKind.SOFTMAX,
        norm=NormKind.RMS, causal=False, out_dim=classes_max, embed_scale=1.0)


def _dim_mask(n: int, active: jax.Array) -> jax.Array:
    return (jnp.arange(n) < active).astype(jnp.float32)


def size_mask(params: dict, model: TransformerConfig, cfg: CapacityConfig, size: jax.Array,
              vocab: jax.Array, seq_len: jax.Array, classes: jax.Array) -> dict:
    """0/1 mask (same tree as ``params``) selecting one model of the family inside the largest.

    WIDTH ``w``: residual dims ``< w`` of every matrix, FFN hidden units ``< ff_ratio * w``, head
    dims ``< w``. DEPTH ``l``: every parameter of blocks ``>= l`` is zero, so those blocks add
    nothing to the residual stream (exactly an ``l``-block model). Always: token rows ``< vocab``
    (PAD and unused ids masked), the last ``seq_len`` positional rows, unembedding columns
    ``< classes``. All arguments may be traced.
    """
    d_model, d_ff, depth = model.d_model, model.d_ff, model.n_layers
    if cfg.axis is SizeAxis.WIDTH:
        m, mf, blocks = _dim_mask(d_model, size), _dim_mask(d_ff, cfg.ff_ratio * size), jnp.ones((depth,))
    else:
        m, mf, blocks = jnp.ones((d_model,)), jnp.ones((d_ff,)), _dim_mask(depth, size)
    rows_tok = _dim_mask(model.vocab_size, vocab)
    rows_pos = 1.0 - _dim_mask(model.max_len, model.max_len - seq_len)
    cols_out = _dim_mask(model.output_dim, classes)
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
    return {"embed": {"tokens": rows_tok[:, None] * m[None, :], "pos": rows_pos[:, None] * m[None, :]},
            "layers": layers, "final_norm": {"scale": m}, "unembed": m[:, None] * cols_out[None, :]}


def _init_for_size(params: dict, mask: dict, model: TransformerConfig, size: jax.Array,
                   cfg: CapacityConfig) -> dict:
    """Masked initial parameters whose function equals the size-``size`` model's at init.

    RMS norm over the padded width divides by ``sqrt(w / D_max)`` times the width-``w`` RMS;
    starting the norm scales at ``sqrt(w / D_max)`` makes the masked model equal the width-``w``
    one (the scale is trained, so the function class is identical). Attention logits are divided
    by ``sqrt(D_max)`` instead of ``sqrt(w)``; query weights start scaled by ``sqrt(D_max / w)``.
    """
    masked = jax.tree_util.tree_map(lambda p, k: p * k, params, mask)
    if cfg.axis is not SizeAxis.WIDTH:
        return masked
    ratio = jnp.sqrt(jnp.asarray(size, jnp.float32) / model.d_model)

    def fix(path, leaf):
        names = [getattr(p, "key", None) for p in path]
        if "scale" in names:
            return leaf * ratio
        if "wq" in names:
            return leaf / ratio
        return leaf

    return jax.tree_util.tree_map_with_path(fix, masked)


def parameter_count(dataset: MemorizeDataset, cfg: CapacityConfig, size: int) -> int:
    """Parameters of the size-``size`` model of the family for ``dataset`` (ones in :func:`size_mask`).

    Width ``w``, depth ``L``, FFN ratio ``r``, vocabulary V, length n, classes C:
    ``(V + n + C) w + L (4 w^2 + 2 r w^2 + r w + 3 w) + w`` (embeddings, positions, unembedding;
    per block two RMS scales, four attention matrices, the FFN with biases; the final RMS scale).
    """
    if cfg.axis is SizeAxis.WIDTH:
        w, depth = int(size), cfg.depth
    else:
        w, depth = cfg.width, int(size)
    r = cfg.ff_ratio
    block = 4 * w * w + 2 * r * w * w + r * w + 3 * w
    return (dataset.vocab_size + dataset.seq_len + dataset.num_classes) * w + depth * block + w


def _loss_and_accuracy(params: dict, mask: dict, tokens: jax.Array, labels: jax.Array, weights: jax.Array,
                       classes: jax.Array, model: TransformerConfig) -> tuple[jax.Array, jax.Array]:
    """Weighted cross-entropy and the fraction of labelled positions predicted right."""
    p = jax.tree_util.tree_map(lambda a, k: a * k, params, mask)
    logits = apply_transformer(p, tokens, model)                            # (N, n, C_max)
    invalid = jnp.arange(model.output_dim) >= classes                       # classes beyond C
    logits = jnp.where(invalid[None, None, :], -1e9, logits)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    total = jnp.sum(weights)
    loss = jnp.sum(ce * weights) / total
    correct = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
    return loss, jnp.sum(correct * weights) / total


def make_trainer(data: PaddedData, vocab_max: int, classes_max: int, cfg: CapacityConfig
                 ) -> Callable[[jax.Array, np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """``run(key, sizes, problem) -> {"accuracy", "loss"}`` for flat cell arrays, compiled once.

    Cell ``c`` trains the masked size-``sizes[c]`` model on data set ``problem[c]`` of ``data``
    from seed key ``fold_in(key, c_seed)`` with Adam (5% warm-up, then constant), full batch, for
    ``num_steps`` steps through ``jaxml.train.train_pure`` (the exact step of
    ``jaxml.train.train``), and returns the final training accuracy and loss. Cells are vmapped
    in one ``jit``; the function is cached, so a search with a fixed number of cells per round
    compiles once. (``jaxml.experiment.sweep`` builds a new ``jit`` per call, i.e. recompiles
    every search round; hence this dedicated, cached program.)
    """
    model = model_config(vocab_max, data.tokens.shape[-1], classes_max, cfg)
    warmup = max(1, cfg.num_steps // 20)
    schedule = optax.join_schedules([optax.linear_schedule(0.0, cfg.learning_rate, warmup),
                                     optax.constant_schedule(cfg.learning_rate)], [warmup])
    optimizer = optax.adam(schedule)
    stacked = jax.tree_util.tree_map(jnp.asarray, data)

    def cell(key: jax.Array, size: jax.Array, problem: jax.Array, d: PaddedData) -> dict[str, jax.Array]:
        tokens, labels, weights = d.tokens[problem], d.labels[problem], d.weights[problem]
        k_init, k_train = jax.random.split(key)
        params = init_transformer(k_init, model)
        mask = size_mask(params, model, cfg, size, d.vocab[problem], d.seq_len[problem], d.classes[problem])
        params = _init_for_size(params, mask, model, size, cfg)

        def loss_fn(p, batch, _key):
            loss, acc = _loss_and_accuracy(p, mask, *batch, d.classes[problem], model)
            return loss, {"accuracy": acc}

        state, _ = train_pure(loss_fn, params, optimizer, data=(tokens, labels, weights),
                              num_steps=cfg.num_steps, key=k_train)
        loss, acc = _loss_and_accuracy(state.params, mask, tokens, labels, weights, d.classes[problem], model)
        return {"accuracy": acc, "loss": loss}

    compiled = jax.jit(jax.vmap(cell, in_axes=(0, 0, 0, None)))

    def run(keys: jax.Array, sizes: np.ndarray, problems: np.ndarray) -> dict[str, np.ndarray]:
        out = compiled(keys, jnp.asarray(sizes, jnp.int32), jnp.asarray(problems, jnp.int32), stacked)
        return jax.tree_util.tree_map(np.asarray, jax.device_get(out))

    return run


def _memorised(accuracy: np.ndarray, dataset: MemorizeDataset) -> np.ndarray:
    """Per seed: every label right (accuracy is a mean over ``num_labels`` 0/1 terms)."""
    return accuracy >= 1.0 - 0.5 / dataset.num_labels


def _cell_trainer(datasets: Sequence[MemorizeDataset], cfg: CapacityConfig, key: jax.Array,
                  progress: Callable[[str], None] | None) -> Callable[[np.ndarray], np.ndarray]:
    """``train(sizes (P, k)) -> accuracy (P, k, seeds)``: one vmapped call trains data set ``j``
    at each of its ``k`` sizes with every seed (seed ``s`` uses ``fold_in(key, s)``)."""
    data, v_max, c_max = pad_datasets(datasets)
    run = make_trainer(data, v_max, c_max, cfg)
    P, S = len(datasets), cfg.num_seeds
    seed_keys = jnp.stack([jax.random.fold_in(key, s) for s in range(S)])

    def train_cells(sizes: np.ndarray) -> np.ndarray:
        sizes = np.asarray(sizes, np.int32)
        k = sizes.shape[1]
        flat_sizes = np.repeat(sizes.reshape(-1), S)
        flat_problems = np.repeat(np.arange(P, dtype=np.int32), k * S)
        keys = jnp.tile(seed_keys, (P * k, 1))
        t0 = time.perf_counter()
        acc = run(keys, flat_sizes, flat_problems)["accuracy"].reshape(P, k, S)
        if progress is not None:
            progress(f"capacity: trained {flat_sizes.size} models ({cfg.num_steps} steps) "
                     f"in {time.perf_counter() - t0:.1f} s")
        return acc

    return train_cells


def capacity_search(key: jax.Array, datasets: Sequence[MemorizeDataset], cfg: CapacityConfig, *,
                    progress: Callable[[str], None] | None = None) -> list[CapacityResult]:
    """Smallest size (and parameter count) whose trained model memorises each data set.

    All data sets are searched in lockstep (:func:`bisect_min_sizes`): each round trains
    ``len(datasets) x probes_per_round x num_seeds`` models in one vmapped, compiled call.
    A size memorises a data set when at least ``min_successes`` seeds reach 100% training
    accuracy at the end of the step budget.

    Args:
      key: PRNG key; seed ``s`` uses ``fold_in(key, s)`` for every size and data set.
      datasets: data sets (any mix of settings, lengths, vocabularies).
      cfg: :class:`CapacityConfig`.
      progress: optional callback given one line per search round (cells trained, seconds).

    Returns:
      One :class:`CapacityResult` per data set.
    """
    train_cells = _cell_trainer(datasets, cfg, key, progress)
    P = len(datasets)
    fractions: list[dict[int, float]] = [{} for _ in range(P)]
    best: list[dict[int, float]] = [{} for _ in range(P)]

    def oracle(sizes: list[list[int]]) -> list[list[bool]]:
        acc = train_cells(np.asarray(sizes))
        out = []
        for j in range(P):
            row = []
            for i, s in enumerate(sizes[j]):
                memorised = _memorised(acc[j, i], datasets[j])
                fractions[j][s] = float(memorised.mean())
                best[j][s] = float(acc[j, i].max())
                row.append(int(memorised.sum()) >= cfg.min_successes)
            out.append(row)
        return out

    searches = bisect_min_sizes(oracle, cfg.min_size, cfg.max_size, P, probes_per_round=cfg.probes_per_round)
    results = []
    for j, (d, s) in enumerate(zip(datasets, searches)):
        params = None if s.min_size is None else parameter_count(d, cfg, s.min_size)
        results.append(CapacityResult(s.min_size, params, dict(sorted(fractions[j].items())),
                                      dict(sorted(best[j].items())), s.rounds))
    return results


def capacity_map(key: jax.Array, datasets: Sequence[MemorizeDataset], sizes: Sequence[int], cfg: CapacityConfig,
                 *, progress: Callable[[str], None] | None = None) -> CapacityMap:
    """Train every size in ``sizes`` on every data set (all seeds) and report the whole map.

    :func:`capacity_search` asks about a few sizes and assumes that memorisation is monotone in
    the size; with a fixed optimisation budget it need not be (a larger model can fail where a
    smaller one succeeded). The map measures every cell, so such departures are seen, and the
    smallest memorising size is read off without the monotonicity assumption. Cells train as
    in :func:`capacity_search` (same model family, masks, optimiser and seed keys), in one
    vmapped, compiled call of ``len(datasets) x len(sizes) x num_seeds`` models.

    Args:
      key: PRNG key; seed ``s`` uses ``fold_in(key, s)`` (as in :func:`capacity_search`).
      datasets: data sets (any mix of settings, lengths, vocabularies).
      sizes: the sizes to train, each in ``[cfg.min_size, cfg.max_size]``.
      cfg: :class:`CapacityConfig` (``max_size`` sets the masked model every cell lives in).
      progress: optional callback given one line when the cells are trained.

    Returns:
      A :class:`CapacityMap`.
    """
    sizes = np.asarray(sorted({int(z) for z in sizes}), np.int32)
    if sizes.size == 0 or sizes[0] < cfg.min_size or sizes[-1] > cfg.max_size:
        raise ValueError(f"capacity_map: sizes {sizes.tolist()} must be non-empty and within "
                         f"[min_size, max_size] = [{cfg.min_size}, {cfg.max_size}]; raise cfg.max_size "
                         "or drop the larger sizes")
    if not datasets:
        raise ValueError("capacity_map: give at least one data set")
    acc = _cell_trainer(datasets, cfg, key, progress)(np.tile(sizes, (len(datasets), 1)))
    memorised = np.stack([_memorised(acc[j], d).sum(-1) >= cfg.min_successes for j, d in enumerate(datasets)])
    params = np.asarray([[parameter_count(d, cfg, int(z)) for z in sizes] for d in datasets], np.int64)
    min_size, violations = [], []
    for row in memorised:
        first = int(np.argmax(row)) if row.any() else None
        min_size.append(None if first is None else int(sizes[first]))
        violations.append([] if first is None else [int(z) for z, ok in zip(sizes[first:], row[first:]) if not ok])
    return CapacityMap(sizes, acc, memorised, params, min_size, violations)
