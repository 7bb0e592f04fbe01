"""Tests for jaxml.stats.diversity and jaxml.stats.intervals: closed forms and scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxml.stats import diversity as dv
from jaxml.stats import intervals as iv


def test_vendi_identical_is_one_and_orthogonal_is_n():
    x = jnp.ones((7, 3))
    np.testing.assert_allclose(float(dv.vendi_score(x)), 1.0, rtol=1e-4)
    np.testing.assert_allclose(float(dv.vendi_score(jnp.eye(5))), 5.0, rtol=1e-4)


def test_vendi_two_clusters_is_two():
    # Two groups of identical, mutually orthogonal items: exactly 2 effective items.
    x = jnp.concatenate([jnp.tile(jnp.array([[1.0, 0.0]]), (4, 1)),
                         jnp.tile(jnp.array([[0.0, 1.0]]), (4, 1))])
    np.testing.assert_allclose(float(dv.vendi_score(x)), 2.0, rtol=1e-4)
    # unequal groups 6:2 give exp(H(0.75, 0.25))
    x = jnp.concatenate([jnp.tile(jnp.array([[1.0, 0.0]]), (6, 1)),
                         jnp.tile(jnp.array([[0.0, 1.0]]), (2, 1))])
    np.testing.assert_allclose(float(dv.vendi_score(x)), np.exp(scipy.stats.entropy([0.75, 0.25])),
                               rtol=1e-4)


def test_entropy_tv_kl_match_scipy():
    p = jnp.array([0.5, 0.3, 0.2, 0.0])
    q = jnp.array([0.25, 0.25, 0.25, 0.25])
    np.testing.assert_allclose(float(dv.entropy(p)), scipy.stats.entropy(np.asarray(p)), rtol=1e-5)
    np.testing.assert_allclose(float(dv.kl_divergence(p, q)),
                               scipy.stats.entropy(np.asarray(p), np.asarray(q)), rtol=1e-5)
    np.testing.assert_allclose(float(dv.total_variation(p, q)), 0.5 * (0.25 + 0.05 + 0.05 + 0.25),
                               rtol=1e-6)
    np.testing.assert_allclose(float(dv.effective_number(q)), 4.0, rtol=1e-5)
    assert np.isinf(float(dv.kl_divergence(q, p)))
    assert np.isfinite(float(dv.kl_divergence(q, p, eps=1e-3)))
    np.testing.assert_allclose(np.asarray(dv.counts_to_probs(jnp.array([3, 1]))), [0.75, 0.25])
    with pytest.raises(ValueError, match="same length"):
        dv.total_variation(p, q[:3])


def test_chisquare_matches_scipy():
    obs = np.array([18, 30, 52])
    probs = np.array([0.2, 0.3, 0.5])
    got = iv.chisquare_gof(jnp.asarray(obs), jnp.asarray(probs))
    ref = scipy.stats.chisquare(obs, probs * obs.sum())
    np.testing.assert_allclose(float(got.statistic), ref.statistic, rtol=1e-5)
    np.testing.assert_allclose(float(got.p_value), ref.pvalue, rtol=1e-4)
    assert got.dof == 2
    with pytest.raises(ValueError, match="sum to 1"):
        iv.chisquare_gof(jnp.asarray(obs), jnp.array([0.2, 0.3, 0.4]))
    with pytest.raises(ValueError, match="> 0"):
        iv.chisquare_gof(jnp.asarray(obs), jnp.array([0.0, 0.5, 0.5]))


def test_wilson_interval_closed_form_and_coverage():
    est = iv.wilson_interval(7, 20)
    # Reference from the formula in Brown, Cai & DasGupta (2001), z = 1.959964.
    z, p, n = 1.959963985, 0.35, 20
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    np.testing.assert_allclose([float(est.low), float(est.high)], [c - h, c + h], rtol=1e-5)
    # coverage over 4000 Binomial(50, 0.3) draws is within [0.93, 0.97]
    draws = np.random.default_rng(0).binomial(50, 0.3, size=4000)
    ci = iv.wilson_interval(jnp.asarray(draws), 50)
    cover = float(jnp.mean((ci.low <= 0.3) & (0.3 <= ci.high)))
    assert 0.93 <= cover <= 0.97
    with pytest.raises(ValueError, match="level"):
        iv.wilson_interval(1, 2, level=1.5)


def test_bootstrap_ci_brackets_the_mean():
    x = jax.random.normal(jax.random.key(1), (400,)) + 2.0
    ci = jax.jit(lambda k, d: iv.bootstrap_ci(k, d, jnp.mean, num_resamples=400))(
        jax.random.key(2), x)
    assert float(ci.low) < float(ci.estimate) < float(ci.high)
    # half-width ~ 1.96 / sqrt(400) = 0.098
    assert 0.07 < float(ci.high - ci.low) / 2 < 0.13
