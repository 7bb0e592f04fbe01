"""Tests for jaxml.stats.twosample: brute-force formulas, scipy agreement, test calibration."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxml.stats import twosample as ts


def _brute_mmd2(x, y, s2):
    k = lambda a, b: np.exp(-np.sum((a - b) ** 2) / (2 * s2))
    n, m = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    syy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return sxx + syy - 2 * sxy


def test_mmd2_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)).astype(np.float32)
    y = (rng.normal(size=(5, 3)) + 0.5).astype(np.float32)
    got = ts.mmd2_unbiased(jnp.asarray(x), jnp.asarray(y), sigma2=1.7)
    np.testing.assert_allclose(float(got), _brute_mmd2(x, y, 1.7), rtol=1e-4, atol=1e-6)


def test_median_bandwidth_matches_numpy():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(9, 2)).astype(np.float32)
    d = [np.sum((z[i] - z[j]) ** 2) for i in range(9) for j in range(i + 1, 9)]
    np.testing.assert_allclose(float(ts.median_bandwidth(jnp.asarray(z))), np.median(d), rtol=1e-5)


def test_energy_distance_matches_scipy_1d():
    rng = np.random.default_rng(2)
    x = rng.normal(size=30).astype(np.float32)
    y = rng.normal(loc=0.7, size=25).astype(np.float32)
    got = ts.energy_distance(jnp.asarray(x)[:, None], jnp.asarray(y)[:, None])
    np.testing.assert_allclose(np.sqrt(float(got)), scipy.stats.energy_distance(x, y), rtol=1e-4)


def test_permutation_tests_detect_shift_and_accept_null():
    # 60 + 60 points in 4-D; a mean shift of 1.0 is detected by both tests (p <= 0.01 with 199
    # permutations), and identical distributions are not rejected at 1%.
    kx, ky, kz, kp = jax.random.split(jax.random.key(0), 4)
    x = jax.random.normal(kx, (60, 4))
    y = jax.random.normal(ky, (60, 4)) + 1.0
    z = jax.random.normal(kz, (60, 4))
    for test in (ts.mmd_test, ts.energy_test):
        run = jax.jit(lambda a, b: test(kp, a, b, num_permutations=199))
        alt = run(x, y)
        null = run(x, z)
        assert float(alt.p_value) <= 0.01
        assert float(null.p_value) > 0.01
        assert float(alt.statistic) > float(alt.null_mean)


def test_permutation_pvalue_is_roughly_uniform_under_null():
    # 40 null replicates of 20 vs 20 points, 49 permutations each: the rejection rate at 10%
    # is a Binomial(40, 0.1) draw; allow up to 10 rejections (P(X > 10) < 0.002).
    def one(k):
        a, b, c = jax.random.split(k, 3)
        return ts.mmd_test(c, jax.random.normal(a, (20, 2)), jax.random.normal(b, (20, 2)),
                           num_permutations=49).p_value
    ps = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), 40))
    assert int(jnp.sum(ps <= 0.1)) <= 10
    assert float(jnp.min(ps)) >= 1.0 / 50.0 - 1e-6


def test_bad_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="2-D"):
        ts.mmd2_unbiased(jnp.zeros(5), jnp.zeros((5, 1)))
    with pytest.raises(ValueError, match="feature dimensions"):
        ts.energy_distance(jnp.zeros((5, 2)), jnp.zeros((5, 3)))
    with pytest.raises(ValueError, match="num_permutations"):
        ts.mmd_test(jax.random.key(0), jnp.zeros((5, 2)), jnp.ones((5, 2)), num_permutations=0)
