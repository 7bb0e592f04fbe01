"""Dense layers, MLPs, normalisation and embeddings as pure functions over parameter dicts.

Every layer is an ``*_init(key, ...) -> params`` and an apply function ``f(params, x)``.
Parameters are plain nested dicts of arrays so that hand-written constructions can set them
and NTK code can differentiate them.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

__all__ = [
    "Activation",
    "NormKind",
    "dense_init",
    "dense",
    "mlp_init",
    "mlp",
    "layer_norm_init",
    "layer_norm",
    "rms_norm_init",
    "rms_norm",
    "norm_init",
    "norm",
    "embedding_init",
    "embed",
]

Params = dict


class Activation(enum.Enum):
    """Pointwise non-linearities. GELU is the transformer default; RELU matches the NTK papers."""

    RELU = "relu"
    GELU = "gelu"
    TANH = "tanh"
    IDENTITY = "identity"

    def __call__(self, x: jax.Array) -> jax.Array:
        if self is Activation.RELU:
            return jax.nn.relu(x)
        if self is Activation.GELU:
            return jax.nn.gelu(x, approximate=False)
        if self is Activation.TANH:
            return jnp.tanh(x)
        return x


class NormKind(enum.Enum):
    """Normalisation layer kinds.

    LAYER: LayerNorm (Ba et al. 2016), ``(x - mean) / sqrt(var + eps) * scale + bias``.
    RMS: RMSNorm (Zhang & Sennrich 2019), ``x / sqrt(mean(x^2) + eps) * scale``; no centring, which the
      Dyck NoPE construction relies on.
    NONE: identity; used by constructions that need exact linear residual arithmetic.
    """

    LAYER = "layer"
    RMS = "rms"
    NONE = "none"


def dense_init(key: jax.Array, d_in: int, d_out: int, *, bias: bool = True,
               scale: float | None = None) -> Params:
    """Initialise a dense layer ``y = x W + b``.

    W ~ U(-s, s) with s = scale or 1/sqrt(d_in) (the LeCun-uniform / PyTorch default bound),
    b = 0.

    Args:
      key: PRNG key.
      d_in: input width.
      d_out: output width.
      bias: whether to include a bias.
      scale: uniform bound; defaults to ``1/sqrt(d_in)``.

    Returns:
      ``{"w": (d_in, d_out)[, "b": (d_out,)]}``.
    """
    if d_in <= 0 or d_out <= 0:
        raise ValueError(f"dense_init: d_in and d_out must be positive, got {d_in}, {d_out}")
    bound = 1.0 / math.sqrt(d_in) if scale is None else scale
    p = {"w": jax.random.uniform(key, (d_in, d_out), minval=-bound, maxval=bound)}
    if bias:
        p["b"] = jnp.zeros((d_out,))
    return p


def _last_axis(v: jax.Array, x: jax.Array) -> jax.Array:
    """Reshape a (d,) vector to broadcast explicitly against ``x`` (..., d)."""
    return jnp.reshape(v, (1,) * (x.ndim - 1) + (-1,))


def dense(params: Params, x: jax.Array) -> jax.Array:
    """Apply ``y = x W + b`` over the last axis of ``x``."""
    y = x @ params["w"]
    if "b" in params:
        y = y + _last_axis(params["b"], y)
    return y


def mlp_init(key: jax.Array, sizes: Sequence[int], *, bias: bool = True) -> Params:
    """Initialise an MLP with layer widths ``sizes`` (input first, output last).

    Returns ``{"layers": [dense params, ...]}`` with ``len(sizes) - 1`` layers.
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp_init: sizes needs at least input and output widths, got {list(sizes)}")
    keys = jax.random.split(key, len(sizes) - 1)
    return {"layers": [dense_init(k, a, b, bias=bias) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]}


def mlp(params: Params, x: jax.Array, activation: Activation | Callable = Activation.RELU) -> jax.Array:
    """Apply an MLP: ``h_{l+1} = act(h_l W_l + b_l)``, no activation after the last layer."""
    layers = params["layers"]
    for i, layer in enumerate(layers):
        x = dense(layer, x)
        if i < len(layers) - 1:
            x = activation(x)
    return x


def layer_norm_init(d: int) -> Params:
    """LayerNorm parameters: scale ones, bias zeros, shape (d,)."""
    return {"scale": jnp.ones((d,)), "bias": jnp.zeros((d,))}


def layer_norm(params: Params, x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """LayerNorm over the last axis: ``(x - mu) / sqrt(sigma^2 + eps) * scale + bias``."""
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * _last_axis(params["scale"], x) + _last_axis(params["bias"], x)


def rms_norm_init(d: int) -> Params:
    """RMSNorm parameters: scale ones, shape (d,)."""
    return {"scale": jnp.ones((d,))}


def rms_norm(params: Params, x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """RMSNorm over the last axis: ``x / sqrt(mean(x^2) + eps) * scale``."""
    ms = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(ms + eps) * _last_axis(params["scale"], x)


def norm_init(kind: NormKind, d: int) -> Params:
    """Parameters for the normalisation ``kind`` (empty dict for NONE)."""
    if kind is NormKind.LAYER:
        return layer_norm_init(d)
    if kind is NormKind.RMS:
        return rms_norm_init(d)
    return {}


def norm(kind: NormKind, params: Params, x: jax.Array) -> jax.Array:
    """Apply the normalisation ``kind``."""
    if kind is NormKind.LAYER:
        return layer_norm(params, x)
    if kind is NormKind.RMS:
        return rms_norm(params, x)
    return x


def embedding_init(key: jax.Array, n: int, d: int, *, scale: float = 0.02) -> jax.Array:
    """Embedding table of shape (n, d), entries N(0, scale^2) (GPT-2 convention)."""
    return scale * jax.random.normal(key, (n, d))


def embed(table: jax.Array, ids: jax.Array) -> jax.Array:
    """Look up rows of ``table`` (n, d) for integer ``ids`` of any shape -> ids.shape + (d,)."""
    return jnp.take(table, ids, axis=0)
