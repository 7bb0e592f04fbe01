"""Collapsed formulas against direct integration; both samplers against exact posteriors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from jax.scipy.special import gammaln, logsumexp
from scipy import integrate, stats

from jaxml.spn.bayes import (
    SamplerKind,
    collapsed_log_joint,
    count_layout,
    counts_from_trees,
    make_prior,
    make_sampler,
    posterior_predictive_ll,
    predictive_params,
    random_trees,
)
from jaxml.spn.inference import batch_log_likelihood, init_params, sample
from jaxml.spn.structure import RatSpnConfig, build_structure, choices_per_level

TINY = RatSpnConfig(num_vars=4, depth=2, num_sums=2, num_inputs=2, num_repetitions=1)
X_TINY = jnp.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0]], jnp.float32)


def all_trees(cfg):
    c = choices_per_level(cfg)
    per = [range(c[m]) for m in range(cfg.depth) for _ in range(2**m)]
    return np.array(list(itertools.product(*per)), np.int32)


def test_beta_bernoulli_marginal_matches_quadrature():
    # one leaf: n = 5 data with k = 3 ones under Beta(a, b); the collapsed factor is
    # B(a + k, b + n - k) / B(a, b) = int p^k (1 - p)^(n - k) Beta(p; a, b) dp
    a, b, n, k = 0.7, 1.3, 5, 3
    direct, _ = integrate.quad(lambda p: p**k * (1 - p) ** (n - k) * stats.beta.pdf(p, a, b), 0, 1)
    cfg = RatSpnConfig(num_vars=2, depth=1, num_sums=1, num_inputs=1)
    st = build_structure(jax.random.PRNGKey(0), cfg)
    x = jnp.array([[1, 0], [1, 0], [1, 0], [0, 0], [0, 0]], jnp.float32)
    z = jnp.zeros((n, 1), jnp.int32)  # the only tree
    prior = make_prior(2, alpha=1.0, a=jnp.array([a, 1.0]), b=jnp.array([b, 1.0]))
    lj = collapsed_log_joint(counts_from_trees(z, x, st), st, prior)
    # variable 1 is always 0 under Beta(1, 1): factor 1 / (n + 1); the root has one child
    np.testing.assert_allclose(float(lj), np.log(direct) - np.log(n + 1), rtol=1e-5)


def test_collapsed_joint_matches_numpyro_compound_distributions():
    st = build_structure(jax.random.PRNGKey(1), TINY)
    prior = make_prior(4, alpha=0.6, a=0.5, b=0.8)
    z = random_trees(jax.random.PRNGKey(2), 3, st)
    counts = counts_from_trees(z, X_TINY, st)
    layout = count_layout(st)
    c = choices_per_level(TINY)
    # Dirichlet-multinomial over sequences = DirichletMultinomial(counts) / multinomial coefficient
    expected = 0.0
    blocks = [counts[layout.edge[0]:layout.edge[0] + c[0]].reshape(1, -1),
              counts[layout.edge[1]:layout.edge[1] + 2 * 2 * c[1]].reshape(-1, c[1])]
    for e in blocks:
        for row in e:
            total = jnp.sum(row)
            lp = dist.DirichletMultinomial(jnp.full(row.shape, 0.6), total_count=total).log_prob(row)
            expected += lp - (gammaln(total + 1) - jnp.sum(gammaln(row + 1)))
    leaf_n = counts[layout.leaf_n:layout.leaf_n + 4 * 2].reshape(1, 4, 2)
    ones = counts[layout.ones:layout.ones + 4 * 2].reshape(1, 4, 2)
    n_of_v = jnp.take_along_axis(leaf_n, st.leaf_of[:, :, None], axis=1)
    bb = dist.BetaBinomial(jnp.full((1, 4, 2), 0.5), jnp.full((1, 4, 2), 0.8),
                           total_count=n_of_v).log_prob(ones)
    from jax.scipy.special import gammaln as g
    log_binom = g(n_of_v + 1) - g(ones + 1) - g(n_of_v - ones + 1)
    expected += jnp.sum(bb - log_binom)
    np.testing.assert_allclose(float(collapsed_log_joint(counts, st, prior)), float(expected),
                               rtol=1e-5)


def test_predictive_params_equal_the_collapsed_one_step_predictive():
    # p(x* | X, Z) = sum_{z*} p(X, x*, Z, z*) / p(X, Z): enumerate the new datum's tree
    st = build_structure(jax.random.PRNGKey(3), TINY)
    prior = make_prior(4, alpha=0.6, a=0.5, b=0.8)
    z = random_trees(jax.random.PRNGKey(4), 3, st)
    base = collapsed_log_joint(counts_from_trees(z, X_TINY, st), st, prior)
    trees = jnp.asarray(all_trees(TINY))
    params = predictive_params(counts_from_trees(z, X_TINY, st), st, prior)
    for x_new in ([0, 1, 1, 0], [1, 1, 0, 1]):
        x_new = jnp.array(x_new, jnp.float32)
        xs = jnp.concatenate([X_TINY, x_new[None]])
        lj = jax.vmap(lambda t: collapsed_log_joint(
            counts_from_trees(jnp.concatenate([z, t[None]]), xs, st), st, prior))(trees)
        exact = logsumexp(lj) - base
        plug_in = batch_log_likelihood(params, x_new[None], st)[0]
        np.testing.assert_allclose(float(plug_in), float(exact), atol=1e-4)


@pytest.mark.parametrize("kind", list(SamplerKind))
def test_samplers_target_the_exact_posterior(kind):
    # two data, every joint configuration of their trees enumerated (64**2 states); statistic:
    # the posterior probability that both data pick the same tree
    st = build_structure(jax.random.PRNGKey(0), TINY)
    x = X_TINY[:2]
    prior = make_prior(4, alpha=0.7, a=0.5, b=0.8)
    trees = all_trees(TINY)
    t = len(trees)
    configs = np.array(list(itertools.product(range(t), repeat=2)))
    z_all = jnp.asarray(trees[configs])
    lj = jax.vmap(lambda z: collapsed_log_joint(counts_from_trees(z, x, st), st, prior))(z_all)
    post = np.exp(np.asarray(lj - logsumexp(lj)))
    p_same = post[configs[:, 0] == configs[:, 1]].sum()
    chains = 4000
    sampler = make_sampler(kind, st, x, prior)
    state = jax.vmap(sampler.init)(jax.random.split(jax.random.PRNGKey(5), chains))
    step = jax.jit(jax.vmap(sampler.step))
    for i in range(12):
        state, info = step(jax.random.split(jax.random.PRNGKey(100 + i), chains), state)
    same = np.mean(np.all(np.asarray(state.choices[:, 0] == state.choices[:, 1]), axis=-1))
    se = np.sqrt(p_same * (1 - p_same) / chains)  # 4000 independent chains
    assert abs(same - p_same) < 4 * se, (same, p_same, se)
    # the count buffer stays the sufficient statistic of the trees
    recount = jax.vmap(lambda z: counts_from_trees(z, x, st))(state.choices)
    np.testing.assert_allclose(np.asarray(recount), np.asarray(state.counts), atol=1e-4)
    if kind is SamplerKind.TOP_DOWN:
        assert 0.2 < float(jnp.mean(info.acceptance_rate)) < 1.0


@pytest.fixture(scope="module")
def generated():
    cfg = RatSpnConfig(num_vars=8, depth=2, num_sums=2, num_inputs=2, num_repetitions=1)
    st = build_structure(jax.random.PRNGKey(10), cfg)
    params = init_params(jax.random.PRNGKey(11), st, alpha=1.0)
    # sharpen the leaves so the mixture structure matters
    params["leaf"]["logit"] = 3.0 * jnp.sign(params["leaf"]["logit"])
    xs = jax.vmap(lambda k: sample(k, params, st))(jax.random.split(jax.random.PRNGKey(12), 3000))
    train, test = xs[:2000], xs[2000:]
    true_ll = float(jnp.mean(batch_log_likelihood(params, test, st)))
    p = (jnp.mean(train, 0) * 2000 + 0.5) / 2001
    indep = float(jnp.mean(test @ jnp.log(p) + (1 - test) @ jnp.log1p(-p)))
    return st, train, test, true_ll, indep


@pytest.mark.parametrize("kind", list(SamplerKind))
def test_samplers_recover_a_generating_spn_deterministically(generated, kind):
    st, train, test, true_ll, indep = generated
    prior = make_prior(8)
    sampler = make_sampler(kind, st, train, prior)
    step = jax.jit(sampler.step)
    state = sampler.init(jax.random.PRNGKey(0))
    kept = []
    for i in range(30):
        state, _ = step(jax.random.PRNGKey(i + 1), state)
        if i == 1:
            early = state
        if i >= 20:
            kept.append(state.counts)
    ll = float(posterior_predictive_ll(kept, test, st, prior))
    assert indep < true_ll - 0.3  # the task needs the mixture
    assert ll > true_ll - 0.1, (ll, true_ll, indep)
    # same keys, same chain
    again = sampler.init(jax.random.PRNGKey(0))
    for i in range(2):
        again, _ = step(jax.random.PRNGKey(i + 1), again)
    np.testing.assert_array_equal(np.asarray(again.choices), np.asarray(early.choices))
    np.testing.assert_array_equal(np.asarray(again.counts), np.asarray(early.counts))


def test_samplers_reject_bad_data():
    st = build_structure(jax.random.PRNGKey(0), TINY)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        make_sampler(SamplerKind.TOP_DOWN, st, jnp.zeros((5, 3)), make_prior(4))
    with pytest.raises(ValueError, match="alpha"):
        make_prior(4, alpha=0.0)
