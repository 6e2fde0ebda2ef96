"""The symbolic graph: Variables, Constants, Apply nodes, Ops, and the FunctionGraph a backend compiles."""

import os
import sys

import numpy as np

from .config import config
from .types import TensorType, canonical_dtype, dtype_of_python_scalar

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TESTS_DIR = os.path.join(_PACKAGE_DIR, "tests") + os.sep


def _is_internal(filename):
    return filename.startswith(_PACKAGE_DIR + os.sep) and not filename.startswith(_TESTS_DIR)


def user_site():
    """Where the user's code created the current variable: (filename, line, function), or None."""
    frame = sys._getframe(1)
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return None
    return (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


class Variable:
    """A symbolic value: its type, and the Apply node that computes it (``owner``) if any."""

    def __init__(self, type, owner=None, index=None, name=None):
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.trace = user_site()

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_eval_cache", None)  # compiled functions for eval() are rebuilt when needed
        return state

    @property
    def tag(self):
        """Theano's scratchpad of notes on a variable, made on first use; ``tag.test_value`` is an
        example value that ops are evaluated on as the graph is built (core/test_values.py)."""
        tag = self.__dict__.get("_tag")
        if tag is None:
            from .test_values import Tag

            tag = self.__dict__["_tag"] = Tag(self)
        return tag

    def clone(self):
        """A fresh root variable of the same type, name and trace (not its tag)."""
        other = type(self).__new__(type(self))
        Variable.__init__(other, self.type, name=self.name)
        other.trace = self.trace
        return other

    def built_at(self):
        """'file.py:12 in fn': where the user built this variable (for error messages)."""
        if self.trace is None:
            return "an unknown place"
        filename, line, function = self.trace
        return f"{filename}:{line} in {function}"

    def describe(self):
        """A short description for messages: name or op, type, and where it was built."""
        what = repr(self.name) if self.name else (str(self.owner.op) + " output" if self.owner else "unnamed variable")
        return f"{what} ({self.type}, built at {self.built_at()})"

    def __repr__(self):
        if self.name:
            return self.name
        if self.owner is not None:
            args = ", ".join(repr(i) for i in self.owner.inputs)
            suffix = f"[{self.index}]" if len(self.owner.outputs) > 1 else ""
            return f"{self.owner.op}({args}){suffix}"
        return f"<{self.type}>"


class Apply:
    """One application of an Op to input variables, producing output variables."""

    def __init__(self, op, inputs, outputs):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for index, output in enumerate(self.outputs):
            output.owner = self
            output.index = index

    @property
    def out(self):
        return self.outputs[0]

    def __repr__(self):
        return f"Apply({self.op}, {self.inputs})"


class Op:
    """An immutable, hashable description of an operation and its parameters (``__props__``).

    An Op builds its output types in ``make_node`` and its gradient in ``grad``; it has no numerical
    implementation: that lives in each backend's table, keyed by the Op's class.
    """

    __props__ = ()
    # {output index: input index} for outputs that may be a view of (share memory with) an input.
    view_map = {}
    # {output index: [input index]} for outputs written into an input's buffer (Theano's convention)
    destroy_map = {}
    # whether blocks of its images may run on threads of their own (core/plan.py, Plan.image_threads)
    splits_images = False
    # whether its rows (or images: the leading axes) are independent and each costs enough per element
    # (an exp, a window) to be split between threads like a costly elementwise loop (Plan.threads)
    splits_rows = False

    def _props(self):
        return tuple(getattr(self, p) for p in self.__props__)

    def __eq__(self, other):
        return type(self) is type(other) and self._props() == other._props()

    def __hash__(self):
        return hash((type(self), self._props()))

    def __str__(self):
        if not self.__props__:
            return type(self).__name__
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self.__props__)
        return f"{type(self).__name__}{{{params}}}"

    __repr__ = __str__

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if callable(getattr(cls, "perform", None)):  # an op written in Python: Theano's spellings too
            from .pyop import adapt_class

            adapt_class(cls)

    def make_node(self, *inputs):
        """Theano's default: the inputs as the declared ``itypes``, a new variable per ``otypes``."""
        from .pyop import make_node_from_types

        return make_node_from_types(self, inputs)

    def __call__(self, *inputs):
        node = self.make_node(*inputs)
        if config.compute_test_value != "off":  # Theano's build-time check
            from .test_values import compute_test_values

            compute_test_values(node)
        return node.outputs[0] if len(node.outputs) == 1 else node.outputs

    def grad(self, inputs, outputs, output_grads):
        """Symbolic gradients, one per input (None: no gradient flows to that input)."""
        hint = ""
        if callable(getattr(self, "perform", None)):
            hint = (f"; define grad(self, inputs, output_grads) on {type(self).__name__}, returning one "
                    f"symbolic gradient per input (built at {outputs[0].built_at()})")
        raise TypeError(f"{self} has no gradient; it cannot appear between a cost and the variables of grad()"
                        + hint)


