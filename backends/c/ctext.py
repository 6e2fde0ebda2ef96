"""Small pieces of C text every emitter writes: type names, literals, loop nests, shapes in messages."""

import math

import numpy as np

from arignote.core.errors import UnsupportedOpError
# Text not written by arignote (ops' names, where the user built a node) reaches the program only as
# comment(text) or cstring(text): core's one renderer of user text for C (core/sourcetext.py)
from arignote.core.sourcetext import c_comment as comment, c_string as cstring  # noqa: F401

CT = {"bool": "b1", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "u8",
      "uint16": "u16", "uint32": "u32", "uint64": "u64", "float32": "f32", "float64": "f64"}
MAXDIM = 16  # axes an arr_t describes (runtime.h)


def ct(dtype):
    """The C type name (runtime.h's typedefs) of ``dtype``."""
    if str(dtype) not in CT:
        raise UnsupportedOpError(f"the C backend has no type for dtype {dtype}")
    return CT[str(dtype)]


def isfloat(dtype):
    return str(dtype).startswith("float")


def literal(value, dtype):
    """A C literal of ``dtype`` for the Python/NumPy scalar ``value``."""
    dtype = str(dtype)
    v = np.asarray(value).astype(dtype).item()
    if dtype == "bool":
        return "1" if v else "0"
    if isfloat(dtype):
        if math.isfinite(v) and v == int(v) and abs(v) < 2 ** 53 and math.copysign(1, v) == math.copysign(1, int(v)):
            text = str(int(v))  # a whole number reads better, and converts exactly
        else:
            text = "NAN" if math.isnan(v) else ("INFINITY" if v > 0 else "-INFINITY") if math.isinf(v) else float.hex(v)
        return f"(({ct(dtype)}){text})"
    if dtype == "int64" and v == -2 ** 63:
        return "((i64)(-9223372036854775807LL - 1))"
    return f"(({ct(dtype)}){v}{'ULL' if dtype.startswith('u') else 'LL'})"


def indent(text, prefix="    "):
    """Every line of ``text`` with ``prefix`` in front."""
    return "\n".join(prefix + line for line in text.split("\n"))


def hang(head, block, prefix):
    """``block`` starting on the line of ``head`` (``for (...) {``), its other lines after ``prefix``."""
    first, *rest = block.split("\n")
    return "\n".join([head + first] + [prefix + line for line in rest])


def nested(axes, size, body, step="    "):
    """Nested for-loops over ``axes`` (index i<axis>), ``size(axis)`` the bound expression."""
    lines = []
    for depth, a in enumerate(axes):
        lines.append(step * depth + f"for (int64_t i{a} = 0; i{a} < {size(a)}; i{a}++) {{")
    lines.append(indent(body, step * len(axes)))
    for depth in reversed(range(len(axes))):
        lines.append(step * depth + "}")
    return "\n".join(lines)


def offset(v, axes):
    """The element offset of index (i<axis> ...) in the array ``v``."""
    return " + ".join(f"i{a} * {v}.strides[{a}]" for a in axes) or "0"


def shape_text(vars_and_nd):
    """C arguments that print the shapes of the given (name, ndim) arrays with %s."""
    return ", ".join(f"ari_shape(sb{i}, &{v}, {nd})" for i, (v, nd) in enumerate(vars_and_nd))


def shape_buffers(n):
    """The buffers (sb0, sb1, ...) that ari_shape prints shapes into, for messages."""
    return f"char {', '.join(f'sb{i}[128]' for i in range(n))};"


def read_int(v, var, i="0"):
    """The i-th element of an integer vector/scalar as int64."""
    if var.ndim == 0:
        return f"((int64_t)*(const {ct(var.dtype)} *){v}.data)"
    return f"((int64_t)((const {ct(var.dtype)} *){v}.data)[({i}) * {v}.strides[0]])"
