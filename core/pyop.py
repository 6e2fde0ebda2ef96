"""Ops written in Python: Theano's ``Op`` subclasses with ``perform`` (and ``as_op``, compile/ops.py).

A *Python op* is an op whose class defines ``perform(self, node, inputs, output_storage)``; no backend
table lists it. Every backend runs it by calling ``run_perform`` (the reference and numba through
``implementation``, the C backend from a callback): one place checks what perform gave against the
declared output types and words the errors (docs/python-ops.md).

``adapt_class`` (called by ``Op.__init_subclass__`` for classes with ``perform``) accepts Theano's
spellings: ``grad(inputs, output_grads)`` or ``L_op(inputs, outputs, output_grads)`` where arignote
calls ``grad(inputs, outputs, output_grads)``, ``infer_shape(fgraph, node, shapes)`` beside
``infer_shape(node, shapes)``, ``view_map = {0: [0]}``, and identity equality for a class without
``__props__`` (Theano's default: two instances are never merged).
"""

import functools
import inspect

import numpy as np

from .errors import describe_node, describe_values, verbose_detail
from .graph import Apply, Op, TensorVariable, Variable, as_tensor_variable, user_site
from .types import TensorType


def is_python_op(op):
    """Whether ``op`` is computed by its own ``perform`` method (no backend lists it)."""
    return callable(getattr(op, "perform", None))


def implementation(table, op):
    """The entry of a backend table for ``op`` (keyed by op class), or ``perform_implementation`` for
    a Python op the table does not list; None when there is neither."""
    found = table.get(type(op))
    if found is None and is_python_op(op):
        return perform_implementation
    return found


# ---------------------------------------------------------------------------------------------------
# running perform


def run_perform(node, values):
    """The outputs of ``node.op.perform`` on the input arrays ``values``, each checked against its
    declared type (dtype, number of dimensions, length 1 on broadcastable axes) and never sharing
    memory with an input unless ``view_map`` says so. Inputs are read-only views, except those
    ``destroy_map`` names, which perform gets as private copies it may overwrite."""
    op = node.op
    destroyed = {k for positions in op.destroy_map.values() for k in positions}
    args = []
    for k, value in enumerate(values):
        value = np.asarray(value)
        if k in destroyed:
            arg = np.array(value)
        else:
            arg = value.view()
            arg.setflags(write=False)
        args.append(arg)
    storage = [[None] for _ in node.outputs]
    op.perform(node, args, storage)
    return [_checked_output(node, j, cell[0], args) for j, cell in enumerate(storage)]


def perform_implementation(node, *values):
    """A Python op as an entry of the reference backend's table (one array, or a tuple for several)."""
    results = run_perform(node, values)
    return results[0] if len(results) == 1 else tuple(results)


def _checked_output(node, j, value, args):
    var = node.outputs[j]
    declared = f"make_node declared {var.type}"
    if value is None:
        raise TypeError(f"perform did not set output {j}: output_storage[{j}][0] is still None "
                        f"({declared}); store the result there: output_storage[{j}][0] = value")
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.name != var.dtype:
            raise TypeError(f"perform gave output {j} of dtype {value.dtype}, but {declared}; return "
                            f"numpy.asarray(value, dtype='{var.dtype}') or declare that dtype in make_node")
        array = np.asarray(value)
    else:  # Python numbers and lists: converted when no precision is lost
        try:
            array = var.type.filter(value, what=f"output {j}")
        except TypeError as error:
            raise TypeError(f"perform gave output {j} as {type(value).__name__}, which does not fit: "
                            f"{error} ({declared})") from None
    if array.ndim != var.ndim:
        raise TypeError(f"perform gave output {j} of shape {array.shape} ({array.ndim} dimension(s)), but "
                        f"{declared} ({var.ndim} dimension(s))")
    wrong = [a for a, (size, b) in enumerate(zip(array.shape, var.broadcastable)) if b and size != 1]
    if wrong:
        raise TypeError(f"perform gave output {j} of shape {array.shape}, but {declared}, whose axis "
                        f"{wrong[0]} is broadcastable (its length must be 1)")
    if not array.flags.writeable or (j not in node.op.view_map
                                      and any(np.may_share_memory(array, a) for a in args)):
        array = array.copy()  # a function's outputs are the caller's to keep and write
    return array


