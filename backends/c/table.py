"""The C backend's one table from op class to C.

- ``SCALAR``: each elementwise op as a C expression ``form(T, *args)``, T the C type it computes in
  (``op.compute_dtype``), args its operands already converted to T. Fused loops are made of these;
  adding an elementwise op is adding its line here.
- ``EMIT``: every op to the function writing its block of C, ``emit(g, node, index, ins, outs)``
  (``g`` the Generator, ``ins``/``outs`` the C names of the node's inputs and outputs). Elementwise
  ops (SCALAR's and Composite) all go to ``elemwise.emit_elemwise``.
- ``emitter(op)``: EMIT's entry for the op, or, for an op written in Python that EMIT does not list,
  ``python_ops.emit_python`` (a call back into its perform; docs/python-ops.md).
"""

from arignote.core import conv, linalg, nnet, ops, pool, random as core_random
from arignote.core.ifelse import IfElse
from arignote.core.scan import Scan

from arignote.core.pyop import is_python_op

from . import branches, elemwise, indexing, loops, products, python_ops, random, reductions, shapes
from . import conv as c_conv, pool as c_pool
from . import nnet as c_nnet


def _fn(name):
    """A libm function, its float variant (expf, ...) for f32."""
    return lambda t, a: f"{name}{'f' if t == 'f32' else ''}({a})"


def _float_or_int(float_form, int_form):
    return lambda t, *a: (float_form if t in ("f32", "f64") else int_form)(t, *a)


SCALAR = {
    ops.Add: lambda t, a, b: f"{a} + {b}",
    ops.Sub: lambda t, a, b: f"{a} - {b}",
    ops.Mul: lambda t, a, b: f"{a} * {b}",
    ops.TrueDiv: lambda t, a, b: f"{a} / {b}",
    ops.IntDiv: lambda t, a, b: f"ari_floordiv_{t}({a}, {b})",
    ops.Mod: lambda t, a, b: f"ari_mod_{t}({a}, {b})",
    # integers: a negative exponent sets the loop's flag `negpow` (op.may_fail says when it can)
    ops.Pow: _float_or_int(lambda t, a, b: f"pow{'f' if t == 'f32' else ''}({a}, {b})",
                           lambda t, a, b: f"ari_pow_{t}({a}, {b}, &negpow)"),
    ops.Maximum: _float_or_int(lambda t, a, b: f"ari_max_{t}({a}, {b})", lambda t, a, b: f"({a} >= {b} ? {a} : {b})"),
    ops.Minimum: _float_or_int(lambda t, a, b: f"ari_min_{t}({a}, {b})", lambda t, a, b: f"({a} <= {b} ? {a} : {b})"),
    ops.Neg: lambda t, a: f"-{a}",
    ops.Abs: _float_or_int(_fn("fabs"), lambda t, a: a if t == "b1" or t.startswith("u") else f"({a} < 0 ? -{a} : {a})"),
    ops.Sgn: _float_or_int(lambda t, a: f"ari_sign_{t}({a})", lambda t, a: f"(({a} > 0) - ({a} < 0))"),
    ops.Exp: _fn("exp"), ops.Log: _fn("log"), ops.Sqrt: _fn("sqrt"), ops.Tanh: _fn("tanh"),
    ops.Sigmoid: lambda t, a: f"ari_sigmoid_{t}({a})",
    ops.Eq: lambda t, a, b: f"{a} == {b}", ops.Neq: lambda t, a, b: f"{a} != {b}",
    ops.Lt: lambda t, a, b: f"{a} < {b}", ops.Gt: lambda t, a, b: f"{a} > {b}",
    ops.Le: lambda t, a, b: f"{a} <= {b}", ops.Ge: lambda t, a, b: f"{a} >= {b}",
    ops.Switch: lambda t, c, a, b: f"{c} ? {a} : {b}",
    ops.Second: lambda t, a, b: b,
    ops.Cast: lambda t, a: a,
    ops.Expm1: _fn("expm1"), ops.Log1p: _fn("log1p"), ops.Log2: _fn("log2"), ops.Log10: _fn("log10"),
    ops.Sqr: lambda t, a: f"{a} * {a}",
    ops.Sin: _fn("sin"), ops.Cos: _fn("cos"), ops.Tan: _fn("tan"), ops.Arcsin: _fn("asin"),
    ops.Arccos: _fn("acos"), ops.Arctan: _fn("atan"), ops.Sinh: _fn("sinh"), ops.Cosh: _fn("cosh"),
    ops.Arctanh: _fn("atanh"), ops.Erf: _fn("erf"), ops.Erfc: _fn("erfc"), ops.Floor: _fn("floor"),
    ops.Ceil: _fn("ceil"), ops.RoundHalfToEven: _fn("rint"), ops.RoundHalfAwayFromZero: _fn("round"),
    ops.Clip: _float_or_int(lambda t, x, lo, hi: f"ari_min_{t}(ari_max_{t}({x}, {lo}), {hi})",
                            lambda t, x, lo, hi: f"({x} < {lo} ? {lo} : {x} > {hi} ? {hi} : {x})"),
    ops.BitwiseAnd: lambda t, a, b: f"{a} & {b}", ops.BitwiseOr: lambda t, a, b: f"{a} | {b}",
    ops.BitwiseXor: lambda t, a, b: f"{a} ^ {b}",
    ops.Invert: lambda t, a: f"!{a}" if t == "b1" else f"~{a}",
    ops.IsNan: _float_or_int(lambda t, a: f"isnan({a})", lambda t, a: "0"),
    ops.IsInf: _float_or_int(lambda t, a: f"isinf({a})", lambda t, a: "0"),
    ops.XlogX: lambda t, x: f"({x} == 0 ? 0 : {x} * {_fn('log')(t, x)})",
    ops.XlogY0: lambda t, x, y: f"({x} == 0 ? 0 : {x} * {_fn('log')(t, y)})",
    nnet.Softplus: lambda t, a: f"ari_softplus_{t}({a})",
    nnet.Relu: _float_or_int(lambda t, x, a: f"({x} > 0 ? {x} : {a} == 0 ? ({x} != {x} ? {x} : 0) : {a} * {x})",
                             lambda t, x, a: f"({x} > 0 ? {x} : {a} == 0 ? 0 : {a} * {x})"),
}


