"""Post-hoc logit adjustment for long-tailed classification.

Three adjusters, all post-hoc (stage 2 of Hasegawa & Sato, "Multiplicative Logit Adjustment
Approximates Neural-Collapse-Aware Decision Boundary Adjustment", ICLR 2025, arXiv 2409.17582):

* additive (ALA, Menon et al. 2021, arXiv 2007.07314, eq. 3):  ``s_k = f_k - gamma * log pi_k``;
* multiplicative (MLA, class-dependent temperatures, arXiv 2409.17582 sec. 3):
  ``s_k = f_k * pi_k ** (-gamma)``;
* neural-collapse-aware pairwise ("1vs1", arXiv 2409.17582 sec. 4): with the simplex-ETF angle
  ``rho = arccos(-1/(K-1))`` and ``a_k = n_k**gamma * ||m_k||`` (``m_k`` the class-mean training
  feature), the boundary between classes ``k`` and ``k'`` sits at the angle
  ``theta_{k,k'} = rho * a_{k'} / (a_k + a_{k'})`` from class ``k``'s mean, and ``k`` beats ``k'``
  iff ``f_k kappa_{k,k'} > f_{k'} kappa_{k',k}`` with
  ``kappa_{k,k'} = sin(theta_{k,k'}) + cos(rho) sin(theta_{k',k})``. The prediction is the class with
  the most pairwise wins; the adjusted score returned here is the vote fraction
  ``wins_k / (K - 1)``.

``pi_k = n_k / N`` are the training class priors. The pairwise rule is exactly the linear boundary
through the origin that makes the angle ``theta_{k,k'}`` with ``w_k`` in the plane of two ETF
classifier vectors ``w_k, w_{k'}`` (``h . (kappa_{k,k'} w_k - kappa_{k',k} w_{k'}) = 0``); for balanced
counts ``theta = rho/2`` and it reduces to ``argmax_k f_k``.

All functions are pure and jittable; logits may carry any leading batch shape ``(..., K)``.
"""

from __future__ import annotations

import enum
import warnings

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "AdjustMethod",
    "etf_angle",
    "additive_adjust",
    "multiplicative_adjust",
    "pairwise_angles",
    "pairwise_kappa",
    "pairwise_votes",
    "check_pairwise_angles",
    "adjust",
    "predict",
]


class AdjustMethod(str, enum.Enum):
    """Post-hoc adjustment method.

    Trade-offs:
      NONE: plain ``argmax f``; biased towards head classes under imbalance.
      ADDITIVE: ALA (Menon et al. 2021); Fisher-consistent for the balanced error when the
        logits are calibrated log-probabilities, but its effect on the boundary angle depends on
        the feature-norm scale (arXiv 2409.17582, eq. for ``theta^+``).
      MULTIPLICATIVE: MLA; scale-free, one ``O(K)`` pass, approximates PAIRWISE (the paper's
        main result); assumes positive true-class logits (as under neural collapse).
      PAIRWISE: the neural-collapse-aware 1vs1 adjuster; ``O(K^2)`` per example, uses the
        class-mean feature norms, needs all ``theta < pi/2`` to be meaningful.
    """

    NONE = "none"
    ADDITIVE = "additive"
    MULTIPLICATIVE = "multiplicative"
    PAIRWISE = "pairwise"


def _as_method(method: AdjustMethod | str) -> AdjustMethod:
    try:
        return AdjustMethod(method)
    except ValueError:
        allowed = ", ".join(m.value for m in AdjustMethod)
        raise ValueError(f"unknown adjustment method {method!r}; use one of: {allowed}") from None


def _check_counts(logits: jax.Array, class_counts: jax.Array) -> tuple[jax.Array, jax.Array]:
    logits = jnp.asarray(logits)
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        logits = logits.astype(jnp.float32)
    counts = jnp.asarray(class_counts, dtype=logits.dtype)
    if counts.ndim != 1:
        raise ValueError(f"class_counts must be a 1-D array of length K, got shape {counts.shape}")
    if logits.ndim < 1 or logits.shape[-1] != counts.shape[0]:
        raise ValueError(
            f"logits last axis ({logits.shape[-1] if logits.ndim else 'scalar'}) must equal the number "
            f"of classes in class_counts ({counts.shape[0]})"
        )
    if not isinstance(class_counts, jax.core.Tracer) and bool(np.any(np.asarray(class_counts) <= 0)):
        raise ValueError(
            "class_counts must be positive for every class (a class with no training samples has "
            "no prior); drop the empty classes or add a pseudo-count"
        )
    return logits, counts


