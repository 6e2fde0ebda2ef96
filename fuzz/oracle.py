"""The oracle: a graph run on a backend and on the reference, and a verdict.

A backend agrees with the reference when it returns the same dtypes and shapes, values within the
dtype's tolerance (core/crosscheck.py) with NaN at the same places, and leaves its inputs untouched;
or when both raise an exception of the same built-in type (ValueError, IndexError, MemoryError, ...).

Composed graphs amplify rounding: a sum that cancels, a tangent near its pole. So a disagreement in
values is examined node by node before it is called a bug. The backend computes every intermediate
value of the graph it compiled; each node is then run on the reference *on the backend's own inputs to
that node*, and on those inputs nudged by a relative 1e-10 (float64) or 1e-5 (float32). A node whose
result lies outside what the nudged runs allow is wrong: that is the bug, and the op it names is the
suspect. When every node is right on its own inputs, the difference is rounding carried through the
graph ("drift"), not a failure. Two further allowances, both of them NumPy's own leeway: a reduction
or product of values near overflow may overflow in one summation order and not another, and a float
cast to an integer it does not fit (NaN, infinity, out of range) has no specified value (NumPy warns
"invalid value encountered in cast"): such a graph's values are not compared ("unspecified").
"""

import re
import warnings
from dataclasses import asdict, dataclass

import numpy as np

import arignote
from arignote.backends.reference import evaluate_node, implementation_of
from arignote.core.crosscheck import TOLERANCES, largest_difference
from arignote.core.errors import UnsupportedOpError
from arignote.core.graph import Constant, FunctionGraph
from arignote.core.ops import Elemwise
from arignote.core.plugins import registry

from .graphs import memory_cap

NUDGE = {"float64": 1e-10, "float32": 1e-5}
SLACK = 8  # how many times the nudged runs' spread a node's result may stray beyond it


@dataclass
class Verdict:
    """pass, raised (both raised alike), unspecified, drift, unsupported, or fail (then ``kind`` says
    how: wrong value, wrong exception, raised, did not raise, wrote into an input, crash, hang)."""

    status: str
    kind: str = ""
    detail: str = ""
    suspects: tuple = ()  # names of the ops that may be wrong
    exceptions: tuple = ()  # (the reference's built-in exception type, the backend's exception class)

    @property
    def failed(self):
        return self.status == "fail"

    def headline(self, limit=1000):
        suspects = f" [{', '.join(self.suspects)}]" if self.suspects else ""
        text = f"{self.kind}{suspects}: {self.detail}" if self.failed else f"{self.status}: {self.detail}"
        return text if len(text) <= limit else text[:limit] + " ..."

    def same_bug(self, other):
        """Whether two failures look like one bug: the same kind, the same exceptions, a common suspect."""
        return (self.kind == other.kind and tuple(self.exceptions) == tuple(other.exceptions)
                and (bool(set(self.suspects) & set(other.suspects)) or not (self.suspects or other.suspects)))

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, data):
        return cls(**{**data, "suspects": tuple(data["suspects"]), "exceptions": tuple(data["exceptions"])})


def exception_type(error):
    """The built-in exception type an error is an instance of (NumPy's AxisError is a ValueError)."""
    return next(c for c in type(error).__mro__ if c.__module__ == "builtins").__name__


def _outcome(backend, graph, values):
    """(the Function, or None when compiling raised; its outputs, or the exception raised)."""
    try:
        f = arignote.function(graph.inputs, graph.outputs, backend=backend, on_unused_input="ignore",
                              check=False)
    except UnsupportedOpError:
        raise
    except Exception as error:  # noqa: BLE001  (refusing to compile is an outcome)
        return None, error
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), memory_cap():
            warnings.simplefilter("ignore")
            return f, f(*values)
    except Exception as error:  # noqa: BLE001
        return f, error


