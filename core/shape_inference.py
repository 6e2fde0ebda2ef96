"""Shape inference: each op states the shapes of its outputs as expressions of its inputs' shapes, and
``y.shape`` / ``y.shape[i]`` become those expressions (the ``infer_shapes`` step of canonicalization,
core/rewrite.py), so that y is not computed for its shape alone.

The rule sits next to each op, with Theano's signature: ``infer_shape(self, node, input_shapes)`` gets
one tuple per input of int64 scalar variables (constants where they are known, 1 on a broadcastable
axis) and returns one tuple per output (ints allowed), or None for an output whose shape it cannot
state (then ``y.shape`` stays, and y runs). A shape that depends on values is an expression of those
values (the number of True entries of a boolean mask).

Checks. Computing y fails when its inputs do not fit (they do not broadcast, an index is out of range,
a reshape changes the number of elements...); reading its shape fails then too. A check is left out
only where it provably holds: equal sizes (the same expression, or equal constants), an input that
alone sets a size. Otherwise ``checked`` attaches to the sizes the op applied to zero-element
*stand-ins* of its inputs (their sizes plus a last axis of length 0): no arithmetic runs, and a misfit
raises the op's own error, naming the line that built y. The rewrite ties every size it reads to the
checks of the variable and of everything it is computed from (size + the int64 sum of the empty
result, which is 0). Errors of values alone (an integer to a negative power) are not shape errors: a
shape read does not raise them.
"""

import builtins
import functools

import numpy as np

from . import ops
from .graph import Apply, Constant, TensorVariable, ancestors, toposort
from .types import TensorType

# ---------------------------------------------------------------------------------------------------
# Sizes: int64 scalars, folded where they are constants


def const(value):
    return Constant(TensorType("int64", ()), int(value))


def size(value):
    """``value`` (an int or an integer scalar variable) as an int64 scalar variable."""
    if isinstance(value, (int, np.integer)):
        return const(value)
    return ops.cast(ops._as(value), "int64")


def value_of(s):
    """The int of a constant size, else None."""
    if isinstance(s, (int, np.integer)):
        return int(s)
    if isinstance(s, Constant) and s.data.ndim == 0:
        return int(s.data)
    return None


def _fold(op, fn, a, b, left_unit=None, right_unit=None):
    a, b = size(a), size(b)
    va, vb = value_of(a), value_of(b)
    if va is not None and vb is not None:
        return const(fn(va, vb))
    if left_unit is not None and va == left_unit:
        return b
    if right_unit is not None and vb == right_unit:
        return a
    return op(a, b)


def add(a, b):
    return _fold(ops.add, lambda x, y: x + y, a, b, 0, 0)


def sub(a, b):
    return _fold(ops.sub, lambda x, y: x - y, a, b, None, 0)


def mul(a, b):
    return _fold(ops.mul, lambda x, y: x * y, a, b, 1, 1)


