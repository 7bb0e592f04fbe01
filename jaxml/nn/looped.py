"""Looped transformers and the timestep-encoded variant (Xu & Sato, ICML 2025, arXiv 2410.01405).

A looped transformer applies ONE block ``B`` r times with shared weights:
``h^{(i+1)} = B(h^{(i)})``, ``i = 0..r-1``, between the usual embedding and read-out. The plain block
is pre-RMSNorm attention plus a 4x GELU MLP::

    x += Attn(RMS(x));  x += MLP(RMS(x))

The timestep-encoded block (TMLT, DiT-style adaLN) conditions every loop on its index t::

    c = W_2 SiLU(W_1 sin/cos-embed(t))                       (sinusoidal 256-d -> width D)
    (g_a, g_m, s_a, s_m) = W_ada SiLU(c) + b_ada              (zero-initialised, 4D outputs)
    x += (1 + g_a) * Attn(RMS(x) * (1 + s_a))
    x += (1 + g_m) * MLP(RMS(x) * (1 + s_m))

Departure from the official code: gates enter as ``(1 + g)`` rather than ``g``; with the
zero-initialised adaLN the timestep model therefore starts exactly equal to the plain looped
model (gating by ``g`` alone zeroes every block at initialisation and stalls training, as a probe
on this project measured). ``published_quirk=True`` reproduces the published runs' quirk:
attention values from the un-normalised stream and no pre-norm before the MLP.

The loop is a ``jax.lax.scan`` when ``r`` is a Python int (differentiable: training), and a
``jax.lax.fori_loop`` with a traced trip count when ``r`` is an array (forward only), so one set of
weights can be evaluated at several r without recompiling.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxml.nn.layers import norm
from jaxml.nn.positional import sinusoidal_table
from jaxml.nn.transformer import (
    TransformerConfig,
    attention_sublayer,
    embed_tokens,
    ffn_sublayer,
    init_transformer,
    readout,
)

__all__ = ["LoopedConfig", "init_looped", "apply_looped", "looped_block", "timestep_embedding", "parameter_count"]


@dataclasses.dataclass(frozen=True)
class LoopedConfig:
    """A looped transformer: ``block`` (a one-layer ``TransformerConfig``) applied r times.

    Attributes:
      block: width, heads, FFN width (use 4 D), norm (RMS in the paper), positional encoding,
        vocabulary and output size; ``n_layers`` must be 1 (the shared block).
      timestep: add the timestep encoding (adaLN gates and scales per loop).
      t_embed_dim: width of the sinusoidal loop-index embedding (256 in the paper).
      published_quirk: attention values from the un-normalised stream, no MLP pre-norm.
    """

    block: TransformerConfig
    timestep: bool = False
    t_embed_dim: int = 256
    published_quirk: bool = False

    def __post_init__(self) -> None:
        if self.block.n_layers != 1:
            raise ValueError(f"LoopedConfig.block.n_layers={self.block.n_layers} is invalid: the looped block is "
                             "one layer; set n_layers=1 and choose r at apply time")
        if self.block.d_ff <= 0:
            raise ValueError("LoopedConfig.block.d_ff must be > 0: the looped block has an MLP (4 x width in the paper)")
        if self.t_embed_dim < 2 or self.t_embed_dim % 2:
            raise ValueError(f"LoopedConfig.t_embed_dim={self.t_embed_dim} is invalid: must be an even integer >= 2")


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10000.0) -> jax.Array:
    """Sinusoidal embedding of the loop index t (scalar) -> (dim,) (DiT / diffusion convention)."""
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32) * freqs
    return jnp.concatenate([jnp.cos(args), jnp.sin(args)])


def init_looped(key: jax.Array, cfg: LoopedConfig) -> dict:
    """Parameters: the one-layer transformer's (``embed``, ``layers[0]``, ``final_norm``,
    ``unembed``) plus, with ``timestep``, ``time = {"w1", "b1", "w2", "b2", "ada_w", "ada_b"}``
    with ``ada_*`` zero (so the model starts equal to the plain looped one)."""
    k_block, k1, k2 = jax.random.split(key, 3)
    params = init_transformer(k_block, cfg.block)
    if cfg.timestep:
        d, e = cfg.block.d_model, cfg.t_embed_dim
        params["time"] = {
            "w1": jax.random.normal(k1, (e, d)) / math.sqrt(e), "b1": jnp.zeros((d,)),
            "w2": jax.random.normal(k2, (d, d)) / math.sqrt(d), "b2": jnp.zeros((d,)),
            "ada_w": jnp.zeros((d, 4 * d)), "ada_b": jnp.zeros((4 * d,)),
        }
    return params


def _modulation(params: dict, t: jax.Array, cfg: LoopedConfig) -> tuple[jax.Array, ...]:
    tp = params["time"]
    c = jax.nn.silu(timestep_embedding(t, cfg.t_embed_dim) @ tp["w1"] + tp["b1"]) @ tp["w2"] + tp["b2"]
    mod = jax.nn.silu(c) @ tp["ada_w"] + tp["ada_b"]
    return tuple(jnp.split(mod, 4))  # g_a, g_m, s_a, s_m, each (D,)


def looped_block(params: dict, x: jax.Array, t: jax.Array, cfg: LoopedConfig) -> jax.Array:
    """One application of the shared block at loop index t to the stream x (T, D) (module docstring)."""
    bc = cfg.block
    layer = params["layers"][0]
    if cfg.timestep:
        g_a, g_m, s_a, s_m = (v[None, :] for v in _modulation(params, t, cfg))
    else:
        g_a = g_m = s_a = s_m = jnp.zeros((1, bc.d_model), x.dtype)
    h = norm(bc.norm, layer["norm1"], x) * (1.0 + s_a)
    a, _ = attention_sublayer(layer["attn"], h, bc, 0, values_from=x if cfg.published_quirk else None)
    x = x + (1.0 + g_a) * a
    h2 = x if cfg.published_quirk else norm(bc.norm, layer["norm2"], x)
    x = x + (1.0 + g_m) * ffn_sublayer(layer["ffn"], h2 * (1.0 + s_m), bc)
    return x


def apply_looped(params: dict, tokens: jax.Array, cfg: LoopedConfig, r: int | jax.Array) -> jax.Array:
    """Logits of the looped transformer with r loops for tokens (T,) or (B, T).

    Args:
      params: from ``init_looped``.
      tokens: int ids, (T,) or (B, T).
      cfg: the configuration.
      r: number of loops; a Python int uses ``lax.scan`` (differentiable), a traced/array value
        uses ``lax.fori_loop`` (forward only; evaluate one model at several r without recompiling).

    Returns:
      (T, out_dim) or (B, T, out_dim) logits.
    """
    tokens = jnp.asarray(tokens)
    if isinstance(r, int) and r < 1:
        raise ValueError(f"apply_looped: r must be >= 1, got {r}")

    def one(seq: jax.Array) -> jax.Array:
        x = embed_tokens(params, seq, cfg.block)
        if isinstance(r, int):
            x, _ = jax.lax.scan(lambda h, t: (looped_block(params, h, t, cfg), None), x, jnp.arange(r))
        else:
            x = jax.lax.fori_loop(0, r, lambda t, h: looped_block(params, h, t, cfg), x)
        return readout(params, x, cfg.block)[0]

    return jax.vmap(one)(tokens) if tokens.ndim == 2 else one(tokens)


def parameter_count(params: dict) -> int:
    """Number of scalars in a parameter pytree (constant in r for looped models)."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
