"""The symbolic vocabulary, as Theano programs use it: ``import arignote.tensor as T``."""

from ..core.constructors import *  # noqa: F401,F403  scalar, vector, matrix, ..., fmatrix, dvectors, ...
from ..core.constructors import tensor  # noqa: F401
from ..core.graph import Constant, TensorVariable, Variable, as_tensor_variable, constant  # noqa: F401
from ..core.graph import Constant as TensorConstant  # noqa: F401  Theano's name for a tensor constant's class
from ..core.grad import Lop, Rop, grad, hessian, jacobian  # noqa: F401
from ..core.ops import (  # noqa: F401
    abs_, add, addbroadcast, all, alloc, and_, any, arange, arccos, arcsin, arctan, arctanh, argmax, argmin,
    bitwise_and, bitwise_or, bitwise_xor, cast, ceil, clip, concatenate, cos, cosh, dimshuffle, eq, erf, erfc,
    exp, expand_dims, expm1, fill, flatten, floor, ge, gt, inc_subtensor, int_div, invert, isinf, isnan, join, le,
    log, log1p, log2, log10, lt, max, maximum, mean, min, minimum, mod, mul, neg, neq, ones, ones_like, or_, outer,
    patternbroadcast, pow, prod, repeat, reshape, round, second, set_subtensor, sgn, shape, shape_i, sigmoid, sin,
    sinh, specify_shape, sqr, sqrt, squeeze, stack, std, sub, sum, switch, tan, tanh, tile, transpose, true_div,
    unbroadcast, var, where, xor, zeros, zeros_like,
)
from ..core.linalg import batched_dot, batched_tensordot, dot, matmul, tensordot  # noqa: F401
from ..core.shared import shared  # noqa: F401
from ..core.types import TensorType  # noqa: F401
from ..core.random import argsort, sort  # noqa: F401
from . import nnet, shared_randomstreams, signal  # noqa: E402,F401  T.nnet, T.shared_randomstreams, T.signal
from . import xlogx  # noqa: E402,F401  T.xlogx.xlogx, T.xlogx.xlogy0, and T.xlogx(x) itself
from .xlogx import xlogy0  # noqa: E402,F401
from . import extra_ops  # noqa: E402,F401  T.extra_ops, and the names Theano's tensor takes from it:
from .extra_ops import bartlett, bincount, cumprod, cumsum, fill_diagonal, fill_diagonal_offset  # noqa: E402,F401
