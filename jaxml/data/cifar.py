"""CIFAR-10 / CIFAR-100 from the standard python pickle batches, and their long-tailed versions.

Files (relative to the data root, ``jaxml.data.data_root()``), as published by A. Krizhevsky at
https://www.cs.toronto.edu/~kriz/cifar.html:

* CIFAR-10: ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``; archive
  ``cifar-10-python.tar.gz`` (sha256 ``6d958be0...5c001ce``, 170,498,071 bytes);
* CIFAR-100: ``cifar-100-python/train`` and ``test`` (labels: ``fine_labels``); archive
  ``cifar-100-python.tar.gz`` (sha256 ``85cd44d0...5ba677a7``, 169,001,437 bytes).

Each batch is a pickled dict with ``b"data"`` (``(n, 3072)`` uint8, channel-major 3x32x32) and the
labels. The loader uses the extracted folder when present, else extracts the archive found in the
data root, else downloads it (checksummed) when the network allows, and otherwise fails naming the
folder to fill. Unpickling is restricted to the NumPy array types the batches contain, so a
tampered file cannot run code.

:func:`longtail_cifar` builds CIFAR-10-LT / CIFAR-100-LT (Cao et al. 2019, arXiv 1906.07413; used
by arXiv 2409.17582 sec. 6.1): 20 validation images per class are carved first and the
exponential profile is applied to the rest (``n_max = 500 - 20 = 480`` by default, a documented
departure from the usual 500 so every class can give its 20 validation images); the test set is
the official balanced one.
"""

from __future__ import annotations

import dataclasses
import pickle
import tarfile
from pathlib import Path

import jax
import numpy as np

from jaxml.data.core import DataFormatError, DataNotFoundError, data_root, require_file
from jaxml.longtail.imbalance import LongTailData, longtail_split

__all__ = ["CifarSpec", "CIFAR_SPECS", "load_cifar", "longtail_cifar"]


@dataclasses.dataclass(frozen=True)
class CifarSpec:
    """Where one CIFAR variant lives and how its batches are laid out."""

    name: str
    folder: str
    archive: str
    url: str
    sha256: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    label_key: bytes
    num_classes: int


CIFAR_SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        name="cifar10",
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_files=("test_batch",),
        label_key=b"labels",
        num_classes=10,
    ),
    "cifar100": CifarSpec(
        name="cifar100",
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        sha256="85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        train_files=("train",),
        test_files=("test",),
        label_key=b"fine_labels",
        num_classes=100,
    ),
}

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def _spec(name: str) -> CifarSpec:
    try:
        return CIFAR_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown CIFAR variant {name!r}; use one of {sorted(CIFAR_SPECS)}") from None


def _read_batch(path: Path, spec: CifarSpec) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataFormatError(f"{path}: not a CIFAR python batch ({e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or spec.label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataFormatError(
            f"{path}: expected a dict with keys b'data' and {spec.label_key!r}, got {keys}"
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[spec.label_key])
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise DataFormatError(f"{path}: b'data' must be (n, 3072) uint8, got {data.shape} {data.dtype}")
    if labels.shape != (data.shape[0],):
        raise DataFormatError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
    bad = np.flatnonzero((labels < 0) | (labels >= spec.num_classes))
    if bad.size:
        raise DataFormatError(
            f"{path}: label {int(labels[bad[0]])} at row {int(bad[0])} is outside [0, {spec.num_classes})"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int32)


def _extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(dest, filter="data")


def _folder(spec: CifarSpec, root: Path) -> Path:
    folder = root / spec.folder
    wanted = spec.train_files + spec.test_files
    if all((folder / f).is_file() for f in wanted):
        return folder
    try:
        archive = require_file(spec.archive, source_url=spec.url, sha256=spec.sha256, root=root)
    except DataNotFoundError as e:
        raise DataNotFoundError(
            f"{spec.name}: no batches in {folder} and no archive {root / spec.archive} ({e}). Put the "
            f"extracted '{spec.folder}' folder (files {', '.join(wanted)}) or '{spec.archive}' from "
            f"{spec.url} in {root}, or set JAXML_DATA to the folder that holds them"
        ) from None
    _extract(archive, root)
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        raise DataFormatError(f"{archive}: extracted, but {folder} lacks {missing}")
    return folder


def load_cifar(
    name: str, split: str = "train", *, root: str | Path | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load a CIFAR split.

    Args:
      name: ``"cifar10"`` or ``"cifar100"``.
      split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
      root: data root (default :func:`jaxml.data.data_root`).

    Returns:
      ``(images (N, 32, 32, 3) uint8, labels (N,) int32)``.

    Raises:
      DataNotFoundError: neither the batches nor the archive are there and no download is possible.
      DataFormatError: a batch does not parse (names the file and the problem).
    """
    spec = _spec(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = _folder(spec, Path(root) if root is not None else data_root())
    files = spec.train_files if split == "train" else spec.test_files
    parts = [_read_batch(folder / f, spec) for f in files]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def longtail_cifar(
    key: jax.Array,
    name: str,
    *,
    imbalance_ratio: float = 100.0,
    val_per_class: int = 20,
    n_max: int | None = None,
    root: str | Path | None = None,
) -> LongTailData:
    """CIFAR-10-LT / CIFAR-100-LT with a balanced validation set carved from training data.

    Args:
      key: PRNG key for the per-class choice of images.
      name: ``"cifar10"`` or ``"cifar100"``.
      imbalance_ratio: ``n_max / n_min`` (100 in arXiv 2409.17582).
      val_per_class: validation images per class (20 in the paper).
      n_max: head-class training count (default: per-class pool minus ``val_per_class``).
      root: data root.

    Returns:
      A :class:`jaxml.longtail.LongTailData` (uint8 NHWC images); test is the official test set.
    """
    spec = _spec(name)
    x_train, y_train = load_cifar(name, "train", root=root)
    x_test, y_test = load_cifar(name, "test", root=root)
    per_class = int(np.min(np.bincount(y_train, minlength=spec.num_classes)))
    split = longtail_split(
        key,
        y_train,
        spec.num_classes,
        n_max=per_class - val_per_class if n_max is None else n_max,
        imbalance_ratio=imbalance_ratio,
        val_per_class=val_per_class,
    )
    return LongTailData(
        x_train=x_train[split.train],
        y_train=y_train[split.train],
        x_val=x_train[split.val],
        y_val=y_train[split.val],
        x_test=x_test,
        y_test=y_test,
        class_counts=split.class_counts,
    )
