"""Gamma search for the post-hoc adjusters on a validation split.

Hasegawa & Sato (arXiv 2409.17582, sec. 6.1) carve a class-balanced validation set (20 examples
per class) out of the training data and pick each method's gamma by its class-balanced accuracy
there; the test accuracy is then reported at that gamma. :func:`accuracy_curve` evaluates a whole
gamma grid at once (``lax.map`` over gammas, chunked over examples so the ``O(N K^2)`` pairwise
adjuster stays within memory); :func:`tune_gamma` picks the best grid point.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.longtail.adjust import AdjustMethod, _as_method, check_pairwise_angles, predict

__all__ = ["GammaSearch", "MethodEvaluation", "predict_batched", "accuracy_curve", "tune_gamma", "evaluate_methods"]


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


@functools.partial(jax.jit, static_argnames=("method", "num_classes", "batch_size"))
def _curve(logits, labels, counts, norms, gammas, *, method, num_classes, batch_size):
    # ``labels`` may index up to ``num_classes`` groups; the true class is ``labels mod K`` (see
    # evaluate_methods, which stacks validation and test with test labels offset by K).
    k = logits.shape[-1]
    onehot = jax.nn.one_hot(labels, num_classes)
    totals = jnp.sum(onehot, axis=0)

    def one(gamma):
        preds = predict_batched(logits, counts, method, gamma, norms, batch_size=batch_size)
        hits = onehot.T @ (preds == labels % k).astype(jnp.float32)
        return jnp.where(totals > 0, hits / jnp.maximum(totals, 1.0), jnp.nan)

    return jax.lax.map(one, gammas)


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

    One compiled program per (method, shapes), reused across calls.

    Args:
      logits: ``(N, K)``.
      labels: ``(N,)``.
      class_counts: ``(K,)`` training counts.
      method: the adjuster.
      gammas: ``(G,)`` grid.
      feature_norms: class-mean norms for PAIRWISE (``None``: equal norms).
      batch_size: examples per chunk.

    Returns:
      ``(G, K)`` per-class accuracies (their row mean is the class-balanced accuracy).
    """
    method = _as_method(method)
    logits = jnp.asarray(logits, jnp.float32)
    num_classes = logits.shape[-1]
    counts = jnp.asarray(class_counts, jnp.float32)
    norms = jnp.ones_like(counts) if feature_norms is None else jnp.asarray(feature_norms, jnp.float32)
    return _curve(logits, jnp.asarray(labels), counts, norms, jnp.asarray(gammas, jnp.float32), method=method,
                  num_classes=num_classes, batch_size=min(batch_size, logits.shape[0]))


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


class MethodEvaluation(NamedTuple):
    """One adjuster tuned on validation and evaluated on test.

    Attributes:
      method: the adjuster.
      search: the validation :class:`GammaSearch`.
      test: class-balanced test accuracy at the tuned gamma: ``{"all", "many", "medium", "few"}``.
      test_curve: ``(G, K)`` per-class test accuracy over the same grid (for accuracy-vs-gamma plots).
    """

    method: AdjustMethod
    search: GammaSearch
    test: dict[str, float]
    test_curve: np.ndarray


def evaluate_methods(
    val_logits: jax.Array,
    val_labels: jax.Array,
    test_logits: jax.Array,
    test_labels: jax.Array,
    class_counts: np.ndarray,
    grids: dict[AdjustMethod | str, np.ndarray],
    *,
    feature_norms: jax.Array | None = None,
    many: float,
    few: float,
    batch_size: int = 256,
) -> dict[AdjustMethod, MethodEvaluation]:
    """The paper's stage-2 protocol for several adjusters (arXiv 2409.17582, sec. 6.1).

    Each method's gamma is chosen on the balanced validation set; test accuracy (All / Many /
    Medium / Few, class-balanced) is reported at that gamma. NONE needs no grid (use ``[0.0]``).
    """
    from jaxml.longtail.imbalance import shot_groups  # noqa: PLC0415

    groups = shot_groups(class_counts, many, few)
    num_classes = int(np.asarray(class_counts).shape[0])
    # Validation and test in one compiled pass per method: test labels are offset by K so that
    # per-class accuracy over 2K "classes" gives both curves.
    logits = jnp.concatenate([jnp.asarray(val_logits, jnp.float32), jnp.asarray(test_logits, jnp.float32)])
    labels = jnp.concatenate([jnp.asarray(val_labels), jnp.asarray(test_labels) + num_classes])
    counts = jnp.asarray(class_counts, jnp.float32)
    norms = jnp.ones_like(counts) if feature_norms is None else jnp.asarray(feature_norms, jnp.float32)
    out = {}
    for method, gammas in grids.items():
        method = _as_method(method)
        gammas = np.asarray(gammas, np.float32)
        both = np.asarray(
            _curve(logits, labels, counts, norms, jnp.asarray(gammas), method=method, num_classes=2 * num_classes,
                   batch_size=min(batch_size, logits.shape[0]))
        )
        val_pc, curve = both[:, :num_classes], both[:, num_classes:]
        score = np.nanmean(val_pc, axis=1)
        best = int(np.nanargmax(score))
        search = GammaSearch(gamma=float(gammas[best]), gammas=gammas, per_class=val_pc, score=score)
        if method is AdjustMethod.PAIRWISE:
            check_pairwise_angles(class_counts, search.gamma, feature_norms)
        row = curve[best]
        test = {"all": float(np.nanmean(row))}
        for name, mask in groups.items():
            test[name] = float(np.nanmean(row[mask])) if mask.any() else float("nan")
        out[method] = MethodEvaluation(method=method, search=search, test=test, test_curve=curve)
    return out
