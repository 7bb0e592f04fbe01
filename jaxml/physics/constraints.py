"""Physics constraints p_k(w) = 0 on the weights of a linear model: the affine variety V.

arXiv 2501.18879, Section 3-4: with f_w = w^T phi, the constraints
p_k(w) = <D[w^T phi], psi_k>_{mu_k}, k = 1..K, cut out V = {w : p_k(w) = 0 for all k}. For a
linear D, p(w) = D_mat w with D_mat[k, j] = <D[phi_j], psi_k>_{mu_k} and V = ker D_mat; for a
polynomial nonlinearity V is an affine variety.

A *constraint* is anything with ``residual(w) -> (K,)``, ``dim`` (d), ``num_trials`` (K),
``is_linear`` and ``linear_part()``. :class:`OperatorConstraint` tests a differential
operator against trial functions; :mod:`jaxml.physics.schemes` provides discretised schemes.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from jax import Array

from jaxml.physics.bases import Basis
from jaxml.physics.operators import Operator
from jaxml.physics.trials import TrialSet, tested_values

__all__ = ["Constraint", "OperatorConstraint", "operator_matrix"]


@runtime_checkable
class Constraint(Protocol):
    """Polynomial constraints p: R^d -> R^K on the weights (the protocol)."""

    @property
    def dim(self) -> int: ...

    @property
    def num_trials(self) -> int: ...

    @property
    def is_linear(self) -> bool: ...

    def residual(self, w: Array) -> Array: ...

    def linear_part(self) -> "Constraint": ...


@functools.partial(jax.jit, static_argnums=(0, 1))
def _tested_operator(basis: Basis, operator: Operator, trials: TrialSet, w: Array | None) -> Array:
    """W @ D[f](z_q): f = w^T phi (residual) or f = phi itself when w is None (the matrix)."""
    if w is None:
        return tested_values(trials, lambda x: operator.apply(basis, x))
    f = lambda x: jnp.dot(basis(x).astype(w.dtype), w)
    return tested_values(trials, lambda x: operator.apply(f, x))


@dataclasses.dataclass(frozen=True, eq=False)
class OperatorConstraint:
    """p_k(w) = <D[w^T phi], psi_k>_{mu_k}: an operator tested against a trial set.

    Attributes:
      basis: the feature basis phi (d functions).
      operator: the differential operator D.
      trials: the K trial functionals (Dirac collocation or weak-form quadrature).
    """

    basis: Basis
    operator: Operator
    trials: TrialSet

    def __post_init__(self) -> None:
        if self.basis.input_dim != self.operator.input_dim:
            raise ValueError(
                f"OperatorConstraint: basis takes {self.basis.input_dim}-D inputs but the operator "
                f"{type(self.operator).__name__} acts on {self.operator.input_dim}-D inputs; use a matching basis."
            )
        pts = self.trials.points
        ok = pts.ndim == 1 if self.basis.input_dim == 1 else (pts.ndim == 2 and pts.shape[1] == self.basis.input_dim)
        if not ok:
            raise ValueError(
                f"OperatorConstraint: trial points of shape {pts.shape} do not match a "
                f"{self.basis.input_dim}-D basis; build the trial set on the basis' domain."
            )

    @property
    def dim(self) -> int:
        return self.basis.dim

    @property
    def num_trials(self) -> int:
        return self.trials.num_trials

    @property
    def is_linear(self) -> bool:
        return self.operator.is_linear

    def residual(self, w: Array) -> Array:
        """p(w) of shape (K,) for weights w of shape (d,)."""
        w = jnp.asarray(w)
        if w.shape != (self.dim,):
            raise ValueError(f"residual: w must have shape ({self.dim},), got {w.shape}.")
        return _tested_operator(self.basis, self.operator, self.trials, w)

    def matrix(self) -> Array:
        """D_mat[k, j] = <D[phi_j], psi_k>, shape (K, d); only for linear operators.

        Computed by applying D to the vector-valued phi once per node (no Jacobian needed).
        """
        if not self.is_linear:
            raise ValueError(
                f"matrix: {type(self.operator).__name__} is nonlinear, so the constraints are not a "
                "matrix; use residual() with variety_dimension, or linear_part().matrix()."
            )
        return _tested_operator(self.basis, self.operator, self.trials, None)

    def linear_part(self) -> "OperatorConstraint":
        return OperatorConstraint(self.basis, self.operator.linear_part(), self.trials)


def operator_matrix(constraint: Constraint, dtype: jnp.dtype | None = None) -> Array:
    """D_mat of a linear constraint, shape (K, d): the Jacobian of p at w = 0 (exact for linear p).

    Args:
      constraint: a linear constraint (``constraint.is_linear``).
      dtype: dtype of the zero vector at which the Jacobian is taken (default: float default).

    Raises:
      ValueError: if the constraint is nonlinear.
    """
    if not constraint.is_linear:
        raise ValueError(
            f"operator_matrix: {type(constraint).__name__} is nonlinear; take its linear_part() "
            "or use the Jacobian at points on the variety (variety_dimension)."
        )
    if isinstance(constraint, OperatorConstraint):
        return constraint.matrix()
    zero = jnp.zeros((constraint.dim,), dtype=dtype or jnp.result_type(1.0))
    return jax.jacfwd(constraint.residual)(zero)
