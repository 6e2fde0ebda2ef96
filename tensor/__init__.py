"""The symbolic vocabulary, as Theano programs use it: ``import arignote.tensor as T``."""

from ..core.constructors import *  # noqa: F401,F403  scalar, vector, matrix, ..., fmatrix, dvectors, ...
from ..core.constructors import tensor  # noqa: F401
from ..core.graph import Constant, TensorVariable, Variable, as_tensor_variable, constant  # noqa: F401
from ..core.grad import grad  # noqa: F401
from ..core.ops import (  # noqa: F401
    abs_, add, and_, arccos, arcsin, arctan, arctanh, bitwise_and, bitwise_or, bitwise_xor, cast, ceil, clip,
    cos, cosh, dimshuffle, dot, eq, erf, erfc, exp, expm1, fill, floor, ge, gt, inc_subtensor, int_div, invert,
    isinf, isnan, le, log, log1p, log2, log10, lt, max, maximum, mean, minimum, mod, mul, neg, neq, ones_like,
    or_, outer, pow, reshape, round, second, set_subtensor, sgn, shape, shape_i, sigmoid, sin, sinh, sqr, sqrt,
    sub, sum, switch, tan, tanh, transpose, true_div, where, xor, zeros_like,
)
from ..core.shared import shared  # noqa: F401
from ..core.types import TensorType  # noqa: F401
