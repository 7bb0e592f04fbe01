"""ETF head and neural-collapse metrics against exact values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import (
    class_mean_norms,
    class_means,
    collapse_metrics,
    etf_gram,
    feature_norm_penalty,
    simplex_etf,
)


@pytest.mark.parametrize("k,d,key", [(10, 9, None), (10, 32, 0), (100, 128, 1)])
def test_etf_gram(k, d, key):
    w = simplex_etf(None if key is None else jax.random.PRNGKey(key), k, d)
    assert w.shape == (d, k)
    gram = np.asarray(w.T @ w)
    np.testing.assert_allclose(np.diag(gram), 1.0, atol=1e-5)
    off = gram[~np.eye(k, dtype=bool)]
    np.testing.assert_allclose(off, -1.0 / (k - 1), atol=1e-5)
    np.testing.assert_allclose(gram, np.asarray(etf_gram(k)), atol=1e-5)
    np.testing.assert_allclose(np.asarray(w).sum(axis=1), 0.0, atol=1e-5)  # columns sum to zero


def test_etf_rejects_small_dim():
    with pytest.raises(ValueError, match="dim >= 9"):
        simplex_etf(None, 10, 5)


def test_feature_norm_penalty_value():
    h = jnp.array([[3.0, 4.0], [0.0, 1.0]])
    assert float(feature_norm_penalty(h, 0.01)) == pytest.approx(0.5 * 0.01 * (25 + 1) / 2)


def test_perfect_collapse_metrics_are_zero():
    k, d = 6, 8
    w = simplex_etf(jax.random.PRNGKey(0), k, d)
    labels = jnp.repeat(jnp.arange(k), 5)
    features = 2.0 * w.T[labels]
    m = collapse_metrics(features, labels, w)
    assert float(m["nc1"]) == pytest.approx(0.0, abs=1e-6)
    assert float(m["nc2_etf_distance"]) == pytest.approx(0.0, abs=1e-5)
    assert float(m["nc3_alignment"]) == pytest.approx(0.0, abs=1e-5)
    assert float(m["mean_norm"]) == pytest.approx(2.0, rel=1e-5)
    np.testing.assert_allclose(class_mean_norms(features, labels, k), 2.0, rtol=1e-5)


def test_metrics_detect_spread_and_misalignment():
    k, d = 4, 6
    w = simplex_etf(jax.random.PRNGKey(0), k, d)
    labels = jnp.repeat(jnp.arange(k), 50)
    noise = jax.random.normal(jax.random.PRNGKey(1), (labels.shape[0], d))
    features = w.T[labels] + 0.3 * noise
    m = collapse_metrics(features, labels, w)
    assert float(m["nc1"]) > 0.01
    # a rotated ETF is still an ETF (NC2 ~ 0) but not aligned with the classifier (NC3 > 0)
    w2 = simplex_etf(jax.random.PRNGKey(5), k, d)
    m2 = collapse_metrics(w2.T[labels], labels, w)
    assert float(m2["nc2_etf_distance"]) < 1e-4
    assert float(m2["nc3_alignment"]) > 0.1


def test_class_means_by_hand():
    f = jnp.array([[1.0, 0.0], [3.0, 2.0], [0.0, 5.0]])
    y = jnp.array([0, 0, 2])
    means, counts = class_means(f, y, 3)
    np.testing.assert_allclose(means, [[2.0, 1.0], [0.0, 0.0], [0.0, 5.0]])
    np.testing.assert_allclose(counts, [2, 0, 1])
