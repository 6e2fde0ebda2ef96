"""Theano's ``theano.ifelse``: ``from arignote.ifelse import ifelse``. Only the branch taken runs."""

from .core.ifelse import IfElse, ifelse  # noqa: F401
