"""The conformance kit: runs a table of cases on a backend and compares every result, and every
gradient, with the reference backend.

Each case names the op it covers, builds a small graph, and describes its inputs (shape, dtype, the
kind of values, and the memory layout: C order, transposed, reversed or strided views). Tolerances
are per dtype. ``arignote conformance NAME`` prints one row per op; the test suite runs the kit on
every built-in backend and fails when an op of the vocabulary has no case.
"""

import zlib
from dataclasses import dataclass, field

import numpy as np

from .crosscheck import largest_difference
from .errors import UnsupportedOpError
from .graph import Op
from .types import TensorType

# ---------------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Arg:
    """How to make one input: its shape, dtype, kind of values, layout, and broadcastable pattern.

    kinds: normal, positive (0.5..2), unit (-0.9..0.9), nonzero, int (small integers, may be negative),
    index (0..3), bool, special (mixes NaN, +-inf, zeros, huge and tiny values), large (+-1e4).
    layouts: c, transposed (the transpose of a C array), reversed (negative strides on every axis),
    strided (every other element).
    """

    shape: tuple
    dtype: str = "float64"
    kind: str = "normal"
    layout: str = "c"
    broadcastable: tuple = None

    def type(self):
        pattern = self.broadcastable or tuple(False for _ in self.shape)
        return TensorType(self.dtype, pattern)

    def make(self, rng):
        shape = tuple(self.shape)
        base_shape = {"transposed": shape[::-1], "strided": tuple(2 * s for s in shape)}.get(self.layout, shape)
        values = _values(self.kind, base_shape, rng).astype(self.dtype)
        if self.layout == "transposed":
            values = values.T
        elif self.layout == "reversed":
            values = values[tuple(slice(None, None, -1) for _ in shape)]
        elif self.layout == "strided":
            values = values[tuple(slice(None, None, 2) for _ in shape)]
        assert values.shape == shape
        return values


def _values(kind, shape, rng):
    if kind == "normal":
        return rng.normal(size=shape)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "unit":
        return rng.uniform(-0.9, 0.9, size=shape)
    if kind == "nonzero":
        return rng.choice([-1, 1], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    if kind == "int":
        return rng.integers(-5, 6, size=shape)
    if kind == "index":
        return rng.integers(0, 4, size=shape)
    if kind == "bool":
        return rng.random(size=shape) < 0.5
    if kind == "large":
        return rng.choice([-1e4, 1e4, 0.0, 3.0], size=shape)
    if kind == "special":
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e-30, 1.5, -2.5])
        return rng.choice(pool, size=shape)
    raise ValueError(f"unknown kind of values {kind!r}")


def A(*shape, dtype="float64", kind="normal", layout="c", bcast=None):
    """Shorthand for an Arg: ``A(3, 4, dtype="float32", layout="transposed")``."""
    return Arg(tuple(shape), dtype, kind, layout, bcast)


