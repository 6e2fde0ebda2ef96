"""Theano's ``theano.compile``: the compiler's entry points under the names Theano gives them there
(``theano.compile.function``, ``theano.compile.SharedVariable``, ``theano.compile.In``, ...)."""

from ..core.function import Function, In, Out, UnusedInputError, function  # noqa: F401
from ..core.shared import SharedVariable, shared  # noqa: F401
from .ops import as_op  # noqa: E402,F401  theano.compile.as_op, as Theano's compile package exports it

__all__ = ["function", "Function", "In", "Out", "shared", "SharedVariable", "UnusedInputError", "as_op"]