def floordiv(a, b):
    """a // b for b > 0 (callers keep the divisor positive: integer division by 0 is not portable)."""
    return _fold(ops.int_div, lambda x, y: x // y, a, b, None, 1)


def minimum(a, b):
    return _fold(ops.minimum, builtins.min, a, b)


def maximum(a, b):
    if value_of(b) == 0 and nonneg(a):
        return size(a)
    return _fold(ops.maximum, builtins.max, a, b)


def product(sizes):
    return functools.reduce(mul, sizes, const(1))


def total(sizes):
    return functools.reduce(add, sizes, const(0))


def switch(condition, a, b):
    return ops.switch(condition, size(a), size(b))


def nonneg(s):
    """Whether a size is provably >= 0 (a constant, an axis length, arithmetic on those)."""
    v = value_of(s)
    if v is not None:
        return v >= 0
    owner = s.owner
    if owner is None:
        return False
    if isinstance(owner.op, ops.ShapeI):
        return True
    if type(owner.op) in (ops.Add, ops.Mul, ops.Minimum, ops.IntDiv):
        return builtins.all(nonneg(i) for i in owner.inputs)
    if type(owner.op) is ops.Maximum:
        return builtins.any(nonneg(i) for i in owner.inputs)
    if type(owner.op) is ops.Switch:
        return builtins.all(nonneg(i) for i in owner.inputs[1:])
    if type(owner.op) is ops.Sum and owner.inputs[0].dtype == "bool":
        return True
    return False


def positive(s):
    v = value_of(s)
    return v is not None and v > 0


# ---------------------------------------------------------------------------------------------------
# Provable equality of sizes


_active = []  # the ShapeInference running, so that x.shape[i] compares by x's inferred size


def _normal(s):
    """``s`` with what it provably is put in its place: 1 on a broadcastable axis, the inferred size
    of an axis whose variable's shape is known."""
    for _ in range(64):
        owner = s.owner
        if owner is None:
            return s
        if type(owner.op) is ops.Cast and owner.inputs[0].dtype in ("int64", "int32", "int16", "int8",
                                                                   "uint8", "uint16", "uint32"):
            s = owner.inputs[0]
            continue
        if type(owner.op) is not ops.ShapeI:
            return s
        x, i = owner.inputs[0], owner.op.i
        if x.broadcastable[i]:
            return const(1)
        inferred = _active[-1].inferred_sizes(x) if _active else None
        if inferred is None or inferred[i] is s:
            return s
        s = inferred[i]
    return s


_COMMUTATIVE = ("Add", "Mul", "Maximum", "Minimum", "Eq", "Neq")


def same_size(a, b, depth=0):
    """Whether the sizes (or integer expressions) ``a`` and ``b`` are provably equal: the same
    expression (the same op on provably equal inputs), or equal constants."""
    a, b = size(a), size(b)
    if a is b:
        return True
    a, b = _normal(a), _normal(b)
    if a is b:
        return True
    if isinstance(a, Constant) or isinstance(b, Constant):
        return (isinstance(a, Constant) and isinstance(b, Constant) and a.data.shape == b.data.shape
                and bool(np.all(a.data == b.data)))
    if a.owner is None or b.owner is None or depth > 32:
        return False
    na, nb = a.owner, b.owner
    if na.op != nb.op or a.index != b.index or len(na.inputs) != len(nb.inputs):
        return False
    if builtins.all(_same_var(x, y, depth) for x, y in zip(na.inputs, nb.inputs)):
        return True
    return type(na.op).__name__ in _COMMUTATIVE and len(na.inputs) == 2 and \
        _same_var(na.inputs[0], nb.inputs[1], depth) and _same_var(na.inputs[1], nb.inputs[0], depth)


def _same_var(x, y, depth):
    if x is y:
        return True
    if x.ndim == 0 and y.ndim == 0 and x.dtype == y.dtype:
        return same_size(x, y, depth + 1) if x.dtype in ops.DISCRETE_DTYPES else _same_expression(x, y, depth)
    return x.type == y.type and _same_expression(x, y, depth)


def _same_expression(x, y, depth):
    if isinstance(x, Constant) or isinstance(y, Constant):
        return isinstance(x, Constant) and isinstance(y, Constant) and x.signature() == y.signature()
    if x.owner is None or y.owner is None or depth > 32 or x.owner.op != y.owner.op or x.index != y.index:
        return False
    return builtins.all(_same_var(a, b, depth + 1) for a, b in zip(x.owner.inputs, y.owner.inputs))


def same_shape(a, b):
    return len(a) == len(b) and builtins.all(same_size(x, y) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------------
# Checks: the op on zero-element stand-ins


class Checked(tuple):
    """Sizes that hold only where ``checks`` (ShapeCheck zeros) compute without error."""

    checks = ()


class ShapeCheck(TensorVariable):
    """The 0 that a check adds to a size: the int64 sum of the (empty) result of an op applied to
    stand-ins. Computing it runs the op, which raises where the real inputs would not fit."""


def checked(sizes, check, node):
    """``sizes``, valid only where ``check`` (a zero-element result of node's op on stand-ins)
    computes: errors then name the line that built node's output."""
    where = node.outputs[0].trace
    check.trace = where
    zero = ShapeCheck(TensorType("int64", ()))
    Apply(ops.Sum(tuple(range(check.ndim)), False, "int64"), [check], [zero])
    zero.trace = where
    result = Checked(sizes)
    result.checks = tuple(getattr(sizes, "checks", ())) + (zero,)
    return result


def carry(sizes, *sources):
    """``sizes`` with the checks of ``sources`` (sizes that ``checked`` gave) attached too."""
    extra = [c for source in sources for c in getattr(source, "checks", ())]
    if not extra:
        return sizes
    result = Checked(sizes)
    result.checks = _unique(list(getattr(sizes, "checks", ())) + extra)
    return result


def stand_in(var, sizes, first=False):
    """A zero-element array of var's dtype and broadcastable pattern with the axis lengths ``sizes``,
    and one more axis, of length 0, at the end (ops that align on the right keep aligning), or at the
    start (``first``: for ops that read the last axes, as a pooling does)."""
    zero = Constant(TensorType(var.dtype, ()), 0)
    if first:
        return ops.patternbroadcast(ops.alloc(zero, 0, *sizes), (False,) + tuple(var.broadcastable))
    return ops.patternbroadcast(ops.alloc(zero, *sizes, 0), tuple(var.broadcastable) + (False,))


def empty(dtype, *sizes):
    """An array of ``dtype`` and the axis lengths ``sizes`` (one of them 0: it holds nothing)."""
    return ops.alloc(Constant(TensorType(dtype, ()), 0), *sizes)


def vector_entries(vector, count):
    """The ``count`` entries of an int vector (a shape argument) as int64 scalars: its constants, the
    scalars it was stacked from, the sizes it reads, or else its elements."""
    if isinstance(vector, Constant):
        return [const(v) for v in vector.data]
    owner = vector.owner
    if owner is not None and isinstance(owner.op, ops.MakeVector):
        return [size(v) for v in owner.inputs]
    if owner is not None and isinstance(owner.op, ops.Shape):
        return [ops.shape_i(owner.inputs[0], k) for k in range(count)]
    return [size(vector[k]) for k in range(count)]


# ---------------------------------------------------------------------------------------------------
# Running the rules over a graph


class ShapeInference:
    """The shapes of a graph's variables, inferred on demand from the ops' rules and kept.

    ``known`` gives the shapes of some variables (an inner graph's inputs). ``computed(var)`` says
    whether every call computes var anyway: its shape is then read from it (that costs nothing, and
    computing it makes its checks). Any other variable that no rule covers is a *leaf* too, whose
    shape is read from it, which computes it: that is its check."""

    def __init__(self, known=None, computed=None):
        self.known = dict(known or {})
        self.computed = computed or (lambda var: False)
        self.sizes = {}  # the expressions a shape read becomes
        self.proof = {}  # the sizes the rules state (for comparisons), where they state them
        self.checks = {}

    def shape(self, var):
        """The sizes of ``var``."""
        if var not in self.sizes:
            _active.append(self)
            try:
                for node in toposort([var], stop=list(self.sizes)):
                    self._visit(node)
            finally:
                _active.pop()
            if var not in self.sizes:
                self._leaf(var)
        return self.sizes[var]

    def inferred_sizes(self, var):
        """The sizes of ``var`` that its op's rule states, else None."""
        if var not in self.sizes and var.owner is not None:
            self.shape(var)
        return self.proof.get(var)

    def all_checks(self, var):
        """The checks that ``shape(var)`` depends on (its op's and those of what it is computed from)."""
        self.shape(var)
        return self.checks.get(var, ())

    def same_size(self, a, b):
        """``same_size`` with this inference's knowledge: x.shape[i] compares as x's inferred size."""
        _active.append(self)
        try:
            return same_size(a, b)
        finally:
            _active.pop()

    def _leaf(self, var):
        self.checks[var] = ()
        if var in self.known:
            self.sizes[var] = tuple(self.known[var])
        elif isinstance(var, Constant):
            self.sizes[var] = tuple(const(n) for n in var.data.shape)
        else:
            self.sizes[var] = tuple(const(1) if b else ops.shape_i(var, k) for k, b in enumerate(var.broadcastable))
            if var.owner is not None and not self.computed(var):
                self.checks[var] = (var,)  # reading its shape must compute it

    def _visit(self, node):
        for var in node.inputs:
            if var not in self.sizes:
                self._leaf(var)
        rule = getattr(node.op, "infer_shape", None)
        # inputs that only sometimes run (an ifelse's branches): their checks cannot be made always
        lazy = getattr(node.op, "lazy_inputs", lambda node: ())(node)
        if builtins.any(o in self.known for o in node.outputs) or \
                builtins.any(self.checks[node.inputs[p]] for p in lazy):
            rule = None
        try:
            result = rule(node, [self.sizes[i] for i in node.inputs]) if rule is not None else None
        except NotImplementedError:
            result = None
        inherited = [c for i in node.inputs for c in self.checks[i]]
        for k, out in enumerate(node.outputs):
            entry = result[k] if result is not None else None
            if entry is not None:
                sizes = tuple(size(s) for s in entry)
                if len(sizes) != out.ndim:
                    raise ValueError(f"{node.op}.infer_shape gave {len(sizes)} sizes for output {k}, which has "
                                     f"{out.ndim} axes")
                self.proof[out] = sizes
            if entry is None or self.computed(out):
                self._leaf(out)
            else:
                self.sizes[out] = sizes
                self.checks[out] = _unique(inherited + list(getattr(entry, "checks", ())))


_sessions = []  # the shared inference of the rewrite running (see ``session``)


class session:
    """``with session():`` -- within it, ``shared()`` is one ShapeInference (a graph's variables do
    not change once built, so what is inferred for one rewrite stays true for the next)."""

    def __enter__(self):
        _sessions.append(_sessions[-1] if _sessions else ShapeInference())

    def __exit__(self, *exc):
        _sessions.pop()


def shared():
    """The running session's ShapeInference, or a new one outside sessions."""
    return _sessions[-1] if _sessions else ShapeInference()


def _unique(checks):
    seen, result = set(), []
    for c in checks:
        if id(c) not in seen:
            seen.add(id(c))
            result.append(c)
    return tuple(result)


def pending(sizes, checks):
    """The ``checks`` that computing ``sizes`` does not already make: ShapeCheck zeros, and variables
    (whose op states no shape) that the sizes do not read."""
    read = {id(v) for v in ancestors(list(sizes))}
    return [c for c in checks if isinstance(c, ShapeCheck) or id(c) not in read]


def tie(sizes, checks):
    """``sizes`` computed only after ``checks`` (see ``pending``): each size plus their sum, 0."""
    zeros = [c if isinstance(c, ShapeCheck) else _computed(c) for c in pending(sizes, checks)]
    if not zeros:
        return list(sizes)
    zero = functools.reduce(ops.add, zeros)
    return [ops.add(size(s), zero) for s in sizes]


def _computed(var):
    """A 0 that needs ``var`` computed: the int64 sum of none of its elements."""
    nothing = ops.dimshuffle(var, ("x",) + tuple(range(var.ndim)))[:0]
    return ops.Sum(tuple(range(nothing.ndim)), False, "int64")(nothing)


def inner_shapes(inputs, outputs, known):
    """The shapes of every variable of an inner graph (a loop's step, a branch) from its inputs' sizes
    ``known``, as a ShapeInference, when every node's rule states them with no check (so from the
    inputs' sizes alone); else None (an inner node that may fail must run to fail)."""
    inference = ShapeInference(dict(zip(inputs, known)))
    for var in outputs:
        inference.shape(var)
    for node in toposort(outputs, stop=inputs):
        for out in node.outputs:
            inference.shape(out)
            if out not in inference.proof or inference.checks.get(out):
                return None
    return inference


# ---------------------------------------------------------------------------------------------------
# Shared rules


def broadcast(node, shapes):
    """The shape of an elementwise result: on each axis the size of the inputs that are not
    broadcastable there (1 if all are), checked by the op on stand-ins unless they provably agree."""
    sizes, agree = [], True
    for axis in range(node.outputs[0].ndim):
        fixed = [s[axis] for s, i in zip(shapes, node.inputs) if not i.broadcastable[axis]]
        sizes.append(fixed[0] if fixed else const(1))
        agree = agree and builtins.all(same_size(fixed[0], f) for f in fixed[1:])
    if agree:
        return tuple(sizes)
    check = node.op.make_node(*[stand_in(i, s) for i, s in zip(node.inputs, shapes)]).outputs[0]
    return checked(sizes, check, node)


def slice_length(n, start, stop, step):
    """The length of x[start:stop:step] along an axis of length ``n`` (Python's slice rules); parts
    are None, ints or int scalar variables."""
    if start is None and stop is None and step in (None, 1):
        return n
    if step is None or isinstance(step, (int, np.integer)):
        return _slice_length(n, start, stop, 1 if step is None else int(step))
    step = size(step)
    ahead = _slice_length(n, start, stop, maximum(step, 1), forward=True)
    back = _slice_length(n, start, stop, maximum(sub(0, step), 1), forward=False)
    return switch(ops.gt(step, 0), ahead, back)


def _bound(n, value, default, low, high):
    """A slice bound as Python's slice.indices clamps it into [low, high] (negatives count from n)."""
    if value is None:
        return default
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if value >= 0:
            return minimum(value, high)
        return maximum(add(n, value), low)
    value = size(value)
    wrapped = switch(ops.lt(value, 0), add(value, n), value)
    return minimum(maximum(wrapped, low), high)


def _slice_length(n, start, stop, step, forward=None):
    """Length for a step of known sign: ``step`` is an int, or (with ``forward``) a positive
    variable standing for |step|."""
    forward = step > 0 if forward is None else forward
    stride = step if isinstance(step, TensorVariable) else abs(step)
    if forward:
        lo = _bound(n, start, const(0), 0, n)
        hi = _bound(n, stop, n, 0, n)
        span = sub(hi, lo)
    else:
        last = sub(n, 1)
        lo = _bound(n, stop, const(-1), -1, last)
        hi = _bound(n, start, last, -1, last)
        span = sub(hi, lo)
    if value_of(stride) == 1:
        return maximum(span, 0)
    return maximum(floordiv(add(span, sub(stride, 1)), stride), 0)
