"""Evaluation of generated images: attribute distribution vs target, feature-space tests, diversity.

FairT2I (arXiv 2502.03826, Sec. 4) evaluates debiasing by the distribution of sensitive
attributes in generated images and by non-parametric analyses in a feature space. Here, per
prompt (occupation):

* ``attribute_stats``: counts of classified attribute values, the share the evaluator could
  classify, total variation and KL to the target, and Pearson's chi-square goodness of fit;
* ``pixel_features``: average-pooled pixels as the feature space (no pretrained image encoder
  is available offline; pass any other features to the stats functions);
* ``jaxml.stats.twosample.mmd_test`` between pipelines and ``jaxml.stats.diversity.vendi_score``
  for diversity.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.stats.diversity import kl_divergence, total_variation
from jaxml.stats.intervals import chisquare_gof, wilson_interval

__all__ = ["AttributeStats", "attribute_stats", "pixel_features"]


class AttributeStats(NamedTuple):
    """Attribute distribution of a set of images against a target.

    Attributes:
      counts: (V,) classified images per value.
      n: images in total (classified or not).
      classified_share: share of images the evaluator could classify.
      probs: (V,) distribution among classified images.
      tv: total variation to the target.
      kl: ``KL(probs || target)`` (target smoothed by 1e-6).
      chi2_p: chi-square goodness-of-fit p-value against the target.
      majority_share: largest entry of ``probs``.
      ci_low, ci_high: Wilson 95% interval of ``probs[0]``.
    """

    counts: np.ndarray
    n: int
    classified_share: float
    probs: np.ndarray
    tv: float
    kl: float
    chi2_p: float
    majority_share: float
    ci_low: float
    ci_high: float


def attribute_stats(labels: jax.Array, target: jax.Array | np.ndarray) -> AttributeStats:
    """Summarise classifier labels (``-1`` = unclassified) against a target distribution.

    Args:
      labels: (N,) int labels in ``{-1, 0, ..., V-1}``.
      target: (V,) target probabilities.

    Returns:
      an ``AttributeStats``.
    """
    labels = np.asarray(labels)
    target = np.asarray(target, np.float64)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array; got shape {labels.shape}.")
    v = target.shape[0]
    if labels.max(initial=-1) >= v:
        raise ValueError(f"a label {labels.max()} is outside the {v} target values.")
    counts = np.bincount(labels[labels >= 0], minlength=v).astype(np.int64)
    m = int(counts.sum())
    probs = counts / max(m, 1)
    pj, tj = jnp.asarray(probs, jnp.float32), jnp.asarray(target, jnp.float32)
    tv = float(total_variation(pj, tj)) if m else 1.0
    kl = float(kl_divergence(pj, tj, eps=1e-6)) if m else float("inf")
    chi = float(chisquare_gof(jnp.asarray(counts), tj / jnp.sum(tj)).p_value) if m else 0.0
    ci = wilson_interval(int(counts[0]), max(m, 1))
    return AttributeStats(counts, int(labels.size), m / labels.size, probs, tv, kl, chi,
                          float(probs.max()) if m else 0.0, float(ci.low), float(ci.high))


def pixel_features(images: jax.Array, pool: int = 2) -> jax.Array:
    """Average-pooled, flattened pixels as a feature space.

    Args:
      images: (N, H, W, C) in ``[0, 1]``; H and W divisible by ``pool``.
      pool: pooling window.

    Returns:
      (N, (H/pool)(W/pool)C) features.
    """
    n, h, w, c = images.shape
    if h % pool or w % pool:
        raise ValueError(f"image size {h}x{w} is not divisible by pool={pool}.")
    x = images.reshape(n, h // pool, pool, w // pool, pool, c).mean(axis=(2, 4))
    return x.reshape(n, -1)
