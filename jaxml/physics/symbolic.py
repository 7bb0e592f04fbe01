"""Symbolic (sympy) residual polynomials p_k(w): an independent cross-check of the JAX path.

arXiv 2501.18879, Section 4.4: the constraints p_k(w) = <D[w^T phi], psi_k>_{mu_k} are
polynomials in w. For small systems sympy derives them from the bases' and operators' sympy
forms (no autodiff involved), so tests can compare the JAX residuals, operator matrices and
Jacobian ranks against an exact computation. Gröbner-basis dimension computations are
deliberately not offered (doubly exponential, the reason the paper samples tangent spaces);
:func:`jacobian_rank` evaluates the symbolic Jacobian at a point exactly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy

from jaxml.physics.constraints import OperatorConstraint
from jaxml.physics.schemes import EulerBernoulliScheme, FiniteDiffusionScheme

__all__ = [
    "weight_symbols",
    "constraint_polynomials",
    "polynomial_matrix",
    "jacobian_rank",
    "evaluate_polynomials",
]

_MAX_SYMBOLIC = 4096  # K * Q evaluations; beyond this the cross-check is too slow to be useful


def weight_symbols(d: int) -> list[sympy.Symbol]:
    """The weight symbols w0..w{d-1}."""
    return list(sympy.symbols(f"w0:{d}"))


def _operator_polynomials(c: OperatorConstraint) -> tuple[list[sympy.Expr], list[sympy.Symbol]]:
    points = np.asarray(c.trials.points, dtype=np.float64)
    W = np.asarray(c.trials.weights, dtype=np.float64)
    if W.size > _MAX_SYMBOLIC:
        raise ValueError(
            f"constraint_polynomials: {W.shape[0]} trials x {W.shape[1]} nodes is too large for sympy; "
            f"use at most {_MAX_SYMBOLIC} weight entries (a small cross-check system)."
        )
    xs = list(sympy.symbols("x0:%d" % c.basis.input_dim))
    w = weight_symbols(c.dim)
    f = sum((wj * pj for wj, pj in zip(w, c.basis.sympy_functions(xs))), sympy.Integer(0))
    Df = c.operator.sympy_apply(f, xs)
    pts = points.reshape(points.shape[0], -1)
    values = [Df.subs({s: sympy.Float(v, 30) for s, v in zip(xs, row)}) for row in pts]
    polys = []
    for k in range(W.shape[0]):
        terms = [sympy.Float(W[k, q], 30) * values[q] for q in range(W.shape[1]) if W[k, q] != 0.0]
        polys.append(sympy.expand(sum(terms, sympy.Integer(0))).evalf(30))
    return polys, w


def _euler_polynomials(s: EulerBernoulliScheme) -> tuple[list[sympy.Expr], list[sympy.Symbol]]:
    w = weight_symbols(s.dim)
    h, P, Q = sympy.Float(s.h, 30), sympy.Float(s.P, 30), sympy.Float(s.Q, 30)
    ks = range(s.num_steps) if s.trial_indices is None else s.trial_indices
    polys = [sympy.expand((w[k + 1] - w[k]) / h + P * w[k] - (Q * w[k] ** int(s.rho) if s.Q != 0.0 else 0)) for k in ks]
    return polys, w


def _fd_polynomials(s: FiniteDiffusionScheme) -> tuple[list[sympy.Expr], list[sympy.Symbol]]:
    w = weight_symbols(s.dim)
    U = [[w[n * s.num_x + i] for i in range(s.num_x)] for n in range(s.num_steps + 1)]
    dt, dx = sympy.Float(s.dt, 30), sympy.Float(s.dx, 30)
    a = lambda u: sympy.Float(s.a0, 30) + sympy.Float(s.a1, 30) * u**2
    polys = []
    for n in range(s.num_steps):
        for i in range(s.num_x):
            up, u, um = U[n][(i + 1) % s.num_x], U[n][i], U[n][(i - 1) % s.num_x]
            flux = (a((u + up) / 2) * (up - u) - a((u + um) / 2) * (u - um)) / dx**2
            polys.append(sympy.expand((U[n + 1][i] - u) / dt - flux))
    return polys, w


def constraint_polynomials(
    constraint: OperatorConstraint | EulerBernoulliScheme | FiniteDiffusionScheme,
) -> tuple[list[sympy.Expr], list[sympy.Symbol]]:
    """The residual polynomials [p_1(w), ..., p_K(w)] and the weight symbols, derived by sympy.

    Supports :class:`OperatorConstraint` (from the bases' and operators' sympy forms, tested
    with the same quadrature weights), :class:`EulerBernoulliScheme` and
    :class:`FiniteDiffusionScheme` (from the scheme formulas).
    """
    if isinstance(constraint, OperatorConstraint):
        return _operator_polynomials(constraint)
    if isinstance(constraint, EulerBernoulliScheme):
        return _euler_polynomials(constraint)
    if isinstance(constraint, FiniteDiffusionScheme):
        return _fd_polynomials(constraint)
    raise TypeError(
        f"constraint_polynomials: no symbolic form for {type(constraint).__name__}; supported are "
        "OperatorConstraint, EulerBernoulliScheme and FiniteDiffusionScheme."
    )


def polynomial_matrix(polys: Sequence[sympy.Expr], w: Sequence[sympy.Symbol]) -> np.ndarray:
    """Coefficient matrix A[k, j] of linear polynomials p_k = sum_j A[k, j] w_j (float64).

    Raises:
      ValueError: if some p_k is not linear and homogeneous in w.
    """
    A = np.zeros((len(polys), len(w)))
    for k, p in enumerate(polys):
        poly = sympy.Poly(p, *w)
        if poly.total_degree() > 1 or abs(float(poly.coeff_monomial(1))) > 1e-20:
            raise ValueError(f"polynomial_matrix: p_{k} is not linear homogeneous in w (degree {poly.total_degree()}).")
        for j, wj in enumerate(w):
            A[k, j] = float(poly.coeff_monomial(wj))
    return A


def evaluate_polynomials(polys: Sequence[sympy.Expr], w: Sequence[sympy.Symbol], point: Sequence[float]) -> np.ndarray:
    """[p_k(point)]_k as float64."""
    sub = {s: sympy.nsimplify(v) if isinstance(v, (int, sympy.Rational)) else sympy.Float(v, 30) for s, v in zip(w, point)}
    return np.array([float(p.subs(sub)) for p in polys])


def jacobian_rank(polys: Sequence[sympy.Expr], w: Sequence[sympy.Symbol], point: Sequence) -> int:
    """Rank of the symbolic Jacobian [d p_k / d w_j] evaluated at ``point``.

    With rational (or integer) coordinates and rational coefficients the rank is exact; with
    floats sympy's rank uses its own zero test, fine for well-separated singular values.
    """
    J = sympy.Matrix(polys).jacobian(list(w))
    sub = {s: sympy.Rational(v) if isinstance(v, (int, sympy.Rational)) else sympy.nsimplify(v, rational=True) for s, v in zip(w, point)}
    return int(J.subs(sub).rank())
