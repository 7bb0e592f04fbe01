"""Exact inference against enumeration on small D.

Computations are jitted: eager JAX compiles every primitive on its own, which is slower here.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from jaxml.spn.inference import (
    batch_log_likelihood,
    init_params,
    mpe,
    sample,
    upward,
)
from jaxml.spn.structure import LeafKind, RatSpnConfig, build_structure

D = 6
ALL_X = jnp.asarray(list(itertools.product([0, 1], repeat=D)), jnp.float32)


@pytest.fixture(scope="module")
def spn():
    cfg = RatSpnConfig(num_vars=D, depth=2, num_sums=3, num_inputs=2, num_repetitions=2)
    st = build_structure(jax.random.PRNGKey(0), cfg)
    return st, jax.jit(functools.partial(init_params, alpha=0.5))(jax.random.PRNGKey(1), st)


def test_normalised_over_all_states(spn):
    st, params = spn
    ll = jax.jit(lambda p: batch_log_likelihood(p, ALL_X, st, batch_size=7))(params)
    np.testing.assert_allclose(float(logsumexp(ll)), 0.0, atol=1e-5)


def test_marginals_equal_sums_of_joint(spn):
    st, params = spn
    ll = jax.jit(lambda p, m: batch_log_likelihood(p, ALL_X, st, m))
    joint = ll(params, jnp.zeros(D, bool)).reshape((2,) * D)
    mask = jnp.array([True, False, False, True, False, True])
    marg = ll(params, mask).reshape((2,) * D)
    expected = logsumexp(joint, axis=(0, 3, 5))
    np.testing.assert_allclose(np.asarray(marg[0, :, :, 0, :, 0]), np.asarray(expected),
                               atol=1e-5)
    # everything marginalised: probability one
    assert abs(float(ll(params, jnp.ones(D, bool))[0])) < 1e-5


def test_ancestral_samples_follow_the_density(spn):
    st, params = spn
    n = 20_000
    xs = jax.jit(jax.vmap(lambda k: sample(k, params, st)))(
        jax.random.split(jax.random.PRNGKey(2), n))
    codes = np.asarray(xs @ (2.0 ** jnp.arange(D - 1, -1, -1))).astype(int)
    freq = np.bincount(codes, minlength=2**D) / n
    p = np.exp(np.asarray(jax.jit(lambda: batch_log_likelihood(params, ALL_X, st))()))
    # 20k samples: per-state standard error <= sqrt(p/n) <= 0.002
    assert np.max(np.abs(freq - p) / np.sqrt(p / n + 1e-12)) < 5.0


def test_mpe_maximises_the_max_product_network(spn):
    st, params = spn

    @jax.jit
    def max_value(x):
        return upward(params, x, st, max_product=True)[0]

    complete = jax.jit(lambda x, m: mpe(params, x, st, m))
    best = jax.jit(jax.vmap(max_value))(ALL_X)
    mask = jnp.ones(D, bool)
    x_star = complete(jnp.zeros(D), mask)
    np.testing.assert_allclose(float(max_value(x_star)), float(jnp.max(best)), atol=1e-5)
    # partial evidence: observed values are kept and the completion is the best one
    mask = jnp.array([False, True, True, False, False, True])
    x_obs = ALL_X[37]
    x_star = complete(x_obs, mask)
    assert bool(jnp.all(jnp.where(mask, True, x_star == x_obs)))
    agree = jnp.all(jnp.where(mask[None], True, ALL_X == x_obs[None]), axis=1)
    np.testing.assert_allclose(float(max_value(x_star)),
                               float(jnp.max(jnp.where(agree, best, -jnp.inf))), atol=1e-5)


@pytest.mark.parametrize("student_t", [False, True], ids=["normal", "student_t"])
def test_gaussian_leaves_integrate_to_one_per_variable(student_t):
    cfg = RatSpnConfig(num_vars=2, depth=1, num_sums=2, num_inputs=3, num_repetitions=2,
                       leaf=LeafKind.GAUSSIAN)
    st = build_structure(jax.random.PRNGKey(3), cfg)
    params = jax.jit(init_params)(jax.random.PRNGKey(4), st)
    if student_t:  # the collapsed Normal-Gamma predictive: heavier tails, 5 to 9 d.o.f.
        params["leaf"]["df"] = 5.0 + 4.0 * jax.random.uniform(jax.random.PRNGKey(5),
                                                              params["leaf"]["mean"].shape)
    grid = jnp.linspace(-8.0, 8.0, 401)
    h = float(grid[1] - grid[0])
    xy = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    ll = jax.jit(lambda p, x, m: batch_log_likelihood(p, x, st, m))
    mass = float(jnp.sum(jnp.exp(ll(params, xy, jnp.zeros(2, bool)))) * h**2)
    # Student-t tails beyond |x| = 8 hold up to ~1e-3 of the mass at 5 d.o.f.
    assert abs(mass - 1.0) < (3e-3 if student_t else 1e-3)
    # marginal of x0 integrates to one over x0 alone
    m = ll(params, xy[:401 * 401:401], jnp.array([False, True]))
    assert abs(float(jnp.sum(jnp.exp(m)) * h) - 1.0) < (2e-3 if student_t else 1e-3)
    # ancestral samples of a Student-t SPN have the SPN's mean (4,000 samples; per-coordinate sd
    # about 1.5, so the standard error of each sample mean is about 0.025)
    if student_t:
        xs = jax.jit(jax.vmap(lambda k: sample(k, params, st)))(
            jax.random.split(jax.random.PRNGKey(6), 4000))
        dens = jnp.exp(ll(params, xy, jnp.zeros(2, bool)))
        mean = jnp.sum(dens[:, None] * xy, axis=0) * h**2
        np.testing.assert_allclose(np.asarray(jnp.mean(xs, 0)), np.asarray(mean), atol=0.1)


def test_data_width_mismatch_is_reported(spn):
    st, params = spn
    with pytest.raises(ValueError, match="num_vars=6"):
        batch_log_likelihood(params, jnp.zeros((3, 5)), st)
