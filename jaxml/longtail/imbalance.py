"""Long-tailed subsampling and Many / Medium / Few grouped accuracy.

The exponential profile is the standard CIFAR-LT construction (Cao et al. 2019, LDAM, arXiv
1906.07413, sec. 4; used by arXiv 2409.17582, sec. 6.1): class ``k`` of ``K`` keeps
``n_k = floor(n_max * rho_imb ** (-k / (K - 1)))`` examples, ``rho_imb = n_max / n_min`` the imbalance
ratio. Accuracy is reported class-balanced (the mean of per-class recalls, "All") and per group:
Many (``n_k > many``), Medium, Few (``n_k < few``); CIFAR-100-LT uses ``many = 100, few = 20``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "exponential_profile",
    "longtail_indices",
    "LongTailSplit",
    "LongTailData",
    "longtail_split",
    "shot_groups",
    "per_class_accuracy",
    "grouped_accuracy",
]


def exponential_profile(n_max: int, num_classes: int, imbalance_ratio: float) -> np.ndarray:
    """Class counts ``n_k = floor(n_max * imbalance_ratio ** (-k/(K-1)))``, ``k = 0..K-1``.

    Args:
      n_max: count of the most frequent class (class 0).
      num_classes: ``K >= 1``.
      imbalance_ratio: ``n_max / n_min >= 1`` (1 gives a balanced set).

    Returns:
      ``(K,)`` int64 counts, non-increasing, each at least 1.
    """
    if n_max < 1:
        raise ValueError(f"n_max must be >= 1, got {n_max}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not imbalance_ratio >= 1.0:
        raise ValueError(f"imbalance_ratio must be >= 1 (n_max / n_min), got {imbalance_ratio}")
    if num_classes == 1:
        return np.array([n_max], dtype=np.int64)
    # Same arithmetic as the reference CIFAR-LT code (LDAM, arXiv 1906.07413), so totals match
    # the published set sizes (CIFAR-10-LT / CIFAR-100-LT at ratio 100: 12,406 / 10,847).
    inv = 1.0 / imbalance_ratio
    counts = [max(1, int(n_max * inv ** (k / (num_classes - 1.0)))) for k in range(num_classes)]
    return np.asarray(counts, dtype=np.int64)


def longtail_indices(key: jax.Array, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Indices of a long-tailed subset: ``counts[k]`` examples of class ``k``, chosen at random.

    Args:
      key: PRNG key for the per-class choice.
      labels: ``(N,)`` integer labels in ``[0, K)``.
      counts: ``(K,)`` wanted counts per class.

    Returns:
      Sorted int64 indices into ``labels``.

    Raises:
      ValueError: a class has fewer examples than requested (names the class and both numbers).
    """
    labels = np.asarray(labels)
    counts = np.asarray(counts)
    chosen = []
    # one uniform draw per example; sorting it within a class is a uniform random permutation
    order = np.asarray(jax.random.uniform(key, (len(labels),)))
    for k, n_k in enumerate(counts):
        idx = np.flatnonzero(labels == k)
        if len(idx) < n_k:
            raise ValueError(
                f"class {k} has {len(idx)} examples but the long-tailed profile asks for {int(n_k)}; "
                "lower n_max or the per-class hold-out"
            )
        chosen.append(idx[np.argsort(order[idx], kind="stable")[: int(n_k)]])
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros((0,), np.int64)


class LongTailSplit(NamedTuple):
    """Index arrays of a long-tailed split (see :func:`longtail_split`).

    Attributes:
      train: long-tailed training indices (``class_counts[k]`` of class ``k``).
      val: class-balanced validation indices (``val_per_class`` per class).
      test: class-balanced test indices (``test_per_class`` per class; empty when 0).
      class_counts: ``(K,)`` training counts.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    class_counts: np.ndarray


class LongTailData(NamedTuple):
    """A long-tailed split with balanced validation and test sets.

    Attributes:
      x_train, y_train: long-tailed training images and labels.
      x_val, y_val: class-balanced validation set (for the gamma search).
      x_test, y_test: class-balanced test set.
      class_counts: ``(K,)`` training counts per class (non-increasing in the class index).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_counts: np.ndarray


def longtail_split(
    key: jax.Array,
    labels: np.ndarray,
    num_classes: int,
    *,
    n_max: int,
    imbalance_ratio: float,
    val_per_class: int,
    test_per_class: int = 0,
) -> LongTailSplit:
    """Carve balanced test and validation sets, then a long-tailed training set, from one pool.

    Order per class: a random ``test_per_class`` go to test, the next ``val_per_class`` to
    validation (arXiv 2409.17582, sec. 6.1: 20 per class carved from the training data), and the
    training set takes ``exponential_profile(n_max, K, imbalance_ratio)[k]`` of the rest. The three
    sets are disjoint.

    Raises:
      ValueError: a class is too small for ``test + val + n_k`` (names the class and the numbers).
    """
    labels = np.asarray(labels)
    counts = exponential_profile(n_max, num_classes, imbalance_ratio)
    train, val, test = [], [], []
    order = np.asarray(jax.random.uniform(key, (len(labels),)))
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        need = test_per_class + val_per_class + int(counts[k])
        if len(idx) < need:
            raise ValueError(
                f"class {k} has {len(idx)} examples but the split needs {need} "
                f"(test {test_per_class} + val {val_per_class} + train {int(counts[k])}); lower n_max, "
                "val_per_class or test_per_class"
            )
        idx = idx[np.argsort(order[idx], kind="stable")]  # uniform random order within the class
        test.append(idx[:test_per_class])
        val.append(idx[test_per_class : test_per_class + val_per_class])
        train.append(idx[test_per_class + val_per_class : need])
    return LongTailSplit(
        train=np.sort(np.concatenate(train)),
        val=np.sort(np.concatenate(val)),
        test=np.sort(np.concatenate(test)),
        class_counts=counts,
    )


def shot_groups(class_counts: np.ndarray, many: float, few: float) -> dict[str, np.ndarray]:
    """Boolean class masks ``many: n > many``, ``medium: few <= n <= many``, ``few: n < few``."""
    counts = np.asarray(class_counts)
    if few > many:
        raise ValueError(f"few threshold ({few}) must not exceed the many threshold ({many})")
    return {
        "many": counts > many,
        "medium": (counts >= few) & (counts <= many),
        "few": counts < few,
    }


@functools.partial(jax.jit, static_argnames="num_classes")
def per_class_accuracy(predictions: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
    """Per-class recall ``acc_k = mean_{i: y_i = k} 1[yhat_i = k]`` (NaN for a class absent from labels)."""
    onehot = jax.nn.one_hot(labels, num_classes)
    correct = (predictions == labels).astype(jnp.float32)
    hits = onehot.T @ correct
    total = jnp.sum(onehot, axis=0)
    return jnp.where(total > 0, hits / jnp.maximum(total, 1.0), jnp.nan)


def grouped_accuracy(
    predictions: jax.Array,
    labels: jax.Array,
    class_counts: np.ndarray,
    many: float,
    few: float,
) -> dict[str, float]:
    """Class-balanced accuracy overall ("all") and over the Many / Medium / Few class groups.

    Each value is the mean of per-class recalls over the classes of the group (NaN when a group is
    empty), the usual long-tailed protocol with a balanced test set.
    """
    counts = np.asarray(class_counts)
    acc = np.asarray(per_class_accuracy(predictions, labels, len(counts)))
    groups = shot_groups(counts, many, few)
    out = {"all": float(np.nanmean(acc))}
    for name, mask in groups.items():
        out[name] = float(np.nanmean(acc[mask])) if mask.any() else float("nan")
    return out
