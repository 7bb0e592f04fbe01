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
    "pilr_nonlinear_fit",
    "gauss_newton",
    "tune_pilr_nonlinear",
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


def pilr_nonlinear_fit(
    key: Array,
    Phi: Array,
    y: Array,
    residual_fn: Callable[[Array], Array],
    xi: Array,
    nu: Array,
    w0: Array,
    *,
    num_steps: int,
    learning_rate: float,
    gauss_newton_steps: int = 0,
) -> tuple[Array, Array]:
    """Soft-constraint PILR for a nonlinear operator, minimised with Adam (arXiv 2501.18879, Sec. 5.3).

    Minimises :func:`pilr_nonlinear_loss` from ``w0`` with ``optax.adam`` under a cosine-decayed
    step size, through the project's training loop (``jaxml.train.train_pure``, one
    ``lax.scan``), so the fit is jittable and vmappable over candidates and data sets.

    Args:
      key: PRNG key (the loss is deterministic; the key feeds the training loop's step keys).
      Phi, y: training design (n, d) and targets (n,).
      residual_fn: w -> p(w), shape (K,).
      xi, nu: regularisation strengths.
      w0: initial weights, shape (d,) (e.g. the closed-form PILR of the linear part).
      num_steps: Adam steps.
      learning_rate: peak Adam step size.
      gauss_newton_steps: Gauss-Newton iterations applied to ``w0`` before Adam (0: none).
        Each solves the loss with p linearised at the current iterate in closed form
        (:func:`gauss_newton`). Departure from the paper (Adam only): with the large nu that
        validation prefers, the loss has condition number ~ nu / h^2 and Adam alone from the
        linear-part start stalls far from the minimum; Gauss-Newton reaches its basin in a few
        steps and Adam then polishes.

    Returns:
      (w, final_loss).
    """
    from jaxml.train import train_pure

    if gauss_newton_steps:
        w0 = gauss_newton(Phi, y, residual_fn, xi, nu, w0, num_steps=gauss_newton_steps)

    def loss_fn(w, batch, _key):
        P, t = batch
        return pilr_nonlinear_loss(w, P, t, residual_fn, xi, nu), {}

    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, num_steps))
    state, metrics = train_pure(loss_fn, w0, opt, data=(Phi, y), num_steps=num_steps, key=key)
    return state.params, metrics["loss"][-1]


def gauss_newton(
    Phi: Array, y: Array, residual_fn: Callable[[Array], Array], xi: Array, nu: Array, w0: Array, *, num_steps: int
) -> Array:
    """Gauss-Newton iterations for the soft-constraint PILR loss.

    With J = dp/dw at w_k, w_{k+1} = (Phi^T Phi + n (xi I + nu J^T J))^{-1} (Phi^T y + n nu J^T (J w_k - p(w_k))),
    the exact minimiser of the loss with p linearised at w_k (one closed-form PILR solve per
    step). Non-finite iterates are rejected (the previous iterate is kept).
    """
    n, d = Phi.shape
    G, b = Phi.T @ Phi, Phi.T @ y
    eye = jnp.eye(d, dtype=Phi.dtype)

    def body(w, _):
        r = residual_fn(w)
        J = jax.jacfwd(residual_fn)(w)
        w_new = jnp.linalg.solve(G + n * (xi * eye + nu * (J.T @ J)), b + n * nu * (J.T @ (J @ w - r)))
        return jnp.where(jnp.all(jnp.isfinite(w_new)), w_new, w), None

    return jax.lax.scan(body, w0, None, length=num_steps)[0]


def tune_pilr_nonlinear(
    key: Array,
    Phi: Array,
    y: Array,
    residual_fn: Callable[[Array], Array],
    D_linear: Array,
    Phi_val: Array,
    y_val: Array,
    xis: Array,
    nus: Array,
    *,
    num_steps: int,
    learning_rate: float,
    gauss_newton_steps: int = 0,
) -> Selection:
    """Nonlinear PILR with (xi, nu) chosen on validation MSE; all candidates vmapped.

    Each candidate starts from the closed-form PILR of the linear part L (matrix ``D_linear``,
    the paper's D = L + F split) with the same (xi, nu), then Adam minimises the full
    soft-constraint loss (:func:`pilr_nonlinear_fit`, optionally after Gauss-Newton steps). Candidates whose fit is not finite are
    never selected.
    """
    _check_design(Phi, y, "tune_pilr_nonlinear")
    _check_design(Phi_val, y_val, "tune_pilr_nonlinear (validation)")
    if num_steps < 1 or not learning_rate > 0:
        raise ValueError(f"tune_pilr_nonlinear: need num_steps >= 1 and learning_rate > 0, got {num_steps}, {learning_rate}.")
    xis = jnp.asarray(xis, dtype=Phi.dtype)
    nus = jnp.asarray(nus, dtype=Phi.dtype)
    if xis.shape != nus.shape or D_linear.ndim != 2 or D_linear.shape[1] != Phi.shape[1]:
        raise ValueError(
            f"tune_pilr_nonlinear: need paired xis/nus of equal shape and D_linear of shape (K, {Phi.shape[1]}), "
            f"got {xis.shape}, {nus.shape}, {D_linear.shape}."
        )
    n, d = Phi.shape
    G, b = Phi.T @ Phi, Phi.T @ y
    eye = jnp.eye(d, dtype=Phi.dtype)
    DtD = D_linear.T @ D_linear
    w0s = jax.vmap(lambda xi, nu: _solve(G, b, xi * eye + nu * DtD, n))(xis, nus)
    w0s = jnp.where(jnp.isfinite(w0s), w0s, 0.0)
    fit = lambda w0, xi, nu: pilr_nonlinear_fit(
        key, Phi, y, residual_fn, xi, nu, w0, num_steps=num_steps, learning_rate=learning_rate,
        gauss_newton_steps=gauss_newton_steps,
    )[0]
    ws = jax.vmap(fit)(w0s, xis, nus)
    return _select(ws, Phi_val, y_val, xis, nus)
