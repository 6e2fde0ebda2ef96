"""Shared variables: symbolic tensors with a value that persists between function calls."""

import itertools

import numpy as np

from .graph import TensorVariable, Variable
from .types import SUPPORTED_DTYPES, TensorType


class SharedVariable(TensorVariable):
    """A tensor whose value lives outside the graph; compiled functions read it and may update it.

    The value is private: ``get_value()`` returns a copy and ``set_value(v)`` stores a copy, unless
    ``borrow=True`` asks for the internal array itself.
    """

    _serials = itertools.count()  # creation order: scan tells the random states its step function made

    def __init__(self, type, value, name=None, allow_downcast=None):
        super().__init__(type, name=name)
        self.serial = next(SharedVariable._serials)
        self._value = type.filter(value, allow_downcast=bool(allow_downcast), what=self._what())
        # An update applied by every function that uses this variable and does not update it itself
        # (random streams advance their state this way).
        self.default_update = None

    def _what(self):
        return f"shared variable {self.name!r}" if self.name else "shared variable"

    def get_value(self, borrow=False, return_internal_type=False):
        return self._value if borrow else self._value.copy()

    def set_value(self, value, borrow=False):
        array = self.type.filter(value, what=f"set_value of {self._what()}")
        if not borrow and (array is value or np.may_share_memory(array, value)):
            array = array.copy()
        self._value = array

    @property
    def value(self):
        return self.get_value()

    def clone(self):
        """Inside a compiled graph a shared variable is an ordinary input: backends never see it."""
        other = TensorVariable(self.type, name=self.name)
        other.trace = self.trace
        return other

    def __repr__(self):
        return self.name or f"<shared {self.type}>"


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False, broadcastable=None):
    """A shared variable holding ``value`` (an array, a number or a nested list).

    The value is copied unless ``borrow=True``. Every axis is non-broadcastable unless
    ``broadcastable`` says otherwise, as in Theano.
    """
    if isinstance(value, Variable):
        raise TypeError("shared() takes a value, not a symbolic variable")
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.name not in SUPPORTED_DTYPES:
        raise TypeError(f"shared(): arrays of dtype {array.dtype} are not supported "
                        f"(supported: {', '.join(SUPPORTED_DTYPES)})")
    if array is value and not borrow:
        array = array.copy()
    bcast = (False,) * array.ndim if broadcastable is None else tuple(broadcastable)
    return SharedVariable(TensorType(array.dtype, bcast), array, name=name, allow_downcast=allow_downcast)
