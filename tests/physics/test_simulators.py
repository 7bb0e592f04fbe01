"""Simulators: exact solutions satisfy their equations; truncation; validation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import physics as ph


def test_oscillator_and_diffusion_solve_their_equations():
    with jax.enable_x64(True):
        f = lambda t: ph.oscillator_solution(t, 0.7, -1.3)
        t = jnp.linspace(0.0, 6.0, 9)
        res = jax.jit(jax.vmap(lambda s: ph.harmonic_oscillator_operator().apply(f, s)))(t)  # one compile
        np.testing.assert_allclose(res, 0.0, atol=1e-12)
        np.testing.assert_allclose(f(0.0), 0.7)
        A, B = jnp.array([0.3, 1.2, -0.4]), jnp.array([0.0, 0.5, 2.0])
        u = lambda z: ph.diffusion_solution(z, A, B)
        z = ph.sample_box(jax.random.PRNGKey(0), 7, (-math.pi, 0.0), (math.pi, 1.0))
        res = jax.jit(jax.vmap(lambda p: ph.HeatOperator().apply(u, p)))(z)
        np.testing.assert_allclose(res, 0.0, atol=1e-12)
        np.testing.assert_allclose(u(jnp.array([0.0, 0.0])), 0.3 + 1.2 - 0.4)


def test_bernoulli_trajectory_matches_exact_solution_as_h_shrinks():
    # y' = -y + 0.5 y^2 has 1/y = 0.5 + (1/y0 - 0.5) e^t; Euler is first order
    with jax.enable_x64(True):
        y0 = 0.8
        exact = 1.0 / (0.5 + (1.0 / y0 - 0.5) * math.e)
        errs = []
        for n in (100, 200):
            s = ph.EulerBernoulliScheme(n, 1.0 / n, 1.0, 0.5, 2)
            errs.append(abs(float(ph.bernoulli_trajectory(s, jnp.asarray(y0))[-1]) - exact))
        assert errs[1] < errs[0] < 0.01
        assert 1.7 < errs[0] / errs[1] < 2.3
        y = ph.sample_bernoulli_conditions(jax.random.PRNGKey(1), 5000)
        assert float(jnp.max(jnp.abs(y))) <= 3.0


def test_projection_recovers_coefficients():
    with jax.enable_x64(True):
        b = ph.fourier_basis_for_dim(5)
        w = ph.project_onto_basis(b, lambda t: ph.oscillator_solution(t, 2.0, 3.0), jnp.linspace(0, 2 * math.pi, 50))
        np.testing.assert_allclose(w, [0, 0, 2.0, 0, 3.0], atol=1e-10)


def test_validation():
    with pytest.raises(ValueError, match="lows < highs"):
        ph.sample_box(jax.random.PRNGKey(0), 3, (1.0,), (0.0,))
    with pytest.raises(ValueError, match="sigma"):
        ph.noisy_observations(jax.random.PRNGKey(0), jnp.zeros(3), -1.0)
    with pytest.raises(ValueError, match="u0 must have shape"):
        ph.fd_diffusion_trajectory(ph.FiniteDiffusionScheme(4, 2, 0.01), jnp.zeros(3))
