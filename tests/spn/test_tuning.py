"""Empirical-Bayes tuning of the leaf priors: subsamples against brute force, the optimum against
scipy, and the fitted prior against the heterogeneity that generated the data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize, special

from jaxml.spn.bayes import make_normal_gamma_prior, make_prior
from jaxml.spn.structure import LeafKind
from jaxml.spn.tuning import (
    eb_objective,
    empirical_bayes_prior,
    neighbourhood_subsamples,
    subsample_log_evidence,
)


def test_subsamples_are_the_nearest_rows_in_the_other_dimensions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)) * np.array([1.0, 5.0, 0.2])
    m = 4
    # every row is an anchor once (S = N draws without replacement), so the multiset of
    # subsamples is fixed and can be compared with brute force
    subs = np.asarray(neighbourhood_subsamples(jax.random.PRNGKey(1), jnp.asarray(x),
                                               num_subsamples=12, subsample_size=m,
                                               standardize=True))
    assert subs.shape == (3, 12, m)
    z = (x - x.mean(0)) / x.std(0)
    for v in range(3):
        others = [u for u in range(3) if u != v]
        expected = []
        for a in range(12):
            dist = np.sum((z[:, others] - z[a, others]) ** 2, axis=1)
            expected.append(tuple(np.sort(x[np.argsort(dist)[:m], v])))
        got = [tuple(np.sort(row)) for row in subs[v]]
        np.testing.assert_allclose(np.array(sorted(got)), np.array(sorted(expected)), rtol=1e-5)


def _clustered_binary(key, n=3000, d=24, clusters=10, a=0.6, b=1.4):
    """Binary data from a mixture whose cluster means are p_{c,v} ~ Beta(a, b): the leaf-level
    heterogeneity EB should find (concentration a + b = 2, mean a / (a + b) = 0.3)."""
    k_p, k_c, k_x = jax.random.split(key, 3)
    p = jax.random.beta(k_p, a, b, (clusters, d))
    c = jax.random.randint(k_c, (n,), 0, clusters)
    return jax.random.bernoulli(k_x, p[c]).astype(jnp.float32)


def test_empirical_bayes_finds_the_cluster_heterogeneity_and_none_in_iid_data():
    key = jax.random.PRNGKey(0)
    clustered = _clustered_binary(key)
    # the same column means with no dependence between columns (rows shuffled per column)
    perm = jax.vmap(lambda k: jax.random.permutation(k, clustered.shape[0]))(
        jax.random.split(jax.random.PRNGKey(1), clustered.shape[1]))
    iid = jnp.take_along_axis(clustered, perm.T, axis=0)
    kw = dict(num_subsamples=48, subsample_size=40)
    eb_c = empirical_bayes_prior(jax.random.PRNGKey(2), clustered, LeafKind.BERNOULLI, **kw).leaf
    eb_i = empirical_bayes_prior(jax.random.PRNGKey(2), iid, LeafKind.BERNOULLI, **kw).leaf
    conc_c = np.asarray(eb_c.a + eb_c.b)
    conc_i = np.asarray(eb_i.a + eb_i.b)
    # neighbourhoods of 40 rows out of clusters of ~300 mix a few clusters, so the fitted spread is
    # below the true one (concentration above 2) but far from the iid case
    assert np.median(conc_c) < 8.0, conc_c
    assert np.median(conc_i) > 50.0, conc_i
    # prior means follow the column means. iid columns: 48 x 40 draws per column, standard error
    # <= 0.012; clustered columns: the 48 anchors sample the 10 clusters, whose means spread with
    # sd ~0.3, so the standard error is ~0.3 / sqrt(48) = 0.045
    col_mean = np.asarray(jnp.mean(clustered, 0))
    np.testing.assert_allclose(np.asarray(eb_i.a / (eb_i.a + eb_i.b)), col_mean, atol=0.04)
    np.testing.assert_allclose(np.asarray(eb_c.a / (eb_c.a + eb_c.b)), col_mean, atol=0.15)
    assert np.mean(np.abs(np.asarray(eb_c.a / (eb_c.a + eb_c.b)) - col_mean)) < 0.05


def test_empirical_bayes_optimum_matches_scipy_and_beats_the_default_prior():
    data = _clustered_binary(jax.random.PRNGKey(3), n=1500, d=6)
    key = jax.random.PRNGKey(4)
    s, m, scale = 32, 30, 3.0
    eb = empirical_bayes_prior(key, data, LeafKind.BERNOULLI, num_subsamples=s,
                               subsample_size=m, hyperprior_scale=scale).leaf
    subs = neighbourhood_subsamples(key, data, num_subsamples=s, subsample_size=m)
    k = np.asarray(jnp.sum(subs, axis=-1), np.float64)  # (D, S) ones per subsample

    def neg_objective(theta, kv):  # the same objective written with scipy's betaln
        mean, conc = special.expit(theta[0]), np.exp(theta[1])
        a, b = mean * conc, (1 - mean) * conc
        ev = np.sum(special.betaln(a + kv, b + m - kv) - special.betaln(a, b))
        return -(ev - 0.5 * np.sum(theta**2) / scale**2)

    for v in range(data.shape[1]):
        res = optimize.minimize(neg_objective, np.zeros(2), args=(k[v],), method="Nelder-Mead",
                                options={"xatol": 1e-6, "fatol": 1e-9, "maxiter": 4000})
        ours = np.array([np.log(eb.a[v] / eb.b[v]), np.log(eb.a[v] + eb.b[v])])
        # the objective is flat along the concentration: compare the optimum's value to 1e-3 nats
        # (of ~-600) and the coordinates to 1e-2
        assert neg_objective(ours, k[v]) < res.fun + 1e-3, (ours, res.x)
        np.testing.assert_allclose(ours, res.x, atol=1e-2)
        # the jax objective agrees with the scipy one at the optimum
        np.testing.assert_allclose(
            float(eb_objective(jnp.asarray(ours, jnp.float32), subs[v], jnp.float32(1.0),
                               jnp.float32(1 / scale**2), LeafKind.BERNOULLI)),
            neg_objective(ours, k[v]), rtol=1e-4)
    # type-II maximum likelihood: more evidence than Trapp et al.'s Beta(1/2, 1/2)
    default = make_prior(data.shape[1]).leaf
    assert bool(jnp.all(subsample_log_evidence(subs, eb) > subsample_log_evidence(subs, default)))


def test_empirical_bayes_normal_gamma_prior_matches_the_clusters():
    # 8 Gaussian clusters in 10 dimensions, cluster means ~ N(3, 2^2), within-cluster sd 0.5
    k_mu, k_c, k_x = jax.random.split(jax.random.PRNGKey(5), 3)
    mu = 3.0 + 2.0 * jax.random.normal(k_mu, (8, 10))
    c = jax.random.randint(k_c, (2000,), 0, 8)
    x = mu[c] + 0.5 * jax.random.normal(k_x, (2000, 10))
    key = jax.random.PRNGKey(6)
    eb = empirical_bayes_prior(key, x, LeafKind.GAUSSIAN, num_subsamples=48,
                               subsample_size=40).leaf
    # prior mean of the leaf means near the grand mean; prior mean of the leaf variances
    # b0 / (a0 - 1) of the order of the within-cluster variance 0.25 (not the total ~4.25)
    np.testing.assert_allclose(np.asarray(eb.mu0), np.asarray(jnp.mean(x, 0)), atol=0.8)
    var_prior = np.asarray(eb.b0 / jnp.maximum(eb.a0 - 1.0, 1e-3))
    assert np.all((var_prior > 0.05) & (var_prior < 1.5)), var_prior
    subs = neighbourhood_subsamples(key, x, num_subsamples=48, subsample_size=40,
                                    standardize=True)
    default = make_normal_gamma_prior(10, mu0=3.0).leaf
    assert bool(jnp.all(subsample_log_evidence(subs, eb) > subsample_log_evidence(subs, default)))


def test_tuning_rejects_bad_arguments():
    x = jnp.zeros((5, 3))
    with pytest.raises(ValueError, match="subsample_size"):
        neighbourhood_subsamples(jax.random.PRNGKey(0), x, num_subsamples=2, subsample_size=9)
    with pytest.raises(ValueError, match="0 or 1"):
        empirical_bayes_prior(jax.random.PRNGKey(0), x + 0.5, LeafKind.BERNOULLI)
    with pytest.raises(ValueError, match="hyperprior_scale"):
        empirical_bayes_prior(jax.random.PRNGKey(0), x, LeafKind.BERNOULLI, hyperprior_scale=0.0)