EMIT = {
    **dict.fromkeys([*SCALAR, ops.Composite], elemwise.emit_elemwise),
    **dict.fromkeys([ops.Sum, ops.Mean, ops.Max, ops.Min, ops.Prod, ops.All, ops.Any, ops.FusedReduce],
                    reductions.emit_reduce),
    ops.Argmax: reductions.emit_arg, ops.Argmin: reductions.emit_arg, ops.ExtremumMask: reductions.emit_arg,
    ops.DimShuffle: shapes.emit_dimshuffle, ops.Reshape: shapes.emit_reshape,
    ops.Shape: shapes.emit_shape, ops.ShapeI: shapes.emit_shape_i, ops.MakeVector: shapes.emit_make_vector,
    ops.Rebroadcast: shapes.emit_view_check, ops.SpecifyShape: shapes.emit_view_check,
    ops.Alloc: shapes.emit_alloc, ops.ARange: shapes.emit_arange, ops.Join: shapes.emit_join,
    ops.Repeat: shapes.emit_repeat,
    ops.Subtensor: indexing.emit_subtensor, ops.IncSubtensor: indexing.emit_inc_subtensor,
    ops.AdvancedSubtensor: indexing.emit_advanced_subtensor,
    ops.AdvancedIncSubtensor: indexing.emit_advanced_inc_subtensor,
    ops.Dot: products.emit_dot, ops.Gemm: products.emit_gemm, linalg.BatchedDot: products.emit_batched_dot,
    nnet.Softmax: c_nnet.emit_softmax, nnet.LogSoftmax: c_nnet.emit_softmax,
    nnet.SoftmaxCrossentropy: c_nnet.emit_softmax_crossentropy,
    nnet.SoftmaxCrossentropyGrad: c_nnet.emit_softmax_crossentropy_grad,
    nnet.PickPerRow: c_nnet.emit_pick_per_row, nnet.IncPerRow: c_nnet.emit_inc_per_row,
    core_random.RandomUniform: random.emit_random_uniform, core_random.Argsort: random.emit_argsort,
    Scan: loops.emit_scan, IfElse: branches.emit_ifelse,
    conv.Corr2d: c_conv.emit_corr2d, conv.Corr2dGradInputs: c_conv.emit_corr2d_grad_inputs,
    conv.Corr2dGradWeights: c_conv.emit_corr2d_grad_weights,
    pool.Pool: c_pool.emit_pool, pool.MaxPoolGrad: c_pool.emit_max_pool_grad,
    pool.MaxPoolGradGrad: c_pool.emit_max_pool_grad_grad, pool.AveragePoolGrad: c_pool.emit_average_pool_grad,
}


def emitter(op):
    """The function writing ``op``'s block (None when the C backend has none)."""
    found = EMIT.get(type(op))
    if found is None and is_python_op(op):
        return python_ops.emit_python
    return found