def etf_angle(num_classes: int) -> jax.Array:
    """Angle between two vertices of a simplex ETF: ``rho = arccos(-1/(K-1))``.

    Args:
      num_classes: number of classes ``K >= 2``.

    Returns:
      ``rho`` in radians (``pi`` for ``K = 2``, ``-> pi/2`` as ``K -> inf``).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for a simplex ETF, got {num_classes}")
    return jnp.arccos(-1.0 / (num_classes - 1.0))


def additive_adjust(logits: jax.Array, class_counts: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """Additive logit adjustment ``s_k = f_k - gamma * log pi_k`` (arXiv 2007.07314, eq. 3).

    Args:
      logits: ``(..., K)`` logits ``f``.
      class_counts: ``(K,)`` training counts ``n_k``; ``pi_k = n_k / sum(n)``.
      gamma: the ``gamma_+`` temperature (``tau`` in Menon et al.); 0 gives the logits back.

    Returns:
      ``(..., K)`` adjusted scores.
    """
    logits, counts = _check_counts(logits, class_counts)
    log_prior = jnp.log(counts / jnp.sum(counts))
    return logits - gamma * jnp.broadcast_to(log_prior, logits.shape)


def multiplicative_adjust(logits: jax.Array, class_counts: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """Multiplicative logit adjustment ``s_k = f_k * pi_k ** (-gamma)`` (arXiv 2409.17582, sec. 3).

    Args:
      logits: ``(..., K)`` logits ``f``.
      class_counts: ``(K,)`` training counts ``n_k``; ``pi_k = n_k / sum(n)``.
      gamma: the ``gamma_x`` exponent; 0 gives the logits back.

    Returns:
      ``(..., K)`` adjusted scores.
    """
    logits, counts = _check_counts(logits, class_counts)
    scale = jnp.exp(-gamma * jnp.log(counts / jnp.sum(counts)))
    return logits * jnp.broadcast_to(scale, logits.shape)


def pairwise_angles(
    class_counts: jax.Array, gamma: float | jax.Array, feature_norms: jax.Array | None = None
) -> jax.Array:
    """Neural-collapse-aware boundary angles ``theta_{k,k'} = rho a_{k'} / (a_k + a_{k'})``.

    ``a_k = n_k**gamma * ||m_k||`` (arXiv 2409.17582, sec. 4): a class with few samples (small
    ``a_k``) has features that spread more, so its side of each pairwise boundary is widened.

    Args:
      class_counts: ``(K,)`` training counts.
      gamma: the ``gamma_1v1`` exponent (0.5 is the ``1/sqrt(n_k)`` spread of the theory).
      feature_norms: ``(K,)`` class-mean feature norms ``||m_k||``; ``None`` means all equal.

    Returns:
      ``(K, K)`` matrix, entry ``[k, k']`` the angle (radians) from class ``k``'s mean to the
      ``k``/``k'`` boundary; ``theta + theta.T = rho`` off the diagonal, ``rho/2`` on it.
    """
    counts = jnp.asarray(class_counts, dtype=jnp.float32)
    num_classes = counts.shape[0]
    norms = jnp.ones_like(counts) if feature_norms is None else jnp.asarray(feature_norms, counts.dtype)
    if norms.shape != counts.shape:
        raise ValueError(f"feature_norms must have shape {counts.shape} (one per class), got {norms.shape}")
    rho = etf_angle(num_classes)
    # log-domain weights keep n**gamma finite for large counts and gamma.
    log_a = gamma * jnp.log(counts) + jnp.log(norms)
    # a_{k'} / (a_k + a_{k'}) = sigmoid(log a_{k'} - log a_k)
    diff = log_a[None, :] - log_a[:, None]
    return rho * jax.nn.sigmoid(diff)


def pairwise_kappa(
    class_counts: jax.Array, gamma: float | jax.Array, feature_norms: jax.Array | None = None
) -> jax.Array:
    """Pairwise logit weights ``kappa_{k,k'} = sin(theta_{k,k'}) + cos(rho) sin(theta_{k',k})``.

    Class ``k`` beats ``k'`` iff ``f_k kappa_{k,k'} > f_{k'} kappa_{k',k}`` (arXiv 2409.17582,
    sec. 4). Derivation: in the plane of ETF vectors ``w_k, w_{k'}`` (angle ``rho``), the boundary
    direction ``u`` at angle ``theta`` from ``w_k`` satisfies ``A cos(theta) = B cos(rho - theta)``
    for ``h . (A w_k - B w_{k'}) = 0``; ``A = kappa_{k,k'}, B = kappa_{k',k}`` solve it.

    Returns:
      ``(K, K)`` matrix ``kappa[k, k']``.
    """
    theta = pairwise_angles(class_counts, gamma, feature_norms)
    rho = etf_angle(theta.shape[0])
    return jnp.sin(theta) + jnp.cos(rho) * jnp.sin(theta.T)


def pairwise_votes(
    logits: jax.Array,
    class_counts: jax.Array,
    gamma: float | jax.Array,
    feature_norms: jax.Array | None = None,
) -> jax.Array:
    """Vote fractions of the neural-collapse-aware pairwise adjuster.

    ``votes_k = (1/(K-1)) * sum_{k' != k} 1[f_k kappa_{k,k'} > f_{k'} kappa_{k',k}]``.

    Memory is ``O(prod(batch) * K^2)``; callers with many examples and classes chunk the batch.

    Args:
      logits: ``(..., K)`` logits.
      class_counts: ``(K,)`` training counts.
      gamma: ``gamma_1v1``.
      feature_norms: ``(K,)`` class-mean feature norms, or ``None`` for equal norms.

    Returns:
      ``(..., K)`` vote fractions in ``[0, 1]``.
    """
    logits, counts = _check_counts(logits, class_counts)
    num_classes = counts.shape[0]
    if num_classes < 2:
        raise ValueError("the pairwise adjuster needs at least 2 classes")
    kappa = pairwise_kappa(counts, gamma, feature_norms).astype(logits.dtype)
    pair_shape = logits.shape[:-1] + (num_classes, num_classes)
    lhs = logits[..., :, None] * jnp.broadcast_to(kappa, pair_shape)  # f_k kappa_{k,k'}
    rhs = logits[..., None, :] * jnp.broadcast_to(kappa.T, pair_shape)  # f_{k'} kappa_{k',k}
    wins = jnp.sum(lhs > rhs, axis=-1)  # diagonal is never a strict win
    return wins.astype(logits.dtype) / (num_classes - 1)


def check_pairwise_angles(
    class_counts: np.ndarray, gamma: float, feature_norms: np.ndarray | None = None
) -> float:
    """Warn when some NC-aware boundary angle reaches ``pi/2``; returns the largest angle.

    ``theta >= pi/2`` means the count ratio is too skewed (or ``K`` too small, since
    ``rho = arccos(-1/(K-1))`` grows as ``K`` falls) for the neural-collapse geometry the adjuster
    assumes (arXiv 2409.17582, sec. 4): lower ``gamma`` or the imbalance. Host-side (NumPy): call
    it outside ``jit``; :func:`adjust` calls it whenever its inputs are concrete.
    """
    counts = np.asarray(class_counts, np.float64)
    norms = np.ones_like(counts) if feature_norms is None else np.asarray(feature_norms, np.float64)
    rho = np.arccos(-1.0 / (counts.shape[0] - 1.0))
    log_a = gamma * np.log(counts) + np.log(norms)
    # the largest angle is between the smallest and the largest a_k
    largest = float(rho / (1.0 + np.exp(np.min(log_a) - np.max(log_a))))
    if largest >= np.pi / 2:
        warnings.warn(
            f"pairwise (1vs1) adjuster: the largest boundary angle is {largest:.3f} rad >= pi/2 "
            f"(gamma={gamma}, K={counts.shape[0]}); the class counts are too skewed or there are too "
            "few classes for the neural-collapse geometry. Lower gamma or use the multiplicative "
            "adjuster.",
            RuntimeWarning,
            stacklevel=2,
        )
    return largest


def _is_concrete(*xs) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def adjust(
    logits: jax.Array,
    class_counts: jax.Array,
    method: AdjustMethod | str,
    gamma: float | jax.Array = 0.0,
    feature_norms: jax.Array | None = None,
) -> jax.Array:
    """Adjusted scores for long-tailed prediction (one entry for all methods).

    Args:
      logits: ``(..., K)`` logits.
      class_counts: ``(K,)`` training class counts ``n_k``.
      method: an :class:`AdjustMethod` (or its string value).
      gamma: the method's strength (``gamma_+``, ``gamma_x`` or ``gamma_1v1``); ignored for NONE.
      feature_norms: ``(K,)`` class-mean training feature norms, PAIRWISE only (``None``: equal).

    Returns:
      ``(..., K)`` scores whose argmax is the prediction (vote fractions for PAIRWISE).
    """
    method = _as_method(method)
    if method is AdjustMethod.NONE:
        logits, _ = _check_counts(logits, class_counts)
        return logits
    if method is AdjustMethod.ADDITIVE:
        return additive_adjust(logits, class_counts, gamma)
    if method is AdjustMethod.MULTIPLICATIVE:
        return multiplicative_adjust(logits, class_counts, gamma)
    if _is_concrete(class_counts, gamma, feature_norms):
        check_pairwise_angles(class_counts, float(gamma), feature_norms)
    return pairwise_votes(logits, class_counts, gamma, feature_norms)


def predict(
    logits: jax.Array,
    class_counts: jax.Array,
    method: AdjustMethod | str,
    gamma: float | jax.Array = 0.0,
    feature_norms: jax.Array | None = None,
) -> jax.Array:
    """Predicted class ``argmax_k adjust(...)_k``; ties go to the lowest class index.

    For PAIRWISE, vote ties (possible when the pairwise relation has a cycle) are broken by the
    multiplicative score with the same ``gamma``, a consistent and documented choice (the paper
    does not specify one), then by the lowest index.

    Returns:
      ``(...)`` integer predictions.
    """
    method = _as_method(method)
    scores = adjust(logits, class_counts, method, gamma, feature_norms)
    if method is AdjustMethod.PAIRWISE:
        top = scores >= jnp.max(scores, axis=-1, keepdims=True)
        tie_break = multiplicative_adjust(logits, class_counts, gamma)
        scores = jnp.where(top, tie_break, -jnp.inf)
    return jnp.argmax(scores, axis=-1)
