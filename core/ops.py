"""The op vocabulary: the one table of ops. Each op's gradient sits next to its definition.

Ops describe operations (types, broadcasting, gradients); the numbers are computed by the backends,
each of which keeps one table from op class to implementation.
"""

import builtins
import functools

import numpy as np

from . import shape_inference as si
from .graph import Apply, Constant, Op, TensorVariable, as_tensor_variable
from .types import DISCRETE_DTYPES, TensorType, canonical_dtype, float_of, is_float

_as = as_tensor_variable


def _out(dtype, broadcastable):
    return TensorVariable(TensorType(dtype, broadcastable))


# ---------------------------------------------------------------------------------------------------
# Elementwise ops


def _numpy_rule(ufunc):
    """Output dtype as NumPy's ufunc would choose it (NumPy's promotion rules, exactly)."""

    def rule(op, dtypes):
        try:
            return ufunc.resolve_dtypes(tuple(np.dtype(d) for d in dtypes) + (None,))[-1].name
        except TypeError:
            raise TypeError(f"{op} is not defined for dtypes {', '.join(dtypes)} (as in NumPy)") from None

    return rule


def _float_rule(op, dtypes):
    return float_of(np.result_type(*dtypes).name)


def _bool_rule(op, dtypes):
    return "bool"


def _last_rule(op, dtypes):
    return dtypes[-1]


def _unweaken(inputs):
    """Bare Python numbers take the dtype of the tensors they meet, when their value fits
    (``x_float32 * 2.0`` is float32, ``x_int8 + 1`` is int8); a float never becomes an integer."""
    weak = [isinstance(i, Constant) and i.weak for i in inputs]
    if builtins.all(weak) or not builtins.any(weak):
        return inputs
    strong = np.result_type(*[i.dtype for i, w in zip(inputs, weak) if not w])
    result = []
    for var, is_weak in zip(inputs, weak):
        if is_weak and _fits(var.data, strong):
            var = Constant(TensorType(strong, var.broadcastable), getattr(var, "python_value", var.data), weak=True)
        result.append(var)
    return result


def _fits(value, dtype):
    if value.dtype.kind == "f":
        return dtype.kind == "f"
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return bool(info.min <= value <= info.max)
    return dtype.kind != "b" or value.dtype.kind == "b"


def _pad_left(var, ndim):
    """``var`` with broadcastable axes added in front, up to ``ndim`` axes."""
    missing = ndim - var.ndim
    if missing == 0:
        return var
    if isinstance(var, Constant):
        return Constant(TensorType(var.dtype, (True,) * missing + var.broadcastable),
                        var.data.reshape((1,) * missing + var.data.shape), weak=var.weak)
    return dimshuffle(var, ("x",) * missing + tuple(range(var.ndim)))


class Elemwise(Op):
    """Base of elementwise ops: inputs broadcast against each other by their broadcastable patterns
    (Theano's rule: an axis of size 1 stretches only where its type says it is broadcastable)."""

    abstract = True  # a base class, not an op of the vocabulary
    nin = 1
    value_inputs_start = 0
    is_comparison = False
    # a transcendental function: a large loop of it is worth threads (memory-bound arithmetic is not)
    costly = False
    dtype_rule = staticmethod(_float_rule)

    def compute_dtype(self, in_dtypes, out_dtype):
        """The dtype the op computes in: its value inputs (``inputs[value_inputs_start:]``) are
        converted to it first, as NumPy's ufunc loops do; the result is then converted to out_dtype.
        Every backend follows this, so all of them round alike."""
        if self.is_comparison:
            return np.result_type(*in_dtypes).name
        return out_dtype

    def may_fail(self, in_dtypes):
        """Whether an element can be an error (an integer to a negative power): such a body is not
        fused into a reduction, whose loop has no place to report it."""
        return False

    def make_node(self, *inputs):
        if len(inputs) != self.nin:
            raise TypeError(f"{self} takes {self.nin} input(s), got {len(inputs)}")
        inputs = [_as(i) for i in inputs]
        # only the value inputs decide what dtype a bare Python number takes (not switch's condition)
        inputs = inputs[: self.value_inputs_start] + _unweaken(inputs[self.value_inputs_start:])
        ndim = builtins.max(i.ndim for i in inputs)
        inputs = [_pad_left(i, ndim) for i in inputs]
        broadcastable = tuple(builtins.all(axis) for axis in zip(*[i.broadcastable for i in inputs]))
        dtype = self.dtype_rule(self, [i.dtype for i in inputs])
        return Apply(self, inputs, [_out(dtype, broadcastable)])

    def grad(self, inputs, outputs, output_grads):
        grads = self.grad_rule(*inputs, outputs[0], output_grads[0])
        return [None if g is None else sum_to_pattern(g, x) for g, x in zip(grads, inputs)]

    def grad_rule(self, *args):
        raise TypeError(f"{self} has no gradient")

    def infer_shape(self, node, shapes):
        return [si.broadcast(node, shapes)] * len(node.outputs)


def broadcast_shapes(op, shapes, patterns):
    """The shape of an elementwise result from its inputs' ``shapes`` and broadcastable ``patterns``.
    Raises ValueError naming ``op`` when an axis disagrees; backends call this before computing."""
    result = []
    for axis, sizes in enumerate(zip(*shapes)):
        fixed = {s for s, pattern in zip(sizes, patterns) if not pattern[axis]}
        if len(fixed) > 1:
            shown = ", ".join(str(tuple(s)) for s in shapes)
            raise ValueError(
                f"{op}: input shapes {shown} disagree on axis {axis} (sizes {sorted(fixed)}); a size-1 axis "
                "stretches only where its type is broadcastable (use a row/col, dimshuffle('x', ...) "
                "or shared(..., broadcastable=...))"
            )
        result.append(fixed.pop() if fixed else 1)
    return tuple(result)


def sum_to_pattern(g, x):
    """Sum a gradient over the axes ``x`` was broadcast along, so it has x's broadcastable pattern."""
    return sum_to_broadcastable(g, x.broadcastable)


def sum_to_broadcastable(g, pattern):
    """``g`` summed (keeping dims) over the axes that are broadcastable in ``pattern`` but not in g."""
    axes = tuple(a for a, (gb, b) in enumerate(zip(g.broadcastable, pattern)) if b and not gb)
    return sum(g, axis=axes, keepdims=True) if axes else g


def _elemwise(name, nin, dtype_rule, grad_rule=None, doc="", comparison=False, value_inputs_start=0,
              costly=False):
    """Define an elementwise op class in one line: its name, arity, dtype rule and gradient rule.
    The gradient rule gets the inputs, the output and the output's gradient, and returns one
    gradient per input (None: none flows). ``costly``: see Elemwise.costly."""
    attrs = {"nin": nin, "dtype_rule": staticmethod(dtype_rule), "__doc__": doc, "costly": costly,
             "is_comparison": comparison, "value_inputs_start": value_inputs_start, "__module__": __name__}
    if grad_rule is not None:
        attrs["grad_rule"] = staticmethod(grad_rule)
    return type(name, (Elemwise,), attrs)


def _no_grad(nin):
    return lambda *args: [None] * nin


_float, _bool, _last = _float_rule, _bool_rule, _last_rule

# name           class                                  n  dtype rule                 gradient
Add = _elemwise("Add", 2, _numpy_rule(np.add), lambda x, y, z, g: [g, g], "x + y")
Sub = _elemwise("Sub", 2, _numpy_rule(np.subtract), lambda x, y, z, g: [g, -g], "x - y")
Mul = _elemwise("Mul", 2, _numpy_rule(np.multiply), lambda x, y, z, g: [g * y, g * x], "x * y")
TrueDiv = _elemwise("TrueDiv", 2, _numpy_rule(np.true_divide),
                    lambda x, y, z, g: [g / y, -g * z / y], "x / y")
IntDiv = _elemwise("IntDiv", 2, _numpy_rule(np.floor_divide),
                   lambda x, y, z, g: [zeros_like(x), zeros_like(y)], "x // y, rounding down (NumPy's floor_divide)")
Mod = _elemwise("Mod", 2, _numpy_rule(np.remainder),
                lambda x, y, z, g: [g, -g * int_div(x, y)], "x % y with the sign of y (NumPy's remainder)")
Pow = _elemwise("Pow", 2, _numpy_rule(np.power),
                lambda x, y, z, g: [g * y * x ** (y - 1), g * log(x) * z], "x ** y", costly=True)
Maximum = _elemwise("Maximum", 2, _numpy_rule(np.maximum),
                    lambda x, y, z, g: [g * ge(x, y), g * lt(x, y)], "larger of x and y (NaN wins)")
Minimum = _elemwise("Minimum", 2, _numpy_rule(np.minimum),
                    lambda x, y, z, g: [g * le(x, y), g * gt(x, y)], "smaller of x and y (NaN wins)")
Neg = _elemwise("Neg", 1, _numpy_rule(np.negative), lambda x, z, g: [-g], "-x")
Abs = _elemwise("Abs", 1, _numpy_rule(np.absolute), lambda x, z, g: [g * sgn(x)], "|x|")
Sgn = _elemwise("Sgn", 1, _numpy_rule(np.sign), lambda x, z, g: [zeros_like(x)], "sign of x: -1, 0 or 1")
Exp = _elemwise("Exp", 1, _float, lambda x, z, g: [g * z], "e ** x", costly=True)
Log = _elemwise("Log", 1, _float, lambda x, z, g: [g / x], "natural logarithm", costly=True)
Sqrt = _elemwise("Sqrt", 1, _float, lambda x, z, g: [g * 0.5 / z], "square root", costly=True)
Tanh = _elemwise("Tanh", 1, _float, lambda x, z, g: [g * (1 - z * z)], "hyperbolic tangent", costly=True)
Sigmoid = _elemwise("Sigmoid", 1, _float, lambda x, z, g: [g * z * (1 - z)], "1 / (1 + exp(-x))", costly=True)
Eq = _elemwise("Eq", 2, _bool, _no_grad(2), "x == y", comparison=True)
Neq = _elemwise("Neq", 2, _bool, _no_grad(2), "x != y", comparison=True)
Lt = _elemwise("Lt", 2, _bool, _no_grad(2), "x < y", comparison=True)
Gt = _elemwise("Gt", 2, _bool, _no_grad(2), "x > y", comparison=True)
Le = _elemwise("Le", 2, _bool, _no_grad(2), "x <= y", comparison=True)
Ge = _elemwise("Ge", 2, _bool, _no_grad(2), "x >= y", comparison=True)
Switch = _elemwise("Switch", 3, lambda op, d: np.result_type(d[1], d[2]).name,
                   lambda c, a, b, z, g: [None, switch(c, g, 0), switch(c, 0, g)],
                   "a where cond is nonzero, else b", value_inputs_start=1)
