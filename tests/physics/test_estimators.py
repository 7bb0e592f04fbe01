"""Ridge / PILR closed forms against direct solves; tuning; the nonlinear soft-constraint fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import physics as ph


def _problem(key, n=8, d=6, K=4):
    k1, k2, k3 = jax.random.split(key, 3)
    Phi = jax.random.normal(k1, (n, d))
    y = jax.random.normal(k2, (n,))
    D = jax.random.normal(k3, (K, d))
    return Phi, y, D


def test_closed_forms_against_stacked_least_squares():
    with jax.enable_x64(True):
        Phi, y, D = _problem(jax.random.PRNGKey(0))
        n, d = Phi.shape
        xi, nu = 0.3, 2.0
        # min ||Phi w - y||^2 + n xi ||w||^2 + n nu ||D w||^2 as one least-squares problem
        A = np.vstack([np.asarray(Phi), np.sqrt(n * xi) * np.eye(d), np.sqrt(n * nu) * np.asarray(D)])
        rhs = np.concatenate([np.asarray(y), np.zeros(d + D.shape[0])])
        want = np.linalg.lstsq(A, rhs, rcond=None)[0]
        np.testing.assert_allclose(ph.pilr(Phi, y, D, xi, nu), want, rtol=1e-10)
        want_ridge = np.linalg.solve(np.asarray(Phi.T @ Phi) + n * xi * np.eye(d), np.asarray(Phi.T @ y))
        np.testing.assert_allclose(ph.ridge(Phi, y, xi), want_ridge, rtol=1e-10)
        np.testing.assert_allclose(ph.pilr(Phi, y, D, xi, 0.0), want_ridge, rtol=1e-10)
        # the closed form is the stationary point of the soft-constraint loss
        g = jax.grad(ph.pilr_nonlinear_loss)(ph.pilr(Phi, y, D, xi, nu), Phi, y, lambda w: D @ w, xi, nu)
        np.testing.assert_allclose(g, 0.0, atol=1e-10)


def test_large_nu_projects_onto_the_kernel():
    with jax.enable_x64(True):
        Phi, y, D = _problem(jax.random.PRNGKey(1), n=10, d=5, K=3)
        w = ph.pilr(Phi, y, D, 0.0, 1e8)
        # least squares restricted to ker D: w = N a, a = argmin ||Phi N a - y||
        _, s, vt = np.linalg.svd(np.asarray(D))
        N = vt[3:].T
        a = np.linalg.lstsq(np.asarray(Phi) @ N, np.asarray(y), rcond=None)[0]
        np.testing.assert_allclose(w, N @ a, atol=1e-6)


def test_tuning_selects_validation_argmin_and_skips_nonfinite():
    with jax.enable_x64(True):
        Phi, y, D = _problem(jax.random.PRNGKey(2))
        Pv, yv, _ = _problem(jax.random.PRNGKey(3))
        xis, nus = ph.hyper_grid(jnp.array([1e-3, 1e-1, 10.0]), jnp.array([0.0, 1.0]))
        sel = ph.tune_pilr(Phi, y, D, Pv, yv, xis, nus)
        brute = [float(ph.mse(Pv, ph.pilr(Phi, y, D, a, b), yv)) for a, b in zip(xis, nus)]
        np.testing.assert_allclose(sel.val_mse, brute, rtol=1e-9)
        assert int(sel.index) == int(np.argmin(brute))
        np.testing.assert_allclose(sel.w, ph.pilr(Phi, y, D, sel.xi, sel.nu), rtol=1e-9)
        # a singular system (xi = 0, nu = 0, d > n) gives non-finite or huge weights; never chosen over a finite one
        Phi2 = Phi[:3]
        r = ph.tune_ridge(Phi2, y[:3], Pv, yv, jnp.array([0.0, 1.0]))
        assert np.isfinite(float(r.val_mse[int(r.index)]))


def test_log_uniform_candidates():
    g = ph.log_uniform_grid(1e-9, 1e2, 12)
    np.testing.assert_allclose(np.log10(g), np.linspace(-9, 2, 12), atol=1e-5)
    s = ph.log_uniform_samples(jax.random.PRNGKey(0), 2000, 1e-4, 1e2)
    assert float(s.min()) >= 1e-4 * 0.999 and float(s.max()) <= 1e2 * 1.001
    # log10 is uniform on [-4, 2]: mean -1 (2000 draws, sd of mean 0.04)
    assert abs(float(jnp.mean(jnp.log10(s))) + 1.0) < 0.2
    with pytest.raises(ValueError, match="0 < lo <= hi"):
        ph.log_uniform_grid(0.0, 1.0, 3)
    with pytest.raises(ValueError, match="Phi of shape"):
        ph.ridge(jnp.ones((3, 2)), jnp.ones(4), 1.0)


def test_nonlinear_fit_recovers_bernoulli_trajectory():
    # nonlinear Bernoulli y' = -y + 0.5 y^2, Euler with h = 0.1: PILR from the linear-part
    # warm start reaches the true trajectory far better than ridge from 6 noisy points
    with jax.enable_x64(True):
        scheme = ph.EulerBernoulliScheme(10, 0.1, 1.0, 0.5, 2)
        basis = ph.NodalBasis(11, 0.0, 1.0)
        w_true = ph.bernoulli_trajectory(scheme, jnp.asarray(1.2))
        t = jnp.array([0.05, 0.2, 0.45, 0.5, 0.7, 0.95])
        Phi = ph.feature_matrix(basis, t)
        y = Phi @ w_true + 0.01 * jax.random.normal(jax.random.PRNGKey(0), (6,))
        D_lin = ph.operator_matrix(scheme.linear_part())
        nu = 100.0
        L = lambda w: ph.pilr_nonlinear_loss(w, Phi, y, scheme.residual, 1e-8, nu)
        w0 = ph.pilr(Phi, y, D_lin, 1e-8, nu)
        w, loss = ph.pilr_nonlinear_fit(jax.random.PRNGKey(1), Phi, y, scheme.residual, 1e-8, nu, w0,
                                        num_steps=100, learning_rate=1e-3, gauss_newton_steps=8)
        # a minimiser of the loss must do at least as well as the true trajectory; the
        # linear-part warm start does far worse
        assert float(L(w)) <= float(L(w_true)) < 1e-3 * float(L(w0))
        assert abs(float(loss) - float(L(w))) < 1e-2 * float(L(w_true)) + 1e-9
        err = float(jnp.max(jnp.abs(w - w_true)))
        err_ridge = float(jnp.max(jnp.abs(ph.ridge(Phi, y, 1e-4) - w_true)))
        assert err < 0.03 < err_ridge
        P_val = ph.feature_matrix(basis, jnp.linspace(0.0, 1.0, 21))
        sel = ph.tune_pilr_nonlinear(jax.random.PRNGKey(1), Phi, y, scheme.residual, D_lin, P_val, P_val @ w_true,
                                     jnp.array([1e-8, 1e-8]), jnp.array([1e-6, nu]), num_steps=100,
                                     learning_rate=1e-3, gauss_newton_steps=8)
        assert int(sel.index) == 1
