"""Dimension estimator on varieties known by hand, and on the paper's equations."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy

from jaxml import physics as ph
from jaxml.physics import symbolic

# Hand-known varieties in R^3, residual maps and generic points on them.
_line = (lambda w: jnp.stack([w[0] - w[1], w[1] - 2.0 * w[2]]), [[2.0, 2.0, 1.0], [-4.0, -4.0, -2.0]], 1)
_plane = (lambda w: jnp.stack([w[0] + w[1] + w[2] - 1.0]), [[1.0, 0.0, 0.0], [0.5, 0.25, 0.25]], 2)
_cone = (lambda w: jnp.stack([w[0] ** 2 + w[1] ** 2 - w[2] ** 2]), [[3.0, 4.0, 5.0], [1.0, 0.0, -1.0]], 2)
_sphere = (lambda w: jnp.stack([jnp.sum(w**2) - 1.0]), [[1.0, 0.0, 0.0], [0.6, 0.0, 0.8]], 2)
_circle = (lambda w: jnp.stack([jnp.sum(w**2) - 1.0, w[2]]), [[0.6, 0.8, 0.0], [0.0, 1.0, 0.0]], 1)


@pytest.mark.parametrize("case", [_line, _plane, _cone, _sphere, _circle], ids=["line", "plane", "cone", "sphere", "circle"])
def test_hand_known_varieties(case):
    fn, pts, dim = case
    pts = jnp.asarray(pts)
    assert ph.max_residual(fn, pts) < 1e-6
    assert ph.variety_dimension(fn, pts) == dim
    np.testing.assert_array_equal(ph.tangent_dimensions(fn, pts), [dim, dim])


def test_cone_apex_is_singular_and_sympy_agrees():
    w = symbolic.weight_symbols(3)
    polys = [w[0] ** 2 + w[1] ** 2 - w[2] ** 2]
    # sympy's exact Jacobian rank at a generic point and at the apex
    assert symbolic.jacobian_rank(polys, w, [3, 4, 5]) == 1
    assert symbolic.jacobian_rank(polys, w, [0, 0, 0]) == 0
    fn = _cone[0]
    # the apex has a 3-dimensional tangent space, so the max over points is inflated there
    assert ph.variety_dimension(fn, jnp.zeros((1, 3))) == 3
    np.testing.assert_array_equal(ph.tangent_dimensions(fn, jnp.array([[3.0, 4.0, 5.0], [0.0, 0.0, 0.0]])), [2, 3])


def test_matrix_rank_tolerance():
    A = jnp.diag(jnp.array([1.0, 1e-3, 1e-9]))
    assert int(ph.matrix_rank(A)) == 2  # default rtol = 3 * eps(float32) ~ 3.6e-7
    assert int(ph.matrix_rank(A, rtol=1e-2)) == 1
    assert int(ph.matrix_rank(jnp.zeros((3, 4)))) == 0
    with pytest.raises(ValueError, match="\\(K, d\\)"):
        ph.linear_variety_dimension(jnp.ones(3))


@pytest.mark.parametrize("d", [5, 9])
def test_oscillator_dimension_two_in_both_forms(d):
    with jax.enable_x64(True):
        b = ph.fourier_basis_for_dim(d)
        op = ph.harmonic_oscillator_operator()
        ics = ph.sample_oscillator_conditions(jax.random.PRNGKey(0), 3)
        pts = ph.project_many(b, lambda th, t: ph.oscillator_solution(t, th[0], th[1]), ics, jnp.linspace(0, 2 * math.pi, 64))
        for trials in (ph.dirac(jnp.linspace(0, 2 * math.pi, 40)), ph.weak_hats_1d(0.0, 2 * math.pi, 40, order=3)):
            c = ph.OperatorConstraint(b, op, trials)
            assert ph.max_residual(c.residual, pts) < 1e-8
            assert ph.linear_variety_dimension(c.matrix()) == 2
            assert ph.variety_dimension(c.residual, pts) == 2


def test_diffusion_dimension_five():
    with jax.enable_x64(True):
        b = ph.SpaceTimeFourierBasis(4, 2)
        colloc = ph.sample_box(jax.random.PRNGKey(1), 60, (-math.pi, 0.0), (math.pi, 2 * math.pi))
        c = ph.OperatorConstraint(b, ph.HeatOperator(), ph.dirac(colloc))
        A, B = ph.sample_diffusion_conditions(jax.random.PRNGKey(2), 2)
        grid = ph.sample_box(jax.random.PRNGKey(3), 200, (-math.pi, 0.0), (math.pi, 2 * math.pi))
        pts = ph.project_many(b, lambda th, z: ph.diffusion_solution(z, th[0], th[1]), (A, B), grid)
        assert ph.max_residual(c.residual, pts) < 1e-8
        assert ph.linear_variety_dimension(c.matrix()) == 5
        assert ph.variety_dimension(c.residual, pts) == 5


@pytest.mark.parametrize("Q, rho", [(0.0, 0), (0.5, 2)])
def test_euler_bernoulli_dimension(Q, rho):
    with jax.enable_x64(True):
        scheme = ph.EulerBernoulliScheme(20, 0.05, 1.0, Q, rho)
        y0 = ph.sample_bernoulli_conditions(jax.random.PRNGKey(4), 3)
        pts = jax.vmap(lambda a: ph.bernoulli_trajectory(scheme, a))(y0)
        assert ph.max_residual(scheme.residual, pts) < 1e-9
        assert ph.variety_dimension(scheme.residual, pts) == 1
        assert ph.linear_part_lower_bound(scheme) == 1
        # fewer trial functions: each dropped residual frees one segment
        fewer = ph.EulerBernoulliScheme(20, 0.05, 1.0, Q, rho, ph.EulerBernoulliScheme.evenly_dropped(20, 3))
        assert fewer.num_trials == 17
        assert ph.variety_dimension(fewer.residual, pts) == 4


def test_fd_diffusion_nonlinear_dimension_is_grid_size():
    with jax.enable_x64(True):
        scheme = ph.FiniteDiffusionScheme(8, 5, 0.05, a0=1.0, a1=0.5)
        assert scheme.stable
        x, _ = scheme.grid
        u0 = jnp.stack([jnp.cos(jnp.asarray(x)) * a for a in (0.5, -0.8)])
        pts = jax.vmap(lambda u: ph.fd_diffusion_trajectory(scheme, u).reshape(-1))(u0)
        assert ph.max_residual(scheme.residual, pts) < 1e-9
        assert ph.variety_dimension(scheme.residual, pts) == 8
        assert ph.linear_part_lower_bound(scheme) == 8


def test_quadratic_transport_lower_bound():
    # D[f] = f' + f f' with polynomials of degree 3: V = constants (d_V = 1), except the
    # singular constant f = -1 where the Jacobian vanishes.
    with jax.enable_x64(True):
        b = ph.PolynomialBasis(3)
        c = ph.OperatorConstraint(b, ph.QuadraticTransport(1.0, 1.0), ph.dirac(jnp.linspace(-0.9, 0.9, 6)))
        pts = jnp.array([[0.3, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
        assert ph.max_residual(c.residual, pts) < 1e-12
        assert ph.variety_dimension(c.residual, pts) == 1
        assert ph.linear_part_lower_bound(c) == 1
        assert ph.variety_dimension(c.residual, jnp.array([[-1.0, 0.0, 0.0, 0.0]])) == 4