def check_graph(graph, backend):
    """Run ``graph`` on ``backend`` and on the reference; a Verdict."""
    reference, expected = _outcome("reference", graph, graph.values())
    values = graph.values()
    before = [v.tobytes() for v in values]
    try:
        f, actual = _outcome(backend, graph, values)
    except UnsupportedOpError as error:
        return Verdict("unsupported", detail=str(error))
    if isinstance(expected, Exception) or isinstance(actual, Exception):
        mine = exception_type(actual) if isinstance(actual, Exception) else None
        theirs = exception_type(expected) if isinstance(expected, Exception) else None
        if mine == theirs:
            return Verdict("raised", detail=f"both raised {mine}")
        # the same bug: the same exception types, and a common op named by the message (node_failure's)
        exceptions = (theirs or "", type(actual).__name__ if mine else "")
        named = _named_ops(actual if mine else expected)
        if theirs is None:
            return Verdict("fail", "raised", f"{type(actual).__name__}: {_plain(actual)}", named, exceptions)
        if mine is None:
            return Verdict("fail", "did not raise", f"the reference raised {type(expected).__name__}: "
                                                    f"{_plain(expected)}", named, exceptions)
        return Verdict("fail", "wrong exception", f"{type(actual).__name__} ({_plain(actual)}) where the reference "
                                                  f"raised {type(expected).__name__} ({_plain(expected)})", named,
                       exceptions)
    written = [k for k, (v, b) in enumerate(zip(values, before)) if v.tobytes() != b]
    if written:
        names = ", ".join(graph.specs[k].name for k in written)
        return Verdict("fail", "wrote into an input", f"input(s) {names} changed", tuple(graph.op_names()))
    if _unspecified(reference, graph.values()):
        return Verdict("unspecified", detail="a float cast to an integer it does not fit")
    problems = [f"output {k}: {p}" for k, (a, e) in enumerate(zip(actual, expected))
                if (p := largest_difference(a, e)) is not None]
    if not problems:
        return Verdict("pass")
    return _diagnose(f, backend, values, expected, "; ".join(problems))


