"""Theano's ``theano.tensor.xlogx``: ``xlogx(x)`` is x * log(x) and ``xlogy0(x, y)`` x * log(y), both 0
where x is 0 (the limit, where the product itself would be NaN).

Theano programs call them three ways, and all three work: ``T.xlogx.xlogx(x)`` (this module),
``from arignote.tensor.xlogx import xlogx`` and ``T.xlogx(x)`` (the module is callable).
"""

import sys
import types

from ..core.ops import xlogx, xlogy0  # noqa: F401


class _CallableModule(types.ModuleType):
    def __call__(self, x):
        return xlogx(x)


sys.modules[__name__].__class__ = _CallableModule
