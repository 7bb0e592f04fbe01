import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.tasks.dp import (
    DPTask,
    decode_answer,
    edit_distance,
    edit_distance_py,
    lcs_length,
    lcs_py,
    sample_batch,
    seq_len,
    vocab_size,
)


def _lcs_brute(a, b):
    best = 0
    for k in range(len(a) + 1):
        for idx in itertools.combinations(range(len(a)), k):
            sub = [a[i] for i in idx]
            it = iter(b)
            if all(c in it for c in sub):
                best = max(best, k)
    return best


def _edit_brute(a, b, ins_del=2, sub=3):
    # edit distance = min over alignments; with ins/del 2 and sub 3 it equals
    # min over common subsequences s and substitution counts: enumerate via recursion with memo-free search
    from functools import lru_cache

    @lru_cache(None)
    def go(i, j):
        if i == len(a):
            return ins_del * (len(b) - j)
        if j == len(b):
            return ins_del * (len(a) - i)
        return min(go(i + 1, j) + ins_del, go(i, j + 1) + ins_del, go(i + 1, j + 1) + (0 if a[i] == b[j] else sub))
    return go(0, 0)


def test_jax_dp_matches_python_dp_and_brute_force_on_all_short_strings():
    strings = [list(s) for n in range(4) for s in itertools.product(range(3), repeat=n)]
    pairs = [(a, b) for a in strings for b in strings if len(a) == len(b) and len(a) > 0][::3]
    for a, b in pairs:
        assert edit_distance_py(a, b) == _edit_brute(a, b)
        assert lcs_py(a, b) == _lcs_brute(a, b)
    same = [(a, b) for a, b in pairs if len(a) == 3]
    A = jnp.array([a for a, _ in same])
    B = jnp.array([b for _, b in same])
    np.testing.assert_array_equal(jax.vmap(edit_distance)(A, B), [edit_distance_py(a, b) for a, b in same])
    np.testing.assert_array_equal(jax.vmap(lcs_length)(A, B), [lcs_py(a, b) for a, b in same])
    assert int(edit_distance(jnp.array([0, 1]), jnp.array([1, 0]))) == 4  # delete + insert beats two substitutions (6)


@pytest.mark.parametrize("task", list(DPTask))
def test_batches_are_well_formed(task):
    b = sample_batch(jax.random.key(0), task, batch=64, n=5, alphabet=4)
    assert b.tokens.shape == (64, seq_len(5))
    t = np.asarray(b.tokens)
    assert (t[:, 5] == 4).all() and (t[:, -1] == 5).all() and t[:, :5].max() < 4
    assert np.asarray(b.target).max() < vocab_size(task, 5, 4)
    np.testing.assert_array_equal(decode_answer(b.target, 4), b.answer)
    ref = edit_distance_py if task is DPTask.EDIT else lcs_py
    assert all(ref(list(r[:5]), list(r[6:11])) == int(v) for r, v in zip(t, np.asarray(b.answer)))
    with pytest.raises(ValueError, match="alphabet"):
        sample_batch(jax.random.key(0), task, batch=2, n=3, alphabet=1)


def test_row_prefix_min_max_dp_matches_python_dp_on_random_strings_of_unequal_lengths():
    # 200 random pairs per (n, m, alphabet), also other costs: the cummin/cummax rows vs the plain DP
    rng = np.random.default_rng(0)
    for n, m, alphabet in [(5, 5, 4), (8, 3, 3), (2, 9, 2), (12, 12, 5)]:
        a = rng.integers(0, alphabet, (200, n))
        b = rng.integers(0, alphabet, (200, m))
        ed = np.asarray(jax.vmap(edit_distance)(jnp.asarray(a), jnp.asarray(b)))
        ed11 = np.asarray(jax.vmap(lambda x, y: edit_distance(x, y, 1, 1))(jnp.asarray(a), jnp.asarray(b)))
        lc = np.asarray(jax.vmap(lcs_length)(jnp.asarray(a), jnp.asarray(b)))
        np.testing.assert_array_equal(ed, [edit_distance_py(list(x), list(y)) for x, y in zip(a, b)])
        np.testing.assert_array_equal(ed11, [edit_distance_py(list(x), list(y), 1, 1) for x, y in zip(a, b)])
        np.testing.assert_array_equal(lc, [lcs_py(list(x), list(y)) for x, y in zip(a, b)])