# ---------------------------------------------------------------------------------------------------
# Tensor variables: operator overloading and Theano's methods. The ops themselves live in ops.py.


class TensorVariable(Variable):
    """A symbolic tensor. Arithmetic, comparisons and Theano's methods build new graph nodes."""

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return self.type.ndim

    @property
    def broadcastable(self):
        return self.type.broadcastable

    # A Variable is truthy, except a comparison result: `if x > 0:` is almost always a bug.
    def __bool__(self):
        if self.owner is not None and getattr(self.owner.op, "is_comparison", False):
            raise TypeError(
                f"the truth value of a symbolic comparison ({self.owner.op}) is unknown until the graph runs; "
                "use T.switch for elementwise choices"
            )
        return True

    # Identity, not elementwise equality, so variables can be dict keys (use T.eq / T.neq).
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    def __add__(self, other): return ops.add(self, other)
    def __radd__(self, other): return ops.add(other, self)
    def __sub__(self, other): return ops.sub(self, other)
    def __rsub__(self, other): return ops.sub(other, self)
    def __mul__(self, other): return ops.mul(self, other)
    def __rmul__(self, other): return ops.mul(other, self)
    def __truediv__(self, other): return ops.true_div(self, other)
    def __rtruediv__(self, other): return ops.true_div(other, self)
    def __floordiv__(self, other): return ops.int_div(self, other)
    def __rfloordiv__(self, other): return ops.int_div(other, self)
    def __mod__(self, other): return ops.mod(self, other)
    def __rmod__(self, other): return ops.mod(other, self)
    def __pow__(self, other): return ops.pow(self, other)
    def __rpow__(self, other): return ops.pow(other, self)
    def __neg__(self): return ops.neg(self)
    def __pos__(self): return self
    def __abs__(self): return ops.abs_(self)
    def __and__(self, other): return ops.bitwise_and(self, other)
    def __rand__(self, other): return ops.bitwise_and(other, self)
    def __or__(self, other): return ops.bitwise_or(self, other)
    def __ror__(self, other): return ops.bitwise_or(other, self)
    def __xor__(self, other): return ops.bitwise_xor(self, other)
    def __rxor__(self, other): return ops.bitwise_xor(other, self)
    def __invert__(self): return ops.invert(self)
    def __lt__(self, other): return ops.lt(self, other)
    def __le__(self, other): return ops.le(self, other)
    def __gt__(self, other): return ops.gt(self, other)
    def __ge__(self, other): return ops.ge(self, other)

    def __getitem__(self, key):
        return ops.subtensor(self, key)

    def __iter__(self):
        raise TypeError("a symbolic tensor cannot be iterated over; its length is unknown until the graph runs")

    @property
    def T(self):
        return ops.transpose(self)

    @property
    def shape(self):
        return ops.shape(self)

    def transpose(self, *axes):
        return ops.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = pattern[0]
        return ops.dimshuffle(self, pattern)

    def reshape(self, shape, *more, ndim=None):
        if more or isinstance(shape, (int, np.integer)):
            shape = (shape,) + more
        return ops.reshape(self, shape, ndim=ndim)

    def flatten(self, ndim=1, outdim=None):
        return ops.flatten(self, outdim or ndim)

    def astype(self, dtype):
        return ops.cast(self, dtype)

    def sum(self, axis=None, keepdims=False, dtype=None, acc_dtype=None):
        return ops.sum(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def mean(self, axis=None, keepdims=False, dtype=None, acc_dtype=None):
        return ops.mean(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def prod(self, axis=None, keepdims=False, dtype=None, acc_dtype=None):
        return ops.prod(self, axis=axis, keepdims=keepdims, dtype=dtype)

    def max(self, axis=None, keepdims=False):
        return ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return ops.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return ops.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return ops.argmin(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return ops.all(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return ops.any(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False):
        return ops.var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False):
        return ops.std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def clip(self, a_min, a_max):
        return ops.clip(self, a_min, a_max)

    def round(self, mode="half_away_from_zero"):
        return ops.round(self, mode)

    def repeat(self, repeats, axis=None):
        return ops.repeat(self, repeats, axis=axis)

    def squeeze(self, axis=None):
        return ops.squeeze(self, axis=axis)

    def dot(self, other):
        return linalg.dot(self, other)

    def __matmul__(self, other):
        return linalg.matmul(self, other)

    def __rmatmul__(self, other):
        return linalg.matmul(other, self)

    def eval(self, inputs_to_values=None):
        """Compile (once per set of inputs) and run this variable: ``(x + 1).eval({x: 2.0})``."""
        from .function import function

        inputs_to_values = dict(inputs_to_values or {})
        inputs = list(inputs_to_values)
        key = tuple(id(v) for v in inputs)
        cache = self.__dict__.setdefault("_eval_cache", {})
        if key not in cache:
            cache[key] = function(inputs, self)
        return cache[key](*[inputs_to_values[v] for v in inputs])


class Constant(TensorVariable):
    """A value fixed when the graph is built. ``weak`` marks a bare Python number whose dtype yields to
    the tensors it is combined with (``x_float32 * 2.0`` stays float32)."""

    def __init__(self, type, data, name=None, weak=False):
        super().__init__(type, name=name)
        data = np.array(data, dtype=type.dtype)  # a private, read-only copy
        data.setflags(write=False)
        self.data = data
        self.weak = weak

    def clone(self):
        return self

    def signature(self):
        return (self.type, self.data.tobytes())

    def __repr__(self):
        if self.name:
            return self.name
        if self.data.size <= 6:
            return np.array2string(self.data, separator=", ")
        return f"Constant{{{self.type}, shape={self.data.shape}}}"


def constant(value, dtype=None, name=None):
    """A Constant holding ``value`` (Theano's ``T.constant``)."""
    data = np.asarray(value, dtype=canonical_dtype(dtype) if dtype is not None else None)
    if dtype is None and data.dtype.kind == "f" and not isinstance(value, (np.ndarray, np.generic)):
        data = data.astype(canonical_dtype("floatX"))
    bcast = tuple(size == 1 for size in data.shape)
    return Constant(TensorType(data.dtype, bcast), data, name=name)


def as_tensor_variable(value, name=None):
    """A TensorVariable for ``value``: variables pass through, numbers and arrays become Constants."""
    if isinstance(value, TensorVariable):
        return value
    if isinstance(value, Variable):
        raise TypeError(f"{value!r} is not a tensor variable")
    if isinstance(value, (bool, int, float)) and not isinstance(value, np.generic):
        dtype = dtype_of_python_scalar(value)
        try:
            weak = Constant(TensorType(dtype, ()), value, name=name, weak=True)
            weak.python_value = value  # full precision, for when it meets a wider tensor
            return weak
        except OverflowError:
            pass  # a Python int beyond int64: let NumPy choose
    if isinstance(value, (list, tuple)) and any(isinstance(v, Variable) for v in value):
        from .ops import stack_scalars

        return stack_scalars(value)
    try:
        data = np.asarray(value)
    except Exception as error:
        raise TypeError(f"cannot turn {type(value).__name__} into a tensor: {error}") from None
    if data.dtype == object or data.dtype.kind not in "biuf":
        raise TypeError(f"cannot turn {type(value).__name__} ({data.dtype}) into a tensor")
    if data.dtype.kind == "f" and not isinstance(value, (np.ndarray, np.generic)):
        data = data.astype(canonical_dtype("floatX"))  # Python floats in lists are floatX
    return constant(data, name=name)


# ---------------------------------------------------------------------------------------------------
# Walking and copying graphs. Iterative, so deep graphs do not hit the recursion limit.


def toposort(outputs, stop=()):
    """The Apply nodes that compute ``outputs``, each after the nodes it depends on.
    Variables in ``stop`` are treated as roots."""
    stop = set(map(id, stop))
    order, done, on_stack = [], set(), set()
    stack = [(o.owner, False) for o in reversed(outputs) if o.owner is not None and id(o) not in stop]
    while stack:
        node, expanded = stack.pop()
        if id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        if id(node) in on_stack:
            continue
        on_stack.add(id(node))
        stack.append((node, True))
        for var in reversed(node.inputs):
            if var.owner is not None and id(var) not in stop and id(var.owner) not in done:
                stack.append((var.owner, False))
    return order


def ancestors(outputs, stop=()):
    """Every variable that ``outputs`` depend on (including themselves), stopping at ``stop``."""
    stop_ids = set(map(id, stop))
    seen, result, stack = set(), [], list(outputs)
    while stack:
        var = stack.pop()
        if id(var) in seen:
            continue
        seen.add(id(var))
        result.append(var)
        if var.owner is not None and id(var) not in stop_ids:
            stack.extend(var.owner.inputs)
    return result


def graph_inputs(outputs, stop=()):
    """The root variables (no owner, or in ``stop``) that ``outputs`` depend on, in discovery order."""
    stop_ids = set(map(id, stop))
    return [v for v in ancestors(outputs, stop) if v.owner is None or id(v) in stop_ids]


def clone_replace(outputs, replace=None, memo=None):
    """Copy the graph of ``outputs``, substituting variables by ``replace`` ({old: new}).

    Roots that are not replaced are kept (not copied); ``memo`` receives {old variable: new variable}.
    When a substitute's type differs from the original's, the affected nodes are rebuilt with make_node.
    """
    memo = {} if memo is None else memo
    for old, new in (replace or {}).items():
        memo[old] = new
    for node in toposort(outputs, stop=list(memo)):
        if all(o in memo for o in node.outputs):
            continue
        new_inputs = [memo.get(i, i) for i in node.inputs]
        if all(n is o for n, o in zip(new_inputs, node.inputs)):
            continue  # untouched subgraph: share it
        if all(n.type == o.type for n, o in zip(new_inputs, node.inputs)):
            new_outputs = [o.clone() for o in node.outputs]
            Apply(node.op, new_inputs, new_outputs)
        else:
            new_outputs = node.op.make_node(*new_inputs).outputs
            for old, new in zip(node.outputs, new_outputs):
                new.name, new.trace = old.name, old.trace
        for old, new in zip(node.outputs, new_outputs):
            memo[old] = new
    return [memo.get(o, o) for o in outputs]


class MissingInputError(ValueError):
    """A graph needs a variable that is neither an input, a shared variable, nor a constant."""


class FunctionGraph:
    """A private copy of a graph from ``inputs`` to ``outputs``: what rewrites transform and backends
    compile. ``memo`` maps each original variable to its copy."""

    def __init__(self, inputs, outputs, clone=True):
        self.memo = {}
        if clone:
            for var in inputs:
                self.memo[var] = var.clone()
                self.memo[var].graph_input = True  # a value only when it runs: no test value is missing
            for node in toposort(outputs, stop=inputs):
                new_inputs = [self.memo.get(i, i) for i in node.inputs]
                new_outputs = [o.clone() for o in node.outputs]
                Apply(node.op, new_inputs, new_outputs)
                self.memo.update(zip(node.outputs, new_outputs))
            inputs = [self.memo[v] for v in inputs]
            outputs = [self.memo.get(v, v) for v in outputs]
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._check_inputs()

    def _check_inputs(self):
        known = set(map(id, self.inputs))
        for var in graph_inputs(self.outputs, stop=self.inputs):
            if id(var) not in known and not isinstance(var, Constant):
                raise MissingInputError(
                    f"the graph needs {var.describe()}, which is not among the function's inputs; "
                    "add it to the inputs, or give it a value with givens="
                )

    def __getstate__(self):
        state = dict(self.__dict__)
        state["memo"] = {}  # the user's original graph is not part of a compiled function
        return state

    @property
    def apply_nodes(self):
        """The nodes in the order they run: topological, with the plan's updates in place last
        (``late``, core/plan.py), after every node that can fail."""
        order = toposort(self.outputs, stop=self.inputs)
        late = getattr(self, "late", None)
        if late:
            present, running_last = set(order), set(late)
            order = [n for n in order if n not in running_last] + [n for n in late if n in present]
        return order

    def toposort(self):
        return self.apply_nodes

    def clients(self):
        """{variable: [(node, input index), ...]} for every variable used inside the graph."""
        result = {}
        for node in self.apply_nodes:
            for position, var in enumerate(node.inputs):
                result.setdefault(var, []).append((node, position))
        return result

    def __repr__(self):
        return f"FunctionGraph({self.inputs} -> {self.outputs})"


from . import linalg, ops  # noqa: E402  (they need the classes above; the operators above need them)
