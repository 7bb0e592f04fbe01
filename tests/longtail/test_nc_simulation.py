"""Synthetic collapsed features: spread law and class means."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import class_means, class_spreads, sample_collapsed_features, simplex_etf


def test_spread_law():
    s = np.asarray(class_spreads(np.array([400, 100, 4]), 0.5))
    np.testing.assert_allclose(s, [0.5, 1.0, 5.0], rtol=1e-6)


def test_samples_have_etf_means_and_spread():
    k, d, n = 5, 64, 2000  # 2,000 samples per class: sample-mean error ~ sigma/sqrt(n*d) per coordinate
    etf = simplex_etf(jax.random.PRNGKey(0), k, d)
    counts = np.array([100, 50, 25, 10, 4])
    f, y = sample_collapsed_features(jax.random.PRNGKey(1), etf, counts, n, spread=0.2, mean_norms=jnp.full(k, 2.0))
    means, _ = class_means(f, y, k)
    np.testing.assert_allclose(np.asarray(means), 2.0 * np.asarray(etf.T), atol=0.02)
    dist = np.asarray(jnp.linalg.norm(f - means[y], axis=-1))
    sigma = 0.2 * np.sqrt(100 / counts)
    for c in range(k):
        rms = np.sqrt(np.mean(dist[np.asarray(y) == c] ** 2))
        assert rms == pytest.approx(sigma[c], rel=0.05)
    with pytest.raises(ValueError, match="class_counts"):
        sample_collapsed_features(jax.random.PRNGKey(1), etf, counts[:3], 2, spread=0.1)
