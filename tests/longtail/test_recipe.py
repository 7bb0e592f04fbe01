"""The neural-collapse recipe's parameter layouts and loss, with and without the ETF head bias and norms."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxml.longtail import (
    Backbone,
    BackboneConfig,
    NCRecipe,
    apply_backbone,
    init_backbone,
    init_nc_params,
    nc_head,
    nc_loss_fn,
    simplex_etf,
    split_nc_params,
)

CFG = BackboneConfig(kind=Backbone.MLP, input_shape=(8, 8, 1), feature_dim=12, width=16, depth=1)
K = 5


def _batch(key, n=7):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, 8, 8, 1)), jax.random.randint(ky, (n,), 0, K)


def test_default_layout_is_the_backbone_and_there_is_no_bias():
    key = jax.random.key(0)
    params = init_nc_params(key, CFG, K, NCRecipe())
    ref = init_backbone(key, CFG)
    assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(ref)
    body, bias = split_nc_params(params, NCRecipe())
    assert body is params and bias is None


def test_head_bias_layout_and_clear_error_on_a_mismatch():
    recipe = NCRecipe(head_bias=True)
    params = init_nc_params(jax.random.key(0), CFG, K, recipe)
    assert set(params) == {"backbone", "head_bias"}
    np.testing.assert_array_equal(params["head_bias"], np.zeros(K))
    with pytest.raises(ValueError, match="init_nc_params"):
        split_nc_params(init_backbone(jax.random.key(0), CFG), recipe)


def test_head_bias_enters_the_logits_and_its_gradient_is_mean_softmax_minus_onehot():
    """dCE/db_k = mean_i (softmax(h_i W + b)_k - [y_i = k]); the feature penalty does not touch b."""
    recipe = NCRecipe(head_bias=True, feature_penalty=1e-2)
    etf = simplex_etf(jax.random.key(1), K, CFG.feature_dim)
    params = init_nc_params(jax.random.key(2), CFG, K, recipe)
    params["head_bias"] = jnp.linspace(-1.0, 1.0, K)
    x, y = _batch(jax.random.key(3))
    loss_fn = nc_loss_fn(CFG, etf, recipe)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(params, (x, y), None)
    logits = apply_backbone(params["backbone"], x, CFG) @ etf + params["head_bias"][None, :]
    want = jnp.mean(jax.nn.softmax(logits) - jax.nn.one_hot(y, K), axis=0)
    np.testing.assert_allclose(grads["head_bias"], want, rtol=1e-5, atol=1e-6)
    ce = jnp.mean(optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, K)))
    assert float(metrics["ce"]) == pytest.approx(float(ce), rel=1e-6)
    # without the bias the same backbone gives different logits, hence a different CE
    _, plain = nc_loss_fn(CFG, etf, NCRecipe(feature_penalty=1e-2))(params["backbone"], (x, y), None)
    assert abs(float(plain["ce"]) - float(ce)) > 1e-3


def test_head_norm_layout_nc_head_and_clear_error_on_a_mismatch():
    etf = simplex_etf(jax.random.key(1), K, CFG.feature_dim)
    recipe = NCRecipe(head_norm=True)
    params = init_nc_params(jax.random.key(0), CFG, K, recipe)
    assert set(params) == {"backbone", "head_norm"}
    np.testing.assert_array_equal(params["head_norm"], np.ones(K))
    params["head_norm"] = jnp.arange(1.0, K + 1.0)
    weights, bias = nc_head(params, etf, recipe)
    assert bias is None
    # directions stay the ETF's, lengths are the trained norms (the ETF's columns have unit norm)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=0), np.arange(1.0, K + 1.0), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(weights) / np.linalg.norm(weights, axis=0), etf, atol=1e-6)
    both = NCRecipe(head_bias=True, head_norm=True)
    assert set(init_nc_params(jax.random.key(0), CFG, K, both)) == {"backbone", "head_bias", "head_norm"}
    with pytest.raises(ValueError, match="head_norm"):
        split_nc_params(params, both)   # no head_bias entry
    # the paper's head: nc_head hands back the ETF itself
    plain = init_nc_params(jax.random.key(0), CFG, K, NCRecipe())
    weights, bias = nc_head(plain, etf, NCRecipe())
    assert weights is etf and bias is None


def test_head_norm_gradient_is_mean_of_softmax_minus_onehot_times_the_etf_logit():
    """dCE/dg_k = mean_i (softmax_k - [y_i = k]) * s <h_i, w_k> for logits s h W diag(g) + b."""
    recipe = NCRecipe(head_norm=True, head_bias=True, feature_penalty=1e-2, logit_scale=2.0)
    etf = simplex_etf(jax.random.key(1), K, CFG.feature_dim)
    params = init_nc_params(jax.random.key(2), CFG, K, recipe)
    params["head_norm"] = jnp.linspace(0.5, 1.5, K)
    params["head_bias"] = jnp.linspace(-0.3, 0.3, K)
    x, y = _batch(jax.random.key(3))
    grads, metrics = jax.grad(nc_loss_fn(CFG, etf, recipe), has_aux=True)(params, (x, y), None)
    raw = 2.0 * apply_backbone(params["backbone"], x, CFG) @ etf
    logits = raw * params["head_norm"][None, :] + params["head_bias"][None, :]
    residual = jax.nn.softmax(logits) - jax.nn.one_hot(y, K)
    np.testing.assert_allclose(grads["head_norm"], jnp.mean(residual * raw, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads["head_bias"], jnp.mean(residual, axis=0), rtol=1e-5, atol=1e-6)
    ce = jnp.mean(optax.softmax_cross_entropy(logits, jax.nn.one_hot(y, K)))
    assert float(metrics["ce"]) == pytest.approx(float(ce), rel=1e-6)
