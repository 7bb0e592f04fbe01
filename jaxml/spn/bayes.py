"""Bayesian learning of SPN parameters: bottom-up Gibbs and top-down collapsed Metropolis-Hastings.

Latent-variable view (Peharz et al. 2017; Trapp et al. 2019, arXiv 1905.10884, Sec. 3): every
datum ``x_n`` selects an induced tree ``z_n`` (one child per visited sum node). With sum weights
``W_S ~ Dirichlet(alpha)`` and Bernoulli leaves ``theta_{r,v,i} ~ Beta(a_v, b_v)``,

    p(X, Z | W, theta) = prod_n prod_{S in z_n} w_{S, z_n(S)} prod_{L in z_n} p(x_n | theta_L).

Integrating ``W`` and ``theta`` out gives the collapsed joint (Yokoi & Sato 2024, arXiv 2406.12353,
the marginalised full conditional; reconstructed in its standard Dirichlet-multinomial /
Beta-Bernoulli form)

    log p(X, Z) = sum_S [log G(C_S alpha) - log G(n_S + C_S alpha)
                         + sum_c (log G(n_{S,c} + alpha) - log G(alpha))]
                + sum_{r,v,i} [log B(a_v + k_{r,v,i}, b_v + n_{r,i}(v) - k_{r,v,i}) - log B(a_v, b_v)],

with ``n_{S,c}`` the number of trees through edge ``(S, c)`` and ``k`` the number of ones among the
data whose tree visits input ``i`` of the leaf region of ``v``.

Two samplers, each a factory returning ``init(key) -> state`` and ``step(key, state) ->
(state, info)`` (one sweep over the data), vmappable over chains:

* :func:`bottom_up_gibbs` (Trapp et al. 2019, Alg. 1 without structure moves): a bottom-up
  likelihood pass over the whole network for every datum, ancestral sampling of every ``z_n``
  from ``p(z_n | x_n, W, theta)``, then ``W | Z ~ Dirichlet(alpha + n)`` and
  ``theta | Z ~ Beta(a + k, b + n - k)``. Cost per datum: the number of sum edges.
* :func:`top_down_mh` (Yokoi & Sato 2024, Sec. 4): for each datum in random order, remove its
  counts, propose a tree top-down from the root with the collapsed prior
  ``q(c | S) = (n_{S,c} + alpha) / (n_S + C_S alpha)`` (only visited sum nodes are touched), and
  accept with ``min(1, prod_{L in z'} p(x_n | X_{L,-n}) / prod_{L in z} p(x_n | X_{L,-n}))``, the
  ratio of collapsed leaf predictives ``p(x_v = 1 | .) = (k + a_v) / (n + a_v + b_v)``: the prior
  factors cancel against the proposal. Cost per datum: the induced tree (the children of its
  ``2**L - 1`` sum nodes and its ``D`` leaves), not the network.

Both keep the sufficient statistics in one flat count buffer (see :func:`count_layout`), so a
datum's tree is removed or added with one scatter.
"""

from __future__ import annotations

import enum
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln, logsumexp

from jaxml.spn.inference import (
    _descend,
    batch_log_likelihood,
    sample_matrix,
    tree_nodes,
    upward,
    weights_from_probs,
)
from jaxml.spn.structure import LeafKind, SpnStructure, choices_per_level, nodes_per_level

__all__ = [
    "SamplerKind",
    "SpnPrior",
    "make_prior",
    "CountLayout",
    "count_layout",
    "tree_counts",
    "counts_from_trees",
    "random_trees",
    "collapsed_log_joint",
    "predictive_params",
    "SamplerState",
    "SamplerInfo",
    "Sampler",
    "bottom_up_gibbs",
    "top_down_mh",
    "make_sampler",
    "posterior_predictive_ll",
]


class SamplerKind(enum.Enum):
    """Posterior sampler.

    BOTTOM_UP: uncollapsed blocked Gibbs of Trapp et al. (2019); every sweep evaluates the whole
        network for every datum (fully vectorised, cost grows with the network).
    TOP_DOWN: collapsed Metropolis-Hastings of Yokoi & Sato (2024); sequential over data, cost per
        datum is one induced tree (grows with the depth, not the width, of the network).
    """

    BOTTOM_UP = "bottom_up"
    TOP_DOWN = "top_down"


