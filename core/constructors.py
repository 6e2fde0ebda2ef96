"""Theano's variable constructors: ``scalar vector matrix row col tensor3 tensor4``, their typed forms
(prefixes b w i l f d for int8 int16 int32 int64 float32 float64) and plural forms.

As in Theano, the singular ones are type objects: ``T.dmatrix`` is ``TensorType(float64, matrix)``, and
calling it makes a variable (``T.dmatrix('W')``); ``T.matrix`` is the type of floatX."""

from .config import config
from .types import TensorType

PATTERNS = {
    "scalar": (),
    "vector": (False,),
    "matrix": (False, False),
    "row": (True, False),
    "col": (False, True),
    "tensor3": (False,) * 3,
    "tensor4": (False,) * 4,
    "tensor5": (False,) * 5,
}
PLURALS = {"scalar": "scalars", "vector": "vectors", "matrix": "matrices", "row": "rows", "col": "cols",
           "tensor3": "tensor3s", "tensor4": "tensor4s", "tensor5": "tensor5s"}
PREFIXES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}


def tensor(dtype=None, broadcastable=(), name=None):
    """A symbolic tensor of ``dtype`` (default floatX) and broadcastable pattern."""
    return TensorType(dtype, broadcastable)(name)


class FloatXTensorType(TensorType):
    """The type behind ``T.matrix`` & co.: a TensorType whose dtype is config.floatX when it is used.

    Calling it makes a variable of floatX (or of ``dtype=``); it prints and compares as the TensorType of
    the current floatX, so ``T.matrix('x').type == T.matrix`` holds under either floatX.
    """

    __slots__ = ("kind",)

    def __init__(self, kind):
        object.__setattr__(self, "broadcastable", PATTERNS[kind])
        object.__setattr__(self, "kind", kind)

    @property
    def dtype(self):
        return config.floatX

    def __call__(self, name=None, dtype=None):
        return TensorType(dtype, self.broadcastable)(name)

    def __reduce__(self):  # pickled by name: it unpickles as the same floatX-following type
        return self.kind


def _single(kind, fixed_dtype):
    """``dmatrix`` is TensorType('float64', (False, False)): callable, printable, comparable, as in Theano."""
    return FloatXTensorType(kind) if fixed_dtype is None else TensorType(fixed_dtype, PATTERNS[kind])


def _plural(single):
    def make(*names, dtype=None):
        """Several variables: one per name, or ``n`` unnamed ones when given an int."""
        if len(names) == 1 and isinstance(names[0], int):
            names = [None] * names[0]
        return [single(n, dtype=dtype) if dtype is not None else single(n) for n in names]
    return make


def _build():
    made = {}
    for kind in PATTERNS:
        for prefix, dtype in [("", None)] + list(PREFIXES.items()):
            single = _single(kind, dtype)
            made[prefix + kind] = single
            made[prefix + PLURALS[kind]] = _plural(single)
    return made


CONSTRUCTORS = _build()
globals().update(CONSTRUCTORS)
__all__ = ["tensor"] + list(CONSTRUCTORS)
