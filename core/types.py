"""Tensor types: a dtype plus a broadcastable pattern, and the conversion of user values into them."""

import numpy as np

from .config import config

SUPPORTED_DTYPES = (
    "bool",
    "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64",
    "float32", "float64",
)
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = tuple(d for d in SUPPORTED_DTYPES if "int" in d)
DISCRETE_DTYPES = ("bool",) + INT_DTYPES

# Names Theano gives the common patterns in a type's str: others print as "3D" or as the pattern itself.
_PATTERN_NAMES = {
    (): "scalar",
    (False,): "vector",
    (False, False): "matrix",
    (True, False): "row",
    (False, True): "col",
}


def canonical_dtype(dtype):
    """The name of a supported dtype; 'floatX' means config.floatX."""
    if dtype is None or dtype == "floatX":
        return config.floatX
    try:
        name = np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype") from None
    if name not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype {name} is not supported; arignote supports {', '.join(SUPPORTED_DTYPES)}")
    return name


def upcast(*dtypes):
    """NumPy's promotion of several dtypes."""
    return np.result_type(*dtypes).name


def float_of(dtype):
    """The float dtype a float-valued op computes in for an input dtype (Theano's rule: small
    integers go to float32, wide ones to float64, so exp(int8) is never float16)."""
    if dtype in FLOAT_DTYPES:
        return dtype
    if dtype in ("bool", "int8", "uint8", "int16", "uint16"):
        return "float32"
    return "float64"


def is_float(dtype):
    return dtype in FLOAT_DTYPES


class TensorType:
    """The type of a symbolic tensor: dtype and broadcastable pattern (True = that axis is always 1)."""

    __slots__ = ("dtype", "broadcastable")

    def __init__(self, dtype, broadcastable):
        object.__setattr__(self, "dtype", canonical_dtype(dtype))
        object.__setattr__(self, "broadcastable", tuple(bool(b) for b in broadcastable))

    def __setattr__(self, name, value):
        raise AttributeError("TensorType is immutable")

    def __reduce__(self):  # immutable with __slots__: pickle rebuilds it through the constructor
        return (TensorType, (self.dtype, self.broadcastable))

    @property
    def ndim(self):
        return len(self.broadcastable)

    def __eq__(self, other):
        return (
            isinstance(other, TensorType)  # T.matrix, whose dtype follows floatX, is a TensorType too
            and other.dtype == self.dtype
            and other.broadcastable == self.broadcastable
        )

    def __hash__(self):
        return hash((self.dtype, self.broadcastable))

    def __repr__(self):
        """Theano's str of a type: ``TensorType(float64, matrix)``, ``TensorType(float32, 3D)``."""
        pattern = self.broadcastable
        name = _PATTERN_NAMES.get(pattern) or (str(pattern) if any(pattern) else f"{len(pattern)}D")
        return f"TensorType({self.dtype}, {name})"

    def __call__(self, name=None):
        """A new symbolic variable of this type, as in Theano (``T.TensorType('float64', (False,))('x')``)."""
        from .graph import TensorVariable

        return TensorVariable(self, name=name)

    def make_variable(self, name=None):
        """Theano's Type API for ``type(name)``."""
        return self(name)

    def clone(self, dtype=None, broadcastable=None):
        """This type with another dtype or broadcastable pattern (Theano's ``Type.clone``)."""
        return TensorType(self.dtype if dtype is None else dtype,
                          self.broadcastable if broadcastable is None else broadcastable)

    def with_dtype(self, dtype):
        return TensorType(dtype, self.broadcastable)

    def filter(self, value, allow_downcast=False, what="value"):
        """Convert a user value to an ndarray of this type, or raise TypeError naming ``what``.

        Arrays must cast safely (or ``allow_downcast``); Python numbers and lists are accepted when the
        conversion is exact, and Python floats are accepted by every float type, as in Theano.
        """
        if type(value) is np.ndarray and value.dtype.name == self.dtype and value.dtype.isnative:
            array = value  # (another byte order is converted: backends read native numbers)
        else:
            array = self._convert(value, allow_downcast, what)
        if array.ndim != self.ndim:
            raise TypeError(
                f"{what}: expected {self.ndim} dimension(s) for {self}, got an array of shape {array.shape}"
            )
        for axis, (size, bcast) in enumerate(zip(array.shape, self.broadcastable)):
            if bcast and size != 1:
                raise TypeError(
                    f"{what}: axis {axis} of {self} is broadcastable and must have size 1, "
                    f"got an array of shape {array.shape}"
                )
        return array

    def _convert(self, value, allow_downcast, what):
        from_python = not isinstance(value, (np.ndarray, np.generic))
        try:
            array = np.asarray(value)
        except ValueError as error:  # a ragged list: NumPy's words, and which input it was
            raise ValueError(f"{what}: cannot convert {type(value).__name__} to {self}: {error}") from None
        if array.dtype == object or array.dtype.kind not in "biuf":
            raise TypeError(f"{what}: cannot convert {type(value).__name__} of dtype {array.dtype} to {self}")
        source = array.dtype.name
        if allow_downcast or np.can_cast(array.dtype, self.dtype, "safe"):
            with np.errstate(all="ignore"):
                return array.astype(self.dtype)
        if from_python:
            with np.errstate(all="ignore"):
                converted = array.astype(self.dtype)
            python_float_to_float = array.dtype.kind == "f" and is_float(self.dtype)
            exact = np.array_equal(converted.astype(source), array, equal_nan=array.dtype.kind == "f")
            if python_float_to_float or exact:
                return converted
        raise TypeError(
            f"{what}: converting {source} to {self} would lose precision; convert the data yourself "
            f"or pass allow_input_downcast=True to function()"
        )


def dtype_of_python_scalar(value):
    """The dtype arignote gives a bare Python number: bool, int64, or floatX."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, int):
        return "int64"
    return config.floatX