Second = _elemwise("Second", 2, _last, lambda x, y, z, g: [None, g],
                   "y broadcast to the shape of x (Theano's fill)")
Expm1 = _elemwise("Expm1", 1, _float, lambda x, z, g: [g * (z + 1)], "exp(x) - 1, accurate near 0", costly=True)
Log1p = _elemwise("Log1p", 1, _float, lambda x, z, g: [g / (1 + x)], "log(1 + x), accurate near 0", costly=True)
Log2 = _elemwise("Log2", 1, _float, lambda x, z, g: [g / (x * np.log(2.0))], "base-2 logarithm", costly=True)
Log10 = _elemwise("Log10", 1, _float, lambda x, z, g: [g / (x * np.log(10.0))], "base-10 logarithm", costly=True)
Sqr = _elemwise("Sqr", 1, _numpy_rule(np.square), lambda x, z, g: [g * 2 * x], "x * x")
Sin = _elemwise("Sin", 1, _float, lambda x, z, g: [g * cos(x)], "sine", costly=True)
Cos = _elemwise("Cos", 1, _float, lambda x, z, g: [-g * sin(x)], "cosine", costly=True)
Tan = _elemwise("Tan", 1, _float, lambda x, z, g: [g * (1 + z * z)], "tangent", costly=True)
Arcsin = _elemwise("Arcsin", 1, _float, lambda x, z, g: [g / sqrt(1 - x * x)], "inverse sine", costly=True)
Arccos = _elemwise("Arccos", 1, _float, lambda x, z, g: [-g / sqrt(1 - x * x)], "inverse cosine", costly=True)
Arctan = _elemwise("Arctan", 1, _float, lambda x, z, g: [g / (1 + x * x)], "inverse tangent", costly=True)
Sinh = _elemwise("Sinh", 1, _float, lambda x, z, g: [g * cosh(x)], "hyperbolic sine", costly=True)
Cosh = _elemwise("Cosh", 1, _float, lambda x, z, g: [g * sinh(x)], "hyperbolic cosine", costly=True)
Arctanh = _elemwise("Arctanh", 1, _float, lambda x, z, g: [g / (1 - x * x)], "inverse hyperbolic tangent", costly=True)
Erf = _elemwise("Erf", 1, _float, lambda x, z, g: [g * (2 / np.sqrt(np.pi)) * exp(-x * x)], "error function", costly=True)
Erfc = _elemwise("Erfc", 1, _float, lambda x, z, g: [g * (-2 / np.sqrt(np.pi)) * exp(-x * x)],
                 "complementary error function, 1 - erf(x), accurate for large x", costly=True)
Floor = _elemwise("Floor", 1, _float, lambda x, z, g: [zeros_like(x)], "largest integer <= x (as a float)")
Ceil = _elemwise("Ceil", 1, _float, lambda x, z, g: [zeros_like(x)], "smallest integer >= x (as a float)")
RoundHalfToEven = _elemwise("RoundHalfToEven", 1, _float, lambda x, z, g: [zeros_like(x)],
                            "nearest integer, ties to even (NumPy's round)")
RoundHalfAwayFromZero = _elemwise("RoundHalfAwayFromZero", 1, _float, lambda x, z, g: [zeros_like(x)],
                                  "nearest integer, ties away from zero (Theano's default round)")
Clip = _elemwise("Clip", 3, lambda op, d: np.result_type(*d).name,
                 lambda x, lo, hi, z, g: [g * (ge(x, lo) & le(x, hi)), g * lt(x, lo), g * gt(x, hi)],
                 "x limited to [lo, hi]")
BitwiseAnd = _elemwise("BitwiseAnd", 2, _numpy_rule(np.bitwise_and), _no_grad(2), "x & y (logical for bools)")
BitwiseOr = _elemwise("BitwiseOr", 2, _numpy_rule(np.bitwise_or), _no_grad(2), "x | y (logical for bools)")
BitwiseXor = _elemwise("BitwiseXor", 2, _numpy_rule(np.bitwise_xor), _no_grad(2), "x ^ y (logical for bools)")
Invert = _elemwise("Invert", 1, _numpy_rule(np.invert), _no_grad(1), "~x (logical not for bools)")
IsNan = _elemwise("IsNan", 1, _bool, _no_grad(1), "x is NaN")
IsInf = _elemwise("IsInf", 1, _bool, _no_grad(1), "x is +inf or -inf")
XlogX = _elemwise("XlogX", 1, _float, lambda x, z, g: [g * (1 + log(x))],
                  "x * log(x), 0 where x is 0 (Theano's xlogx)", costly=True)
XlogY0 = _elemwise("XlogY0", 2, _float, lambda x, y, z, g: [g * log(y), g * x / y],
                   "x * log(y), 0 where x is 0 (Theano's xlogy0)", costly=True)


def _in_input_dtype(self, in_dtypes, out_dtype):
    return in_dtypes[0]


def _fails_on_integers(self, in_dtypes):
    return not builtins.any(is_float(d) for d in in_dtypes)


IsNan.compute_dtype = IsInf.compute_dtype = _in_input_dtype  # a test of the value itself
Pow.may_fail = _fails_on_integers  # integers to negative integer powers


class Cast(Elemwise):
    """x converted to ``dtype`` (NumPy's astype: floats to integers truncate toward zero)."""

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = canonical_dtype(dtype)

    def dtype_rule(self, op, dtypes):
        return self.dtype

    compute_dtype = _in_input_dtype  # the conversion is the op

    def grad_rule(self, x, z, g):
        return [cast(g, x.dtype) if is_float(x.dtype) else None]


add, sub, mul, true_div, int_div, mod, pow = Add(), Sub(), Mul(), TrueDiv(), IntDiv(), Mod(), Pow()
maximum, minimum, neg, abs_, sgn = Maximum(), Minimum(), Neg(), Abs(), Sgn()
exp, log, sqrt, tanh, sigmoid = Exp(), Log(), Sqrt(), Tanh(), Sigmoid()
eq, neq, lt, gt, le, ge = Eq(), Neq(), Lt(), Gt(), Le(), Ge()
switch, second = Switch(), Second()
expm1, log1p, log2, log10, sqr = Expm1(), Log1p(), Log2(), Log10(), Sqr()
sin, cos, tan, arcsin, arccos, arctan = Sin(), Cos(), Tan(), Arcsin(), Arccos(), Arctan()
sinh, cosh, arctanh, erf, erfc = Sinh(), Cosh(), Arctanh(), Erf(), Erfc()
floor, ceil, clip = Floor(), Ceil(), Clip()
bitwise_and, bitwise_or, bitwise_xor, invert = BitwiseAnd(), BitwiseOr(), BitwiseXor(), Invert()
and_, or_, xor, invert = bitwise_and, bitwise_or, bitwise_xor, invert
isnan, isinf = IsNan(), IsInf()
xlogx, xlogy0 = XlogX(), XlogY0()
where = switch
fill = second


class Composite(Elemwise):
    """Several elementwise ops fused into one (made by the fusion rewrite, not by users).

    ``fgraph`` is the scalar body: a graph of elementwise ops whose inputs are 0-d variables, one per
    input of the composite, with one or more outputs. The inputs broadcast as in every elementwise op.
    Backends emit one loop for it; the reference evaluates the body op by op on whole arrays.
    """

    __props__ = ("signature",)
    nin = None

    def __init__(self, fgraph):
        for node in fgraph.apply_nodes:
            if not isinstance(node.op, Elemwise) or isinstance(node.op, Composite):
                raise TypeError(f"a Composite body holds elementwise ops only, not {node.op}")
        self.fgraph = fgraph
        self.nin = len(fgraph.inputs)
        self.signature = body_signature(fgraph)

    def __str__(self):
        return f"Composite{{{body_expression(self.fgraph)}}}"

    @property
    def costly(self):
        return builtins.any(node.op.costly for node in self.fgraph.apply_nodes)

    def may_fail(self, in_dtypes):
        return builtins.any(node.op.may_fail([v.dtype for v in node.inputs]) for node in self.fgraph.apply_nodes)

    def make_node(self, *inputs):
        if len(inputs) != self.nin:
            raise TypeError(f"{self} takes {self.nin} input(s), got {len(inputs)}")
        inputs = [_as(i) for i in inputs]
        for outer, inner in zip(inputs, self.fgraph.inputs):
            if outer.dtype != inner.dtype:
                raise TypeError(f"Composite: input of dtype {outer.dtype} where the body expects {inner.dtype}")
        ndim = builtins.max(i.ndim for i in inputs)
        inputs = [_pad_left(i, ndim) for i in inputs]
        broadcastable = tuple(builtins.all(axis) for axis in zip(*[i.broadcastable for i in inputs]))
        return Apply(self, inputs, [_out(o.dtype, broadcastable) for o in self.fgraph.outputs])

    def expand(self, inputs):
        """The body rebuilt on ``inputs``: ordinary elementwise nodes computing the same outputs."""
        from .graph import clone_replace

        return clone_replace(self.fgraph.outputs, dict(zip(self.fgraph.inputs, inputs)))

    def grad(self, inputs, outputs, output_grads):
        return grad_of_expansion(self.expand(inputs), inputs, output_grads)


def grad_of_expansion(expanded, inputs, output_grads):
    """The gradients of an op made of other ops (Composite, FusedReduce) with respect to ``inputs``:
    those of ``expanded``, its outputs rebuilt from the ops it stands for."""
    from .grad import grad

    known = {e: g for e, g in zip(expanded, output_grads) if g is not None}
    wrt = [i for i in inputs if not isinstance(i, Constant)]
    grads = dict(zip(wrt, grad(None, wrt, known_grads=known, disconnected_inputs="ignore",
                               return_disconnected="None")))
    return [grads.get(i) for i in inputs]


_INFIX = {"Add": "+", "Sub": "-", "Mul": "*", "TrueDiv": "/", "IntDiv": "//", "Mod": "%", "Pow": "**",
          "Eq": "==", "Neq": "!=", "Lt": "<", "Gt": ">", "Le": "<=", "Ge": ">=", "BitwiseAnd": "&",
          "BitwiseOr": "|", "BitwiseXor": "^"}


