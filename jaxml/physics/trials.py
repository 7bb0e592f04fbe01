"""Trial-function / measure pairs (psi_k, mu_k): strong (Dirac) and weak (quadrature) forms.

arXiv 2501.18879, Section 3: the physics constraint is <D[f_w], psi_k>_{mu_k} = 0 for
k = 1..K. Every pair is represented by one quadrature rule shared by all trials:

    <g, psi_k>_{mu_k}  ~=  sum_q W[k, q] g(z_q)

with nodes z_q (``points``) and a weight matrix W of shape (K, Q) (``weights``).

- Dirac measures mu_k = delta_{z_k}, psi_k = 1 (strong form, PINN collocation): Q = K, W = I.
- Lebesgue measure with hat test functions psi_k (weak / variational form, Petrov-Galerkin):
  W[k, q] = psi_k(z_q) omega_q with a composite Gauss-Legendre rule (nodes z_q, weights omega_q)
  on the cells of the hat grid, exact for polynomial integrands of degree <= 2 * order - 1 per
  cell. We integrate D[f] psi_k directly (no integration by parts), which is valid for the
  smooth bases used with operators here.

Discretised schemes whose residuals are the trial functions live in
:mod:`jaxml.physics.schemes`.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = [
    "TrialSet",
    "dirac",
    "composite_gauss_legendre",
    "hat_values",
    "weak_hats_1d",
    "weak_hats_tensor",
    "tested_values",
]


class TrialSet(NamedTuple):
    """K trial functionals sharing one set of Q nodes.

    Attributes:
      points: nodes z_q, shape (Q,) for 1-D inputs or (Q, n) for n-D inputs.
      weights: W of shape (K, Q); trial k maps g to sum_q W[k, q] g(z_q).
    """

    points: Array
    weights: Array

    @property
    def num_trials(self) -> int:
        return int(self.weights.shape[0])


def dirac(points: Array) -> TrialSet:
    """Collocation (strong form): psi_k = 1, mu_k = delta at points[k]; W = I."""
    points = jnp.asarray(points)
    if points.ndim not in (1, 2) or points.shape[0] == 0:
        raise ValueError(f"dirac: points must have shape (K,) or (K, n) with K >= 1, got {points.shape}.")
    dtype = jnp.result_type(points, 1.0)
    return TrialSet(points.astype(dtype), jnp.eye(points.shape[0], dtype=dtype))


def composite_gauss_legendre(lo: float, hi: float, num_cells: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule on [lo, hi] with num_cells equal cells, order nodes each.

    Returns:
      (nodes, weights), each of shape (num_cells * order,), as float64 NumPy arrays; the rule
      integrates polynomials of degree <= 2 * order - 1 exactly on every cell.
    """
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"composite_gauss_legendre: need lo < hi, got [{lo}, {hi}].")
    if num_cells < 1 or order < 1:
        raise ValueError(f"composite_gauss_legendre: num_cells and order must be >= 1, got {num_cells}, {order}.")
    s, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, num_cells + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    mid = 0.5 * (edges[1:] + edges[:-1])
    nodes = (mid[:, None] + half[:, None] * s[None, :]).reshape(-1)
    weights = (half[:, None] * w[None, :]).reshape(-1)
    return nodes, weights


def _hat_grid(lo: float, hi: float, num: int, periodic: bool) -> tuple[np.ndarray, float, int]:
    if periodic:
        h = (hi - lo) / num
        centers = lo + h * np.arange(num)
        cells = num
    else:
        h = (hi - lo) / (num + 1)
        centers = lo + h * np.arange(1, num + 1)
        cells = num + 1
    return centers, h, cells


def hat_values(x: np.ndarray, lo: float, hi: float, num: int, periodic: bool) -> np.ndarray:
    """Values psi_k(x) of num hat test functions on [lo, hi], shape (num, len(x)).

    Non-periodic: num interior hats on the grid of spacing h = (hi - lo) / (num + 1), all
    vanishing at lo and hi (the usual H^1_0 test space). Periodic: num hats of spacing
    h = (hi - lo) / num centred at lo + k h, with the distance taken modulo hi - lo.
    """
    centers, h, _ = _hat_grid(lo, hi, num, periodic)
    dist = np.abs(np.asarray(x, dtype=np.float64)[None, :] - centers[:, None])
    if periodic:
        period = hi - lo
        dist = np.minimum(dist % period, period - dist % period)
    return np.maximum(0.0, 1.0 - dist / h)


def weak_hats_1d(lo: float, hi: float, num_trials: int, *, order: int = 4, periodic: bool = False) -> TrialSet:
    """Weak form on [lo, hi]: num_trials hat test functions, Lebesgue measure, composite GL.

    W[k, q] = psi_k(z_q) omega_q with an order-point Gauss-Legendre rule on each grid cell.
    """
    if num_trials < 1:
        raise ValueError(f"weak_hats_1d: num_trials must be >= 1, got {num_trials}.")
    _, _, cells = _hat_grid(lo, hi, num_trials, periodic)
    nodes, qw = composite_gauss_legendre(lo, hi, cells, order)
    W = hat_values(nodes, lo, hi, num_trials, periodic) * qw[None, :]
    dtype = jnp.result_type(1.0)
    return TrialSet(jnp.asarray(nodes, dtype=dtype), jnp.asarray(W, dtype=dtype))


def weak_hats_tensor(
    space: tuple[float, float, int, bool],
    time: tuple[float, float, int, bool],
    *,
    order: int = 4,
) -> TrialSet:
    """Weak form on a space-time box with tensor-product hats psi_{k,l}(x, t) = a_k(x) b_l(t).

    Args:
      space: (lo, hi, num_trials, periodic) for x.
      time: (lo, hi, num_trials, periodic) for t.
      order: Gauss-Legendre nodes per cell and dimension.

    Returns:
      TrialSet with points of shape (Qx * Qt, 2) ordered x-major and W = kron(W_x, W_t) of shape
      (Kx * Kt, Qx * Qt).
    """
    wx = weak_hats_1d(space[0], space[1], space[2], order=order, periodic=space[3])
    wt = weak_hats_1d(time[0], time[1], time[2], order=order, periodic=time[3])
    xx, tt = jnp.meshgrid(wx.points, wt.points, indexing="ij")
    points = jnp.stack([xx.reshape(-1), tt.reshape(-1)], axis=-1)
    return TrialSet(points, jnp.kron(wx.weights, wt.weights))


def tested_values(trials: TrialSet, g: Callable[[Array], Array]) -> Array:
    """<g, psi_k>_{mu_k} for k = 1..K: W @ [g(z_q)]_q; g may return any trailing shape.

    Returns:
      Array of shape (K,) + g's output shape.
    """
    values = jax.vmap(g)(trials.points)  # (Q, ...)
    return jnp.tensordot(trials.weights.astype(values.dtype), values, axes=1)
