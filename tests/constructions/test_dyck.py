"""The hand-built NoPE Dyck transformer against the stack algorithm (exhaustive and random)."""

import itertools

import jax
import numpy as np
import pytest

from jaxml.constructions import dyck as C
from jaxml.nn import PosEncoding, apply_transformer
from jaxml.tasks import dyck as D


def test_config_is_the_ordinary_nope_transformer_and_width_formula():
    params, cfg = C.build_recognizer(3, max_depth=10, max_len=256)
    assert cfg.pos_encoding is PosEncoding.NONE and cfg.causal and cfg.norm.name == "RMS"
    assert [a.name for a in cfg.attention] == ["UNIFORM", "UNIFORM", "SOFTMAX", "UNIFORM"]
    lay = C.layout(3, 10, 256)
    assert lay.bits == 2 and cfg.d_model == lay.d_model == 2 * 10 + 3 * 2 + 15
    assert C.layout(16, 10).bits == 4 and C.layout(17, 10).bits == 5  # O(log k) type width
    assert params["layers"][0]["attn"]["wq"].shape == (cfg.d_model, 2, 11)
    assert "pos" not in params["embed"]


def test_exhaustive_short_strings_recognition_and_next_token_sets():
    """Every string over Dyck_2's alphabet up to length 6 (5,461 strings), valid or not."""
    k = 2
    strings = [s for n in range(7) for s in itertools.product(range(2 * k), repeat=n)]
    logits = C.run_construction([np.array(s, np.int32) for s in strings], k, max_depth=8)
    for s, lg in zip(strings, logits):
        np.testing.assert_array_equal(lg[:, : 2 * k + 1] > 0, D.next_token_sets(s, k), err_msg=str(s))
        assert (lg[-1, 2 * k] > 0) == D.is_valid(s, k)


@pytest.mark.parametrize("k", [3, 5])
def test_random_valid_and_near_miss_strings(k):
    """k = 5 exceeds the character alphabet: integer symbols, 3-bit type codes. Lengths
    90..126 (one compiled shape)."""
    n, length, depth = 48, 126, 10
    batch = D.sample_batch(jax.random.key(k), n, k, min_len=90, max_len=length, max_depth=depth,
                           pad_to=length + 1)
    edited = jax.vmap(lambda kk, s, m: D.near_miss(kk, s, m, k))(
        jax.random.split(jax.random.key(100 + k), n), batch.symbols, batch.lengths)
    strs = [np.asarray(s)[:m] for s, m in zip(batch.symbols, batch.lengths)]
    strs += [np.asarray(s)[:m] for s, m in zip(edited[0], edited[1])]
    sets = C.legal_next_tokens(strs, k, max_depth=depth + 2)
    for s, got in zip(strs, sets):
        np.testing.assert_array_equal(got, D.next_token_sets(s, k))
    assert C.recognize(strs, k, max_depth=depth + 2) == [True] * n + [False] * n


def test_long_deep_string_and_depth_from_the_normalisation():
    """A length-1,200 string of depth 40: exact, and layer 1's FFN decodes the depth exactly."""
    k, depth = 2, 40
    s = np.asarray(D.sample(jax.random.key(7), 1200, k, depth, max_len=1200))
    assert D.is_valid(s, k) and D.max_depth(s, k) >= 30
    bad = s.copy()
    bad[600] = (bad[600] + 1) % k + (k if bad[600] >= k else 0)  # swap one bracket's type
    assert C.recognize([s, bad], k, max_depth=depth + 1) == [True, False]
    params, cfg = C.build_recognizer(k, max_depth=depth + 1, max_len=2048)
    _, inter = jax.jit(lambda t: apply_transformer(params, t, cfg, return_intermediates=True))(
        D.encode(s, k))
    lay = C.layout(k, depth + 1, 2048)
    dep = np.asarray(inter["residual"][1])[:, lay.dep]
    np.testing.assert_allclose(dep, D.depth_profile(s, k), atol=1e-3)


def test_overflow_is_reported_and_recognize_retries_with_a_larger_bound():
    deep = "(" * 12 + ")" * 12
    lg = C.run_construction([D.to_symbols(deep, 1)], 1, max_depth=8)[0]
    assert lg[-1, 2] < 0 and lg[-1, 3] > 0  # END rejected, OVERFLOW raised
    # rerun at depth bound 16; "(" * 30 overflows again but cannot be valid, so it stops there
    assert C.recognize([deep, deep + ")", "(" * 30], 1, max_depth=8) == [True, False, False]


def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"'a' at position 1"):
        C.recognize(["(a)"], 2)
    with pytest.raises(ValueError, match="use integer symbols"):
        C.recognize(["()"], 5)
    with pytest.raises(ValueError, match="max_depth"):
        C.build_recognizer(2, max_depth=1)


def test_padded_layout_shares_one_program_and_gives_the_same_sets():
    """pad_k = 4: k = 1, 2, 3 get the config of k = 4 (one compiled program), and their first
    2k + 2 outputs still give the exact next-token sets on every string up to length 4."""
    cfgs = set()
    for k in (1, 2, 3):
        strings = [np.array(s, np.int32) for n in range(5) for s in itertools.product(range(2 * k), repeat=n)]
        logits = C.run_construction(strings, k, max_depth=6, pad_k=4, fixed_rows=True, buckets=(16,))
        cfgs.add(C.built_recognizer(k, max_depth=6, max_len=4096, pad_k=4)[1])
        for s, lg in zip(strings, logits):
            assert lg.shape == (len(s) + 1, 2 * k + 2)
            np.testing.assert_array_equal(lg[:, : 2 * k + 1] > 0, D.next_token_sets(s, k), err_msg=str(s))
    assert len(cfgs) == 1 and C.layout(1, 6, pad_k=4).bits == 2
    with pytest.raises(ValueError, match="pad_k"):
        C.layout(3, 6, pad_k=2)
