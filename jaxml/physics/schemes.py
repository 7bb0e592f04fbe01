"""Discretised equations whose scheme residuals are the trial functions (nodal weights).

arXiv 2501.18879, Section 5.3: with a nodal basis the weights are the grid values of f and the
physics constraints are the residuals of a numerical scheme, one per step (the "trial
functions"). Both schemes here implement the :class:`jaxml.physics.constraints.Constraint`
protocol and come with a simulator (in :mod:`jaxml.physics.simulators`) that produces exact
points on the variety by running the same scheme forward.

- :class:`EulerBernoulliScheme`: explicit Euler for y' + P y = Q y^rho on t_j = j h,
  r_k(w) = (w_{k+1} - w_k) / h + P w_k - Q w_k^rho, k = 0..N-1 (d = N + 1 nodes). With all N
  residuals, V is the one-parameter family of trajectories (d_V = 1: the initial value);
  keeping only a subset of residuals (``trial_indices``) frees one value per dropped residual
  (d_V = d - K), the paper's fixed-d sweep (Section 5.3, "fewer trial functions").
- :class:`FiniteDiffusionScheme`: explicit Euler in time, conservative central differences in
  space, periodic in x, for u_t = (a(u) u_x)_x with a(u) = a0 + a1 u^2 (a1 = 0: linear heat
  equation). Residuals r_{n,i} = (U^{n+1}_i - U^n_i)/dt - [a(U^n_{i+1/2})(U^n_{i+1} - U^n_i)
  - a(U^n_{i-1/2})(U^n_i - U^n_{i-1})] / dx^2, U_{i+1/2} = (U_i + U_{i+1}) / 2; d = (N_t + 1) N_x
  weights, K = N_t N_x residuals, d_V = N_x (the initial row).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = ["EulerBernoulliScheme", "FiniteDiffusionScheme"]


def _finite(name: str, v: float) -> None:
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}.")


@dataclasses.dataclass(frozen=True)
class EulerBernoulliScheme:
    """Explicit-Euler residuals of the Bernoulli equation y' + P y = Q y^rho on [0, N h].

    Attributes:
      num_steps: N; the model has d = N + 1 nodal weights w_j = f(j h).
      h: step size.
      P, Q, rho: Bernoulli coefficients; rho a non-negative integer (polynomial residuals).
      trial_indices: the residuals k kept as trial functions (default: all N). Fewer trial
        functions give a larger variety (d_V = d - len(trial_indices)).
    """

    num_steps: int
    h: float
    P: float = 1.0
    Q: float = 0.0
    rho: int = 0
    trial_indices: Optional[tuple[int, ...]] = None

    def __post_init__(self) -> None:
        if int(self.num_steps) != self.num_steps or self.num_steps < 1:
            raise ValueError(f"EulerBernoulliScheme.num_steps must be an integer >= 1, got {self.num_steps}.")
        if not (math.isfinite(self.h) and self.h > 0):
            raise ValueError(f"EulerBernoulliScheme.h must be a positive step size, got {self.h}.")
        _finite("EulerBernoulliScheme.P", self.P)
        _finite("EulerBernoulliScheme.Q", self.Q)
        if int(self.rho) != self.rho or self.rho < 0:
            raise ValueError(f"EulerBernoulliScheme.rho must be a non-negative integer, got {self.rho}.")
        if self.trial_indices is not None:
            idx = self.trial_indices
            if len(idx) == 0 or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= self.num_steps:
                raise ValueError(
                    "EulerBernoulliScheme.trial_indices must be distinct step indices in "
                    f"[0, {self.num_steps - 1}], got {len(idx)} indices spanning "
                    f"[{min(idx) if idx else None}, {max(idx) if idx else None}]."
                )

    @property
    def dim(self) -> int:
        return int(self.num_steps) + 1

    @property
    def num_trials(self) -> int:
        return self.num_steps if self.trial_indices is None else len(self.trial_indices)

    @property
    def is_linear(self) -> bool:
        return self.Q == 0.0 or self.rho == 1

    @property
    def times(self) -> Array:
        return self.h * jnp.arange(self.dim)

    def rhs(self, y: Array) -> Array:
        """F(y) = -P y + Q y^rho, so that y' = F(y)."""
        out = -self.P * y
        if self.Q != 0.0:
            out = out + self.Q * y ** int(self.rho)
        return out

    def residual(self, w: Array) -> Array:
        w = jnp.asarray(w)
        if w.shape != (self.dim,):
            raise ValueError(f"EulerBernoulliScheme.residual: w must have shape ({self.dim},), got {w.shape}.")
        return _euler_residual(self, w)

    def linear_part(self) -> "EulerBernoulliScheme":
        p = self.P - (self.Q if self.rho == 1 else 0.0)
        return dataclasses.replace(self, P=p, Q=0.0, rho=0)

    @staticmethod
    def evenly_dropped(num_steps: int, num_dropped: int) -> tuple[int, ...]:
        """Trial indices keeping all residuals except num_dropped evenly spaced ones.

        The dropped steps are round((i + 1) N / (num_dropped + 1)) for i < num_dropped, so the
        variety splits the trajectory into num_dropped + 1 free segments: d_V = 1 + num_dropped.
        """
        if not 0 <= num_dropped < num_steps:
            raise ValueError(f"evenly_dropped: need 0 <= num_dropped < num_steps={num_steps}, got {num_dropped}.")
        drop = {int(round((i + 1) * num_steps / (num_dropped + 1))) for i in range(num_dropped)}
        drop = {min(k, num_steps - 1) for k in drop}
        if len(drop) != num_dropped:
            raise ValueError(f"evenly_dropped: cannot drop {num_dropped} distinct steps out of {num_steps}.")
        return tuple(k for k in range(num_steps) if k not in drop)