def node_error(node, error, values):
    """The exception a backend raises when ``node`` failed with ``error`` on ``values``: for a Python
    op (or a node, such as a loop, whose failure came from one), an exception of the error's own type
    whose message names the node, the inputs' dtypes and shapes; otherwise ``errors.node_failure``."""
    from .errors import node_failure

    if not is_python_op(node.op) and not _from_python_op(error):
        return node_failure(node, error, values)
    detail = str(error.args[0]) if isinstance(error, KeyError) and len(error.args) == 1 else str(error)
    if detail.startswith(f"{node.op}: "):
        detail = detail[len(f"{node.op}: "):]
    if "read-only" in detail and is_python_op(node.op):
        detail += " (perform must not write into its inputs; declare destroy_map = {output: [input]} " \
                  "to get a private copy of an input to overwrite)"
    return same_type(error, f"{describe_node(node)} with inputs {describe_values(values)}: {detail}"
                            f"{verbose_detail(node)}")


def _from_python_op(error):
    seen = set()
    while error is not None and id(error) not in seen:
        if getattr(error, "arignote_python_op", False):
            return True
        seen.add(id(error))
        error = error.__cause__
    return False


_same_type_classes = {}


def same_type(error, message):
    """An exception of ``error``'s type (a subclass of it, when its constructor wants other
    arguments) carrying ``message``, marked as the failure of a Python op."""
    kind = type(error)
    try:
        failure = kind(message)
        if message not in str(failure):
            raise TypeError
    except Exception:
        if kind not in _same_type_classes:  # keeps `except TheirError:` working
            _same_type_classes[kind] = type(kind.__name__, (kind,), {
                "__init__": BaseException.__init__, "__str__": BaseException.__str__,
                "__module__": kind.__module__})
        failure = _same_type_classes[kind](message)
    failure.arignote_python_op = True
    return failure


# ---------------------------------------------------------------------------------------------------
# Theano's Op spellings


def as_type(value, what):
    """A TensorType from an entry of ``itypes``/``otypes``: a TensorType, or a constructor such as
    ``T.dmatrix`` (called to see the type of what it makes)."""
    if isinstance(value, TensorType):  # T.matrix follows floatX: the type is fixed where it is declared
        return TensorType(value.dtype, value.broadcastable)
    if callable(value):
        made = value()
        if isinstance(made, TensorVariable):
            return made.type
    raise TypeError(f"{what} must hold tensor types such as T.dmatrix or T.TensorType('float64', (False,)), "
                    f"got {value!r}")


def make_node_from_types(op, inputs):
    """Theano's default ``make_node`` for an op that declares ``itypes`` and ``otypes``: each input
    converted to its declared type, one new variable per output type."""
    name = type(op).__name__
    itypes, otypes = getattr(op, "itypes", None), getattr(op, "otypes", None)
    if itypes is None or otypes is None:
        raise NotImplementedError(f"{name} must define make_node, or declare itypes and otypes")
    itypes = [as_type(t, f"{name}.itypes") for t in itypes]
    otypes = [as_type(t, f"{name}.otypes") for t in otypes]
    if len(inputs) != len(itypes):
        raise TypeError(f"{op} takes {len(itypes)} input(s) ({', '.join(map(str, itypes))}), got {len(inputs)}")
    return Apply(op, [_as_declared(str(op), k, x, t) for k, (x, t) in enumerate(zip(inputs, itypes))],
                 [t() for t in otypes])


def _as_declared(name, k, x, declared):
    from . import ops

    x = as_tensor_variable(x)
    fits = x.ndim == declared.ndim and not any(d and not b for d, b in zip(declared.broadcastable, x.broadcastable))
    if fits and x.dtype != declared.dtype and getattr(x, "data", None) is not None:
        exact = np.array_equal(x.data.astype(declared.dtype).astype(x.dtype), x.data)
        x = ops.cast(x, declared.dtype) if exact else x  # a constant whose value the type holds
    if not fits or x.dtype != declared.dtype:
        raise TypeError(f"{name}: input {k} must be {declared}, got {x.describe()}; cast it "
                        f"(T.cast(x, '{declared.dtype}')) or declare another type")
    return ops.patternbroadcast(x, declared.broadcastable)


