"""Synthetic neural-collapse features with class-dependent spread.

The theory of Hasegawa & Sato (arXiv 2409.17582, sec. 4) models the test features of a collapsed
network as concentrated around simplex-ETF class means, with a class's spread shrinking like
``n_k ** -1/2`` in its training count (its angular bound probability is ``1 - O(1/sqrt(n_k))``).
:func:`sample_collapsed_features` draws exactly that:

    h = ||m_k|| w_k + sigma_k xi,   xi ~ N(0, I_d / d),   sigma_k = spread * (n_k / n_max) ** -power,

with ``w_k`` the columns of a simplex ETF (so ``E||xi||^2 = 1`` and ``sigma_k`` is the typical
distance of a feature from its class mean, relative to a unit mean norm), and logits ``h @ W`` from
the same ETF as the fixed classifier. ``power = 1/2`` is the theory's rate.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["class_spreads", "sample_collapsed_features"]


def class_spreads(class_counts: np.ndarray, spread: float, power: float = 0.5) -> jax.Array:
    """``sigma_k = spread * (n_k / n_max) ** -power`` (head class: ``spread``)."""
    counts = jnp.asarray(class_counts, jnp.float32)
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    return spread * (counts / jnp.max(counts)) ** (-power)


def sample_collapsed_features(
    key: jax.Array,
    etf: jax.Array,
    class_counts: np.ndarray,
    samples_per_class: int,
    *,
    spread: float,
    power: float = 0.5,
    mean_norms: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Draw ``samples_per_class`` features per class around simplex-ETF class means.

    Args:
      key: PRNG key.
      etf: ``(d, K)`` simplex-ETF classifier (:func:`jaxml.longtail.simplex_etf`); class ``k``'s
        mean direction is ``etf[:, k]``.
      class_counts: ``(K,)`` training counts that set each class's spread.
      samples_per_class: examples drawn per class (a balanced evaluation set).
      spread: ``sigma`` of the most frequent class.
      power: spread exponent (``sigma_k ∝ n_k ** -power``; the theory's ``1/2``).
      mean_norms: ``(K,)`` class-mean norms ``||m_k||`` (``None``: all 1).

    Returns:
      ``(features (K * samples_per_class, d), labels (K * samples_per_class,))``, grouped by class.
    """
    dim, num_classes = etf.shape
    counts = np.asarray(class_counts)
    if counts.shape != (num_classes,):
        raise ValueError(f"class_counts must have shape ({num_classes},) to match the ETF, got {counts.shape}")
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    norms = jnp.ones((num_classes,)) if mean_norms is None else jnp.asarray(mean_norms, jnp.float32)
    if spread < 0:
        raise ValueError(f"spread must be >= 0, got {spread}")
    return _sample(key, etf, jnp.asarray(counts, jnp.float32), norms, spread, power, samples_per_class)


@functools.partial(jax.jit, static_argnums=(6,))
def _sample(key, etf, counts, norms, spread, power, samples_per_class):
    dim, num_classes = etf.shape
    sigma = spread * (counts / jnp.max(counts)) ** (-power)
    labels = jnp.repeat(jnp.arange(num_classes), samples_per_class)
    noise = jax.random.normal(key, (labels.shape[0], dim)) / jnp.sqrt(dim)
    means = (etf * norms[None, :]).T  # (K, d)
    features = means[labels] + sigma[labels][:, None] * noise
    return features, labels
