import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import nn
from jaxml.nn.looped import LoopedConfig, apply_looped, init_looped, looped_block, parameter_count

BLOCK = nn.TransformerConfig(vocab_size=11, d_model=16, n_layers=1, n_heads=2, d_ff=64, max_len=12, norm=nn.NormKind.RMS)
TOKENS = jnp.array([[1, 4, 2, 7, 3, 9, 0, 5], [2, 2, 3, 3, 4, 4, 5, 5]])


def test_one_loop_equals_one_transformer_block():
    cfg = LoopedConfig(BLOCK)
    params = init_looped(jax.random.key(0), cfg)
    np.testing.assert_allclose(apply_looped(params, TOKENS, cfg, 1), nn.apply_transformer(params, TOKENS, BLOCK),
                               atol=1e-5)


def test_zero_initialised_adaln_starts_equal_to_the_plain_looped_model():
    ts = LoopedConfig(BLOCK, timestep=True)
    params = init_looped(jax.random.key(1), ts)
    plain = {k: v for k, v in params.items() if k != "time"}
    for r in (1, 3, 5):
        np.testing.assert_allclose(apply_looped(params, TOKENS, ts, r), apply_looped(plain, TOKENS, LoopedConfig(BLOCK), r),
                                   atol=1e-6)
    # and once the adaLN weights move, the loop index matters
    params["time"]["ada_b"] = params["time"]["ada_b"] + 0.3
    params["time"]["ada_w"] = params["time"]["ada_w"] + 0.05
    assert not np.allclose(apply_looped(params, TOKENS, ts, 3), apply_looped(plain, TOKENS, LoopedConfig(BLOCK), 3))


def test_scan_equals_runtime_r_and_a_python_loop():
    cfg = LoopedConfig(BLOCK, timestep=True)
    params = init_looped(jax.random.key(2), cfg)
    params["time"]["ada_w"] = 0.1 * jax.random.normal(jax.random.key(3), params["time"]["ada_w"].shape)
    run_r = jax.jit(lambda p, r: apply_looped(p, TOKENS, cfg, r))
    for r in (2, 4):
        x = nn.transformer.embed_tokens(params, TOKENS[0], BLOCK)
        for t in range(r):
            x = looped_block(params, x, jnp.asarray(t), cfg)
        by_hand = nn.transformer.readout(params, x, BLOCK)[0]
        np.testing.assert_allclose(apply_looped(params, TOKENS, cfg, r)[0], by_hand, atol=1e-5)
        np.testing.assert_allclose(run_r(params, jnp.asarray(r)), apply_looped(params, TOKENS, cfg, r), atol=1e-5)


def test_parameter_count_is_constant_in_r_and_quirk_changes_outputs():
    cfg = LoopedConfig(BLOCK)
    params = init_looped(jax.random.key(0), cfg)
    n = parameter_count(params)
    assert n == parameter_count(nn.init_transformer(jax.random.key(0), BLOCK))
    quirk = LoopedConfig(BLOCK, published_quirk=True)
    assert not np.allclose(apply_looped(params, TOKENS, quirk, 2), apply_looped(params, TOKENS, cfg, 2))


@pytest.mark.parametrize("bad,match", [(dict(block=BLOCK.__class__(vocab_size=5, n_layers=2)), "n_layers"),
                                       (dict(t_embed_dim=3), "t_embed_dim")])
def test_config_errors(bad, match):
    kw = dict(block=BLOCK)
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        LoopedConfig(**kw)
