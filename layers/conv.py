"""Convolutional layers: Conv2D, MaxPool2D, AvgPool2D, Flatten, Reshape, and the LeNet model.

Images are NCHW (batch, channels, rows, columns), as in Theano. Conv2D computes a cross-correlation
(``filter_flip=False``), as PyTorch, Keras and JAX call convolution, so that weights move between them
unchanged; ``LeNet`` is the Deep Learning Tutorials' network (conv, max-pool, activation, twice, then a
hidden layer and a softmax), sized by ``output_shape`` without running anything.
"""

import numpy as np

from .. import config, shared
from .. import tensor as T
from ..core.conv import Corr2d, border_padding, conv2d, int_pair
from ..core.pool import pool_2d, pool_output_length
from .layers import Activation, Dense, Dropout, Layer, Sequential, Softmax, _activation, _generator


class Conv2D(Layer):
    """activation(conv(x, W) + b) on NCHW images: W of shape (out_channels, in_channels / groups,
    kernel rows, kernel columns), b one per output channel. ``padding``: an int, a pair, a pair of
    (before, after) pairs, 'valid' (0), 'same' (kernel // 2 each side: odd kernels keep the size at
    stride 1) or 'full'. ``init``: 'glorot' (default; He for ReLU), 'he' or a function (rng, shape)."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, padding=0, activation=None, dilation=1,
                 groups=1, init=None, seed=None, name=None, dtype=None):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2D: {in_channels} input and {out_channels} output channels must both divide "
                             f"into {groups} groups")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel, self.stride, self.dilation = int_pair(kernel, "Conv2D: kernel"), int_pair(stride, "Conv2D: stride"), int_pair(dilation, "Conv2D: dilation")
        self.padding = {"same": "half", "valid": 0}.get(padding, padding)
        self.activation, self.name = _activation(activation), name or "conv"
        shape = (out_channels, in_channels // groups) + self.kernel
        fan_in, fan_out = shape[1] * shape[2] * shape[3], out_channels * shape[2] * shape[3]
        rng = _generator(seed)
        init = init or ("he" if activation == "relu" else "glorot")
        if init == "glorot":
            bound = np.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if activation == "sigmoid" else 1.0)
        elif init == "he":
            bound = np.sqrt(6.0 / fan_in)
        elif not callable(init):
            raise ValueError(f"unknown init {init!r}: use 'glorot', 'he' or a function")
        w = init(rng, shape) if callable(init) else rng.uniform(-bound, bound, shape)
        dtype = dtype or config.floatX
        self.W = shared(np.asarray(w, dtype=dtype), name=f"{self.name}.W")
        self.b = shared(np.zeros(out_channels, dtype=dtype), name=f"{self.name}.b")
        self.params = [self.W, self.b]

    def output_shape(self, input_shape):
        """(channels, rows, columns) of the output for an input of (channels, rows, columns)."""
        op = Corr2d(border_padding(self.padding), self.stride, self.dilation, self.groups)
        return (self.out_channels, *op.output_shape(input_shape[1:], self.kernel))

    def _output(self, x, training):
        z = conv2d(x, self.W, border_mode=self.padding, subsample=self.stride, filter_flip=False,
                   filter_dilation=self.dilation, num_groups=self.groups)
        return self.activation(z + self.b.dimshuffle("x", 0, "x", "x"))


class _Pool2D(Layer):
    mode = None

    def __init__(self, pool_size=2, stride=None, padding=0, ignore_border=True, name=None):
        super().__init__()
        self.pool_size, self.padding = int_pair(pool_size, "pool_size"), int_pair(padding, "padding")
        self.stride = self.pool_size if stride is None else int_pair(stride, "stride")
        self.ignore_border, self.name = ignore_border, name or type(self).__name__.lower()

    def output_shape(self, input_shape):
        return tuple(input_shape[:-2]) + tuple(
            pool_output_length(input_shape[-2 + a], self.pool_size[a], self.stride[a], self.padding[a], self.ignore_border)
            for a in (0, 1))

    def _output(self, x, training):
        return pool_2d(x, self.pool_size, ignore_border=self.ignore_border, stride=self.stride, pad=self.padding,
                       mode=self.mode)


class MaxPool2D(_Pool2D):
    """The maximum over windows of ``pool_size`` of the last two axes, moved by ``stride`` (default: the
    window). ``ignore_border=False`` keeps a last partial window."""

    mode = "max"


class AvgPool2D(_Pool2D):
    """The average over windows of the last two axes; ``include_padding=True`` counts padded positions
    (Theano's 'average_inc_pad'), the default does not ('average_exc_pad')."""

    def __init__(self, pool_size=2, stride=None, padding=0, ignore_border=True, include_padding=False, name=None):
        super().__init__(pool_size, stride, padding, ignore_border, name)
        self.mode = "average_inc_pad" if include_padding else "average_exc_pad"


class Flatten(Layer):
    """(batch, d1, d2, ...) -> (batch, d1 * d2 * ...): from convolutional maps to dense layers."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def _output(self, x, training):
        return T.flatten(x, 2)


class Reshape(Layer):
    """Each example reshaped to ``shape`` (the batch axis kept): flat rows of pixels to (1, rows, columns)."""

    def __init__(self, shape, name=None):
        super().__init__()
        self.shape, self.name = tuple(int(s) for s in shape), name or "reshape"

    def output_shape(self, input_shape):
        return self.shape

    def _output(self, x, training):
        return T.reshape(x, (x.shape[0],) + self.shape, ndim=1 + len(self.shape))


class LeNet(Sequential):
    """LeNet as in the Deep Learning Tutorials: for each entry of ``filters``, a Conv2D of ``kernel``
    (with ``padding``), a max-pool of ``pool`` and ``activation``; then a Dense layer of ``hidden`` units
    and a Softmax over ``n_classes``. The input is (batch, *input_shape) or flat rows of pixels.
    The defaults are LeNet-5 on 28 x 28 images: 20 and 50 filters of 5 x 5, 2 x 2 pooling, 500 hidden
    units, tanh. All initial values come from one generator seeded with ``seed``."""

    def __init__(self, input_shape=(1, 28, 28), filters=(20, 50), kernel=5, pool=2, hidden=500, n_classes=10,
                 activation="tanh", padding=0, dropout=0.0, seed=None, name=None):
        rng = _generator(seed)
        layers, shape = [Reshape(input_shape)], tuple(input_shape)
        for i, n in enumerate(filters):
            conv = Conv2D(shape[0], n, kernel, padding=padding, activation="linear", seed=rng, name=f"conv{i}",
                          init="he" if activation == "relu" else "glorot")
            pooled = MaxPool2D(pool, name=f"pool{i}")
            layers += [conv, pooled, Activation(activation)]
            shape = pooled.output_shape(conv.output_shape(shape))
            if min(shape[1:]) < 1:
                raise ValueError(f"LeNet: an input of {tuple(input_shape)} is too small for {len(filters)} "
                                 f"conv-pool stages of kernel {kernel} and pool {pool}")
        layers.append(Flatten())
        n_flat = int(np.prod(shape))
        if dropout:
            layers.append(Dropout(dropout, seed=rng, name="dropout"))
        layers.append(Dense(n_flat, hidden, activation=activation, seed=rng, name="hidden"))
        layers.append(Softmax(hidden, n_classes, seed=rng, name="output"))
        super().__init__(layers, name=name or "lenet")
        self.input_shape, self.flat_size = tuple(input_shape), n_flat

