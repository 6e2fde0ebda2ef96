"""Theano's ``theano.scalar``: ``upcast``, the dtype that combining values of some dtypes gives.

(Theano's scalar types and ops are internal to its elementwise machinery; programs use ``upcast``, as the
deep-learning tutorials' hmc.py does: ``theano.scalar.upcast(a.dtype, b.dtype)``.)
"""

from .core.config import config
from .core.types import canonical_dtype, upcast as _numpy_upcast

__all__ = ["upcast"]


def upcast(dtype, *dtypes):
    """The dtype NumPy's promotion gives ``dtype`` and ``dtypes``, kept at float32 when config.floatX is
    float32 and no float64 is among them (Theano's rule: int64 with float32 stays float32 then)."""
    names = [canonical_dtype(d) for d in (dtype,) + dtypes]
    result = _numpy_upcast(*names)
    if result == "float64" and config.floatX == "float32" and "float64" not in names:
        return "float32"
    return result
