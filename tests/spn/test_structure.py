"""Region-graph structures: partitions, counts, validation."""

import jax
import numpy as np
import pytest

from jaxml.spn.structure import RatSpnConfig, build_structure, choices_per_level, describe


def test_leaf_regions_partition_variables_evenly():
    cfg = RatSpnConfig(num_vars=11, depth=3, num_sums=2, num_inputs=3, num_repetitions=4)
    st = build_structure(jax.random.PRNGKey(0), cfg)
    leaf_of = np.asarray(st.leaf_of)
    assert leaf_of.shape == (4, 11)
    for r in range(4):
        sizes = np.bincount(leaf_of[r], minlength=8)
        assert sizes.sum() == 11 and sizes.min() >= 1 and sizes.max() <= 2
    # repetitions use different random permutations
    assert len({tuple(row) for row in leaf_of}) > 1


def test_describe_counts_match_a_hand_count():
    # L=2, S=3, I=2, R=2: root chooses among R*S*S=18 products; 2 regions x 3 sums at level 1,
    # each with I*I=4 products, per repetition
    cfg = RatSpnConfig(num_vars=6, depth=2, num_sums=3, num_inputs=2, num_repetitions=2)
    info = describe(cfg)
    assert choices_per_level(cfg) == (18, 4)
    assert info["sum_nodes"] == 1 + 2 * 2 * 3
    assert info["sum_edges"] == 18 + 2 * 2 * 3 * 4
    assert info["input_nodes"] == 2 * 4 * 2
    assert info["tree_sum_nodes"] == 3 and info["tree_input_nodes"] == 4
    assert info["tree_sum_choices"] == 18 + 2 * 4


def test_tree_size_is_independent_of_width():
    small = describe(RatSpnConfig(num_vars=16, depth=4, num_sums=2, num_inputs=2))
    big = describe(RatSpnConfig(num_vars=16, depth=4, num_sums=8, num_inputs=8,
                                num_repetitions=10))
    assert big["sum_edges"] > 100 * small["sum_edges"]
    assert big["tree_sum_nodes"] == small["tree_sum_nodes"] == 15


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_vars=4, depth=3), "depth=3"),
    (dict(num_vars=4, num_sums=0), "num_sums"),
    (dict(num_vars=4, num_repetitions=-1), "num_repetitions"),
])
def test_invalid_config_names_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RatSpnConfig(**kwargs)
