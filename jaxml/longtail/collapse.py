"""Neural collapse: a fixed simplex-ETF head, the feature-norm penalty, and collapse metrics.

Neural collapse (Papyan, Han & Donoho 2020, arXiv 2008.08186) at the terminal phase of training:
NC1 within-class variability vanishes; NC2 centred class means form a simplex equiangular tight
frame (ETF) with Gram ``K/(K-1) (I - 11^T/K)`` after normalisation; NC3 the classifier aligns with
the class means. Hasegawa & Sato (arXiv 2409.17582, sec. 6.1) induce it by training with a fixed
simplex-ETF classifier (Yang et al. 2022, arXiv 2203.09081), weight decay and the feature-norm
penalty ``lambda/2 * mean_i ||h_i||^2``.

Conventions: features ``(N, d)``, labels ``(N,)`` int in ``[0, K)``, classifier ``(d, K)`` with
``logits = h @ W``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

__all__ = [
    "simplex_etf",
    "etf_gram",
    "etf_logits",
    "feature_norm_penalty",
    "class_means",
    "class_mean_norms",
    "nc1_within_class",
    "nc2_etf_distance",
    "nc3_alignment",
    "collapse_metrics",
]


def etf_gram(num_classes: int) -> jax.Array:
    """The simplex-ETF Gram matrix ``K/(K-1) (I - 11^T/K)``: 1 on the diagonal, ``-1/(K-1)`` off it."""
    if num_classes < 2:
        raise ValueError(f"a simplex ETF needs num_classes >= 2, got {num_classes}")
    k = num_classes
    return (k / (k - 1.0)) * (jnp.eye(k) - jnp.ones((k, k)) / k)


def simplex_etf(key: jax.Array | None, num_classes: int, dim: int) -> jax.Array:
    """A fixed simplex-ETF classifier ``W`` of shape ``(dim, K)`` with unit-norm columns.

    ``W = sqrt(K/(K-1)) R V^T`` where ``V`` is an orthonormal basis ``(K, K-1)`` of the subspace
    orthogonal to ``1`` and ``R`` ``(dim, K-1)`` has orthonormal columns, so
    ``W^T W = K/(K-1) (I - 11^T/K)`` (arXiv 2203.09081, eq. 1; ``dim >= K-1`` suffices).

    Args:
      key: PRNG key for a random rotation ``R``; ``None`` embeds into the first ``K-1`` coordinates.
      num_classes: ``K >= 2``.
      dim: feature dimension ``d >= K - 1``.

    Returns:
      ``(dim, K)`` float32 classifier.
    """
    k = num_classes
    if k < 2:
        raise ValueError(f"a simplex ETF needs num_classes >= 2, got {k}")
    if dim < k - 1:
        raise ValueError(f"a simplex ETF for {k} classes needs feature dim >= {k - 1}, got dim={dim}")
    return _simplex_etf(key, k, dim)


@functools.partial(jax.jit, static_argnums=(1, 2))
def _simplex_etf(key: jax.Array | None, k: int, dim: int) -> jax.Array:
    centering = jnp.eye(k) - jnp.ones((k, k)) / k
    # Orthonormal basis of 1-perp: the top K-1 eigenvectors of the centring projector.
    _, vecs = jnp.linalg.eigh(centering)
    basis = vecs[:, 1:]  # eigenvalue 0 first (for the all-ones direction), then K-1 ones
    if key is None:
        rot = jnp.eye(dim, k - 1)
    else:
        q, r = jnp.linalg.qr(jax.random.normal(key, (dim, k - 1)))
        rot = q * jnp.sign(jnp.diagonal(r))[None, :]
    return (jnp.sqrt(k / (k - 1.0)) * rot @ basis.T).astype(jnp.float32)


def etf_logits(features: jax.Array, etf: jax.Array, scale: float = 1.0, bias: jax.Array | None = None) -> jax.Array:
    """Logits ``scale * h @ W (+ b)`` of a fixed ETF head.

    The paper's head has no bias (arXiv 2409.17582, sec. 6.1); ``bias`` (shape ``(K,)``) is the
    trained per-class bias of the official code's ``ETFClassifier`` (``NCRecipe.head_bias``).
    """
    logits = scale * features @ etf
    return logits if bias is None else logits + jnp.expand_dims(bias, tuple(range(logits.ndim - 1)))


def feature_norm_penalty(features: jax.Array, strength: float) -> jax.Array:
    """Feature-norm penalty ``strength/2 * mean_i ||h_i||^2`` (arXiv 2409.17582, sec. 6.1, lambda=1e-2)."""
    return 0.5 * strength * jnp.mean(jnp.sum(features**2, axis=-1))


@functools.partial(jax.jit, static_argnames="num_classes")
def class_means(features: jax.Array, labels: jax.Array, num_classes: int) -> tuple[jax.Array, jax.Array]:
    """Class means ``m_k`` and counts.

    Returns:
      ``(means (K, d), counts (K,))``; a class with no examples has a zero mean.
    """
    onehot = jax.nn.one_hot(labels, num_classes, dtype=features.dtype)  # (N, K)
    counts = jnp.sum(onehot, axis=0)
    sums = onehot.T @ features
    return sums / jnp.maximum(counts, 1.0)[:, None], counts


@functools.partial(jax.jit, static_argnames="num_classes")
def class_mean_norms(features: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Norms ``||m_k||`` of the (uncentred) class-mean features, used by the 1vs1 adjuster."""
    means, _ = class_means(features, labels, num_classes)
    return jnp.linalg.norm(means, axis=-1)


