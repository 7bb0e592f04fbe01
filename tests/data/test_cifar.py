"""CIFAR python-batch loader on tiny fake batches in the standard layout (the real files are not in
the shared data folder; they are read the same way)."""

import pickle

import jax
import numpy as np
import pytest

from jaxml.data.cifar import load_cifar, longtail_cifar
from jaxml.data.core import DataFormatError, DataNotFoundError


def test_load_cifar10_layout(tmp_path, write_cifar_batch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    first = None
    for i in range(1, 6):
        d, _ = write_cifar_batch(folder / f"data_batch_{i}", 20, 10, b"labels", i)
        first = d if first is None else first
    write_cifar_batch(folder / "test_batch", 10, 10, b"labels", 9)
    x, y = load_cifar("cifar10", "train", root=tmp_path)
    assert x.shape == (100, 32, 32, 3) and x.dtype == np.uint8 and y.shape == (100,)
    # channel-major rows: pixel (0, 0) red is byte 0, green byte 1024, blue byte 2048
    assert x[0, 0, 0, 0] == first[0, 0] and x[0, 0, 0, 1] == first[0, 1024] and x[0, 0, 0, 2] == first[0, 2048]
    xt, _ = load_cifar("cifar10", "test", root=tmp_path)
    assert xt.shape == (10, 32, 32, 3)


def test_longtail_cifar100(tmp_path, fake_cifar100):
    fake_cifar100(tmp_path)
    d = longtail_cifar(jax.random.PRNGKey(0), "cifar100", imbalance_ratio=10, val_per_class=5, root=tmp_path)
    assert d.class_counts[0] == 25 and d.class_counts[-1] == 2
    np.testing.assert_array_equal(np.bincount(d.y_train, minlength=100), d.class_counts)
    np.testing.assert_array_equal(np.bincount(d.y_val, minlength=100), [5] * 100)
    assert d.x_test.shape == (200, 32, 32, 3)


def test_missing_data_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXML_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="cifar-10-batches-py"):
        load_cifar("cifar10", root=tmp_path)
    with pytest.raises(ValueError, match="unknown CIFAR"):
        load_cifar("cifar1000", root=tmp_path)


def test_bad_batch_is_reported(tmp_path, write_cifar_batch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    with open(folder / "train", "wb") as f:
        pickle.dump({b"data": np.zeros((4, 100), np.uint8), b"fine_labels": [0, 1, 2, 3]}, f)
    write_cifar_batch(folder / "test", 4, 100, b"fine_labels", 0)
    with pytest.raises(DataFormatError, match=r"\(n, 3072\)"):
        load_cifar("cifar100", "train", root=tmp_path)


def test_unpickling_is_restricted(tmp_path, write_cifar_batch):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "train", "wb") as f:
        pickle.dump({b"data": Evil()}, f)
    write_cifar_batch(folder / "test", 4, 100, b"fine_labels", 0)
    with pytest.raises(DataFormatError, match="not allowed"):
        load_cifar("cifar100", "train", root=tmp_path)
