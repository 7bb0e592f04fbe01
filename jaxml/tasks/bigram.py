"""Bigram sources, trigger sequences and designed prompts for the induction-head study.

The data model is the one of Bietti et al. (2023, arXiv 2306.00802, Sec. 3), analysed by
Wang & Sato (arXiv 2412.11459, "Rethinking Associative Memory Mechanism in Induction Head",
Sec. 3-5):

* a *global* bigram model over ``V`` tokens, ``pi_b(j | i)`` with marginal ``pi_u(i)``,
  estimated from text (the 65 characters of tiny Shakespeare) or drawn from a Dirichlet prior;
* per sequence, ``K`` *trigger* tokens ``q_1..q_K`` and *output* tokens ``o_1..o_K``
  (``o_k ~ pi_u``); in the sequence every occurrence of ``q_k`` is followed by ``o_k`` and
  every other transition follows the global bigram::

      z_1 ~ pi_u,    z_{t+1} = o_k  if z_t = q_k,    z_{t+1} ~ pi_b(. | z_t)  otherwise.

  The *induction targets* are the outputs that follow a trigger from its second occurrence
  on: only there is the in-context bigram ``q_k -> o_k`` identifiable from the prefix;
* *designed prompts* (Wang & Sato, Sec. 5): a bigram filler in which a query token ``q`` is
  planted ``r`` times followed by chosen tokens (for example an in-context token ``o`` that
  differs from the global bigram's favourite ``argmax_j pi_b(j | q)``) and which ends with
  ``q``, so that the next-token prediction has to weigh the in-context evidence against
  the pretrained bigram.

Everything is pure and keyed; ``jit``/``vmap`` are applied by the caller.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

__all__ = [
    "BigramSource",
    "TriggerKind",
    "OutputKind",
    "TriggerTaskConfig",
    "TriggerSequence",
    "make_bigram_source",
    "bigram_from_text",
    "bigram_from_tinyshakespeare",
    "dirichlet_bigram",
    "stationary_distribution",
    "encode",
    "decode",
    "select_triggers",
    "sample_trigger_sequence",
    "sample_trigger_batch",
    "induction_mask",
    "restricted_bigram",
    "designed_prompt",
    "bigram_chain",
    "filler_bigram",
    "plant_pairs",
    "empirical_bigram",
]


@struct.dataclass
class BigramSource:
    """A global bigram language model.

    Attributes:
        transition: ``(V, V)`` row-stochastic matrix, ``transition[i, j] = pi_b(j | i)``.
        unigram: ``(V,)`` marginal ``pi_u`` used for the first token, triggers and outputs.
        alphabet: optional string of length ``V`` naming token ``i`` as ``alphabet[i]``
            (static, not a pytree leaf; empty for synthetic sources).
    """

    transition: jax.Array
    unigram: jax.Array
    alphabet: str = struct.field(pytree_node=False, default="")

    @property
    def vocab_size(self) -> int:
        """Number of tokens ``V``."""
        return int(self.transition.shape[0])


def make_bigram_source(transition: np.typing.ArrayLike, unigram: np.typing.ArrayLike | None = None,
                       alphabet: str = "") -> BigramSource:
    """Validate arrays and build a :class:`BigramSource`.

    Args:
        transition: ``(V, V)`` non-negative matrix whose rows sum to one.
        unigram: ``(V,)`` probability vector; ``None`` uses the stationary distribution of
            ``transition`` (:func:`stationary_distribution`).
        alphabet: optional token names, ``len(alphabet) == V``.

    Returns:
        The source with float32 arrays.

    Raises:
        ValueError: naming the offending argument when shapes or probabilities are invalid.
    """
    p = np.asarray(transition, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] < 2:
        raise ValueError(
            f"transition must be a square (V, V) matrix with V >= 2, got shape {p.shape}"
        )
    if np.any(~np.isfinite(p)) or np.any(p < 0):
        raise ValueError("transition has negative or non-finite entries; pass probabilities")
    rows = p.sum(axis=1)
    if np.any(np.abs(rows - 1.0) > 1e-4):
        bad = int(np.argmax(np.abs(rows - 1.0)))
        raise ValueError(
            f"transition row {bad} sums to {rows[bad]:.6f}, not 1; normalise each row"
        )
    v = p.shape[0]
    if unigram is None:
        u = _stationary_np(p / rows[:, None])
    else:
        u = np.asarray(unigram, dtype=np.float64)
        if u.shape != (v,):
            raise ValueError(f"unigram must have shape ({v},), got {u.shape}")
        if np.any(~np.isfinite(u)) or np.any(u < 0) or abs(u.sum() - 1.0) > 1e-4:
            raise ValueError("unigram must be a probability vector (non-negative, sums to 1)")
    if alphabet and len(alphabet) != v:
        raise ValueError(f"alphabet has {len(alphabet)} symbols but the source has V={v}")
    return BigramSource(
        transition=jnp.asarray(p / rows[:, None], jnp.float32),
        unigram=jnp.asarray(u / u.sum(), jnp.float32),
        alphabet=alphabet,
    )


def bigram_from_text(text: str, *, smoothing: float = 0.0) -> BigramSource:
    """Estimate a character bigram from text (maximum likelihood, optional add-``smoothing``).

    ``pi_b(j | i) = (c(i, j) + smoothing) / (c(i) + V * smoothing)`` with ``c(i, j)`` the count
    of the character pair ``ij`` and ``pi_u(i)`` the character frequency. A character that is
    never followed by anything (it ends the text) gets the unigram as its row.

    Args:
        text: the corpus; the vocabulary is ``sorted(set(text))``.
        smoothing: additive (Laplace) pseudo-count, ``>= 0``.

    Returns:
        A :class:`BigramSource` whose ``alphabet`` lists the characters.
    """
    if not isinstance(text, str) or len(text) < 2:
        raise ValueError("text must be a string with at least 2 characters")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing}")
    alphabet = "".join(sorted(set(text)))
    if len(alphabet) < 2:
        raise ValueError("text must contain at least 2 distinct characters")
    ids = _encode_str(alphabet, text)
    v = len(alphabet)
    counts = np.zeros((v, v), np.float64)
    np.add.at(counts, (ids[:-1], ids[1:]), 1.0)
    unigram = np.bincount(ids, minlength=v).astype(np.float64)
    unigram /= unigram.sum()
    counts += smoothing
    rows = counts.sum(axis=1, keepdims=True)
    trans = np.where(rows > 0, counts / np.maximum(rows, 1e-300), unigram[None, :])
    return make_bigram_source(trans, unigram, alphabet)


def bigram_from_tinyshakespeare(*, smoothing: float = 0.0) -> BigramSource:
    """Character bigram of tiny Shakespeare (65 characters), via ``jaxml.data``.

    Reads ``$JAXML_DATA/tinyshakespeare/input.txt`` through
    ``jaxml.data.load_tinyshakespeare`` (which names the directory to fill when the file is
    missing) and calls :func:`bigram_from_text`.
    """
    from jaxml.data import load_tinyshakespeare  # lazy: keeps import cheap, no I/O at import

    return bigram_from_text(load_tinyshakespeare(), smoothing=smoothing)


def _stationary_np(p: np.ndarray, num_iters: int = 2048) -> np.ndarray:
    lazy = 0.5 * (p + np.eye(p.shape[0]))
    mu = np.full(p.shape[0], 1.0 / p.shape[0])
    for _ in range(num_iters):
        mu = mu @ lazy
    return mu / mu.sum()


def stationary_distribution(transition: jax.Array, *, num_iters: int = 512) -> jax.Array:
    """Stationary distribution ``mu = mu P`` of a row-stochastic matrix by power iteration.

    Uses the lazy chain ``(P + I) / 2`` (same stationary law, aperiodic) so that the iteration
    converges for periodic chains too.
    """
    p = jnp.asarray(transition, jnp.float32)
    v = p.shape[0]
    lazy = 0.5 * (p + jnp.eye(v, dtype=p.dtype))
    mu0 = jnp.full((v,), 1.0 / v, p.dtype)
    mu = jax.lax.fori_loop(0, num_iters, lambda _, m: m @ lazy, mu0)
    return mu / jnp.sum(mu)


def dirichlet_bigram(key: jax.Array, vocab_size: int, concentration: float = 0.1) -> BigramSource:
    """A random bigram with rows ``pi_b(. | i) ~ Dirichlet(concentration * 1)``.

    Small concentrations give peaked rows (a clear "pretrained" favourite successor per
    token), large ones near-uniform rows. ``pi_u`` is the stationary distribution.
    """
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    alpha = jnp.full((vocab_size,), concentration, jnp.float32)
    rows = jax.random.dirichlet(key, alpha, shape=(vocab_size,))
    # Dirichlet draws with tiny concentration can underflow to all-zero rows in float32.
    rows = rows + 1e-8
    rows = rows / jnp.sum(rows, axis=1, keepdims=True)
    return BigramSource(transition=rows, unigram=stationary_distribution(rows))


def _encode_str(alphabet: str, text: str) -> np.ndarray:
    """Map characters of ``text`` to their index in ``alphabet`` (int32 NumPy array)."""
    table = {c: i for i, c in enumerate(alphabet)}
    try:
        return np.fromiter((table[c] for c in text), dtype=np.int32, count=len(text))
    except KeyError as err:
        raise ValueError(f"character {err.args[0]!r} is not in the source's alphabet") from None


def encode(source: BigramSource, text: str) -> jax.Array:
    """Token ids of ``text`` under ``source.alphabet``."""
    if not source.alphabet:
        raise ValueError("this source has no alphabet (synthetic); pass token ids directly")
    return jnp.asarray(_encode_str(source.alphabet, text))


def decode(source: BigramSource, tokens: np.typing.ArrayLike) -> str:
    """Characters of token ids under ``source.alphabet``."""
    if not source.alphabet:
        raise ValueError("this source has no alphabet (synthetic); nothing to decode")
    return "".join(source.alphabet[int(t)] for t in np.asarray(tokens).reshape(-1))


class TriggerKind(enum.Enum):
    """How the ``K`` trigger tokens of a sequence are chosen.

    RANDOM: drawn per sequence from ``pi_u`` without replacement (Bietti et al. default); the
        model must discover in context which tokens are triggers, so the induction head works
        for every token and its output estimates the in-context successor distribution.
    FIXED: the ``K`` most frequent tokens in every sequence (Bietti et al.'s fixed-trigger
        variant); the induction head only needs to store those tokens.
    """

    RANDOM = "random"
    FIXED = "fixed"


class OutputKind(enum.Enum):
    """How the per-sequence output token ``o_k`` of each trigger is drawn.

    UNIGRAM: ``o_k ~ pi_u`` (the unigram; frequent characters such as the space are frequent
        outputs, so a position-free "predict a frequent token" route scores on many induction
        targets).
    UNIFORM: ``o_k`` uniform over the vocabulary, as in Bietti et al.'s code
        (``ihead_data.py``: ``rng.choice(tok_range)``); the output is then unpredictable from
        the global statistics and an induction target can only be solved by the induction head.
    """

    UNIGRAM = "unigram"
    UNIFORM = "uniform"


@dataclass(frozen=True)
class TriggerTaskConfig:
    """The trigger-sequence task.

    Attributes:
        seq_len: number of model inputs ``T``; a sequence has ``T + 1`` tokens so that
            ``inputs = z[:T]`` and ``targets = z[1:]``.
        num_triggers: ``K`` triggers per sequence.
        trigger_kind: :class:`TriggerKind`.
        output_kind: :class:`OutputKind`.
    """

    seq_len: int = 256
    num_triggers: int = 5
    trigger_kind: TriggerKind = TriggerKind.RANDOM
    output_kind: OutputKind = OutputKind.UNIGRAM

    def __post_init__(self) -> None:
        if not isinstance(self.seq_len, int) or self.seq_len < 2:
            raise ValueError(f"seq_len must be an int >= 2, got {self.seq_len!r}")
        if not isinstance(self.num_triggers, int) or self.num_triggers < 1:
            raise ValueError(f"num_triggers must be an int >= 1, got {self.num_triggers!r}")
        if not isinstance(self.trigger_kind, TriggerKind):
            raise ValueError(
                f"trigger_kind must be a TriggerKind ({[k.value for k in TriggerKind]}), "
                f"got {self.trigger_kind!r}"
            )
        if not isinstance(self.output_kind, OutputKind):
            raise ValueError(
                f"output_kind must be an OutputKind ({[k.value for k in OutputKind]}), "
                f"got {self.output_kind!r}"
            )


class TriggerSequence(NamedTuple):
    """One trigger sequence (leading batch axes when vmapped).

    Attributes:
        inputs: ``(T,)`` int32, ``z_1..z_T``.
        targets: ``(T,)`` int32, ``z_2..z_{T+1}``.
        induction_mask: ``(T,)`` bool, true where ``inputs[t]`` is a trigger seen earlier in
            ``inputs[:t]``: the target is then an output token predictable by induction.
        triggers: ``(K,)`` int32 trigger tokens.
        outputs: ``(K,)`` int32 output tokens, ``outputs[k]`` follows ``triggers[k]``.
    """

    inputs: jax.Array
    targets: jax.Array
    induction_mask: jax.Array
    triggers: jax.Array
    outputs: jax.Array


def select_triggers(key: jax.Array, source: BigramSource, num_triggers: int,
                    kind: TriggerKind) -> jax.Array:
    """The ``K`` trigger tokens of one sequence (see :class:`TriggerKind`)."""
    v = source.vocab_size
    if num_triggers > v:
        raise ValueError(f"num_triggers={num_triggers} exceeds the vocabulary size {v}")
    if kind is TriggerKind.FIXED:
        return jnp.argsort(-source.unigram)[:num_triggers].astype(jnp.int32)
    return jax.random.choice(key, v, (num_triggers,), replace=False,
                             p=source.unigram).astype(jnp.int32)


def induction_mask(inputs: jax.Array, triggers: jax.Array) -> jax.Array:
    """True at ``t`` where ``inputs[t]`` is a trigger that already occurred in ``inputs[:t]``.

    Args:
        inputs: ``(T,)`` int tokens.
        triggers: ``(K,)`` int trigger tokens.

    Returns:
        ``(T,)`` bool mask of the positions whose next token is an induction target.
    """
    same = inputs[:, None] == inputs[None, :]  # (T, T): same[t, s] = z_t == z_s
    earlier = jnp.tril(jnp.ones_like(same), k=-1)
    seen_before = jnp.any(same & earlier, axis=1)
    is_trigger = jnp.any(inputs[:, None] == triggers[None, :], axis=1)
    return seen_before & is_trigger


def sample_trigger_sequence(key: jax.Array, source: BigramSource,
                            cfg: TriggerTaskConfig) -> TriggerSequence:
    """Sample one trigger sequence of ``T + 1`` tokens (Bietti et al. 2023, Sec. 3).

    ``z_1 ~ pi_u``; ``z_{t+1} = o_k`` when ``z_t = q_k``, else ``z_{t+1} ~ pi_b(. | z_t)``,
    with triggers from :func:`select_triggers` and i.i.d. outputs ``o_k ~ pi_u`` or uniform
    (:class:`OutputKind`).

    Args:
        key: PRNG key.
        source: the global bigram.
        cfg: task configuration.

    Returns:
        A :class:`TriggerSequence`.
    """
    k_trig, k_out, k_first, k_chain = jax.random.split(key, 4)
    v = source.vocab_size
    triggers = select_triggers(k_trig, source, cfg.num_triggers, cfg.trigger_kind)
    p_out = source.unigram if cfg.output_kind is OutputKind.UNIGRAM else None
    outputs = jax.random.choice(k_out, v, (cfg.num_triggers,), replace=True,
                                p=p_out).astype(jnp.int32)
    # table[i] = o_k when i = q_k, else -1 (ties: the first trigger wins; triggers are distinct).
    out_table = jnp.full((v,), -1, jnp.int32).at[triggers[::-1]].set(outputs[::-1])
    log_p = jnp.log(jnp.maximum(source.transition, 1e-30))
    z0 = jax.random.choice(k_first, v, (), p=source.unigram).astype(jnp.int32)

    def step(z, k):
        nxt = jax.random.categorical(k, log_p[z]).astype(jnp.int32)
        forced = out_table[z]
        z_new = jnp.where(forced >= 0, forced, nxt)
        return z_new, z_new

    _, rest = jax.lax.scan(step, z0, jax.random.split(k_chain, cfg.seq_len))
    z = jnp.concatenate([z0[None], rest])
    inputs, targets = z[:-1], z[1:]
    return TriggerSequence(inputs, targets, induction_mask(inputs, triggers), triggers, outputs)


def sample_trigger_batch(key: jax.Array, source: BigramSource, cfg: TriggerTaskConfig,
                         batch_size: int) -> TriggerSequence:
    """``batch_size`` independent trigger sequences (leading axis ``B``)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    keys = jax.random.split(key, batch_size)
    return jax.vmap(lambda k: sample_trigger_sequence(k, source, cfg))(keys)


