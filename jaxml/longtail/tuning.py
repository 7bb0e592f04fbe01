"""Gamma search for the post-hoc adjusters on a validation split.

Hasegawa & Sato (arXiv 2409.17582, sec. 6.1) carve a class-balanced validation set (20 examples
per class) out of the training data and pick each method's gamma by its class-balanced accuracy
there; the test accuracy is then reported at that gamma. :func:`accuracy_curve` evaluates a whole
gamma grid at once (``lax.map`` over gammas, chunked over examples so the ``O(N K^2)`` pairwise
adjuster stays within memory); :func:`tune_gamma` picks the best grid point.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.longtail.adjust import AdjustMethod, _as_method, check_pairwise_angles, predict
from jaxml.longtail.imbalance import per_class_accuracy

__all__ = ["GammaSearch", "predict_batched", "accuracy_curve", "tune_gamma"]


class GammaSearch(NamedTuple):
    """Result of a gamma search.

    Attributes:
      gamma: the selected gamma (first grid point with the best validation score).
      gammas: ``(G,)`` the grid.
      per_class: ``(G, K)`` validation per-class accuracy at each grid point.
      score: ``(G,)`` validation class-balanced accuracy at each grid point.
    """

    gamma: float
    gammas: np.ndarray
    per_class: np.ndarray
    score: np.ndarray


def predict_batched(
    logits: jax.Array,
    class_counts: jax.Array,
    method: AdjustMethod | str,
    gamma: float | jax.Array,
    feature_norms: jax.Array | None = None,
    *,
    batch_size: int = 256,
) -> jax.Array:
    """:func:`jaxml.longtail.predict` over ``(N, K)`` logits in chunks of ``batch_size`` examples.

    Needed for PAIRWISE at scale: one chunk holds ``batch_size * K^2`` comparisons.
    """
    method = _as_method(method)
    return jax.lax.map(
        lambda row: predict(row, class_counts, method, gamma, feature_norms), logits, batch_size=batch_size
    )


def accuracy_curve(
    logits: jax.Array,
    labels: jax.Array,
    class_counts: jax.Array,
    method: AdjustMethod | str,
    gammas: jax.Array,
    feature_norms: jax.Array | None = None,
    *,
    batch_size: int = 256,
) -> jax.Array:
    """Per-class accuracy of ``method`` at every gamma of a grid.

    Args:
      logits: ``(N, K)``.
      labels: ``(N,)``.
      class_counts: ``(K,)`` training counts.
      method: the adjuster.
      gammas: ``(G,)`` grid.
      feature_norms: class-mean norms for PAIRWISE.
      batch_size: examples per chunk.

    Returns:
      ``(G, K)`` per-class accuracies (their row mean is the class-balanced accuracy).
    """
    method = _as_method(method)
    num_classes = logits.shape[-1]
    counts = jnp.asarray(class_counts, jnp.float32)
    norms = None if feature_norms is None else jnp.asarray(feature_norms, jnp.float32)

    @jax.jit
    def one(gamma):
        preds = predict_batched(logits, counts, method, gamma, norms, batch_size=batch_size)
        return per_class_accuracy(preds, labels, num_classes)

    return jax.lax.map(one, jnp.asarray(gammas, jnp.float32))


def tune_gamma(
    val_logits: jax.Array,
    val_labels: jax.Array,
    class_counts: jax.Array,
    method: AdjustMethod | str,
    gammas: jax.Array,
    feature_norms: jax.Array | None = None,
    *,
    batch_size: int = 256,
) -> GammaSearch:
    """Pick ``gamma`` maximising class-balanced validation accuracy (arXiv 2409.17582, sec. 6.1).

    Returns:
      A :class:`GammaSearch`. For PAIRWISE, gammas whose boundary angles reach ``pi/2`` are still
      evaluated; the selected one is checked (and warned about) with
      :func:`jaxml.longtail.check_pairwise_angles`.
    """
    gammas = np.asarray(gammas, np.float32)
    if gammas.ndim != 1 or gammas.size == 0:
        raise ValueError(f"gammas must be a non-empty 1-D grid, got shape {gammas.shape}")
    per_class = np.asarray(
        accuracy_curve(val_logits, val_labels, class_counts, method, gammas, feature_norms, batch_size=batch_size)
    )
    score = np.nanmean(per_class, axis=1)
    best = float(gammas[int(np.nanargmax(score))])
    if _as_method(method) is AdjustMethod.PAIRWISE:
        check_pairwise_angles(class_counts, best, feature_norms)
    return GammaSearch(gamma=best, gammas=gammas, per_class=per_class, score=score)
