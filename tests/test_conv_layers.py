"""The convolutional layers: shapes they announce against the graphs they build, their numbers against
conv2d and pool_2d written by hand, training in Sequential, saving and loading."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.layers import (AvgPool2D, Conv2D, Dense, Flatten, LeNet, MaxPool2D, Reshape, SGD, Sequential,
                             Softmax, Trainer)
from arignote.tensor.signal.pool import pool_2d

X = np.random.default_rng(0).uniform(-1, 1, (3, 2, 9, 8))


@pytest.mark.parametrize("layer", [
    Conv2D(2, 4, 3, seed=0), Conv2D(2, 4, (3, 2), stride=2, padding="same", activation="relu", seed=0),
    Conv2D(2, 6, 3, padding=((1, 0), (2, 1)), dilation=2, groups=2, seed=0), Conv2D(2, 3, 2, padding="full", seed=0),
    MaxPool2D(2), MaxPool2D(3, stride=2, padding=1), AvgPool2D(2, ignore_border=False),
    AvgPool2D(3, stride=1, padding=1, include_padding=True), Flatten(), Reshape((2, 72)),
], ids=lambda layer: repr(layer))
def test_output_shape_is_the_shape_of_the_output(layer):
    x = T.tensor4("x")
    y = arignote.function([x], layer(x), backend="reference")(X)
    assert y.shape == (3,) + tuple(layer.output_shape(X.shape[1:]))


def test_conv2d_layer_is_a_cross_correlation_plus_bias(backend):
    layer = Conv2D(2, 4, 3, stride=(1, 2), padding=1, activation="tanh", seed=1)
    layer.b.set_value(np.arange(4.0).astype(layer.b.dtype))
    x = T.tensor4("x")
    by_hand = T.tanh(T.nnet.conv2d(x, layer.W, border_mode=1, subsample=(1, 2), filter_flip=False)
                     + layer.b.dimshuffle("x", 0, "x", "x"))
    got, expected = arignote.function([x], [layer(x), by_hand], backend=backend)(X.astype(layer.W.dtype))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert layer.W.get_value().shape == (4, 2, 3, 3) and [p.name for p in layer.params] == ["conv.W", "conv.b"]


def test_pooling_layers_are_pool_2d(backend):
    x = T.tensor4("x")
    f = arignote.function([x], [MaxPool2D(3, stride=2, padding=1)(x), AvgPool2D(2, ignore_border=False)(x),
                                pool_2d(x, (3, 3), ignore_border=True, stride=(2, 2), pad=(1, 1)),
                                pool_2d(x, (2, 2), ignore_border=False, mode="average_exc_pad")], backend=backend)
    maxed, averaged, max_by_hand, average_by_hand = f(X)
    np.testing.assert_array_equal(maxed, max_by_hand)
    np.testing.assert_array_equal(averaged, average_by_hand)


def test_bad_layer_arguments():
    with pytest.raises(ValueError, match="groups"):
        Conv2D(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="too small"):
        LeNet((1, 8, 8), kernel=5)
    with pytest.raises(ValueError, match="kernel"):
        Conv2D(1, 2, (1, 2, 3))


def test_a_small_cnn_in_sequential_learns_and_saves(backend, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (64, 36)).astype(arignote.config.floatX)
    y = (x.reshape(64, 6, 6)[:, :3].sum(axis=(1, 2)) > x.reshape(64, 6, 6)[:, 3:].sum(axis=(1, 2))).astype("int32")
    model = Sequential([Reshape((1, 6, 6)), Conv2D(1, 4, 3, padding="same", activation="relu", seed=0), MaxPool2D(2),
                        Flatten(), Dense(36, 8, seed=1), Softmax(8, 2, seed=2)])
    trainer = Trainer(model, optimizer=SGD(0.5), backend=backend)
    before = trainer.evaluate((x, y))[0]
    trainer.fit((x, y), epochs=15, batch_size=16, progress=False)
    after = trainer.evaluate((x, y))[0]
    assert after < before * 0.7, (before, after)
    model.save(tmp_path / "cnn.npz")
    other = Sequential([Reshape((1, 6, 6)), Conv2D(1, 4, 3, padding="same", activation="relu", seed=5), MaxPool2D(2),
                        Flatten(), Dense(36, 8, seed=6), Softmax(8, 2, seed=7)])
    other.load(tmp_path / "cnn.npz")
    np.testing.assert_array_equal(other[1].W.get_value(), model[1].W.get_value())


def test_lenet_sizes_its_dense_layer():
    model = LeNet()  # LeNet-5 on 28 x 28
    assert model.flat_size == 800 and [p.get_value().shape for p in model.params][:4] == [(20, 1, 5, 5), (20,), (50, 20, 5, 5), (50,)]
    x = T.matrix("x")
    p = arignote.function([x], model(x), backend="reference")(np.zeros((2, 784)))
    assert p.shape == (2, 10) and np.allclose(p.sum(axis=1), 1)
