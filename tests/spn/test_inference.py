"""Exact inference against enumeration on small D."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from jaxml.spn.inference import (
    batch_log_likelihood,
    init_params,
    log_likelihood,
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
    return st, init_params(jax.random.PRNGKey(1), st, alpha=0.5)


def test_normalised_over_all_states(spn):
    st, params = spn
    ll = batch_log_likelihood(params, ALL_X, st, batch_size=7)
    np.testing.assert_allclose(float(logsumexp(ll)), 0.0, atol=1e-5)


def test_marginals_equal_sums_of_joint(spn):
    st, params = spn
    joint = batch_log_likelihood(params, ALL_X, st).reshape((2,) * D)
    mask = jnp.array([True, False, False, True, False, True])
    marg = batch_log_likelihood(params, ALL_X, st, mask).reshape((2,) * D)
    expected = logsumexp(joint, axis=(0, 3, 5))
    np.testing.assert_allclose(np.asarray(marg[0, :, :, 0, :, 0]), np.asarray(expected),
                               atol=1e-5)
    # everything marginalised: probability one
    assert abs(float(log_likelihood(params, ALL_X[0], st, jnp.ones(D, bool)))) < 1e-5


def test_ancestral_samples_follow_the_density(spn):
    st, params = spn
    n = 20_000
    xs = jax.vmap(lambda k: sample(k, params, st))(jax.random.split(jax.random.PRNGKey(2), n))
    codes = np.asarray(xs @ (2.0 ** jnp.arange(D - 1, -1, -1))).astype(int)
    freq = np.bincount(codes, minlength=2**D) / n
    p = np.exp(np.asarray(batch_log_likelihood(params, ALL_X, st)))
    # 20k samples: per-state standard error <= sqrt(p/n) <= 0.002
    assert np.max(np.abs(freq - p) / np.sqrt(p / n + 1e-12)) < 5.0


def test_mpe_maximises_the_max_product_network(spn):
    st, params = spn

    def max_value(x):
        return upward(params, x, st, max_product=True)[0]

    best = jax.vmap(max_value)(ALL_X)
    mask = jnp.ones(D, bool)
    x_star = mpe(params, jnp.zeros(D), st, mask)
    np.testing.assert_allclose(float(max_value(x_star)), float(jnp.max(best)), atol=1e-5)
    # partial evidence: observed values are kept and the completion is the best one
    mask = jnp.array([False, True, True, False, False, True])
    x_obs = ALL_X[37]
    x_star = mpe(params, x_obs, st, mask)
    assert bool(jnp.all(jnp.where(mask, True, x_star == x_obs)))
    agree = jnp.all(jnp.where(mask[None], True, ALL_X == x_obs[None]), axis=1)
    np.testing.assert_allclose(float(max_value(x_star)),
                               float(jnp.max(jnp.where(agree, best, -jnp.inf))), atol=1e-5)


def test_gaussian_leaves_integrate_to_one_per_variable():
    cfg = RatSpnConfig(num_vars=2, depth=1, num_sums=2, num_inputs=3, num_repetitions=2,
                       leaf=LeafKind.GAUSSIAN)
    st = build_structure(jax.random.PRNGKey(3), cfg)
    params = init_params(jax.random.PRNGKey(4), st)
    grid = jnp.linspace(-8.0, 8.0, 401)
    xy = jnp.stack(jnp.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    dens = jnp.exp(batch_log_likelihood(params, xy, st))
    mass = float(jnp.sum(dens) * (grid[1] - grid[0]) ** 2)
    assert abs(mass - 1.0) < 1e-3
    # marginal of x0 integrates to one over x0 alone
    m = batch_log_likelihood(params, xy[:401 * 401:401], st, jnp.array([False, True]))
    assert abs(float(jnp.sum(jnp.exp(m)) * (grid[1] - grid[0])) - 1.0) < 1e-3


def test_data_width_mismatch_is_reported(spn):
    st, params = spn
    with pytest.raises(ValueError, match="num_vars=6"):
        batch_log_likelihood(params, jnp.zeros((3, 5)), st)
