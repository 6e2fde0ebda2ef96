"""Errors raised while a compiled function runs, worded for people: the op, the shapes, the place."""

import numpy as np

from .config import config


class UnsupportedOpError(NotImplementedError):
    """A backend met an op it has no implementation for (raised when compiling, naming both)."""


def describe_values(values):
    return ", ".join(
        f"{np.asarray(v).dtype}{tuple(np.shape(v))}" for v in values
    )


def describe_node(node):
    """How a message names ``node``: its op and where the user built it (for a fused loop, the ops it
    was fused from)."""
    where = node.outputs[0].built_at() if hasattr(node.outputs[0], "built_at") else "?"
    op = getattr(node.op, "elemwise", node.op)  # a FusedReduce names its elementwise part's ops
    body = getattr(op, "fgraph", None)
    if body is not None and type(op).__name__ == "Composite":
        where += "; fused from " + ", ".join(sorted({type(n.op).__name__ for n in body.apply_nodes}))
    return f"{node.op} (built at {where})"


def verbose_detail(node):
    """With Theano's ``config.exception_verbosity = 'high'``, the failing node's graph with its types,
    to end a message with; else nothing."""
    if config.exception_verbosity != "high":
        return ""
    from .printing import debugprint

    return "\nDebugprint of the failing node:\n" + debugprint(node.outputs, depth=4, print_type=True, file="str").rstrip()


def node_failure(node, error, input_values):
    """An exception like ``error`` whose message names the node's op, its inputs' dtypes and shapes,
    and where the user built the node's output. Backends raise it ``from`` the original error."""
    detail = str(error)
    if detail.startswith(f"{node.op}: "):  # the op already named itself
        detail = detail[len(f"{node.op}: "):]
    message = f"{describe_node(node)} with inputs {describe_values(input_values)}: {detail}"
    message += verbose_detail(node)
    kept = (ValueError, IndexError, TypeError, ZeroDivisionError, OverflowError, MemoryError)
    kind = type(error) if isinstance(error, kept) else RuntimeError
    try:
        return kind(message)
    except Exception:  # a subclass that wants other arguments (NumPy's _ArrayMemoryError): its base
        return next((base(message) for base in kept if isinstance(error, base)), RuntimeError(message))