def restricted_bigram(source: BigramSource, exclude: Sequence[int]) -> jax.Array:
    """The bigram conditioned on never emitting the tokens in ``exclude``.

    ``pi'(j | i) propto pi_b(j | i) [j not excluded]``; a row with no allowed mass falls back to
    ``pi_u`` restricted to the allowed tokens.

    Returns:
        ``(V, V)`` row-stochastic matrix.
    """
    v = source.vocab_size
    allowed = jnp.ones((v,), bool).at[jnp.asarray(list(exclude), jnp.int32)].set(False) \
        if len(exclude) else jnp.ones((v,), bool)
    masked = jnp.where(allowed[None, :], source.transition, 0.0)
    fallback = jnp.where(allowed, source.unigram, 0.0)
    fallback = fallback / jnp.sum(fallback)
    mass = jnp.sum(masked, axis=1, keepdims=True)
    return jnp.where(mass > 1e-12, masked / jnp.maximum(mass, 1e-30), fallback[None, :])


def designed_prompt(key: jax.Array, source: BigramSource, *, length: int, query: int,
                    followers: Sequence[int], exclude: Sequence[int] = ()) -> jax.Array:
    """A designed prompt that plants ``query -> followers[i]`` pairs and ends with ``query``.

    The filler is a chain of the global bigram that never emits ``query``, any follower or
    any token in ``exclude`` (:func:`restricted_bigram`), so that the only in-context evidence
    about what follows ``query`` is the planted pairs. The ``r = len(followers)`` pairs are
    written at evenly spaced positions ``p_i = floor((i + 1) (length - 1) / (r + 1)) - 1``
    (token ``query`` at ``p_i``, ``followers[i]`` at ``p_i + 1``), and the last token is
    ``query``, so the next-token prediction at the end is the quantity studied by Wang & Sato
    (arXiv 2412.11459, Sec. 5): for ``followers = [o] * r`` the in-context term pushes
    ``o`` with strength growing in ``r`` while the pretrained bigram pushes
    ``argmax_j pi_b(j | query)``.

    Args:
        key: PRNG key for the filler.
        source: the global bigram.
        length: prompt length ``L``; needs ``L >= 3 r + 3``.
        query: the query token ``q``.
        followers: static sequence of tokens planted after ``q`` (``r`` of them, may be empty).
        exclude: extra tokens the filler must avoid (for example the bigram favourite).

    Returns:
        ``(L,)`` int32 prompt with ``prompt[-1] == query``.
    """
    followers = [int(f) for f in followers]
    r = len(followers)
    if length < 3 * r + 3:
        raise ValueError(
            f"length={length} is too short for {r} planted pairs; use length >= {3 * r + 3}"
        )
    v = source.vocab_size
    for name, tok in [("query", query), *[("follower", f) for f in followers],
                      *[("exclude", e) for e in exclude]]:
        if not 0 <= int(tok) < v:
            raise ValueError(f"{name} token {tok} is outside the vocabulary [0, {v})")
    banned = sorted({int(query), *followers, *[int(e) for e in exclude]})
    if len(banned) >= v:
        raise ValueError("query, followers and exclude cover the whole vocabulary: no filler")
    trans, start = filler_bigram(source, banned)
    return plant_pairs(bigram_chain(key, trans, start, length), query, followers)


