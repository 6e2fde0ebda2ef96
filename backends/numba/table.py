"""The Numba backend's table of elementwise ops: from scalar op class to a scalar expression.

- ``Scalar(template, cast=...)``: an elementwise op, as a scalar expression. ``template`` is a format
  string over the (already cast) arguments ``{0} {1} ...`` and ``{T}``, the NumPy scalar type of the
  result (``np.float32``): typed constants keep float32 arithmetic in float32. Elementwise nodes and
  fused ``Composite`` bodies become one explicit loop nest (``prange`` over the outer axis on large
  arrays) in a kernel compiled with ``numba.njit``. ``cast`` says what the arguments are cast to
  first: ``"out"`` the result dtype (what NumPy's ufunc loop computes in), ``"common"`` the inputs'
  common dtype (comparisons), ``None`` nothing.
"""

import numpy as np

from arignote.core import nnet, ops

# scalar helpers, defined once in every kernel module that uses them (njit-compiled with the kernel)
HELPERS = {
    "_sigmoid": '''
@_nb.njit(inline="always", error_model="numpy")
def _sigmoid(x, one):
    e = np.exp(-np.abs(x))
    return one / (one + e) if x >= 0 else e / (one + e)
''',
    "_round_away": '''
@_nb.njit(inline="always", error_model="numpy")
def _round_away(x):
    whole = np.trunc(x)
    return whole + np.sign(x) if np.abs(x - whole) >= 0.5 else whole
''',
    "_relu": '''
@_nb.njit(inline="always", error_model="numpy")
def _relu(x, alpha, zero):
    if x > 0:
        return x
    if alpha == 0:
        return np.maximum(x, zero)
    return alpha * x
''',
}


class Scalar:
    def __init__(self, template, cast="out", helper=None, by_dtype=None, guard=None):
        self.template = template
        self.guard = guard  # dtype kind of the result -> (condition on the arguments, error message)
        self.cast = cast
        self.helper = helper
        self.by_dtype = by_dtype or {}  # dtype kind of the first input -> template

    def render(self, args, in_dtypes, out_dtype):
        template = self.by_dtype.get(np.dtype(in_dtypes[0]).kind, self.template) if in_dtypes else self.template
        return template.format(*args, T=f"np.{np.dtype(out_dtype).name}")


def ufunc(name, cast="out"):
    return Scalar(f"np.{name}({{0}})" if name in UNARY else f"np.{name}({{0}}, {{1}})", cast)


UNARY = {"negative", "absolute", "sign", "exp", "log", "sqrt", "tanh", "expm1", "log1p", "log2",
         "log10", "square", "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arctanh",
         "floor", "ceil", "rint", "invert"}

IMPLEMENTATIONS = {
    ops.Add: ufunc("add"),
    ops.Sub: ufunc("subtract"),
    ops.Mul: ufunc("multiply"),
    ops.TrueDiv: ufunc("true_divide"),
    ops.IntDiv: ufunc("floor_divide"),
    ops.Mod: ufunc("remainder"),
    ops.Pow: Scalar("np.power({0}, {1})", guard={
        k: ("{1} < 0", "Integers to negative integer powers are not allowed.") for k in "iu"}),
    ops.Maximum: ufunc("maximum"),
    ops.Minimum: ufunc("minimum"),
    ops.Neg: ufunc("negative"),
    ops.Abs: ufunc("absolute"),
    ops.Sgn: ufunc("sign"),
    ops.Exp: ufunc("exp"),
    ops.Log: ufunc("log"),
    ops.Sqrt: ufunc("sqrt"),
    ops.Tanh: ufunc("tanh"),
    ops.Sigmoid: Scalar("_sigmoid({0}, {T}(1))", helper="_sigmoid"),
    ops.Eq: ufunc("equal", "common"),
    ops.Neq: ufunc("not_equal", "common"),
    ops.Lt: ufunc("less", "common"),
    ops.Gt: ufunc("greater", "common"),
    ops.Le: ufunc("less_equal", "common"),
    ops.Ge: ufunc("greater_equal", "common"),
    ops.Switch: Scalar("({1} if {0} else {2})", cast="values"),
    ops.Second: Scalar("{1}"),
    ops.Cast: Scalar("{0}", cast=None),
    ops.Expm1: ufunc("expm1"),
    ops.Log1p: ufunc("log1p"),
    ops.Log2: ufunc("log2"),
    ops.Log10: ufunc("log10"),
    ops.Sqr: ufunc("square"),
    ops.Sin: ufunc("sin"),
    ops.Cos: ufunc("cos"),
    ops.Tan: ufunc("tan"),
    ops.Arcsin: ufunc("arcsin"),
    ops.Arccos: ufunc("arccos"),
    ops.Arctan: ufunc("arctan"),
    ops.Sinh: ufunc("sinh"),
    ops.Cosh: ufunc("cosh"),
    ops.Arctanh: ufunc("arctanh"),
    ops.Erf: Scalar("{T}(math.erf(np.float64({0})))"),
    ops.Erfc: Scalar("{T}(math.erfc(np.float64({0})))"),
    ops.Floor: ufunc("floor"),
    ops.Ceil: ufunc("ceil"),
    ops.RoundHalfToEven: ufunc("rint"),
    ops.RoundHalfAwayFromZero: Scalar("_round_away({0})", helper="_round_away"),
    ops.Clip: Scalar("np.minimum(np.maximum({0}, {1}), {2})"),
    ops.BitwiseAnd: Scalar("np.bitwise_and({0}, {1})", by_dtype={"b": "({0} and {1})"}),
    ops.BitwiseOr: Scalar("np.bitwise_or({0}, {1})", by_dtype={"b": "({0} or {1})"}),
    ops.BitwiseXor: Scalar("np.bitwise_xor({0}, {1})", by_dtype={"b": "({0} != {1})"}),
    ops.Invert: Scalar("np.invert({0})", by_dtype={"b": "(not {0})"}),
    ops.IsNan: Scalar("np.isnan({0})", cast=None, by_dtype={k: "False" for k in "biu"}),
    ops.IsInf: Scalar("np.isinf({0})", cast=None, by_dtype={k: "False" for k in "biu"}),
    nnet.Softplus: Scalar("np.logaddexp({T}(0), {0})"),
    nnet.Relu: Scalar("_relu({0}, {1}, {T}(0))", helper="_relu"),
}
