"""jaxml.ntk.empirical: the three implementations agree with a brute-force Jacobian NTK."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from jaxml.nn import bert
from jaxml.ntk import NtkImplementation, empirical_ntk, empirical_ntk_blocks, transformer_blocks

IMPLS = list(NtkImplementation)


def _mlp():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    params = {"l1": {"w": jax.random.normal(k1, (5, 7)) / 2, "b": 0.1 * jax.random.normal(k4, (7,))},
              "l2": {"w": jax.random.normal(k2, (7, 3)) / 3}}

    def apply(p, x):
        h = jnp.tanh(x @ p["l1"]["w"] + p["l1"]["b"][None, :])
        return h @ p["l2"]["w"]

    x1 = jax.random.normal(k3, (4, 5))
    x2 = jax.random.normal(k4, (3, 5))
    return apply, params, x1, x2


def _brute(apply, params, x1, x2):
    """Theta = J1 J2^T from one dense Jacobian of the flattened parameters (float64 reference)."""
    flat, unravel = ravel_pytree(params)
    j1 = jax.jacfwd(lambda f: apply(unravel(f), x1))(flat)  # (n1, C, P)
    j2 = jax.jacfwd(lambda f: apply(unravel(f), x2))(flat)
    return np.einsum("iap,jbp->ijab", np.asarray(j1, np.float64), np.asarray(j2, np.float64))


@pytest.mark.parametrize("impl", IMPLS)
def test_mlp_matches_brute_force(impl):
    apply, params, x1, x2 = _mlp()
    ref = _brute(apply, params, x1, x2)
    got = empirical_ntk(apply, params, x1, x2, implementation=impl)
    assert got.shape == (4, 3, 3, 3)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4, atol=1e-4)
    tr = empirical_ntk(apply, params, x1, x2, implementation=impl, trace_logits=True)
    np.testing.assert_allclose(np.asarray(tr), np.einsum("ijaa->ij", ref), rtol=1e-4, atol=1e-4)


def test_symmetric_chunked_and_wrt():
    apply, params, x1, _ = _mlp()
    ref = _brute(apply, params, x1, x1)
    chunked = empirical_ntk(apply, params, x1, implementation=NtkImplementation.STRUCTURED, batch_size=3)
    np.testing.assert_allclose(np.asarray(chunked), ref, rtol=1e-4, atol=1e-4)
    # wrt: the second layer's weight alone gives (h . h') I_C
    h = np.tanh(np.asarray(x1 @ params["l1"]["w"] + params["l1"]["b"][None, :]))
    only = empirical_ntk(apply, params, x1, wrt=["l2"])
    np.testing.assert_allclose(np.asarray(only), (h @ h.T)[:, :, None, None] * np.eye(3)[None, None], rtol=1e-4,
                               atol=1e-5)
    with pytest.raises(ValueError, match="matches no parameter"):
        empirical_ntk(apply, params, x1, wrt=["l3"])


TINY = bert.BertConfig(vocab_size=23, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=12, max_position_embeddings=8)


def _bert_classifier():
    params = {"encoder": bert.init_bert(jax.random.key(1), TINY),
              "head": {"kernel": jax.random.normal(jax.random.key(2), (8, 2)), "bias": jnp.zeros(2)}}

    def apply(p, batch):
        phi = bert.bert_features(p["encoder"], batch, TINY)
        return phi @ p["head"]["kernel"] + p["head"]["bias"][None, :]

    ids = jax.random.randint(jax.random.key(3), (3, 5), 0, TINY.vocab_size)
    ids = ids.at[0, 1].set(ids[1, 2])  # a repeated token across examples exercises the embedding rule
    mask = jnp.ones((3, 5), jnp.int32).at[2, 3:].set(0)
    return apply, params, {"input_ids": ids, "attention_mask": mask}


def test_bert_structured_matches_jacobian_and_blocks_sum():
    apply, params, batch = _bert_classifier()
    ref = empirical_ntk(apply, params, batch, implementation=NtkImplementation.JACOBIAN_CONTRACTION)
    got = empirical_ntk(apply, params, batch, implementation=NtkImplementation.STRUCTURED)
    scale = float(jnp.abs(ref).max())
    np.testing.assert_allclose(np.asarray(got) / scale, np.asarray(ref) / scale, atol=2e-5)
    blocks = transformer_blocks(params, "encoder")
    assert blocks == {"embeddings": ["encoder/embeddings"], "layer0/attention": ["encoder/layers/0/attention"],
                      "layer0/mlp": ["encoder/layers/0/mlp"]}


def test_long_sequence_transformer_stays_structured():
    """With T >= CPU_MATMUL_MIN_ROWS per example, jaxml.nn.linear runs its CPU custom-derivative
    product; the structured planner looks through it, so the dense weights stay structured and
    the kernel equals the Jacobian contraction."""
    from jaxml import nn
    from jaxml.nn.layers import CPU_MATMUL_MIN_ROWS
    from jaxml.ntk.structured import plan_structured

    t = CPU_MATMUL_MIN_ROWS + 2
    cfg = nn.TransformerConfig(vocab_size=11, d_model=8, n_heads=2, n_layers=1, d_ff=12, max_len=t,
                               pos_encoding=nn.PosEncoding.LEARNED)
    params = nn.init_transformer(jax.random.key(4), cfg)

    def apply(p, toks):
        return jnp.mean(nn.apply_transformer(p, toks, cfg), axis=-2)

    toks = jax.random.randint(jax.random.key(5), (2, t), 0, cfg.vocab_size)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    plan = plan_structured(lambda ls, x: apply(jax.tree_util.tree_unflatten(treedef, ls), x), leaves, toks[0])
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    dense = [i for i, pth in enumerate(paths) if any(f"'{n}'" in pth for n in ("wq", "wk", "wv", "wo", "w1", "w2"))]
    assert dense and all(i in plan.structured for i in dense), [paths[i] for i in plan.fallback]
    ref = empirical_ntk(apply, params, toks, implementation=NtkImplementation.JACOBIAN_CONTRACTION)
    got = empirical_ntk(apply, params, toks, implementation=NtkImplementation.STRUCTURED)
    scale = float(jnp.abs(ref).max())
    np.testing.assert_allclose(np.asarray(got) / scale, np.asarray(ref) / scale, atol=2e-5)


def test_blocks_sum_to_total():
    apply, params, x1, x2 = _mlp()
    ref = _brute(apply, params, x1, x2)
    parts = empirical_ntk_blocks(apply, params, x1, x2, blocks={"first": ["l1"], "second": ["l2"]})
    np.testing.assert_allclose(np.asarray(parts["first"] + parts["second"]), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(parts["total"]), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="share a parameter"):
        empirical_ntk_blocks(apply, params, x1, blocks={"a": ["l1"], "b": ["l1/w"]})
