"""Tests for jaxml.tasks.memorize: distinctness, label shapes, text windows, separatedness."""

import jax
import numpy as np
import pytest

from jaxml.tasks import memorize as M


@pytest.mark.parametrize("setting", list(M.Setting))
def test_random_dataset_distinct_and_shaped(setting):
    ds = M.random_dataset(jax.random.PRNGKey(0), 300, 5, 4, 4, setting)
    assert ds.tokens.shape == (300, 5) and ds.tokens.dtype == np.int32
    assert np.unique(ds.tokens, axis=0).shape[0] == 300
    assert ds.tokens.min() >= 0 and ds.tokens.max() < 4
    expected = (300,) if setting is M.Setting.NEXT_TOKEN else (300, 5)
    assert ds.labels.shape == expected and ds.labels.min() >= 0 and ds.labels.max() < 4
    assert ds.num_labels == int(np.prod(expected))
    # all four classes appear (300 uniform draws: probability of a missing class < 4 * 0.75**300)
    assert set(np.unique(ds.labels)) == {0, 1, 2, 3}


def test_random_dataset_nearly_exhaustive_and_deterministic():
    # 3**4 = 81 sequences exist; asking for 80 forces repeated redraws
    a = M.random_dataset(jax.random.PRNGKey(3), 80, 4, 3, 2)
    b = M.random_dataset(jax.random.PRNGKey(3), 80, 4, 3, 2)
    assert np.unique(a.tokens, axis=0).shape[0] == 80
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_random_dataset_errors():
    with pytest.raises(ValueError, match="vocab_size\\*\\*seq_len"):
        M.random_dataset(jax.random.PRNGKey(0), 10, 3, 2, 2)
    with pytest.raises(ValueError, match="num_classes"):
        M.random_dataset(jax.random.PRNGKey(0), 10, 3, 2, 1)


def test_deduplicate_keeps_first_occurrence():
    tokens = np.array([[1, 2], [0, 0], [1, 2], [3, 3], [0, 0]])
    labels = np.array([5, 6, 7, 8, 9])
    t, y, removed = M.deduplicate(tokens, labels)
    np.testing.assert_array_equal(t, [[1, 2], [0, 0], [3, 3]])
    np.testing.assert_array_equal(y, [5, 6, 8])
    assert removed == 2


@pytest.mark.parametrize("setting", list(M.Setting))
def test_text_dataset_next_char_labels(setting):
    text = "abcabdabcabeabfabcabg" * 5
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text], np.int32)
    ds = M.text_dataset(jax.random.PRNGKey(1), ids, len(vocab), 15, 4, M.TextLabel.NEXT_CHAR, setting)
    assert ds.num_classes == len(vocab) and np.unique(ds.tokens, axis=0).shape[0] == 15
    # every window occurs in the text and its label is the character that follows it there
    s = "".join(vocab[i] for i in ids)
    for row, lab in zip(ds.tokens, ds.labels):
        window = "".join(vocab[i] for i in row)
        pos = s.find(window)
        assert pos >= 0
        if setting is M.Setting.NEXT_TOKEN:
            follow = {s[p + 4] for p in range(len(s) - 4) if s[p:p + 4] == window}
            assert vocab[lab] in follow
        else:
            assert "".join(vocab[i] for i in lab)[:-1] == window[1:]


def test_text_dataset_random_labels_and_errors():
    ids = np.arange(200) % 7
    ds = M.text_dataset(jax.random.PRNGKey(0), ids, 7, 7, 3, M.TextLabel.RANDOM, num_classes=3)
    assert ds.num_classes == 3 and ds.labels.max() < 3
    with pytest.raises(ValueError, match="fewer than 10 distinct windows"):
        M.text_dataset(jax.random.PRNGKey(0), ids, 7, 10, 3)   # only 7 distinct windows
    with pytest.raises(ValueError, match="too short"):
        M.text_dataset(jax.random.PRNGKey(0), ids[:8], 7, 10, 3)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        M.text_dataset(jax.random.PRNGKey(0), ids, 5, 3, 3)


def test_separation_brute_force():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 3, (40, 6))
    r, delta = M.separation(tokens, chunk=7)
    brute = min(int((tokens[a] != tokens[b]).sum()) for a in range(40) for b in range(40) if a != b)
    assert r == 1.0 and delta == pytest.approx(np.sqrt(2 * brute))


def test_check_separated_rejects_repeats():
    tokens = np.array([[0, 1], [1, 1], [0, 1]])
    assert M.separation(tokens)[1] == 0.0
    with pytest.raises(ValueError, match="deduplicate"):
        M.check_separated(tokens)
    assert M.check_separated(tokens[:2]) == (1.0, pytest.approx(np.sqrt(2.0)))


def test_accuracy():
    assert M.accuracy(np.array([1, 2, 3]), np.array([1, 0, 3])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="shape"):
        M.accuracy(np.zeros(3), np.zeros(4))
