"""Memorisation datasets: N input sequences of length n with labels to memorise.

Kajitsuka & Sato, "On the Optimal Memorization Capacity of Transformers", ICLR 2025
(arXiv 2409.17677) study the smallest transformer that fits *every* label of a finite data set
``{(X^(k), y^(k))}_{k=1..N}`` with ``X^(k) in [V]^n``:

* **next-token setting** (Theorem 4.1 / 4.2): one label ``y^(k) in [C]`` per sequence, read at the
  last position; ``O~(sqrt(N))`` parameters suffice and are necessary.
* **sequence-to-sequence setting** (Theorem 5.1 / 5.2): a label ``y^(k)_i`` per token;
  ``O~(sqrt(nN))`` parameters suffice and (with hardmax attention) are necessary.

The theorems assume the input sequences are *distinct* and ``(r, delta)``-separated: every token
embedding has norm at most ``r`` and two different sequences are at least ``delta`` apart
(Frobenius norm of the difference of their embedded sequences). With one-hot token embeddings
``r = 1`` and ``delta = sqrt(2 * min Hamming distance)``; :func:`separation` measures both and
:func:`check_separated` enforces them.

Data sets here are plain arrays (``tokens`` int32 ``(N, n)``; ``labels`` int32 ``(N,)`` or
``(N, n)``) in a :class:`MemorizeDataset` NamedTuple. Random data sets draw distinct sequences and
uniform labels; text data sets cut windows out of a character corpus (tiny Shakespeare) with the
next character or a random class as label. Windows repeat in real text, so text data sets are
deduplicated on the *input* (first occurrence kept): a repeated window with two different next
characters could not be memorised by any function.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Setting",
    "TextLabel",
    "MemorizeDataset",
    "random_dataset",
    "text_dataset",
    "deduplicate",
    "separation",
    "check_separated",
    "accuracy",
    "numpy_rng",
]


class Setting(enum.Enum):
    """Where the labels live.

    NEXT_TOKEN: one label per sequence (read at the last position), arXiv 2409.17677 Section 4.
    SEQ2SEQ: one label per token, arXiv 2409.17677 Section 5.
    """

    NEXT_TOKEN = "next_token"
    SEQ2SEQ = "seq2seq"


class TextLabel(enum.Enum):
    """Label of a text window.

    NEXT_CHAR: the character that follows (next-token) / each position's next character (seq2seq):
      real language-model labels, with ``num_classes = vocab_size``.
    RANDOM: uniform random classes, as in the paper's random-label experiments; the inputs stay
      real text, so this isolates the input distribution from the label structure.
    """

    NEXT_CHAR = "next_char"
    RANDOM = "random"


class MemorizeDataset(NamedTuple):
    """A memorisation data set.

    Attributes:
      tokens: int32 ``(N, n)`` distinct input sequences over ``[0, vocab_size)``.
      labels: int32 ``(N,)`` (next-token) or ``(N, n)`` (seq2seq) over ``[0, num_classes)``.
      vocab_size: V.
      num_classes: C.
      setting: :class:`Setting`.
    """

    tokens: np.ndarray
    labels: np.ndarray
    vocab_size: int
    num_classes: int
    setting: Setting

    @property
    def num_sequences(self) -> int:
        """N, the number of sequences."""
        return int(self.tokens.shape[0])

    @property
    def seq_len(self) -> int:
        """n, the sequence length."""
        return int(self.tokens.shape[1])

    @property
    def num_labels(self) -> int:
        """Labels to memorise: N (next-token) or n * N (seq2seq)."""
        return int(self.labels.size)


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def numpy_rng(key: jax.Array) -> np.random.Generator:
    """A NumPy generator seeded from a JAX key (128 key-derived bits; one tiny jitted op per call).

    Data-set drawing (rejection of repeats, variable-size redraws) is host-side work; seeding NumPy
    from the key keeps the explicit-key discipline without recompiling per array shape.
    """
    return np.random.default_rng(np.asarray(jax.random.bits(key, (4,), jnp.uint32)).tolist())


def _label_shape(setting: Setting, num: int, seq_len: int) -> tuple[int, ...]:
    return (num,) if setting is Setting.NEXT_TOKEN else (num, seq_len)


def deduplicate(tokens: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Keep the first occurrence of every distinct input sequence.

    Args:
      tokens: ``(N, n)`` integer sequences.
      labels: ``(N,)`` or ``(N, n)`` labels aligned with ``tokens``.

    Returns:
      ``(tokens, labels, num_removed)`` with the original order of first occurrences.
    """
    tokens = np.asarray(tokens)
    labels = np.asarray(labels)
    if tokens.ndim != 2 or labels.shape[0] != tokens.shape[0]:
        raise ValueError(f"tokens must be (N, n) and labels (N, ...), got {tokens.shape} and {labels.shape}")
    _, first = np.unique(tokens, axis=0, return_index=True)
    keep = np.sort(first)
    return tokens[keep], labels[keep], int(tokens.shape[0] - keep.size)


