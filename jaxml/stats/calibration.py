"""Calibration metrics and temperature scaling.

For predicted class probabilities ``p_i`` (softmax of logits), confidence ``c_i = max_k p_ik`` and
correctness ``a_i = [argmax_k p_ik = y_i]``, with ``M`` equal-width confidence bins ``B_m`` on [0, 1]
(Naeini et al. 2015; Guo et al. 2017, arXiv 1706.04599, Sec. 2):

    ECE   = sum_m |B_m| / n * |acc(B_m) - conf(B_m)|
    MCE   = max_m |acc(B_m) - conf(B_m)|           (non-empty bins)
    Brier = mean_i sum_k (p_ik - [y_i = k])^2
    NLL   = -mean_i log p_{i y_i}

Temperature scaling (Guo et al. 2017, Sec. 4.2) divides the logits by one scalar ``T > 0`` fitted
by minimising the validation NLL; it leaves accuracy unchanged. The NLL of ``z / T`` is convex in
``beta = 1 / T`` (a log-sum-exp of functions linear in ``beta`` minus a linear term), hence unimodal
in ``log T``, so a golden-section search over ``log T`` in a wide bracket finds the global optimum.
The LP-FT paper (Tomihari & Sato 2024, arXiv 2405.16747, Sec. 4.3) uses 15 bins and shows that the
large head norm after LP makes LP-FT over-confident, which temperature scaling repairs.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

__all__ = [
    "ece",
    "mce",
    "brier",
    "nll",
    "calibration_metrics",
    "fit_temperature",
    "reliability_bins",
]


def _check(logits: jax.Array, labels: jax.Array) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must be (n, C), got shape {logits.shape}.")
    if labels.shape != logits.shape[:1]:
        raise ValueError(f"labels must be ({logits.shape[0]},) to match the logits, got {labels.shape}.")


def reliability_bins(logits: jax.Array, labels: jax.Array, n_bins: int = 15) -> dict[str, jax.Array]:
    """Per-bin counts, mean confidence and accuracy (equal-width bins on (0, 1]).

    Returns:
      dict with ``count``, ``confidence``, ``accuracy`` of shape (n_bins,) (zeros in empty bins).
    """
    _check(logits, labels)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}.")
    probs = jax.nn.softmax(logits, axis=-1)
    conf = jnp.max(probs, axis=-1)
    correct = (jnp.argmax(probs, axis=-1) == labels).astype(probs.dtype)
    # bin m holds confidences in (m/M, (m+1)/M]; confidence 0 cannot occur for a max-probability
    idx = jnp.clip(jnp.ceil(conf * n_bins).astype(jnp.int32) - 1, 0, n_bins - 1)
    count = jnp.zeros((n_bins,), probs.dtype).at[idx].add(1.0)
    conf_sum = jnp.zeros((n_bins,), probs.dtype).at[idx].add(conf)
    acc_sum = jnp.zeros((n_bins,), probs.dtype).at[idx].add(correct)
    safe = jnp.maximum(count, 1.0)
    return {"count": count, "confidence": conf_sum / safe, "accuracy": acc_sum / safe}


def ece(logits: jax.Array, labels: jax.Array, n_bins: int = 15) -> jax.Array:
    """Expected calibration error with ``n_bins`` equal-width bins (Guo et al. 2017, Eq. 3)."""
    b = reliability_bins(logits, labels, n_bins)
    return jnp.sum(b["count"] / jnp.sum(b["count"]) * jnp.abs(b["accuracy"] - b["confidence"]))


def mce(logits: jax.Array, labels: jax.Array, n_bins: int = 15) -> jax.Array:
    """Maximum calibration error over non-empty bins (Guo et al. 2017, Eq. 5)."""
    b = reliability_bins(logits, labels, n_bins)
    gap = jnp.where(b["count"] > 0, jnp.abs(b["accuracy"] - b["confidence"]), 0.0)
    return jnp.max(gap)


def brier(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Multi-class Brier score ``mean_i ||p_i - onehot(y_i)||^2``."""
    _check(logits, labels)
    probs = jax.nn.softmax(logits, axis=-1)
    return jnp.mean(jnp.sum(jnp.square(probs - jax.nn.one_hot(labels, logits.shape[-1], dtype=probs.dtype)), axis=-1))


def nll(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean negative log-likelihood (cross-entropy) of the labels."""
    _check(logits, labels)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1))


@functools.partial(jax.jit, static_argnames="n_bins")
def _metrics(logits: jax.Array, labels: jax.Array, n_bins: int) -> dict[str, jax.Array]:
    probs = jax.nn.softmax(logits, axis=-1)
    return {
        "accuracy": jnp.mean(jnp.argmax(logits, axis=-1) == labels),
        "ece": ece(logits, labels, n_bins),
        "mce": mce(logits, labels, n_bins),
        "brier": brier(logits, labels),
        "nll": nll(logits, labels),
        "confidence": jnp.mean(jnp.max(probs, axis=-1)),
        "logit_norm": jnp.mean(jnp.linalg.norm(logits, axis=-1)),
    }


def calibration_metrics(logits: jax.Array, labels: jax.Array, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, ECE, MCE, Brier, NLL, mean confidence and mean logit norm as Python floats."""
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    _check(logits, labels)
    return {k: float(v) for k, v in _metrics(logits, labels, n_bins).items()}


def fit_temperature(logits: jax.Array, labels: jax.Array, *, t_min: float = 1e-2, t_max: float = 1e2,
                    iterations: int = 80) -> jax.Array:
    """Temperature ``T`` minimising ``NLL(logits / T)`` on validation data (Guo et al. 2017, Sec. 4.2).

    Golden-section search over ``log T`` in ``[log t_min, log t_max]`` (the objective is unimodal
    there, see module docstring); ``iterations`` shrink the bracket by ``0.618^iterations``.

    Args:
      logits: (n, C) validation logits.
      labels: (n,) validation labels.
      t_min, t_max: search bracket for ``T`` (0 < t_min < t_max).
      iterations: golden-section steps.

    Returns:
      Scalar ``T``; calibrated logits are ``logits / T``.
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    _check(logits, labels)
    if not 0 < t_min < t_max:
        raise ValueError(f"need 0 < t_min < t_max, got t_min={t_min}, t_max={t_max}.")
    return _fit_temperature(logits, labels, float(t_min), float(t_max), int(iterations))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _fit_temperature(logits: jax.Array, labels: jax.Array, t_min: float, t_max: float, iterations: int) -> jax.Array:

    def objective(log_t: jax.Array) -> jax.Array:
        return nll(logits / jnp.exp(log_t), labels)

    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def body(_, bracket):
        lo, hi = bracket
        a = hi - ratio * (hi - lo)
        b = lo + ratio * (hi - lo)
        left = objective(a) < objective(b)
        return jnp.where(left, lo, a), jnp.where(left, b, hi)

    lo, hi = jax.lax.fori_loop(0, iterations, body,
                               (jnp.asarray(math.log(t_min), logits.dtype), jnp.asarray(math.log(t_max), logits.dtype)))
    return jnp.exp(0.5 * (lo + hi))
