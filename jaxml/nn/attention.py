"""Multi-head attention with softmax, hardmax and uniform score-to-probability maps.

Scores ``s_{h,i,j} = <q_{h,i}, k_{h,j}> / sqrt(d_head) + b_{h,i,j}`` (b: optional positional bias),
masked positions excluded. The three kinds turn scores into attention probabilities:

- SOFTMAX: ``a_{h,i,:} = softmax(s_{h,i,:} / tau)`` (Vaswani et al. 2017).
- HARDMAX: uniform over the arg-max set, ``a_{h,i,j} = 1[s_{h,i,j} = max_j s] / #argmax``; this is
  the ``tau -> 0`` limit of softmax and the attention of the memorisation-capacity construction
  (Kajitsuka & Sato, arXiv 2307.14023) and the NoPE Dyck construction.
- UNIFORM: ``a_{h,i,j} = 1 / #{allowed j}`` over the allowed positions, ignoring the scores; under a
  causal mask it averages the prefix, which gives the position signal 1/(i+1) used without
  positional encoding. :func:`causal_attention` computes that average as a running mean (a prefix
  sum divided by the count) in O(T D) per head instead of a T x T matrix product.

:func:`causal_attention` computes the same probabilities under the causal mask block by block:
query rows ``[a, b)`` only meet keys ``[0, b)``, so the key blocks the mask removes entirely are
never computed (about 40% of the score work at 4 blocks), as flash-attention kernels do. The
probabilities are identical (masked entries are exact zeros either way; only the summation order
of a row's softmax normaliser may differ in the last bit).
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

__all__ = ["AttentionKind", "attention_probs", "attention", "causal_attention", "causal_block_size", "causal_mask"]

_NEG = -1e30


class AttentionKind(enum.Enum):
    """How scores become attention probabilities (see the module docstring)."""

    SOFTMAX = "softmax"
    HARDMAX = "hardmax"
    UNIFORM = "uniform"


def causal_mask(t: int, s: int | None = None) -> jax.Array:
    """Boolean (t, s) mask with ``mask[i, j] = j <= i + (s - t)`` (queries aligned to the end)."""
    s = t if s is None else s
    i = jnp.arange(t)[:, None] + (s - t)
    j = jnp.arange(s)[None, :]
    return j <= i


def attention_probs(scores: jax.Array, mask: jax.Array | None, kind: AttentionKind,
                    temperature: float = 1.0) -> jax.Array:
    """Turn scores (..., T, S) into probabilities over the last axis.

    Args:
      scores: attention scores, shape (..., T, S).
      mask: boolean (T, S) (or broadcastable to ``scores``), True where attending is allowed;
        None allows everything. Every row must allow at least one position.
      kind: SOFTMAX, HARDMAX or UNIFORM.
      temperature: softmax temperature tau (SOFTMAX only), must be positive.

    Returns:
      Probabilities with the shape of ``scores``; each allowed row sums to 1.
    """
    if mask is None:
        mask = jnp.ones(scores.shape[-2:], dtype=bool)
    mask = jnp.broadcast_to(mask, scores.shape)
    if kind is AttentionKind.UNIFORM:
        w = mask.astype(scores.dtype)
        return w / jnp.maximum(jnp.sum(w, axis=-1, keepdims=True), 1.0)
    masked = jnp.where(mask, scores, _NEG)
    if kind is AttentionKind.SOFTMAX:
        return jax.nn.softmax(masked / temperature, axis=-1)
    if kind is AttentionKind.HARDMAX:
        top = jnp.max(masked, axis=-1, keepdims=True)
        w = ((masked == top) & mask).astype(scores.dtype)
        return w / jnp.maximum(jnp.sum(w, axis=-1, keepdims=True), 1.0)
    raise ValueError(f"unknown attention kind {kind!r}; use one of {[k.name for k in AttentionKind]}")


def attention(q: jax.Array, k: jax.Array, v: jax.Array, *, kind: AttentionKind = AttentionKind.SOFTMAX,
              mask: jax.Array | None = None, bias: jax.Array | None = None,
              temperature: float = 1.0) -> tuple[jax.Array, jax.Array]:
    """Multi-head scaled dot-product attention for one sequence or a batch of them.

    Args:
      q: queries, (..., T, H, Dh); leading axes (a batch) are optional and shared by k, v.
      k: keys, (..., S, H, Dh).
      v: values, (..., S, H, Dv).
      kind: how scores become probabilities.
      mask: boolean (T, S), True where query i may attend key j.
      bias: additive score bias, (H, T, S) or (..., H, T, S) (relative positional bias).
      temperature: softmax temperature.

    Returns:
      ``(out, probs)``: out (..., T, H, Dv) = sum_j a_{h,i,j} v_{h,j}; probs (..., H, T, S).
    """
    d_head = q.shape[-1]
    scores = jnp.einsum("...thd,...shd->...hts", q, k) / jnp.sqrt(jnp.asarray(d_head, q.dtype))
    if bias is not None:
        scores = scores + jnp.broadcast_to(bias, scores.shape)
    probs = attention_probs(scores, mask, kind, temperature)
    out = jnp.einsum("...hts,...shd->...thd", probs, v)
    return out, probs


def causal_block_size(t: int) -> int:
    """Default query-block length of :func:`causal_attention` for ``t`` positions (0: no blocks).

    ``ceil(t / 4)`` clipped to [32, 128] for ``t >= 128``, else 0. Measured on 2 CPU cores
    (``benchmarks/transformer_train.py``): a width-64 one-head decoder's train step at T = 256
    ran 1.5x faster with blocks of 64 than with the full 256 x 256 scores; at T = 64 and 128 blocks
    neither helped nor hurt the step, so short sequences keep the single matrix.
    """
    if t < 128:
        return 0
    return max(32, min(128, -(-t // 4)))


def causal_attention(q: jax.Array, k: jax.Array, v: jax.Array, *, kind: AttentionKind = AttentionKind.SOFTMAX,
                     bias: jax.Array | None = None, temperature: float = 1.0,
                     block: int | None = None) -> tuple[jax.Array, jax.Array]:
    """:func:`attention` under ``causal_mask(T, S)``, skipping the key blocks the mask removes.

    Query rows ``[a, b)`` attend keys ``[0, b + S - T)`` only; the outputs and probabilities are
    those of ``attention(q, k, v, mask=causal_mask(T, S), ...)`` (module docstring).

    Args:
      q, k, v, kind, bias, temperature: as in :func:`attention` (``bias`` broadcastable to
        (..., H, T, S)).
      block: query rows per block; None picks :func:`causal_block_size`, 0 (or >= T) computes
        the whole T x S matrix at once.

    Returns:
      ``(out (..., T, H, Dv), probs (..., H, T, S))``; probabilities of skipped keys are zeros.
    """
    t, s = q.shape[-3], k.shape[-3]
    if s < t:
        raise ValueError(f"causal_attention needs at least as many keys as queries, got T={t}, S={s}")
    if kind is AttentionKind.UNIFORM and bias is None:
        return _causal_prefix_mean(v, t), attention_probs(
            jnp.zeros(q.shape[:-3] + (q.shape[-2], t, s), q.dtype), causal_mask(t, s), kind)
    block = causal_block_size(t) if block is None else block
    if block <= 0 or block >= t:
        return attention(q, k, v, kind=kind, mask=causal_mask(t, s), bias=bias, temperature=temperature)
    if bias is not None and bias.shape[-2:] != (t, s):
        bias = jnp.broadcast_to(bias, bias.shape[:-2] + (t, s))
    full_mask = causal_mask(t, s)
    outs, probs = [], []
    for a in range(0, t, block):
        b = min(a + block, t)
        end = b + s - t
        o, p = attention(q[..., a:b, :, :], k[..., :end, :, :], v[..., :end, :, :], kind=kind,
                         mask=full_mask[a:b, :end], bias=None if bias is None else bias[..., a:b, :end],
                         temperature=temperature)
        outs.append(o)
        probs.append(jnp.pad(p, [(0, 0)] * (p.ndim - 1) + [(0, s - end)]))
    return jnp.concatenate(outs, axis=-3), jnp.concatenate(probs, axis=-2)


def _causal_prefix_mean(v: jax.Array, t: int) -> jax.Array:
    """Uniform causal attention as a running mean: ``out_i = (sum_{j <= i + S - T} v_j) / (i + S - T + 1)``.

    The prefix sum costs O(S D) per head instead of the O(T S D) of multiplying the T x S
    probability matrix with ``v``; the sum is accumulated before the one division, so integer-valued
    values (counts, depths) are averaged exactly up to that last rounding.
    """
    s = v.shape[-3]
    csum = jnp.cumsum(v, axis=-3)[..., s - t:, :, :]
    count = jnp.arange(s - t + 1, s + 1, dtype=v.dtype).reshape((1,) * (v.ndim - 3) + (t, 1, 1))
    return csum / count
