"""Pooling over the last two axes: Theano's ``pool_2d`` (``T.signal.pool``) and ``max_pool_2d``.

One op, ``Pool``, with its window, stride, padding, border rule and mode as parameters, and its
gradients as ops of the same parameters (Theano's MaxPoolGrad, AveragePoolGrad and
DownsampleFactorMaxGradGrad). Every backend applies ``Pool.windows``' geometry:

- along an axis of size n with window ws, stride st and padding p, output i covers the positions
  [i * st - p, i * st - p + ws) of the image, cut at n + p (Theano's padded image ends there); the
  number of outputs is Theano's: with ``ignore_border`` the windows that fit the padded image, without
  it also a last partial window (``pool_output_length``);
- 'max' takes the maximum over the positions inside the image (padding never wins; a NaN does);
  'sum' sums them; 'average_inc_pad' divides that sum by the window's size cut at the padded image's
  end (padding counts as zeros), 'average_exc_pad' by the number of positions inside the image;
- the gradient of 'max' goes to every element of a window equal to its maximum (ties share it, each
  getting the whole gradient, as in Theano); the average modes spread it evenly over what they divide.
"""

import warnings

import numpy as np

from . import shape_inference as si
from .conv import int_pair
from .graph import Apply, Op, as_tensor_variable
from .ops import _out, gt, maximum, switch, zeros_like
from .types import DISCRETE_DTYPES

__all__ = ["pool_2d", "max_pool_2d", "pool_output_length"]

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")
_as = as_tensor_variable


