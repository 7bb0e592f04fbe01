"""jaxml.nn.lora: zero-B identity, merge formula, gradients, masks and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.nn import bert, lora

CFG = bert.BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=12, max_position_embeddings=10)


def _setup():
    params = bert.init_bert(jax.random.key(0), CFG)
    ids = jax.random.randint(jax.random.key(1), (2, 5), 0, CFG.vocab_size)
    return params, ids


def test_zero_b_equals_base_model():
    params, ids = _setup()
    lcfg = lora.LoraConfig(rank=2, alpha=4.0)
    factors = lora.init_lora(jax.random.key(2), params, lcfg)
    assert sorted(factors) == ["layers/0/attention/query", "layers/0/attention/value",
                               "layers/1/attention/query", "layers/1/attention/value"]
    run = jax.jit(lambda p: bert.apply_bert(p, ids, CFG).last_hidden_state)
    base = run(params)
    adapted = jax.jit(lambda p, f: run(lora.merge_lora(p, f, lcfg)))(params, factors)
    np.testing.assert_array_equal(np.asarray(adapted), np.asarray(base))


def test_merge_formula_and_gradient():
    params, ids = _setup()
    lcfg = lora.LoraConfig(rank=3, alpha=6.0, targets=("value", "intermediate"))
    factors = lora.init_lora(jax.random.key(2), params, lcfg)
    factors = jax.tree_util.tree_map(lambda x: x + 0.1, factors)  # non-zero B
    merged = lora.merge_lora(params, factors, lcfg)
    ab = factors["layers/1/mlp/intermediate"]
    expected = params["layers"][1]["mlp"]["intermediate"]["kernel"] + 2.0 * ab["a"] @ ab["b"]
    np.testing.assert_allclose(np.asarray(merged["layers"][1]["mlp"]["intermediate"]["kernel"]),
                               np.asarray(expected), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(merged["layers"][0]["attention"]["query"]["kernel"]),
                                  np.asarray(params["layers"][0]["attention"]["query"]["kernel"]))
    apply = lora.lora_apply(lambda p, x: bert.apply_bert(p, x, CFG).last_hidden_state, lcfg)
    grads = jax.jit(jax.grad(lambda f: jnp.sum(apply({"base": params, "lora": f}, ids) ** 2)))(factors)
    assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree_util.tree_leaves(grads))


def test_masks_freeze_the_base():
    params, _ = _setup()
    lcfg = lora.LoraConfig()
    tree = {"base": params, "lora": lora.init_lora(jax.random.key(0), params, lcfg),
            "head": {"kernel": jnp.ones((8, 2)), "bias": jnp.zeros(2)}}
    mask = lora.trainable_mask(tree, ["lora", "head"])
    assert lora.count_params(tree, mask) == 2 * 2 * (8 * 8 + 8 * 8) + 18
    opt = lora.masked_optimizer(optax.sgd(1.0), mask)
    grads = jax.tree_util.tree_map(jnp.ones_like, tree)
    updates, _ = opt.update(grads, opt.init(tree), tree)
    assert float(jnp.abs(updates["base"]["layers"][0]["attention"]["query"]["kernel"]).max()) == 0.0
    assert float(jnp.abs(updates["head"]["kernel"]).min()) == 1.0


def test_errors():
    params, _ = _setup()
    with pytest.raises(ValueError, match="match no 2-D 'kernel' leaf"):
        lora.init_lora(jax.random.key(0), params, lora.LoraConfig(targets=("q_proj",)))
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        lora.LoraConfig(rank=0)
    with pytest.raises(KeyError, match="no matching kernel"):
        lora.merge_lora(params, {"layers/9/attention/query": {"a": jnp.zeros((8, 1)), "b": jnp.zeros((1, 8))}},
                        lora.LoraConfig(rank=1))
