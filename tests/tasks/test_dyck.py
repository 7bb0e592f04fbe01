"""Dyck / Shuffle-Dyck generators, near misses and labels against brute force and stack algorithms."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml.tasks import dyck as D


def _all_strings(k, n):
    return itertools.product(range(2 * k), repeat=n)


def _brute_dyck(sym, k):
    """Membership by repeated deletion of adjacent matched pairs (no stack)."""
    s = list(sym)
    changed = True
    while changed:
        changed = False
        for i in range(len(s) - 1):
            if s[i] < k and s[i + 1] == s[i] + k:
                del s[i: i + 2]
                changed = True
                break
    return not s


def _brute_shuffle(sym, k):
    for t in range(k):
        c = 0
        for x in sym:
            c += 1 if x == t else -1 if x == k + t else 0
            if c < 0:
                return False
        if c:
            return False
    return True


def test_characters_roundtrip_and_errors():
    s = "([]{<>})"
    assert D.to_string(D.to_symbols(s, 4), 4) == s
    assert D.decode(D.encode(s, 4), 4) == s
    np.testing.assert_array_equal(D.encode("()", 1), [D.BOS, 1, 2])
    np.testing.assert_array_equal(D.encode("()", 1, bos=False), [1, 2])
    assert D.vocab_size(2) == 6 and D.pad_token(2) == 5 and D.num_labels(2) == 5
    with pytest.raises(ValueError, match=r"'x' at position 2"):
        D.to_symbols("([x])", 2)
    with pytest.raises(ValueError, match="'{' at position 0"):
        D.to_symbols("{}", 2)  # k=2 has only () and []
    with pytest.raises(ValueError, match="use integer symbols"):
        D.alphabet(5)
    with pytest.raises(ValueError, match="symbol 7 at position 1"):
        D.to_symbols([0, 7], 3)
    assert D.is_valid([0, 5, 1, 6], 5)  # integer symbols beyond the character alphabet


@pytest.mark.parametrize("kind", list(D.DyckKind))
def test_stack_algorithm_matches_brute_force(kind):
    brute = _brute_dyck if kind is D.DyckKind.DYCK else _brute_shuffle
    for k in (1, 2):
        for n in range(0, 7):
            for sym in _all_strings(k, n):
                assert D.is_valid(sym, k, kind) == brute(sym, k), (sym, kind)
    assert D.is_valid("([)]", 2, D.DyckKind.SHUFFLE) and not D.is_valid("([)]", 2)


@pytest.mark.parametrize("kind", list(D.DyckKind))
def test_next_token_sets_by_brute_force_extension(kind):
    """A token is legal iff some completion of prefix + token is in the language (n <= 6)."""
    k, n_max = 2, 8  # prefixes below have length <= 4, so any completion fits in 8
    brute = _brute_dyck if kind is D.DyckKind.DYCK else _brute_shuffle
    lang = {sym for n in range(0, n_max + 1, 2) for sym in _all_strings(k, n) if brute(sym, k)}
    prefixes = {w[:i] for w in lang for i in range(len(w) + 1)}
    for n in range(0, 4):
        for sym in _all_strings(k, n):
            sets = D.next_token_sets(sym, k, kind)
            # the last row: legal continuations of the whole prefix (within the length bound)
            row = sets[-1]
            for tok in range(2 * k):
                assert row[tok] == ((sym + (tok,)) in prefixes), (sym, tok)
            assert row[2 * k] == (sym in lang)


@functools.lru_cache(maxsize=None)
def _pipeline(k, kind, n, min_len, max_len, cap):
    """One compiled program per case: sample, edit, label (keeps the suite's compile time low)."""

    @jax.jit
    def run(key):
        k_s, k_e = jax.random.split(key)
        batch = D.sample_batch(k_s, n, k, min_len=min_len, max_len=max_len, max_depth=cap,
                               kind=kind, pad_to=max_len + 1)
        edited = jax.vmap(lambda kk, s, m: D.near_miss(kk, s, m, k))(
            jax.random.split(k_e, n), batch.symbols, batch.lengths)
        lab = lambda s, m: D.next_token_labels(s, m, k, kind)  # noqa: E731
        return batch, edited, jax.vmap(lab)(batch.symbols, batch.lengths), jax.vmap(lab)(
            edited[0], edited[1])

    return jax.tree.map(np.asarray, run(jax.random.key(k)))


CASES = [(3, D.DyckKind.DYCK), (2, D.DyckKind.SHUFFLE), (1, D.DyckKind.DYCK)]


@pytest.mark.parametrize("k,kind", CASES)
def test_samples_valid_with_length_and_depth_control(k, kind):
    cap = 5
    batch, _, (lab, _), _ = _pipeline(k, kind, 256, 10, 40, cap)
    syms, lens = batch.symbols, batch.lengths
    assert syms.shape == (256, 41) and (lens % 2 == 0).all()
    assert lens.min() >= 10 and lens.max() <= 40
    depths = []
    for s, n, row in zip(syms, lens, lab):
        assert (s[n:] == D.PAD_SYMBOL).all() and (s[:n] >= 0).all()
        assert D.is_valid(s[:n], k, kind), s
        depths.append(D.max_depth(s[:n], k))
        assert row[n, 2 * k] and row[: n + 1].any(axis=1).all()  # END at the end, never stuck
    assert max(depths) == cap  # the cap is reached and never exceeded
    assert set(np.unique(syms[syms >= 0] % k)) == set(range(k))


@pytest.mark.parametrize("k,kind", CASES)
def test_near_misses_are_invalid_and_labels_match_stack(k, kind):
    _, (syms, lens, edits), _, (labels, mask) = _pipeline(k, kind, 256, 10, 40, 5)
    for s, n, e, lab, m in zip(syms, lens, edits, labels, mask):
        assert not D.is_valid(s[:n], k, kind), (s, e)
        assert (s[n:] == D.PAD_SYMBOL).all()
        np.testing.assert_array_equal(lab[: n + 1], D.next_token_sets(s[:n], k, kind))
        assert m[: n + 1].all() and not m[n + 1:].any() and not lab[n + 1:].any()
    assert set(edits.tolist()) == ({0, 1, 2, 3} if k >= 2 else {1, 2, 3})


def test_uniform_shapes_match_catalan_counts():
    """Dyck_1, length 6: the 5 shapes are drawn uniformly (binomial 4-sigma bound)."""
    syms = np.asarray(jax.jit(jax.vmap(lambda kk: D.sample(kk, 6, 1, 10, max_len=6)))(
        jax.random.split(jax.random.key(2), 2000)))
    words = [tuple(s) for s in syms]
    counts = np.array([words.count(w) for w in set(words)])
    assert len(counts) == 5  # Catalan(3)
    assert np.all(np.abs(counts - 400) < 4 * np.sqrt(400 * 0.8))
    np.testing.assert_allclose(np.exp(D.completion_log_counts(6, 10)[6, 0]), 5.0)


def test_tokens_from_symbols():
    sym = jnp.array([[0, 3, -1], [1, 2, -1]])
    tok = D.tokens_from_symbols(sym, 2)
    np.testing.assert_array_equal(tok, [[0, 1, 4, 5], [0, 2, 3, 5]])
    np.testing.assert_array_equal(D.tokens_from_symbols(sym, 2, bos=False), [[1, 4, 5], [2, 3, 5]])


@pytest.mark.parametrize("kind", list(D.DyckKind))
@pytest.mark.parametrize("k", [1, 2, 3])
def test_batched_stack_algorithm_matches_per_string(k, kind):
    """Exhaustive strings up to length 5 (valid or not) plus random long ones, padded together."""
    strings = [list(s) for n in range(6) for s in _all_strings(k, n)]
    rng = np.random.default_rng(k)
    strings += [list(rng.integers(0, 2 * k, size=int(n))) for n in rng.integers(0, 60, size=40)]
    for _ in range(40):  # valid random walks of length 40 (Dyck: close the innermost), then one edit
        s, stack = [], []
        for i in range(40):
            if stack and (len(stack) >= 40 - i or rng.random() < 0.5):
                t = stack.pop() if kind is D.DyckKind.DYCK else stack.pop(int(rng.integers(len(stack))))
                s.append(k + t)
            else:
                stack.append(int(rng.integers(k)))
                s.append(stack[-1])
        assert D.is_valid(s, k, kind)
        e = list(s)
        e[int(rng.integers(40))] = int(rng.integers(2 * k))
        strings += [s, e]
    size = max(len(s) for s in strings) + 2
    sym = np.full((len(strings), size), D.PAD_SYMBOL, np.int32)
    for j, s in enumerate(strings):
        sym[j, : len(s)] = s
    lens = np.array([len(s) for s in strings])
    out = D.next_token_sets_batch(sym, lens, k, kind)
    assert out.shape == (len(strings), size + 1, 2 * k + 1)
    for j, s in enumerate(strings):
        np.testing.assert_array_equal(out[j, : len(s) + 1], D.next_token_sets(s, k, kind), err_msg=str(s))
        assert not out[j, len(s) + 1:].any()
        assert out[j, len(s), 2 * k] == D.is_valid(s, k, kind)
    with pytest.raises(ValueError, match="symbol 9 at position 1 of string 0"):
        D.next_token_sets_batch(np.array([[0, 9]]), np.array([2]), k, kind)
