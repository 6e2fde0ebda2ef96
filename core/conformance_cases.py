"""The conformance kit's table of cases: at least one per op, with awkward inputs.

One line per case: ``case(OpClass, build, *args)``. ``A(shape..., dtype=, kind=, layout=, bcast=)``
describes an input; see conformance.Arg for the kinds of values and layouts.
"""

import numpy as np

from . import ops as O
from . import linalg as L
from . import random as R
from . import nnet as N
from . import ifelse as F
from . import scan as S
from .conformance import A, case

F64, F32, I8, I32, I64, U8, B = "float64", "float32", "int8", "int32", "int64", "uint8", "bool"
ROW = (True, False)
COL = (False, True)

# ---- elementwise arithmetic: broadcasting, views, every dtype family, specials
case(O.Add, lambda x, y: x + y, A(3, 4), A(1, 4, bcast=ROW))
case(O.Add, lambda x, y: x + y, A(3, 4, dtype=F32, layout="transposed"), A(3, 1, dtype=F32, bcast=COL))
case(O.Add, lambda x, y: x + y, A(5, dtype=I8, kind="int"), A(5, dtype=I32, kind="int", layout="reversed"))
case(O.Add, lambda x, y: x + y, A(0, 3), A(1, 3, bcast=ROW))
case(O.Add, lambda x: x + 2.5, A(4, dtype=F32, kind="special"))
case(O.Sub, lambda x, y: x - y, A(2, 3, layout="strided"), A(3))
case(O.Sub, lambda x, y: x - y, A(4, dtype=U8, kind="index"), A(4, dtype=I64, kind="int"))
case(O.Mul, lambda x, y: x * y, A(2, 3, 4), A(4, dtype=F32))
case(O.Mul, lambda x, y: x * y, A(6, dtype=B, kind="bool"), A(6, dtype=B, kind="bool"))
case(O.Mul, lambda x, y: x * y, A(5, kind="special"), A(5, kind="special"))
case(O.TrueDiv, lambda x, y: x / y, A(3, 3), A(3, 3, kind="nonzero", layout="reversed"))
case(O.TrueDiv, lambda x, y: x / y, A(4, dtype=I32, kind="int"), A(4, dtype=I32, kind="int"), label="int / int with zeros")
case(O.IntDiv, lambda x, y: x // y, A(6, dtype=I64, kind="int"), A(6, dtype=I64, kind="int"), label="int with zeros")
case(O.IntDiv, lambda x, y: x // y, A(6), A(6, kind="nonzero"))
case(O.Mod, lambda x, y: x % y, A(6, dtype=I32, kind="int"), A(6, dtype=I32, kind="int"), label="int with zeros")
case(O.Mod, lambda x, y: x % y, A(2, 3), A(2, 3, kind="nonzero"))
case(O.Pow, lambda x, y: x ** y, A(3, 4, kind="positive"), A(3, 4))
case(O.Pow, lambda x: x ** 3, A(5, dtype=I64, kind="int"))
case(O.Pow, lambda x, y: x ** y, A(4, dtype=F32, kind="special"), A(4, dtype=F32, kind="special"))
case(O.Maximum, lambda x, y: O.maximum(x, y), A(3, 4), A(1, 4, bcast=ROW))
case(O.Maximum, lambda x, y: O.maximum(x, y), A(5, kind="special"), A(5))
case(O.Minimum, lambda x, y: O.minimum(x, y), A(3, 4, layout="transposed"), A(3, 4))
case(O.Minimum, lambda x, y: O.minimum(x, y), A(5, dtype=I8, kind="int"), A(5, dtype=I8, kind="int"))
case(O.Neg, lambda x: -x, A(2, 3, layout="reversed"))
case(O.Neg, lambda x: -x, A(4, dtype=I32, kind="int"))
case(O.Abs, lambda x: abs(x), A(3, 2, kind="nonzero"))
case(O.Abs, lambda x: abs(x), A(5, dtype=I64, kind="int"))
case(O.Sgn, lambda x: O.sgn(x), A(7, kind="special"))
case(O.Sgn, lambda x: O.sgn(x), A(5, dtype=I32, kind="int"))

# ---- float functions (integers compute in float32/float64, never float16)
case(O.Exp, O.exp, A(3, 4))
case(O.Exp, O.exp, A(6, dtype=F32, kind="special"))
case(O.Exp, O.exp, A(4, dtype=I8, kind="int"))
case(O.Log, O.log, A(3, 4, kind="positive", layout="strided"))
case(O.Log, O.log, A(6, kind="special"))
case(O.Sqrt, O.sqrt, A(4, 2, kind="positive"))
case(O.Sqrt, O.sqrt, A(5, dtype=I32, kind="index"))
case(O.Tanh, O.tanh, A(3, 5, dtype=F32))
case(O.Tanh, O.tanh, A(4, kind="large"))
case(O.Sigmoid, O.sigmoid, A(4, 3))
case(O.Sigmoid, O.sigmoid, A(6, kind="large"))
case(O.Sigmoid, O.sigmoid, A(5, dtype=F32, kind="special"))
case(O.Expm1, O.expm1, A(5, kind="unit"))
case(O.Log1p, O.log1p, A(5, kind="unit"))
case(O.Log2, O.log2, A(5, kind="positive"))
case(O.Log10, O.log10, A(5, dtype=F32, kind="positive"))
case(O.Sqr, O.sqr, A(3, 3))
case(O.Sqr, O.sqr, A(4, dtype=I32, kind="int"))
case(O.Sin, O.sin, A(6))
case(O.Cos, O.cos, A(6, dtype=F32))
case(O.Tan, O.tan, A(6, kind="unit"))
case(O.Arcsin, O.arcsin, A(6, kind="unit"))
case(O.Arccos, O.arccos, A(6, kind="unit"))
case(O.Arctan, O.arctan, A(6))
case(O.Sinh, O.sinh, A(6))
case(O.Cosh, O.cosh, A(6))
case(O.Arctanh, O.arctanh, A(6, kind="unit"))
case(O.Erf, O.erf, A(6))
case(O.Erfc, O.erfc, A(6, dtype=F32))
case(O.Floor, O.floor, A(6, kind="special"))
case(O.Ceil, O.ceil, A(6))
case(O.RoundHalfAwayFromZero, O.round, A(7, kind="special"))
case(O.RoundHalfToEven, lambda x: O.round(x, "half_to_even"), A(7, kind="special"))
case(O.Clip, lambda x: O.clip(x, -0.5, 0.5), A(3, 4))
case(O.Clip, lambda x, lo, hi: O.clip(x, lo, hi), A(6), A(6), A(6))
case(O.XlogX, O.xlogx, A(3, 4, kind="positive", layout="transposed"))
case(O.XlogX, O.xlogx, A(9, dtype=F32, kind="special"), label="0 * log(0) is 0, NaN and infinities")
case(O.XlogX, O.xlogx, A(5, dtype=I8, kind="index"))
case(O.XlogY0, O.xlogy0, A(3, 4, kind="index"), A(1, 4, kind="positive", bcast=ROW))
case(O.XlogY0, O.xlogy0, A(9, dtype=F32, kind="special"), A(9, dtype=F32, kind="special"))

# ---- fused elementwise (what the fusion rewrite makes): a multi-output body with broadcasting
def _composite(x, y):
    from .graph import FunctionGraph
    from .types import TensorType

    a, b = TensorType(x.dtype, ())("a"), TensorType(y.dtype, ())("b")
    body = FunctionGraph([a, b], [O.exp(-a * a) * O.sin(b) + O.tanh(a * b), O.switch(a > b, a * 2, b)])
    return O.Composite(body)(x, y)


case(O.Composite, _composite, A(3, 4), A(1, 4, bcast=ROW))
case(O.Composite, _composite, A(5, dtype=F32, layout="reversed"), A(5, dtype=F32, kind="special"))

# ---- comparisons, logic, predicates
case(O.Eq, O.eq, A(5, dtype=I32, kind="index"), A(5, dtype=I32, kind="index"))
case(O.Neq, O.neq, A(5, kind="special"), A(5, kind="special"))
case(O.Lt, lambda x, y: x < y, A(3, 4), A(1, 4, bcast=ROW))
case(O.Gt, lambda x, y: x > y, A(5, dtype=F32), A(5, dtype=F32, layout="reversed"))
case(O.Le, lambda x, y: x <= y, A(5, kind="special"), A(5))
case(O.Ge, lambda x, y: x >= y, A(5, dtype=I8, kind="int"), A(5, dtype=I64, kind="int"))
case(O.BitwiseAnd, lambda x, y: x & y, A(6, dtype=B, kind="bool"), A(6, dtype=B, kind="bool"))
case(O.BitwiseAnd, lambda x, y: x & y, A(6, dtype=I32, kind="int"), A(6, dtype=I32, kind="int"))
case(O.BitwiseOr, lambda x, y: x | y, A(6, dtype=U8, kind="index"), A(6, dtype=U8, kind="index"))
case(O.BitwiseXor, lambda x, y: x ^ y, A(6, dtype=B, kind="bool"), A(6, dtype=B, kind="bool"))
case(O.Invert, lambda x: ~x, A(6, dtype=B, kind="bool"))
case(O.Invert, lambda x: ~x, A(6, dtype=I8, kind="int"))
case(O.IsNan, O.isnan, A(8, kind="special"))
case(O.IsInf, O.isinf, A(8, dtype=F32, kind="special"))
case(O.Switch, lambda c, a, b: O.switch(c, a, b), A(3, 4, dtype=B, kind="bool"), A(3, 4), A(1, 4, bcast=ROW))
case(O.Switch, lambda c, a, b: O.switch(c, a, b), A(5, kind="special"), A(5, dtype=F32), A(5, dtype=F32))
case(O.Second, lambda x, y: O.fill(x, y), A(3, 4), A(1, 1, bcast=(True, True)))
case(O.Cast, lambda x: O.cast(x, "float32"), A(3, 4, layout="transposed"))
case(O.Cast, lambda x: O.cast(x, "int32"), A(6, kind="unit"), label="float to int truncates")
case(O.Cast, lambda x: O.cast(x, "uint8"), A(6, dtype=B, kind="bool"))
case(O.Cast, lambda x: O.cast(x, "bool"), A(6, kind="special"))

# ---- reductions
case(O.Sum, lambda x: O.sum(x, axis=1), A(3, 4, layout="transposed"))
case(O.Sum, lambda x: O.sum(x, axis=(0, 2), keepdims=True), A(2, 3, 4, dtype=F32))
case(O.Sum, lambda x: O.sum(x), A(0, 3))
case(O.Sum, lambda x: O.sum(x, axis=0), A(5, 2, dtype=I8, kind="int"))
case(O.Sum, lambda x: O.sum(x, axis=-1), A(3, 4, dtype=B, kind="bool"))
case(O.Mean, lambda x: O.mean(x, axis=0), A(4, 3, layout="reversed"))
case(O.Mean, lambda x: O.mean(x), A(5, dtype=I32, kind="int"))
case(O.Prod, lambda x: O.prod(x, axis=1), A(3, 4, kind="nonzero"))
case(O.Prod, lambda x: O.prod(x, axis=0), A(3, 2, dtype=I64, kind="int"))
case(O.Max, lambda x: O.max(x, axis=1), A(3, 5, layout="strided"))
case(O.Max, lambda x: O.max(x, axis=0, keepdims=True), A(4, 3, dtype=I8, kind="int"))
case(O.Max, lambda x: O.max(x), A(6, kind="special"))
case(O.Max, lambda x: O.max(x), A(0), raises=ValueError, label="empty input")
case(O.Min, lambda x: O.min(x, axis=(0, 1)), A(2, 3, 2, dtype=F32))
case(O.All, lambda x: O.all(x, axis=1), A(3, 4, dtype=B, kind="bool"))
case(O.Any, lambda x: O.any(x, axis=0), A(3, 4, dtype=I32, kind="index"))
case(O.Argmax, lambda x: O.argmax(x, axis=1), A(4, 5))
case(O.Argmax, lambda x: O.argmax(x), A(3, 4, dtype=I32, kind="index"))
case(O.Argmin, lambda x: O.argmin(x, axis=0, keepdims=True), A(4, 5, layout="transposed"))
case(O.ExtremumMask, lambda x: O.ExtremumMask((1,), False)(x), A(3, 4, dtype=I32, kind="index"))
# a reduction of an elementwise result, computed as it is read (the fusion rewrite makes these)
case(O.FusedReduce, lambda x, y: O.sum((x - y) ** 2, axis=1), A(3, 4, layout="transposed"), A(1, 4, bcast=ROW))
case(O.FusedReduce, lambda x, y: O.mean(x * y, axis=0), A(5, 3, dtype=F32, layout="reversed"), A(5, 3, dtype=F32))
case(O.FusedReduce, lambda x: O.max(O.exp(x), axis=1), A(3, 6, dtype=F32, kind="special"))
case(O.FusedReduce, lambda x: O.min(-x, axis=(0, 1)), A(2, 3, 2, dtype=I8, kind="int"))
case(O.FusedReduce, lambda x, y: O.prod(x + y, axis=0), A(3, 2, dtype=I64, kind="int"), A(3, 2, dtype=I64, kind="int"))
case(O.FusedReduce, lambda x: O.all(x > 0, axis=1), A(3, 4, dtype=I32, kind="int"))
case(O.FusedReduce, lambda x: O.any(O.isnan(x)), A(0, 3))
case(O.FusedReduce, lambda x: O.sum(x * 2, axis=0), A(0, 3))
case(O.FusedReduce, lambda x: O.max(x + 1), A(0), raises=ValueError, label="empty input")

# ---- shapes and construction
case(O.DimShuffle, lambda x: x.dimshuffle(1, "x", 0), A(3, 4, layout="reversed"))
case(O.DimShuffle, lambda x: x.T, A(2, 3, 4, dtype=I64, kind="int"))
case(O.Reshape, lambda x: x.reshape((x.shape[0], -1)), A(3, 2, 2, layout="transposed"))
case(O.Reshape, lambda x: x.reshape((2, 3)), A(3, 2))
case(O.Reshape, lambda x: x.reshape((4, 2)), A(3, 2), raises=ValueError, label="size mismatch")
case(O.Shape, lambda x: O.shape(x), A(0, 3))
case(O.ShapeI, lambda x: x.shape[1] * 2, A(3, 5))
case(O.MakeVector, lambda x: O.stack_scalars([x.sum(), x.max(), 3.0]), A(4))
case(O.Alloc, lambda x, n: O.alloc(x, n, 3), A(3), A(dtype=I64, kind="index"))
case(O.Alloc, lambda x: O.zeros((x.shape[0], 2), "int8") + O.ones(2, "int8"), A(3))
case(O.Alloc, lambda x: O.alloc(x, 4, 3), A(2), raises=ValueError, label="value does not fit the shape")
case(O.ARange, lambda n: O.arange(n), A(dtype=I64, kind="index"))
case(O.ARange, lambda: O.arange(5.0, 1.0, -1.5))
case(O.Join, lambda x, y: O.join(0, x, y), A(2, 3), A(4, 3, layout="reversed"))
case(O.Join, lambda x, y: O.concatenate([x, y], axis=1), A(2, 0), A(2, 3, dtype=F32))
case(O.Join, lambda x, y: O.join(0, x, y), A(2, 3), A(2, 4), raises=ValueError, label="mismatched shapes")
case(O.Rebroadcast, lambda x: O.squeeze(x, 1), A(3, 1))
case(O.Rebroadcast, lambda x: O.addbroadcast(x, 0), A(2, 3), raises=ValueError, label="axis is not 1")
case(O.SpecifyShape, lambda x: O.specify_shape(x, (x.shape[0], 3)), A(2, 3))
case(O.SpecifyShape, lambda x: O.specify_shape(x, (2, 4)), A(2, 3), raises=ValueError, label="mismatch")
case(O.Repeat, lambda x: O.repeat(x, 2, axis=1), A(2, 3))
case(O.Repeat, lambda x, r: O.repeat(x, r, axis=0), A(4, 2), A(4, dtype=I64, kind="index"))

# ---- products
case(O.Dot, O.dot, A(3, 4), A(4, 5, layout="transposed"))
case(O.Dot, O.dot, A(4, dtype=F32), A(4, 3, dtype=F32))
case(O.Dot, O.dot, A(3, 4, layout="reversed"), A(4))
case(O.Dot, O.dot, A(4, layout="strided"), A(4))
case(O.Dot, O.dot, A(0, 4), A(4, 3))
case(O.Dot, O.dot, A(2, 3, dtype=I32, kind="int"), A(3, 2, dtype=I32, kind="int"))
case(O.Dot, O.dot, A(2, 3), A(4, 2), raises=ValueError, label="inner sizes differ")
case(O.Gemm, lambda z, x, y: O.gemm(z, -0.5, x, y, 0.75), A(3, 5), A(3, 4), A(4, 5, layout="transposed"))
case(O.Gemm, lambda z, a, x, y, b: O.gemm(z, a, x, y, b), A(2, 3, dtype=F32, layout="reversed"), A(dtype=F32),
     A(2, 4, dtype=F32, layout="strided"), A(4, 3, dtype=F32), A(dtype=F32))
case(O.Gemm, lambda z, x, y: O.gemm(z, 2.0, x, y, 0.0), A(2, 2, kind="special"), A(2, 3), A(3, 2), label="beta 0 keeps NaN")
case(O.Gemm, lambda z, x, y: O.gemm(z, 0.0, x, y, 1.5), A(2, 2), A(2, 3, kind="special"), A(3, 2), label="alpha 0 keeps NaN")
case(O.Gemm, lambda z, x, y: O.gemm(z, 1.0, x, y, 1.0), A(3, 2), A(3, 0), A(0, 2))
case(O.Gemm, lambda z, x, y: O.gemm(z, 1.0, x, y, 1.0), A(3, 2), A(3, 4), A(5, 2), raises=ValueError, label="inner sizes differ")
case(O.Gemm, lambda z, x, y: O.gemm(z, 1.0, x, y, 1.0), A(3, 2), A(4, 4), A(4, 2), raises=ValueError, label="rows differ")
case(L.BatchedDot, L.batched_dot, A(3, 2, 4), A(3, 4, 5, layout="transposed"))
case(L.BatchedDot, L.batched_dot, A(2, 3, dtype=F32, layout="reversed"), A(2, 3, 4, dtype=F32), label="(B, k)·(B, k, m)")
case(L.BatchedDot, L.batched_dot, A(0, 2, 3), A(0, 3, 2))
case(L.BatchedDot, L.batched_dot, A(2, 2, 0), A(2, 0, 3))
case(L.BatchedDot, L.batched_dot, A(2, 2, 3, dtype=I32, kind="int"), A(2, 3, 2, dtype=I32, kind="int"))
case(L.BatchedDot, L.matmul, A(2, 3, 2, 4, layout="strided"), A(2, 3, 4, 2), label="matmul, 2 batch axes")
case(L.BatchedDot, L.batched_dot, A(2, 3, 4), A(3, 4, 2), raises=ValueError, label="batch sizes differ")
case(L.BatchedDot, L.batched_dot, A(2, 3, 4), A(2, 5, 2), raises=ValueError, label="summed sizes differ")

# ---- indexing
case(O.Subtensor, lambda x, i: x[i:, ::-1], A(4, 3, layout="transposed"), A(dtype=I64, kind="index"))
case(O.Subtensor, lambda x: x[-1, None, 1:3], A(3, 4))
case(O.Subtensor, lambda x: x[5], A(3, 4), raises=IndexError, label="out of range")
case(O.IncSubtensor, lambda x, y: O.inc_subtensor(x[1:, 0], y), A(3, 2), A(2))
case(O.IncSubtensor, lambda x, y: O.set_subtensor(x[::-2], y), A(5, 2, dtype=F32), A(1, 2, dtype=F32, bcast=ROW))
case(O.AdvancedSubtensor, lambda x, i: x[i], A(4, 3), A(5, dtype=I64, kind="index"))
case(O.AdvancedSubtensor, lambda x, y: x[O.arange(y.shape[0]), y], A(4, 4), A(4, dtype=I32, kind="index"))
case(O.AdvancedSubtensor, lambda x: x[x > 0], A(3, 4, layout="reversed"))
case(O.AdvancedSubtensor, lambda x: x[[0, 7]], A(3, 4), raises=IndexError, label="out of range")
case(O.AdvancedIncSubtensor, lambda x, y: O.inc_subtensor(x[[0, 2, 0]], y), A(3, 2), A(3, 2),
     label="repeated indices accumulate")
case(O.AdvancedIncSubtensor, lambda x, y: O.set_subtensor(x[:, [1, 0]], y), A(3, 2), A(3, 2))

# ---- nnet: large logits (+-1e4), specials, layouts; integer labels checked
case(N.Softplus, N.softplus, A(3, 4, kind="large"))
case(N.Softplus, N.softplus, A(9, dtype=F32, kind="special"))
case(N.Relu, N.relu, A(3, 4, layout="transposed"))
case(N.Relu, N.relu, A(3, 4, dtype=F32, kind="special"), A(1, 4, dtype=F32, bcast=ROW), label="leaky, alpha per column")
case(N.Relu, N.relu, A(5, dtype=I32, kind="int"))
case(N.Softmax, N.softmax, A(3, 4, kind="large"))
case(N.Softmax, lambda x: N.softmax(x, axis=0), A(3, 4, dtype=F32, layout="reversed"))
case(N.Softmax, N.softmax, A(5, layout="strided"), label="vector gives 1 x n")
case(N.Softmax, N.softmax, A(0, 4))
case(N.Softmax, N.softmax, A(2, 6, kind="special"))
case(N.LogSoftmax, N.log_softmax, A(3, 4, kind="large"))
case(N.LogSoftmax, lambda x: N.log_softmax(x, axis=(0, 2)), A(2, 3, 4, dtype=F32, layout="transposed"))
case(N.PickPerRow, N.categorical_crossentropy, A(4, 4, kind="positive"), A(4, dtype=I32, kind="index"))
case(N.PickPerRow, N.categorical_crossentropy, A(0, 4), A(0, dtype=I64, kind="index"))
case(N.PickPerRow, lambda p: N.categorical_crossentropy(p, np.array([0, 4, 1])), A(3, 4), raises=IndexError,
     label="label out of range")
case(N.PickPerRow, lambda p: N.categorical_crossentropy(p, np.array([0, -1, 1])), A(3, 4), raises=IndexError,
     label="negative label")
case(N.PickPerRow, lambda p: N.categorical_crossentropy(p, np.array([1])), A(3, 4), raises=ValueError,
     label="one label for 3 rows")
case(N.IncPerRow, lambda x, v, y: N.IncPerRow()(x, v, y), A(4, 4, layout="transposed"), A(4), A(4, dtype=I64, kind="index"))
case(N.IncPerRow, lambda x, v: N.IncPerRow()(x, v, np.array([0, 2, 1], dtype=U8)), A(3, 2, dtype=F32), A(1, bcast=(True,)),
     raises=IndexError, label="label 2 of 2 classes")

# ---- loops and branches (core/scan.py, core/ifelse.py)
case(S.Scan, lambda x: S.map_range(x.shape[0], lambda i: x[i] * x), A(3), grad=False, label="jacobian's loop")
case(S.Scan, lambda x, h0: S.scan(lambda xt, h: O.tanh(0.5 * h + xt), sequences=x, outputs_info=h0)[0],
     A(5, 3, layout="reversed"), A(3), label="vector state, reversed sequence")
case(S.Scan, lambda x, s0: S.scan(lambda xt, s: 0.999 * s + xt, sequences=x, outputs_info=s0)[0][-1],
     A(7, dtype=F32), A(dtype=F32), label="float32 scalar state, last row only")
case(S.Scan, lambda x, a0, w: S.scan(lambda xm1, xp1, a2, a1, w: [a1 * w + a2 * xm1 + xp1, O.sum(a1) * xp1],
                                     sequences=dict(input=x, taps=[-1, 1]),
                                     outputs_info=[dict(initial=a0, taps=[-2, -1]), None], non_sequences=w)[0],
     A(6, 2, layout="strided"), A(2, 2), A(2, kind="unit"), label="sequence and output taps, a mapped output")
case(S.Scan, lambda x, h0, w: S.scan(lambda xt, h, w: O.dot(h, w) + xt, sequences=x, outputs_info=h0, non_sequences=w,
                                     go_backwards=True)[0],
     A(4, 2, 3), A(2, 3), A(3, 3, kind="unit", layout="transposed"), label="matrix state, go_backwards, x_t·W")
case(S.Scan, lambda x: S.scan(lambda xt, s: [s + xt, S.until(s + xt > 2)], sequences=x, outputs_info=O.zeros_like(x[0]))[0],
     A(8, kind="positive"), grad=False, label="while-loop (until)")
case(S.Scan, lambda x, s0: S.scan(lambda s: s * 2, outputs_info=s0, n_steps=x.shape[0] - 3)[0], A(3), A(4, dtype=I64, kind="int"),
     label="zero steps, integer state")
case(S.Scan, lambda x: S.scan(lambda xt: xt * 2, sequences=x, n_steps=4)[0], A(3), raises=ValueError,
     label="a sequence shorter than n_steps")
case(S.Scan, lambda x, i: S.scan(lambda xt: xt[i + 2], sequences=x)[0], A(3, 2), A(dtype=I64, kind="index"),
     raises=IndexError, label="an index out of range at some step")
case(F.IfElse, lambda c, x, y: F.ifelse(O.gt(O.sum(c), 0), x * 2, O.exp(y)), A(2), A(3, 2), A(3, 2, layout="transposed"),
     label="both branches computed from inputs")
case(F.IfElse, lambda x, i: F.ifelse(O.lt(i, x.shape[0]), x[i], O.sum(x)), A(3), A(dtype=I64, kind="int"),
     grad=False, label="the branch not taken would raise")
case(F.IfElse, lambda c, x, y: F.ifelse(c, [x[:1], O.sum(y)], [x, y[0]]),
     A(dtype=B, kind="bool"), A(4), A(2), label="several outputs of different shapes")

# ---- randomness: the one primitive (bit-exact across backends) and the sort it is composed with
_STATE = np.array([0x0123456789ABCDEF, 2**64 - 3], dtype="uint64")  # the counter wraps around
case(R.RandomUniform, lambda x: R.RandomUniform("float64", 2)(_STATE, x.shape), A(3, 4), label="float64, counter wraps")
case(R.RandomUniform, lambda x: R.RandomUniform("float32", 2)(_STATE, x.shape), A(3, 4), label="float32")
case(R.Argsort, lambda x: R.Argsort()(x), A(3, 5, kind="index"), label="ties (stable)")
case(R.Argsort, lambda x: R.Argsort()(x), A(6, kind="special"))

# ---- stabilized softmax + negative log-likelihood (made by the stabilization rewrite)
case(N.SoftmaxCrossentropy, lambda x, y: N.SoftmaxCrossentropy()(x, y), A(4, 5), A(4, dtype=I32, kind="index"))
case(N.SoftmaxCrossentropy, lambda x, y: N.SoftmaxCrossentropy()(x, y), A(3, 4, dtype=F32, kind="large"),
     A(3, dtype=I64, kind="index"))
case(N.SoftmaxCrossentropy, lambda x, y: N.SoftmaxCrossentropy()(x, y), A(2, 4), A(2, dtype=I64, kind="int"),
     raises=IndexError, label="label out of range")
case(N.SoftmaxCrossentropyGrad, lambda x, g, y: N.SoftmaxCrossentropyGrad()(x, g, y), A(4, 5, layout="transposed"), A(4),
     A(4, dtype=I32, kind="index"))
case(N.SoftmaxCrossentropyGrad, lambda x, g, y: N.SoftmaxCrossentropyGrad()(x, g, y), A(3, 4, dtype=F32, kind="large"),
     A(1, dtype=F32, bcast=(True,)), A(3, dtype=U8, kind="index"), label="one gradient for every row")
case(N.SoftmaxCrossentropyGrad, lambda x, g, y: N.SoftmaxCrossentropyGrad()(x, g, y), A(3, 4, kind="special"), A(3),
     A(3, dtype=I64, kind="index"), grad=False)
case(N.SoftmaxCrossentropyGrad, lambda x, g, y: N.SoftmaxCrossentropyGrad()(x, g, y), A(2, 4), A(2), A(2, dtype=I64, kind="int"),
     raises=IndexError, label="label out of range")

# ---- convolutions (NCHW) and pooling: every border rule, strides, dilations, groups, flips, layouts
from . import conv as C  # noqa: E402
from . import pool as P  # noqa: E402


def _conv(**kw):
    return lambda x, w: C.conv2d(x, w, **kw)


def _conv_grad(op_class, size, **props):
    """A gradient op of Corr2d applied directly (its own gradient is checked too)."""
    return lambda a, g: op_class(**props)(a, g, np.array(size, "int64"))


case(C.Corr2d, _conv(), A(2, 3, 6, 5), A(4, 3, 3, 2), label="valid, flipped")
case(C.Corr2d, _conv(border_mode="full", subsample=(2, 1), filter_flip=False), A(2, 2, 5, 4, dtype=F32), A(3, 2, 2, 3, dtype=F32),
     label="full, stride (2, 1), not flipped, float32")
case(C.Corr2d, _conv(border_mode="half", filter_dilation=(2, 1), num_groups=2), A(1, 4, 7, 7), A(6, 2, 3, 3),
     label="half, dilation (2, 1), 2 groups, batch 1")
case(C.Corr2d, _conv(border_mode=((1, 0), (2, 1)), subsample=(2, 3)), A(2, 3, 6, 7, layout="reversed"),
     A(2, 3, 3, 3, layout="strided"), label="asymmetric padding, strides, negative-stride and strided views")
case(C.Corr2d, _conv(border_mode=1), A(2, 3, 4, 4, dtype=F32, layout="transposed"), A(5, 3, 1, 1, dtype=F32),
     label="1x1 kernel, padding 1, transposed input")
case(C.Corr2d, _conv(num_groups=3, subsample=2), A(2, 3, 5, 4), A(3, 1, 5, 4), label="kernel of the input's size, 3 groups")
case(C.Corr2d, _conv(border_mode=(1, 1)), A(1, 2, 3, 3, kind="special"), A(2, 2, 2, 2), grad=False, label="NaN and infinities")
case(C.Corr2d, _conv(), A(0, 2, 4, 4, dtype=F32), A(3, 2, 2, 2, dtype=F32), label="empty batch")
case(C.Corr2d, _conv(), A(1, 2, 3, 4), A(2, 2, 4, 2), raises=ValueError, label="a filter taller than the input")
case(C.Corr2d, _conv(num_groups=2), A(1, 4, 5, 5), A(3, 2, 2, 2), raises=ValueError, label="filters that do not divide into groups")
case(C.Corr2d, _conv(), A(1, 3, 5, 5), A(2, 2, 2, 2), raises=ValueError, label="channels that disagree")
case(C.Corr2dGradInputs, _conv_grad(C.Corr2dGradInputs, (7, 6), pad=((1, 0), (0, 2)), stride=(2, 3), groups=2),
     A(4, 1, 3, 2), A(2, 4, 3, 3, layout="reversed"), label="stride leaves columns unread, 2 groups")
case(C.Corr2dGradInputs, _conv_grad(C.Corr2dGradInputs, (4, 5), pad="full", dilation=(1, 2)), A(2, 3, 2, 2, dtype=F32),
     A(1, 2, 5, 7, dtype=F32), label="full, dilation")
case(C.Corr2dGradInputs, _conv_grad(C.Corr2dGradInputs, (4, 5), pad="full"), A(2, 3, 2, 2), A(1, 2, 4, 4),
     raises=ValueError, label="an output gradient of the wrong shape")
case(C.Corr2dGradWeights, _conv_grad(C.Corr2dGradWeights, (2, 3), pad="half", stride=(1, 2)), A(2, 3, 5, 6, layout="transposed"),
     A(2, 4, 6, 3), label="half, stride")
case(C.Corr2dGradWeights, _conv_grad(C.Corr2dGradWeights, (3, 3), groups=2, dilation=(2, 2)), A(1, 4, 7, 6, dtype=F32),
     A(1, 2, 3, 2, dtype=F32), label="2 groups, dilation")


def _pool(**kw):
    return lambda x: P.pool_2d(x, **{"ignore_border": True, **kw})


def _pool_grad(op_class, **kw):
    op = P.Pool(**kw)
    if op_class is P.AveragePoolGrad:
        return lambda x, g: op_class(*op._props())(x, g)
    return lambda x, g: op_class(*op._props())(x, op(x), g)


case(P.Pool, _pool(ws=(2, 2)), A(2, 3, 4, 6), label="max 2x2")
case(P.Pool, _pool(ws=(3, 2), stride=(1, 2), ignore_border=False), A(2, 5, 5, dtype=F32, layout="reversed"),
     label="max, overlapping rows, partial windows")
case(P.Pool, _pool(ws=(3, 3), pad=(1, 2), stride=(2, 2)), A(1, 2, 5, 5, kind="special"), grad=False, label="max, padding, NaN")
case(P.Pool, _pool(ws=(2, 3), mode="sum", ignore_border=False), A(3, 5, 7, layout="transposed"), label="sum, partial windows")
case(P.Pool, _pool(ws=(3, 3), stride=(2, 1), pad=(1, 1), mode="average_inc_pad"), A(2, 5, 4, dtype=F32), label="average_inc_pad")
case(P.Pool, _pool(ws=(3, 3), stride=(2, 1), pad=(2, 1), mode="average_exc_pad"), A(2, 1, 5, 4, layout="strided"),
     label="average_exc_pad")
case(P.Pool, _pool(ws=(2, 2), mode="average_exc_pad", ignore_border=False), A(3, 3, 5), label="average_exc_pad, partial windows")
case(P.Pool, _pool(ws=(2, 2)), A(2, 5, 4, dtype=I8, kind="int"), label="max of int8")
case(P.Pool, _pool(ws=(2, 1), mode="sum"), A(4, 3, dtype=I32, kind="int"), label="sum of int32, a matrix")
case(P.Pool, _pool(ws=(2, 2)), A(0, 2, 4, 4), label="empty leading axis")
case(P.Pool, _pool(ws=(2, 2), stride=(1, 1)), A(2, 2, 1, 2, 3, 3), label="5 axes")
case(P.MaxPoolGrad, _pool_grad(P.MaxPoolGrad, ws=(2, 2), stride=(1, 1)), A(2, 3, 4, 4, kind="index"), A(2, 3, 3, 3),
     label="ties share the gradient")
case(P.MaxPoolGrad, _pool_grad(P.MaxPoolGrad, ws=(3, 2), pad=(1, 1), ignore_border=True), A(2, 5, 4, dtype=F32),
     A(2, 2, 3, dtype=F32, layout="reversed"), label="padding")
case(P.MaxPoolGrad, _pool_grad(P.MaxPoolGrad, ws=(2, 2)), A(2, 4, 4), A(2, 3, 2), raises=ValueError,
     label="a gradient of the wrong shape")
case(P.MaxPoolGradGrad, lambda x, h: P.MaxPoolGradGrad((2, 3), (1, 2), (0, 0), False, "max")(
    x, P.Pool((2, 3), (1, 2), (0, 0), False, "max")(x), h), A(2, 4, 5, kind="index"), A(2, 4, 5), label="ties, partial windows")
case(P.AveragePoolGrad, _pool_grad(P.AveragePoolGrad, ws=(3, 3), stride=(2, 2), pad=(1, 1), mode="average_inc_pad",
                                   ignore_border=True), A(2, 5, 6), A(2, 3, 3), label="average_inc_pad")
case(P.AveragePoolGrad, _pool_grad(P.AveragePoolGrad, ws=(2, 3), mode="average_exc_pad", ignore_border=False),
     A(1, 3, 5, 7, dtype=F32), A(1, 3, 3, 3, dtype=F32, layout="transposed"), label="average_exc_pad, partial windows")
case(P.AveragePoolGrad, _pool_grad(P.AveragePoolGrad, ws=(2, 2), mode="sum", stride=(1, 1)), A(3, 4, 4), A(3, 3, 3), label="sum")
case(P.Pool, _pool(ws=(3, 2), pad=(1, 1)), A(2, 0, 3), label="an empty axis, padded: no windows")
