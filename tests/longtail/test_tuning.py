"""Gamma search against brute-force evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import accuracy_curve, predict, predict_batched, tune_gamma


def _data():
    key = jax.random.PRNGKey(0)
    k = 6
    labels = jnp.repeat(jnp.arange(k), 30)
    counts = jnp.array([300.0, 120.0, 50.0, 20.0, 8.0, 3.0])
    # logits biased towards head classes, as after imbalanced training
    logits = 2.0 * jax.nn.one_hot(labels, k) + jax.random.normal(key, (labels.shape[0], k)) + 0.4 * jnp.log(counts)[None, :]
    return logits, labels, counts


@pytest.mark.parametrize("method", ["additive", "multiplicative", "pairwise"])
def test_curve_matches_brute_force(method):
    logits, labels, counts = _data()
    gammas = jnp.array([0.0, 0.3, 0.9])
    curve = np.asarray(accuracy_curve(logits, labels, counts, method, gammas, batch_size=32))
    for i, g in enumerate(np.asarray(gammas)):
        pred = np.asarray(predict(logits, counts, method, float(g)))
        per_class = [np.mean(pred[np.asarray(labels) == c] == c) for c in range(6)]
        np.testing.assert_allclose(curve[i], per_class, atol=1e-6)


def test_tune_gamma_picks_argmax_and_beats_none():
    logits, labels, counts = _data()
    gammas = np.linspace(0.0, 1.5, 16)
    res = tune_gamma(logits, labels, counts, "additive", gammas)
    assert res.gamma == pytest.approx(gammas[int(np.argmax(res.score))])
    assert res.score.max() > res.score[0] + 0.02  # adjustment helps on head-biased logits
    assert res.per_class.shape == (16, 6)


def test_predict_batched_equals_predict():
    logits, _, counts = _data()
    a = predict_batched(logits, counts, "pairwise", 0.5, batch_size=7)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(predict(logits, counts, "pairwise", 0.5)))