def body_expression(fgraph):
    """A composite body as readable expressions, one per output: ``exp(-(i0 * i0)) * sin(i1)``."""

    def show(var):
        if var in names:
            return names[var]
        if isinstance(var, Constant):
            return repr(var.data.item())
        op, args = var.owner.op, [show(i) for i in var.owner.inputs]
        kind = type(op).__name__
        if kind in _INFIX:
            return f"({args[0]} {_INFIX[kind]} {args[1]})"
        if kind == "Neg":
            return f"-{args[0]}"
        if kind == "Cast":
            return f"{op.dtype}({args[0]})"
        return f"{kind.lower()}({', '.join(args)})"

    names = {v: f"i{k}" for k, v in enumerate(fgraph.inputs)}
    texts = [show(o) for o in fgraph.outputs]
    return ", ".join(t[1:-1] if t.startswith("(") and t.endswith(")") else t for t in texts)


def body_signature(fgraph):
    """A canonical text for a composite body: equal bodies give equal texts (so composites merge)."""
    names = {v: f"i{k}:{v.dtype}" for k, v in enumerate(fgraph.inputs)}
    steps = []
    for node in fgraph.apply_nodes:
        args = [names[v] if v in names else f"{v.data.item()!r}:{v.dtype}" for v in node.inputs]
        for out in node.outputs:
            names[out] = f"v{len(steps)}"
        steps.append(f"{names[node.outputs[0]]}={node.op}({','.join(args)})")
    outs = ",".join(names[o] if o in names else f"{o.data.item()!r}:{o.dtype}" for o in fgraph.outputs)
    return ";".join(steps) + f"->{outs}"


def round(x, mode="half_away_from_zero"):
    """``x`` rounded to the nearest integer (as a float): ties away from zero by default, as in Theano,
    or ``mode="half_to_even"`` as in NumPy."""
    ops_by_mode = {"half_away_from_zero": RoundHalfAwayFromZero(), "half_to_even": RoundHalfToEven()}
    if mode not in ops_by_mode:
        raise ValueError(f"round: mode must be one of {sorted(ops_by_mode)}, got {mode!r}")
    return ops_by_mode[mode](x)


def cast(x, dtype):
    """``x`` as ``dtype`` (no node when it already has it)."""
    x = _as(x)
    dtype = canonical_dtype(dtype)
    return x if x.dtype == dtype else Cast(dtype)(x)


def zeros_like(x, dtype=None):
    x = _as(x)
    return fill(x, Constant(TensorType(dtype or x.dtype, ()), 0))


def ones_like(x, dtype=None):
    x = _as(x)
    return fill(x, Constant(TensorType(dtype or x.dtype, ()), 1))


# ---------------------------------------------------------------------------------------------------
# Reductions


def normalize_axes(x, axis, op_name):
    """``axis`` (None, int or sequence) as a sorted tuple of non-negative axes of ``x``."""
    if axis is None:
        return tuple(range(x.ndim))
    if not isinstance(axis, (int, np.integer, list, tuple)):
        raise TypeError(f"{op_name}: axis must be an int, a tuple of ints or None, got {axis!r}")
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    result = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op_name}: axis must be an int, a tuple of ints or None, got {axis!r}")
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"{op_name}: axis {a} is out of range for a {x.ndim}-d input ({x.describe()})")
        result.append(int(a) % x.ndim if x.ndim else 0)
    if len(set(result)) != len(result):
        raise ValueError(f"{op_name}: repeated axis in {axis!r}")
    return tuple(sorted(result))


class Reduce(Op):
    """Base of reductions over ``axis`` (a sorted tuple), keeping reduced axes as size 1 if ``keepdims``.

    Its traits, which every backend follows: ``combine`` names the step that folds an element into
    the accumulator (``add``, ``multiply``, ``maximum``, ``minimum``, ``and``, ``or``; maximum and
    minimum propagate NaN), ``identity(dtype)`` the value the accumulator starts from,
    ``accumulator_dtype`` the dtype it is kept in, ``has_identity`` whether an empty reduction has a
    value (max and min of nothing are errors), ``divides`` whether the result is divided by the count."""

    abstract = True

    __props__ = ("axis", "keepdims")
    combine = "add"
    has_identity = True
    divides = False

    def identity(self, dtype):
        return np.zeros((), dtype)[()]

    def accumulator_dtype(self, in_dtype, out_dtype):
        return out_dtype

    def __init__(self, axis, keepdims=False):
        self.axis = tuple(axis)
        self.keepdims = bool(keepdims)

    def output_dtype(self, dtype):
        return dtype

    def make_node(self, x):
        x = _as(x)
        if builtins.any(a >= x.ndim for a in self.axis):
            raise ValueError(f"{self}: axis out of range for {x.describe()}")
        if self.keepdims:
            bcast = tuple(b or a in self.axis for a, b in enumerate(x.broadcastable))
        else:
            bcast = tuple(b for a, b in enumerate(x.broadcastable) if a not in self.axis)
        return Apply(self, [x], [_out(self.output_dtype(x.dtype), bcast)])

    def infer_shape(self, node, shapes):
        (x,), (s,) = node.inputs, shapes
        if self.keepdims:
            sizes = tuple(si.const(1) if a in self.axis else n for a, n in enumerate(s))
        else:
            sizes = tuple(n for a, n in enumerate(s) if a not in self.axis)
        if self.has_identity or builtins.all(si.positive(s[a]) for a in self.axis):
            return [sizes]
        # the max of nothing is an error: the op on a stand-in fails where it would
        return [si.checked(sizes, self.make_node(si.stand_in(x, s)).outputs[0], node)]

    def expand(self, g, ndim):
        """``g`` (shaped like the output) with the reduced axes put back as broadcastable axes."""
        if self.keepdims:
            return g
        pattern, kept = [], iter(range(g.ndim))
        for a in range(ndim):
            pattern.append("x" if a in self.axis else next(kept))
        return dimshuffle(g, pattern)


class Sum(Reduce):
    """Sum over axes; integers and booleans accumulate in (u)int64 unless ``dtype`` says otherwise."""

    __props__ = ("axis", "keepdims", "dtype")

    def __init__(self, axis, keepdims=False, dtype=None):
        super().__init__(axis, keepdims)
        self.dtype = None if dtype is None else canonical_dtype(dtype)

    def output_dtype(self, dtype):
        if self.dtype is not None:
            return self.dtype
        if dtype == "bool" or dtype.startswith("int"):
            return "int64"
        return "uint64" if dtype.startswith("uint") else dtype

    def accumulator_dtype(self, in_dtype, out_dtype):
        return "float64" if is_float(out_dtype) else out_dtype  # float sums round once, at the end

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        return [fill(x, self.expand(g, x.ndim))]


class Mean(Sum):
    """Mean over axes; integers and booleans give float64 unless ``dtype`` says otherwise."""

    divides = True

    def output_dtype(self, dtype):
        return self.dtype or (dtype if is_float(dtype) else "float64")

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        return [fill(x, self.expand(g, x.ndim)) / cast(element_count(x, self.axis), g.dtype)]


def _extreme(dtype, largest):
    """The largest (smallest) value of ``dtype``: inf (-inf) for floats, True (False) for bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype.type(np.inf if largest else -np.inf)
    if dtype.kind == "b":
        return dtype.type(largest)
    info = np.iinfo(dtype)
    return dtype.type(info.max if largest else info.min)


class Max(Reduce):
    """Largest element over axes (NaN propagates). Its gradient goes to the first position of the
    maximum, as an arg-max would find it."""

    combine = "maximum"
    has_identity = False

    def identity(self, dtype):
        return _extreme(dtype, largest=False)  # where the accumulation starts

    def accumulator_dtype(self, in_dtype, out_dtype):
        return in_dtype

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        return [self.expand(g, x.ndim) * ExtremumMask(self.axis, minimum=False)(x)]


class Min(Reduce):
    """Smallest element over axes (NaN propagates). Its gradient goes to the first position of the minimum."""

    combine = "minimum"
    has_identity = False

    def identity(self, dtype):
        return _extreme(dtype, largest=True)

    accumulator_dtype = Max.accumulator_dtype

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        return [self.expand(g, x.ndim) * ExtremumMask(self.axis, minimum=True)(x)]


class Prod(Sum):
    """Product over axes; integers and booleans accumulate in (u)int64 unless ``dtype`` says otherwise.
    The gradient is exact with zeros in the input (the product of the other elements)."""

    combine = "multiply"

    def identity(self, dtype):
        return np.ones((), dtype)[()]

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        is_zero = eq(x, 0)
        zeros = Sum(self.axis, True, "int64")(is_zero)
        nonzero_product = Prod(self.axis, True, self.dtype)(switch(is_zero, 1, x))
        others = switch(eq(zeros, 0), nonzero_product / x,
                        switch(eq(zeros, 1) & is_zero, nonzero_product, 0))
        return [self.expand(g, x.ndim) * others]


class All(Reduce):
    """True where every element over the axes is nonzero."""

    combine = "and"

    def identity(self, dtype):
        return np.True_

    def accumulator_dtype(self, in_dtype, out_dtype):
        return "bool"

    def output_dtype(self, dtype):
        return "bool"

    def grad(self, inputs, outputs, output_grads):
        return [None]


class Any(All):
    """True where some element over the axes is nonzero."""

    combine = "or"

    def identity(self, dtype):
        return np.False_


class FusedReduce(Op):
    """A reduction of an elementwise result computed as it is read, with no temporary array: made by
    the fusion rewrite when the reduction is the only reader of that result. ``reduce`` is the
    reduction op, ``elemwise`` the elementwise op (often a Composite); the inputs are the elementwise
    op's. Shown as ``Sum{...} of Composite{...}``; it computes exactly ``reduce(elemwise(*inputs))``."""

    __props__ = ("reduce", "elemwise")

    def __init__(self, reduce, elemwise):
        self.reduce = reduce
        self.elemwise = elemwise

    def __str__(self):
        return f"{self.reduce} of {self.elemwise}"

    def parts(self, inputs):
        """(elementwise node, reduction node) computing this op's result from ``inputs``, unfused."""
        inner = self.elemwise.make_node(*inputs)
        return inner, self.reduce.make_node(inner.outputs[0])

    def make_node(self, *inputs):
        inner, outer = self.parts([_as(i) for i in inputs])
        out = outer.outputs[0]
        return Apply(self, inner.inputs, [_out(out.dtype, out.broadcastable)])

    def expand(self, inputs):
        return self.reduce(self.elemwise(*inputs))

    def infer_shape(self, node, shapes):
        inner, outer = self.parts(node.inputs)
        inner.outputs[0].trace = node.outputs[0].trace  # a check names the user's line
        elementwise = inner.op.infer_shape(inner, shapes)[0]
        return [si.carry(outer.op.infer_shape(outer, [elementwise])[0], elementwise)]

    def grad(self, inputs, outputs, output_grads):
        return grad_of_expansion([self.expand(inputs)], inputs, output_grads)


