"""Theano's ``theano.gradient`` module: ``grad``, ``verify_grad``, ``jacobian``, ``hessian``, ``Lop``, ``Rop``."""

from .core.grad import (  # noqa: F401
    DisconnectedInputError, GradientError, Lop, Rop, grad, hessian, jacobian, verify_grad,
)
