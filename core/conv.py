"""Convolutions over images (NCHW): Theano's ``T.nnet.conv2d`` and the older ``T.nnet.conv.conv2d``.

Every convolution is one op, ``Corr2d``: a cross-correlation with explicit padding, stride, dilation
and groups, on inputs of one float dtype. ``conv2d`` resolves Theano's arguments onto it once, here:
``filter_flip=True`` (a true convolution) flips the filters' last two axes, a view, before the op;
integer and mixed dtypes are cast to their common float dtype. The gradients are two more ops of the
same parameters, as in Theano's CorrMM: ``Corr2dGradInputs`` (the transposed correlation, scattering
each output gradient back over its window) and ``Corr2dGradWeights`` (each filter tap's correlation of
the input with the output gradient). The three are each other's gradients, so second derivatives
need nothing more.

Geometry, for one spatial axis of size n, kernel k, dilation d, stride s and padding (p0, p1):
the dilated kernel spans e = d * (k - 1) + 1 pixels, and the output has (n + p0 + p1 - e) // s + 1
positions; output i reads the padded input at i * s + j * d for taps j = 0 .. k - 1. 'full' padding is
e - 1 on each side, 'half' is e // 2 (Theano's rule), and both depend on the kernel's size, known when
the function runs: ``padding`` is the one rule every backend applies.
"""

import numpy as np

from . import shape_inference as si
from .graph import Apply, Op, as_tensor_variable
from .ops import _out, cast, shape_i, specify_shape, stack_scalars, subtensor, zeros
from .types import DISCRETE_DTYPES, float_of, upcast

__all__ = ["conv2d", "get_conv_output_shape", "conv_output_length"]

_as = as_tensor_variable


def conv_output_length(size, kernel, stride=1, pad=(0, 0), dilation=1):
    """Output positions along one axis (ints, or symbolic scalars for ``size`` and ``kernel``)."""
    span = dilation * (kernel - 1) + 1
    return (size + pad[0] + pad[1] - span) // stride + 1


def padding(pad, kernel, dilation):
    """The (before, after) padding of one spatial axis: ``pad`` is 'full', 'half' or a pair of ints."""
    if pad == "full":
        return dilation * (kernel - 1), dilation * (kernel - 1)
    if pad == "half":
        return (dilation * (kernel - 1) + 1) // 2, (dilation * (kernel - 1) + 1) // 2
    return pad


def int_pair(value, what):
    """(a, b) from an int or a pair of ints; a ValueError that names ``what`` otherwise."""
    if isinstance(value, (int, np.integer)):
        value = (value, value)
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value)):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in value)


def border_padding(border_mode):
    """Theano's border_mode as 'full', 'half' or ((top, bottom), (left, right))."""
    if border_mode in ("full", "half"):
        return border_mode
    if border_mode == "valid":
        return ((0, 0), (0, 0))
    if isinstance(border_mode, (int, np.integer)):
        border_mode = (border_mode, border_mode)
    if isinstance(border_mode, (tuple, list)) and len(border_mode) == 2:
        if all(isinstance(b, (int, np.integer)) for b in border_mode):
            border_mode = tuple((b, b) for b in border_mode)
        pads = tuple(int_pair(b, "conv2d: each border of border_mode") for b in border_mode)
        if all(p >= 0 for pair in pads for p in pair):
            return pads
    raise ValueError(f"conv2d: border_mode must be 'valid', 'full', 'half', a non-negative int, a pair of "
                     f"them, or a pair of (before, after) pairs; got {border_mode!r}")


