"""Tests for the capacity search: bisection on synthetic monotone oracles, masks, one real search."""

import jax
import numpy as np
import pytest

from jaxml.tasks import memorize as M
from jaxml.train import capacity as K


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("threshold", [1, 2, 7, 19, 40, 41])
def test_bisection_finds_known_threshold(threshold, k):
    calls = []

    def oracle(sizes):
        calls.append(list(sizes))
        return [s >= threshold for s in sizes]

    res = K.bisect_min_size(oracle, 1, 40, probes_per_round=k)
    assert res.min_size == (threshold if threshold <= 40 else None)
    assert all(len(c) == k for c in calls)
    # k-section: about log_{k+1}(40) + 1 rounds, far fewer than a linear scan
    assert res.rounds <= int(np.ceil(np.log(40) / np.log(k + 1))) + 2
    for s, ok in res.probes.items():
        assert ok == (s >= threshold)


def test_lockstep_search_of_several_problems():
    thresholds = [3, 11, 30, 5]
    shapes = []

    def oracle(per_problem):
        shapes.append([len(s) for s in per_problem])
        return [[s >= t for s in sizes] for sizes, t in zip(per_problem, thresholds)]

    out = K.bisect_min_sizes(oracle, 2, 32, len(thresholds), probes_per_round=2)
    assert [r.min_size for r in out] == thresholds
    assert all(sh == [2, 2, 2, 2] for sh in shapes)      # fixed batch shape every round


def test_bisection_errors():
    with pytest.raises(ValueError, match="lo=5"):
        K.bisect_min_size(lambda s: [True], 5, 2)
    with pytest.raises(ValueError, match="max_size"):
        K.CapacityConfig(min_size=9, max_size=4)
    with pytest.raises(ValueError, match="num_seeds"):
        K.CapacityConfig(num_seeds=1, min_successes=2)


def test_parameter_count_matches_closed_form():
    ds = M.random_dataset(jax.random.PRNGKey(0), 10, 5, 3, 2)
    cfg = K.CapacityConfig(max_size=12, depth=2, ff_ratio=2)
    for w in (1, 4, 12):
        V, n, C, L, r = 3, 5, 2, 2, 2
        closed = (V + n + C) * w + L * (4 * w * w + 2 * r * w * w + r * w + 3 * w) + w
        assert K.parameter_count(ds, cfg, w) == closed
    # the closed form is the number of ones in the mask that carves the model out of the largest one
    model = K.model_config(3, 5, 2, cfg)
    zeros = jax.tree_util.tree_map(lambda s: np.zeros(s.shape), jax.eval_shape(lambda k: K.init_transformer(k, model), jax.random.PRNGKey(0)))
    mask = K.size_mask(zeros, model, cfg, 4, 3, 5, 2)
    assert sum(float(np.sum(x)) for x in jax.tree_util.tree_leaves(mask)) == K.parameter_count(ds, cfg, 4)
    dcfg = K.CapacityConfig(axis=K.SizeAxis.DEPTH, max_size=4, width=6)
    assert K.parameter_count(ds, dcfg, 3) - K.parameter_count(ds, dcfg, 2) == 4 * 36 + 2 * 2 * 36 + 2 * 6 + 3 * 6


def test_padding_layout():
    a = M.random_dataset(jax.random.PRNGKey(0), 4, 3, 2, 2)
    b = M.random_dataset(jax.random.PRNGKey(1), 6, 5, 3, 4, M.Setting.SEQ2SEQ)
    data, v_max, c_max = K.pad_datasets([a, b])
    assert (v_max, c_max) == (3, 4) and data.tokens.shape == (2, 6, 5)
    np.testing.assert_array_equal(data.tokens[0, :4, 2:], a.tokens)
    assert (data.tokens[0, :, :2] == 3).all() and data.weights[0].sum() == 4
    np.testing.assert_array_equal(data.labels[0, :4, -1], a.labels)
    np.testing.assert_array_equal(data.labels[1], b.labels)
    assert data.weights[1].sum() == 30


def test_masked_search_on_a_tiny_dataset():
    """A real (tiny) search: 12 sequences with binary labels are memorised, and the found width
    is minimal among the probes (every probed smaller width failed)."""
    ds = M.random_dataset(jax.random.PRNGKey(0), 12, 4, 3, 2)
    cfg = K.CapacityConfig(max_size=8, num_steps=150, learning_rate=3e-2, num_seeds=1, probes_per_round=2)
    (res,) = K.capacity_search(jax.random.PRNGKey(0), [ds], cfg)
    assert res.min_size is not None and res.min_params == K.parameter_count(ds, cfg, res.min_size)
    assert res.probes[res.min_size] == 1.0 and res.accuracy[res.min_size] == 1.0
    assert all(frac == 0.0 for s, frac in res.probes.items() if s < res.min_size)


def test_capacity_map_trains_every_cell_like_the_search():
    """The map trains each (data set, size, seed) cell as the search does: the same keys and
    budget give the same final accuracies at the sizes the search probed, and min_size /
    violations are read off the memorised table."""
    ds = M.random_dataset(jax.random.PRNGKey(0), 12, 4, 3, 2)
    cfg = K.CapacityConfig(max_size=8, num_steps=150, learning_rate=3e-2, num_seeds=2, probes_per_round=2)
    key = jax.random.PRNGKey(0)
    (res,) = K.capacity_search(key, [ds], cfg)
    cmap = K.capacity_map(key, [ds], [1, 2, 4, 8], cfg)
    assert cmap.accuracy.shape == (1, 4, 2) and cmap.memorised.shape == (1, 4)
    np.testing.assert_array_equal(cmap.sizes, [1, 2, 4, 8])
    for i, z in enumerate(cmap.sizes):
        assert cmap.params[0, i] == K.parameter_count(ds, cfg, int(z))
        if int(z) in res.accuracy:   # a size the search also trained: same cell, same result
            assert cmap.accuracy[0, i].max() == pytest.approx(res.accuracy[int(z)], abs=1e-6)
    row = cmap.memorised[0]
    assert row.any() and cmap.min_size[0] == int(cmap.sizes[np.argmax(row)])
    first = int(np.argmax(row))
    assert cmap.violations[0] == [int(z) for z, ok in zip(cmap.sizes[first:], row[first:]) if not ok]


def test_capacity_map_rejects_sizes_outside_the_masked_model():
    ds = M.random_dataset(jax.random.PRNGKey(0), 6, 3, 3, 2)
    cfg = K.CapacityConfig(max_size=4, num_steps=5, num_seeds=1)
    with pytest.raises(ValueError, match="max_size"):
        K.capacity_map(jax.random.PRNGKey(0), [ds], [2, 8], cfg)
    with pytest.raises(ValueError, match="data set"):
        K.capacity_map(jax.random.PRNGKey(0), [], [2], cfg)
