"""Theano's ``theano.gradient`` module: ``grad`` and ``verify_grad``."""

from .core.grad import DisconnectedInputError, GradientError, grad, verify_grad  # noqa: F401
