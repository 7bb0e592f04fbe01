"""Sentence classification data: SST-2 (in-distribution) and Yelp sentences (out-of-distribution).

Files under the data root (``jaxml.data.data_root()``, i.e. ``$JAXML_DATA``):

* ``sst2/{train,dev,test}.tsv``: Stanford Sentiment Treebank, binary (Socher et al. 2013), GLUE SST-2
  layout: a header line, then ``label<TAB>sentence`` rows (label 0 = negative, 1 = positive); the
  test file carries labels (``label<TAB>content``). 67,349 / 872 / 1,821 rows.
* ``yelp-sentences/yelp_labelled.txt``: 1,000 Yelp review sentences (Kotzias et al., KDD 2015,
  "Sentiment Labelled Sentences", UCI), ``sentence<TAB>label``, no header, 500 per class.

Both are validated row by row; a bad row raises :class:`jaxml.data.DataFormatError` naming the file
and line. Checksums are those of the copies this project was tested with. The SST-2 files with a
labelled test split are not a single public download (GLUE's test split is unlabelled), so only the
Yelp file has a download address; a missing SST-2 file raises a message naming the folder to fill.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from jaxml.data.core import DataFormatError, require_file

__all__ = ["TextDataset", "SST2_FILES", "YELP_FILE", "load_sst2", "load_yelp", "subsample"]

SST2_FILES = {
    "train": {"relpath": "sst2/train.tsv",
              "sha256": "dc4a10637729af71aeb11f573482b10031ba7ffe53159403599d06759e484e30"},
    "dev": {"relpath": "sst2/dev.tsv",
            "sha256": "84207e6be5873fb18db798cc6faec86871f5a426554650ff64a1c34e87665f6f"},
    "test": {"relpath": "sst2/test.tsv",
             "sha256": "fcd46f967b7b8efd8b5398481dadf873886298d092195167af907fd532e81e1c"},
}
SST2_SOURCE = "GLUE SST-2 (https://dl.fbaipublicfiles.com/glue/data/SST-2.zip) with labelled test split"

YELP_FILE = {
    "relpath": "yelp-sentences/yelp_labelled.txt",
    "source_url": None,  # distributed inside a UCI zip archive, not as a single file
    "sha256": "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea",
}
YELP_SOURCE = "UCI 'Sentiment Labelled Sentences' (https://archive.ics.uci.edu/dataset/331)"


class TextDataset(NamedTuple):
    """Sentences and integer labels.

    Attributes:
      texts: list of N sentences.
      labels: (N,) int32 labels.
      name: dataset and split, e.g. ``"sst2/dev"``.
    """

    texts: list[str]
    labels: np.ndarray
    name: str

    def __len__(self) -> int:
        return len(self.texts)


def _parse(path: os.PathLike, *, label_first: bool, header: bool, num_classes: int = 2) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if header and lineno == 1:
                continue
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if label_first:
                label, sep, text = line.partition("\t")
            else:
                text, sep, label = line.rpartition("\t")
            label = label.strip()
            if not sep or not text.strip() or not label.isdigit() or not 0 <= int(label) < num_classes:
                expected = "label<TAB>sentence" if label_first else "sentence<TAB>label"
                raise DataFormatError(f"{path}, line {lineno}: expected '{expected}' with a label in "
                                      f"0..{num_classes - 1}, got {line[:80]!r}")
            texts.append(text.strip())
            labels.append(int(label))
    if not texts:
        raise DataFormatError(f"{path} holds no rows.")
    return texts, np.asarray(labels, np.int32)


def load_sst2(split: str = "train", root: str | os.PathLike | None = None, *, verify: bool = True) -> TextDataset:
    """Load an SST-2 split (``train``, ``dev`` or ``test``).

    Args:
      split: which file.
      root: data root (default ``jaxml.data.data_root()``).
      verify: check the file's sha256 (disable for a different but well-formed copy).

    Raises:
      ValueError: unknown split.
      jaxml.data.DataNotFoundError: the file is missing (the message names the folder to fill).
      jaxml.data.DataFormatError: a malformed row (path and line).
    """
    if split not in SST2_FILES:
        raise ValueError(f"unknown SST-2 split {split!r}; choose one of {sorted(SST2_FILES)}.")
    spec = SST2_FILES[split]
    path = require_file(spec["relpath"], sha256=spec["sha256"], root=root, verify=verify)
    texts, labels = _parse(path, label_first=True, header=True)
    return TextDataset(texts, labels, f"sst2/{split}")


def load_yelp(root: str | os.PathLike | None = None, *, verify: bool = True) -> TextDataset:
    """Load the 1,000 Yelp review sentences (an out-of-distribution shift for SST-2 models).

    Args:
      root: data root (default ``jaxml.data.data_root()``).
      verify: check the file's sha256.

    Raises:
      jaxml.data.DataNotFoundError / jaxml.data.DataFormatError: as :func:`load_sst2`.
    """
    path = require_file(YELP_FILE["relpath"], sha256=YELP_FILE["sha256"], root=root, verify=verify)
    texts, labels = _parse(path, label_first=False, header=False)
    return TextDataset(texts, labels, "yelp")


def subsample(data: TextDataset, n: int, seed: int, *, balanced: bool = True) -> TextDataset:
    """A reproducible random subset of ``n`` rows (class-balanced when ``balanced``).

    Raises:
      ValueError: ``n`` exceeds what the data (or a class, when balanced) holds.
    """
    if n < 1:
        raise ValueError(f"subsample size must be >= 1, got {n}.")
    rng = np.random.default_rng(seed)
    if not balanced:
        if n > len(data):
            raise ValueError(f"cannot take {n} rows from {data.name} ({len(data)} rows).")
        idx = rng.choice(len(data), n, replace=False)
    else:
        classes = np.unique(data.labels)
        per = [n // len(classes) + (1 if i < n % len(classes) else 0) for i in range(len(classes))]
        idx = []
        for c, k in zip(classes, per):
            pool = np.flatnonzero(data.labels == c)
            if k > len(pool):
                raise ValueError(f"cannot take {k} rows of class {c} from {data.name} ({len(pool)} available).")
            idx.append(rng.choice(pool, k, replace=False))
        idx = rng.permutation(np.concatenate(idx))
    return TextDataset([data.texts[i] for i in idx], data.labels[idx], f"{data.name}[{n}]")