class SpnPrior(NamedTuple):
    """Conjugate prior: symmetric ``Dirichlet(alpha)`` on every sum node, ``Beta(a_v, b_v)`` on
    every Bernoulli leaf of variable ``v``."""

    alpha: float
    a: jax.Array  # (D,)
    b: jax.Array  # (D,)


def make_prior(num_vars: int, *, alpha: float = 1.0, a: float | jax.Array = 0.5,
               b: float | jax.Array = 0.5) -> SpnPrior:
    """Prior with Trapp et al.'s defaults ``alpha = 1``, ``Beta(1/2, 1/2)``.

    Args:
        num_vars: number of variables ``D``.
        alpha: Dirichlet concentration (> 0).
        a: Beta first shape, scalar or ``(D,)`` (> 0).
        b: Beta second shape, scalar or ``(D,)`` (> 0).
    """
    if alpha <= 0:
        raise ValueError(f"prior alpha must be > 0, got {alpha}")
    a = jnp.broadcast_to(jnp.asarray(a, jnp.float32), (num_vars,))
    b = jnp.broadcast_to(jnp.asarray(b, jnp.float32), (num_vars,))
    if not (bool(jnp.all(a > 0)) and bool(jnp.all(b > 0))):
        raise ValueError("prior Beta shapes a and b must be > 0")
    return SpnPrior(float(alpha), a, b)


class CountLayout(NamedTuple):
    """Offsets of the blocks of the flat count buffer.

    ``edge[m]``: edge counts ``n_{S,(a,b)}`` of level ``m`` (root: ``(R, K_1, K_1)``; level ``m``:
    ``(R, 2**m, K_m, K_{m+1}, K_{m+1})``); ``marg[m]``: the same summed over ``b``, ``n_{S,a}``
    (root: ``(R, K_1)``; level ``m``: ``(R, 2**m, K_m, K_{m+1})``); ``root_r``: root visits per
    repetition ``(R,)``; ``leaf_n``: visits of inputs ``(R, 2**L, I)``; ``ones``: ones per leaf
    ``(R, D, I)``. The marginals make an exact proposal draw read ``2 K`` counts per visited sum
    node instead of ``K**2`` (``a`` from ``n_{S,a} + K alpha``, then ``b`` from
    ``n_{S,a,b} + alpha``).
    """

    edge: tuple[int, ...]
    marg: tuple[int, ...]
    root_r: int
    leaf_n: int
    ones: int
    size: int


def count_layout(structure: SpnStructure) -> CountLayout:
    """The flat count-buffer layout of a structure."""
    cfg = structure.cfg
    k = nodes_per_level(cfg)
    c = choices_per_level(cfg)
    r = cfg.num_repetitions
    off = 0
    edge, marg = [], []
    for m in range(cfg.depth):
        edge.append(off)
        off += c[0] if m == 0 else r * 2**m * k[m] * c[m]
    for m in range(cfg.depth):
        marg.append(off)
        off += r * 2**m * k[m] * k[m + 1]
    root_r = off
    off += r
    leaf_n = off
    off += r * 2**cfg.depth * cfg.num_inputs
    ones = off
    off += r * cfg.num_vars * cfg.num_inputs
    return CountLayout(tuple(edge), tuple(marg), root_r, leaf_n, ones, off)


def _node_flat(structure: SpnStructure, r, m: int, node) -> jax.Array:
    """Flat index ``(r, j, s)`` of the visited nodes ``node (2**m,)`` of level ``m``."""
    k = nodes_per_level(structure.cfg)
    return (r * 2**m + jnp.arange(2**m)) * k[m] + node