def filler_bigram(source: BigramSource, banned: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """Transition matrix and start distribution of a filler that never emits ``banned``.

    Returns:
        ``(restricted_bigram(source, banned), pi_u restricted to the allowed tokens)``.
    """
    v = source.vocab_size
    allowed = jnp.ones((v,), bool)
    if len(banned):
        allowed = allowed.at[jnp.asarray(list(banned), jnp.int32)].set(False)
    start = jnp.where(allowed, source.unigram, 0.0)
    return restricted_bigram(source, banned), start / jnp.sum(start)


def plant_pairs(tokens: jax.Array, query: int, followers: Sequence[int] | jax.Array) -> jax.Array:
    """Write ``query -> followers[i]`` pairs into ``tokens`` and end them with ``query``.

    The ``r`` pairs go to positions ``p_i = floor((i + 1) (L - 1) / (r + 1)) - 1`` and
    ``p_i + 1`` of the last axis (see :func:`designed_prompt`); leading axes are batch axes.

    Args:
        tokens: ``(..., L)`` filler tokens.
        query: the query token.
        followers: the tokens planted after ``query``: a static sequence of ``r`` ints (the same
            pairs in every row), or an int array ``(..., r)`` broadcastable to ``tokens``'
            leading axes (a different follower per row; may be traced, so the planting can be
            vmapped over the follower).

    Returns:
        ``(..., L)`` tokens with the pairs planted and ``tokens[..., -1] == query``.
    """
    tokens = jnp.asarray(tokens)
    length = tokens.shape[-1]
    if isinstance(followers, (jax.Array, np.ndarray)):
        fol = jnp.asarray(followers, tokens.dtype)
    else:
        fol = jnp.asarray([int(f) for f in followers], tokens.dtype)
    if fol.ndim == 0:
        raise ValueError("followers must be a sequence of tokens or an array whose last axis counts the pairs, "
                         "not a scalar; wrap a single follower as [o]")
    r = fol.shape[-1]
    if length < 3 * r + 3:
        raise ValueError(
            f"length={length} is too short for {r} planted pairs; use length >= {3 * r + 3}"
        )
    if r:
        pos = np.array([(i + 1) * (length - 1) // (r + 1) - 1 for i in range(r)])
        tokens = tokens.at[..., pos].set(query)
        tokens = tokens.at[..., pos + 1].set(jnp.broadcast_to(fol, tokens.shape[:-1] + (r,)))
    return tokens.at[..., length - 1].set(query)


@functools.partial(jax.jit, static_argnums=3)
def bigram_chain(key: jax.Array, transition: jax.Array, start: jax.Array,
                 length: int) -> jax.Array:
    """A Markov chain ``z_1 ~ start``, ``z_{t+1} ~ transition[z_t]`` of ``length`` tokens.

    Args:
        key: PRNG key.
        transition: ``(V, V)`` row-stochastic matrix.
        start: ``(V,)`` initial distribution.
        length: number of tokens (static).

    Returns:
        ``(length,)`` int32 tokens.
    """
    k_first, k_chain = jax.random.split(key)
    v = transition.shape[0]
    z0 = jax.random.choice(k_first, v, (), p=start).astype(jnp.int32)
    log_p = jnp.log(jnp.maximum(transition, 1e-30))

    def step(z, k):
        z_new = jax.random.categorical(k, log_p[z]).astype(jnp.int32)
        return z_new, z_new

    _, rest = jax.lax.scan(step, z0, jax.random.split(k_chain, length - 1))
    return jnp.concatenate([z0[None], rest])


def empirical_bigram(tokens: jax.Array, vocab_size: int) -> jax.Array:
    """Transition counts ``c[i, j] = #{t : z_t = i, z_{t+1} = j}`` over the last axis.

    Args:
        tokens: ``(..., L)`` int tokens (leading axes are summed over).
        vocab_size: ``V``.

    Returns:
        ``(V, V)`` float32 counts.
    """
    z = jnp.asarray(tokens).reshape(-1, tokens.shape[-1])
    prev = z[:, :-1].reshape(-1)
    nxt = z[:, 1:].reshape(-1)
    return jnp.zeros((vocab_size, vocab_size), jnp.float32).at[prev, nxt].add(1.0)
