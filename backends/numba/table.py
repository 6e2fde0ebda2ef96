"""The Numba backend's one table: from op class to what the generator writes for it.

- ``SCALARS``: elementwise op class -> ``Scalar``, its scalar expression (see ``elemwise.py``). An
  elementwise node, or a fused Composite body of them, becomes one loop nest over it; adding an
  elementwise op is one line here.
- ``EMITTERS``: op class -> ``emit(gen, n, node, args, outs)``, which returns the node's lines of the
  segment (``args``/``outs``: the names of its inputs and outputs) and adds the kernels they call
  (``gen.kernel``). Every op class of ``SCALARS`` has the elementwise emitter.
- ``PYTHON_ONLY``: op class -> why it runs in NumPy (the reference's implementation) between two
  compiled segments; ``python_reason(node)`` says whether a node does (a Scan or IfElse does when an
  op of its inner graphs does: loops.py; an op written in Python, whose ``perform`` the glue calls,
  always does: docs/python-ops.md).
"""

from arignote.core import conv as core_conv, linalg, nnet as core_nnet, ops, pool as core_pool, random as core_random
from arignote.core.ifelse import IfElse
from arignote.core.pyop import is_python_op
from arignote.core.scan import Scan

from . import conv, elemwise, indexing, loops, nnet, pool, products, random, reductions, shapes
from .elemwise import Scalar, ufunc

SCALARS = {
    ops.Add: ufunc("add"),
    ops.Sub: ufunc("subtract"),
    ops.Mul: ufunc("multiply"),
    ops.TrueDiv: ufunc("true_divide"),
    ops.IntDiv: Scalar("np.floor_divide({0}, {1})", helper="_floor_divide",
                       by_dtype={"f": "_floor_divide({0}, {1}, {T}(1), {T}(0.5), {T}(0))",
                                 "i": "{T}(_int_floor_divide({0}, {1}))"}),
    ops.Mod: Scalar("np.remainder({0}, {1})", helper="_remainder",
                    by_dtype={"f": "_remainder({0}, {1}, {T}(0))", "i": "{T}(_int_remainder({0}, {1}))"}),
    ops.Pow: Scalar("np.power({0}, {1})", helper="_int_power", guard={
        k: ("{1} < 0", "Integers to negative integer powers are not allowed.") for k in "iu"},
        by_dtype={"i": "{T}(_int_power(np.int64({0}), np.int64({1}), np.int64(1)))",
                  "u": "{T}(_int_power(np.uint64({0}), np.uint64({1}), np.uint64(1)))"}),
    ops.Maximum: ufunc("maximum"),
    ops.Minimum: ufunc("minimum"),
    ops.Neg: ufunc("negative"),
    ops.Abs: ufunc("absolute"),
    ops.Sgn: Scalar("np.sign({0})", by_dtype={"u": "{T}({0} > 0)"}),  # numba's sign of a uint >= 2**(n-1) is -1
    ops.Exp: ufunc("exp"),
    ops.Log: ufunc("log"),
    ops.Sqrt: ufunc("sqrt"),
    ops.Tanh: ufunc("tanh"),
    ops.Sigmoid: Scalar("_sigmoid({0}, {T}(1))", helper="_sigmoid",
                        vector=("Exp", "_sigmoid_of({vm}(-np.abs({0})), {0}, {T}(1))", "_sigmoid_of")),
    ops.Eq: ufunc("equal"),
    ops.Neq: ufunc("not_equal"),
    ops.Lt: ufunc("less"),
    ops.Gt: ufunc("greater"),
    ops.Le: ufunc("less_equal"),
    ops.Ge: ufunc("greater_equal"),
    ops.Switch: Scalar("({1} if {0} else {2})"),
    ops.Second: Scalar("{1}"),
    ops.Cast: Scalar("{0}"),
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
    ops.IsNan: Scalar("np.isnan({0})", by_dtype={k: "False" for k in "biu"}),
    ops.IsInf: Scalar("np.isinf({0})", by_dtype={k: "False" for k in "biu"}),
    ops.XlogX: Scalar("({T}(0) if {0} == 0 else {0} * np.log({0}))"),
    ops.XlogY0: Scalar("({T}(0) if {0} == 0 else {0} * np.log({1}))"),
    core_nnet.Softplus: Scalar("np.logaddexp({T}(0), {0})"),
    core_nnet.Relu: Scalar("_relu({0}, {1}, {T}(0))", helper="_relu"),
}