def _plain(error, limit=600):
    """An error's message without terminal colours (Numba's), cut to ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    return text if len(text) <= limit else text[:limit] + " ..."


def _named_ops(error):
    """The ops an error message names first (node_failure's messages start with the op)."""
    text = _plain(error).split(" (built at", 1)[0].split("\n", 1)[0]
    return tuple(name for name in _vocabulary_names() if re.search(rf"\b{name}\b", text))


def _vocabulary_names():
    from arignote.core.conformance import vocabulary

    return [op.__name__ for op in vocabulary()]


def _unspecified(reference, values):
    """Whether the reference's run casts a float to an integer it does not fit (NumPy warns)."""
    fgraph = reference.maker.fgraph
    store = {id(v): a for v, a in zip(fgraph.inputs, reference._arguments(values, {}))}
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore", invalid="warn"):
        warnings.simplefilter("always")
        for node in fgraph.apply_nodes:
            args = [i.data if isinstance(i, Constant) else store[id(i)] for i in node.inputs]
            try:
                results = implementation_of(node.op)(node, *args)
            except Exception:  # noqa: BLE001  (it did not raise when run whole: nothing to learn)
                return False
            results = (results,) if len(node.outputs) == 1 else results
            for var, value in zip(node.outputs, results):
                store[id(var)] = np.asarray(value, dtype=var.dtype)
    return any("in cast" in str(w.message) for w in caught)


def _op_names(op):
    """The op's class name; for fused work (Composite, FusedReduce), the ops it was made from."""
    if type(op).__name__ == "FusedReduce":
        return list(dict.fromkeys(_op_names(op.reduce) + _op_names(op.elemwise)))
    if type(op).__name__ == "Composite":
        return sorted({n for node in op.fgraph.apply_nodes for n in _op_names(node.op)})
    return [type(op).__name__]


def _diagnose(f, backend, values, expected, problems):
    """A wrong value or drift: find the first node of the compiled graph that is wrong on its inputs."""
    fgraph = f.maker.fgraph
    nodes = fgraph.apply_nodes
    everything = [o for node in nodes for o in node.outputs]
    every_op = tuple(dict.fromkeys(n for node in nodes for n in _op_names(node.op)))
    inputs = f._arguments(values, {})
    try:
        program = registry.get(backend).compile(FunctionGraph(fgraph.inputs, everything))
        with warnings.catch_warnings(), np.errstate(all="ignore"), memory_cap():
            warnings.simplefilter("ignore")
            got = program([np.array(v, copy=True) for v in inputs])
    except Exception as error:  # noqa: BLE001
        return Verdict("fail", "wrong value", f"{problems} (every node's value could not be had to find the wrong "
                                              f"one: {type(error).__name__}: {error})", every_op)
    store = {id(v): a for v, a in zip(fgraph.inputs, inputs)}
    store.update((id(v), a) for v, a in zip(everything, got))
    for node in nodes:
        args = [i.data if isinstance(i, Constant) else store[id(i)] for i in node.inputs]
        problem = _wrong_on_its_inputs(node, args, [store[id(o)] for o in node.outputs])
        if problem:
            shapes = ", ".join(f"{a.dtype}{a.shape}" for a in map(np.asarray, args))
            return Verdict("fail", "wrong value", f"{node.op} on ({shapes}): {problem} [the graph: {problems}]",
                           tuple(_op_names(node.op)))
    final = [o.data if isinstance(o, Constant) else store[id(o)] for o in fgraph.outputs]
    if any(largest_difference(a, e) is not None for a, e in zip(final, expected)):
        return Verdict("drift", detail=f"every node is right on its own inputs: {problems}")
    return Verdict("fail", "wrong value", f"{problems}; only as compiled whole (every node is right when each "
                                          "value is an output)", every_op)


def _wrong_on_its_inputs(node, args, mine):
    """None when the backend's outputs of ``node`` are what the reference makes of the same inputs
    (give or take what nudging those inputs does); else what is wrong."""
    try:
        expected = evaluate_node(node, args)
    except Exception as error:  # noqa: BLE001
        return f"the reference raises {type(error).__name__} on these inputs: {error}"
    floats = [k for k, a in enumerate(args) if np.asarray(a).dtype.name in NUDGE and np.size(a)]
    nudged, rng = [], np.random.default_rng(0)
    for _ in range(2 if floats else 0):
        moved = list(args)
        for k in floats:
            a = np.asarray(args[k])
            with np.errstate(all="ignore"):  # the largest floats nudged up overflow: so do they in the backend
                moved[k] = (a * (1 + NUDGE[a.dtype.name] * rng.uniform(-1, 1, a.shape))).astype(a.dtype)
        try:
            nudged.append(evaluate_node(node, moved))
        except Exception:  # noqa: BLE001
            continue
    near_overflow = not isinstance(node.op, Elemwise) and any(
        np.any(np.abs(np.asarray(args[k])[np.isfinite(args[k])]) >= np.sqrt(np.finfo(np.asarray(args[k]).dtype).max))
        for k in floats)
    tolerance = _loosest_tolerance(node)
    for position, (b, e) in enumerate(zip(mine, expected)):
        b = np.asarray(b)
        samples = [n[position] for n in nudged if np.shape(n[position]) == e.shape]
        if b.dtype != e.dtype or b.shape != e.shape or not _allowed(b, e, samples, near_overflow, tolerance).all():
            return f"output {position}: {largest_difference(b, e)}"
    return None


def _loosest_tolerance(node):
    """The tolerance of the least precise float a node computes in: a fused loop's float32 step whose
    result is cast to float64 rounds like float32 (and libraries round float32 functions differently)."""
    variables = list(node.inputs) + list(node.outputs)
    for part in (node.op, getattr(node.op, "elemwise", None)):
        body = getattr(part, "fgraph", None) if type(part).__name__ == "Composite" else None
        if body is not None:
            variables += [v for n in body.apply_nodes for v in n.outputs]
    floats = [TOLERANCES[v.dtype] for v in variables if getattr(v, "dtype", None) in TOLERANCES]
    return max(floats) if floats else None


def _allowed(b, e, samples, near_overflow, tolerance=None):
    """Per element: whether ``b`` is the reference's ``e``, or within what the nudged ``samples`` allow
    (and ``tolerance``, (rtol, atol), or the dtype's)."""
    if b.size == 0:
        return np.ones(b.shape, bool)
    if b.dtype.kind != "f":
        ok = b == e
        for s in samples:
            ok |= b == s
        return ok
    rtol, atol = max(tolerance or (0, 0), TOLERANCES[b.dtype.name])
    stack = np.stack([e] + samples).astype("float64")
    with np.errstate(all="ignore"):
        lo, hi = np.fmin.reduce(stack), np.fmax.reduce(stack)
        slack = atol + rtol * np.maximum(np.abs(lo), np.abs(hi)) + SLACK * (hi - lo)
        within = (b >= lo - slack) & (b <= hi + slack)
        may_be_nan = np.isnan(stack).any(axis=0)
        may_be_number = (~np.isnan(stack)).any(axis=0)
        ok = (b == e) | (np.isnan(b) & may_be_nan) | (~np.isnan(b) & may_be_number & within)
    if near_overflow:
        ok |= ~np.isfinite(b) | ~np.isfinite(e)
    return ok