def pool_output_length(size, ws, stride, pad, ignore_border):
    """Theano's number of pooled positions along an axis of ``size`` (an int or a symbolic scalar); an
    empty axis has none, padded or not (a window must hold a position of the image)."""
    padded = size + 2 * pad
    if ignore_border:
        count = _at_least_0((padded - ws) // stride + 1)
    elif stride >= ws:
        count = _at_least_0((padded - 1) // stride + 1)
    else:  # a last partial window
        count = _at_least_0((padded - 1 - ws + stride) // stride) + 1
    return (count if size > 0 else 0) if isinstance(size, (int, np.integer)) else switch(gt(size, 0), count, 0)


def _at_least_0(n):
    return max(int(n), 0) if isinstance(n, (int, np.integer)) else maximum(n, 0)


class _PoolBase(Op):
    """The parameters shared by the pooling op and its gradients."""

    splits_rows = True  # its images (the leading axes) are independent: worth threads when large

    abstract = True
    __props__ = ("ws", "stride", "pad", "ignore_border", "mode")

    def __init__(self, ws, stride=None, pad=(0, 0), ignore_border=False, mode="max"):
        self.ws = tuple(int(w) for w in ws)
        self.stride = self.ws if stride is None else tuple(int(s) for s in stride)
        self.pad = tuple(int(p) for p in pad)
        self.ignore_border = bool(ignore_border)
        self.mode = mode
        problem = (f"mode must be one of {', '.join(MODES)}, got {mode!r}" if mode not in MODES else
                   "the window, the stride and the padding must be pairs" if not len(self.ws) == len(self.stride) == len(self.pad) == 2 else
                   f"the window {self.ws} and the stride {self.stride} must be at least 1" if min(self.ws + self.stride) < 1 else
                   f"the padding {self.pad} must be at least 0 and smaller than the window {self.ws}"
                   if min(self.pad) < 0 or any(p >= w for p, w in zip(self.pad, self.ws)) else
                   "padding needs ignore_border=True (Theano's rule)" if max(self.pad) and not self.ignore_border else None)
        if problem:
            raise ValueError(f"pool_2d: {problem}")

    def output_shape(self, rows, columns):
        """The pooled (rows, columns) of an image of (rows, columns) (ints or symbolic scalars)."""
        return tuple(pool_output_length(n, self.ws[a], self.stride[a], self.pad[a], self.ignore_border)
                     for a, n in enumerate((rows, columns)))

    def windows(self, axis, size):
        """For each output position along ``axis`` (0: rows, 1: columns) of an image of ``size``:
        (first, end) of the image positions it reads and the divisor of 'average_inc_pad'."""
        ws, st, p = self.ws[axis], self.stride[axis], self.pad[axis]
        out = []
        for i in range(self.output_shape(size, size)[axis]):
            lo = i * st - p
            hi = min(lo + ws, size + p)
            out.append((max(lo, 0), min(hi, size), hi - lo))
        return out

    def _check_image(self, x):
        if x.ndim < 2:
            raise TypeError(f"{self}: expected a tensor of at least 2 axes (pooled over the last two), got {x.describe()}")

    def _check_like(self, x, *others):
        self._check_image(x)
        for other in others:
            if other.ndim != x.ndim or other.dtype != x.dtype:
                raise TypeError(f"{self}: expected tensors of {x.type}, got {other.describe()}")


def _checked_like_pool(op, node, shapes, sizes):
    """``sizes``, checked by the gradient op on zero-element stand-ins (a first axis of length 0 added:
    the windows are on the last two axes), which fails where the inputs' shapes do not fit each other."""
    stand_ins = [si.stand_in(v, s, first=True) for v, s in zip(node.inputs, shapes)]
    return si.checked(sizes, op.make_node(*stand_ins).outputs[0], node)


class Pool(_PoolBase):
    """``mode`` ('max', 'sum', 'average_inc_pad', 'average_exc_pad') over windows of the last two axes."""

    def make_node(self, x):
        x = _as(x)
        self._check_image(x)
        if x.dtype in DISCRETE_DTYPES and self.mode.startswith("average"):
            raise TypeError(f"{self}: averaging needs a float input, got {x.describe()} (cast it first)")
        return Apply(self, [x], [_out(x.dtype, x.broadcastable[:-2] + (False, False))])

    def infer_shape(self, node, shapes):
        return [tuple(shapes[0][:-2]) + self.output_shape(*shapes[0][-2:])]

    def grad(self, inputs, outputs, output_grads):
        (x,), (out,), (g,) = inputs, outputs, output_grads
        if self.mode == "max":
            return [MaxPoolGrad(*self._props())(x, out, g)]
        return [AveragePoolGrad(*self._props())(x, g)]


class MaxPoolGrad(_PoolBase):
    """Max pooling's gradient: gx[p, q] = sum of g[w] over the windows w holding (p, q) in which
    x[p, q] equals the window's maximum out[w]."""

    def make_node(self, x, out, g):
        x, out, g = _as(x), _as(out), _as(g)
        self._check_like(x, out, g)
        return Apply(self, [x, out, g], [_out(x.dtype, x.broadcastable)])

    def infer_shape(self, node, shapes):
        return [_checked_like_pool(self, node, shapes, shapes[0])]

    def grad(self, inputs, outputs, output_grads):
        (x, out, _), (h,) = inputs, output_grads
        return [zeros_like(x), zeros_like(out), MaxPoolGradGrad(*self._props())(x, out, h)]


class MaxPoolGradGrad(_PoolBase):
    """The adjoint of MaxPoolGrad in its last input: for each window w, the sum of h[p, q] over its
    positions where x[p, q] equals the window's maximum out[w]; shaped like out."""

    def make_node(self, x, out, h):
        x, out, h = _as(x), _as(out), _as(h)
        self._check_like(x, out, h)
        return Apply(self, [x, out, h], [_out(x.dtype, out.broadcastable)])

    def infer_shape(self, node, shapes):
        return [_checked_like_pool(self, node, shapes, shapes[1])]

    def grad(self, inputs, outputs, output_grads):
        (x, out, _), (k,) = inputs, output_grads
        return [zeros_like(x), zeros_like(out), MaxPoolGrad(*self._props())(x, out, k)]


class AveragePoolGrad(_PoolBase):
    """The sum and average modes' gradient: gx[p, q] = sum of g[w] / divisor(w) over the windows w
    holding (p, q) (divisor 1 for 'sum'). x gives only the shape."""

    def make_node(self, x, g):
        x, g = _as(x), _as(g)
        self._check_like(x, g)
        return Apply(self, [x, g], [_out(x.dtype, x.broadcastable)])

    def infer_shape(self, node, shapes):
        return [_checked_like_pool(self, node, shapes, shapes[0])]

    def grad(self, inputs, outputs, output_grads):
        (x, _), (h,) = inputs, output_grads
        return [zeros_like(x), Pool(*self._props())(h)]


def _renamed(name, value, unset, old_name, old_value):
    """``value``, or Theano's older spelling's ``old_value`` when that one is given instead."""
    if old_value is None:
        return value
    if value is not None and (unset is None or int_pair(value, f"pool_2d: {name}") != unset):
        raise ValueError(f"pool_2d: give {name} or its older name {old_name}, not both")
    return old_value


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0), mode="max", ds=None, st=None,
            padding=None):
    """Theano's ``pool_2d``: ``mode`` pooling over the last two axes of ``input`` (2 axes or more) with
    windows of ``ws`` (rows, columns), moved by ``stride`` (default: ``ws``), after ``pad`` rows and
    columns of padding on each side (which needs ``ignore_border=True`` and must be smaller than the
    window). ``ignore_border=False`` keeps a last partial window where the image does not divide;
    left out, it is False with Theano's warning. ``ds``, ``st`` and ``padding`` are Theano's older
    names of ``ws``, ``stride`` and ``pad``. Modes: 'max', 'sum', 'average_inc_pad' (padding counts
    in the average), 'average_exc_pad' (it does not). Max-pooling's gradient goes to every element
    equal to its window's maximum."""
    ws = _renamed("ws", ws, None, "ds", ds)
    stride = _renamed("stride", stride, None, "st", st)
    pad = _renamed("pad", pad, (0, 0), "padding", padding)
    if ws is None:
        raise ValueError("pool_2d: the window size ws is required")
    if ignore_border is None:
        warnings.warn("pool_2d: ignore_border was not given; it is False, as in Theano (give it to silence "
                      "this warning; True drops the last partial window)", stacklevel=2)
        ignore_border = False
    x = _as(input)
    op = Pool(int_pair(ws, "pool_2d: ws"), None if stride is None else int_pair(stride, "pool_2d: stride"),
              int_pair(pad, "pool_2d: pad"), ignore_border, mode)
    return op(x)


def max_pool_2d(input, ds, ignore_border=None, st=None, padding=(0, 0), mode="max"):
    """Theano's older ``downsample.max_pool_2d``: ``pool_2d`` with its first names."""
    return pool_2d(input, ws=ds, ignore_border=ignore_border, stride=st, pad=padding, mode=mode)