EMITTERS = {
    **dict.fromkeys(SCALARS, elemwise.emit),
    ops.Composite: elemwise.emit,
    **dict.fromkeys([ops.Sum, ops.Mean, ops.Prod, ops.Max, ops.Min, ops.All, ops.Any], reductions.reduce),
    ops.FusedReduce: reductions.fused_reduce,
    ops.Argmax: reductions.argmax,
    ops.Argmin: reductions.argmax,
    ops.ExtremumMask: reductions.extremum_mask,
    ops.DimShuffle: shapes.dimshuffle,
    ops.Reshape: shapes.reshape,
    ops.Shape: shapes.shape,
    ops.ShapeI: shapes.shape_i,
    ops.MakeVector: shapes.make_vector,
    ops.Rebroadcast: shapes.rebroadcast,
    ops.SpecifyShape: shapes.specify_shape,
    ops.Alloc: shapes.alloc,
    ops.ARange: shapes.arange,
    ops.Join: shapes.join,
    ops.Repeat: shapes.repeat,
    ops.Subtensor: indexing.subtensor,
    ops.IncSubtensor: indexing.inc_subtensor,
    ops.AdvancedSubtensor: indexing.advanced_subtensor,
    ops.AdvancedIncSubtensor: indexing.advanced_inc_subtensor,
    ops.Dot: products.dot,
    ops.Gemm: products.gemm,
    linalg.BatchedDot: products.batched_dot,
    core_nnet.Softmax: nnet.softmax,
    core_nnet.LogSoftmax: nnet.log_softmax,
    core_nnet.SoftmaxCrossentropy: nnet.softmax_crossentropy,
    core_nnet.SoftmaxCrossentropyGrad: nnet.softmax_crossentropy_grad,
    core_nnet.PickPerRow: nnet.pick_per_row,
    core_nnet.IncPerRow: nnet.inc_per_row,
    core_conv.Corr2d: conv.corr2d,
    core_conv.Corr2dGradInputs: conv.corr2d_grad_inputs,
    core_conv.Corr2dGradWeights: conv.corr2d_grad_weights,
    core_pool.Pool: pool.pool,
    core_pool.MaxPoolGrad: pool.max_pool_grad,
    core_pool.MaxPoolGradGrad: pool.max_pool_grad_grad,
    core_pool.AveragePoolGrad: pool.average_pool_grad,
    core_random.RandomUniform: random.random_uniform,
    core_random.Argsort: random.argsort,
    Scan: loops.scan,
    IfElse: loops.ifelse,
}

# ops done by the Python glue between segments, and why
PYTHON_ONLY = {
    ops.AdvancedSubtensor: "NumPy's advanced indexing (masks, several index arrays) has no njit form; "
                           "one integer vector among full slices is compiled",
    ops.AdvancedIncSubtensor: "np.add.at with masks or several index arrays has no njit form; one integer "
                              "vector among full slices is compiled",
}


def python_reason(node):
    """Why ``node`` runs in NumPy between two segments, or None when it is compiled."""
    kind = type(node.op)
    if kind not in EMITTERS and is_python_op(node.op):
        return "an op written in Python: its perform (core/pyop.py)"
    if kind in (Scan, IfElse):  # compiled, unless an op of their inner graphs runs in NumPy
        return loops.inner_reason(node)
    if kind in PYTHON_ONLY and indexing.one_index_vector(node) is None:
        return PYTHON_ONLY[kind]
    body = node.op.elemwise if kind is ops.FusedReduce else node.op
    if isinstance(body, ops.Elemwise) and not elemwise.templated(body, SCALARS):
        return "a scalar op without an njit template"
    return None
