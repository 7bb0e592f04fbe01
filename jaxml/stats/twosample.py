"""Kernel and distance two-sample tests on feature vectors: MMD and energy distance.

Both statistics compare two samples ``x`` (n, d) and ``y`` (m, d) and are zero in expectation
exactly when the two distributions agree (for a characteristic kernel, resp. always for the
energy distance). Significance comes from a permutation test: the pooled sample is reshuffled
``num_permutations`` times (vmapped, one jitted call) and the p-value is
``(1 + #{perm stat >= observed}) / (1 + num_permutations)``, which is exact-level valid.

References:
  Gretton, Borgwardt, Rasch, Schoelkopf, Smola, "A Kernel Two-Sample Test", JMLR 13 (2012),
  Lemma 6 (unbiased MMD^2_u). Szekely & Rizzo, "Energy statistics", J. Stat. Plan. Inference
  (2013), Eq. (2.1). Used by FairT2I (arXiv 2502.03826) as the non-parametric feature-space test.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "TestResult",
    "pairwise_sq_dists",
    "median_bandwidth",
    "rbf_kernel",
    "mmd2_unbiased",
    "energy_distance",
    "mmd_test",
    "energy_test",
]


class TestResult(NamedTuple):
    """Outcome of a permutation two-sample test.

    Attributes:
      statistic: the observed statistic.
      p_value: permutation p-value ``(1 + #{T_perm >= T_obs}) / (1 + B)``.
      null_mean: mean of the permutation distribution (for reporting effect sizes).
    """

    statistic: jax.Array
    p_value: jax.Array
    null_mean: jax.Array


def _check_pair(x: jax.Array, y: jax.Array) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(
            f"two-sample inputs must be 2-D (n, d) feature matrices; got shapes {x.shape} and "
            f"{y.shape}. Flatten each sample with x.reshape(len(x), -1)."
        )
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"feature dimensions differ: x has d={x.shape[1]}, y has d={y.shape[1]}; both samples "
            "must come from the same feature extractor."
        )
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(
            f"each sample needs at least 2 points for the unbiased statistics; got n={x.shape[0]}, "
            f"m={y.shape[0]}."
        )


def pairwise_sq_dists(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared Euclidean distances ``D_ij = ||a_i - b_j||^2`` (clipped at 0).

    Args:
      a: (n, d) array.
      b: (m, d) array.

    Returns:
      (n, m) array.
    """
    aa = jnp.sum(a * a, axis=1)[:, None]
    bb = jnp.sum(b * b, axis=1)[None, :]
    return jnp.maximum(aa + bb - 2.0 * (a @ b.T), 0.0)


def median_bandwidth(z: jax.Array) -> jax.Array:
    """Median heuristic: ``sigma^2 = median{||z_i - z_j||^2 : i < j}`` (Gretton et al. 2012, Sec. 8).

    Args:
      z: (N, d) pooled sample.

    Returns:
      scalar squared bandwidth (floored at 1e-12 so identical points do not divide by zero).
    """
    d2 = pairwise_sq_dists(z, z)
    iu = jnp.triu_indices(z.shape[0], k=1)
    return jnp.maximum(jnp.median(d2[iu]), 1e-12)


def rbf_kernel(a: jax.Array, b: jax.Array, sigma2: jax.Array | float) -> jax.Array:
    """Gaussian kernel ``k(a, b) = exp(-||a - b||^2 / (2 sigma^2))``.

    Args:
      a: (n, d) array.
      b: (m, d) array.
      sigma2: squared bandwidth.

    Returns:
      (n, m) Gram matrix.
    """
    return jnp.exp(-pairwise_sq_dists(a, b) / (2.0 * sigma2))


def _mmd2_from_gram(k: jax.Array, n: int) -> jax.Array:
    """Unbiased MMD^2 from the pooled Gram matrix, first ``n`` rows being x."""
    m = k.shape[0] - n
    kxx = k[:n, :n]
    kyy = k[n:, n:]
    kxy = k[:n, n:]
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return sxx + syy - 2.0 * jnp.mean(kxy)


def mmd2_unbiased(x: jax.Array, y: jax.Array, sigma2: jax.Array | float | None = None) -> jax.Array:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel.

    ``MMD^2_u = 1/(n(n-1)) sum_{i!=j} k(x_i,x_j) + 1/(m(m-1)) sum_{i!=j} k(y_i,y_j)
    - 2/(nm) sum_{i,j} k(x_i,y_j)`` (Gretton et al. 2012, Lemma 6). It can be slightly negative
    under the null.

    Args:
      x: (n, d) sample from P.
      y: (m, d) sample from Q.
      sigma2: squared kernel bandwidth; ``None`` uses the median heuristic on the pooled sample.

    Returns:
      scalar MMD^2_u.
    """
    _check_pair(x, y)
    z = jnp.concatenate([x, y], axis=0)
    s2 = median_bandwidth(z) if sigma2 is None else sigma2
    return _mmd2_from_gram(rbf_kernel(z, z, s2), x.shape[0])


def _energy_from_dist(dist: jax.Array, n: int) -> jax.Array:
    m = dist.shape[0] - n
    exy = jnp.mean(dist[:n, n:])
    exx = jnp.sum(dist[:n, :n]) / (n * n)
    eyy = jnp.sum(dist[n:, n:]) / (m * m)
    return 2.0 * exy - exx - eyy


def energy_distance(x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared energy distance ``E = 2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic form).

    Szekely & Rizzo (2013), Eq. (2.1); ``sqrt(E)`` equals ``scipy.stats.energy_distance`` for 1-D
    samples. Zero iff the empirical distributions coincide.

    Args:
      x: (n, d) sample.
      y: (m, d) sample.

    Returns:
      scalar squared energy distance (>= 0 up to rounding).
    """
    _check_pair(x, y)
    z = jnp.concatenate([x, y], axis=0)
    return _energy_from_dist(jnp.sqrt(pairwise_sq_dists(z, z) + 1e-30), x.shape[0])


def _permutation_test(key: jax.Array, mat: jax.Array, n: int, stat_fn, num_permutations: int
                      ) -> TestResult:
    total = mat.shape[0]
    observed = stat_fn(mat, n)

    def one(k: jax.Array) -> jax.Array:
        perm = jax.random.permutation(k, total)
        return stat_fn(mat[perm][:, perm], n)

    null = jax.lax.map(one, jax.random.split(key, num_permutations), batch_size=64)
    p = (1.0 + jnp.sum(null >= observed)) / (1.0 + num_permutations)
    return TestResult(statistic=observed, p_value=p, null_mean=jnp.mean(null))


def _check_perms(num_permutations: int) -> None:
    if num_permutations < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}; use e.g. 500.")