class _Corr2dBase(Op):
    """The parameters shared by the correlation and its two gradients."""

    abstract = True
    __props__ = ("pad", "stride", "dilation", "groups")
    splits_images = True

    def __init__(self, pad=((0, 0), (0, 0)), stride=(1, 1), dilation=(1, 1), groups=1):
        self.pad = pad if pad in ("full", "half") else tuple(tuple(int(p) for p in pair) for pair in pad)
        self.stride = tuple(int(s) for s in stride)
        self.dilation = tuple(int(d) for d in dilation)
        self.groups = int(groups)
        if min(self.stride) < 1 or min(self.dilation) < 1 or self.groups < 1:
            raise ValueError(f"{type(self).__name__}: strides, dilations and groups must be at least 1, got "
                             f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}")

    def paddings(self, kh, kw):
        """((top, bottom), (left, right)) for a kernel of kh x kw taps."""
        if self.pad in ("full", "half"):
            return padding(self.pad, kh, self.dilation[0]), padding(self.pad, kw, self.dilation[1])
        return self.pad

    def output_shape(self, image, kernel):
        """The (rows, columns) of the output for an image of (h, w) and a kernel of (kh, kw): ints, or
        symbolic scalars (the shape is known without running the convolution)."""
        pads = self.paddings(*kernel)
        return tuple(conv_output_length(image[a], kernel[a], self.stride[a], pads[a], self.dilation[a])
                     for a in (0, 1))

    def check(self, image, kernel, in_channels, kernel_channels, out_channels, batch=None, out=None):
        """The ValueError message of a geometry that does not fit (None when it does); backends that
        run Python call it, and the compiled ones state the same conditions."""
        where = (f"input {(batch, in_channels) + tuple(image)} and filters "
                 f"{(out_channels, kernel_channels) + tuple(kernel)}")
        if in_channels != kernel_channels * self.groups:
            return (f"{where}: the input has {in_channels} channel(s), the filters take {kernel_channels} "
                    f"per group x {self.groups} group(s)")
        if out_channels % self.groups:
            return f"{where}: {out_channels} filter(s) do not divide into {self.groups} group(s)"
        if min(kernel) < 1:
            return f"{where}: the filters have no taps"
        pads = self.paddings(*kernel)
        for a, axis in ((0, "rows"), (1, "columns")):
            span = self.dilation[a] * (kernel[a] - 1) + 1
            if image[a] + sum(pads[a]) < span:
                return (f"{where}: the filter spans {span} {axis} (dilation {self.dilation[a]}), more than the "
                        f"padded input's {image[a] + sum(pads[a])}")
        if out is not None and tuple(out) != (batch, out_channels) + self.output_shape(image, kernel):
            return (f"{where}: the output gradient has shape {tuple(out)}, the convolution's output has "
                    f"{(batch, out_channels) + self.output_shape(image, kernel)}")
        return None

    def _check_types(self, *tensors):
        dtypes = {t.dtype for t in tensors}
        if any(t.ndim != 4 for t in tensors) or len(dtypes) != 1 or dtypes.pop() in DISCRETE_DTYPES:
            raise TypeError(f"{self}: expected 4-d tensors of one float dtype, got "
                            + ", ".join(t.describe() for t in tensors))


class Corr2d(_Corr2dBase):
    """out[n, o, i, j] = sum over c, a, b of x_padded[n, g * C + c, i * sh + a * dh, j * sw + b * dw]
    * w[o, c, a, b], with g = o // (O / groups) the group of filter o and C = w.shape[1] the channels
    per group. x is (N, groups * C, H, W), w is (O, C, kh, kw), out is (N, O, rows, columns)."""

    def make_node(self, x, w):
        x, w = _as(x), _as(w)
        self._check_types(x, w)
        return Apply(self, [x, w], [_out(x.dtype, (x.broadcastable[0], w.broadcastable[0], False, False))])

    def infer_shape(self, node, shapes):
        (x, w), (xs, ws) = node.inputs, shapes
        sizes = (xs[0], ws[0]) + self.output_shape(xs[2:], ws[2:])
        # the geometry (channels, groups, a filter within the padded input) is checked by the op on an
        # empty batch and zero filters: nothing is multiplied
        return [si.checked(sizes, self.make_node(si.empty(x.dtype, 0, *xs[1:]), zeros(ws, w.dtype)).outputs[0], node)]

    def grad(self, inputs, outputs, output_grads):
        (x, w), (g,) = inputs, output_grads
        return [Corr2dGradInputs(*self._props())(w, g, _spatial(x)),
                Corr2dGradWeights(*self._props())(x, g, _spatial(w))]


def _spatial(x):
    """The (rows, columns) of the 4-d x as a vector."""
    return stack_scalars([shape_i(x, 2), shape_i(x, 3)], "int64")


def _size_vector(shape, what, op):
    shape = cast(_as(shape), "int64")
    if shape.ndim != 1:
        raise TypeError(f"{op}: {what} must be a vector of 2 sizes, got {shape.describe()}")
    return shape


class Corr2dGradInputs(_Corr2dBase):
    """The gradient of Corr2d with respect to its input x, from the filters w, the output gradient g
    and x's (rows, columns) ``image``: gx[n, g * C + c, p, q] = sum of g[n, o, i, j] * w[o, c, a, b]
    over the taps (i * sh + a * dh, j * sw + b * dw) that read padded position (p + top, q + left).
    (With strides, several image sizes give the same output, so the size is an input.)"""

    def make_node(self, w, g, image):
        w, g = _as(w), _as(g)
        self._check_types(w, g)
        image = _size_vector(image, "the image size", self)
        return Apply(self, [w, g, image], [_out(g.dtype, (g.broadcastable[0], False, False, False))])

    def infer_shape(self, node, shapes):
        (w, g, image), (ws, gs, _) = node.inputs, shapes
        sizes = (gs[0], ws[1] * self.groups, subtensor(image, 0), subtensor(image, 1))
        check = self.make_node(zeros(ws, w.dtype), si.empty(g.dtype, 0, *gs[1:]), image).outputs[0]
        return [si.checked(sizes, check, node)]

    def grad(self, inputs, outputs, output_grads):
        (w, g, _), (h,) = inputs, output_grads
        props = self._props()
        return [Corr2dGradWeights(*props)(h, g, _spatial(w)),
                Corr2d(*props)(h, w), None]


