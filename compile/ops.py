"""Theano's ``theano.compile.ops``: ``as_op`` makes an op of a Python function on NumPy arrays.

    @as_op(itypes=[T.dmatrix, T.dmatrix], otypes=[T.dmatrix])
    def numpy_dot(a, b):
        return numpy.dot(a, b)

    z = numpy_dot(x, y)        # a node of the graph; every backend calls the function when it runs

The op has no gradient (differentiating through it says so; subclass ``FromFunctionOp`` and add
``grad`` for one) and no shape unless ``infer_shape(node, input_shapes)`` is given. How backends run
it: docs/python-ops.md.
"""

import importlib

from ..core.graph import Op
from ..core.pyop import as_type, checked_shapes


class FromFunctionOp(Op):
    """An op computing its outputs with ``fn(*input arrays)`` (one array, or a list for several
    outputs), its inputs and outputs of the declared types. Equal ops: the same function and types."""

    __props__ = ("fn", "itypes", "otypes", "infer_shape_fn")

    def __init__(self, fn, itypes, otypes, infer_shape=None):
        self.fn = fn
        self.itypes = tuple(as_type(t, "as_op's itypes") for t in itypes)
        self.otypes = tuple(as_type(t, "as_op's otypes") for t in otypes)
        self.infer_shape_fn = infer_shape
        if infer_shape is not None:  # only then: shape inference asks whether the op has infer_shape
            self.infer_shape = self._infer_shape

    def __str__(self):
        return f"FromFunctionOp{{{getattr(self.fn, '__name__', self.fn)}}}"

    __repr__ = __str__

    def perform(self, node, inputs, output_storage):
        results = self.fn(*inputs)
        if len(output_storage) == 1 and not (isinstance(results, (list, tuple)) and len(results) == 1):
            results = [results]
        if not isinstance(results, (list, tuple)) or len(results) != len(output_storage):
            raise ValueError(f"{getattr(self.fn, '__name__', self.fn)} must return {len(output_storage)} "
                             f"arrays (one per otypes entry), got {type(results).__name__}")
        for cell, value in zip(output_storage, results):
            cell[0] = value

    def _infer_shape(self, node, input_shapes):
        return checked_shapes(self, node, self.infer_shape_fn(node, input_shapes))

    def __reduce__(self):
        # the decorated function's name now holds this op: pickle the op by that name (as Theano does)
        module, name = getattr(self.fn, "__module__", None), getattr(self.fn, "__qualname__", None)
        if module and name and _load_by_name(module, name) is self:
            return _load_by_name, (module, name)
        return FromFunctionOp, (self.fn, self.itypes, self.otypes, self.infer_shape_fn)


def _load_by_name(module, name):
    found = importlib.import_module(module)
    for part in name.split("."):
        found = getattr(found, part, None)
    return found


def as_op(itypes, otypes, infer_shape=None):
    """A decorator making an op (a ``FromFunctionOp``) of a function of NumPy arrays. ``itypes`` and
    ``otypes``: the types of its inputs and outputs (``T.dmatrix``, ``T.TensorType(...)``, one or a
    list); ``infer_shape(node, input_shapes)``: the outputs' shapes, a tuple of sizes per output."""
    itypes = list(itypes) if isinstance(itypes, (list, tuple)) else [itypes]
    otypes = list(otypes) if isinstance(otypes, (list, tuple)) else [otypes]
    itypes = [as_type(t, "as_op's itypes") for t in itypes]
    otypes = [as_type(t, "as_op's otypes") for t in otypes]
    if infer_shape is not None and not callable(infer_shape):
        raise TypeError(f"as_op's infer_shape must be a function (node, input_shapes) -> shapes, got {infer_shape!r}")

    def make_op(fn):
        return FromFunctionOp(fn, itypes, otypes, infer_shape)

    return make_op
