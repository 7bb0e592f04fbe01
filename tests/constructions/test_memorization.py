"""Tests for the hardmax memorisation construction: exact on random data, counts, scaling."""

import jax
import numpy as np
import pytest

from jaxml.constructions import memorization as C
from jaxml.tasks import memorize as M


@pytest.mark.parametrize("setting", list(M.Setting))
@pytest.mark.parametrize("num,seq_len,vocab,classes", [(1, 3, 2, 2), (7, 4, 3, 2), (150, 6, 4, 5), (300, 6, 3, 2)])
def test_construction_memorises_exactly(setting, num, seq_len, vocab, classes):
    ds = M.random_dataset(jax.random.PRNGKey(num), num, seq_len, vocab, classes, setting)
    params, spec = C.build_memorizer(jax.random.PRNGKey(1), ds)
    pred = C.apply_memorizer(params, ds.tokens, spec)
    np.testing.assert_array_equal(pred, ds.labels)
    # the weights written are exactly what the closed form counts
    assert C.count_parameters(params) == C.parameter_count(num, seq_len, vocab, classes, setting)


def test_contextual_id_is_the_weighted_sum():
    """After embedding + token-wise FFN + averaging attention, register z = sum_i w_i x_i (brute force)."""
    ds = M.random_dataset(jax.random.PRNGKey(0), 30, 5, 4, 2)
    params, spec = C.build_memorizer(jax.random.PRNGKey(2), ds)
    ffn = params["context_ffn"]
    # recover w_i from the FFN by evaluating it on e = x + V i for x = 1
    s_index, e_index = C.REGISTERS.index("s"), C.REGISTERS.index("e")
    def s_of(e):
        pre = ffn["w1"][e_index] * e + ffn["b1"]
        return int(sum(np.where(pre > 0, pre, 0) * ffn["w2"][:, s_index]))
    weights = [s_of(1 + 4 * i) for i in range(5)]
    for i in range(5):
        for x in range(4):   # s(x, i) = w_i x exactly, for every token and position
            assert s_of(x + 4 * i) == weights[i] * x
    assert all(0 <= w < spec.hash_range for w in weights)
    ids = [sum(w * int(x) for w, x in zip(weights, row)) for row in ds.tokens]
    assert len(set(ids)) == 30


def test_wrong_labels_are_not_reproduced():
    """A memoriser built for one labelling disagrees with a different labelling where they differ."""
    ds = M.random_dataset(jax.random.PRNGKey(5), 64, 6, 3, 2)
    params, spec = C.build_memorizer(jax.random.PRNGKey(0), ds)
    flipped = 1 - ds.labels
    assert M.accuracy(C.apply_memorizer(params, ds.tokens, spec), flipped) == 0.0


def test_parameter_count_grows_like_sqrt_n():
    sizes = np.array([256, 512, 1024, 2048, 4096])
    for setting in M.Setting:
        counts = [C.parameter_count(int(n), 8, 4, 2, setting) for n in sizes]
        slope = np.polyfit(np.log(sizes), np.log(counts), 1)[0]
        assert abs(slope - 0.5) < 0.1, (setting, slope)
    # seq2seq pays for n: more parameters than next-token, growing with n
    assert C.parameter_count(512, 16, 4, 2, M.Setting.SEQ2SEQ) > 1.5 * C.parameter_count(512, 4, 4, 2, M.Setting.SEQ2SEQ)
    assert C.parameter_count(512, 16, 4, 2) < 1.2 * C.parameter_count(512, 4, 4, 2)


def test_optimal_group_size_minimises():
    n_seq, n, v, c = 300, 6, 4, 2
    best = C.optimal_group_size(n_seq, n, v, c)
    assert 1 <= best <= n_seq
    assert best > 1  # grouping pays off: the sqrt trade-off, not a lookup table


def test_errors():
    ds = M.random_dataset(jax.random.PRNGKey(0), 5, 3, 2, 2)
    repeated = ds._replace(tokens=np.concatenate([ds.tokens, ds.tokens[:1]]),
                           labels=np.concatenate([ds.labels, ds.labels[:1]]))
    with pytest.raises(ValueError, match="deduplicate"):
        C.build_memorizer(jax.random.PRNGKey(0), repeated)
    with pytest.raises(ValueError, match="labels must lie"):
        C.build_memorizer(jax.random.PRNGKey(0), ds._replace(labels=ds.labels + 2))
    params, spec = C.build_memorizer(jax.random.PRNGKey(0), ds)
    with pytest.raises(ValueError, match="shape"):
        C.apply_memorizer(params, ds.tokens[:, :2], spec)
    with pytest.raises(ValueError, match="num_sequences"):
        C.parameter_count(0, 3, 2, 2)
