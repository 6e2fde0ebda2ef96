"""``T.nnet``: Theano's neural-network vocabulary (``import arignote.tensor as T; T.nnet.softmax(x)``)."""

from ..core.nnet import (  # noqa: F401
    binary_crossentropy, categorical_crossentropy, crossentropy_categorical_1hot, elu, log_softmax, logsoftmax,
    relu, sigmoid, softmax, softplus,
)
