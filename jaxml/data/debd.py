"""The binary density-estimation benchmarks (DEBD): ``<name>/<name>.{train,valid,test}.data``.

Twenty binary data sets (Lowd & Davis 2010; Van Haaren & Davis 2012) used by every tractable
density-estimation paper, including Trapp et al. (2019, arXiv 1905.10884) and Yokoi & Sato (2024,
arXiv 2406.12353). Format: one datum per line, ``D`` comma-separated values in ``{0, 1}``, no header.
Public source: github.com/UCLA-StarAI/Density-Estimation-Datasets (``datasets/<name>/``).

:func:`load_debd` takes a name (resolved under ``<data root>/debd/<name>/``; the five sets checked
into the shared data folder have pinned sha256 sums) or a path to any folder in the same format.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jaxml.data.core import DataFormatError, DataNotFoundError, require_file

__all__ = ["DEBD_NAMES", "DEBD_SHA256", "DebdData", "load_debd", "parse_debd_file"]

DEBD_NAMES = (
    "nltcs", "msnbc", "kdd", "plants", "baudio", "jester", "bnetflix", "accidents", "tretail",
    "pumsb_star", "dna", "kosarek", "msweb", "book", "tmovie", "cwebkb", "cr52", "c20ng", "bbc", "ad",
)
_SOURCE = "https://raw.githubusercontent.com/UCLA-StarAI/Density-Estimation-Datasets/master/datasets"
_SPLITS = ("train", "valid", "test")

DEBD_SHA256: dict[str, str] = {
    "baudio/baudio.test.data": "1474f3206f1f35e099803a0f40b0cd209bdc8d787825095ef6cb23fd87ed0d05",
    "baudio/baudio.train.data": "b1ec73f4aa9d4ce48b465ded865cc3d22b3f68cf6258f9e15fbef8902138add1",
    "baudio/baudio.valid.data": "7164d8a4943f74953f0e982002d84693fdf483e17f69e7407dc939c5ce5622fe",
    "dna/dna.test.data": "fec3ae7b26804020a9c43c99828441c5e08bb76b23719368a74ad2b09af99100",
    "dna/dna.train.data": "bb8de0ca4b6ad9b610036b7a302962ebecd4b504354b14c02c7d0bee48d207d9",
    "dna/dna.valid.data": "4b0fc89cda5eaf5c75926e281afb6af99de194a546070d5b81b524ba251f4f3f",
    "jester/jester.test.data": "346044fb561cf18f284f7e9d5896178b03048991b6ebb6f7482885fccbc16082",
    "jester/jester.train.data": "dd93578c3359d5b234bb278bf0901c5215d83b910f7d51d7c91951a0a4c244cd",
    "jester/jester.valid.data": "91df833941e189265345898d3f63211560c2456df599f34beee8e95381ee7524",
    "nltcs/nltcs.test.data": "f9ffa6b74b27dc03bee3203d157ee31079e80b13be40d0c0093d635c25aed523",
    "nltcs/nltcs.train.data": "e547a7aedad1dd2f7177030881ab1b92c7e24ae5464c71a0f1f89daecaf52b30",
    "nltcs/nltcs.valid.data": "93bbbf5c6febdc9bc6e5b5bfab636f4dc0685ab2896d24b23dd267794c3bfcf6",
    "plants/plants.test.data": "95f53c033cd1d86467aec2610dc5bfe014534206c2da4919f73bcab246ab8755",
    "plants/plants.train.data": "1fb1219ff94068d12a563f9e81f8889a1885f41e867884cff608669300c6848f",
    "plants/plants.valid.data": "47834ed318b2d74f48e4b083226ef47fd446d41986012ceae19d230574821b34",
}


class DebdData(NamedTuple):
    """One data set: ``uint8`` arrays ``(N, D)`` per split and the folder they came from."""

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    path: Path


def parse_debd_file(path: str | os.PathLike, num_vars: int | None = None) -> np.ndarray:
    """Parses one ``.data`` file into a ``uint8`` array ``(N, D)``.

    Args:
        path: the file.
        num_vars: expected number of columns (default: that of the first row).

    Raises:
        DataFormatError: naming the file and the 1-based line of the first row that has the wrong
            number of values or a value other than ``0``/``1``, or an empty file.
    """
    path = Path(path)
    lines = path.read_text(encoding="ascii", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataFormatError(f"{path}: empty file; expected comma-separated 0/1 rows")
    expected = num_vars if num_vars is not None else lines[0].count(",") + 1
    # fast path: every row is exactly `expected` single-character 0/1 fields
    rows = [line.strip().replace(",", "") for line in lines]
    if all(len(r) == expected for r in rows) and all(line.count(",") == expected - 1
                                                      for line in lines):
        flat = np.frombuffer("".join(rows).encode("ascii", "replace"), np.uint8) - ord("0")
        if np.all(flat <= 1):
            return flat.reshape(len(rows), expected).astype(np.uint8)
    out = np.empty((len(lines), expected), np.uint8)
    for lineno, line in enumerate(lines, start=1):
        fields = line.strip().split(",")
        if len(fields) != expected:
            raise DataFormatError(f"{path}:{lineno}: row has {len(fields)} values, expected "
                                  f"{expected} (ragged row)")
        try:
            row = np.array(fields, dtype=np.int64)
        except ValueError:
            bad = next(f for f in fields if f.strip() not in ("0", "1"))
            raise DataFormatError(f"{path}:{lineno}: value {bad!r} is not 0 or 1") from None
        if np.any((row != 0) & (row != 1)):
            bad = int(row[(row != 0) & (row != 1)][0])
            raise DataFormatError(f"{path}:{lineno}: value {bad} is not 0 or 1")
        out[lineno - 1] = row
    return out


def load_debd(name_or_path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> DebdData:
    """Loads the three splits of a DEBD data set.

    Args:
        name_or_path: a data-set name (looked up as ``<root>/debd/<name>/<name>.<split>.data``,
            downloaded from the public source when absent and the network allows) or a path to a
            folder ``<dir>`` holding ``<basename(dir)>.{train,valid,test}.data``.
        root: data root (default :func:`jaxml.data.data_root`).

    Returns:
        :class:`DebdData` with ``uint8`` arrays; all splits have the same number of columns.

    Raises:
        DataNotFoundError: a file is missing (the message names the folder to fill).
        DataFormatError: a row is ragged or holds a value other than 0/1 (file and line).
    """
    as_path = Path(name_or_path).expanduser()
    files: dict[str, Path] = {}
    if as_path.is_dir():
        name = as_path.name
        for split in _SPLITS:
            f = as_path / f"{name}.{split}.data"
            if not f.is_file():
                raise DataNotFoundError(f"missing {f}: a DEBD folder must hold "
                                        f"{name}.train.data, {name}.valid.data and {name}.test.data")
            files[split] = f
    else:
        name = str(name_or_path)
        if os.sep in name or "/" in name:
            raise DataNotFoundError(f"{name_or_path} is not a folder; pass a data-set name (one "
                                    f"of {', '.join(DEBD_NAMES)}) or a folder in DEBD format")
        for split in _SPLITS:
            rel = f"{name}/{name}.{split}.data"
            files[split] = require_file(f"debd/{rel}", source_url=f"{_SOURCE}/{rel}",
                                        sha256=DEBD_SHA256.get(rel), root=root)
    train = parse_debd_file(files["train"])
    d = train.shape[1]
    valid = parse_debd_file(files["valid"], d)
    test = parse_debd_file(files["test"], d)
    return DebdData(name, train, valid, test, files["train"].parent)
