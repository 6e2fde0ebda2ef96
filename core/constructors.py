"""Theano's variable constructors: ``scalar vector matrix row col tensor3 tensor4``, their typed forms
(prefixes b w i l f d for int8 int16 int32 int64 float32 float64) and plural forms."""

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


def _single(kind, fixed_dtype):
    pattern = PATTERNS[kind]

    if fixed_dtype is None:
        def make(name=None, dtype=None):
            return TensorType(dtype, pattern)(name)
    else:
        def make(name=None):
            return TensorType(fixed_dtype, pattern)(name)
    make.__doc__ = f"A symbolic {kind} of dtype {fixed_dtype or 'floatX (or dtype=)'}."
    return make


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
