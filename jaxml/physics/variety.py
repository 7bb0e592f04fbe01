"""Dimension of the affine variety V = {w : p(w) = 0} cut out by the physics constraints.

arXiv 2501.18879 (Koshizuka & Sato), Section 4: the generalisation bound of physics-informed
linear regression scales with d_V = dim V instead of the number of parameters d (Theorem 4.1:
risk ~ sqrt(d_V log(d_V d) / n) for linear D). The paper approximates d_V by the tangent-space
dimension at sampled points of V (Section 4.4):

    d_V ~= max_{w* in S} [ d - rank J_p(w*) ],   J_p(w*) = [grad p_1(w*), ..., grad p_K(w*)]^T,

with S a set of points on V obtained by simulating the equation under many initial/boundary
conditions and projecting the solutions onto the basis. Gröbner bases are avoided (doubly
exponential). For a linear D the Jacobian is D_mat everywhere and d_V = d - rank(D_mat) exactly.
For D = L + F (linear plus nonlinear part) d_V(L) is the paper's cheap lower bound on d_V(D)
(Section 4.3).

Rank tolerance: singular values sigma_i of J (K x d) count when sigma_i > rtol * sigma_max,
with default rtol = max(K, d) * eps(dtype) (the LAPACK / numpy ``matrix_rank`` convention).
Run in float64 (``jax.enable_x64(True)``) when the constraint matrix is badly scaled: in
float32 eps = 1.2e-7 and rows of very different size can hide rank. Caveat of the max: at a
singular point of V (for example the apex of a cone) the tangent space is larger than dim V,
so sample generic points; :func:`tangent_dimensions` returns the per-point values to inspect.
"""

from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from jaxml.physics.constraints import Constraint, operator_matrix

__all__ = [
    "matrix_rank",
    "tangent_dimensions",
    "variety_dimension",
    "linear_variety_dimension",
    "linear_part_lower_bound",
    "max_residual",
]


def _default_rtol(shape: tuple[int, ...], dtype) -> float:
    return float(max(shape[-2:]) * jnp.finfo(dtype).eps)


def matrix_rank(A: Array, *, rtol: Optional[float] = None) -> Array:
    """Numerical rank: #{i : sigma_i(A) > rtol * sigma_max(A)} (batched over leading axes).

    Args:
      A: array of shape (..., K, d).
      rtol: relative tolerance; default max(K, d) * eps(A.dtype).

    Returns:
      Integer array of shape A.shape[:-2]. A zero matrix has rank 0.
    """
    A = jnp.asarray(A)
    if A.ndim < 2:
        raise ValueError(f"matrix_rank: need a matrix of shape (..., K, d), got shape {A.shape}.")
    if A.shape[-1] == 0 or A.shape[-2] == 0:
        return jnp.zeros(A.shape[:-2], dtype=jnp.int32)
    tol = _default_rtol(A.shape, A.dtype) if rtol is None else float(rtol)
    s = jnp.linalg.svd(A, compute_uv=False)
    smax = s[..., :1]
    return jnp.sum((s > tol * smax) & (smax > 0), axis=-1)


def tangent_dimensions(
    residual_fn: Callable[[Array], Array], points: Array, *, rtol: Optional[float] = None
) -> Array:
    """d - rank J_p(w*) at every point: forward-mode Jacobians vmapped over points.

    Args:
      residual_fn: w of shape (d,) -> residual vector p(w) of shape (K,).
      points: samples on the variety, shape (m, d).
      rtol: SVD rank tolerance (see :func:`matrix_rank`).

    Returns:
      Integer array of shape (m,).
    """
    points = jnp.asarray(points)
    if points.ndim != 2 or points.shape[0] == 0:
        raise ValueError(f"tangent_dimensions: points must have shape (m, d) with m >= 1, got {points.shape}.")
    d = points.shape[1]
    J = jax.jit(jax.vmap(jax.jacfwd(residual_fn)))(points)
    if J.ndim != 3 or J.shape[2] != d:
        raise ValueError(
            f"tangent_dimensions: residual_fn must map shape ({d},) to a vector (K,); its Jacobian "
            f"has shape {J.shape[1:]}."
        )
    return d - matrix_rank(J, rtol=rtol)


def variety_dimension(
    residual_fn: Callable[[Array], Array], points: Array, *, rtol: Optional[float] = None
) -> int:
    """d_V ~= max over sampled points w* on V of d - rank J_p(w*) (arXiv 2501.18879, Sec. 4.4).

    Args:
      residual_fn: w of shape (d,) -> p(w) of shape (K,); p must vanish on the points.
      points: samples on the variety, shape (m, d).
      rtol: relative SVD tolerance for the rank; default max(K, d) * eps(dtype).

    Returns:
      The estimated dimension as a Python int.
    """
    return int(jnp.max(tangent_dimensions(residual_fn, points, rtol=rtol)))


def linear_variety_dimension(D_mat: Array, *, rtol: Optional[float] = None) -> int:
    """Exact d_V = d - rank(D_mat) for a linear operator (V = ker D_mat).

    Args:
      D_mat: the (K, d) matrix D_mat[k, j] = <D[phi_j], psi_k>.
      rtol: relative SVD tolerance.
    """
    D_mat = jnp.asarray(D_mat)
    if D_mat.ndim != 2:
        raise ValueError(f"linear_variety_dimension: D_mat must be a (K, d) matrix, got shape {D_mat.shape}.")
    return int(D_mat.shape[1] - matrix_rank(D_mat, rtol=rtol))


def linear_part_lower_bound(constraint: Constraint, *, rtol: Optional[float] = None,
                            dtype: jnp.dtype | None = None) -> int:
    """d_V(L) for D = L + F: dimension of the variety of the linear part alone.

    The paper's cheap bound d_V(L) <= d_V(D) (arXiv 2501.18879, Section 4.3); exact
    (d - rank) since L's constraints are linear.
    """
    return linear_variety_dimension(operator_matrix(constraint.linear_part(), dtype=dtype), rtol=rtol)


def max_residual(residual_fn: Callable[[Array], Array], points: Array) -> float:
    """max_i ||p(w_i)||_inf: how far sampled points are from V (check before trusting d_V)."""
    r = jax.vmap(residual_fn)(jnp.asarray(points))
    return float(np.max(np.abs(np.asarray(r)))) if r.size else 0.0