def random_dataset(key: jax.Array, num_sequences: int, seq_len: int, vocab_size: int,
                   num_classes: int, setting: Setting = Setting.NEXT_TOKEN) -> MemorizeDataset:
    """N distinct uniform random sequences with uniform random labels.

    Sequences are drawn i.i.d. uniform over ``[V]^n``; repeats are dropped and more are drawn until
    N distinct ones exist (so the data set satisfies the theorems' distinctness assumption).

    Args:
      key: PRNG key.
      num_sequences: N.
      seq_len: n.
      vocab_size: V (``V**n >= N`` is required).
      num_classes: C >= 2.
      setting: next-token (one label per sequence) or seq2seq (one label per token).

    Returns:
      A :class:`MemorizeDataset`.

    Raises:
      ValueError: sizes out of range, or fewer than N distinct sequences exist.
    """
    _check_positive("num_sequences", num_sequences)
    _check_positive("seq_len", seq_len)
    _check_positive("vocab_size", vocab_size, 2)
    _check_positive("num_classes", num_classes, 2)
    if float(vocab_size) ** seq_len < num_sequences:
        raise ValueError(f"only vocab_size**seq_len = {vocab_size}**{seq_len} distinct sequences exist, fewer than "
                         f"num_sequences = {num_sequences}; raise vocab_size or seq_len")
    key_tokens, key_labels = jax.random.split(key)
    rng = numpy_rng(key_tokens)
    tokens = np.zeros((0, seq_len), np.int32)
    attempt = 0
    while tokens.shape[0] < num_sequences:
        draw = rng.integers(0, vocab_size, (2 * num_sequences, seq_len), dtype=np.int32)
        both = np.concatenate([tokens, draw], axis=0)
        tokens, _, _ = deduplicate(both, np.zeros(both.shape[0]))
        attempt += 1
        if attempt > 64:  # pragma: no cover - only when V**n is barely above N
            raise ValueError(f"could not draw {num_sequences} distinct sequences of length {seq_len} over "
                             f"{vocab_size} tokens; raise vocab_size or seq_len")
    tokens = tokens[:num_sequences]
    labels = numpy_rng(key_labels).integers(0, num_classes, _label_shape(setting, num_sequences, seq_len),
                                            dtype=np.int32)
    return MemorizeDataset(tokens, labels, int(vocab_size), int(num_classes), setting)


