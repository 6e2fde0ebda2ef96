"""Theano's ``theano.printing`` module: ``debugprint``."""

from .core.printing import debugprint  # noqa: F401
