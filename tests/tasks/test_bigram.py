"""Tests for jaxml.tasks.bigram: estimation, trigger sampler statistics, designed prompts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.tasks import bigram as bg


_sample_batch = jax.jit(bg.sample_trigger_batch, static_argnums=(2, 3))


def _source(seed, v, concentration=0.5):
    """A random bigram drawn with NumPy (keeps the JAX compile count of the tests low)."""
    rng = np.random.default_rng(seed)
    trans = rng.dirichlet(np.full(v, concentration), size=v) + 1e-6
    return bg.make_bigram_source(trans / trans.sum(1, keepdims=True))


def test_bigram_from_text_counts_exactly():
    src = bg.bigram_from_text("aab")
    assert src.alphabet == "ab"
    np.testing.assert_allclose(np.asarray(src.unigram), [2 / 3, 1 / 3], rtol=1e-6)
    # a -> a once, a -> b once; b ends the text so its row is the unigram.
    np.testing.assert_allclose(np.asarray(src.transition), [[0.5, 0.5], [2 / 3, 1 / 3]],
                               rtol=1e-6)
    smooth = bg.bigram_from_text("aab", smoothing=1.0)
    np.testing.assert_allclose(np.asarray(smooth.transition), [[0.5, 0.5], [0.5, 0.5]])


def test_encode_decode_roundtrip_and_errors():
    src = bg.bigram_from_text("hello world")
    ids = bg.encode(src, "low")
    assert bg.decode(src, ids) == "low"
    with pytest.raises(ValueError, match="'z' is not in the source's alphabet"):
        bg.encode(src, "z")


def test_make_bigram_source_validates():
    with pytest.raises(ValueError, match="row 1 sums to"):
        bg.make_bigram_source(np.array([[0.5, 0.5], [0.2, 0.2]]))
    with pytest.raises(ValueError, match="square"):
        bg.make_bigram_source(np.ones((2, 3)) / 3)
    with pytest.raises(ValueError, match="negative"):
        bg.make_bigram_source(np.array([[1.5, -0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="alphabet has 3 symbols"):
        bg.make_bigram_source(np.eye(2), alphabet="abc")


def test_stationary_distribution_is_fixed_point():
    src = jax.jit(bg.dirichlet_bigram, static_argnums=(1, 2))(jax.random.PRNGKey(0), 7, 0.5)
    np.testing.assert_allclose(np.asarray(src.transition).sum(1), 1.0, atol=1e-5)
    mu = np.asarray(src.unigram)
    np.testing.assert_allclose(mu @ np.asarray(src.transition), mu, atol=1e-5)
    # Periodic chain a <-> b: power iteration on the lazy chain still converges.
    per = bg.make_bigram_source(np.array([[0.0, 1.0], [1.0, 0.0]]))
    np.testing.assert_allclose(np.asarray(per.unigram), [0.5, 0.5], atol=1e-6)


def test_trigger_config_validation():
    with pytest.raises(ValueError, match="seq_len"):
        bg.TriggerTaskConfig(seq_len=1)
    with pytest.raises(ValueError, match="num_triggers"):
        bg.TriggerTaskConfig(num_triggers=0)
    with pytest.raises(ValueError, match="trigger_kind must be a TriggerKind"):
        bg.TriggerTaskConfig(trigger_kind="random")
    with pytest.raises(ValueError, match="output_kind must be an OutputKind"):
        bg.TriggerTaskConfig(output_kind="uniform")


def test_output_kind_sets_the_output_distribution():
    """UNIGRAM outputs follow pi_u, UNIFORM outputs are uniform (Bietti et al.'s code).

    Monte Carlo: 4,000 sequences x 2 outputs (8,000 draws) over V = 4 tokens with
    pi_u = (0.85, 0.05, 0.05, 0.05); frequencies checked within 5 binomial standard errors.
    """
    trans = np.full((4, 4), 0.25)
    src = bg.make_bigram_source(trans, unigram=[0.85, 0.05, 0.05, 0.05])
    n = 4000
    for kind, expect in ((bg.OutputKind.UNIGRAM, [0.85, 0.05, 0.05, 0.05]),
                         (bg.OutputKind.UNIFORM, [0.25] * 4)):
        cfg = bg.TriggerTaskConfig(seq_len=4, num_triggers=2, output_kind=kind)
        outs = np.asarray(_sample_batch(jax.random.PRNGKey(3), src, cfg, n).outputs).reshape(-1)
        freq = np.bincount(outs, minlength=4) / outs.size
        se = np.sqrt(np.asarray(expect) * (1 - np.asarray(expect)) / outs.size)
        assert np.all(np.abs(freq - expect) <= 5 * se), (kind, freq)


def _brute_induction_mask(inputs, triggers):
    out = np.zeros(len(inputs), bool)
    for t, z in enumerate(inputs):
        out[t] = z in set(triggers) and z in set(inputs[:t])
    return out


def test_trigger_sampler_statistics_match_the_bigram():
    """Non-trigger transitions follow pi_b; triggers are always followed by their output.

    Monte Carlo: 300 sequences x 200 transitions (60,000) over V = 6 tokens, one fixed
    trigger; each entry of each visited row is checked within 5 binomial standard errors.
    """
    src = _source(1, 6, 1.0)
    cfg = bg.TriggerTaskConfig(seq_len=200, num_triggers=1, trigger_kind=bg.TriggerKind.FIXED)
    batch = _sample_batch(jax.random.PRNGKey(2), src, cfg, 300)
    inputs, targets = np.asarray(batch.inputs), np.asarray(batch.targets)
    trig, outs = np.asarray(batch.triggers), np.asarray(batch.outputs)
    assert inputs.shape == (300, 200) and trig.shape == (300, 1)
    # Fixed triggers: the most frequent token in every sequence.
    assert np.all(trig[:, 0] == int(np.argmax(np.asarray(src.unigram))))
    # Shifted views of one chain.
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
    # Every trigger occurrence is followed by that sequence's output token.
    at_trigger = inputs == trig[:, :1]
    np.testing.assert_array_equal(targets[at_trigger],
                                  np.broadcast_to(outs[:, :1], inputs.shape)[at_trigger])
    # Non-trigger transitions: empirical conditionals match pi_b.
    counts = np.zeros((6, 6))
    np.add.at(counts, (inputs[~at_trigger], targets[~at_trigger]), 1.0)
    p = np.asarray(src.transition)
    for i in range(6):
        if i == trig[0, 0]:
            assert counts[i].sum() == 0
            continue
        n = counts[i].sum()
        assert n > 150
        # 5 standard errors of a binomial proportion per entry.
        tol = 5 * np.sqrt(p[i] * (1 - p[i]) / n) + 1e-3
        assert np.all(np.abs(counts[i] / n - p[i]) <= tol), (i, counts[i] / n, p[i])
    # Output tokens are drawn from the unigram (300 draws; 5 standard errors ~ 0.15).
    freq = np.bincount(outs[:, 0], minlength=6) / 300
    np.testing.assert_allclose(freq, np.asarray(src.unigram), atol=0.15)


def test_random_triggers_are_distinct_and_mask_matches_brute_force():
    src = _source(3, 10, 0.3)
    cfg = bg.TriggerTaskConfig(seq_len=40, num_triggers=4)
    batch = _sample_batch(jax.random.PRNGKey(4), src, cfg, 8)
    for b in range(8):
        trig = np.asarray(batch.triggers[b])
        assert len(set(trig.tolist())) == 4
        expected = _brute_induction_mask(np.asarray(batch.inputs[b]).tolist(), trig.tolist())
        np.testing.assert_array_equal(np.asarray(batch.induction_mask[b]), expected)
        # Induction targets are outputs of the trigger at that position.
        for t in np.flatnonzero(expected):
            k = int(np.flatnonzero(trig == int(batch.inputs[b, t]))[0])
            assert int(batch.targets[b, t]) == int(batch.outputs[b, k])


def test_sampler_is_deterministic_per_key():
    src = _source(3, 10, 0.3)
    cfg = bg.TriggerTaskConfig(seq_len=40, num_triggers=4)
    a = _sample_batch(jax.random.PRNGKey(6), src, cfg, 8)
    b = _sample_batch(jax.random.PRNGKey(6), src, cfg, 8)
    c = _sample_batch(jax.random.PRNGKey(7), src, cfg, 8)
    np.testing.assert_array_equal(np.asarray(a.inputs), np.asarray(b.inputs))
    assert not np.array_equal(np.asarray(a.inputs), np.asarray(c.inputs))


@pytest.mark.parametrize("r", [0, 5])
def test_designed_prompt_structure(r):
    src = _source(8, 12, 0.5)
    q, o, extra = 3, 7, 9
    tokens = np.asarray(bg.designed_prompt(jax.random.PRNGKey(9), src, length=40, query=q,
                                           followers=[o] * r, exclude=[extra, o]))
    assert tokens.shape == (40,) and tokens[-1] == q
    q_pos = np.flatnonzero(tokens == q)
    assert len(q_pos) == r + 1
    np.testing.assert_array_equal(tokens[q_pos[:-1] + 1], np.full(r, o))
    assert np.sum(tokens == o) == r and np.sum(tokens == extra) == 0
    # Filler transitions have non-zero probability under the restricted bigram.
    planted = set(q_pos.tolist()) | set((q_pos[:-1] + 1).tolist())
    restricted = np.asarray(bg.restricted_bigram(src, [q, o, extra]))
    for t in range(39):
        if t not in planted and t + 1 not in planted:
            assert restricted[tokens[t], tokens[t + 1]] > 0


def test_designed_prompt_mixed_followers_and_errors():
    src = _source(10, 8)
    tokens = np.asarray(bg.designed_prompt(jax.random.PRNGKey(11), src, length=30, query=0,
                                           followers=[1, 2, 1]))
    q_pos = np.flatnonzero(tokens == 0)
    np.testing.assert_array_equal(tokens[q_pos[:-1] + 1], [1, 2, 1])
    with pytest.raises(ValueError, match="too short"):
        bg.designed_prompt(jax.random.PRNGKey(0), src, length=8, query=0, followers=[1] * 3)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bg.designed_prompt(jax.random.PRNGKey(0), src, length=20, query=99, followers=[1])


def test_plant_pairs_per_row_followers_match_the_list_form_and_vmap():
    """An array of followers ``(rows, r)`` plants a different token in each row, exactly as the
    list form does row by row, also when the followers are traced (vmapped)."""
    fill = jax.random.randint(jax.random.PRNGKey(3), (3, 20), 5, 9)
    fol = jnp.asarray([[1, 1, 1], [2, 2, 2], [4, 1, 2]])
    got = np.asarray(bg.plant_pairs(fill, 0, fol))
    for i in range(3):
        np.testing.assert_array_equal(got[i], np.asarray(bg.plant_pairs(fill[i], 0, [int(f) for f in fol[i]])))
    vm = jax.vmap(lambda row, f: bg.plant_pairs(row, 0, f))(fill, fol)
    np.testing.assert_array_equal(np.asarray(vm), got)
    empty = np.asarray(bg.plant_pairs(fill, 0, jnp.zeros((3, 0), jnp.int32)))
    np.testing.assert_array_equal(empty[:, :-1], np.asarray(fill)[:, :-1])
    assert np.all(empty[:, -1] == 0)
    with pytest.raises(ValueError, match="not a scalar"):
        bg.plant_pairs(fill, 0, jnp.asarray(1))


def test_empirical_bigram_counts():
    tokens = jnp.asarray([[0, 1, 1, 2], [2, 0, 1, 0]])
    c = np.asarray(bg.empirical_bigram(tokens, 3))
    expected = np.zeros((3, 3))
    for row in np.asarray(tokens):
        for a, b in zip(row[:-1], row[1:]):
            expected[a, b] += 1
    np.testing.assert_array_equal(c, expected)
