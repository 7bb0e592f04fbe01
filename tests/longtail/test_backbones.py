"""Feature extractors: shapes, config validation, differentiability."""

import jax
import jax.numpy as jnp
import pytest

from jaxml.longtail import Backbone, BackboneConfig, apply_backbone, init_backbone


@pytest.mark.parametrize(
    "cfg",
    [
        BackboneConfig(kind=Backbone.MLP, input_shape=(8, 8, 1), feature_dim=12, width=16, depth=2),
        BackboneConfig(kind=Backbone.CNN, input_shape=(8, 8, 1), feature_dim=12, width=4),
        BackboneConfig(kind="resnet", input_shape=(4, 4, 3), feature_dim=12, width=4, blocks=(1,), groups=2),
    ],
)
def test_backbone_shapes_and_grads(cfg):
    params = init_backbone(jax.random.PRNGKey(0), cfg)
    x = jax.random.normal(jax.random.PRNGKey(1), (5, *cfg.input_shape))

    @jax.jit
    def run(p, x):
        h = apply_backbone(p, x, cfg)
        h0 = apply_backbone(p, x[:1], cfg)
        if cfg.kind is not Backbone.MLP:  # conv backward passes compile slowly on CPU; MLP checks grads
            return h, h0, jnp.ones(())
        grads = jax.grad(lambda q: jnp.sum(apply_backbone(q, x, cfg) ** 2))(p)
        return h, h0, sum(jnp.sum(jnp.abs(g)) for g in jax.tree_util.tree_leaves(grads))

    h, h0, grad_size = run(params, x)
    assert h.shape == (5, 12)
    assert float(grad_size) > 0.0
    # per-example independence (no batch statistics): example 0 alone gives the same features
    assert jnp.allclose(h0[0], h[0], atol=1e-5)


def test_backbone_config_errors():
    with pytest.raises(ValueError, match="input_shape"):
        BackboneConfig(kind=Backbone.CNN, input_shape=(64,))
    with pytest.raises(ValueError):
        BackboneConfig(kind="transformer")
    cfg = BackboneConfig(kind=Backbone.MLP, input_shape=(8, 8, 1), feature_dim=4, width=8, depth=1)
    params = init_backbone(jax.random.PRNGKey(0), cfg)
    with pytest.raises(ValueError, match="config expects"):
        apply_backbone(params, jnp.zeros((2, 7, 7, 1)), cfg)
