"""A decoder-only (or bidirectional) pre-norm transformer over plain parameter dicts.

Forward pass for tokens ``x_1..x_T`` (Vaswani et al. 2017; pre-norm as in GPT-2):

    h^0_t = E[x_t] (+ P[t] for LEARNED / SINUSOIDAL encodings)
    h^{l+1/2} = h^l + Attn_l(Norm(h^l))            (causal mask, kind per layer)
    h^{l+1}   = h^{l+1/2} + FFN_l(Norm(h^{l+1/2}))  (skipped when d_ff = 0)
    logits_t  = Norm(h^L_t) U                       (U = E^T when tied)

with ``Attn(h) = sum_heads softmax/hardmax/uniform(q k^T / sqrt(d_h) + bias) v W_O``.
The parameter layout is fixed so that constructions from the papers can write weights
directly::

    params = {
      "embed": {"tokens": (V, D), "pos": (max_len, D)  # LEARNED only},
      "layers": [{"norm1": {...}, "attn": {"wq": (D, H, Dh), "wk": (D, H, Dh),
                   "wv": (D, H, Dh), "wo": (H, Dh, D), "rel": (H, 2 max_len - 1)  # RELATIVE only},
                  "norm2": {...}, "ffn": {"w1": (D, F), "b1": (F,), "w2": (F, D), "b2": (D,)}}, ...],
      "final_norm": {...},
      "unembed": (D, out_dim)  # absent when tied,
    }
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from jaxml.nn.attention import AttentionKind, attention, causal_attention
from jaxml.nn.layers import Activation, NormKind, embed, embedding_init, linear, norm, norm_init
from jaxml.nn.positional import (
    PosEncoding,
    apply_rope,
    relative_bias,
    relative_bias_init,
    sinusoidal_table,
)

__all__ = ["TransformerConfig", "init_transformer", "apply_transformer", "embed_tokens", "attention_sublayer",
           "ffn_sublayer", "readout"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Hyperparameters of the transformer (hashable, so it can be a static jit argument).

    Attributes:
      vocab_size: number of token ids V.
      d_model: residual width D.
      n_layers: number of blocks L.
      n_heads: heads per attention layer H (D must be divisible by H unless d_head is given).
      d_ff: hidden width of the FFN; 0 removes the FFN (attention-only transformer).
      max_len: longest sequence for LEARNED positions; table size for RELATIVE bias clipping.
      pos_encoding: a ``PosEncoding``.
      attention: one ``AttentionKind`` for every layer, or a tuple with one per layer.
      norm: ``NormKind`` used before attention, before the FFN and at the end.
      final_norm: apply the final normalisation before the unembedding.
      causal: causal mask (decoder); False gives bidirectional attention.
      tie_embeddings: use ``E^T`` as the unembedding (requires out_dim == vocab_size).
      out_dim: output width; defaults to vocab_size.
      d_head: per-head width; defaults to d_model // n_heads.
      activation: FFN non-linearity.
      bos_token: if not None, ``apply_transformer`` prepends this id and drops its output, so
        attention always has a sink at position 0 (the Dyck NoPE construction uses it).
      temperature: softmax temperature per attention layer (a float for all layers).
      embed_scale: std of the initial token embedding.
      attention_block: query rows per block of the causal attention (``causal_attention``: key
        blocks the causal mask removes are skipped); None picks ``causal_block_size(T)``, 0
        computes the whole T x T score matrix. Same probabilities either way; a speed knob.
    """

    vocab_size: int
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    max_len: int = 128
    pos_encoding: PosEncoding = PosEncoding.LEARNED
    attention: AttentionKind | tuple[AttentionKind, ...] = AttentionKind.SOFTMAX
    norm: NormKind = NormKind.LAYER
    final_norm: bool = True
    causal: bool = True
    tie_embeddings: bool = False
    out_dim: int | None = None
    d_head: int | None = None
    activation: Activation = Activation.GELU
    bos_token: int | None = None
    temperature: float = 1.0
    embed_scale: float = 0.02
    attention_block: int | None = None

    def __post_init__(self) -> None:
        def bad(field: str, value: object, rule: str) -> None:
            raise ValueError(f"TransformerConfig.{field}={value!r} is invalid: {rule}")

        for f in ("vocab_size", "d_model", "n_layers", "n_heads", "max_len"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                bad(f, v, "must be a positive integer")
        if not isinstance(self.d_ff, int) or self.d_ff < 0:
            bad("d_ff", self.d_ff, "must be an integer >= 0 (0 removes the FFN)")
        if self.d_head is None and self.d_model % self.n_heads:
            bad("d_model", self.d_model, f"must be divisible by n_heads={self.n_heads} (or set d_head)")
        if self.d_head is not None and self.d_head < 1:
            bad("d_head", self.d_head, "must be a positive integer")
        if not isinstance(self.pos_encoding, PosEncoding):
            bad("pos_encoding", self.pos_encoding, f"must be one of {[p for p in PosEncoding]}")
        if not isinstance(self.norm, NormKind):
            bad("norm", self.norm, f"must be one of {[n for n in NormKind]}")
        kinds = self.attention if isinstance(self.attention, tuple) else (self.attention,)
        if not all(isinstance(k, AttentionKind) for k in kinds):
            bad("attention", self.attention, "must be an AttentionKind or a tuple of them")
        if isinstance(self.attention, tuple) and len(self.attention) != self.n_layers:
            bad("attention", self.attention, f"needs one kind per layer ({self.n_layers})")
        if self.tie_embeddings and self.out_dim not in (None, self.vocab_size):
            bad("out_dim", self.out_dim, "must equal vocab_size when tie_embeddings=True")
        if self.out_dim is not None and self.out_dim < 1:
            bad("out_dim", self.out_dim, "must be a positive integer")
        if self.bos_token is not None and not 0 <= self.bos_token < self.vocab_size:
            bad("bos_token", self.bos_token, f"must be a token id in [0, {self.vocab_size})")
        if self.temperature <= 0:
            bad("temperature", self.temperature, "must be positive")
        if self.attention_block is not None and (not isinstance(self.attention_block, int) or self.attention_block < 0):
            bad("attention_block", self.attention_block, "must be None (automatic) or an integer >= 0 (0: no blocks)")
        if self.pos_encoding is PosEncoding.ROPE and self.head_dim % 2:
            bad("d_head", self.head_dim, "must be even for RoPE")

    @property
    def head_dim(self) -> int:
        """Per-head width ``d_head`` (default ``d_model // n_heads``)."""
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def output_dim(self) -> int:
        """Width of the output logits (``out_dim`` or ``vocab_size``)."""
        return self.out_dim if self.out_dim is not None else self.vocab_size

    def attention_kind(self, layer: int) -> AttentionKind:
        """The attention kind of ``layer``."""
        return self.attention[layer] if isinstance(self.attention, tuple) else self.attention


def _layer_init(key: jax.Array, cfg: TransformerConfig) -> dict:
    kq, kk, kv, ko, k1, k2 = jax.random.split(key, 6)
    d, h, dh = cfg.d_model, cfg.n_heads, cfg.head_dim
    s_in, s_out = 1.0 / math.sqrt(d), 1.0 / math.sqrt(h * dh)
    attn = {
        "wq": s_in * jax.random.normal(kq, (d, h, dh)),
        "wk": s_in * jax.random.normal(kk, (d, h, dh)),
        "wv": s_in * jax.random.normal(kv, (d, h, dh)),
        "wo": s_out * jax.random.normal(ko, (h, dh, d)) / math.sqrt(2 * cfg.n_layers),
    }
    if cfg.pos_encoding is PosEncoding.RELATIVE:
        attn["rel"] = relative_bias_init(h, cfg.max_len)
    layer = {"norm1": norm_init(cfg.norm, d), "attn": attn}
    if cfg.d_ff > 0:
        layer["norm2"] = norm_init(cfg.norm, d)
        layer["ffn"] = {
            "w1": jax.random.normal(k1, (d, cfg.d_ff)) / math.sqrt(d),
            "b1": jnp.zeros((cfg.d_ff,)),
            "w2": jax.random.normal(k2, (cfg.d_ff, d)) / math.sqrt(cfg.d_ff) / math.sqrt(2 * cfg.n_layers),
            "b2": jnp.zeros((d,)),
        }
    return layer


def init_transformer(key: jax.Array, cfg: TransformerConfig) -> dict:
    """Initialise transformer parameters (layout in the module docstring).

    Token embeddings N(0, embed_scale^2); attention and FFN weights scaled by 1/sqrt(fan_in), output
    projections further by 1/sqrt(2L) (GPT-2); relative biases and norms start neutral.
    """
    k_emb, k_pos, k_out, k_layers = jax.random.split(key, 4)
    params: dict = {"embed": {"tokens": embedding_init(k_emb, cfg.vocab_size, cfg.d_model, scale=cfg.embed_scale)}}
    if cfg.pos_encoding is PosEncoding.LEARNED:
        params["embed"]["pos"] = embedding_init(k_pos, cfg.max_len, cfg.d_model, scale=cfg.embed_scale)
    params["layers"] = [_layer_init(k, cfg) for k in jax.random.split(k_layers, cfg.n_layers)]
    params["final_norm"] = norm_init(cfg.norm, cfg.d_model) if cfg.final_norm else {}
    if not cfg.tie_embeddings:
        params["unembed"] = jax.random.normal(k_out, (cfg.d_model, cfg.output_dim)) / math.sqrt(cfg.d_model)
    return params


def _lead(v: jax.Array, x: jax.Array) -> jax.Array:
    """Reshape ``v`` (T, D) to broadcast explicitly against ``x`` (..., T, D)."""
    return jnp.reshape(v, (1,) * (x.ndim - v.ndim) + v.shape)


def embed_tokens(params: dict, tokens: jax.Array, cfg: TransformerConfig) -> jax.Array:
    """Input stream ``h^0_t = E[x_t] (+ P[t])`` for token ids (..., T) -> (..., T, D)."""
    t = tokens.shape[-1]
    if cfg.pos_encoding is PosEncoding.LEARNED and t > cfg.max_len:
        raise ValueError(
            f"sequence length {t} exceeds max_len={cfg.max_len} of the LEARNED positional table; "
            "raise TransformerConfig.max_len or use RELATIVE/ROPE/NONE encodings")
    x = embed(params["embed"]["tokens"], tokens)
    if cfg.pos_encoding is PosEncoding.LEARNED:
        x = x + _lead(params["embed"]["pos"][:t], x)
    elif cfg.pos_encoding is PosEncoding.SINUSOIDAL:
        x = x + _lead(sinusoidal_table(t, cfg.d_model), x)
    return x


def attention_sublayer(attn: dict, h: jax.Array, cfg: TransformerConfig, layer: int, *,
                       values_from: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """Multi-head attention of one layer on a normalised stream ``h`` (..., T, D).

    ``q = h W_Q, k = h W_K, v = u W_V`` with ``u = values_from`` if given (the looped-transformer
    quirk feeds the un-normalised stream) else ``h``; RoPE / relative bias per ``cfg``; the kind
    of ``layer``; output ``sum_h a_h v_h W_O``. Leading (batch) axes are optional; the
    projections flatten them into one matrix product (``jaxml.nn.layers.linear``).

    Returns:
      ``(out (..., T, D), probs (..., H, T, T))``.
    """
    t = h.shape[-2]
    u = h if values_from is None else values_from
    q = linear(h, attn["wq"])
    k = linear(h, attn["wk"])
    v = linear(u, attn["wv"])
    if cfg.pos_encoding is PosEncoding.ROPE:
        positions = jnp.arange(t)
        q, k = apply_rope(q, positions), apply_rope(k, positions)
    bias = relative_bias(attn["rel"], t) if cfg.pos_encoding is PosEncoding.RELATIVE else None
    kind = cfg.attention_kind(layer)
    if cfg.causal:
        o, probs = causal_attention(q, k, v, kind=kind, bias=bias, temperature=cfg.temperature,
                                    block=cfg.attention_block)
    else:
        o, probs = attention(q, k, v, kind=kind, bias=bias, temperature=cfg.temperature)
    return linear(o, attn["wo"], n_contract=2), probs


def ffn_sublayer(ffn: dict, h: jax.Array, cfg: TransformerConfig) -> jax.Array:
    """Position-wise FFN ``act(h W_1 + b_1) W_2 + b_2`` on (..., T, D)."""
    a = cfg.activation(linear(h, ffn["w1"]) + _lead(ffn["b1"], h))
    return linear(a, ffn["w2"]) + _lead(ffn["b2"], h)


def readout(params: dict, x: jax.Array, cfg: TransformerConfig) -> tuple[jax.Array, jax.Array]:
    """``(logits, normed stream)``: final norm (if enabled) then the (tied) unembedding."""
    hfin = norm(cfg.norm, params["final_norm"], x) if cfg.final_norm else x
    unembed = params["embed"]["tokens"].T if cfg.tie_embeddings else params["unembed"]
    return linear(hfin, unembed), hfin


def _apply_one(params: dict, tokens: jax.Array, cfg: TransformerConfig, return_intermediates: bool):
    x = embed_tokens(params, tokens, cfg)
    inter: dict = {"residual": [x], "attn_probs": [], "attn_out": [], "ffn_out": []}
    for li, layer in enumerate(params["layers"]):
        h = norm(cfg.norm, layer["norm1"], x)
        attn_out, probs = attention_sublayer(layer["attn"], h, cfg, li)
        x = x + attn_out
        inter["attn_probs"].append(probs)
        inter["attn_out"].append(attn_out)
        if "ffn" in layer:
            ffn_out = ffn_sublayer(layer["ffn"], norm(cfg.norm, layer["norm2"], x), cfg)
            x = x + ffn_out
            inter["ffn_out"].append(ffn_out)
        inter["residual"].append(x)
    logits, hfin = readout(params, x, cfg)
    inter["final"] = hfin
    return (logits, inter) if return_intermediates else logits


def apply_transformer(params: dict, tokens: jax.Array, cfg: TransformerConfig, *,
                      return_intermediates: bool = False) -> jax.Array | tuple[jax.Array, dict]:
    """Run the transformer on integer tokens of shape (T,) or (B, T).

    A batch runs as one batched program (every projection one matrix product over B * T rows),
    not as a ``vmap`` of the one-sequence function, whose weight gradients XLA:CPU compiles
    several times slower (see ``jaxml.nn.layers``); both give the same numbers.

    Args:
      params: from ``init_transformer`` (or a construction writing the same layout).
      tokens: int array (T,) or (B, T), ids in [0, vocab_size).
      cfg: the configuration.
      return_intermediates: also return a dict with per-layer ``residual`` streams (L + 1 entries),
        ``attn_probs`` ([B,] H, T, T) per layer, ``attn_out``, ``ffn_out`` and the normed ``final``
        stream.

    Returns:
      logits (T, out_dim) or (B, T, out_dim) [, intermediates]. With ``cfg.bos_token`` set, the
      BOS position is prepended internally and removed from every returned array's time axis
      except the intermediates, which keep it (position 0).
    """
    tokens = jnp.asarray(tokens)
    if tokens.ndim not in (1, 2):
        raise ValueError(f"tokens must have shape (T,) or (B, T), got {tokens.shape}")
    if not jnp.issubdtype(tokens.dtype, jnp.integer):
        raise TypeError(f"tokens must be integer ids, got dtype {tokens.dtype}")
    if cfg.bos_token is not None:
        bos = jnp.full(tokens.shape[:-1] + (1,), cfg.bos_token, tokens.dtype)
        tokens = jnp.concatenate([bos, tokens], axis=-1)
    out = _apply_one(params, tokens, cfg, return_intermediates)
    if cfg.bos_token is None:
        return out
    if return_intermediates:
        return out[0][..., 1:, :], out[1]
    return out[..., 1:, :]
