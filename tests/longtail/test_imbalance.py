"""Long-tailed profile counts, splits and grouped accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.longtail import exponential_profile, grouped_accuracy, longtail_indices, longtail_split, shot_groups


def test_profile_matches_published_cifar_lt_sizes():
    # CIFAR-10-LT and CIFAR-100-LT at imbalance 100 (Cao et al. 2019): 12,406 and 10,847 images
    c10 = exponential_profile(5000, 10, 100)
    assert c10.sum() == 12406 and c10[0] == 5000 and c10[-1] == 50
    c100 = exponential_profile(500, 100, 100)
    assert c100.sum() == 10847 and c100[0] == 500 and c100[-1] == 5
    assert np.all(np.diff(c100) <= 0)


def test_profile_by_hand_and_errors():
    # 100 * 100^(-k/9): 100, 59.9, 35.9, 21.5, 12.9, 7.7, 4.6, 2.78, 1.67, 1
    np.testing.assert_array_equal(exponential_profile(100, 10, 100), [100, 59, 35, 21, 12, 7, 4, 2, 1, 1])
    np.testing.assert_array_equal(exponential_profile(7, 4, 1.0), [7, 7, 7, 7])
    with pytest.raises(ValueError, match="imbalance_ratio"):
        exponential_profile(10, 3, 0.5)


def test_longtail_split_disjoint_and_counts():
    labels = np.repeat(np.arange(5), 40)
    split = longtail_split(jax.random.PRNGKey(0), labels, 5, n_max=20, imbalance_ratio=10, val_per_class=5,
                           test_per_class=10)
    np.testing.assert_array_equal(np.bincount(labels[split.train], minlength=5), split.class_counts)
    np.testing.assert_array_equal(np.bincount(labels[split.val]), [5] * 5)
    np.testing.assert_array_equal(np.bincount(labels[split.test]), [10] * 5)
    allidx = np.concatenate([split.train, split.val, split.test])
    assert len(np.unique(allidx)) == len(allidx)
    with pytest.raises(ValueError, match="class 0 has 40 examples"):
        longtail_split(jax.random.PRNGKey(0), labels, 5, n_max=30, imbalance_ratio=10, val_per_class=5,
                       test_per_class=10)


def test_longtail_indices_counts():
    labels = np.repeat(np.arange(3), 10)
    idx = longtail_indices(jax.random.PRNGKey(3), labels, np.array([10, 4, 1]))
    np.testing.assert_array_equal(np.bincount(labels[idx]), [10, 4, 1])


def test_grouped_accuracy_by_hand():
    counts = np.array([200, 50, 10])
    groups = shot_groups(counts, many=100, few=20)
    np.testing.assert_array_equal(groups["many"], [True, False, False])
    np.testing.assert_array_equal(groups["medium"], [False, True, False])
    np.testing.assert_array_equal(groups["few"], [False, False, True])
    labels = jnp.array([0, 0, 1, 1, 1, 1, 2, 2])
    preds = jnp.array([0, 0, 1, 0, 0, 0, 2, 0])
    acc = grouped_accuracy(preds, labels, counts, 100, 20)
    assert acc["many"] == pytest.approx(1.0)
    assert acc["medium"] == pytest.approx(0.25)
    assert acc["few"] == pytest.approx(0.5)
    assert acc["all"] == pytest.approx((1.0 + 0.25 + 0.5) / 3)
