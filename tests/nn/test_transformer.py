import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import nn


def _cfg(**kw):
    base = dict(vocab_size=13, d_model=16, n_layers=2, n_heads=2, d_ff=32, max_len=24)
    base.update(kw)
    return nn.TransformerConfig(**base)


@pytest.mark.parametrize("pe", list(nn.PosEncoding))
def test_shapes_every_positional_encoding(pe):
    cfg = _cfg(pos_encoding=pe)
    params = nn.init_transformer(jax.random.key(0), cfg)
    toks = jax.random.randint(jax.random.key(1), (3, 10), 0, 13)
    logits, inter = nn.apply_transformer(params, toks, cfg, return_intermediates=True)
    assert logits.shape == (3, 10, 13)
    assert len(inter["residual"]) == cfg.n_layers + 1
    assert inter["attn_probs"][0].shape == (3, 2, 10, 10)
    np.testing.assert_allclose(np.asarray(inter["attn_probs"][1]).sum(-1), 1.0, atol=1e-5)
    single = nn.apply_transformer(params, toks[0], cfg)
    np.testing.assert_allclose(single, logits[0], atol=1e-5)


@pytest.mark.parametrize("pe,kind", [(pe, nn.AttentionKind.SOFTMAX) for pe in nn.PosEncoding]
                         + [(nn.PosEncoding.NONE, k) for k in (nn.AttentionKind.HARDMAX, nn.AttentionKind.UNIFORM)])
def test_causal_mask_future_tokens_never_change_the_past(pe, kind):
    cfg = _cfg(pos_encoding=pe, attention=kind)
    params = nn.init_transformer(jax.random.key(2), cfg)
    a = jax.random.randint(jax.random.key(3), (12,), 0, 13)
    b = a.at[7:].set((a[7:] + 5) % 13)
    la, lb = nn.apply_transformer(params, a, cfg), nn.apply_transformer(params, b, cfg)
    np.testing.assert_allclose(la[:7], lb[:7], atol=1e-6)
    assert not np.allclose(la[7:], lb[7:])


def test_bidirectional_attention_sees_the_future():
    cfg = _cfg(causal=False)
    params = nn.init_transformer(jax.random.key(2), cfg)
    a = jnp.arange(10) % 13
    b = a.at[9].set(0)
    assert not np.allclose(nn.apply_transformer(params, a, cfg)[0], nn.apply_transformer(params, b, cfg)[0])


def test_hardmax_is_the_zero_temperature_limit_of_softmax():
    scores = jax.random.normal(jax.random.key(0), (4, 9, 9))
    mask = nn.causal_mask(9)
    hard = nn.attention_probs(scores, mask, nn.AttentionKind.HARDMAX)
    soft = nn.attention_probs(scores, mask, nn.AttentionKind.SOFTMAX, temperature=1e-4)
    np.testing.assert_allclose(hard, soft, atol=1e-5)
    # ties are split uniformly, which is also the limit of softmax on exact ties
    tied = jnp.array([[1.0, 3.0, 3.0, 0.0]])
    np.testing.assert_allclose(nn.attention_probs(tied, None, nn.AttentionKind.HARDMAX), [[0, 0.5, 0.5, 0]])


def test_uniform_attention_averages_the_prefix():
    probs = nn.attention_probs(jnp.zeros((5, 5)), nn.causal_mask(5), nn.AttentionKind.UNIFORM)
    np.testing.assert_allclose(probs[:, 0], 1.0 / np.arange(1, 6), atol=1e-7)


def test_rope_scores_depend_only_on_relative_offset():
    key_q, key_k = jax.random.split(jax.random.key(0))
    q = jax.random.normal(key_q, (1, 1, 8))
    k = jax.random.normal(key_k, (1, 1, 8))
    def score(i, j):
        qi = nn.apply_rope(q, jnp.array([i]))
        kj = nn.apply_rope(k, jnp.array([j]))
        return float(jnp.sum(qi * kj))
    for off in (0, 1, 5):
        vals = [score(s + off, s) for s in (0, 3, 17, 40)]
        np.testing.assert_allclose(vals, vals[0], rtol=1e-4, atol=1e-5)
    assert abs(score(5, 0) - score(0, 0)) > 1e-3


def test_relative_bias_runs_beyond_max_len_and_clips():
    table = jnp.arange(2 * 4 - 1, dtype=jnp.float32)[None, :]
    bias = nn.relative_bias(table, 6)
    assert bias.shape == (1, 6, 6)
    assert float(bias[0, 5, 0]) == float(table[0, -1])  # offset 5 clipped to 3
    assert float(bias[0, 2, 2]) == float(table[0, 3])   # offset 0 in the middle
    cfg = _cfg(pos_encoding=nn.PosEncoding.RELATIVE, max_len=8)
    params = nn.init_transformer(jax.random.key(0), cfg)
    assert nn.apply_transformer(params, jnp.zeros(30, jnp.int32), cfg).shape == (30, 13)


def test_learned_positions_refuse_sequences_longer_than_max_len():
    cfg = _cfg(max_len=8)
    params = nn.init_transformer(jax.random.key(0), cfg)
    with pytest.raises(ValueError, match="max_len"):
        nn.apply_transformer(params, jnp.zeros(9, jnp.int32), cfg)


def test_per_layer_attention_kinds_ffn_free_and_bos():
    cfg = _cfg(attention=(nn.AttentionKind.UNIFORM, nn.AttentionKind.HARDMAX), d_ff=0,
               pos_encoding=nn.PosEncoding.NONE, norm=nn.NormKind.RMS, bos_token=0)
    params = nn.init_transformer(jax.random.key(0), cfg)
    assert "ffn" not in params["layers"][0]
    logits, inter = nn.apply_transformer(params, jnp.arange(1, 6), cfg, return_intermediates=True)
    assert logits.shape == (5, 13)
    assert inter["attn_probs"][0].shape == (2, 6, 6)  # BOS kept in the intermediates
    np.testing.assert_allclose(inter["attn_probs"][0][0, :, 0], 1.0 / np.arange(1, 7), atol=1e-6)


@pytest.mark.parametrize("bad,match", [
    (dict(d_model=15), "divisible"),
    (dict(n_layers=0), "n_layers"),
    (dict(attention=(nn.AttentionKind.SOFTMAX,)), "one kind per layer"),
    (dict(tie_embeddings=True, out_dim=3), "out_dim"),
    (dict(d_ff=-1), "d_ff"),
])
def test_config_validation_names_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        _cfg(**bad)


def test_layers_match_closed_forms():
    x = jnp.array([[1.0, 2.0, 3.0, 6.0]])
    ln = nn.layer_norm(nn.layer_norm_init(4), x)
    np.testing.assert_allclose(ln.mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(jnp.var(ln), 1.0, atol=1e-3)
    rms = nn.rms_norm(nn.rms_norm_init(4), x)
    np.testing.assert_allclose(rms, x / np.sqrt(np.mean(np.square(x))), rtol=1e-5)
    p = nn.mlp_init(jax.random.key(0), [4, 8, 3])
    out = nn.mlp(p, x)
    l0, l1 = p["layers"]
    hand = jax.nn.relu(x @ l0["w"] + l0["b"][None, :]) @ l1["w"] + l1["b"][None, :]
    np.testing.assert_allclose(out, hand, rtol=1e-6)
    tied = _cfg(tie_embeddings=True)
    params = nn.init_transformer(jax.random.key(0), tied)
    assert "unembed" not in params