class ExtremumMask(Op):
    """A boolean mask, True at the first position of the max (or min) over ``axis``: where the
    gradient of Max and Min goes."""

    __props__ = ("axis", "minimum")

    def __init__(self, axis, minimum=False):
        self.axis = tuple(axis)
        self.minimum = bool(minimum)

    def make_node(self, x):
        x = _as(x)
        return Apply(self, [x], [_out("bool", x.broadcastable)])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, outputs, output_grads):
        return [None]


class Argmax(Op):
    """Index of the first maximum along ``axis`` (an int, or None for the flattened input), int64."""

    __props__ = ("axis", "keepdims")

    def __init__(self, axis, keepdims=False):
        self.axis = None if axis is None else int(axis)
        self.keepdims = bool(keepdims)

    def make_node(self, x):
        x = _as(x)
        if self.axis is None:
            bcast = (True,) * x.ndim if self.keepdims else ()
        elif self.keepdims:
            bcast = tuple(b or a == self.axis for a, b in enumerate(x.broadcastable))
        else:
            bcast = tuple(b for a, b in enumerate(x.broadcastable) if a != self.axis)
        return Apply(self, [x], [_out("int64", bcast)])

    def infer_shape(self, node, shapes):
        (x,), (s,) = node.inputs, shapes
        if self.axis is None:
            sizes, reduced = (si.const(1),) * x.ndim if self.keepdims else (), s
        else:
            reduced = [s[self.axis]]
            sizes = tuple(si.const(1) if a == self.axis else n for a, n in enumerate(s)
                          if self.keepdims or a != self.axis)
        count = si.product(reduced)
        if si.positive(count):
            return [sizes]
        # the first maximum of nothing is an error: the op on (count, 0) zeros fails where it would
        return [si.checked(sizes, type(self)(0)(si.empty(x.dtype, count, 0)), node)]

    def grad(self, inputs, outputs, output_grads):
        return [None]


class Argmin(Argmax):
    """Index of the first minimum along ``axis`` (an int, or None for the flattened input), int64."""


def _reduction(cls):
    def reduce(x, axis=None, keepdims=False, **params):
        x = _as(x)
        return cls(normalize_axes(x, axis, cls.__name__), keepdims, **params)(x)

    reduce.__name__ = cls.__name__.lower()
    reduce.__doc__ = f"{cls.__doc__}\n\n``axis``: None (all axes), an int or a tuple of ints."
    return reduce


def sum(x, axis=None, keepdims=False, dtype=None, acc_dtype=None):
    return _reduction(Sum)(x, axis, keepdims, dtype=dtype)


def mean(x, axis=None, keepdims=False, dtype=None, acc_dtype=None):
    return _reduction(Mean)(x, axis, keepdims, dtype=dtype)


def prod(x, axis=None, keepdims=False, dtype=None, acc_dtype=None, no_zeros_in_input=False):
    return _reduction(Prod)(x, axis, keepdims, dtype=dtype)


max, min, all, any = _reduction(Max), _reduction(Min), _reduction(All), _reduction(Any)


def _arg_reduction(cls, x, axis, keepdims):
    x = _as(x)
    if axis is None or isinstance(axis, (int, np.integer)):
        if axis is not None:
            axis = normalize_axes(x, axis, cls.__name__)[0]
        return cls(axis, keepdims)(x)
    # several axes: move them to the end, flatten them into one, and reduce that
    axes = normalize_axes(x, axis, cls.__name__)
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = dimshuffle(x, kept + list(axes))
    flat = reshape(moved, [shape_i(x, a) for a in kept] + [-1])
    result = cls(len(kept), False)(flat)
    if keepdims:
        pattern, position = [], 0
        for a in range(x.ndim):
            pattern.append("x" if a in axes else position)
            position += a not in axes
        result = dimshuffle(result, pattern)
    return result


