"""Tests for the associative-memory induction head against its closed-form logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.constructions import induction_head as ih
from jaxml.tasks import bigram as bg

V = 12
_apply = jax.jit(ih.apply_induction_head, static_argnums=2, static_argnames="return_terms")
_closed = jax.jit(ih.closed_form_logits, static_argnums=1)


@pytest.fixture(scope="module")
def source():
    rng = np.random.default_rng(0)
    trans = rng.dirichlet(np.full(V, 0.3), size=V) + 1e-6
    return bg.make_bigram_source(trans / trans.sum(1, keepdims=True))


@pytest.fixture(scope="module")
def sequence(source):
    cfg = bg.TriggerTaskConfig(seq_len=48, num_triggers=3)
    return bg.sample_trigger_sequence(jax.random.PRNGKey(1), source, cfg).inputs


@pytest.mark.parametrize("pe, memory", [
    (ih.PrevTokenHead.ABSOLUTE, ih.BigramMemory.ARGMAX),
    (ih.PrevTokenHead.RELATIVE, ih.BigramMemory.LOG_PROBABILITY),
])
def test_construction_equals_closed_form(source, sequence, pe, memory):
    width = 3 * V + (64 if pe is ih.PrevTokenHead.ABSOLUTE else 0)
    cfg = ih.InductionHeadConfig(vocab_size=V, d_model=width, max_len=64, prev_token_head=pe,
                                 bigram_memory=memory, beta1=6.0, beta2=3.0, alpha=0.7)
    params = ih.init_induction_head(jax.random.PRNGKey(2), cfg, source.transition)
    logits, terms = _apply(params, sequence, cfg, return_terms=True)
    theory = _closed(sequence, cfg, source.transition)
    np.testing.assert_allclose(np.asarray(logits), np.asarray(theory["logits"]), atol=2e-5)
    np.testing.assert_allclose(np.asarray(terms["in_context"]),
                               np.asarray(theory["in_context"]), atol=2e-5)
    np.testing.assert_allclose(np.asarray(terms["bigram"]), np.asarray(theory["bigram"]),
                               atol=2e-5)
    np.testing.assert_allclose(np.asarray(terms["residual"]), 0.0, atol=2e-5)
    # The previous-token head puts e^b1 / (e^b1 + t) on t - 1 at position t.
    a1 = np.asarray(terms["attn1"])
    t = np.arange(1, 48)
    np.testing.assert_allclose(a1[t, t - 1], np.exp(6.0) / (np.exp(6.0) + t), rtol=1e-4)


def test_bigram_memory_tables(source):
    p = np.asarray(source.transition)
    arg = np.asarray(ih.bigram_memory_table(source.transition, ih.BigramMemory.ARGMAX))
    np.testing.assert_array_equal(arg, np.eye(V)[p.argmax(1)])
    prob = np.asarray(ih.bigram_memory_table(source.transition, ih.BigramMemory.PROBABILITY))
    np.testing.assert_allclose(prob, p, rtol=1e-6)
    logp = np.asarray(ih.bigram_memory_table(source.transition,
                                             ih.BigramMemory.LOG_PROBABILITY))
    np.testing.assert_allclose(logp, np.log(np.maximum(p, 1e-4)), rtol=1e-5)


def test_closed_form_by_explicit_sums(source):
    """The vectorised closed form equals a literal double loop over positions."""
    cfg = ih.InductionHeadConfig(vocab_size=V, d_model=3 * V, max_len=16, beta1=1.5, beta2=2.0,
                                 alpha=0.3, bigram_memory=ih.BigramMemory.PROBABILITY)
    tokens = np.asarray(bg.sample_trigger_sequence(
        jax.random.PRNGKey(3), source, bg.TriggerTaskConfig(seq_len=10, num_triggers=2)).inputs)
    p = np.asarray(source.transition)
    ref = np.zeros((10, V))
    for t in range(10):
        def a1(s, sp):
            scores = np.array([cfg.beta1 * (k == s - 1) for k in range(s + 1)], float)
            w = np.exp(scores - scores.max())
            return (w / w.sum())[sp]
        m = np.array([sum(a1(s, sp) * (tokens[sp] == tokens[t]) for sp in range(s + 1))
                      for s in range(t + 1)])
        w = np.exp(cfg.beta2 * m - (cfg.beta2 * m).max())
        a2 = w / w.sum()
        for s in range(t + 1):
            ref[t, tokens[s]] += a2[s]
        ref[t] += cfg.alpha * p[tokens[t]]
    got = _closed(jnp.asarray(tokens), cfg, source.transition)["logits"]
    np.testing.assert_allclose(np.asarray(got), ref, atol=1e-5)


def test_designed_prompts_follow_the_formula_and_hijack_point(source):
    """In-context logit = r e^b2 / (r e^b2 + L - r); the argmax switches where theory says."""
    alpha, beta2, length = 0.9, 4.0, 64
    cfg = ih.InductionHeadConfig(vocab_size=V, d_model=3 * V, max_len=length, beta1=40.0,
                                 beta2=beta2, alpha=alpha)
    params = ih.init_induction_head(jax.random.PRNGKey(6), cfg, source.transition)
    q = 1
    b = int(np.argmax(np.asarray(source.transition)[q]))
    o = next(j for j in range(V) if j not in (q, b))
    rs = np.arange(0, 15)
    ic = np.asarray(ih.designed_prompt_in_context_logit(rs, length, beta2))
    r_star = int(rs[np.argmax(ic > alpha)])
    assert 1 < r_star < 14  # the crossover lies inside the sweep
    for r in rs:
        prompt = bg.designed_prompt(jax.random.PRNGKey(100 + int(r)), source, length=length,
                                    query=q, followers=[o] * int(r), exclude=[o, b])
        logits, terms = _apply(params, prompt, cfg, return_terms=True)
        assert float(terms["in_context"][-1, o]) == pytest.approx(float(ic[r]), abs=1e-5)
        assert float(terms["bigram"][-1, b]) == pytest.approx(alpha, abs=1e-5)
        assert int(jnp.argmax(logits[-1])) == (o if r >= r_star else b), r


def test_gaussian_embeddings_approximate_the_closed_form(source, sequence):
    """Near-orthogonal N(0, 1/d) embeddings: interference shrinks like 1/sqrt(d)."""
    errs = []
    for d in (128, 2048):
        cfg = ih.InductionHeadConfig(vocab_size=V, d_model=d, max_len=64, beta1=6.0,
                                     beta2=3.0, embedding=ih.EmbeddingKind.GAUSSIAN)
        params = ih.init_induction_head(jax.random.PRNGKey(7), cfg, source.transition)
        logits = _apply(params, sequence, cfg)
        theory = _closed(sequence, cfg, source.transition)["logits"]
        errs.append(float(jnp.mean(jnp.abs(logits - theory))))
    assert errs[1] < 0.5 * errs[0]
    assert errs[1] < 0.1


def test_saturation_fit_recovers_parameters():
    rs = np.arange(0, 12)
    y = 0.4 + 2.5 * np.asarray(ih.designed_prompt_in_context_logit(rs, 50, 3.0))
    fit = ih.saturation_curve(rs, 50, y)
    assert fit["r2"] > 0.99999
    assert fit["beta"] == pytest.approx(3.0, abs=0.05)
    assert fit["c0"] == pytest.approx(0.4, abs=1e-3)
    assert fit["c1"] == pytest.approx(2.5, abs=1e-2)
    flat = ih.saturation_curve(rs, 50, np.random.default_rng(0).normal(size=12))
    assert flat["r2"] < 0.9


def test_config_and_input_validation(source):
    with pytest.raises(ValueError, match="d_model=64 is too small"):
        ih.InductionHeadConfig(vocab_size=V, d_model=64, max_len=64,
                               prev_token_head=ih.PrevTokenHead.ABSOLUTE)
    with pytest.raises(ValueError, match="prev_token_head must be a PrevTokenHead"):
        ih.InductionHeadConfig(vocab_size=V, d_model=64, prev_token_head="rpe")
    cfg = ih.InductionHeadConfig(vocab_size=V, d_model=3 * V, max_len=8)
    with pytest.raises(ValueError, match="transition has shape"):
        ih.init_induction_head(jax.random.PRNGKey(0), cfg, jnp.eye(3))
    params = ih.init_induction_head(jax.random.PRNGKey(0), cfg, source.transition)
    with pytest.raises(ValueError, match="exceeds max_len=8"):
        ih.apply_induction_head(params, jnp.zeros((9,), jnp.int32), cfg)


@pytest.mark.parametrize("pe", list(ih.PrevTokenHead))
def test_transformer_weights_reproduce_the_construction(source, sequence, pe):
    """Written into jaxml.nn's transformer, the construction computes the same logits and the
    same in-context / bigram split (logit_decomposition)."""
    width = 3 * V + (64 if pe is ih.PrevTokenHead.ABSOLUTE else 0)
    cfg = ih.InductionHeadConfig(vocab_size=V, d_model=width, max_len=64, prev_token_head=pe,
                                 beta1=6.0, beta2=3.0, alpha=0.7)
    params = ih.init_induction_head(jax.random.PRNGKey(2), cfg, source.transition)
    tparams, tcfg = ih.to_transformer(params, cfg)
    dec = jax.jit(lambda p, x: ih.logit_decomposition(p, tcfg, x))(tparams, sequence)
    theory = _closed(sequence, cfg, source.transition)
    for k in ("logits", "in_context", "bigram"):
        np.testing.assert_allclose(np.asarray(dec[k]), np.asarray(theory[k]), atol=2e-5)
    np.testing.assert_allclose(np.asarray(dec["other"]), 0.0, atol=2e-5)


def test_logit_decomposition_requires_linear_readout(source):
    from jaxml.nn import NormKind, TransformerConfig, init_transformer

    tcfg = TransformerConfig(vocab_size=V, d_model=8, n_layers=1, n_heads=1, d_ff=0,
                             norm=NormKind.LAYER)
    params = init_transformer(jax.random.PRNGKey(0), tcfg)
    with pytest.raises(ValueError, match="norm=NormKind.NONE and final_norm=False"):
        ih.logit_decomposition(params, tcfg, jnp.zeros((4,), jnp.int32))


def test_relative_encoding_is_shift_invariant():
    """With RPE a window of tokens gives the same output wherever it sits; with APE it does not.

    One attention layer whose relative bias confines attention to the last 4 offsets (-1e4
    elsewhere): the last position's output depends only on those tokens and their offsets.
    """
    from jaxml.nn import NormKind, PosEncoding, TransformerConfig, apply_transformer, init_transformer

    window = jnp.asarray([3, 1, 4, 1, 5], jnp.int32)
    prefix = jnp.asarray([2, 7, 1, 8, 2, 8, 1, 8], jnp.int32)
    outs = {}
    for pe in (PosEncoding.RELATIVE, PosEncoding.LEARNED):
        tcfg = TransformerConfig(vocab_size=V, d_model=16, n_layers=1, n_heads=2, d_ff=0,
                                 max_len=16, pos_encoding=pe, norm=NormKind.NONE,
                                 final_norm=False, embed_scale=0.5)
        params = init_transformer(jax.random.PRNGKey(3), tcfg)
        if pe is PosEncoding.RELATIVE:
            offsets = jnp.arange(-(16 - 1), 16)
            near = (offsets >= 0) & (offsets < 4)
            params["layers"][0]["attn"]["rel"] = jnp.stack(
                [jnp.where(near, 0.3 * offsets, -1e4), jnp.where(near, -0.5 * offsets, -1e4)])
        short = apply_transformer(params, window, tcfg)[-1]
        long = apply_transformer(params, jnp.concatenate([prefix, window]), tcfg)[-1]
        outs[pe] = float(jnp.max(jnp.abs(short - long)))
    assert outs[PosEncoding.RELATIVE] < 1e-5
    assert outs[PosEncoding.LEARNED] > 1e-3
