"""Errors raised while a compiled function runs, worded for people: the op, the shapes, the place."""

import numpy as np


class UnsupportedOpError(NotImplementedError):
    """A backend met an op it has no implementation for (raised when compiling, naming both)."""


def describe_values(values):
    return ", ".join(
        f"{np.asarray(v).dtype}{tuple(np.shape(v))}" for v in values
    )


def node_failure(node, error, input_values):
    """An exception like ``error`` whose message names the node's op, its inputs' dtypes and shapes,
    and where the user built the node's output. Backends raise it ``from`` the original error."""
    where = node.outputs[0].built_at()
    detail = str(error)
    if detail.startswith(f"{node.op}: "):  # the op already named itself
        detail = detail[len(f"{node.op}: "):]
    body = getattr(node.op, "fgraph", None)
    if body is not None and type(node.op).__name__ == "Composite":  # name the ops the user wrote
        fused = sorted({type(n.op).__name__ for n in body.apply_nodes})
        where = f"{where}; fused from {', '.join(fused)}"
    message = f"{node.op} (built at {where}) with inputs {describe_values(input_values)}: {detail}"
    kind = type(error) if isinstance(error, (ValueError, IndexError, TypeError, ZeroDivisionError,
                                             OverflowError, MemoryError)) else RuntimeError
    try:
        return kind(message)
    except Exception:
        return RuntimeError(message)
