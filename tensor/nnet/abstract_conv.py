"""``T.nnet.abstract_conv``: the convolution and Theano's helper for its output shape."""

from ...core.conv import conv2d, get_conv_output_shape  # noqa: F401
