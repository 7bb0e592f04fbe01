"""Test-wide settings: strict rank promotion, no display, no network."""

import os
import pickle

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("JAXML_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")


def _write_cifar_batch(path, n, num_classes, label_key, seed):
    """One fake CIFAR python batch (the official pickle layout: uint8 rows of 3,072 channel-major bytes)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = np.arange(n) % num_classes
    with open(path, "wb") as f:
        pickle.dump({b"data": data, label_key: labels.tolist(), b"batch_label": b"fake"}, f)
    return data, labels


@pytest.fixture
def write_cifar_batch():
    """``write(path, n, num_classes, label_key, seed) -> (data, labels)``: a fake CIFAR batch file."""
    return _write_cifar_batch


@pytest.fixture
def fake_cifar100():
    """``make(root, per_class=30)``: fake CIFAR-100 batches under ``root/cifar-100-python`` (200 test
    images); returns the training rows and labels."""

    def make(root, per_class=30):
        folder = root / "cifar-100-python"
        folder.mkdir()
        data, labels = _write_cifar_batch(folder / "train", 100 * per_class, 100, b"fine_labels", 0)
        _write_cifar_batch(folder / "test", 200, 100, b"fine_labels", 1)
        return data, labels

    return make
