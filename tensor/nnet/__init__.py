"""``T.nnet``: Theano's neural-network vocabulary (``import arignote.tensor as T; T.nnet.softmax(x)``)."""

from ...core.conv import conv2d  # noqa: F401
from ...core.nnet import (  # noqa: F401
    binary_crossentropy, categorical_crossentropy, crossentropy_categorical_1hot, elu, log_softmax, logsoftmax,
    relu, sigmoid, softmax, softplus,
)
from . import abstract_conv, conv  # noqa: E402,F401  T.nnet.conv.conv2d, T.nnet.abstract_conv
