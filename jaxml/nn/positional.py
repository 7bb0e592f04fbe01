"""Positional encodings: none, learned absolute, sinusoidal, rotary (RoPE) and relative bias.

- NONE: no position information (NoPE). With a causal mask the model can still count
  positions through uniform attention (Dyck NoPE paper).
- LEARNED: a learned table ``P in R^{max_len x d}`` added to the token embeddings (GPT-2); it
  cannot represent positions >= max_len.
- SINUSOIDAL: ``P[t, 2i] = sin(t / 10000^{2i/d})``, ``P[t, 2i+1] = cos(...)`` (Vaswani et al. 2017),
  added to the embeddings.
- ROPE: rotary embedding (Su et al. 2021, arXiv 2104.09864): pairs of query/key coordinates are
  rotated by angle ``t * theta_i``, so ``<R_t q, R_s k>`` depends on t - s only.
- RELATIVE: a learned per-head bias ``b_h[i - j]`` added to the attention scores (Shaw et al. 2018;
  T5-style clipping), offsets clipped to ``[-(max_len - 1), max_len - 1]`` so that the model runs on
  sequences longer than it was trained on.
"""

from __future__ import annotations

import enum

import jax
import jax.numpy as jnp

__all__ = ["PosEncoding", "sinusoidal_table", "apply_rope", "relative_bias", "relative_bias_init"]


class PosEncoding(enum.Enum):
    """Positional-encoding kinds (see the module docstring for the math and trade-offs)."""

    NONE = "none"
    LEARNED = "learned"
    SINUSOIDAL = "sinusoidal"
    ROPE = "rope"
    RELATIVE = "relative"


def sinusoidal_table(length: int, d: int, base: float = 10000.0) -> jax.Array:
    """Sinusoidal position table (length, d): sin on even, cos on odd coordinates."""
    pos = jnp.arange(length, dtype=jnp.float32)[:, None]
    i = jnp.arange((d + 1) // 2, dtype=jnp.float32)[None, :]
    angle = pos / jnp.power(base, 2.0 * i / d)
    table = jnp.zeros((length, 2 * ((d + 1) // 2)))
    table = table.at[:, 0::2].set(jnp.sin(angle)).at[:, 1::2].set(jnp.cos(angle))
    return table[:, :d]


def apply_rope(x: jax.Array, positions: jax.Array, base: float = 10000.0) -> jax.Array:
    """Rotate (..., T, H, Dh) queries or keys by RoPE at integer ``positions`` (T,).

    Coordinates (2i, 2i+1) are rotated by ``positions * base^{-2i/Dh}``; Dh must be even.
    Leading (batch) axes are optional.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {d}; choose d_model / n_heads even")
    freqs = jnp.power(base, -jnp.arange(0, d, 2, dtype=jnp.float32) / d)  # (Dh/2,)
    ang = positions.astype(jnp.float32)[:, None] * freqs[None, :]  # (T, Dh/2)
    lead = (1,) * (x.ndim - 3)
    cos = jnp.reshape(jnp.cos(ang), lead + (ang.shape[0], 1, ang.shape[1]))
    sin = jnp.reshape(jnp.sin(ang), lead + (ang.shape[0], 1, ang.shape[1]))
    x1, x2 = x[..., 0::2], x[..., 1::2]
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    return jnp.stack([r1, r2], axis=-1).reshape(x.shape)


def relative_bias_init(n_heads: int, max_len: int) -> jax.Array:
    """Zero-initialised relative-bias table of shape (n_heads, 2 * max_len - 1)."""
    return jnp.zeros((n_heads, 2 * max_len - 1))


def relative_bias(table: jax.Array, t: int, s: int | None = None) -> jax.Array:
    """Bias (H, t, s) with entry ``table[h, clip(i - j) + max_len - 1]``.

    Offsets beyond the table are clipped to its ends, so any length works.
    """
    s = t if s is None else s
    max_len = (table.shape[-1] + 1) // 2
    off = jnp.arange(t)[:, None] + (s - t) - jnp.arange(s)[None, :]
    idx = jnp.clip(off, -(max_len - 1), max_len - 1) + max_len - 1
    return table[:, idx]