def tree_counts(choices: jax.Array, x: jax.Array, structure: SpnStructure,
                layout: CountLayout) -> tuple[jax.Array, jax.Array]:
    """Indices into the count buffer touched by one datum's tree, and the amounts.

    Args:
        choices: ``(2**L - 1,)`` the tree (see :func:`jaxml.spn.inference.tree_nodes`).
        x: ``(D,)`` the datum (0/1).
        structure: the compiled structure.
        layout: its count layout.

    Returns:
        ``(idx, val)``: ``idx`` int32 of length ``2 (2**L - 1) + 1 + 2**L + D`` and ``val`` (1 for
        edges, marginals, repetition and inputs; ``x_v`` for the ones counts).
    """
    cfg = structure.cfg
    k = nodes_per_level(cfg)
    big_l, d, n_in = cfg.depth, cfg.num_vars, cfg.num_inputs
    r, visited = tree_nodes(choices, structure)
    idx = [layout.edge[0] + choices[:1], layout.marg[0] + (r * k[1] + visited[1][:1]),
           layout.root_r + r[None]]
    for m in range(1, big_l):
        flat = _node_flat(structure, r, m, visited[m])
        cm = choices[2**m - 1: 2**(m + 1) - 1]
        idx.append(layout.edge[m] + flat * k[m + 1] ** 2 + cm)
        idx.append(layout.marg[m] + flat * k[m + 1] + cm // k[m + 1])
    inputs = visited[big_l]
    idx.append(layout.leaf_n + (r * 2**big_l + jnp.arange(2**big_l)) * n_in + inputs)
    idx.append(layout.ones + (r * d + jnp.arange(d)) * n_in + inputs[structure.leaf_of[r]])
    idx = jnp.concatenate(idx).astype(jnp.int32)
    n_unit = idx.shape[0] - d
    val = jnp.concatenate([jnp.ones((n_unit,), jnp.float32), x.astype(jnp.float32)])
    return idx, val


def counts_from_trees(choices: jax.Array, xs: jax.Array, structure: SpnStructure,
                      layout: CountLayout | None = None) -> jax.Array:
    """Sufficient statistics of all trees ``choices (N, 2**L - 1)`` for data ``xs (N, D)``."""
    layout = layout or count_layout(structure)
    idx, val = jax.vmap(lambda z, x: tree_counts(z, x, structure, layout))(choices, xs)
    return jnp.zeros((layout.size,), jnp.float32).at[idx.reshape(-1)].add(val.reshape(-1))


def random_trees(key: jax.Array, num_data: int, structure: SpnStructure) -> jax.Array:
    """Trees with every choice uniform (the initial state of both samplers)."""
    c = choices_per_level(structure.cfg)
    maxval = jnp.concatenate([jnp.full((2**m,), c[m], jnp.int32)
                              for m in range(structure.cfg.depth)])
    u = jax.random.uniform(key, (num_data, maxval.shape[0]))
    return jnp.minimum((u * maxval[None, :]).astype(jnp.int32), maxval[None, :] - 1)


def _split_counts(counts: jax.Array, structure: SpnStructure, layout: CountLayout):
    """Views of the flat buffer: edge counts per level (rows = nodes), leaf n and ones."""
    cfg = structure.cfg
    k = nodes_per_level(cfg)
    c = choices_per_level(cfg)
    r, big_l = cfg.num_repetitions, cfg.depth
    edges = [counts[layout.edge[0]: layout.edge[0] + c[0]]]
    for m in range(1, big_l):
        size = r * 2**m * k[m] * c[m]
        edges.append(counts[layout.edge[m]: layout.edge[m] + size].reshape(r, 2**m, k[m], c[m]))
    leaf_n = counts[layout.leaf_n: layout.leaf_n + r * 2**big_l * cfg.num_inputs]
    leaf_n = leaf_n.reshape(r, 2**big_l, cfg.num_inputs)
    ones = counts[layout.ones: layout.ones + r * cfg.num_vars * cfg.num_inputs]
    ones = ones.reshape(r, cfg.num_vars, cfg.num_inputs)
    n_of_v = jnp.take_along_axis(leaf_n, structure.leaf_of[:, :, None], axis=1)  # (R, D, I)
    return edges, n_of_v, ones


def collapsed_log_joint(counts: jax.Array, structure: SpnStructure, prior: SpnPrior,
                        layout: CountLayout | None = None) -> jax.Array:
    """``log p(X, Z)`` with ``W`` and ``theta`` integrated out (module docstring)."""
    layout = layout or count_layout(structure)
    edges, n_of_v, ones = _split_counts(counts, structure, layout)
    alpha = prior.alpha
    total = 0.0
    for e in edges:
        n_s = jnp.sum(e, axis=-1)
        c = e.shape[-1]
        total += jnp.sum(gammaln(c * alpha) - gammaln(n_s + c * alpha))
        total += jnp.sum(gammaln(e + alpha) - gammaln(alpha))
    a = prior.a[None, :, None]
    b = prior.b[None, :, None]

    def log_beta(p, q):
        return gammaln(p) + gammaln(q) - gammaln(p + q)

    total += jnp.sum(log_beta(a + ones, b + n_of_v - ones) - log_beta(a, b))
    return total


def predictive_params(counts: jax.Array, structure: SpnStructure, prior: SpnPrior,
                      layout: CountLayout | None = None) -> dict:
    """Posterior-mean parameters ``E[W | Z]``, ``E[theta | Z]`` as a parameter pytree.

    ``w_{S,c} = (n_{S,c} + alpha) / (n_S + C_S alpha)``, ``p = (k + a) / (n + a + b)``; plugging
    them into the SPN gives the collapsed one-step predictive ``p(x* | X, Z)`` of a new datum.
    """
    layout = layout or count_layout(structure)
    edges, n_of_v, ones = _split_counts(counts, structure, layout)
    w = [(e + prior.alpha) / jnp.sum(e + prior.alpha, axis=-1, keepdims=True) for e in edges]
    a = prior.a[None, :, None]
    b = prior.b[None, :, None]
    p = (ones + a) / (n_of_v + a + b)
    return weights_from_probs(w[0], w[1:], p, structure)


class SamplerState(NamedTuple):
    """State of either sampler.

    Attributes:
        choices: ``(N, 2**L - 1)`` int32, every datum's induced tree.
        counts: flat count buffer of those trees (:func:`count_layout`).
        params: bottom-up: the instantiated ``W``, ``theta`` (parameter pytree); top-down: ``None``.
    """

    choices: jax.Array
    counts: jax.Array
    params: dict | None


class SamplerInfo(NamedTuple):
    """Per-sweep diagnostics: acceptance rate (1 for Gibbs) and fraction of trees changed."""

    acceptance_rate: jax.Array
    changed: jax.Array


class Sampler(NamedTuple):
    """``init(key) -> state`` and ``step(key, state) -> (state, info)`` (one sweep)."""

    init: Callable[[jax.Array], SamplerState]
    step: Callable[[jax.Array, SamplerState], tuple[SamplerState, SamplerInfo]]


def _inverse_cdf_small(w: jax.Array, u: jax.Array) -> jax.Array:
    """Inverse CDF along the last (short) axis: the index ``i`` with
    ``sum_{j<i} w_j <= u sum_j w_j < sum_{j<=i} w_j``; the cumulative sum is a masked ``K x K``
    reduction (one fused loop on CPU, faster than ``cumsum`` for ``K`` up to a few dozen)."""
    kk = w.shape[-1]
    tri = (jnp.arange(kk)[None, :] <= jnp.arange(kk)[:, None]).astype(w.dtype)
    tri = tri.reshape((1,) * (w.ndim - 1) + (kk, kk))
    cum = jnp.sum(w[..., None, :] * tri, axis=-1)
    idx = jnp.sum((cum < u[..., None] * cum[..., -1:]).astype(jnp.int32), axis=-1)
    return jnp.minimum(idx, kk - 1)


def _check_data(data: jax.Array, structure: SpnStructure) -> jax.Array:
    cfg = structure.cfg
    if cfg.leaf is not LeafKind.BERNOULLI:
        raise ValueError("the Bayesian samplers support LeafKind.BERNOULLI (binary data) only; "
                         "build the structure with leaf=LeafKind.BERNOULLI")
    if data.ndim != 2 or data.shape[1] != cfg.num_vars:
        raise ValueError(f"data must be (N, {cfg.num_vars}) for this structure, got {data.shape}")
    return jnp.asarray(data, jnp.float32)


def _sample_conditionals(key: jax.Array, counts: jax.Array, structure: SpnStructure,
                         prior: SpnPrior, layout: CountLayout) -> dict:
    """``W | Z ~ Dirichlet(alpha + n)``, ``theta | Z ~ Beta(a + k, b + n - k)``.

    Both through one call of numpyro's ``Gamma`` sampler on the concatenated concentrations
    (a Dirichlet is normalised Gammas, a Beta a two-component Dirichlet): one rejection-sampling
    kernel instead of one per layer, which keeps compilation short.
    """
    edges, n_of_v, ones = _split_counts(counts, structure, layout)
    a = prior.a[None, :, None]
    b = prior.b[None, :, None]
    parts = [e + prior.alpha for e in edges] + [a + ones, b + n_of_v - ones]
    flat = jnp.concatenate([q.reshape(-1) for q in parts])
    g = jnp.maximum(dist.Gamma(flat).sample(key), 1e-30)
    out, off = [], 0
    for q in parts:
        out.append(g[off: off + q.size].reshape(q.shape))
        off += q.size
    w = [q / jnp.sum(q, axis=-1, keepdims=True) for q in out[:-2]]
    p = out[-2] / (out[-2] + out[-1])
    return weights_from_probs(w[0], w[1:], p, structure)


def bottom_up_gibbs(structure: SpnStructure, data: jax.Array, prior: SpnPrior, *,
                    batch_size: int = 512) -> Sampler:
    """Uncollapsed blocked Gibbs sampler of Trapp et al. (2019, arXiv 1905.10884, Sec. 4).

    One sweep: for every datum (vectorised, in chunks of ``batch_size``) run the bottom-up pass
    and draw ``z_n`` top-down from ``p(z_n | x_n, W, theta)`` (at a visited sum node, child
    ``c`` with probability ``w_{S,c} P_c(x_n) / S(x_n)``); then draw ``W`` and ``theta`` from their
    conjugate posteriors given all trees. Product-node partitions are not resampled (fixed
    structure, as in the top-down comparison of Yokoi & Sato 2024).

    Args:
        structure: compiled structure with Bernoulli leaves.
        data: ``(N, D)`` binary training data.
        prior: conjugate prior.
        batch_size: data per chunk of the bottom-up pass (bounds memory).

    Returns:
        A :class:`Sampler`; ``init`` draws uniform trees and ``W, theta | Z``.
    """
    data = _check_data(data, structure)
    layout = count_layout(structure)
    n, d = data.shape
    big_l = structure.cfg.depth
    bs = max(1, min(batch_size, n))
    pad = (-n) % bs
    xpad = jnp.pad(data, ((0, pad), (0, 0))).reshape(-1, bs, d)

    def init(key):
        key_z, key_p = jax.random.split(key)
        choices = random_trees(key_z, n, structure)
        counts = counts_from_trees(choices, data, structure, layout)
        return SamplerState(choices, counts, _sample_conditionals(key_p, counts, structure,
                                                                  prior, layout))

    def posterior_tree(params, x, u):
        values = upward(params, x, structure)

        def pick(m, scores):
            w = jnp.exp(scores - jnp.max(scores, axis=(-2, -1), keepdims=True))
            return sample_matrix(w, u[m, 0] if scores.ndim == 2 else u[m, : scores.shape[0]])

        return _descend(params, values, structure, pick)

    def step(key, state):
        key_u, key_p = jax.random.split(key)
        u = jax.random.uniform(key_u, (n + pad, big_l, 2**max(big_l - 1, 0), 2))
        u = u.reshape(-1, bs, big_l, 2**max(big_l - 1, 0), 2)
        f = jax.vmap(posterior_tree, in_axes=(None, 0, 0))
        choices = jax.lax.map(lambda a: f(state.params, *a), (xpad, u))
        choices = choices.reshape(-1, choices.shape[-1])[:n]
        counts = counts_from_trees(choices, data, structure, layout)
        params = _sample_conditionals(key_p, counts, structure, prior, layout)
        changed = jnp.mean(jnp.any(choices != state.choices, axis=-1))
        return SamplerState(choices, counts, params), SamplerInfo(jnp.float32(1.0), changed)

    return Sampler(init, step)


def top_down_mh(structure: SpnStructure, data: jax.Array, prior: SpnPrior) -> Sampler:
    """Collapsed top-down Metropolis-Hastings sampler of Yokoi & Sato (2024, arXiv 2406.12353).

    One sweep visits every datum once in a fresh random order (a ``lax.scan`` carrying the count
    buffer; all random numbers are drawn before the scan). For datum ``n`` with tree ``z``:

    1. remove ``z``'s counts (one scatter);
    2. propose ``z'`` top-down: at the root and then level by level, every visited sum node ``S``
       picks child ``c`` with probability ``(n_{S,c} + alpha) / (n_S + C_S alpha)`` (the collapsed
       Dirichlet-multinomial predictive; a two-level inverse CDF over the ``K x K`` products);
    3. accept with probability ``min(1, exp(sum_v log p(x_v | L'(v)) - sum_v log p(x_v | L(v))))``
       where ``p(x_v = 1 | L) = (k_{L,v} + a_v) / (n_L + a_v + b_v)`` (Beta-Bernoulli predictive);
    4. add the counts of the kept tree back (one scatter).

    Since the proposal is the collapsed prior ``p(z' | Z_{-n})``, the acceptance ratio of the
    target ``p(z' | Z_{-n}) p(x_n | z', X_{-n}, Z_{-n})`` reduces to the likelihood ratio, and the
    chain leaves ``p(Z | X)`` invariant. Cost per datum: ``tree_sum_choices + 2 D`` reads
    (:func:`jaxml.spn.structure.describe`), independent of the number of repetitions.

    Args:
        structure: compiled structure with Bernoulli leaves.
        data: ``(N, D)`` binary training data.
        prior: conjugate prior.

    Returns:
        A :class:`Sampler`; ``init`` draws uniform trees.
    """
    data = _check_data(data, structure)
    layout = count_layout(structure)
    cfg = structure.cfg
    n, d = data.shape
    big_l = cfg.depth
    k = nodes_per_level(cfg)
    c = choices_per_level(cfg)
    n_in = cfg.num_inputs
    alpha = jnp.float32(prior.alpha)
    n_tree = 2**big_l - 1
    v_idx = jnp.arange(d)

    def init(key):
        choices = random_trees(key, n, structure)
        return SamplerState(choices, counts_from_trees(choices, data, structure, layout), None)

    def leaf_log_pred(counts, x, r, inputs):
        j = structure.leaf_of[r]
        i = inputs[j]
        n_l = counts[layout.leaf_n + (r * 2**big_l + j) * n_in + i]
        ones = counts[layout.ones + (r * d + v_idx) * n_in + i]
        num = jnp.where(x > 0.5, ones + prior.a, n_l - ones + prior.b)
        return jnp.sum(jnp.log(num) - jnp.log(n_l + prior.a + prior.b))

    def propose(counts, u):
        # root: repetition r, then node a of the left child region, then node b of the right one
        kk = k[1]
        tot_r = jax.lax.dynamic_slice(counts, (layout.root_r,), (cfg.num_repetitions,))
        r = _inverse_cdf_small(tot_r + alpha * kk * kk, u[0, 0])
        row_a = jax.lax.dynamic_slice(counts, (layout.marg[0] + r * kk,), (kk,))
        a = _inverse_cdf_small(row_a + alpha * kk, u[0, 1])
        row_b = jax.lax.dynamic_slice(counts, (layout.edge[0] + (r * kk + a) * kk,), (kk,))
        b = _inverse_cdf_small(row_b + alpha, u[n_tree, 0])
        parts = [(r * kk * kk + a * kk + b)[None]]
        node = jnp.stack([a, b])
        for m in range(1, big_l):
            kk = k[m + 1]
            flat = _node_flat(structure, r, m, node)
            ar = jnp.arange(kk)[None, :]
            rows_a = counts[layout.marg[m] + flat[:, None] * kk + ar] + alpha * kk
            u_m = u[2**m - 1: 2**(m + 1) - 1]
            a = _inverse_cdf_small(rows_a, u_m[:, 0])
            rows_b = counts[layout.edge[m] + (flat[:, None] * kk + a[:, None]) * kk + ar] + alpha
            b = _inverse_cdf_small(rows_b, u_m[:, 1])
            parts.append(a * kk + b)
            node = jnp.stack([a, b], axis=-1).reshape(-1)
        return jnp.concatenate(parts).astype(jnp.int32)

    def body(counts, inp):
        x, z_old, u_prop, u_acc = inp
        i_old, v_old = tree_counts(z_old, x, structure, layout)
        counts = counts.at[i_old].add(-v_old)
        z_new = propose(counts, u_prop)
        r_old, vis_old = tree_nodes(z_old, structure)
        r_new, vis_new = tree_nodes(z_new, structure)
        log_ratio = (leaf_log_pred(counts, x, r_new, vis_new[big_l])
                     - leaf_log_pred(counts, x, r_old, vis_old[big_l]))
        accept = jnp.log(u_acc) < log_ratio
        z = jnp.where(accept, z_new, z_old)
        i_new, v_new = tree_counts(z, x, structure, layout)
        counts = counts.at[i_new].add(v_new)
        return counts, (z, accept, jnp.any(z != z_old))

    def step(key, state):
        key_perm, key_prop, key_acc = jax.random.split(key, 3)
        order = jax.random.permutation(key_perm, n)
        u_prop = jax.random.uniform(key_prop, (n, n_tree + 1, 2))
        u_acc = jax.random.uniform(key_acc, (n,), minval=1e-12)
        # the scan streams the data and their trees in visiting order and carries only the
        # counts, so no (N, .) buffer is copied per datum
        counts, (z_perm, acc, changed) = jax.lax.scan(
            body, state.counts, (data[order], state.choices[order], u_prop, u_acc))
        choices = jnp.zeros_like(state.choices).at[order].set(z_perm)
        return (SamplerState(choices, counts, None),
                SamplerInfo(jnp.mean(acc.astype(jnp.float32)),
                            jnp.mean(changed.astype(jnp.float32))))

    return Sampler(init, step)


def make_sampler(kind: SamplerKind, structure: SpnStructure, data: jax.Array,
                 prior: SpnPrior, **kwargs) -> Sampler:
    """Factory over :class:`SamplerKind` (keyword arguments go to the chosen sampler)."""
    if kind is SamplerKind.BOTTOM_UP:
        return bottom_up_gibbs(structure, data, prior, **kwargs)
    if kind is SamplerKind.TOP_DOWN:
        return top_down_mh(structure, data, prior, **kwargs)
    raise ValueError(f"unknown sampler kind {kind!r}; use one of {[k.value for k in SamplerKind]}")


def posterior_predictive_ll(counts_samples: list[jax.Array] | jax.Array, test: jax.Array,
                            structure: SpnStructure, prior: SpnPrior, *,
                            batch_size: int = 1024) -> jax.Array:
    """Mean test log-likelihood of the posterior predictive from retained samples.

    ``log p(x* | X) ~= log (1/T) sum_t p(x* | E[W | Z_t], E[theta | Z_t])``, averaged over the test
    rows: the likelihood (not the log-likelihood) is averaged over the ``T`` retained states
    (a Rao-Blackwellised Monte Carlo estimate of the Bayesian predictive; Trapp et al. average
    log-likelihoods instead, which is a lower bound of this).

    Args:
        counts_samples: ``T`` count buffers (list or stacked ``(T, size)``).
        test: ``(M, D)`` test data.
        structure: the compiled structure.
        prior: the prior used in sampling.
        batch_size: rows per chunk of the likelihood pass.

    Returns:
        Scalar mean test log-likelihood (nats per datum).
    """
    counts_samples = jnp.stack(list(counts_samples)) if isinstance(counts_samples, list) \
        else counts_samples
    layout = count_layout(structure)

    def one(counts):
        params = predictive_params(counts, structure, prior, layout)
        return batch_log_likelihood(params, test, structure, batch_size=batch_size)

    lls = jax.lax.map(one, counts_samples)  # (T, M)
    return jnp.mean(logsumexp(lls, axis=0) - np.log(lls.shape[0]))
