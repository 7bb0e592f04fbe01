"""Bases: values against closed forms, autodiff derivatives, sympy forms, validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from jaxml.physics import bases as B


def test_fourier_values_and_derivative():
    b = B.fourier_basis_for_dim(5)  # J = 2, omega = (0.5, 1.0) on [0, 2 pi]
    t = 0.7
    np.testing.assert_allclose(b.frequencies, [0.5, 1.0], rtol=1e-6)
    want = [1, math.cos(0.5 * t), math.cos(t), math.sin(0.5 * t), math.sin(t)]
    np.testing.assert_allclose(b(t), want, rtol=1e-6)
    dwant = [0, -0.5 * math.sin(0.5 * t), -math.sin(t), 0.5 * math.cos(0.5 * t), math.cos(t)]
    np.testing.assert_allclose(jax.jacfwd(b)(t), dwant, atol=1e-6)
    assert b.dim == 5 and b.input_dim == 1


def test_polynomial_is_legendre():
    b = B.PolynomialBasis(4, lo=0.0, hi=2.0)
    x = np.linspace(0.0, 2.0, 7)
    got = jax.vmap(b)(jnp.asarray(x))
    s = x - 1.0
    want = np.stack([np.polynomial.legendre.Legendre.basis(j)(s) for j in range(5)], axis=1)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_nodal_interpolates_and_partition_of_unity():
    b = B.NodalBasis(6, 0.0, 1.0)
    np.testing.assert_allclose(jax.vmap(b)(b.nodes), np.eye(6), atol=1e-6)
    x = jnp.linspace(0.0, 1.0, 23)
    np.testing.assert_allclose(jax.vmap(b)(x).sum(axis=1), np.ones(23), atol=1e-6)
    # w^T phi is the piecewise-linear interpolant of the nodal values w
    w = jnp.arange(6.0) ** 2
    np.testing.assert_allclose(jax.vmap(b)(x) @ w, np.interp(np.asarray(x), np.asarray(b.nodes), np.asarray(w)), atol=1e-5)


def test_space_time_values():
    b = B.SpaceTimeFourierBasis(3, 2)
    assert b.dim == 2 * 3 * 2 + 1
    z = jnp.array([0.3, 0.2])
    phi = b(z)
    # index of cos(2 x) exp(-4 t) in the cos block: (j - 1) * d_t + (m - 1) = 3, offset 1
    np.testing.assert_allclose(phi[1 + 3], math.cos(0.6) * math.exp(-0.8), rtol=1e-6)
    np.testing.assert_allclose(phi[1 + 6 + 0], math.sin(0.3) * math.exp(-0.2), rtol=1e-6)
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        b(jnp.zeros(3))


@pytest.mark.parametrize(
    "basis, pts",
    [
        (B.FourierBasis(3), [0.1, 1.3, 4.0]),
        (B.PolynomialBasis(3, -1.0, 2.0), [-0.5, 0.4, 1.9]),
        (B.NodalBasis(4, 0.0, 1.0), [0.05, 0.5, 0.9]),
        (B.SpaceTimeFourierBasis(2, 2), [(0.1, 0.2), (-1.0, 0.5)]),
    ],
)
def test_sympy_forms_match(basis, pts):
    syms = sympy.symbols(f"x0:{basis.input_dim}")
    funcs = basis.sympy_functions(syms)
    assert len(funcs) == basis.dim
    for p in pts:
        p = np.atleast_1d(np.asarray(p, dtype=float))
        sub = dict(zip(syms, p))
        want = np.array([float(f.subs(sub)) for f in funcs])
        got = basis(jnp.asarray(p[0]) if basis.input_dim == 1 else jnp.asarray(p))
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_validation_messages():
    with pytest.raises(ValueError, match="odd integer"):
        B.fourier_basis_for_dim(4)
    with pytest.raises(ValueError, match="num_frequencies"):
        B.FourierBasis(0)
    with pytest.raises(ValueError, match="lo < hi"):
        B.PolynomialBasis(2, 1.0, 0.0)
    with pytest.raises(ValueError, match="num_nodes"):
        B.NodalBasis(1)
    with pytest.raises(ValueError, match="shape \\(n,\\)"):
        B.feature_matrix(B.FourierBasis(2), jnp.zeros((3, 2)))
