"""Collapsed formulas against direct integration; both samplers against exact posteriors and
known generating SPNs, for Bernoulli and Gaussian leaves.

Everything that runs more than a handful of operations is jitted once: eager JAX compiles every
primitive separately, which made this file take minutes. Small workloads whose time is nearly all
XLA compilation are compiled with the CPU backend's optimisation level 0 (``FAST_COMPILE``): the
same program, compiled about twice as fast; runs with heavy compute (4,000 bottom-up chains) keep
the default.
"""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest
from jax.scipy.special import gammaln, logsumexp
from scipy import integrate, stats

from jaxml.spn.bayes import (
    LeafStats,
    SamplerKind,
    collapsed_log_joint,
    count_layout,
    counts_from_trees,
    leaf_log_marginal,
    leaf_log_predictive,
    make_normal_gamma_prior,
    make_prior,
    make_sampler,
    posterior_predictive_ll,
    predictive_params,
    random_trees,
)
from jaxml.spn.inference import batch_log_likelihood, init_params, sample
from jaxml.spn.structure import LeafKind, RatSpnConfig, build_structure, choices_per_level

FAST_COMPILE = {"xla_backend_optimization_level": 0}
TINY = RatSpnConfig(num_vars=4, depth=2, num_sums=2, num_inputs=2, num_repetitions=1)
TINY_G = RatSpnConfig(num_vars=4, depth=2, num_sums=2, num_inputs=2, num_repetitions=1,
                      leaf=LeafKind.GAUSSIAN)
X_TINY = jnp.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 0, 1, 0]], jnp.float32)
X_TINY_G = jnp.array([[0.3, -1.2, 0.8, 2.0], [0.1, -0.9, 1.5, -0.4], [-1.0, 0.2, 0.0, 0.7]],
                     jnp.float32)


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
    lj = jax.jit(lambda z: collapsed_log_joint(counts_from_trees(z, x, st), st, prior))(z)
    # variable 1 is always 0 under Beta(1, 1): factor 1 / (n + 1); the root has one child
    np.testing.assert_allclose(float(lj), np.log(direct) - np.log(n + 1), rtol=1e-5)


def test_normal_gamma_evidence_and_predictive_match_direct_integration():
    # p(X) = int int prod_i N(x_i; mu, 1/tau) N(mu; mu0, 1/(kappa0 tau)) Gamma(tau; a0, b0)
    mu0, kappa0, a0, b0 = 0.4, 1.7, 2.5, 1.3
    xs = np.array([0.2, 1.1, -0.5])

    def integrand(mu, tau, data):
        # the three densities written out (scipy.stats pdfs are ~15x slower inside dblquad)
        log_like = sum(-0.5 * tau * (x - mu) ** 2 + 0.5 * math.log(tau / (2 * math.pi))
                       for x in data)
        log_mu = -0.5 * kappa0 * tau * (mu - mu0) ** 2 + 0.5 * math.log(kappa0 * tau / (2 * math.pi))
        log_tau = a0 * math.log(b0) - math.lgamma(a0) + (a0 - 1) * math.log(tau) - b0 * tau
        return math.exp(log_like + log_mu + log_tau)

    def direct(data):
        val, _ = integrate.dblquad(lambda mu, tau: integrand(mu, tau, data), 1e-12, 40, -12, 12,
                                   epsabs=1e-13, epsrel=1e-9)
        return val

    prior = make_normal_gamma_prior(1, mu0=mu0, kappa0=kappa0, a0=a0, b0=b0).leaf

    def st_of(data):
        d = jnp.asarray(data, jnp.float32)
        return LeafStats(jnp.array([len(data)], jnp.float32), jnp.sum(d)[None], jnp.sum(d**2)[None])

    np.testing.assert_allclose(float(leaf_log_marginal(st_of(xs), prior)[0]), np.log(direct(xs)),
                               rtol=1e-5)
    # the Student-t predictive is the ratio of evidences p(X, x*) / p(X); n = 0 gives the prior
    for x_new in (-0.7, 2.3):
        ratio = (leaf_log_marginal(st_of(np.append(xs, x_new)), prior)
                 - leaf_log_marginal(st_of(xs), prior))[0]
        pred = leaf_log_predictive(jnp.array([x_new]), st_of(xs), prior)[0]
        np.testing.assert_allclose(float(pred), float(ratio), atol=1e-5)
    empty = LeafStats(jnp.zeros(1), jnp.zeros(1), jnp.zeros(1))
    np.testing.assert_allclose(float(leaf_log_predictive(jnp.array([0.9]), empty, prior)[0]),
                               np.log(direct(np.array([0.9]))), rtol=1e-5)


