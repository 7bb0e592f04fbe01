"""Operators, trial functions and constraints: JAX residuals and matrices against sympy."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import physics as ph
from jaxml.physics import symbolic


def _close_matrix(c, atol=1e-9):
    with jax.enable_x64(True):
        D = np.asarray(ph.operator_matrix(c))
        D_jac = np.asarray(jax.jacfwd(c.residual)(jnp.zeros(c.dim)))
    polys, w = symbolic.constraint_polynomials(c)
    A = symbolic.polynomial_matrix(polys, w)
    np.testing.assert_allclose(D, A, atol=atol, rtol=1e-9)
    np.testing.assert_allclose(D_jac, A, atol=atol, rtol=1e-9)


def test_oscillator_strong_matrix_against_sympy_and_closed_form():
    with jax.enable_x64(True):
        b = ph.fourier_basis_for_dim(5)
        pts = jnp.linspace(0.0, 2 * math.pi, 6)
        c = ph.OperatorConstraint(b, ph.harmonic_oscillator_operator(), ph.dirac(pts))
        # D[cos(w t)] = (1 - w^2) cos(w t): closed form of the matrix
        want = jax.vmap(b)(pts) * jnp.concatenate([jnp.ones(1), 1 - b.frequencies**2, 1 - b.frequencies**2])[None, :]
        np.testing.assert_allclose(c.matrix(), want, atol=1e-12)
    _close_matrix(c)


def test_oscillator_weak_matrix_against_sympy():
    with jax.enable_x64(True):
        c = ph.OperatorConstraint(ph.FourierBasis(2), ph.harmonic_oscillator_operator(), ph.weak_hats_1d(0.0, 2 * math.pi, 3, order=2))
    _close_matrix(c)


def test_heat_matrix_against_sympy():
    with jax.enable_x64(True):
        pts = ph.sample_box(jax.random.PRNGKey(0), 5, (-math.pi, 0.0), (math.pi, 1.0))
        c = ph.OperatorConstraint(ph.SpaceTimeFourierBasis(2, 2), ph.HeatOperator(), ph.dirac(pts))
    _close_matrix(c)


def test_weak_quadrature_is_exact_for_hats():
    # <1, psi_k> = h for interior hats of spacing h; <x, psi_k> = h * center_k
    tr = ph.weak_hats_1d(0.0, 1.0, 4, order=2)
    h = 1.0 / 5
    np.testing.assert_allclose(tr.weights.sum(axis=1), np.full(4, h), rtol=1e-6)
    np.testing.assert_allclose(tr.weights @ tr.points, h * h * np.arange(1, 5), rtol=1e-5)
    trp = ph.weak_hats_1d(0.0, 1.0, 4, periodic=True)
    np.testing.assert_allclose(trp.weights.sum(axis=1), np.full(4, 0.25), rtol=1e-6)


@pytest.mark.parametrize(
    "op", [ph.QuadraticTransport(1.0, 2.0), ph.BernoulliOperator(1.0, 0.5, 2), ph.BernoulliOperator(1.0, 0.0, 0)]
)
def test_nonlinear_residuals_against_sympy(op):
    with jax.enable_x64(True):
        pts = jnp.linspace(-0.8, 0.9, 5)
        c = ph.OperatorConstraint(ph.PolynomialBasis(3), op, ph.dirac(pts))
        w = jax.random.normal(jax.random.PRNGKey(1), (4,))
        got = np.asarray(c.residual(w))
    polys, syms = symbolic.constraint_polynomials(c)
    np.testing.assert_allclose(got, symbolic.evaluate_polynomials(polys, syms, np.asarray(w)), atol=1e-10)
    assert c.is_linear == (op.Q == 0.0 if isinstance(op, ph.BernoulliOperator) else False)


@pytest.mark.parametrize(
    "scheme",
    [
        ph.EulerBernoulliScheme(4, 0.25, 1.0, 0.5, 2),
        ph.EulerBernoulliScheme(5, 0.2, 1.0, 0.0, 0, trial_indices=(0, 2, 4)),
        ph.FiniteDiffusionScheme(4, 2, 0.05, a0=1.0, a1=0.5),
    ],
)
def test_scheme_residuals_against_sympy(scheme):
    with jax.enable_x64(True):
        w = jax.random.normal(jax.random.PRNGKey(2), (scheme.dim,))
        got = np.asarray(scheme.residual(w))
    polys, syms = symbolic.constraint_polynomials(scheme)
    assert len(polys) == scheme.num_trials
    np.testing.assert_allclose(got, symbolic.evaluate_polynomials(polys, syms, np.asarray(w)), rtol=1e-10, atol=1e-9)


def test_operator_matrix_rejects_nonlinear_and_mismatch():
    c = ph.OperatorConstraint(ph.PolynomialBasis(2), ph.QuadraticTransport(), ph.dirac(jnp.linspace(0, 1, 3)))
    with pytest.raises(ValueError, match="nonlinear"):
        ph.operator_matrix(c)
    with pytest.raises(ValueError, match="linear_part"):
        c.matrix()
    with pytest.raises(ValueError, match="2-D inputs"):
        ph.OperatorConstraint(ph.PolynomialBasis(2), ph.HeatOperator(), ph.dirac(jnp.zeros((3, 2))))
    with pytest.raises(ValueError, match="non-negative integer"):
        ph.BernoulliOperator(1.0, 0.5, 1.5)
    with pytest.raises(ValueError, match="trial_indices"):
        ph.EulerBernoulliScheme(3, 0.1, trial_indices=(0, 5))
