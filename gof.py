"""Theano's ``theano.gof``: the graph's classes, for programs that write their own ops
(``class MyOp(theano.gof.Op)`` returning ``theano.gof.Apply(self, inputs, outputs)``; docs/python-ops.md)."""

from .core.graph import Apply, Constant, FunctionGraph, Op, Variable  # noqa: F401

PureOp = Op  # Theano's base of Op: arignote has one class

__all__ = ["Apply", "Constant", "FunctionGraph", "Op", "PureOp", "Variable"]