def test_collapsed_joint_matches_numpyro_compound_distributions():
    st = build_structure(jax.random.PRNGKey(1), TINY)
    prior = make_prior(4, alpha=0.6, a=0.5, b=0.8)
    layout = count_layout(st)
    c = choices_per_level(TINY)

    @jax.jit
    def both(key):
        counts = counts_from_trees(random_trees(key, 3, st), X_TINY, st)
        # Dirichlet-multinomial over sequences = DirichletMultinomial / multinomial coefficient
        expected = 0.0
        for rows in (counts[layout.edge[0]:layout.edge[0] + c[0]].reshape(1, -1),
                     counts[layout.edge[1]:layout.edge[1] + 2 * 2 * c[1]].reshape(-1, c[1])):
            total = jnp.sum(rows, axis=-1)
            lp = dist.DirichletMultinomial(jnp.full(rows.shape, 0.6),
                                           total_count=total).log_prob(rows)
            expected += jnp.sum(lp - (gammaln(total + 1) - jnp.sum(gammaln(rows + 1), axis=-1)))
        leaf_n = counts[layout.leaf_n:layout.leaf_n + 4 * 2].reshape(1, 4, 2)
        ones = counts[layout.ones:layout.ones + 4 * 2].reshape(1, 4, 2)
        n_of_v = jnp.take_along_axis(leaf_n, st.leaf_of[:, :, None], axis=1)
        bb = dist.BetaBinomial(jnp.full((1, 4, 2), 0.5), jnp.full((1, 4, 2), 0.8),
                               total_count=n_of_v).log_prob(ones)
        log_binom = gammaln(n_of_v + 1) - gammaln(ones + 1) - gammaln(n_of_v - ones + 1)
        expected += jnp.sum(bb - log_binom)
        return collapsed_log_joint(counts, st, prior), expected

    for seed in (2, 3):
        got, expected = both(jax.random.PRNGKey(seed))
        np.testing.assert_allclose(float(got), float(expected), rtol=1e-5)


@pytest.mark.parametrize("cfg, x, prior", [
    (TINY, X_TINY, make_prior(4, alpha=0.6, a=0.5, b=0.8)),
    (TINY_G, X_TINY_G, make_normal_gamma_prior(4, alpha=0.6, mu0=0.2, kappa0=0.5, a0=1.5, b0=0.7)),
], ids=["bernoulli", "gaussian"])
def test_predictive_params_equal_the_collapsed_one_step_predictive(cfg, x, prior):
    # p(x* | X, Z) = sum_{z*} p(X, x*, Z, z*) / p(X, Z): enumerate the new datum's tree
    st = build_structure(jax.random.PRNGKey(3), cfg)
    z = random_trees(jax.random.PRNGKey(4), 3, st)
    trees = jnp.asarray(all_trees(cfg))
    x_new = x[::-1][:2] * 0.9  # two new data (binary stays binary: 0.9 * 1 > 0.5 reads as 1)
    if cfg.leaf is LeafKind.BERNOULLI:
        x_new = (x_new > 0.5).astype(jnp.float32)

    @jax.jit
    def both(xn):
        base = collapsed_log_joint(counts_from_trees(z, x, st), st, prior)
        xs = jnp.concatenate([x, xn[None]])
        lj = jax.vmap(lambda t: collapsed_log_joint(
            counts_from_trees(jnp.concatenate([z, t[None]]), xs, st), st, prior))(trees)
        params = predictive_params(counts_from_trees(z, x, st), st, prior)
        return logsumexp(lj) - base, batch_log_likelihood(params, xn[None], st)[0]

    for xn in x_new:
        exact, plug_in = both(xn)
        np.testing.assert_allclose(float(plug_in), float(exact), atol=1e-4)


BERNOULLI_CASE = (TINY, X_TINY[:2], make_prior(4, alpha=0.7, a=0.5, b=0.8))
GAUSSIAN_CASE = (TINY_G, X_TINY_G[:2],
                 make_normal_gamma_prior(4, alpha=0.7, kappa0=0.5, a0=1.5, b0=0.7))


