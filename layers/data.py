"""Data sets. The built-in one is scikit-learn's bundled digits (1797 8x8 images, no download)."""

from collections import namedtuple

import numpy as np

from .. import config, shared
from .. import tensor as T

Split = namedtuple("Split", "train valid test")


def load_digits(valid=0.1, test=0.2, seed=0, standardize=False, dtype=None):
    """scikit-learn's digits as ``Split(train, valid, test)``, each an ``(x, y)`` pair: ``x`` of shape
    (n, 64) scaled to [0, 1] in ``dtype`` (default floatX), ``y`` int32 labels 0..9. The examples are
    shuffled with ``seed`` and the split is stratified (each part has the classes in proportion).
    ``standardize=True`` centres each pixel and divides it by its standard deviation (+ 0.1, as some
    border pixels are always 0), both measured on the training part only."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("the digits data set comes with scikit-learn: pip install scikit-learn "
                          "(or pip install 'arignote[demo]')") from None
    digits = sklearn_digits()
    x = np.asarray(digits.data / 16.0, dtype=dtype or config.floatX)
    y = np.asarray(digits.target, dtype="int32")
    rng = np.random.default_rng(seed)
    parts = {"train": [], "valid": [], "test": []}
    for label in np.unique(y):
        index = rng.permutation(np.flatnonzero(y == label))
        n_test, n_valid = round(len(index) * test), round(len(index) * valid)
        parts["test"].append(index[:n_test])
        parts["valid"].append(index[n_test:n_test + n_valid])
        parts["train"].append(index[n_test + n_valid:])
    result = {}
    for name, pieces in parts.items():
        index = rng.permutation(np.concatenate(pieces))
        result[name] = (x[index], y[index])
    if standardize:
        mean, scale = result["train"][0].mean(axis=0), result["train"][0].std(axis=0) + 0.1
        result = {k: (np.asarray((v[0] - mean) / scale, dtype=x.dtype), v[1]) for k, v in result.items()}
    return Split(**result)


def with_shifts(data, image_shape=(8, 8)):
    """A training set ``(x, y)`` of flat images (rows of pixels) with four more copies of every image,
    moved by one pixel up, down, left and right (the row or column moved in is 0): a digit a pixel away
    is the same digit, which a small data set cannot teach a convolutional network otherwise."""
    x, y = data
    images = np.asarray(x).reshape((-1,) + tuple(image_shape))
    copies = [images]
    for axis in (1, 2):
        for step in (1, -1):
            moved = np.roll(images, step, axis=axis)
            edge = [slice(None)] * 3
            edge[axis] = 0 if step == 1 else -1
            moved[tuple(edge)] = 0
            copies.append(moved)
    return np.concatenate(copies).reshape(-1, images[0].size).astype(np.asarray(x).dtype), np.tile(y, len(copies))


def as_shared(data, label_dtype="int32"):
    """``(x, y)`` arrays as the deep-learning tutorials keep them: two shared variables (the labels
    stored as floatX) and the labels cast back to ``label_dtype``, ready for ``givens``."""
    x, y = data
    shared_x = shared(np.asarray(x, dtype=config.floatX), name="data_x", borrow=True)
    shared_y = shared(np.asarray(y, dtype=config.floatX), name="data_y", borrow=True)
    return shared_x, T.cast(shared_y, label_dtype)
