"""Long-tailed digits from scikit-learn's bundled copy (no download)."""

import jax
import numpy as np
import pytest

pytest.importorskip("sklearn")

from jaxml.data.digits import load_digits, longtail_digits  # noqa: E402


def test_load_digits_shapes():
    x, y = load_digits()
    assert x.shape == (1797, 8, 8) and y.shape == (1797,)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_longtail_digits_profile_and_balance():
    d = longtail_digits(jax.random.PRNGKey(0), n_max=100, imbalance_ratio=100, val_per_class=20, test_per_class=50)
    np.testing.assert_array_equal(d.class_counts, [100, 59, 35, 21, 12, 7, 4, 2, 1, 1])
    np.testing.assert_array_equal(np.bincount(d.y_train, minlength=10), d.class_counts)
    np.testing.assert_array_equal(np.bincount(d.y_val), [20] * 10)
    np.testing.assert_array_equal(np.bincount(d.y_test), [50] * 10)
    # disjoint: no image row appears in two splits
    # disjoint: a training image seen in test must be one of the few exact duplicates in the data set
    x, _ = load_digits()
    _, inverse, counts = np.unique(x.reshape(len(x), -1), axis=0, return_inverse=True, return_counts=True)
    duplicated = {x[i].tobytes() for i in np.flatnonzero(counts[inverse.ravel()] > 1)}
    overlap = {r.tobytes() for r in d.x_train} & {r.tobytes() for r in d.x_test}
    assert overlap <= duplicated
    # same key, same split
    d2 = longtail_digits(jax.random.PRNGKey(0), n_max=100, imbalance_ratio=100, val_per_class=20, test_per_class=50)
    np.testing.assert_array_equal(d.x_train, d2.x_train)


def test_longtail_digits_too_large():
    with pytest.raises(ValueError, match="lower n_max"):
        longtail_digits(jax.random.PRNGKey(0), n_max=150, val_per_class=20, test_per_class=50)
