"""Ridge regression and physics-informed linear regression (PILR), with validation tuning.

arXiv 2501.18879 (Koshizuka & Sato), Section 3 and 5. For a linear operator the PILR
estimator minimises

    L(w) = (1/n) ||Phi w - y||^2 + xi ||w||^2 + nu ||D_mat w||^2,

whose closed form is w = (Phi^T Phi + n M)^{-1} Phi^T y with M = xi I + nu D_mat^T D_mat
(nu = 0 is ridge regression, the baseline). For a nonlinear operator the same loss with
||p(w)||^2 in place of ||D_mat w||^2 (the soft constraint) is minimised with Adam
(:func:`pilr_nonlinear_fit`, which runs the project's one training loop ``jaxml.train``).

Hyperparameters (xi, nu) are chosen on validation MSE over log-uniform candidates in
[1e-9, 1e2] (the paper's range); all candidates are solved at once with ``vmap``. Candidates
whose solve is not finite get validation MSE +inf and are never selected.

Precision: nu ||D_mat||^2 n can exceed ||Phi||^2 by many orders of magnitude, so the normal
equations are badly conditioned for large nu. Run under ``jax.enable_x64(True)`` (the
``physics_variety`` experiment does); in float32 the largest-nu candidates are inaccurate
and validation simply avoids them.
"""

from __future__ import annotations

import enum
import math
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

__all__ = [
    "Estimator",
    "Selection",
    "ridge",
    "pilr",
    "mse",
    "log_uniform_grid",
    "log_uniform_samples",
    "hyper_grid",
    "tune_ridge",
    "tune_pilr",
    "pilr_nonlinear_loss",
]


class Estimator(enum.Enum):
    """Which estimator: RIDGE (nu = 0, no physics) or PILR (physics-informed)."""

    RIDGE = "ridge"
    PILR = "pilr"


class Selection(NamedTuple):
    """Result of a validation search.

    Attributes:
      w: selected weights, shape (d,).
      index: index of the selected candidate.
      xi: selected xi.
      nu: selected nu (0 for ridge).
      val_mse: validation MSE of every candidate, shape (C,) (+inf where the solve failed).
    """

    w: Array
    index: Array
    xi: Array
    nu: Array
    val_mse: Array


def _check_design(Phi: Array, y: Array, name: str) -> None:
    if Phi.ndim != 2 or y.ndim != 1 or Phi.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: need Phi of shape (n, d) and y of shape (n,), got {Phi.shape} and {y.shape}.")


def _solve(G: Array, b: Array, M: Array, n: int) -> Array:
    return jnp.linalg.solve(G + n * M, b)


def ridge(Phi: Array, y: Array, xi: Array) -> Array:
    """w = (Phi^T Phi + n xi I)^{-1} Phi^T y, the minimiser of (1/n)||Phi w - y||^2 + xi ||w||^2."""
    _check_design(Phi, y, "ridge")
    n, d = Phi.shape
    return _solve(Phi.T @ Phi, Phi.T @ y, xi * jnp.eye(d, dtype=Phi.dtype), n)


def pilr(Phi: Array, y: Array, D_mat: Array, xi: Array, nu: Array) -> Array:
    """Closed-form PILR: w = (Phi^T Phi + n (xi I + nu D^T D))^{-1} Phi^T y (arXiv 2501.18879, Sec. 3).

    Args:
      Phi: training features, shape (n, d).
      y: training targets, shape (n,).
      D_mat: constraint matrix D_mat[k, j] = <D[phi_j], psi_k>, shape (K, d).
      xi: ridge strength (>= 0).
      nu: physics strength (>= 0); nu = 0 is ridge regression.
    """
    _check_design(Phi, y, "pilr")
    if D_mat.ndim != 2 or D_mat.shape[1] != Phi.shape[1]:
        raise ValueError(f"pilr: D_mat must have shape (K, {Phi.shape[1]}), got {D_mat.shape}.")
    n, d = Phi.shape
    M = xi * jnp.eye(d, dtype=Phi.dtype) + nu * (D_mat.T @ D_mat)
    return _solve(Phi.T @ Phi, Phi.T @ y, M, n)


def mse(Phi: Array, w: Array, y: Array) -> Array:
    """(1/n) ||Phi w - y||^2."""
    return jnp.mean((Phi @ w - y) ** 2)