def text_dataset(key: jax.Array, token_ids: np.ndarray, vocab_size: int, num_sequences: int, seq_len: int,
                 label: TextLabel = TextLabel.NEXT_CHAR, setting: Setting = Setting.NEXT_TOKEN,
                 num_classes: int | None = None) -> MemorizeDataset:
    """N distinct windows of a token stream (e.g. tiny Shakespeare characters) with labels.

    Window k is ``token_ids[s_k : s_k + n]`` at a uniform random start ``s_k``. Labels:
    next-token + NEXT_CHAR: ``token_ids[s_k + n]``; seq2seq + NEXT_CHAR: ``token_ids[s_k+1 : s_k+n+1]``
    (each position's next character); RANDOM: uniform over ``[num_classes]``. Repeated windows
    are removed (first kept) and more are drawn until N distinct windows exist; under NEXT_CHAR a
    repeated context keeps the label of its first occurrence, so the data set is a function.

    Args:
      key: PRNG key.
      token_ids: 1-D integer array of the corpus (``jaxml.data.encode_chars(text)``).
      vocab_size: V, the corpus vocabulary size (ids lie in ``[0, V)``).
      num_sequences: N.
      seq_len: n.
      label: :class:`TextLabel`.
      setting: :class:`Setting`.
      num_classes: C for RANDOM labels (default 2); ignored for NEXT_CHAR (C = V).

    Returns:
      A :class:`MemorizeDataset`.

    Raises:
      ValueError: the corpus is too short or has too few distinct windows.
    """
    ids = np.asarray(token_ids)
    _check_positive("num_sequences", num_sequences)
    _check_positive("seq_len", seq_len)
    _check_positive("vocab_size", vocab_size, 2)
    if ids.ndim != 1:
        raise ValueError(f"token_ids must be a 1-D array of token ids, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got range [{ids.min()}, {ids.max()}]")
    span = ids.size - seq_len - 1
    if span < num_sequences:
        raise ValueError(f"corpus of {ids.size} tokens is too short for {num_sequences} windows of length "
                         f"{seq_len} plus a next token; use a longer text or smaller num_sequences")
    if label is TextLabel.RANDOM:
        num_classes = 2 if num_classes is None else num_classes
        _check_positive("num_classes", num_classes, 2)
    else:
        num_classes = int(vocab_size)
    key_starts, key_labels = jax.random.split(key)
    offsets = np.arange(seq_len)
    starts = np.zeros((0,), np.int64)
    windows = np.zeros((0, seq_len), np.int32)
    rng = numpy_rng(key_starts)
    attempt = 0
    while windows.shape[0] < num_sequences:
        new = rng.integers(0, span, (2 * num_sequences,))
        all_starts = np.concatenate([starts, new])
        all_windows = ids[all_starts[:, None] + offsets[None, :]].astype(np.int32)
        windows, starts, _ = deduplicate(all_windows, all_starts)
        attempt += 1
        if attempt > 64:
            raise ValueError(f"the corpus has fewer than {num_sequences} distinct windows of length {seq_len}; "
                             "lower num_sequences or raise seq_len")
    windows, starts = windows[:num_sequences], starts[:num_sequences]
    if label is TextLabel.NEXT_CHAR:
        if setting is Setting.NEXT_TOKEN:
            labels = ids[starts + seq_len]
        else:
            labels = ids[starts[:, None] + offsets[None, :] + 1]
    else:
        labels = numpy_rng(key_labels).integers(0, num_classes, _label_shape(setting, num_sequences, seq_len))
    return MemorizeDataset(windows, np.asarray(labels, np.int32), int(vocab_size), int(num_classes), setting)


def separation(tokens: np.ndarray, chunk: int = 512) -> tuple[float, float]:
    """The ``(r, delta)`` of the separatedness assumption, for one-hot token embeddings.

    With one-hot embeddings every token has norm ``r = 1`` and two sequences at Hamming distance
    ``h`` are ``sqrt(2 h)`` apart in Frobenius norm, so ``delta = sqrt(2 * min_{k != l} h(X^k, X^l))``
    (arXiv 2409.17677, Definition 3.1 / the assumption of Theorem 4.1). ``delta = 0`` means two
    sequences coincide.

    Args:
      tokens: ``(N, n)`` integer sequences, N >= 2.
      chunk: rows compared at once (memory ``chunk * N * n``).

    Returns:
      ``(r, delta)`` as floats.
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[0] < 2:
        raise ValueError(f"separation needs (N, n) tokens with N >= 2, got shape {tokens.shape}")
    num = tokens.shape[0]
    best = tokens.shape[1]
    for lo in range(0, num, chunk):
        block = tokens[lo:lo + chunk]
        dist = (block[:, None, :] != tokens[None, :, :]).sum(-1)
        rows = np.arange(block.shape[0])
        dist[rows, lo + rows] = tokens.shape[1] + 1  # ignore the diagonal
        best = min(best, int(dist.min()))
    return 1.0, float(np.sqrt(2.0 * best))


def check_separated(tokens: np.ndarray, r: float = 1.0, delta: float = np.sqrt(2.0)) -> tuple[float, float]:
    """Raise unless the sequences are ``(r, delta)``-separated (one-hot embeddings).

    The default ``delta = sqrt(2)`` is exactly "all sequences distinct".

    Returns:
      The measured ``(r, delta)``.

    Raises:
      ValueError: names the measured values and the fix (deduplicate).
    """
    r_meas, d_meas = separation(tokens)
    if r_meas > r or d_meas < delta:
        raise ValueError(f"sequences are ({r_meas}, {d_meas:.3f})-separated, not ({r}, {delta:.3f})-separated "
                         "as the memorisation theorems assume; remove repeated sequences with "
                         "jaxml.tasks.memorize.deduplicate")
    return r_meas, d_meas


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of labels predicted exactly (1.0 means memorised)."""
    predictions = np.asarray(predictions)
    labels = np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    return float(np.mean(predictions == labels))
