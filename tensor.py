"""The symbolic vocabulary, as Theano programs use it: ``import arignote.tensor as T``."""

from .core.constructors import *  # noqa: F401,F403  scalar, vector, matrix, ..., fmatrix, dvectors, ...
from .core.constructors import tensor  # noqa: F401
from .core.graph import Constant, TensorVariable, Variable, as_tensor_variable, constant  # noqa: F401
from .core.grad import grad  # noqa: F401
from .core.ops import (  # noqa: F401
    abs_, add, cast, dimshuffle, dot, eq, exp, fill, ge, gt, int_div, le, log, lt, max, maximum, mean,
    inc_subtensor, minimum, mod, mul, neg, neq, ones_like, outer, pow, reshape, second, set_subtensor, sgn,
    shape, shape_i, sigmoid, sqrt, sub, sum, switch, tanh, transpose, true_div, where, zeros_like,
)
from .core.shared import shared  # noqa: F401
from .core.types import TensorType  # noqa: F401
