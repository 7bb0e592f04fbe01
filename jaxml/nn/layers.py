"""Dense layers, MLPs, normalisation and embeddings as pure functions over parameter dicts.

Every layer is an ``*_init(key, ...) -> params`` and an apply function ``f(params, x)``.
Parameters are plain nested dicts of arrays so that hand-written constructions can set them
and NTK code can differentiate them.

Speed notes (measured with ``python -m benchmarks transformer_train``; the numbers are in
``docs/dyck_nope.md``, section "Benchmark"). The functions below compute the textbook formulas,
written so that XLA's CPU backend compiles their training step well:

* :func:`linear` multiplies with all leading axes flattened into one. ``x @ W`` on a 3-D ``x``
  differentiates, through JAX's ``dot_general`` transpose rule, into a weight gradient that XLA:CPU
  lays out with both operands transposed, which misses its fast (YNNPACK) matmul and ran 3-6x
  slower than the forward product; the 2-D product's gradient is the plain ``x^T g``.
* On the CPU backend, :func:`linear` products with many rows carry a ``custom_jvp``
  (:func:`_cpu_matmul`) that states the same derivative ``dx W + x dW`` with every product 2-D and,
  when the contracted size K exceeds the output size M, the weight gradient as ``(g^T x)^T`` with
  the ``M x K`` product materialised behind an ``optimization_barrier``. XLA otherwise lays out
  ``x^T g`` for K > M (the FFN's down-projection) in a form its matmul runs 1.6x slower than
  PyTorch; with the rearrangement the width-256 decoder's whole train step is ~6% faster.
  (Materialising ``x^T`` instead was measured before and made the step slower.)
* GELU uses ``erf`` (``0.5 x (1 + erf(x / sqrt 2))``, the definition and PyTorch's kernel) rather
  than ``jax.nn.gelu``'s ``erfc`` form, whose XLA expansion (exp and branch selects) cost ~4x more.
* LayerNorm / RMSNorm carry a ``custom_jvp`` with the closed-form derivative of the
  standardisation; its transpose is the usual fused backward (two row reductions) instead of the
  chain of mean/variance derivatives autodiff produces. Forward- and reverse-mode (and higher
  order) derivatives still work, and the values are the same formulas.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

__all__ = [
    "Activation",
    "NormKind",
    "gelu",
    "linear",
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

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def gelu(x: jax.Array) -> jax.Array:
    """Exact GELU ``x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))`` (Hendrycks & Gimpel 2016).

    Same function as ``jax.nn.gelu(x, approximate=False)``, which evaluates
    ``0.5 x erfc(-x / sqrt(2))``: in float32 the two differ by at most 1e-6 (a few ulps; measured
    on [-12, 12]), and in the far left tail (x < -5, |GELU| < 2e-6) the erf form rounds to zero
    sooner. The erf form is PyTorch's ``F.gelu`` formula (the same 1e-6 from it) and compiles to
    a cheaper kernel on XLA:CPU.
    """
    return 0.5 * x * (1.0 + jax.lax.erf(x * jnp.asarray(_INV_SQRT2, x.dtype)))


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
            return gelu(x)
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


#: Smallest number of rows (flattened leading axes) for which :func:`linear` takes the CPU
#: custom-derivative path; below it the transposed weight-gradient copy is not worth a custom rule.
CPU_MATMUL_MIN_ROWS = 128


def linear(x: jax.Array, w: jax.Array, n_contract: int = 1) -> jax.Array:
    """Contract the last ``n_contract`` axes of ``x`` with the first ``n_contract`` axes of ``w``.

    ``y[..., m] = sum_k x[..., k] w[k, m]`` (``k`` and ``m`` may each be several axes), computed as
    one 2-D product with the leading axes of ``x`` flattened, so that the weight gradient is a
    plain ``x^T g`` (see the module docstring for why that matters on CPU). ``w`` enters the
    ``dot_general`` unreshaped, so structured NTK code still recognises it as a dense weight.

    On the CPU backend, for products with at least :data:`CPU_MATMUL_MIN_ROWS` rows, the product
    carries a ``custom_jvp`` (:func:`_cpu_matmul`) whose derivatives are the same formulas
    (``dy = dx W + x dW``) arranged for XLA:CPU: every product is 2-D (``K = prod k``,
    ``M = prod m``), and when ``K > M`` the weight gradient is computed as ``(g^T x)^T`` with the
    ``M x K`` product materialised, the layout XLA:CPU multiplies fast. Values and derivatives of
    every order are unchanged up to float rounding.

    Args:
      x: input (..., K_1..K_n).
      w: weight (K_1..K_n, M...).
      n_contract: number of contracted axes n.

    Returns:
      (..., M...).
    """
    lead = x.shape[:x.ndim - n_contract]
    if len(lead) > 1:
        x = jnp.reshape(x, (-1,) + x.shape[x.ndim - n_contract:])
    if len(lead) >= 1 and x.shape[0] >= CPU_MATMUL_MIN_ROWS and jax.default_backend() == "cpu":
        y = _cpu_matmul(x, w, n_contract)
    else:
        y = jnp.tensordot(x, w, axes=n_contract)
    return jnp.reshape(y, lead + w.shape[n_contract:]) if len(lead) > 1 else y


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _cpu_matmul(x: jax.Array, w: jax.Array, n_contract: int) -> jax.Array:
    """``tensordot(x, w, n_contract)`` for ``x`` of shape (N, K_1..K_n); derivatives arranged for XLA:CPU.

    Why: XLA:CPU compiles JAX's default transpose of ``x W`` (the weight gradient
    ``dot_general(x, g)`` contracting the row axis of both) into a layout that its fast matmul
    handles 1.6x slower than PyTorch when ``K > M`` (measured: 2048 x 1024 by 2048 x 256, 25.8 ms
    against PyTorch's 17.8 ms on 2 cores); ``(g^T x)^T`` with the ``M x K`` product behind an
    optimisation barrier takes 16.2 ms. Multi-axis contractions (the attention output projection)
    are flattened to one 2-D product as well. ``jaxml.ntk.structured`` looks through this
    function (its primal body is the plain ``dot_general`` with ``w`` unreshaped).
    """
    return jnp.tensordot(x, w, axes=n_contract)


def _cpu_matmul_jvp(n_contract: int, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    x, w = primals
    dx, dw = tangents
    n = x.shape[0]
    k = math.prod(w.shape[:n_contract])
    m = math.prod(w.shape[n_contract:])
    out_shape = (n,) + w.shape[n_contract:]
    x2 = jnp.reshape(x, (n, k))
    w2 = jnp.reshape(w, (k, m))
    y = jnp.reshape(x2 @ w2, out_shape)
    t = None
    if not isinstance(dx, SymbolicZero):
        t = jnp.reshape(dx, (n, k)) @ w2
    if not isinstance(dw, SymbolicZero):
        dw2 = jnp.reshape(dw, (k, m))
        if k > m:
            # (dW^T x^T)^T: reverse mode transposes this into (g^T x)^T with g^T x materialised
            a = jax.lax.optimization_barrier(jnp.transpose(dw2))
            u = jnp.transpose(jax.lax.dot_general(a, x2, (((1,), (1,)), ((), ()))))
        else:
            u = x2 @ dw2
        t = u if t is None else t + u
    if t is None:
        return y, jnp.zeros_like(y)
    return y, jnp.reshape(t, out_shape)


_cpu_matmul.defjvp(_cpu_matmul_jvp, symbolic_zeros=True)


def dense(params: Params, x: jax.Array) -> jax.Array:
    """Apply ``y = x W + b`` over the last axis of ``x``."""
    y = linear(x, params["w"])
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


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _standardize(x: jax.Array, eps: float) -> jax.Array:
    """``(x - mu) / sqrt(var + eps)`` over the last axis (mu, var: mean and biased variance)."""
    xc = x - jnp.mean(x, axis=-1, keepdims=True)
    return xc * jax.lax.rsqrt(jnp.mean(jnp.square(xc), axis=-1, keepdims=True) + eps)


@_standardize.defjvp
def _standardize_jvp(eps: float, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    # With r = (var + eps)^(-1/2) and xh = (x - mu) r: d xh = r (dx - mean(dx) - xh mean(xh dx)).
    (x,), (dx,) = primals, tangents
    xc = x - jnp.mean(x, axis=-1, keepdims=True)
    r = jax.lax.rsqrt(jnp.mean(jnp.square(xc), axis=-1, keepdims=True) + eps)
    xh = xc * r
    dxh = r * (dx - jnp.mean(dx, axis=-1, keepdims=True) - xh * jnp.mean(xh * dx, axis=-1, keepdims=True))
    return xh, dxh


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _rms_scale(x: jax.Array, eps: float) -> jax.Array:
    """``x / sqrt(mean(x^2) + eps)`` over the last axis."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


@_rms_scale.defjvp
def _rms_scale_jvp(eps: float, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    # With r = (mean(x^2) + eps)^(-1/2) and xh = x r: d xh = r (dx - xh mean(xh dx)).
    (x,), (dx,) = primals, tangents
    r = jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)
    xh = x * r
    return xh, r * (dx - xh * jnp.mean(xh * dx, axis=-1, keepdims=True))


def layer_norm(params: Params, x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """LayerNorm over the last axis: ``(x - mu) / sqrt(sigma^2 + eps) * scale + bias``.

    The standardisation has a closed-form ``custom_jvp`` (module docstring); values and
    derivatives of every order are those of the formula.
    """
    return _standardize(x, eps) * _last_axis(params["scale"], x) + _last_axis(params["bias"], x)


def rms_norm_init(d: int) -> Params:
    """RMSNorm parameters: scale ones, shape (d,)."""
    return {"scale": jnp.ones((d,))}


def rms_norm(params: Params, x: jax.Array, eps: float = 1e-6) -> jax.Array:
    """RMSNorm over the last axis: ``x / sqrt(mean(x^2) + eps) * scale`` (closed-form ``custom_jvp``)."""
    return _rms_scale(x, eps) * _last_axis(params["scale"], x)


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
