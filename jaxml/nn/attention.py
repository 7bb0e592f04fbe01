"""Multi-head attention with softmax, hardmax and uniform score-to-probability maps.

Scores ``s_{h,i,j} = <q_{h,i}, k_{h,j}> / sqrt(d_head) + b_{h,i,j}`` (b: optional positional bias),
masked positions excluded. The three kinds turn scores into attention probabilities:

- SOFTMAX: ``a_{h,i,:} = softmax(s_{h,i,:} / tau)`` (Vaswani et al. 2017).
- HARDMAX: uniform over the arg-max set, ``a_{h,i,j} = 1[s_{h,i,j} = max_j s] / #argmax``; this is
  the ``tau -> 0`` limit of softmax and the attention of the memorisation-capacity construction
  (Kajitsuka & Sato, arXiv 2307.14023) and the NoPE Dyck construction.
- UNIFORM: ``a_{h,i,j} = 1 / #{allowed j}`` over the allowed positions, ignoring the scores; under a
  causal mask it averages the prefix, which gives the position signal 1/(i+1) used without
  positional encoding.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

__all__ = ["AttentionKind", "attention_probs", "attention", "causal_mask"]

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
    """Multi-head scaled dot-product attention for one sequence.

    Args:
      q: queries, (T, H, Dh).
      k: keys, (S, H, Dh).
      v: values, (S, H, Dv).
      kind: how scores become probabilities.
      mask: boolean (T, S), True where query i may attend key j.
      bias: additive score bias, broadcastable to (H, T, S) (relative positional bias).
      temperature: softmax temperature.

    Returns:
      ``(out, probs)``: out (T, H, Dv) = sum_j a_{h,i,j} v_{h,j}; probs (H, T, S).
    """
    d_head = q.shape[-1]
    scores = jnp.einsum("thd,shd->hts", q, k) / jnp.sqrt(jnp.asarray(d_head, q.dtype))
    if bias is not None:
        scores = scores + bias
    probs = attention_probs(scores, mask, kind, temperature)
    out = jnp.einsum("hts,shd->thd", probs, v)
    return out, probs
