"""Theano's ``theano.tensor.extra_ops``, built from arignote's ops so that gradients and every backend come
with them: ``cumsum cumprod diff bincount repeat squeeze to_one_hot bartlett fill_diagonal
fill_diagonal_offset``. (``unique``, ``compress``, ``searchsorted``, ``ravel_multi_index`` and
``unravel_index`` need ops arignote does not have yet: docs/theano-compat.md.)
"""

import numpy as np

from ..core import ops
from ..core.graph import as_tensor_variable
from ..core.ops import repeat, squeeze  # noqa: F401  Theano's extra_ops.repeat and squeeze are these
from ..core.scan import scan
from ..core.types import upcast

__all__ = ["cumsum", "cumprod", "diff", "bincount", "repeat", "squeeze", "to_one_hot", "bartlett",
           "fill_diagonal", "fill_diagonal_offset"]


def _axis_first(x, axis, name):
    """``x`` (flattened when ``axis`` is None) with ``axis`` moved to the front, and the order that undoes it."""
    x = as_tensor_variable(x)
    if axis is None:
        x, axis = ops.flatten(x), 0
    axis = ops.normalize_axes(x, axis, name)[0]
    order = [axis] + [a for a in range(x.ndim) if a != axis]
    return x.dimshuffle(order), [order.index(a) for a in range(x.ndim)]


def _cumulative(x, axis, identity, combine, name):
    """The running ``combine`` of ``x`` along ``axis``, in x's dtype (Theano's CumOp), as a scan over the axis."""
    leading, undo = _axis_first(x, axis, name)
    row_pattern = leading.broadcastable[1:]
    start = ops.alloc(np.array(identity, dtype=leading.dtype), *[leading.shape[a] for a in range(1, leading.ndim)])
    start = ops.patternbroadcast(start, row_pattern)  # the state has a row's type, as scan requires
    running, _ = scan(lambda row, total: ops.cast(combine(total, row), leading.dtype),
                      sequences=leading, outputs_info=start, name=name)
    return running.dimshuffle(undo)


def cumsum(x, axis=None):
    """Cumulative sum along ``axis`` (of the flattened ``x`` when None), as NumPy's; the dtype is x's."""
    return _cumulative(x, axis, 0, ops.add, "cumsum")


def cumprod(x, axis=None):
    """Cumulative product along ``axis`` (of the flattened ``x`` when None), as NumPy's; the dtype is x's."""
    return _cumulative(x, axis, 1, ops.mul, "cumprod")


def diff(x, n=1, axis=-1):
    """The ``n``-th discrete difference along ``axis``: ``x[1:] - x[:-1]``, ``n`` times (NumPy's diff)."""
    x = as_tensor_variable(x)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"diff: n must be a non-negative int, got {n!r}")
    axis = ops.normalize_axes(x, axis, "diff")[0]
    before = (slice(None),) * axis
    for _ in range(n):
        x = x[before + (slice(1, None),)] - x[before + (slice(None, -1),)]
    return x


def bincount(x, weights=None, minlength=None, assert_nonneg=False):
    """How many times each value occurs in the int vector ``x`` (the sum of ``weights`` where given), with at
    least ``minlength`` bins. As in Theano, counts have x's dtype and weighted sums the weights' dtype."""
    x = as_tensor_variable(x)
    if x.ndim != 1 or not x.dtype.startswith(("int", "uint")):
        raise TypeError(f"bincount: x must be a vector of integers, got {x.type}")
    if assert_nonneg:
        raise NotImplementedError("bincount(assert_nonneg=True) needs an Assert op, which arignote does not have; "
                                  "check that x >= 0 yourself (negative values count from the end, as in Theano)")
    size = ops.cast(ops.max(x) + 1, "int64")
    if minlength is not None:
        size = ops.maximum(size, minlength)
    if weights is None:
        return ops.inc_subtensor(ops.zeros([size], dtype=x.dtype)[x], 1)
    weights = as_tensor_variable(weights)
    return ops.inc_subtensor(ops.zeros([size], dtype=weights.dtype)[x], weights)


def to_one_hot(y, nb_class, dtype=None):
    """A matrix with one row per label in the int vector ``y``, 1 in column y[i] and 0 elsewhere
    (``dtype`` default floatX)."""
    y = as_tensor_variable(y)
    rows = ops.zeros((y.shape[0], nb_class), dtype=dtype)
    return ops.set_subtensor(rows[ops.arange(y.shape[0]), y], 1)


def bartlett(M):
    """NumPy's Bartlett (triangular) window of ``M`` points, float64; empty when M < 1."""
    M = as_tensor_variable(M)
    if M.ndim != 0 or not M.dtype.startswith(("int", "uint")):
        raise TypeError(f"bartlett: M must be an integer scalar, got {M.type}")
    points = ops.cast(ops.arange(M), "float64")
    width = ops.cast(ops.maximum(M - 1, 1), "float64")  # M == 1 is the single point 1 (switched below)
    return ops.switch(ops.eq(M, 1), 1.0, 1.0 - abs(2.0 * points / width - 1.0))


def _diagonal_value(a, val, name):
    a, val = as_tensor_variable(a), as_tensor_variable(val)
    if val.ndim != 0:
        raise TypeError(f"{name}: val must be a scalar, got {val.type}")
    if upcast(a.dtype, val.dtype) != a.dtype:
        raise TypeError(f"{name}: val of dtype {val.dtype} would be cast down to a's dtype {a.dtype}; "
                        "cast it yourself if that is what you want")
    return a, ops.cast(val, a.dtype)


def fill_diagonal(a, val):
    """``a`` with its main diagonal set to the scalar ``val`` (NumPy's fill_diagonal, without changing
    ``a``); beyond 2-D every axis must have the same length."""
    a, val = _diagonal_value(a, val, "fill_diagonal")
    if a.ndim < 2:
        raise TypeError(f"fill_diagonal: a must have at least 2 dimensions, got {a.type}")
    if a.ndim > 2:  # NumPy's rule, checked when it runs
        a = ops.specify_shape(a, [a.shape[0]] * a.ndim)
    length = a.shape[0] if a.ndim > 2 else ops.minimum(a.shape[0], a.shape[1])
    steps = ops.arange(length)
    return ops.set_subtensor(a[(steps,) * a.ndim], val)


def fill_diagonal_offset(a, val, offset):
    """The matrix ``a`` with the diagonal ``offset`` above the main one (below when negative) set to ``val``."""
    a, val = _diagonal_value(a, val, "fill_diagonal_offset")
    if a.ndim != 2:
        raise TypeError(f"fill_diagonal_offset: a must be a matrix, got {a.type}")
    offset = as_tensor_variable(offset)
    if offset.ndim != 0 or not offset.dtype.startswith(("int", "uint")):
        raise TypeError(f"fill_diagonal_offset: offset must be an integer scalar, got {offset.type}")
    right, down = ops.maximum(offset, 0), ops.maximum(-offset, 0)
    height, width = a.shape[0], a.shape[1]
    length = ops.maximum(ops.minimum(height - down, width - right), 0)
    steps = ops.arange(length)
    return ops.set_subtensor(a[steps + down, steps + right], val)
