"""Long-tailed handwritten digits from scikit-learn's bundled ``load_digits``.

``sklearn.datasets.load_digits`` ships inside the scikit-learn wheel (UCI "Optical Recognition of
Handwritten Digits", 1,797 8x8 grey images with values 0..16, 10 classes, about 180 per class), so it
needs no download. :func:`longtail_digits` carves a class-balanced test and validation set from it
and an exponentially long-tailed training set from the rest (the CIFAR-LT recipe of
arXiv 2409.17582 sec. 6.1 at small scale).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jax
import numpy as np

from jaxml.data.core import DataFormatError
from jaxml.longtail.imbalance import LongTailData, longtail_split

__all__ = ["DIGITS_NUM_CLASSES", "load_digits", "LongTailData", "longtail_digits"]

DIGITS_NUM_CLASSES = 10


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits.

    Reads ``sklearn/datasets/data/digits.csv.gz`` (64 pixel columns then the label; the file behind
    ``sklearn.datasets.load_digits``) straight from the installed wheel, without importing
    scikit-learn (whose import costs seconds).

    Returns:
      ``(images (1797, 8, 8) float32 in [0, 1], labels (1797,) int32)``.

    Raises:
      ImportError: scikit-learn is not installed (it is in the ``jaxml[dev]`` extra).
      DataFormatError: the bundled file does not have 65 columns per row.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "the digits data set comes from scikit-learn's bundled copy; install it with "
            "`pip install scikit-learn` (or `pip install jaxml[dev]`)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise ImportError(f"scikit-learn is installed but {path} is missing; reinstall scikit-learn")
    table = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
    if table.shape[1] != 65:
        raise DataFormatError(f"{path}: expected 65 columns (64 pixels + label), got {table.shape[1]}")
    images = (table[:, :64] / 16.0).reshape(-1, 8, 8).astype(np.float32)
    return images, table[:, 64].astype(np.int32)


def longtail_digits(
    key: jax.Array,
    *,
    n_max: int = 100,
    imbalance_ratio: float = 100.0,
    val_per_class: int = 20,
    test_per_class: int = 50,
) -> LongTailData:
    """Exponentially long-tailed digits: ``n_k = floor(n_max * ratio**(-k/9))`` training images of digit ``k``.

    Args:
      key: PRNG key for which images land in which split.
      n_max: training images of digit 0 (the head class).
      imbalance_ratio: ``n_max / n_min``.
      val_per_class: balanced validation images per class (the paper carves 20).
      test_per_class: balanced test images per class.

    Returns:
      A :class:`LongTailData`; ``test + val + n_max`` must fit in the smallest class (174 images).
    """
    images, labels = load_digits()
    split = longtail_split(
        key,
        labels,
        DIGITS_NUM_CLASSES,
        n_max=n_max,
        imbalance_ratio=imbalance_ratio,
        val_per_class=val_per_class,
        test_per_class=test_per_class,
    )
    return LongTailData(
        x_train=images[split.train],
        y_train=labels[split.train],
        x_val=images[split.val],
        y_val=labels[split.val],
        x_test=images[split.test],
        y_test=labels[split.test],
        class_counts=split.class_counts,
    )