def mmd_test(key: jax.Array, x: jax.Array, y: jax.Array, *, num_permutations: int = 500,
             sigma2: float | None = None) -> TestResult:
    """Permutation test of ``P = Q`` with the unbiased Gaussian-kernel MMD^2.

    The bandwidth (median heuristic on the pooled sample unless given) is fixed before
    permuting, so the permutation distribution is exact under exchangeability.

    Args:
      key: PRNG key for the permutations.
      x: (n, d) sample.
      y: (m, d) sample.
      num_permutations: number of random permutations B.
      sigma2: squared bandwidth, or ``None`` for the median heuristic.

    Returns:
      ``TestResult(statistic=MMD^2_u, p_value, null_mean)``.
    """
    _check_pair(x, y)
    _check_perms(num_permutations)
    z = jnp.concatenate([x, y], axis=0)
    s2 = median_bandwidth(z) if sigma2 is None else sigma2
    return _permutation_test(key, rbf_kernel(z, z, s2), x.shape[0], _mmd2_from_gram,
                             num_permutations)


def energy_test(key: jax.Array, x: jax.Array, y: jax.Array, *, num_permutations: int = 500
                ) -> TestResult:
    """Permutation test of ``P = Q`` with the energy distance (Szekely & Rizzo 2013).

    Args:
      key: PRNG key for the permutations.
      x: (n, d) sample.
      y: (m, d) sample.
      num_permutations: number of random permutations B.

    Returns:
      ``TestResult(statistic=energy distance, p_value, null_mean)``.
    """
    _check_pair(x, y)
    _check_perms(num_permutations)
    z = jnp.concatenate([x, y], axis=0)
    dist = jnp.sqrt(pairwise_sq_dists(z, z) + 1e-30)
    return _permutation_test(key, dist, x.shape[0], _energy_from_dist, num_permutations)
