"""The speed-motivated implementations in jaxml.nn compute the textbook formulas.

Each fast path (2-D ``linear`` and its CPU custom derivative, erf GELU, closed-form LayerNorm/RMSNorm
derivatives, block-causal attention, batch-native transformer) is compared with the plain formula it
replaced, in values and in first- and second-order derivatives.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import nn
from jaxml.nn.layers import gelu, linear


def _plain_layer_norm(p, x, eps=1e-5):
    mu = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mu), axis=-1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + eps) * p["scale"][None, :] + p["bias"][None, :]


def _plain_rms_norm(p, x, eps=1e-6):
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps) * p["scale"][None, :]


def test_linear_equals_tensordot_with_its_gradients():
    kx, kw, kv = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (2, 3, 4, 5))
    for w, n in ((jax.random.normal(kw, (5, 6)), 1), (jax.random.normal(kv, (4, 5, 7)), 2)):
        want = jnp.tensordot(x, w, axes=n)
        np.testing.assert_allclose(linear(x, w, n), want, rtol=1e-5, atol=1e-5)
        g = jax.grad(lambda x, w, n=n: jnp.sum(jnp.sin(linear(x, w, n))), argnums=(0, 1))(x, w)
        h = jax.grad(lambda x, w, n=n: jnp.sum(jnp.sin(jnp.tensordot(x, w, axes=n))), argnums=(0, 1))(x, w)
        for a, b in zip(g, h):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(linear(x[0, 0, 0], jnp.eye(5)), x[0, 0, 0])  # a single vector


@pytest.mark.parametrize("lead, w_shape, n", [((300,), (12, 5), 1),       # K > M: (g^T x)^T weight gradient
                                               ((2, 150), (5, 12), 1),     # K < M
                                               ((3, 64), (4, 3, 6), 2),    # two contracted axes, K > M
                                               ((130,), (3, 4, 2, 5), 2)])  # several output axes
def test_cpu_matmul_path_is_the_product_rule(lead, w_shape, n):
    """Products with >= CPU_MATMUL_MIN_ROWS rows take the custom-derivative path on CPU; its values,
    gradients (also with the weight frozen), forward-mode derivatives, Hessian-vector products and
    vmap equal those of the plain tensordot (float64, so any rearrangement error would show)."""
    from jaxml.nn.layers import CPU_MATMUL_MIN_ROWS

    assert int(np.prod(lead)) >= CPU_MATMUL_MIN_ROWS
    with jax.enable_x64(True):
        kx, kw = jax.random.split(jax.random.key(1))
        x = jax.random.normal(kx, lead + w_shape[:n], jnp.float64)
        w = jax.random.normal(kw, w_shape, jnp.float64)

        def f(x, w):
            return linear(x, w, n)

        def ref(x, w):
            return jnp.tensordot(x, w, axes=n)

        assert "custom_jvp_call" in str(jax.make_jaxpr(f)(x, w))

        def loss(fn):
            return lambda x, w: jnp.sum(jnp.sin(fn(x, w)))

        np.testing.assert_allclose(f(x, w), ref(x, w), rtol=1e-12)
        for a, b in zip(jax.grad(loss(f), (0, 1))(x, w), jax.grad(loss(ref), (0, 1))(x, w)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(jax.grad(loss(f))(x, w), jax.grad(loss(ref))(x, w), rtol=1e-10, atol=1e-12)
        v = (jnp.cos(x), jnp.sin(w))
        np.testing.assert_allclose(jax.jvp(f, (x, w), v)[1], jax.jvp(ref, (x, w), v)[1], rtol=1e-10, atol=1e-12)
        hvp = [jax.jvp(jax.grad(loss(fn), (0, 1)), (x, w), v)[1] for fn in (f, ref)]
        for a, b in zip(*hvp):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)
        ws = jnp.stack([w, 2 * w])
        np.testing.assert_allclose(jax.vmap(f, (None, 0))(x, ws), jax.vmap(ref, (None, 0))(x, ws), rtol=1e-12)
        # below the row threshold the product is the plain dot_general
        assert "custom_jvp_call" not in str(jax.make_jaxpr(f)(x.reshape((-1,) + w_shape[:n])[:3], w))


def test_gelu_is_x_times_the_normal_cdf():
    x = jnp.linspace(-6.0, 6.0, 241)
    np.testing.assert_allclose(gelu(x), jax.nn.gelu(x, approximate=False), atol=1e-6)  # a few float32 ulps
    np.testing.assert_allclose(jax.vmap(jax.grad(gelu))(x), jax.vmap(jax.grad(lambda v: jax.nn.gelu(v, False)))(x),
                               atol=1e-6)
    np.testing.assert_allclose(nn.Activation.GELU(x), gelu(x))


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_norm_derivatives_equal_autodiff_of_the_formula(kind):
    d = 6
    key_x, key_s, key_b, key_t = jax.random.split(jax.random.key(1), 4)
    x = 3.0 * jax.random.normal(key_x, (4, d)) + 1.0
    p = {"scale": 1.0 + 0.3 * jax.random.normal(key_s, (d,)), "bias": 0.1 * jax.random.normal(key_b, (d,))}
    fast, plain = (nn.layer_norm, _plain_layer_norm) if kind == "layer" else (nn.rms_norm, _plain_rms_norm)
    if kind == "rms":
        p = {"scale": p["scale"]}
    np.testing.assert_allclose(fast(p, x), plain(p, x), rtol=1e-5, atol=1e-6)

    def loss(f):
        return lambda p, x: jnp.sum(jnp.tanh(f(p, x)) * jnp.arange(d)[None, :])

    for a, b in zip(jax.tree_util.tree_leaves(jax.grad(loss(fast), argnums=(0, 1))(p, x)),
                    jax.tree_util.tree_leaves(jax.grad(loss(plain), argnums=(0, 1))(p, x))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    t = jax.random.normal(key_t, x.shape)
    np.testing.assert_allclose(jax.jvp(lambda x: fast(p, x), (x,), (t,))[1],
                               jax.jvp(lambda x: plain(p, x), (x,), (t,))[1], rtol=1e-4, atol=1e-5)
    h_fast = jax.hessian(lambda v: loss(fast)(p, v))(x[:1])
    h_plain = jax.hessian(lambda v: loss(plain)(p, v))(x[:1])
    np.testing.assert_allclose(h_fast, h_plain, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kind", list(nn.AttentionKind))
def test_block_causal_attention_equals_the_full_masked_attention(kind):
    kq, kk, kv, kb = jax.random.split(jax.random.key(2), 4)
    t, s, h, dh = 37, 41, 2, 4  # more keys than queries; blocks that do not divide T
    q = jax.random.normal(kq, (3, t, h, dh))
    k = jax.random.normal(kk, (3, s, h, dh))
    v = jax.random.normal(kv, (3, s, h, dh))
    bias = jax.random.normal(kb, (h, t, s))

    def full(q, k, v, bias):
        return nn.attention(q, k, v, kind=kind, mask=nn.causal_mask(t, s), bias=bias)

    for block in (5, 16, 36):
        out_b, probs_b = nn.causal_attention(q, k, v, kind=kind, bias=bias, block=block)
        out_f, probs_f = full(q, k, v, bias)
        np.testing.assert_allclose(out_b, out_f, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(probs_b, probs_f, rtol=1e-5, atol=1e-6)
    if kind is nn.AttentionKind.SOFTMAX:
        gb = jax.grad(lambda *a: jnp.sum(jnp.sin(nn.causal_attention(*a[:3], bias=a[3], block=8)[0])),
                      argnums=(0, 1, 2, 3))(q, k, v, bias)
        gf = jax.grad(lambda *a: jnp.sum(jnp.sin(full(*a)[0])), argnums=(0, 1, 2, 3))(q, k, v, bias)
        for a, b in zip(gb, gf):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert nn.causal_block_size(64) == 0 and nn.causal_block_size(256) == 64 and nn.causal_block_size(4096) == 128


def test_uniform_causal_attention_is_the_running_mean_of_the_values():
    """Without a bias, UNIFORM causal attention is computed as prefix sums / counts: the same
    outputs, probabilities and gradients as the masked T x S product, exact on integer values."""
    kq, kk, kv = jax.random.split(jax.random.key(3), 3)
    for t, s in ((9, 9), (6, 11)):
        q = jax.random.normal(kq, (2, t, 3, 4))
        k = jax.random.normal(kk, (2, s, 3, 4))
        v = jax.random.normal(kv, (2, s, 3, 5))
        uniform = nn.AttentionKind.UNIFORM
        out, probs = nn.causal_attention(q, k, v, kind=uniform)
        out_f, probs_f = nn.attention(q, k, v, kind=uniform, mask=nn.causal_mask(t, s))
        np.testing.assert_allclose(out, out_f, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(probs, probs_f)
        g = jax.grad(lambda v: jnp.sum(jnp.sin(nn.causal_attention(q, k, v, kind=uniform)[0])))(v)
        g_f = jax.grad(lambda v: jnp.sum(jnp.sin(nn.attention(q, k, v, kind=uniform, mask=nn.causal_mask(t, s))[0])))(v)
        np.testing.assert_allclose(g, g_f, rtol=1e-5, atol=1e-6)
    steps = jnp.where(jax.random.bernoulli(kv, 0.5, (1, 1000, 1, 1)), 1.0, -1.0)  # a +-1 walk
    mean, _ = nn.causal_attention(steps, steps, steps, kind=nn.AttentionKind.UNIFORM)
    want = np.cumsum(np.asarray(steps, np.float64), axis=1) / np.arange(1, 1001)[None, :, None, None]
    np.testing.assert_array_equal(mean, want.astype(np.float32))


@pytest.mark.parametrize("extra", [
    dict(pos_encoding=nn.PosEncoding.RELATIVE, norm=nn.NormKind.NONE, final_norm=False, n_heads=1),
    dict(pos_encoding=nn.PosEncoding.ROPE, norm=nn.NormKind.RMS, bos_token=0),
    dict(pos_encoding=nn.PosEncoding.LEARNED, attention=(nn.AttentionKind.UNIFORM, nn.AttentionKind.HARDMAX)),
])
def test_batched_model_equals_per_sequence_runs_and_blocks_change_nothing(extra):
    kw = dict(vocab_size=11, d_model=16, n_layers=2, n_heads=2, d_ff=24, max_len=140)
    kw.update(extra)
    cfg = nn.TransformerConfig(**kw)
    full = nn.TransformerConfig(**kw, attention_block=0)
    params = nn.init_transformer(jax.random.key(3), cfg)
    toks = jax.random.randint(jax.random.key(4), (2, 130), 0, 11)  # T >= 128: default blocks engage
    logits, inter = nn.apply_transformer(params, toks, cfg, return_intermediates=True)
    for i in range(2):
        np.testing.assert_allclose(nn.apply_transformer(params, toks[i], cfg), logits[i], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.vmap(lambda s: nn.apply_transformer(params, s, cfg))(toks), logits,
                               rtol=1e-5, atol=1e-5)
    logits_f, inter_f = nn.apply_transformer(params, toks, full, return_intermediates=True)
    np.testing.assert_allclose(logits, logits_f, rtol=1e-5, atol=1e-5)
    for a, b in zip(inter["attn_probs"], inter_f["attn_probs"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    def loss(c):
        return lambda p: jnp.mean(jnp.square(nn.apply_transformer(p, toks, c)))

    for a, b in zip(jax.tree_util.tree_leaves(jax.grad(loss(cfg))(params)),
                    jax.tree_util.tree_leaves(jax.grad(loss(full))(params))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_attention_block_is_validated():
    with pytest.raises(ValueError, match="attention_block"):
        nn.TransformerConfig(vocab_size=5, attention_block=-1)
