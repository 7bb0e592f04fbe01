"""Plain-text corpora: tiny Shakespeare (Karpathy's char-rnn), with a character vocabulary."""

from __future__ import annotations

import os

import numpy as np

from jaxml.data.core import require_file

__all__ = ["TINYSHAKESPEARE", "load_tinyshakespeare", "char_vocab", "encode_chars"]

TINYSHAKESPEARE = {
    "relpath": "tinyshakespeare/input.txt",
    "source_url": "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
    "sha256": "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
}


def load_tinyshakespeare(root: str | os.PathLike | None = None) -> str:
    """Tiny Shakespeare as one string (about 1.1M characters, 65 distinct).

    File: ``<data root>/tinyshakespeare/input.txt`` (plain UTF-8 text), sha256-checked.
    """
    path = require_file(TINYSHAKESPEARE["relpath"], source_url=TINYSHAKESPEARE["source_url"],
                        sha256=TINYSHAKESPEARE["sha256"], root=root)
    return path.read_text(encoding="utf-8")


def char_vocab(text: str) -> list[str]:
    """Sorted list of the distinct characters of ``text`` (index = token id)."""
    return sorted(set(text))


def encode_chars(text: str, vocab: list[str] | None = None) -> np.ndarray:
    """Map characters to int32 ids under ``vocab`` (default: ``char_vocab(text)``).

    Raises:
      ValueError: a character is not in the vocabulary (names it).
    """
    vocab = char_vocab(text) if vocab is None else vocab
    index = {c: i for i, c in enumerate(vocab)}
    try:
        return np.fromiter((index[c] for c in text), dtype=np.int32, count=len(text))
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} is not in the vocabulary of {len(vocab)} characters") from e