class Corr2dGradWeights(_Corr2dBase):
    """The gradient of Corr2d with respect to its filters w, from the input x, the output gradient g
    and the filters' (kh, kw) ``kernel``: gw[o, c, a, b] = sum over n, i, j of g[n, o, i, j] *
    x_padded[n, group(o) * C + c, i * sh + a * dh, j * sw + b * dw]."""

    def make_node(self, x, g, kernel):
        x, g = _as(x), _as(g)
        self._check_types(x, g)
        kernel = _size_vector(kernel, "the kernel size", self)
        return Apply(self, [x, g, kernel], [_out(g.dtype, (g.broadcastable[1], False, False, False))])

    def infer_shape(self, node, shapes):
        (x, g, kernel), (xs, gs, _) = node.inputs, shapes
        sizes = (gs[1], xs[1] // self.groups, subtensor(kernel, 0), subtensor(kernel, 1))
        check = self.make_node(si.empty(x.dtype, 0, *xs[1:]), si.empty(g.dtype, 0, *gs[1:]), kernel).outputs[0]
        sizes = si.checked(sizes, check, node)  # the geometry, on empty batches; then the batches agree
        return [si.checked(sizes, specify_shape(si.empty(g.dtype, gs[0], 0), [xs[0], None]), node)]

    def grad(self, inputs, outputs, output_grads):
        (x, g, _), (h,) = inputs, output_grads
        props = self._props()
        return [Corr2dGradInputs(*props)(h, g, _spatial(x)),
                Corr2d(*props)(x, h), None]


def _shape_hint(shape, what):
    """Theano's input_shape/filter_shape: 4 ints or Nones (None: not known), or None."""
    if shape is None:
        return None
    shape = tuple(shape)
    if len(shape) != 4 or not all(s is None or isinstance(s, (int, np.integer)) for s in shape):
        raise ValueError(f"conv2d: {what} must be 4 ints or Nones (None for a size not known), got {shape!r}")
    return tuple(None if s is None else int(s) for s in shape)


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid", subsample=(1, 1),
           filter_flip=True, image_shape=None, filter_dilation=(1, 1), num_groups=1, **kwargs):
    """Theano's ``T.nnet.conv2d``: a 2-d convolution of a batch of images ``input`` (N, C, H, W) with
    ``filters`` (out channels, C / num_groups, kh, kw), giving (N, out channels, rows, columns).

    ``border_mode``: 'valid' (no padding), 'full' (every overlap: kernel - 1 on each side), 'half'
    (kernel // 2: odd kernels keep the size), an int or a pair (rows, columns) of symmetric paddings, or
    a pair of (before, after) pairs. ``subsample``: the strides. ``filter_flip=True`` flips the filters
    (a convolution), False does not (a cross-correlation, as most other libraries call convolution).
    ``filter_dilation``: the spacing of the filter's taps. ``num_groups``: the channels are split into
    that many groups, each convolved with its share of the filters. ``input_shape`` (or Theano's older
    ``image_shape``) and ``filter_shape`` (ints, or None for unknown sizes) are checked when the
    function runs, and their known sizes are checked against each other now.
    """
    if kwargs:
        raise TypeError(f"conv2d: unexpected argument(s) {', '.join(sorted(kwargs))}")
    if image_shape is not None and input_shape is not None:
        raise ValueError("conv2d: give input_shape or its older name image_shape, not both")
    image, kernel = _shape_hint(input_shape if image_shape is None else image_shape, "input_shape"), \
        _shape_hint(filter_shape, "filter_shape")
    op = Corr2d(border_padding(border_mode), int_pair(subsample, "conv2d: subsample"), int_pair(filter_dilation, "conv2d: filter_dilation"),
                int(num_groups))
    x, w = _as(input), _as(filters)
    if x.ndim != 4 or w.ndim != 4:
        raise TypeError(f"conv2d: expected a 4-d input (batch, channels, rows, columns) and 4-d filters "
                        f"(out channels, in channels / groups, rows, columns), got {x.describe()} and {w.describe()}")
    if image is not None and kernel is not None and None not in (image[1:] + kernel):
        problem = op.check(image[2:], kernel[2:], image[1], kernel[1], kernel[0], image[0])
        if problem:
            raise ValueError(f"conv2d: {problem}")
    dtype = float_of(upcast(x.dtype, w.dtype))
    x, w = cast(x, dtype), cast(w, dtype)
    if image is not None and any(s is not None for s in image):
        x = specify_shape(x, image)
    if kernel is not None and any(s is not None for s in kernel):
        w = specify_shape(w, kernel)
    if filter_flip:
        w = w[:, :, ::-1, ::-1]
    return op(x, w)


def get_conv_output_shape(image_shape, kernel_shape, border_mode, subsample, filter_dilation=(1, 1)):
    """Theano's helper: the output shape (batch, out channels, rows, columns) of conv2d for an input of
    ``image_shape`` and filters of ``kernel_shape`` (ints, symbolic scalars, or None for unknown)."""
    op = Corr2d(border_padding(border_mode), int_pair(subsample, "conv2d: subsample"), int_pair(filter_dilation, "conv2d: filter_dilation"))
    spatial = (image_shape[2:], kernel_shape[2:])
    if any(s is None for s in spatial[0] + spatial[1]):
        rows_cols = (None, None)
    else:
        rows_cols = op.output_shape(*spatial)
    return (image_shape[0], kernel_shape[0]) + rows_cols
