"""Differential operators D acting on functions, linear and nonlinear.

arXiv 2501.18879 (Koshizuka & Sato), Section 3: the physics is a differential equation
D[f*] = 0. An operator here is a frozen dataclass with

- ``apply(f, x)``: D[f](x) for a function f of one input point, computed with forward-mode
  autodiff (``jax.jacfwd``). For a *linear* operator f may be vector valued (for example the
  feature map phi itself, giving the vector D[phi](x) of shape (d,) in one call); a nonlinear
  operator needs a scalar f (for example f_w = w^T phi).
- ``linear_part()``: the linear part L of D = L + F (the paper's lower bound
  d_V(L) <= d_V(D), Section 4.3).
- ``sympy_apply(expr, symbols)``: the same operator on a sympy expression, for the symbolic
  cross-check (:mod:`jaxml.physics.symbolic`).

Input convention follows :mod:`jaxml.physics.bases`: scalar x for ODEs, z = (x, t) for the
space-time heat operator.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp
import sympy
from jax import Array

__all__ = [
    "Operator",
    "LinearODE",
    "HeatOperator",
    "BernoulliOperator",
    "QuadraticTransport",
    "harmonic_oscillator_operator",
    "derivative",
    "partial",
]


Fn = Callable[[Array], Array]


@runtime_checkable
class Operator(Protocol):
    """A differential operator D (the protocol every operator implements)."""

    @property
    def input_dim(self) -> int: ...

    @property
    def is_linear(self) -> bool: ...

    def apply(self, f: Fn, x: Array) -> Array: ...

    def linear_part(self) -> "Operator": ...

    def sympy_apply(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> sympy.Expr: ...


def derivative(f: Fn, order: int) -> Fn:
    """The order-th derivative of f: R -> R^... by nested forward-mode autodiff."""
    g = f
    for _ in range(order):
        g = jax.jacfwd(g)
    return g


def partial(f: Fn, axis: int, order: int = 1) -> Fn:
    """The order-th partial derivative of f: R^n -> R^... along input coordinate ``axis``."""
    g = f
    for _ in range(order):
        g = (lambda h: (lambda z: jax.jacfwd(h)(z)[..., axis]))(g)
    return g


def _finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}.")


@dataclasses.dataclass(frozen=True)
class LinearODE:
    """D[f] = sum_m c_m f^(m): a linear ODE operator with constant coefficients.

    Attributes:
      coefficients: (c_0, c_1, ..., c_M), c_m multiplying the m-th derivative.
    """

    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.coefficients) == 0:
            raise ValueError("LinearODE.coefficients must be non-empty, e.g. (1.0, 0.0, 1.0) for f'' + f.")
        for m, c in enumerate(self.coefficients):
            _finite(f"LinearODE.coefficients[{m}]", float(c))

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def is_linear(self) -> bool:
        return True

    def apply(self, f: Fn, x: Array) -> Array:
        out = 0.0
        for m, c in enumerate(self.coefficients):
            if c != 0.0:
                out = out + c * derivative(f, m)(x)
        if isinstance(out, float):  # all coefficients zero
            return jnp.zeros_like(f(x))
        return out

    def linear_part(self) -> "LinearODE":
        return self

    def sympy_apply(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
        (x,) = symbols
        return sum(
            (sympy.Float(c, 30) * sympy.diff(expr, x, m) for m, c in enumerate(self.coefficients) if c != 0.0),
            sympy.Integer(0),
        )


def harmonic_oscillator_operator(omega: float = 1.0) -> LinearODE:
    """D[f] = f'' + omega^2 f (arXiv 2501.18879, Section 5.1, harmonic oscillator)."""
    _finite("omega", omega)
    return LinearODE((omega**2, 0.0, 1.0))


@dataclasses.dataclass(frozen=True)
class HeatOperator:
    """D[u] = u_t - kappa u_xx on points z = (x, t) (arXiv 2501.18879, Section 5.1, diffusion)."""

    kappa: float = 1.0

    def __post_init__(self) -> None:
        _finite("HeatOperator.kappa", self.kappa)

    @property
    def input_dim(self) -> int:
        return 2

    @property
    def is_linear(self) -> bool:
        return True

    def apply(self, f: Fn, z: Array) -> Array:
        return partial(f, 1, 1)(z) - self.kappa * partial(f, 0, 2)(z)

    def linear_part(self) -> "HeatOperator":
        return self

    def sympy_apply(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
        x, t = symbols
        return sympy.diff(expr, t) - sympy.Float(self.kappa, 30) * sympy.diff(expr, x, 2)


@dataclasses.dataclass(frozen=True)
class BernoulliOperator:
    """D[f] = f' + P f - Q f^rho, the Bernoulli equation (arXiv 2501.18879, Section 5.3).

    Linear (homogeneous) when Q = 0 or rho = 1; otherwise the residuals are polynomials of
    degree rho in w (rho must be a non-negative integer so that the feasible set is an affine
    variety). rho = 0 with Q != 0 is affine (a constant source), which we also treat as
    nonlinear since D[0] != 0. Linear part: L[f] = f' + P f (+ (-Q) f when rho = 1).
    """

    P: float = 1.0
    Q: float = 0.0
    rho: int = 0

    def __post_init__(self) -> None:
        _finite("BernoulliOperator.P", self.P)
        _finite("BernoulliOperator.Q", self.Q)
        if int(self.rho) != self.rho or self.rho < 0:
            raise ValueError(
                f"BernoulliOperator.rho must be a non-negative integer (polynomial residuals), got {self.rho}."
            )

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def is_linear(self) -> bool:
        return self.Q == 0.0 or self.rho == 1

    def apply(self, f: Fn, x: Array) -> Array:
        y = f(x)
        out = derivative(f, 1)(x) + self.P * y
        if self.Q != 0.0:
            out = out - self.Q * y ** int(self.rho)
        return out

    def linear_part(self) -> LinearODE:
        p = self.P - (self.Q if self.rho == 1 else 0.0)
        return LinearODE((p, 1.0))

    def sympy_apply(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
        (x,) = symbols
        out = sympy.diff(expr, x) + sympy.Float(self.P, 30) * expr
        if self.Q != 0.0:
            out = out - sympy.Float(self.Q, 30) * expr ** int(self.rho)
        return out


@dataclasses.dataclass(frozen=True)
class QuadraticTransport:
    """D[f] = a f' + b f f': a linear transport term plus the quadratic term f f'.

    The residuals <D[f_w], psi_k> are quadratic polynomials in w (arXiv 2501.18879, Section 4.2
    example of a nonlinear operator). Linear part L[f] = a f'.
    """

    a: float = 1.0
    b: float = 1.0

    def __post_init__(self) -> None:
        _finite("QuadraticTransport.a", self.a)
        _finite("QuadraticTransport.b", self.b)

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def is_linear(self) -> bool:
        return self.b == 0.0

    def apply(self, f: Fn, x: Array) -> Array:
        return (self.a + self.b * f(x)) * derivative(f, 1)(x)

    def linear_part(self) -> LinearODE:
        return LinearODE((0.0, self.a))

    def sympy_apply(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> sympy.Expr:
        (x,) = symbols
        return (sympy.Float(self.a, 30) + sympy.Float(self.b, 30) * expr) * sympy.diff(expr, x)