def _required_positional(function):
    """The number of required positional parameters after ``self``, or None with ``*args``."""
    params = list(inspect.signature(function).parameters.values())[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def adapt_class(cls):
    """Let a Python op class written for Theano serve arignote's calls (see the module's docstring)."""
    own = cls.__dict__
    if "make_node" in own and not getattr(own["make_node"], "arignote_adapted", False):
        cls.make_node = _checked_make_node(own["make_node"])
    if "L_op" in own:
        cls.grad = _adapted_grad(cls, own["L_op"], theano_style=False)
    elif "grad" in own and not getattr(own["grad"], "arignote_adapted", False):
        cls.grad = _adapted_grad(cls, own["grad"], theano_style=_required_positional(own["grad"]) == 2)
    if "infer_shape" in own and not getattr(own["infer_shape"], "arignote_adapted", False):
        cls.infer_shape = _adapted_infer_shape(own["infer_shape"])
    if any(isinstance(v, (list, tuple)) for v in dict(own.get("view_map", {})).values()):
        cls.view_map = {k: (v[0] if isinstance(v, (list, tuple)) else v) for k, v in own["view_map"].items()}
    declares_props = any("__props__" in c.__dict__ for c in cls.__mro__ if c is not Op and issubclass(c, Op))
    if not declares_props and "__eq__" not in own:
        cls.__eq__, cls.__hash__ = object.__eq__, object.__hash__


def _adapted(function):
    function.arignote_adapted = True
    return function


def _checked_make_node(make_node):
    @functools.wraps(make_node)
    def checked(self, *inputs, **kwargs):
        return checked_node(self, make_node(self, *inputs, **kwargs))

    return _adapted(checked)


def checked_node(op, node):
    """``node`` as make_node returned it, checked: an Apply of ``op`` on variables, making tensors.
    Its outputs are marked as built where the user called the op."""
    name = type(op).__name__
    if not isinstance(node, Apply):
        raise TypeError(f"{name}.make_node must return Apply(self, inputs, outputs) (theano.Apply), "
                        f"got {type(node).__name__}")
    if node.op is not op:
        raise TypeError(f"{name}.make_node must return an Apply of the op itself (Apply(self, ...)), "
                        f"got one of {node.op}")
    for k, var in enumerate(node.inputs):
        if not isinstance(var, Variable):
            raise TypeError(f"{name}.make_node: input {k} of the Apply is a {type(var).__name__}, not a "
                            "variable; convert inputs with T.as_tensor_variable")
    for j, var in enumerate(node.outputs):
        if not isinstance(var, TensorVariable) or not isinstance(var.type, TensorType):
            raise TypeError(f"{name}.make_node: output {j} must be a tensor variable (such as x.type() or "
                            f"T.dmatrix()), got {var!r}")
    site = user_site()
    for var in node.outputs:
        var.trace = site
    return node


def _adapted_grad(cls, user_grad, theano_style):
    """grad(inputs, outputs, output_grads) as core.grad calls it, or grad(inputs, output_grads) as a
    Theano program may, over the class's own method; output gradients that are None (outputs the cost
    does not depend on) are given as zeros, as Theano gives them."""

    @functools.wraps(user_grad)
    def grad(self, inputs, *rest):
        from . import ops

        if len(rest) == 1:
            outputs, output_grads = None, list(rest[0])
        else:
            outputs, output_grads = rest
            output_grads = [ops.zeros_like(o, o.dtype if o.dtype.startswith("float") else None)
                            if g is None else g for o, g in zip(outputs, output_grads)]
        if theano_style:
            result = user_grad(self, inputs, output_grads)
        else:
            if outputs is None:
                outputs = self.make_node(*inputs).outputs
            result = user_grad(self, inputs, outputs, output_grads)
        if not isinstance(result, (list, tuple)) or len(result) != len(inputs):
            got = f"{len(result)} gradient(s)" if isinstance(result, (list, tuple)) else type(result).__name__
            raise ValueError(f"{self}.grad must return a list of one gradient per input ({len(inputs)}), got {got}")
        return list(result)

    return _adapted(grad)


def _adapted_infer_shape(user_infer_shape):
    takes_fgraph = _required_positional(user_infer_shape) == 3

    @functools.wraps(user_infer_shape)
    def infer_shape(self, *args):
        node, shapes = args[-2:]
        result = user_infer_shape(self, None, node, shapes) if takes_fgraph else user_infer_shape(self, node, shapes)
        return checked_shapes(self, node, result)

    return _adapted(infer_shape)


def checked_shapes(op, node, result):
    """What an infer_shape returned, checked: one tuple of sizes per output (a 1-d shape vector is
    split), or None for an output whose shape it cannot state (core/shape_inference.py)."""
    if not isinstance(result, (list, tuple)) or len(result) != len(node.outputs):
        raise ValueError(f"{op}.infer_shape must return a list of one shape per output ({len(node.outputs)}), "
                         f"got {result!r}")
    shapes = []
    for j, (shape, var) in enumerate(zip(result, node.outputs)):
        if isinstance(shape, TensorVariable) and shape.ndim == 1:
            shape = tuple(shape[k] for k in range(var.ndim))
        if shape is not None and (not isinstance(shape, (list, tuple)) or len(shape) != var.ndim):
            raise ValueError(f"{op}.infer_shape gave output {j} the shape {shape!r}, but the output has "
                             f"{var.ndim} dimension(s)")
        shapes.append(shape)
    return shapes