@functools.partial(jax.jit, static_argnames="num_classes")
def nc1_within_class(features: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """NC1 ``= tr(Sigma_W Sigma_B^+) / K`` (arXiv 2008.08186, sec. 3).

    ``Sigma_W`` averages the per-class covariances with equal class weights (so a head class does
    not dominate under imbalance), ``Sigma_B`` is the covariance of the class means around their
    unweighted average. 0 at perfect collapse.
    """
    means, counts = class_means(features, labels, num_classes)
    centred = features - means[labels]
    weights = 1.0 / jnp.maximum(counts[labels], 1.0)  # each class contributes its mean covariance
    sigma_w = (centred * weights[:, None]).T @ centred / num_classes
    global_mean = jnp.mean(means, axis=0)
    mc = means - global_mean[None, :]
    sigma_b = mc.T @ mc / num_classes
    return jnp.trace(sigma_w @ jnp.linalg.pinv(sigma_b, hermitian=True)) / num_classes


def _normalised_centred_means(features, labels, num_classes):
    means, _ = class_means(features, labels, num_classes)
    return means - jnp.mean(means, axis=0, keepdims=True)


@functools.partial(jax.jit, static_argnames="num_classes")
def nc2_etf_distance(features: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """NC2 ``|| M M^T / ||M M^T||_F - (I - 11^T/K) / sqrt(K-1) ||_F`` (arXiv 2008.08186, Fig. 6).

    ``M`` holds the centred class means as rows; 0 when they form a simplex ETF (any scale).
    """
    mc = _normalised_centred_means(features, labels, num_classes)
    gram = mc @ mc.T
    k = num_classes
    target = (jnp.eye(k) - jnp.ones((k, k)) / k) / jnp.sqrt(k - 1.0)
    return jnp.linalg.norm(gram / jnp.linalg.norm(gram) - target)


@jax.jit
def nc3_alignment(features: jax.Array, labels: jax.Array, classifier: jax.Array) -> jax.Array:
    """NC3 ``|| W^T/||W||_F - M/||M||_F ||_F`` with ``M`` the centred class means (arXiv 2008.08186).

    Args:
      features: ``(N, d)``.
      labels: ``(N,)``.
      classifier: ``(d, K)`` (``logits = h @ W``).
    """
    k = classifier.shape[1]
    mc = _normalised_centred_means(features, labels, k)
    w = classifier.T
    return jnp.linalg.norm(w / jnp.linalg.norm(w) - mc / jnp.linalg.norm(mc))


@jax.jit
def collapse_metrics(
    features: jax.Array, labels: jax.Array, classifier: jax.Array
) -> dict[str, jax.Array]:
    """All collapse metrics at once: ``nc1``, ``nc2_etf_distance``, ``nc3_alignment``, ``mean_norm``.

    ``mean_norm`` is the sample-weighted mean feature norm ``m_bar`` used by the ALA angle formula.
    """
    k = classifier.shape[1]
    return {
        "nc1": nc1_within_class(features, labels, k),
        "nc2_etf_distance": nc2_etf_distance(features, labels, k),
        "nc3_alignment": nc3_alignment(features, labels, classifier),
        "mean_norm": jnp.mean(jnp.linalg.norm(features, axis=-1)),
    }