@dataclasses.dataclass(frozen=True)
class FiniteDiffusionScheme:
    """Explicit finite-difference residuals of u_t = (a(u) u_x)_x, periodic in x.

    Attributes:
      num_x: N_x grid points on the periodic interval (spacing dx = length / N_x).
      num_steps: N_t time steps of size dt; weights are U[n, i], n = 0..N_t, flattened n-major.
      dt: time step.
      length: spatial period.
      a0, a1: diffusivity a(u) = a0 + a1 u^2 (a1 = 0: the linear heat equation).
    """

    num_x: int
    num_steps: int
    dt: float
    length: float = 2.0 * math.pi
    a0: float = 1.0
    a1: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_x", "num_steps"):
            v = getattr(self, name)
            if int(v) != v or v < (3 if name == "num_x" else 1):
                raise ValueError(f"FiniteDiffusionScheme.{name} must be an integer >= {3 if name == 'num_x' else 1}, got {v}.")
        for name in ("dt", "length"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"FiniteDiffusionScheme.{name} must be positive, got {v}.")
        _finite("FiniteDiffusionScheme.a0", self.a0)
        _finite("FiniteDiffusionScheme.a1", self.a1)

    @property
    def dx(self) -> float:
        return self.length / self.num_x

    @property
    def dim(self) -> int:
        return (int(self.num_steps) + 1) * int(self.num_x)

    @property
    def num_trials(self) -> int:
        return int(self.num_steps) * int(self.num_x)

    @property
    def is_linear(self) -> bool:
        return self.a1 == 0.0

    @property
    def stable(self) -> bool:
        """Whether dt <= dx^2 / (2 a_max) holds for a(u) with |u| <= 1 (explicit-Euler stability)."""
        a_max = abs(self.a0) + abs(self.a1)
        return self.dt * 2.0 * a_max <= self.dx**2

    def diffusivity(self, u: Array) -> Array:
        return self.a0 + self.a1 * u**2

    def flux_divergence(self, u: Array) -> Array:
        """[(a(u) u_x)_x]_i by conservative central differences, u of shape (..., N_x)."""
        up = jnp.roll(u, -1, axis=-1)
        um = jnp.roll(u, 1, axis=-1)
        a_plus = self.diffusivity(0.5 * (u + up))
        a_minus = self.diffusivity(0.5 * (u + um))
        return (a_plus * (up - u) - a_minus * (u - um)) / self.dx**2

    def residual(self, w: Array) -> Array:
        w = jnp.asarray(w)
        if w.shape != (self.dim,):
            raise ValueError(f"FiniteDiffusionScheme.residual: w must have shape ({self.dim},), got {w.shape}.")
        return _fd_residual(self, w)

    def linear_part(self) -> "FiniteDiffusionScheme":
        return dataclasses.replace(self, a1=0.0)

    @property
    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(x_i, t_n): x_i = -length/2 + i dx, t_n = n dt."""
        x = -0.5 * self.length + self.dx * np.arange(self.num_x)
        t = self.dt * np.arange(self.num_steps + 1)
        return x, t


@functools.partial(jax.jit, static_argnums=0)
def _euler_residual(scheme: EulerBernoulliScheme, w: Array) -> Array:
    r = (w[1:] - w[:-1]) / scheme.h - scheme.rhs(w[:-1])
    if scheme.trial_indices is not None:
        r = r[jnp.asarray(scheme.trial_indices)]
    return r


@functools.partial(jax.jit, static_argnums=0)
def _fd_residual(scheme: FiniteDiffusionScheme, w: Array) -> Array:
    U = w.reshape(scheme.num_steps + 1, scheme.num_x)
    r = (U[1:] - U[:-1]) / scheme.dt - scheme.flux_divergence(U[:-1])
    return r.reshape(-1)