@pytest.mark.parametrize("case, kind, kwargs", [
    (BERNOULLI_CASE, SamplerKind.BOTTOM_UP, {}),
    # default blocks: both data in one block, proposals from the frozen counts + MH correction
    (BERNOULLI_CASE, SamplerKind.TOP_DOWN, {}),
    # blocks of one: the paper's move (proposal = collapsed prior, no correction)
    (BERNOULLI_CASE, SamplerKind.TOP_DOWN, {"block_size": 1}),
    (GAUSSIAN_CASE, SamplerKind.BOTTOM_UP, {}),
    (GAUSSIAN_CASE, SamplerKind.TOP_DOWN, {}),
], ids=["bernoulli-bottom_up", "bernoulli-top_down", "bernoulli-top_down-block1",
        "gaussian-bottom_up", "gaussian-top_down"])
def test_samplers_target_the_exact_posterior(case, kind, kwargs):
    # two data, every joint configuration of their trees enumerated (64**2 states); statistic:
    # the posterior probability that both data pick the same tree
    cfg, x, prior = case
    st = build_structure(jax.random.PRNGKey(0), cfg)
    trees = all_trees(cfg)
    t = len(trees)
    configs = np.array(list(itertools.product(range(t), repeat=2)))
    z_all = jnp.asarray(trees[configs])
    lj = jax.jit(jax.vmap(lambda z: collapsed_log_joint(counts_from_trees(z, x, st), st,
                                                        prior)))(z_all)
    post = np.exp(np.asarray(lj - logsumexp(lj)))
    p_same = post[configs[:, 0] == configs[:, 1]].sum()
    chains, sweeps = 4000, 12
    sampler = make_sampler(kind, st, x, prior, **kwargs)
    options = {} if kind is SamplerKind.BOTTOM_UP else FAST_COMPILE

    @functools.partial(jax.jit, compiler_options=options)
    def run(key):
        key_init, key_run = jax.random.split(key)
        state = jax.vmap(sampler.init)(jax.random.split(key_init, chains))

        def sweep(state, k):
            return jax.vmap(sampler.step)(jax.random.split(k, chains), state)

        return jax.lax.scan(sweep, state, jax.random.split(key_run, sweeps))

    state, info = run(jax.random.PRNGKey(5))
    same = np.mean(np.all(np.asarray(state.choices[:, 0] == state.choices[:, 1]), axis=-1))
    se = np.sqrt(p_same * (1 - p_same) / chains)  # 4000 independent chains
    assert abs(same - p_same) < 4 * se, (same, p_same, se)
    # the count buffer stays the sufficient statistic of the trees
    recount = jax.jit(jax.vmap(lambda z: counts_from_trees(z, x, st)))(state.choices)
    np.testing.assert_allclose(np.asarray(recount), np.asarray(state.counts), atol=1e-4)
    if kind is SamplerKind.TOP_DOWN:
        assert 0.2 < float(jnp.mean(info.acceptance_rate[-1])) < 1.0


@functools.lru_cache(maxsize=None)
def _generating_spn(leaf):
    """A known SPN on 8 variables, 2,000 training and 1,000 test draws, its test LL and the test
    LL of the best fully factorised model (which the mixture must beat)."""
    cfg = RatSpnConfig(num_vars=8, depth=2, num_sums=2, num_inputs=2, num_repetitions=1, leaf=leaf)
    st = build_structure(jax.random.PRNGKey(10), cfg)
    params = jax.jit(functools.partial(init_params, alpha=1.0),
                     compiler_options=FAST_COMPILE)(jax.random.PRNGKey(11), st)
    if leaf is LeafKind.BERNOULLI:
        # sharpen the leaves so the mixture structure matters
        params["leaf"]["logit"] = 3.0 * jnp.sign(params["leaf"]["logit"])
    else:
        params["leaf"]["mean"] = 2.0 * params["leaf"]["mean"]
        params["leaf"]["log_std"] = jnp.full_like(params["leaf"]["log_std"], np.log(0.5))

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def draw(key):
        xs = jax.vmap(lambda k: sample(k, params, st))(jax.random.split(key, 3000))
        train, test = xs[:2000], xs[2000:]
        true_ll = jnp.mean(batch_log_likelihood(params, test, st))
        if leaf is LeafKind.BERNOULLI:
            p = (jnp.mean(train, 0) * 2000 + 0.5) / 2001
            indep = jnp.mean(test @ jnp.log(p) + (1 - test) @ jnp.log1p(-p))
        else:
            indep = jnp.mean(jnp.sum(dist.Normal(jnp.mean(train, 0)[None], jnp.std(train, 0)[None])
                                     .log_prob(test), axis=1))
        return train, test, true_ll, indep

    train, test, true_ll, indep = draw(jax.random.PRNGKey(12))
    return st, train, test, float(true_ll), float(indep)