# ---------------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """One check: ``build(*inputs)`` (a variable or a list) for inputs made from ``args``, compared
    with the reference; gradients too when ``grad`` and the output is float. ``raises``: the exception
    type both backends must raise instead. ``tolerance``: {dtype: (rtol, atol)} overrides."""

    op: type
    build: object
    args: list
    grad: bool = True
    raises: type = None
    label: str = ""
    tolerance: dict = field(default_factory=dict)

    @property
    def name(self):
        return f"{self.op.__name__}: {self.label}" if self.label else self.op.__name__


CASES = []


def case(op, build, *args, grad=True, raises=None, label="", tolerance=None):
    """Add a case to the kit (one line per case)."""
    CASES.append(Case(op, build, list(args), grad, raises, label or _describe(args), tolerance or {}))


def _describe(args):
    return ", ".join(f"{a.dtype}{a.shape}" + (f" {a.kind}" if a.kind != "normal" else "")
                     + (f" {a.layout}" if a.layout != "c" else "") for a in args)


# ---------------------------------------------------------------------------------------------------
# The vocabulary


def vocabulary():
    """Every concrete op class that arignote defines (abstract bases excluded)."""
    from . import ops  # noqa: F401  (and the modules that define more ops)
    _import_op_modules()
    found, stack = set(), [Op]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("arignote.core") and not sub.__dict__.get("abstract", False):
                found.add(sub)
    return sorted(found, key=lambda c: c.__name__)


def _import_op_modules():
    import importlib

    for name in ("nnet", "random", "linalg", "scan", "ifelse", "conv", "pool"):
        try:
            importlib.import_module(f"arignote.core.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"arignote.core.{name}":
                raise


def uncovered_ops(cases=None):
    covered = {c.op for c in (CASES if cases is None else cases)}
    return [op for op in vocabulary() if op not in covered]


# ---------------------------------------------------------------------------------------------------
# Running


@dataclass
class CaseResult:
    case: Case
    status: str  # "pass", "fail", "unsupported"
    detail: str = ""


def _compile(inputs, outputs, backend):
    from .function import function

    return function(inputs, outputs, backend=backend, on_unused_input="ignore", check=False)


def _compare(actual, expected, tolerance, what):
    for position, (a, e) in enumerate(zip(actual, expected)):
        problem = largest_difference(a, e, tolerance)
        if problem is not None:
            return f"{what} {position}: {problem}"
    return None


def run_case(case, backend):
    """Run one case on ``backend`` and on the reference; a CaseResult."""
    from . import ops
    from .grad import grad

    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    values = [a.make(rng) for a in case.args]
    inputs = [a.type()(f"in{k}") for k, a in enumerate(case.args)]
    try:
        built = case.build(*inputs)
    except Exception as error:
        return CaseResult(case, "fail", f"building the graph failed: {type(error).__name__}: {error}")
    outputs = list(built) if isinstance(built, (list, tuple)) else [built]
    reference = _compile(inputs, outputs, "reference")

    if case.raises is not None:
        try:
            mine = _compile(inputs, outputs, backend)
        except UnsupportedOpError as error:
            return CaseResult(case, "unsupported", str(error))
        for label, fn in (("reference", reference), (backend, mine)):
            try:
                fn(*[np.array(v, copy=True) for v in values])
            except case.raises:
                continue
            except Exception as error:
                return CaseResult(case, "fail", f"{label} raised {type(error).__name__} instead of "
                                                f"{case.raises.__name__}: {error}")
            return CaseResult(case, "fail", f"{label} did not raise {case.raises.__name__}")
        return CaseResult(case, "pass")

    expected = reference(*[np.array(v, copy=True) for v in values])
    # The backend compiles the outputs and their gradient as one function (one compile per case, which
    # is what the kit's time on a compiling backend is made of): the gradient of sum(output * p) for
    # random projections p, given as inputs shaped like the reference's outputs.
    wrt = [i for i, a in zip(inputs, case.args) if a.dtype.startswith("float")]
    floats = [(o, e) for o, e in zip(outputs, expected) if o.dtype.startswith("float")]
    grads, projections, directions = [], [], []
    if case.grad and wrt and floats:
        cost = None
        for k, (o, e) in enumerate(floats):
            direction = o.type(f"p{k}")
            directions.append(direction)
            projections.append(rng.uniform(-1, 1, size=np.shape(e)).astype(o.dtype))
            term = ops.sum(o * direction)
            cost = term if cost is None else cost + term
        try:
            grads = grad(cost, wrt, disconnected_inputs="ignore")
        except Exception as error:
            return CaseResult(case, "fail", f"building the gradient failed: {type(error).__name__}: {error}")
    try:
        mine = _compile(inputs + directions, outputs + list(grads), backend)
    except UnsupportedOpError as error:
        return CaseResult(case, "unsupported", str(error) if not grads else f"values or gradient: {error}")
    try:
        actual = mine(*values, *projections)
    except Exception as error:
        return CaseResult(case, "fail", f"{backend} raised {type(error).__name__}: {error}")
    problem = _compare(actual[:len(outputs)], expected, case.tolerance, "output")
    if problem or not grads:
        return CaseResult(case, "fail", problem) if problem else CaseResult(case, "pass")
    expected_grad = _compile(inputs + directions, grads, "reference")(
        *[np.array(v, copy=True) for v in values], *projections)
    problem = _compare(actual[len(outputs):], expected_grad, case.tolerance, "gradient of input")
    if problem:
        return CaseResult(case, "fail", problem)
    return CaseResult(case, "pass")


def run_kit(backend, cases=None, only=None):
    """Run the kit on ``backend``; {op class name: [CaseResult, ...]} in vocabulary order."""
    results = {}
    for c in CASES if cases is None else cases:
        if only and c.op.__name__ not in only:
            continue
        results.setdefault(c.op.__name__, []).append(run_case(c, backend))
    return results


def summarize(results):
    """One row per op: (op name, status, detail), status 'pass', 'FAIL' or 'unsupported'."""
    rows = []
    for op_name in sorted(results):
        outcomes = results[op_name]
        failed = [r for r in outcomes if r.status == "fail"]
        unsupported = [r for r in outcomes if r.status == "unsupported"]
        if failed:
            rows.append((op_name, "FAIL", f"{len(failed)}/{len(outcomes)} cases; {failed[0].case.label}: "
                                          f"{failed[0].detail}"))
        elif unsupported:
            rows.append((op_name, "unsupported", unsupported[0].detail))
        else:
            rows.append((op_name, "pass", f"{len(outcomes)} case(s)"))
    return rows


def report(backend, out, only=None):
    """Run the kit and print the table; True when every op passed."""
    results = run_kit(backend, only=only)
    rows = summarize(results)
    width = max([len(r[0]) for r in rows] + [2])
    out.write(f"conformance of backend {backend!r} against the reference ({sum(map(len, results.values()))} cases)\n")
    for name, status, detail in rows:
        out.write(f"{name:<{width}}  {status:<11}  {detail}\n")
    counts = {s: sum(1 for r in rows if r[1] == s) for s in ("pass", "FAIL", "unsupported")}
    missing = [] if only else [op.__name__ for op in uncovered_ops()]
    out.write(f"summary: {counts['pass']} passed, {counts['FAIL']} failed, {counts['unsupported']} unsupported"
              f" of {len(rows)} ops" + (f"; ops without a case: {', '.join(missing)}" if missing else "") + "\n")
    return counts["FAIL"] == 0 and counts["unsupported"] == 0


from .conformance_cases import *  # noqa: E402,F401,F403  (the table fills CASES)