def argmax(x, axis=None, keepdims=False):
    """Index of the first maximum along ``axis`` (None: of the flattened input; a tuple: of those axes
    flattened together, as in Theano)."""
    return _arg_reduction(Argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the first minimum along ``axis`` (see argmax)."""
    return _arg_reduction(Argmin, x, axis, keepdims)


def var(x, axis=None, ddof=0, keepdims=False, corrected=False):
    """Variance over axes (divided by n - ddof)."""
    x = _as(x)
    axes = normalize_axes(x, axis, "var")
    centered = x - mean(x, axes, keepdims=True)
    result = mean(sqr(centered), axes, keepdims=keepdims)
    if ddof:
        n = cast(element_count(x, axes), result.dtype)
        result = result * n / (n - ddof)
    return result


def std(x, axis=None, ddof=0, keepdims=False, corrected=False):
    """Standard deviation over axes: sqrt(var)."""
    return sqrt(var(x, axis, ddof, keepdims, corrected))


def element_count(x, axes):
    """The number of elements of ``x`` along ``axes`` as a symbolic int64 scalar."""
    count = Constant(TensorType("int64", ()), 1)
    for a in axes:
        count = count * shape_i(x, a)
    return count


# ---------------------------------------------------------------------------------------------------
# Shapes


class DimShuffle(Op):
    """Reorder axes, insert broadcastable axes ('x'), drop broadcastable axes (Theano's dimshuffle)."""

    __props__ = ("input_broadcastable", "new_order")
    view_map = {0: 0}

    def __init__(self, input_broadcastable, new_order):
        self.input_broadcastable = tuple(input_broadcastable)
        self.new_order = tuple(new_order)
        ndim = len(self.input_broadcastable)
        axes = [a for a in self.new_order if a != "x"]
        if builtins.any(not isinstance(a, (int, np.integer)) or not 0 <= a < ndim for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"dimshuffle{self.new_order}: invalid pattern for a {ndim}-d input "
                             "(use each axis at most once, and 'x' for new axes)")
        for a in range(ndim):
            if a not in axes and not self.input_broadcastable[a]:
                raise ValueError(f"dimshuffle{self.new_order}: cannot drop axis {a}, which is not broadcastable")

    def __str__(self):
        return f"DimShuffle{{{','.join(str(a) for a in self.new_order)}}}"

    def make_node(self, x):
        x = _as(x)
        if x.broadcastable != self.input_broadcastable:
            raise TypeError(f"{self}: input pattern {x.broadcastable} differs from the op's")
        bcast = tuple(True if a == "x" else x.broadcastable[a] for a in self.new_order)
        return Apply(self, [x], [_out(x.dtype, bcast)])

    def infer_shape(self, node, shapes):
        return [tuple(si.const(1) if a == "x" else shapes[0][a] for a in self.new_order)]

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        order = ["x"] * x.ndim
        for position, a in enumerate(self.new_order):
            if a != "x":
                order[a] = position
        return [dimshuffle(g, order)]


def dimshuffle(x, pattern):
    x = _as(x)
    pattern = tuple(pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return DimShuffle(x.broadcastable, pattern)(x)


def transpose(x, axes=None):
    """Axes reversed, or permuted by ``axes``."""
    x = _as(x)
    return dimshuffle(x, tuple(reversed(range(x.ndim))) if axes is None else tuple(axes))


class Shape(Op):
    """The shape of x as an int64 vector."""

    def make_node(self, x):
        x = _as(x)
        return Apply(self, [x], [ShapeVariable(TensorType("int64", (False,)))])

    def infer_shape(self, node, shapes):
        return [(si.const(node.inputs[0].ndim),)]

    def grad(self, inputs, outputs, output_grads):
        return [None]


class ShapeVariable(TensorVariable):
    """The result of ``x.shape``: indexing it with an int gives that axis's length."""

    def __getitem__(self, index):
        x = self.owner.inputs[0] if self.owner is not None else None
        if x is not None and isinstance(index, (int, np.integer)):
            if not -x.ndim <= index < x.ndim:
                raise IndexError(f"shape[{index}]: {x.describe()} has {x.ndim} axes")
            return shape_i(x, int(index) % x.ndim)
        return super().__getitem__(index)


class ShapeI(Op):
    """The length of axis ``i`` of x, as an int64 scalar."""

    __props__ = ("i",)

    def __init__(self, i):
        self.i = int(i)

    def make_node(self, x):
        x = _as(x)
        if not 0 <= self.i < x.ndim:
            raise ValueError(f"{self}: {x.describe()} has no axis {self.i}")
        return Apply(self, [x], [_out("int64", ())])

    def infer_shape(self, node, shapes):
        return [()]

    def grad(self, inputs, outputs, output_grads):
        return [None]


def shape(x):
    return Shape()(_as(x))


def shape_i(x, i):
    return ShapeI(i)(_as(x))


class MakeVector(Op):
    """Scalars stacked into a vector (used for symbolic shapes)."""

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = canonical_dtype(dtype)

    def make_node(self, *scalars):
        scalars = [cast(_as(s), self.dtype) for s in scalars]
        if builtins.any(s.ndim != 0 for s in scalars):
            raise TypeError(f"{self}: every element must be a scalar, got {[s.type for s in scalars]}")
        return Apply(self, scalars, [_out(self.dtype, (len(scalars) == 1,))])

    def infer_shape(self, node, shapes):
        return [(si.const(len(node.inputs)),)]

    def grad(self, inputs, outputs, output_grads):
        (g,) = output_grads
        if not is_float(self.dtype):
            return [None] * len(inputs)
        return [g[i] for i in range(len(inputs))]


def stack_scalars(values, dtype=None):
    values = [_as(v) for v in values]
    dtype = dtype or np.result_type(*[v.dtype for v in values]).name
    return MakeVector(dtype)(*values)


class Reshape(Op):
    """x with a new shape of ``ndim`` axes, given as an int vector that may hold one -1."""

    __props__ = ("ndim",)
    view_map = {0: 0}

    def __init__(self, ndim):
        self.ndim = int(ndim)

    def make_node(self, x, shape):
        x, shape = _as(x), _as(shape)
        if shape.ndim != 1 or shape.dtype not in DISCRETE_DTYPES or shape.dtype == "bool":
            raise TypeError(f"reshape: the new shape must be a vector of ints, got {shape.describe()}")
        bcast = [False] * self.ndim
        known = _constant_entries(shape)
        if known is not None and len(known) != self.ndim:
            raise ValueError(f"reshape: the new shape {known} has {len(known)} entries, not ndim={self.ndim}")
        if known is not None:
            bcast = [size == 1 for size in known]
        return Apply(self, [x, shape], [_out(x.dtype, bcast)])

    def infer_shape(self, node, shapes):
        (x, vector), (s, _) = node.inputs, shapes
        count = si.product(s)
        # an entry -1 takes what the others leave (NumPy's rule); a symbolic entry may be -1 when it runs
        sizes, factors, free, wrong = [], [], [], []
        for entry in si.vector_entries(vector, self.ndim):
            if si.nonneg(entry):
                sizes.append(entry)
                factors.append(entry)
            elif si.value_of(entry) == -1:
                sizes.append(None)
                free.append(True)
            else:
                is_free = eq(entry, -1)
                sizes.append((is_free, entry))
                factors.append(si.switch(is_free, 1, entry))
                free.append(is_free)
                wrong.append(lt(entry, -1))
        known = si.product(factors)
        missing = si.floordiv(count, si.maximum(known, 1))
        sizes = [missing if n is None else si.switch(n[0], missing, n[1]) if isinstance(n, tuple) else n
                 for n in sizes]
        expected = si.product(sizes)
        if not free and si.same_size(expected, count):
            return [tuple(sizes)]
        # what NumPy refuses besides another count: a size below -1, two -1, a -1 beside a size 0
        if free and builtins.all(f is True for f in free):
            wrong.append(eq(known, 0))
        elif free:
            n_free = si.total([si.const(1) if f is True else cast(f, "int64") for f in free])
            wrong += [gt(n_free, 1), ge(n_free, 1) & eq(known, 0)]
        if wrong:
            expected = si.switch(functools.reduce(or_, wrong), -1, expected)
        return [si.checked(sizes, specify_shape(si.empty(x.dtype, count, 0), [expected, None]), node)]

    def grad(self, inputs, outputs, output_grads):
        (x, _), (g,) = inputs, output_grads
        return [reshape(g, shape(x), ndim=x.ndim), None]


def _constant_entries(shape):
    """The entries of a shape vector known at graph-building time (None where symbolic), or None when
    even its length is unknown."""
    if isinstance(shape, Constant):
        return [int(v) for v in shape.data]
    if shape.owner is not None and isinstance(shape.owner.op, MakeVector):
        return [int(v.data) if isinstance(v, Constant) else None for v in shape.owner.inputs]
    if shape.owner is not None and isinstance(shape.owner.op, Shape):  # y.shape has y.ndim entries
        return [None] * shape.owner.inputs[0].ndim
    return None


def reshape(x, shape, ndim=None):
    """``x`` reshaped to ``shape``: a tuple of ints and symbolic scalars (one may be -1), or an int
    vector (then pass ``ndim`` if its length cannot be known from the graph)."""
    x = _as(x)
    if isinstance(shape, (list, tuple)):
        ndim = len(shape)
        if builtins.any(isinstance(s, TensorVariable) for s in shape):
            shape = stack_scalars(shape, "int64")
        else:
            shape = Constant(TensorType("int64", (ndim == 1,)), np.asarray(shape, dtype="int64").reshape(ndim))
    shape = _as(shape)
    entries = _constant_entries(shape)
    if ndim is None:
        if entries is None:
            raise ValueError(f"reshape: cannot tell how many axes {shape!r} has; pass ndim=")
        ndim = len(entries)
    if entries is not None and (builtins.sum(e == -1 for e in entries if e is not None) > 1
                                or builtins.any(e is not None and e < -1 for e in entries)):
        raise ValueError(f"reshape: invalid shape {entries} (sizes must be >= 0, with at most one -1)")
    return Reshape(ndim)(x, shape)


def flatten(x, ndim=1, outdim=None):
    """``x`` with its last axes merged so that ``ndim`` axes remain (Theano's flatten)."""
    x = _as(x)
    ndim = outdim or ndim
    if not 1 <= ndim <= builtins.max(x.ndim, 1):
        raise ValueError(f"flatten: ndim must be between 1 and {x.ndim}, got {ndim}")
    return reshape(x, [shape_i(x, a) for a in range(ndim - 1)] + [-1])


def _shape_scalars(shape, what):
    """A shape given as an int, a tuple/list of ints and symbolic scalars, or an int vector of known
    length, as a list of int64 scalar variables or ints."""
    if isinstance(shape, (int, np.integer)):
        return [int(shape)]
    if isinstance(shape, (list, tuple)):
        return [s if isinstance(s, (int, np.integer)) else _as(s) for s in shape]
    shape = _as(shape)
    if shape.ndim == 0:
        return [shape]
    entries = _constant_entries(shape)
    if shape.ndim != 1 or entries is None:
        raise TypeError(f"{what}: give the shape as a tuple of ints or symbolic scalars, got {shape.describe()}")
    return [shape[i] for i in range(len(entries))]


class Alloc(Op):
    """``value`` broadcast to a new array of the given shape (the value's axes align on the right and
    stretch only where they are broadcastable)."""

    def make_node(self, value, *shape):
        value = _as(value)
        shape = [cast(_as(s), "int64") for s in shape]
        if builtins.any(s.ndim != 0 for s in shape):
            raise TypeError(f"alloc: each size must be a scalar, got {[s.type for s in shape]}")
        if value.ndim > len(shape):
            raise TypeError(f"alloc: the value has {value.ndim} axes, more than the {len(shape)} of the shape")
        bcast = tuple(isinstance(s, Constant) and int(s.data) == 1 for s in shape)
        return Apply(self, [value, *shape], [_out(value.dtype, bcast)])

    def infer_shape(self, node, shapes):
        value, sizes = node.inputs[0], node.inputs[1:]
        right = sizes[len(sizes) - value.ndim:]
        if builtins.all(si.nonneg(n) for n in sizes) and builtins.all(
                b or si.same_size(v, n) for b, v, n in zip(value.broadcastable, shapes[0], right)):
            return [tuple(sizes)]
        filler = value if value.ndim == 0 else si.stand_in(value, shapes[0])
        return [si.checked(sizes, self.make_node(filler, *sizes, 0).outputs[0], node)]

    def grad(self, inputs, outputs, output_grads):
        value, shape = inputs[0], inputs[1:]
        (g,) = output_grads
        extra = g.ndim - value.ndim
        gv = sum_to_broadcastable(g, (True,) * extra + value.broadcastable)
        if extra:
            gv = sum(gv, axis=tuple(range(extra)))
        return [gv] + [None] * len(shape)


def alloc(value, *shape):
    """A new array of ``shape`` filled with ``value`` (Theano's ``T.alloc(value, *shape)``)."""
    return Alloc()(value, *shape)


def zeros(shape, dtype=None):
    """An array of zeros of ``shape`` (ints and symbolic scalars) and ``dtype`` (default floatX)."""
    return alloc(Constant(TensorType(dtype, ()), 0), *_shape_scalars(shape, "zeros"))


def ones(shape, dtype=None):
    """An array of ones of ``shape`` and ``dtype`` (default floatX)."""
    return alloc(Constant(TensorType(dtype, ()), 1), *_shape_scalars(shape, "ones"))


class ARange(Op):
    """Evenly spaced values in [start, stop) with ``step``, like NumPy's arange."""

    __props__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = canonical_dtype(dtype)

    def make_node(self, start, stop, step):
        values = [_as(v) for v in (start, stop, step)]
        if builtins.any(v.ndim != 0 for v in values):
            raise TypeError(f"arange: start, stop and step must be scalars, got {[v.type for v in values]}")
        return Apply(self, values, [_out(self.dtype, (False,))])

    def infer_shape(self, node, shapes):
        start, stop, step = node.inputs
        span = cast(stop, "float64") - cast(start, "float64")
        length = si.maximum(cast(ceil(span / cast(step, "float64")), "int64"), 0)  # NumPy's count
        if isinstance(step, Constant) and step.data != 0:
            return [(length,)]
        # a step of 0 is an error: the op counting from start to start fails where it would
        return [si.checked((length,), self.make_node(start, start, step).outputs[0], node)]

    def grad(self, inputs, outputs, output_grads):
        return [None, None, None]


def arange(start, stop=None, step=1, dtype=None):
    """``T.arange(stop)`` or ``T.arange(start, stop, step)``: int64 for integers, else floatX."""
    if stop is None:
        start, stop = 0, start
    values = [_as(v) for v in (start, stop, step)]
    if isinstance(values[2], Constant) and values[2].ndim == 0 and values[2].data == 0:
        raise ValueError("arange: step cannot be zero")  # a symbolic step is checked when it runs
    if dtype is None:
        strong_floats = [v.dtype for v in values if is_float(v.dtype) and not (isinstance(v, Constant) and v.weak)]
        if builtins.all(v.dtype in DISCRETE_DTYPES for v in values):
            dtype = "int64"
        else:
            dtype = np.result_type(*strong_floats).name if strong_floats else canonical_dtype("floatX")
    return ARange(dtype)(*values)


class Join(Op):
    """Tensors of the same rank joined along ``axis`` (Theano's join, NumPy's concatenate)."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = int(axis)

    def make_node(self, *tensors):
        tensors = [_as(t) for t in tensors]
        if not tensors:
            raise ValueError("join: give at least one tensor")
        ndim = tensors[0].ndim
        if builtins.any(t.ndim != ndim for t in tensors) or not 0 <= self.axis < ndim:
            raise TypeError(f"join: every tensor must have the same number of axes, and axis {self.axis} "
                            f"must be one of them; got {[str(t.type) for t in tensors]}")
        dtype = np.result_type(*[t.dtype for t in tensors]).name
        tensors = [cast(t, dtype) for t in tensors]
        bcast = [builtins.any(column) for column in zip(*[t.broadcastable for t in tensors])]
        bcast[self.axis] = len(tensors) == 1 and tensors[0].broadcastable[self.axis]
        return Apply(self, tensors, [_out(dtype, bcast)])

    def infer_shape(self, node, shapes):
        pattern = node.outputs[0].broadcastable
        sizes = [si.const(1) if b else n for b, n in zip(pattern, shapes[0])]
        sizes[self.axis] = si.total(s[self.axis] for s in shapes)
        others = [a for a in range(len(sizes)) if a != self.axis]
        if builtins.all(si.same_size(s[a], shapes[0][a]) for s in shapes[1:] for a in others):
            return [tuple(sizes)]
        check = self.make_node(*[si.stand_in(t, s) for t, s in zip(node.inputs, shapes)]).outputs[0]
        return [si.checked(sizes, check, node)]

    def grad(self, inputs, outputs, output_grads):
        (g,) = output_grads
        grads, start = [], Constant(TensorType("int64", ()), 0)
        for t in inputs:
            stop = start + shape_i(t, self.axis)
            index = (slice(None),) * self.axis + (slice(start, stop),)
            grads.append(g[index])
            start = stop
        return grads


def join(axis, *tensors):
    """``tensors`` joined along ``axis`` (Theano's argument order)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = [_as(t) for t in tensors]
    axis = normalize_axes(tensors[0], axis, "join")[0] if tensors else axis
    return Join(axis)(*tensors)


def concatenate(tensors, axis=0):
    """``tensors`` joined along ``axis`` (NumPy's argument order)."""
    return join(axis, *tensors)


def stack(*tensors, axis=0):
    """Tensors of the same shape stacked along a new ``axis``: ``stack([a, b])`` or ``stack(a, b)``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = [_as(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: give at least one tensor")
    ndim = tensors[0].ndim
    axis = axis + ndim + 1 if axis < 0 else axis
    return join(axis, *[expand_dims(t, axis) for t in tensors])


def expand_dims(x, axis):
    """``x`` with a new broadcastable axis at position ``axis``."""
    x = _as(x)
    axis = axis + x.ndim + 1 if axis < 0 else axis
    if not 0 <= axis <= x.ndim:
        raise ValueError(f"expand_dims: axis {axis} is out of range for {x.describe()}")
    order = list(range(x.ndim))
    return dimshuffle(x, order[:axis] + ["x"] + order[axis:])


class Rebroadcast(Op):
    """x with some axes marked broadcastable (checked to have size 1 when it runs) or not."""

    __props__ = ("axes",)  # ((axis, broadcastable), ...)
    view_map = {0: 0}

    def __init__(self, axes):
        self.axes = tuple(sorted((int(a), bool(b)) for a, b in axes))

    def make_node(self, x):
        x = _as(x)
        bcast = list(x.broadcastable)
        for axis, value in self.axes:
            if not 0 <= axis < x.ndim:
                raise ValueError(f"{self}: {x.describe()} has no axis {axis}")
            bcast[axis] = value
        return Apply(self, [x], [_out(x.dtype, bcast)])

    def infer_shape(self, node, shapes):
        sizes = list(shapes[0])
        unproven = [axis for axis, b in self.axes if b and si.value_of(sizes[axis]) != 1]
        for axis, b in self.axes:
            sizes[axis] = si.const(1) if b else sizes[axis]
        if not unproven:
            return [tuple(sizes)]
        return [si.checked(sizes, self.make_node(si.stand_in(node.inputs[0], shapes[0])).outputs[0], node)]

    def grad(self, inputs, outputs, output_grads):
        (x,), (g,) = inputs, output_grads
        return [patternbroadcast(g, x.broadcastable)]


def patternbroadcast(x, broadcastable):
    """``x`` with the broadcastable pattern ``broadcastable``."""
    x = _as(x)
    changes = [(a, b) for a, (b, old) in enumerate(zip(broadcastable, x.broadcastable)) if b != old]
    return Rebroadcast(changes)(x) if changes else x


def addbroadcast(x, *axes):
    """``x`` with ``axes`` made broadcastable (their size must be 1 when it runs)."""
    x = _as(x)
    return patternbroadcast(x, [b or a in axes for a, b in enumerate(x.broadcastable)])


def unbroadcast(x, *axes):
    """``x`` with ``axes`` made non-broadcastable."""
    x = _as(x)
    return patternbroadcast(x, [b and a not in axes for a, b in enumerate(x.broadcastable)])


def squeeze(x, axis=None):
    """``x`` without its broadcastable axes (or without ``axis``, which must have size 1 when it runs)."""
    x = _as(x)
    axes = [a for a, b in enumerate(x.broadcastable) if b] if axis is None else normalize_axes(x, axis, "squeeze")
    x = addbroadcast(x, *axes)
    return dimshuffle(x, [a for a in range(x.ndim) if a not in axes])


class SpecifyShape(Op):
    """x, checked when it runs to have the given shape (sizes that are None are not checked)."""

    __props__ = ("known",)  # for each axis: True if a size is given (it is then an input)
    view_map = {0: 0}

    def __init__(self, known):
        self.known = tuple(bool(k) for k in known)

    def make_node(self, x, *sizes):
        x = _as(x)
        if len(self.known) != x.ndim:
            raise ValueError(f"specify_shape: {x.describe()} has {x.ndim} axes, the shape has {len(self.known)}")
        sizes = [cast(_as(s), "int64") for s in sizes]
        bcast, given = list(x.broadcastable), iter(sizes)
        for axis, known in enumerate(self.known):
            if known:
                size = next(given)
                bcast[axis] = bcast[axis] or (isinstance(size, Constant) and int(size.data) == 1)
        return Apply(self, [x, *sizes], [_out(x.dtype, bcast)])

    def infer_shape(self, node, shapes):
        (x, *given), s = node.inputs, shapes[0]
        sizes, sizes_given = list(s), iter(given)
        for axis, known in enumerate(self.known):
            sizes[axis] = next(sizes_given) if known else sizes[axis]
        if si.same_shape(sizes, s):
            return [tuple(sizes)]
        check = SpecifyShape(self.known + (False,))(si.stand_in(x, s), *given)
        return [si.checked(sizes, check, node)]

    def grad(self, inputs, outputs, output_grads):
        return [patternbroadcast(output_grads[0], inputs[0].broadcastable)] + [None] * (len(inputs) - 1)


def specify_shape(x, shape):
    """``x``, with its shape checked when the function runs (a ValueError names both shapes)."""
    x = _as(x)
    sizes = _shape_scalars(shape, "specify_shape") if not isinstance(shape, (list, tuple)) else list(shape)
    known = [s is not None for s in sizes]
    return SpecifyShape(known)(x, *[s for s in sizes if s is not None])


class Repeat(Op):
    """Each element of x repeated along ``axis``, ``repeats`` times (an int scalar, or an int vector
    with one count per element along the axis)."""

    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = int(axis)

    def make_node(self, x, repeats):
        x, repeats = _as(x), _as(repeats)
        if repeats.dtype not in DISCRETE_DTYPES or repeats.dtype == "bool" or repeats.ndim > 1:
            raise TypeError(f"repeat: repeats must be an int scalar or vector, got {repeats.describe()}")
        if repeats.dtype == "uint64":  # NumPy counts in int64 and refuses what may not fit, as Theano did
            raise TypeError(f"repeat: repeats of dtype uint64 are not supported (NumPy counts in int64); "
                            f"cast them first, e.g. T.cast(repeats, 'int64'), got {repeats.describe()}")
        bcast = list(x.broadcastable)
        bcast[self.axis] = False
        return Apply(self, [x, repeats], [_out(x.dtype, bcast)])

    def infer_shape(self, node, shapes):
        (x, repeats), s = node.inputs, shapes[0]
        sizes, n = list(s), s[self.axis]
        if repeats.ndim == 0:
            sizes[self.axis] = si.mul(n, repeats)
            safe = si.nonneg(repeats)
        else:  # one count per element, or one count for all (NumPy stretches a single count)
            summed, (counts,) = Sum((0,), False, "int64")(repeats), shapes[1]
            sizes[self.axis] = (si.mul(summed, n) if repeats.broadcastable[0] else summed if si.same_size(counts, n)
                                else si.mul(summed, si.switch(eq(counts, 1), n, 1)))
            safe = isinstance(repeats, Constant) and bool(np.all(repeats.data >= 0)) and si.same_size(counts, n)
        if safe:
            return [tuple(sizes)]
        return [si.checked(sizes, self.make_node(si.stand_in(x, s), repeats).outputs[0], node)]

    def grad(self, inputs, outputs, output_grads):
        (x, repeats), (g,) = inputs, output_grads
        n = shape_i(x, self.axis)
        owner = Repeat(0)(arange(n), repeats if repeats.ndim else alloc(repeats, n))
        index = (slice(None),) * self.axis + (owner,)
        return [inc_subtensor(zeros_like(x, g.dtype)[index], g), None]


def repeat(x, repeats, axis=None):
    """NumPy's repeat: ``axis=None`` repeats the flattened input."""
    x = _as(x)
    if axis is None:
        x, axis = flatten(x), 0
    axis = normalize_axes(x, axis, "repeat")[0]
    return Repeat(axis)(x, repeats)


def tile(x, reps):
    """``x`` repeated ``reps`` times along each axis (NumPy's tile; ``reps`` a tuple of ints or scalars)."""
    x = _as(x)
    reps = list(reps) if isinstance(reps, (list, tuple)) else [reps]
    ndim = builtins.max(x.ndim, len(reps))
    reps = [1] * (ndim - len(reps)) + reps
    x = _pad_left(x, ndim)
    # interleave a broadcastable axis before each axis, stretch it to the repeat count, merge the pairs
    spread = dimshuffle(x, [p for a in range(ndim) for p in ("x", a)])
    sizes = [shape_i(x, a) for a in range(ndim)]
    grown = alloc(spread, *[p for r, s in zip(reps, sizes) for p in (r, s)])
    return reshape(grown, [r * s for r, s in zip(reps, sizes)])


# ---------------------------------------------------------------------------------------------------
# Products


class Dot(Op):
    """Matrix and vector products: vector·vector (scalar), matrix·vector, vector·matrix, matrix·matrix."""

    def make_node(self, a, b):
        a, b = _as(a), _as(b)
        if a.ndim not in (1, 2) or b.ndim not in (1, 2):
            raise TypeError(f"dot: expected vectors or matrices, got {a.describe()} and {b.describe()}")
        bcast = a.broadcastable[:-1] + b.broadcastable[1:] if b.ndim == 2 else a.broadcastable[:-1]
        dtype = _numpy_rule(np.matmul)(self, [a.dtype, b.dtype])
        return Apply(self, [a, b], [_out(dtype, bcast)])

    def infer_shape(self, node, shapes):
        (a, b), (sa, sb) = node.inputs, shapes
        sizes = tuple(sa[:-1]) + tuple(sb[1:])
        if si.same_size(sa[-1], sb[0]):
            return [sizes]
        # the product of (0, k) and (k', 0) zeros fails where a and b would not fit
        return [si.checked(sizes, Dot()(si.empty(a.dtype, 0, sa[-1]), si.empty(b.dtype, sb[0], 0)), node)]

    def grad(self, inputs, outputs, output_grads):
        (a, b), (g,) = inputs, output_grads
        if a.ndim == 1 and b.ndim == 1:
            return [g * b, g * a]
        if a.ndim == 2 and b.ndim == 1:
            return [outer(g, b), dot(transpose(a), g)]
        if a.ndim == 1 and b.ndim == 2:
            return [dot(b, g), outer(a, g)]
        return [dot(g, transpose(b)), dot(transpose(a), g)]


def dot(a, b):
    """The product of ``a`` and ``b``; a scalar operand multiplies elementwise (as in Theano)."""
    a, b = _as(a), _as(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return Dot()(a, b)


class Gemm(Op):
    """``beta * z + alpha * dot(x, y)`` for float matrices of one dtype, alpha and beta scalars: BLAS's
    gemm. Users write the sum; the rewrite ``gemm_updates`` (core/rewrite.py) makes this op of an update
    such as ``W - lr * dot(a, b)``, so that the plan can accumulate the product straight into W's
    storage (Theano's GemmInplace)."""

    def make_node(self, z, alpha, x, y, beta):
        z, x, y = _as(z), _as(x), _as(y)
        if not (z.ndim == x.ndim == y.ndim == 2) or z.dtype not in ("float32", "float64") or \
                not z.dtype == x.dtype == y.dtype:
            raise TypeError(f"gemm: expected float matrices of one dtype, got {z.describe()}, {x.describe()}, "
                            f"{y.describe()}")
        alpha, beta = cast(_as(alpha), z.dtype), cast(_as(beta), z.dtype)
        if alpha.ndim or beta.ndim:
            raise TypeError(f"gemm: alpha and beta must be scalars, got {alpha.describe()} and {beta.describe()}")
        bcast = tuple(a or b for a, b in zip(z.broadcastable, (x.broadcastable[0], y.broadcastable[1])))
        if bcast != z.broadcastable:
            raise TypeError(f"gemm: {z.describe()} cannot hold the product of {x.describe()} and {y.describe()}")
        return Apply(self, [z, alpha, x, y, beta], [_out(z.dtype, z.broadcastable)])

    def infer_shape(self, node, shapes):
        z, _, x, y, _ = node.inputs
        sz, _, sx, sy, _ = shapes
        sizes = tuple(sz)
        for a, b, check in ((sx[1], sy[0], lambda: Dot()(si.empty(x.dtype, 0, sx[1]), si.empty(y.dtype, sy[0], 0))),
                            (sz[0], sx[0], lambda: add(si.empty(z.dtype, sz[0], 0), si.empty(x.dtype, sx[0], 0))),
                            (sz[1], sy[1], lambda: add(si.empty(z.dtype, 0, sz[1]), si.empty(y.dtype, 0, sy[1])))):
            if not si.same_size(a, b):
                sizes = si.checked(sizes, check(), node)
        return [sizes]

    def grad(self, inputs, outputs, output_grads):
        (z, alpha, x, y, beta), (g,) = inputs, output_grads
        return [beta * g, (g * dot(x, y)).sum(), alpha * dot(g, transpose(y)), alpha * dot(transpose(x), g),
                (g * z).sum()]


def gemm(z, alpha, x, y, beta):
    """``beta * z + alpha * dot(x, y)`` as one BLAS product (float matrices)."""
    return Gemm()(z, alpha, x, y, beta)


def outer(a, b):
    """The outer product of two vectors."""
    a, b = _as(a), _as(b)
    return dimshuffle(a, (0, "x")) * dimshuffle(b, ("x", 0))


# ---------------------------------------------------------------------------------------------------
# Indexing. Basic: ints, slices (constant or symbolic bounds, any step), None (new axes) -> a view.
# Advanced (as in NumPy): integer arrays and boolean masks, mixed with the above -> a copy.

# In an index description, a symbolic scalar stands as SYMBOLIC and is the op's next input; an
# ('array', ndim, is_bool) entry is an index array, also taken from the next input.
SYMBOLIC = "?"


def _index_description(x, key):
    """(description, index inputs) for ``x[key]``. The description is a hashable tuple of
    ('index', i) / ('slice', start, stop, step) / ('newaxis',) / ('array', ndim, is_bool) entries."""
    key = key if isinstance(key, tuple) else (key,)
    key = tuple(_as(k) if isinstance(k, (list, np.ndarray)) else k for k in key)
    if builtins.sum(k is Ellipsis for k in key) > 1:
        raise IndexError("an index can only have a single ellipsis (...)")

    def axes_used(k):
        if k is None or k is Ellipsis:
            return 0
        return k.ndim if isinstance(k, TensorVariable) and k.dtype == "bool" else 1

    used = builtins.sum(axes_used(k) for k in key)
    if used > x.ndim:
        raise IndexError(f"too many indices: {x.describe()} has {x.ndim} axes, the index uses {used}")
    if Ellipsis in key:
        at = key.index(Ellipsis)
        key = key[:at] + (slice(None),) * (x.ndim - used) + key[at + 1:]
    inputs = []

    def part(value):
        if value is None or isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return None if value is None else _int64(int(value))
        value = _as(value)
        if value.ndim != 0 or value.dtype not in DISCRETE_DTYPES or value.dtype == "bool":
            raise TypeError(f"slice bounds must be integers or integer scalars, got {value.describe()}")
        if isinstance(value, Constant):
            return _int64(int(value.data))
        inputs.append(_int64_index(value))
        return SYMBOLIC

    description = []
    for k in key:
        if k is None:
            description.append(("newaxis",))
        elif isinstance(k, slice):
            if isinstance(k.step, (int, np.integer)) and k.step == 0:
                raise ValueError("slice step cannot be zero")
            description.append(("slice", part(k.start), part(k.stop), part(k.step)))
        elif isinstance(k, TensorVariable) and (k.ndim > 0 or k.dtype == "bool"):
            if k.dtype not in DISCRETE_DTYPES:
                raise IndexError(f"index arrays must hold integers or booleans, got {k.describe()}")
            inputs.append(_int64_index(k))
            description.append(("array", k.ndim, k.dtype == "bool"))
        else:
            description.append(("index", part(k)))
    return tuple(description), inputs


_INT64 = np.iinfo(np.int64)


def _int64(i):
    """A constant index or slice bound as an int64: beyond it, one past the end of any axis (an index
    out of range, a bound that clamps to the end), the same on every backend."""
    return builtins.max(builtins.min(i, int(_INT64.max)), int(_INT64.min))


def _int64_index(value):
    """A uint64 index (scalar or array) as int64, the values past int64's range saturated (``_int64``):
    the backends compute indices in int64, where those would wrap around to negative ones."""
    if value.dtype != "uint64":
        return value
    return cast(minimum(value, np.uint64(_INT64.max)), "int64")


def _is_advanced(description):
    return builtins.any(entry[0] == "array" for entry in description)


def _indexed_pattern(broadcastable, description):
    """The broadcastable pattern of x[description]."""
    if _is_advanced(description):
        # NumPy's placement rules for the index arrays' axes, found by indexing a dummy array
        dummy = np.empty((1,) * len(broadcastable))
        index = tuple(
            np.ones((1,) * e[1], bool) if e[0] == "array" and e[2] else np.zeros((1,) * e[1], int)
            if e[0] == "array" else None if e[0] == "newaxis" else 0 if e[0] == "index" else slice(None)
            for e in description)
        return (False,) * dummy[index].ndim
    result, axis = [], 0
    for entry in description:
        if entry[0] == "newaxis":
            result.append(True)
            continue
        if entry[0] == "slice":
            result.append(broadcastable[axis] and entry[1:] == (None, None, None))
        axis += 1
    return tuple(result) + tuple(broadcastable[axis:])


def numpy_index(description, inputs):
    """The NumPy index for a description and the run-time values of its index inputs."""
    values = iter(inputs)

    def value(part):
        return int(next(values)) if part == SYMBOLIC else part

    index = []
    for entry in description:
        if entry[0] == "newaxis":
            index.append(None)
        elif entry[0] == "index":
            index.append(value(entry[1]))
        elif entry[0] == "array":
            index.append(next(values))
        else:
            index.append(slice(value(entry[1]), value(entry[2]), value(entry[3])))
    return tuple(index)


def _check_index_inputs(description, inputs, op):
    expected = builtins.sum(part == SYMBOLIC for entry in description if entry[0] != "array" for part in entry[1:])
    expected += builtins.sum(entry[0] == "array" for entry in description)
    if len(inputs) != expected:
        raise TypeError(f"{op} expects {expected} index input(s), got {len(inputs)}")
    return [_as(i) for i in inputs]


def _subtensor_op(description):
    return (AdvancedSubtensor if _is_advanced(description) else Subtensor)(description)


def _indexed_shape(description, x_sizes, index_inputs, index_shapes):
    """(the sizes of x[description], whether that provably cannot fail, the axes of x that integers,
    index arrays or masks read) from x's sizes and the index inputs' values and sizes."""
    inputs = iter(zip(index_inputs, index_shapes))

    def part(p):
        return next(inputs)[0] if p == SYMBOLIC else p

    groups, axis, safe, read = [], 0, True, []  # groups: (advanced?, sizes), in the index's order
    for entry in description:
        if entry[0] == "newaxis":
            groups.append((False, [si.const(1)]))
        elif entry[0] == "slice":
            start, stop, step = (part(p) for p in entry[1:])
            safe = safe and not isinstance(step, TensorVariable)  # a step of 0 is an error
            groups.append((False, [si.slice_length(x_sizes[axis], start, stop, step)]))
            axis += 1
        elif entry[0] == "index":
            i, n = part(entry[1]), si.value_of(x_sizes[axis])
            safe = safe and isinstance(i, int) and n is not None and -n <= i < n
            groups.append((True, []))
            read.append(axis)
            axis += 1
        else:
            (var, sizes), (_, ndim, is_bool) = next(inputs), entry
            width = ndim if is_bool else 1
            if is_bool:  # as many entries as True values, which must cover x's axes exactly
                safe = safe and si.same_shape(sizes, x_sizes[axis:axis + ndim])
                sizes = [Sum(tuple(range(ndim)), False, "int64")(var)]
            else:
                safe = False  # an index may be out of range
            groups.append((True, list(sizes)))
            read.extend(range(axis, axis + width))
            axis += width
    groups += [(False, [n]) for n in x_sizes[axis:]]
    if not _is_advanced(description):
        return [n for _, sizes in groups for n in sizes], safe, read
    # NumPy: the broadcast shape of the index arrays (integers count as 0-d ones) stands where they
    # stand together, and first when other entries separate them
    advanced = [k for k, (adv, _) in enumerate(groups) if adv]
    safe = safe and len(advanced) == 1
    merged = _broadcast_index_shapes([sizes for adv, sizes in groups if adv])
    if advanced == list(range(advanced[0], advanced[-1] + 1)):
        before, after = groups[:advanced[0]], groups[advanced[-1] + 1:]
        return [n for _, s in before for n in s] + merged + [n for _, s in after for n in s], safe, read
    return merged + [n for adv, s in groups if not adv for n in s], safe, read


def _broadcast_index_shapes(shapes):
    """NumPy's broadcast of index arrays' shapes (a size 1 stretches, whatever the type says); a
    misfit is left to the check."""
    ndim = builtins.max(len(s) for s in shapes)
    result = []
    for k in range(ndim):
        sizes = [s[len(s) - ndim + k] for s in shapes if len(s) - ndim + k >= 0]
        merged = sizes[0]
        for n in sizes[1:]:
            merged = merged if si.same_size(merged, n) else si.switch(eq(merged, 1), n, merged)
        result.append(merged)
    return result


def _index_check(description, x, x_sizes, index_inputs, read):
    """x[description] on a stand-in that fails where x would: zeros of x's sizes and an empty last
    axis; with index arrays, booleans of x's sizes on the axes the index reads and 1 on the others
    (so that the ranges are checked row by row even where a row would hold nothing)."""
    if _is_advanced(description):
        probe = alloc(np.False_, *[n if a in read else 1 for a, n in enumerate(x_sizes)])
    else:
        probe = si.stand_in(x, x_sizes)
    return _subtensor_op(description)(probe, *index_inputs)


def _inc_subtensor_op(description, set_instead_of_inc=False):
    return (AdvancedIncSubtensor if _is_advanced(description) else IncSubtensor)(description, set_instead_of_inc)


class Subtensor(Op):
    """x[index] with basic indexing: ints, slices with constant or symbolic bounds (any step), None.
    The result is a view of x. Out-of-range integer indices raise IndexError."""

    __props__ = ("idx_list",)
    view_map = {0: 0}

    def __init__(self, idx_list):
        self.idx_list = tuple(idx_list)

    def __str__(self):
        return f"{type(self).__name__}{{{_format_index(self.idx_list)}}}"

    def make_node(self, x, *index_inputs):
        x = _as(x)
        index_inputs = _check_index_inputs(self.idx_list, index_inputs, self)
        return Apply(self, [x, *index_inputs], [_out(x.dtype, _indexed_pattern(x.broadcastable, self.idx_list))])

    def infer_shape(self, node, shapes):
        x, index_inputs = node.inputs[0], node.inputs[1:]
        sizes, safe, read = _indexed_shape(self.idx_list, shapes[0], index_inputs, shapes[1:])
        if len(sizes) != node.outputs[0].ndim:
            return [None]
        if safe:
            return [tuple(sizes)]
        return [si.checked(sizes, _index_check(self.idx_list, x, shapes[0], index_inputs, read), node)]

    def grad(self, inputs, outputs, output_grads):
        x, index_inputs = inputs[0], inputs[1:]
        (g,) = output_grads
        gx = _inc_subtensor_op(self.idx_list)(zeros_like(x, g.dtype), g, *index_inputs)
        return [gx] + [None] * len(index_inputs)


class AdvancedSubtensor(Subtensor):
    """x[index] where the index holds integer arrays or boolean masks (NumPy's advanced indexing):
    a copy. Out-of-range indices raise IndexError naming the axis, the index and the size."""

    view_map = {}


class IncSubtensor(Op):
    """A copy of x with x[index] incremented by y (or set to y when ``set_instead_of_inc``).
    y stretches along its broadcastable axes; with index arrays, repeated indices accumulate.

    The dtypes, one rule for every backend (``sum_dtype``): each x[i] + y is computed in the dtype
    NumPy's add gives x and y, then converted to x's dtype, element by element and write by write, as
    ``np.add.at(x, index, y)`` does (and Theano's ``x[index] += y`` did): an integer x incremented by
    -0.5 at a repeated position adds in float and truncates each sum (2 -> 1 -> 0), where converting
    y first would add 0. Setting converts y to x's dtype. A bare Python number takes x's dtype only
    when its value fits it (a float stays a float, as in every elementwise op)."""

    __props__ = ("idx_list", "set_instead_of_inc")

    def __init__(self, idx_list, set_instead_of_inc=False):
        self.idx_list = tuple(idx_list)
        self.set_instead_of_inc = bool(set_instead_of_inc)

    def __str__(self):
        kind = "Set" if self.set_instead_of_inc else "Inc"
        advanced = "Advanced" if _is_advanced(self.idx_list) else ""
        return f"{advanced}{kind}Subtensor{{{_format_index(self.idx_list)}}}"

    def make_node(self, x, y, *index_inputs):
        x, y = _as(x), _as(y)
        index_inputs = _check_index_inputs(self.idx_list, index_inputs, self)
        target = _indexed_pattern(x.broadcastable, self.idx_list)
        if y.ndim > len(target):
            raise TypeError(f"{self}: the value has {y.ndim} axes but x{_format_index(self.idx_list, True)} "
                            f"has only {len(target)}")
        if isinstance(y, Constant) and y.weak and _fits(y.data, np.dtype(x.dtype)):
            y = Constant(TensorType(x.dtype, y.broadcastable), y.data)
        return Apply(self, [x, y, *index_inputs], [_out(x.dtype, x.broadcastable)])

    def sum_dtype(self, x_dtype, y_dtype):
        """The dtype x[i] + y is computed in before it is stored back in x's dtype (see the class)."""
        return str(x_dtype) if self.set_instead_of_inc else np.result_type(x_dtype, y_dtype).name

    def infer_shape(self, node, shapes):
        (x, y, *index_inputs), (sx, sy) = node.inputs, shapes[:2]
        region, safe, read = _indexed_shape(self.idx_list, sx, index_inputs, shapes[2:])
        right = region[len(region) - y.ndim:]
        if safe and builtins.all(b or si.same_size(n, r) for b, n, r in zip(y.broadcastable, sy, right)):
            return [sx]
        # y must fit the region: the op on stand-ins of x and y fails where it would
        sizes = si.checked(sx, self.make_node(si.stand_in(x, sx), si.stand_in(y, sy), *index_inputs).outputs[0], node)
        if _is_advanced(self.idx_list):
            sizes = si.checked(sizes, _index_check(self.idx_list, x, sx, index_inputs, read), node)
        return [sizes]

    def grad(self, inputs, outputs, output_grads):
        x, y, index_inputs = inputs[0], inputs[1], inputs[2:]
        (g,) = output_grads
        gx = _inc_subtensor_op(self.idx_list, True)(g, 0, *index_inputs) if self.set_instead_of_inc else g
        gy = _subtensor_op(self.idx_list)(g, *index_inputs)
        if self.set_instead_of_inc and builtins.any(e[0] == "array" and not e[2] for e in self.idx_list):
            # an integer array may name a position twice: only the last write to it survives
            gy = gy * _last_writes(x, gy, self.idx_list, index_inputs)
        extra = gy.ndim - y.ndim  # y was padded on the left with broadcastable axes
        gy = sum_to_broadcastable(gy, (True,) * extra + y.broadcastable)
        if extra:
            gy = sum(gy, axis=tuple(range(extra)))
        return [gx, gy] + [None] * len(index_inputs)


def _last_writes(x, region, idx_list, index_inputs):
    """True where an element of a set_subtensor's (stretched) value is the last one written to its
    position of x: NumPy assigns repeated positions in order, so the earlier writes are lost."""
    numbers = reshape(arange(prod(shape(region))), shape(region), ndim=region.ndim)
    written = _inc_subtensor_op(idx_list, True)(zeros_like(x, "int64"), numbers, *index_inputs)
    return eq(_subtensor_op(idx_list)(written, *index_inputs), numbers)


class AdvancedIncSubtensor(IncSubtensor):
    """IncSubtensor with integer arrays or boolean masks in the index."""


def _format_index(description, brackets=False):
    def show(part):
        return "" if part is None else ("?" if part == SYMBOLIC else str(part))

    parts = []
    for entry in description:
        if entry[0] == "newaxis":
            parts.append("None")
        elif entry[0] == "index":
            parts.append(show(entry[1]))
        elif entry[0] == "array":
            parts.append(f"{'bool' if entry[2] else 'int'}{entry[1]}d")
        else:
            text = f"{show(entry[1])}:{show(entry[2])}"
            parts.append(text + (f":{show(entry[3])}" if entry[3] is not None else ""))
    text = ", ".join(parts)
    return f"[{text}]" if brackets else text


def subtensor(x, key):
    """``x[key]`` (what indexing a variable calls)."""
    x = _as(x)
    description, index_inputs = _index_description(x, key)
    return _subtensor_op(description)(x, *index_inputs)


def _indexed(x_sub, name):
    node = x_sub.owner
    if node is None or not isinstance(node.op, Subtensor):
        raise TypeError(f"{name}: the first argument must be an indexed variable such as x[2:5], "
                        f"got {x_sub!r}")
    return node.inputs[0], node.op.idx_list, node.inputs[1:]


def set_subtensor(x_sub, y):
    """A copy of the indexed variable's base with that region set to ``y``: ``set_subtensor(x[2:5], y)``."""
    x, description, index_inputs = _indexed(x_sub, "set_subtensor")
    return _inc_subtensor_op(description, True)(x, y, *index_inputs)


def inc_subtensor(x_sub, y):
    """A copy of the indexed variable's base with ``y`` added to that region (repeated indices add up)."""
    x, description, index_inputs = _indexed(x_sub, "inc_subtensor")
    return _inc_subtensor_op(description)(x, y, *index_inputs)


# ---------------------------------------------------------------------------------------------------
# Loops
