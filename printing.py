"""Theano's ``theano.printing`` module: ``pprint``/``pp``, ``debugprint`` and ``pydotprint``
(see arignote/core/printing.py and arignote/core/drawing.py)."""

from .core.drawing import pydotprint  # noqa: F401
from .core.printing import debugprint, pp, pprint  # noqa: F401

__all__ = ["pprint", "pp", "debugprint", "pydotprint"]