def log_uniform_grid(lo: float, hi: float, num: int) -> Array:
    """num values spaced evenly in log10 between lo and hi (inclusive)."""
    if not (lo > 0 and hi >= lo and num >= 1):
        raise ValueError(f"log_uniform_grid: need 0 < lo <= hi and num >= 1, got lo={lo}, hi={hi}, num={num}.")
    return jnp.asarray(np.geomspace(lo, hi, num))


def log_uniform_samples(key: Array, num: int, lo: float, hi: float) -> Array:
    """num draws with log10 uniform on [log10 lo, log10 hi]."""
    if not (lo > 0 and hi >= lo and num >= 1):
        raise ValueError(f"log_uniform_samples: need 0 < lo <= hi and num >= 1, got lo={lo}, hi={hi}, num={num}.")
    u = jax.random.uniform(key, (num,), dtype=jnp.result_type(1.0))
    return 10.0 ** (math.log10(lo) + u * (math.log10(hi) - math.log10(lo)))


def hyper_grid(xis: Array, nus: Array) -> tuple[Array, Array]:
    """Cartesian product of xi and nu candidates, each flattened to shape (len(xis) * len(nus),)."""
    X, N = jnp.meshgrid(jnp.asarray(xis), jnp.asarray(nus), indexing="ij")
    return X.reshape(-1), N.reshape(-1)


def _select(ws: Array, Phi_val: Array, y_val: Array, xis: Array, nus: Array) -> Selection:
    val = jax.vmap(lambda w: mse(Phi_val, w, y_val))(ws)
    val = jnp.where(jnp.isfinite(val), val, jnp.inf)
    i = jnp.argmin(val)
    return Selection(ws[i], i, xis[i], nus[i], val)


def tune_ridge(Phi: Array, y: Array, Phi_val: Array, y_val: Array, xis: Array) -> Selection:
    """Ridge regression with xi chosen on validation MSE (all candidates vmapped)."""
    _check_design(Phi, y, "tune_ridge")
    _check_design(Phi_val, y_val, "tune_ridge (validation)")
    n, d = Phi.shape
    G, b = Phi.T @ Phi, Phi.T @ y
    eye = jnp.eye(d, dtype=Phi.dtype)
    xis = jnp.asarray(xis, dtype=Phi.dtype)
    ws = jax.vmap(lambda xi: _solve(G, b, xi * eye, n))(xis)
    return _select(ws, Phi_val, y_val, xis, jnp.zeros_like(xis))


def tune_pilr(
    Phi: Array, y: Array, D_mat: Array, Phi_val: Array, y_val: Array, xis: Array, nus: Array
) -> Selection:
    """Closed-form PILR with (xi, nu) chosen on validation MSE.

    Args:
      Phi, y: training design and targets, shapes (n, d), (n,).
      D_mat: constraint matrix, shape (K, d).
      Phi_val, y_val: validation design and targets.
      xis, nus: candidate values, paired elementwise (use :func:`hyper_grid` for a product).
    """
    _check_design(Phi, y, "tune_pilr")
    _check_design(Phi_val, y_val, "tune_pilr (validation)")
    if jnp.shape(xis) != jnp.shape(nus):
        raise ValueError(f"tune_pilr: xis and nus are paired and must have equal shapes, got {jnp.shape(xis)}, {jnp.shape(nus)}.")
    n, d = Phi.shape
    G, b = Phi.T @ Phi, Phi.T @ y
    eye = jnp.eye(d, dtype=Phi.dtype)
    DtD = D_mat.T @ D_mat
    xis = jnp.asarray(xis, dtype=Phi.dtype)
    nus = jnp.asarray(nus, dtype=Phi.dtype)
    ws = jax.vmap(lambda xi, nu: _solve(G, b, xi * eye + nu * DtD, n))(xis, nus)
    return _select(ws, Phi_val, y_val, xis, nus)


def pilr_nonlinear_loss(
    w: Array, Phi: Array, y: Array, residual_fn: Callable[[Array], Array], xi: Array, nu: Array
) -> Array:
    """Soft-constraint PILR loss (1/n)||Phi w - y||^2 + xi ||w||^2 + nu ||p(w)||^2.

    For linear p(w) = D_mat w its minimiser is :func:`pilr`'s closed form.
    """
    r = residual_fn(w)
    return jnp.mean((Phi @ w - y) ** 2) + xi * jnp.sum(w**2) + nu * jnp.sum(r**2)
