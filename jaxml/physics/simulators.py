"""Simulators: exact solutions, points on the variety, and noisy regression data.

arXiv 2501.18879, Section 5: observations y_i = f*(x_i) + eps_i, eps ~ N(0, sigma^2),
sigma^2 = 0.01, where D[f*] = 0. The same simulators give the points on V used by the
dimension estimator (simulate under many initial conditions, project onto the basis).

- Harmonic oscillator y'' + y = 0: y(t) = y0 cos t + v0 sin t, (y0, v0) ~ N(1, I).
- Periodic heat equation u_t = kappa u_xx on x in [-pi, pi]: u = sum_j exp(-kappa j^2 t)
  (A_j cos jx + B_j sin jx), (A, B) ~ N(1, I) for j <= J (J = 1 in the paper; B_0 unused).
- Explicit-Euler Bernoulli trajectories (nodal values) and finite-difference diffusion.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax import Array

from jaxml.physics.bases import Basis, feature_matrix
from jaxml.physics.schemes import EulerBernoulliScheme, FiniteDiffusionScheme

__all__ = [
    "oscillator_solution",
    "sample_oscillator_conditions",
    "diffusion_solution",
    "sample_diffusion_conditions",
    "bernoulli_trajectory",
    "sample_bernoulli_conditions",
    "fd_diffusion_trajectory",
    "sample_box",
    "noisy_observations",
    "project_onto_basis",
    "project_many",
]


def oscillator_solution(t: Array, y0: Array, v0: Array, omega: float = 1.0) -> Array:
    """y(t) = y0 cos(omega t) + (v0 / omega) sin(omega t), the solution of y'' + omega^2 y = 0."""
    return y0 * jnp.cos(omega * t) + (v0 / omega) * jnp.sin(omega * t)


def sample_oscillator_conditions(key: Array, num: int, mean: float = 1.0, scale: float = 1.0) -> Array:
    """(y0, v0) ~ N(mean, scale^2 I), shape (num, 2) (paper: N(1, I))."""
    return mean + scale * jax.random.normal(key, (num, 2))


def diffusion_solution(z: Array, cos_coeffs: Array, sin_coeffs: Array, kappa: float = 1.0) -> Array:
    """u(x, t) = sum_{j=0..J} exp(-kappa j^2 t) (A_j cos jx + B_j sin jx) at points z = (x, t).

    Args:
      z: points of shape (..., 2).
      cos_coeffs: A, shape (J + 1,).
      sin_coeffs: B, shape (J + 1,) (B_0 multiplies sin 0 = 0).
    """
    z = jnp.asarray(z)
    lead = (1,) * (z.ndim - 1)
    j = jnp.arange(cos_coeffs.shape[0]).astype(jnp.result_type(z, 1.0)).reshape(lead + (-1,))
    cos_coeffs = jnp.asarray(cos_coeffs).reshape(lead + (-1,))
    sin_coeffs = jnp.asarray(sin_coeffs).reshape(lead + (-1,))
    x, t = z[..., 0:1], z[..., 1:2]
    decay = jnp.exp(-kappa * j**2 * t)
    return jnp.sum(decay * (cos_coeffs * jnp.cos(j * x) + sin_coeffs * jnp.sin(j * x)), axis=-1)


def sample_diffusion_conditions(key: Array, num: int, num_modes: int = 1) -> tuple[Array, Array]:
    """(A, B) ~ N(1, I), each of shape (num, num_modes + 1) (paper: modes j <= 1)."""
    ka, kb = jax.random.split(key)
    shape = (num, num_modes + 1)
    return 1.0 + jax.random.normal(ka, shape), 1.0 + jax.random.normal(kb, shape)


def bernoulli_trajectory(scheme: EulerBernoulliScheme, y0: Array) -> Array:
    """Nodal values w_j of the explicit-Euler solution, w_{k+1} = w_k + h F(w_k), shape (N + 1,).

    The trajectory satisfies every residual of ``scheme`` exactly (it is a point on V).
    """

    def step(y, _):
        y_next = y + scheme.h * scheme.rhs(y)
        return y_next, y_next

    y0 = jnp.asarray(y0)
    _, ys = jax.lax.scan(step, y0, None, length=scheme.num_steps)
    return jnp.concatenate([y0[None], ys])


def sample_bernoulli_conditions(key: Array, num: int, bound: float = 3.0) -> Array:
    """y0 ~ N(0, 1) truncated to |y0| <= bound, shape (num,).

    Truncation keeps the nonlinear case y' = -y + 0.5 y^2 finite on [0, 1]: it blows up before
    t = 1 only for y0 > 2e / (e - 1) ~= 3.16 (probability 8e-4 under N(0, 1)).
    """
    return jax.random.truncated_normal(key, -bound, bound, (num,))


def fd_diffusion_trajectory(scheme: FiniteDiffusionScheme, u0: Array) -> Array:
    """Run the explicit scheme from u0 (shape (N_x,)); returns U of shape (N_t + 1, N_x)."""

    def step(u, _):
        u_next = u + scheme.dt * scheme.flux_divergence(u)
        return u_next, u_next

    u0 = jnp.asarray(u0)
    if u0.shape != (scheme.num_x,):
        raise ValueError(f"fd_diffusion_trajectory: u0 must have shape ({scheme.num_x},), got {u0.shape}.")
    _, us = jax.lax.scan(step, u0, None, length=scheme.num_steps)
    return jnp.concatenate([u0[None], us])


def sample_box(key: Array, num: int, lows: tuple[float, ...], highs: tuple[float, ...]) -> Array:
    """Uniform points in a box; shape (num,) for a 1-D box, else (num, len(lows))."""
    if len(lows) != len(highs) or not all(h > l for l, h in zip(lows, highs)):
        raise ValueError(f"sample_box: need lows < highs of equal length, got {lows}, {highs}.")
    lo = jnp.asarray(lows)
    hi = jnp.asarray(highs)
    u = jax.random.uniform(key, (num, len(lows)))
    pts = lo[None, :] + (hi - lo)[None, :] * u
    return pts[:, 0] if len(lows) == 1 else pts


def noisy_observations(key: Array, clean: Array, sigma: float) -> Array:
    """y = clean + sigma * N(0, 1) (paper: sigma^2 = 0.01)."""
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"noisy_observations: sigma must be >= 0, got {sigma}.")
    return clean + sigma * jax.random.normal(key, clean.shape, dtype=jnp.result_type(clean, 1.0))


def project_onto_basis(basis: Basis, f: Callable[[Array], Array], points: Array) -> Array:
    """Least-squares coefficients w = argmin sum_q (w^T phi(z_q) - f(z_q))^2 (points on V).

    Use a fine grid of points; when f lies in the span of the basis the projection is exact
    (up to round-off) and so satisfies the constraints.
    """
    Phi = feature_matrix(basis, points)
    values = jax.vmap(f)(jnp.asarray(points))
    w, *_ = jnp.linalg.lstsq(Phi, values.astype(Phi.dtype))
    return w


def project_many(basis: Basis, f: Callable[[Array, Array], Array], params: Array, points: Array) -> Array:
    """Jitted :func:`project_onto_basis` for a family f(params[i], z), one row per parameter.

    Args:
      basis: the basis.
      f: f(theta, z) -> value, e.g. an exact solution with initial condition theta.
      params: pytree whose leaves have a leading axis of size m (the initial conditions).
      points: fitting nodes, shape (Q,) or (Q, n).

    Returns:
      Weights of shape (m, d), points on V when every f(theta, .) lies in the span.
    """
    Phi = feature_matrix(basis, points)
    pinv = jnp.linalg.pinv(Phi)

    @jax.jit
    def run(params):
        values = jax.vmap(lambda th: jax.vmap(lambda z: f(th, z))(points))(params)  # (m, Q)
        return values.astype(Phi.dtype) @ pinv.T

    return run(params)
