"""``T.nnet.conv``: Theano's older ``conv2d``, a true convolution ('valid' or 'full') of NCHW images."""

from ...core import conv as _conv


def conv2d(input, filters, image_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1), **kwargs):
    """``conv2d(input, filters, image_shape=, filter_shape=, border_mode='valid' | 'full', subsample=)``:
    the filters are flipped (a convolution), as in Theano's ``conv.conv2d``; the shapes are checked
    when the function runs. Theano's tuning arguments (``unroll_batch``, ``unroll_kern``, ...) are
    accepted and have no effect."""
    unknown = set(kwargs) - {"unroll_batch", "unroll_kern", "unroll_patch", "imshp_logical", "kshp_logical",
                             "kshp_logical_top_aligned", "openmp", "verbose"}
    if unknown:
        raise TypeError(f"conv.conv2d: unexpected argument(s) {', '.join(sorted(unknown))}")
    if border_mode not in ("valid", "full"):
        raise ValueError(f"conv.conv2d: border_mode must be 'valid' or 'full', got {border_mode!r}")
    return _conv.conv2d(input, filters, input_shape=image_shape, filter_shape=filter_shape, border_mode=border_mode,
                        subsample=subsample, filter_flip=True)
