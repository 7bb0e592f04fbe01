"""Diversity of a sample and distances between categorical distributions.

* Vendi score (Friedman & Dieng, "The Vendi Score: A Diversity Evaluation Metric for Machine
  Learning", TMLR 2023, arXiv 2210.02410, Def. 3.1): ``VS = exp(-sum_i lambda_i log lambda_i)``
  where ``lambda_i`` are the eigenvalues of ``K / n`` for a similarity kernel with ``k(x, x) = 1``.
  It is the effective number of distinct items: 1 for identical items, n for mutually orthogonal.
* Attribute distributions: Shannon entropy, its exponential (effective number of categories),
  total variation ``TV(p, q) = 1/2 sum |p - q|`` and ``KL(p || q) = sum p log(p / q)``.

FairT2I (arXiv 2502.03826) measures attribute diversity of generated images and their distance
to a target distribution; these are the standard forms (the paper does not fix them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxml.stats.twosample import median_bandwidth, rbf_kernel

__all__ = [
    "vendi_score",
    "vendi_score_from_kernel",
    "entropy",
    "effective_number",
    "total_variation",
    "kl_divergence",
    "counts_to_probs",
]


def vendi_score_from_kernel(k: jax.Array) -> jax.Array:
    """Vendi score of a positive semi-definite similarity matrix with unit diagonal.

    ``VS(K) = exp(H(eig(K / n)))`` with ``0 log 0 = 0`` (Friedman & Dieng 2023, Def. 3.1).

    Args:
      k: (n, n) symmetric PSD similarity matrix with ``k_ii = 1``.

    Returns:
      scalar in ``[1, n]``.
    """
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"vendi_score_from_kernel needs a square (n, n) matrix; got {k.shape}.")
    n = k.shape[0]
    lam = jnp.clip(jnp.linalg.eigvalsh(k / n), 0.0, None)
    lam = lam / jnp.sum(lam)
    h = -jnp.sum(jnp.where(lam > 0, lam * jnp.log(jnp.where(lam > 0, lam, 1.0)), 0.0))
    return jnp.exp(h)


def vendi_score(x: jax.Array, *, kernel: str = "cosine", sigma2: float | None = None
                ) -> jax.Array:
    """Vendi score of a sample of feature vectors.

    Args:
      x: (n, d) features.
      kernel: ``"cosine"`` (``k = <x_i, x_j> / (|x_i||x_j|)``, the paper's default for
        embeddings) or ``"rbf"`` (Gaussian, median-heuristic bandwidth unless ``sigma2``).
      sigma2: squared bandwidth for ``"rbf"``.

    Returns:
      scalar effective number of distinct samples in ``[1, n]``.
    """
    if x.ndim != 2:
        raise ValueError(f"vendi_score needs (n, d) features; got shape {x.shape}.")
    if kernel == "cosine":
        xn = x / jnp.maximum(jnp.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        k = xn @ xn.T
    elif kernel == "rbf":
        k = rbf_kernel(x, x, median_bandwidth(x) if sigma2 is None else sigma2)
    else:
        raise ValueError(f"unknown kernel {kernel!r}; choose 'cosine' or 'rbf'.")
    return vendi_score_from_kernel(k)


def _check_prob(p: jax.Array, name: str) -> None:
    if p.ndim != 1:
        raise ValueError(f"{name} must be a 1-D probability vector; got shape {p.shape}.")


def counts_to_probs(counts: jax.Array) -> jax.Array:
    """Normalise non-negative counts to probabilities (all-zero counts give the zero vector).

    Args:
      counts: (k,) non-negative counts.

    Returns:
      (k,) probabilities summing to 1 (or 0 if no counts).
    """
    counts = jnp.asarray(counts, dtype=jnp.float32)
    total = jnp.sum(counts)
    return jnp.where(total > 0, counts / jnp.maximum(total, 1e-30), 0.0)


def entropy(p: jax.Array) -> jax.Array:
    """Shannon entropy ``H(p) = -sum p_i log p_i`` in nats (``0 log 0 = 0``).

    Args:
      p: (k,) probability vector.

    Returns:
      scalar entropy.
    """
    _check_prob(p, "p")
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))


def effective_number(p: jax.Array) -> jax.Array:
    """``exp(H(p))``: the number of equally likely categories with the same entropy (1..k)."""
    return jnp.exp(entropy(p))


def total_variation(p: jax.Array, q: jax.Array) -> jax.Array:
    """Total variation distance ``TV(p, q) = 1/2 sum_i |p_i - q_i|`` in ``[0, 1]``.

    Args:
      p: (k,) probability vector.
      q: (k,) probability vector.

    Returns:
      scalar distance.
    """
    _check_prob(p, "p")
    _check_prob(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same length; got {p.shape} and {q.shape}.")
    return 0.5 * jnp.sum(jnp.abs(p - q))


def kl_divergence(p: jax.Array, q: jax.Array, *, eps: float = 0.0) -> jax.Array:
    """Kullback-Leibler divergence ``KL(p || q) = sum_i p_i log(p_i / q_i)``.

    Infinite when ``p_i > 0 = q_i``; pass ``eps > 0`` to smooth ``q`` as ``(q + eps) / (1 + k eps)``.

    Args:
      p: (k,) probability vector.
      q: (k,) probability vector (the reference, e.g. the target distribution).
      eps: additive smoothing of q.

    Returns:
      scalar divergence in nats.
    """
    _check_prob(p, "p")
    _check_prob(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same length; got {p.shape} and {q.shape}.")
    q = (q + eps) / (1.0 + eps * q.shape[0])
    safe_p = jnp.where(p > 0, p, 1.0)
    terms = jnp.where(p > 0, p * (jnp.log(safe_p) - jnp.log(q)), 0.0)
    return jnp.sum(terms)