@pytest.mark.parametrize("kind", list(SamplerKind))
@pytest.mark.parametrize("leaf", list(LeafKind))
def test_samplers_recover_a_generating_spn_deterministically(leaf, kind):
    # Bernoulli: 30 sweeps, last 10 kept; Gaussian: the top-down chain mixes more slowly per
    # sweep (acceptance ~0.25; within 0.04 nats of the truth from sweep ~120), so 120 sweeps,
    # last 20 kept
    st, train, test, true_ll, indep = _generating_spn(leaf)
    prior = make_prior(8) if leaf is LeafKind.BERNOULLI else make_normal_gamma_prior(8)
    sweeps, kept = (30, 10) if leaf is LeafKind.BERNOULLI else (120, 20)
    sampler = make_sampler(kind, st, train, prior)

    @functools.partial(jax.jit, static_argnums=1, compiler_options=FAST_COMPILE)
    def run(key, n_sweeps):
        key_init, key_run = jax.random.split(key)

        def sweep(state, k):
            state, _ = sampler.step(k, state)
            return state, state.counts

        return jax.lax.scan(sweep, sampler.init(key_init), jax.random.split(key_run, n_sweeps))

    state, history = run(jax.random.PRNGKey(0), sweeps)
    ll = float(jax.jit(lambda c: posterior_predictive_ll(c, test, st, prior),
                       compiler_options=FAST_COMPILE)(history[-kept:]))
    assert indep < true_ll - 0.3  # the task needs the mixture
    assert ll > true_ll - 0.1, (ll, true_ll, indep)
    # same key, same chain
    again, _ = run(jax.random.PRNGKey(0), sweeps)
    np.testing.assert_array_equal(np.asarray(again.choices), np.asarray(state.choices))
    np.testing.assert_array_equal(np.asarray(again.counts), np.asarray(state.counts))


def test_samplers_reject_bad_data_and_mismatched_priors():
    st = build_structure(jax.random.PRNGKey(0), TINY)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        make_sampler(SamplerKind.TOP_DOWN, st, jnp.zeros((5, 3)), make_prior(4))
    with pytest.raises(ValueError, match="0 or 1"):
        make_sampler(SamplerKind.BOTTOM_UP, st, jnp.full((5, 4), 0.5), make_prior(4))
    with pytest.raises(ValueError, match="make_normal_gamma_prior"):
        make_sampler(SamplerKind.TOP_DOWN, st, X_TINY, make_normal_gamma_prior(4))
    st_g = build_structure(jax.random.PRNGKey(0), TINY_G)
    with pytest.raises(ValueError, match="NaN"):
        make_sampler(SamplerKind.TOP_DOWN, st_g, X_TINY_G.at[0, 0].set(jnp.nan),
                     make_normal_gamma_prior(4))
    with pytest.raises(ValueError, match="alpha"):
        make_prior(4, alpha=0.0)
    with pytest.raises(ValueError, match="kappa0"):
        make_normal_gamma_prior(4, kappa0=-1.0)


@pytest.mark.parametrize("leaf", list(LeafKind))
def test_top_down_unroll_changes_speed_not_the_chain(leaf):
    # the sequential loop's unroll (3: not a divisor of the block of 5, so scan's remainder path
    # runs too) must give the chain of the plain loop, bit for bit
    if leaf is LeafKind.BERNOULLI:
        cfg, x, prior = TINY, jnp.concatenate([X_TINY, 1 - X_TINY, X_TINY[:1]]), make_prior(4)
    else:
        cfg, x, prior = TINY_G, jnp.concatenate([X_TINY_G, -X_TINY_G, X_TINY_G[:1]]), make_normal_gamma_prior(4)
    st = build_structure(jax.random.PRNGKey(0), cfg)

    def chain(unroll):
        sampler = make_sampler(SamplerKind.TOP_DOWN, st, x, prior, block_size=5, unroll=unroll)

        @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
        def run(key):
            def sweep(state, k):
                state, info = sampler.step(k, state)
                return state, info.acceptance_rate
            return jax.lax.scan(sweep, sampler.init(key), jax.random.split(key, 6))

        return run(jax.random.PRNGKey(3))

    (s1, a1), (s3, a3) = chain(1), chain(3)
    assert float(jnp.mean(a1)) > 0.0  # the chain moves
    np.testing.assert_array_equal(np.asarray(s1.choices), np.asarray(s3.choices))
    np.testing.assert_array_equal(np.asarray(s1.counts), np.asarray(s3.counts))
    with pytest.raises(ValueError, match="unroll must be >= 1"):
        make_sampler(SamplerKind.TOP_DOWN, st, x, prior, unroll=0)
