"""Random well-typed graphs, composed from the conformance kit's cases.

A graph is one to a few *steps*. Each step is a case of the kit (core/conformance_cases.py has at least
one per op, so the whole vocabulary is drawn from), applied to inputs that are either fresh or values
the graph already has of the same type and shape (earlier steps' results, or an input used twice).
The kit knows how each op is built and on what; the fuzzer adds what no single case has:

- composition: one step's result feeds the next (fusion, buffer reuse and aliasing get exercised);
- awkward layouts for every fresh input: Fortran order, negative strides on some axes, every other
  element, zero strides (a broadcast view), an offset view, unaligned data, non-native byte order,
  read-only memory;
- awkward values: NaN, infinities, the largest and smallest (subnormal) floats, the extreme integers,
  indices out of range; other dtypes of the same family; a size of the case changed (to 0, 1, ...);
- a gradient: of a scalar cost (the sum of some float outputs times random weights) with respect to
  every float input.

Every decision is a small integer taken from a ``Choices`` object: Hypothesis's (which then shrinks a
failing graph by shrinking its decisions, 0 being the plain option), a seeded generator's, or a record
replayed (how a worker process rebuilds its parent's graph). Each step is evaluated on the reference as
the graph grows: the shapes it learns choose the values later steps may reuse, and a step the reference
refuses is kept only now and then (both backends must then raise the same exception).
"""

import contextlib
import random
import warnings
from dataclasses import dataclass, field

import numpy as np

import arignote
from arignote.core import conformance, ops
from arignote.core.types import TensorType

from .reproducer import builder_text

MAX_STEPS = 4
MAX_ELEMENTS = 20_000  # a step whose values are larger is drawn again: graphs stay small and fast
MEMORY_HEADROOM = 2 << 30  # bytes an evaluation may allocate (an impossible size fails, not the machine)


class Choices:
    """Where a graph's decisions come from: ``integer(lo, hi)`` (inclusive); every value is recorded."""

    def __init__(self, draw):
        self._draw = draw
        self.record = []

    @classmethod
    def seeded(cls, seed):
        return cls(random.Random(seed).randint)

    @classmethod
    def replay(cls, record):
        values = iter(record)
        return cls(lambda lo, hi: min(max(next(values, lo), lo), hi))

    @classmethod
    def hypothesis(cls, draw):
        """From a Hypothesis ``draw`` (inside ``st.composite``)."""
        from hypothesis import strategies as st

        return cls(lambda lo, hi: draw(st.integers(lo, hi)))

    def integer(self, lo, hi):
        value = self._draw(lo, hi)
        self.record.append(value)
        return value

    def pick(self, options):
        return options[self.integer(0, len(options) - 1)]

    def chance(self, percent):
        """True with about this probability; shrinks to False."""
        return self.integer(0, 99) >= 100 - percent


# ---------------------------------------------------------------------------------------------------
# Fresh inputs: dtype, values, layout

FAMILIES = [("float64", "float32"), ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"),
            ("bool",)]
FLOAT_KINDS = ("normal", "special", "decimal", "huge", "tiny", "mixed", "large", "unit", "positive", "nonzero")
DECIMALS = [0.1, 0.2, 0.3, 0.7, 1.0, 3.0, 7.0, 10.0, 2.5, 1e-3, -0.1, -0.3, -1.0, -7.0, -2.5, -1e-3]
KINDS = {"int": ("int", "extreme", "index"), "index": ("index", "wild", "enormous")}  # integers, by the case's kind


def _values(kind, shape, dtype, rng):
    """Values of a kind (conformance.Arg's kinds, and a few more) for a dtype."""
    dtype = np.dtype(dtype)
    if kind in ("huge", "tiny", "mixed", "decimal"):  # decimal: ratios near integers (1.0 // 0.1 is 9.0)
        info = np.finfo(dtype)
        pools = {"huge": [info.max, -info.max, info.max / 3, -1e-3 * info.max, 1.0, -2.0],
                 "tiny": [info.tiny, -info.tiny, info.smallest_subnormal, -3 * info.smallest_subnormal,
                          info.tiny / 1000, 0.0, -0.0, 1.0], "decimal": DECIMALS}
        pool = pools.get(kind) or pools["huge"] + pools["tiny"] + DECIMALS + [np.nan, np.inf, -np.inf]
        return rng.choice(np.array(pool, dtype), size=shape)
    if kind == "extreme":
        info = np.iinfo(dtype)
        pool = [info.min, info.max, info.max - 1, 0, 1] + ([-1, info.min + 1] if info.min else [2])
        return rng.choice(np.array(pool, dtype), size=shape)
    if kind == "wild":  # indices and sizes slightly out of range, some negative
        return rng.integers(-4 if dtype.kind == "i" else 0, 9, size=shape).astype(dtype)
    if kind == "enormous":  # indices and sizes past what memory holds or 64 bits count (memory_cap)
        top = int(np.iinfo(dtype).max)
        pool = [0, 1, 3] + [v for v in (2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, top) if v <= top]
        return rng.choice(np.array(pool, dtype), size=shape)
    values = conformance._values(kind, shape, rng)
    if dtype.kind == "u":
        values = values.astype("int64")  # negative integers wrap around, as NumPy's astype does
    return values.astype(dtype)


def _family(dtype):
    return next(f for f in FAMILIES if dtype in f)


@dataclass
class InputSpec:
    """How one fresh input's value is made: a base array of ``base_shape`` and the Python expression
    ``view`` (of ``b``) that gives it its layout."""

    name: str
    dtype: str
    kind: str
    seed: int
    base_shape: tuple
    view: str

    def base(self):
        return _values(self.kind, self.base_shape, self.dtype, np.random.default_rng(self.seed))

    def make(self):
        return eval(self.view, {"np": np, "b": self.base()})  # noqa: S307  (our own text, see _layout)


def _layout(choices, shape):
    """(base shape, view of ``b``): a layout for an array of ``shape``; choice 0 is C order."""
    nd = len(shape)
    names = ["c", "unaligned", "byteswapped", "readonly"] + (
        ["reversed", "strided", "broadcast", "offset"] + (["fortran"] if nd > 1 else []) if nd else [])
    name = choices.pick(names) if choices.chance(60) else "c"
    if name in ("reversed", "strided", "broadcast", "offset"):  # on some axes (all, if none is drawn)
        axes = [a for a in range(nd) if choices.chance(60)] or list(range(nd))

    def index(per_axis):
        return "b[" + ", ".join(per_axis(a) for a in range(nd)) + "]"

    if name == "reversed":
        return shape, index(lambda a: "::-1" if a in axes else ":")
    if name == "strided":
        steps = {a: choices.pick([2, -2, 3]) for a in axes}
        base = tuple(s * abs(steps.get(a, 1)) for a, s in enumerate(shape))
        return base, index(lambda a: f"::{steps[a]}" if a in steps else ":")
    if name == "broadcast":
        return tuple(1 if a in axes else s for a, s in enumerate(shape)), f"np.broadcast_to(b, {shape!r})"
    if name == "offset":
        return tuple(s + 1 for s in shape), index(lambda a: "1:" if a in axes else ":")
    if name == "fortran":
        return shape, "np.asfortranarray(b)"
    if name == "unaligned":
        return shape, f"np.frombuffer(bytearray(1) + b.tobytes(), b.dtype, offset=1).reshape({shape!r})"
    if name == "byteswapped":
        return shape, "b.astype(b.dtype.newbyteorder())"
    if name == "readonly":
        return shape, "np.lib.stride_tricks.as_strided(b, writeable=False)"
    return shape, "b"


def _fresh_spec(choices, name, dtype, kind, shape, index_like):
    """An input for a case's argument of ``dtype`` and ``kind``: now and then another dtype (of the
    same family, or any), other values, and a layout."""
    if choices.chance(20):
        dtype = choices.pick(_family(dtype) if choices.chance(50) else sum(FAMILIES, ()))
    family = _family(dtype)
    if family[0] == "float64":
        kind = choices.pick(FLOAT_KINDS) if choices.chance(50) else kind
    elif family[0] == "int8":
        options = KINDS["index" if index_like else "int"]
        kind = choices.pick(options) if choices.chance(25 if index_like else 40) else ("index" if index_like else "int")
    else:
        kind = "bool"
    base_shape, view = _layout(choices, shape)
    return InputSpec(name, dtype, kind, choices.integer(0, 2**16 - 1), base_shape, view)


# ---------------------------------------------------------------------------------------------------
# Graphs


@dataclass
class Value:
    """Something a step may take: a variable, how the reproducer names it (``s1[0]``), the name of the
    step or input it comes from (``s1``), its shape on the reference."""

    var: object
    text: str
    name: str
    shape: tuple

    @property
    def is_result(self):
        return self.name.startswith("s")


@dataclass
class Step:
    case: object
    name: str
    lines: list  # the reproducer's lines: its fresh inputs, then the step
    reads: set  # the names of the steps and inputs it takes


@dataclass
class FuzzGraph:
    """A drawn graph: symbolic inputs and outputs, how to make the inputs' values, and the lines of
    Python that build it (for a reproducer)."""

    inputs: list = field(default_factory=list)
    specs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    n_values: int = 0  # outputs before the gradients
    raises: bool = False  # the reference refused it while it was drawn
    record: list = field(default_factory=list)

    def values(self):
        return [spec.make() for spec in self.specs]

    def op_names(self):
        return [step.case.op.__name__ for step in self.steps]

    def identity(self):
        """What decides the graph's outcome: its text and its inputs' recipes."""
        return tuple(self.lines), tuple((s.dtype, s.kind, s.seed, s.base_shape, s.view) for s in self.specs)

    def __repr__(self):
        gradient = f" + {len(self.outputs) - self.n_values} gradient(s)" if len(self.outputs) > self.n_values else ""
        return (f"<FuzzGraph {' -> '.join(self.op_names())}: {len(self.specs)} input(s), "
                f"{self.n_values} output(s){gradient}>")


@contextlib.contextmanager
def memory_cap(headroom=MEMORY_HEADROOM):
    """Let the process allocate at most ``headroom`` more bytes (Linux): an impossible size then fails
    with MemoryError instead of taking the machine's memory."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            current = int(f.read().split()[0]) * resource.getpagesize()
        saved = resource.getrlimit(resource.RLIMIT_AS)
        limit = current + headroom
        if saved[1] != resource.RLIM_INFINITY:
            limit = min(limit, saved[1])
        resource.setrlimit(resource.RLIMIT_AS, (limit, saved[1]))
    except (ImportError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, saved)


def evaluate(inputs, outputs, values):
    """The reference's values of ``outputs``, or the exception it raises."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"), memory_cap():
            warnings.simplefilter("ignore")
            f = arignote.function(inputs, outputs, backend="reference", on_unused_input="ignore", check=False)
            return f(*values)
    except Exception as error:  # noqa: BLE001  (a refusal is an outcome)
        return error


def _cases(ops_wanted):
    """The kit's cases grouped by op (of ``ops_wanted`` only, if given), ops in name order."""
    by_op = {}
    for c in conformance.CASES:
        if not ops_wanted or c.op.__name__ in ops_wanted:
            by_op.setdefault(c.op.__name__, []).append(c)
    if not by_op:
        raise ValueError(f"no conformance case for the ops {sorted(ops_wanted)}")
    return [by_op[name] for name in sorted(by_op)]


def draw_graph(choices, ops_wanted=None, max_steps=MAX_STEPS):
    """A random graph made of conformance cases (of ``ops_wanted`` only, if given)."""
    table = _cases(ops_wanted)
    graph = FuzzGraph()
    pool = []  # Values later steps may take
    known = []  # the reference's values of the graph's inputs, in order
    results = []  # each step's Values
    for number in range(max_steps):
        if number and not choices.chance(70):  # (a flag per step, not a count: steps shrink one by one)
            break
        for _attempt in range(4):
            chaining = pool and choices.chance(70)  # a case that can take an earlier step's result
            taking = [c for group in table for c in group if _takes_from(c, pool)] if chaining else []
            case = choices.pick(taking) if taking else choices.pick(choices.pick(table))
            added = _try_step(choices, graph, pool, known, case)
            if added is not None:
                results.append(added)
                break
        if graph.raises:
            break
    if not graph.steps:  # no drawn step could be built: the table's first case, plainly (its own record)
        return draw_graph(Choices.replay([]), ops_wanted, max_steps)
    # the last step's results, and now and then an earlier one (else only what later steps read)
    chosen = [v for values in results[:-1] for v in values if choices.chance(35)] + results[-1]
    _prune(graph, known, {v.name for v in chosen})
    graph.outputs = [v.var for v in chosen]
    graph.n_values = len(chosen)
    graph.lines.append(f"outputs = [{', '.join(v.text for v in chosen)}]")
    if not graph.raises and choices.chance(60):
        _add_gradient(choices, graph, known, chosen)
    graph.record = choices.record
    return graph


def _prune(graph, known, live):
    """Drop the steps no output needs, and the inputs only they read: what the backend compiles is the
    same, and a reproducer shows only what matters."""
    for step in reversed(graph.steps):
        if step.name in live:
            live |= step.reads
    graph.steps = [step for step in graph.steps if step.name in live]
    kept = [k for k, spec in enumerate(graph.specs) if spec.name in live]
    graph.inputs = [graph.inputs[k] for k in kept]
    graph.specs = [graph.specs[k] for k in kept]
    known[:] = [known[k] for k in kept]
    graph.lines = [line for step in graph.steps for line in step.lines]


def _fit(shape, broadcastable, target, mapping, decided):
    """The size mapping under which a case's ``shape`` becomes ``target`` (extending ``mapping``
    without changing the sizes of arguments already ``decided``), or None."""
    if len(shape) != len(target):
        return None
    mapping = dict(mapping)
    for old, new, fixed in zip(shape, target, broadcastable):
        if fixed or mapping.get(old, old) == new:
            continue
        if old in mapping or old in decided:
            return None
        mapping[old] = new
    return mapping


def _takes_from(case, pool):
    """Whether some argument of ``case`` can take a result of an earlier step."""
    return any(v.var.broadcastable == a.type().broadcastable and _fit(a.shape, v.var.broadcastable, v.shape, {}, ())
               is not None for a in case.args for v in pool if v.is_result)


def _try_step(choices, graph, pool, known, case):
    """Add ``case`` as a step of ``graph`` and return its Values, or None when it does not fit (it
    fails to build, its values are too large, or the reference refuses it unasked)."""
    mapping = {}  # sizes of the case's shapes -> the sizes this step uses instead
    sizes = sorted({s for a in case.args for s in a.shape if s > 1})
    resized = bool(sizes) and choices.chance(20)
    if resized:  # one size of the case becomes another, everywhere it appears
        mapping[choices.pick(sizes)] = choices.pick([0, 1, 2, 3, 5])
    args, new_specs, fresh_args, new_lines, decided, reads = [], [], [], [], set(), set()
    for arg in case.args:
        want = arg.type()
        fitting = [(v, m) for v in pool if v.var.broadcastable == want.broadcastable
                   and (m := _fit(arg.shape, want.broadcastable, v.shape, mapping, decided)) is not None]
        results = [(v, m) for v, m in reversed(fitting) if v.is_result]  # the latest first
        if fitting and choices.chance(70):  # a value the graph has: the case's sizes become its sizes
            value, mapping = choices.pick(results if results and choices.chance(80) else fitting)
            var, text = value.var, value.text
            if var.dtype != want.dtype and choices.chance(70):
                var, text = ops.cast(var, want.dtype), f"O.cast({text}, {want.dtype!r})"
            args.append((var, text))
            reads.add(value.name)
        else:
            shape = tuple(s if b else mapping.get(s, s) for s, b in zip(arg.shape, want.broadcastable))
            name = f"x{len(graph.specs) + len(new_specs)}"
            spec = _fresh_spec(choices, name, arg.dtype, arg.kind, shape, arg.kind == "index")
            var = TensorType(spec.dtype, want.broadcastable)(name)
            new_specs.append((spec, var))
            fresh_args.append(arg)
            new_lines.append(f"{name} = TensorType({spec.dtype!r}, {want.broadcastable!r})({name!r})")
            args.append((var, name))
            reads.add(name)
        decided |= {s for s, b in zip(arg.shape, want.broadcastable) if not b}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = case.build(*[var for var, _ in args])
    except Exception:  # noqa: BLE001  (a dtype the case does not take, ...: draw another)
        return None
    multiple = isinstance(built, (list, tuple))
    outputs = list(built) if multiple else [built]
    outputs = [ops._as(o) for o in outputs]
    step_name = f"s{len(graph.steps)}"
    inputs = graph.inputs + [var for _, var in new_specs]
    values = known + [spec.make() for spec, _ in new_specs]
    result = evaluate(inputs, outputs, values)
    refused = isinstance(result, Exception)
    mutated = any(spec.kind != arg.kind or spec.dtype != arg.dtype for (spec, _), arg in zip(new_specs, fresh_args))
    if refused and not (case.raises or resized or choices.chance(60 if mutated else 20)):
        return None
    if not refused and any(np.size(r) > MAX_ELEMENTS for r in result):
        return None
    graph.inputs, known[:] = inputs, values
    for (spec, var), value in zip(new_specs, values[len(values) - len(new_specs):]):
        graph.specs.append(spec)
        pool.append(Value(var, spec.name, spec.name, tuple(value.shape)))
    expression, _, _ = builder_text(case)
    new_lines.append(f"{step_name} = ({expression})({', '.join(text for _, text in args)})")
    graph.steps.append(Step(case, step_name, new_lines, reads))
    shapes = [None] * len(outputs) if refused else [tuple(np.shape(r)) for r in result]
    step_values = [Value(o, f"{step_name}[{k}]" if multiple else step_name, step_name, shape)
                   for k, (o, shape) in enumerate(zip(outputs, shapes))]
    if refused:
        graph.raises = True
        return step_values
    pool.extend(step_values)
    return step_values


def _add_gradient(choices, graph, known, chosen):
    """Outputs for the gradient of sum(output * weights) over some float outputs, with respect to
    every float input (the weights are inputs too, shaped like their outputs)."""
    floats = [v for v in chosen if v.var.dtype.startswith("float") and v.shape is not None]
    wrt = [var for var, spec in zip(graph.inputs, graph.specs) if spec.dtype.startswith("float")]
    if not floats or not wrt:
        return
    weights, terms, lines = [], [], []
    for k, v in enumerate(floats):
        name = f"w{k}"
        spec = InputSpec(name, v.var.dtype, "normal", choices.integer(0, 2**16 - 1), v.shape, "b")
        weight = TensorType(v.var.dtype, v.var.broadcastable)(name)
        weights.append((spec, weight))
        terms.append(ops.sum(v.var * weight))
        lines.append(f"{name} = TensorType({v.var.dtype!r}, {v.var.broadcastable!r})({name!r})")
    cost = terms[0]
    for term in terms[1:]:
        cost = cost + term
    try:
        grads = arignote.grad(cost, wrt, disconnected_inputs="ignore")
    except Exception:  # noqa: BLE001  (an op without a gradient: no gradient for this graph)
        return
    inputs = graph.inputs + [w for _, w in weights]
    values = known + [spec.make() for spec, _ in weights]
    if isinstance(evaluate(inputs, graph.outputs + list(grads), values), Exception):
        return
    graph.inputs = inputs
    graph.specs += [spec for spec, _ in weights]
    graph.outputs += list(grads)
    graph.lines += lines
    graph.lines.append("cost = " + " + ".join(f"O.sum({v.text} * w{k})" for k, v in enumerate(floats)))
    names = ", ".join(v.name for v in wrt)
    graph.lines.append(f"outputs += arignote.grad(cost, [{names}], disconnected_inputs='ignore')")


def graph_strategy(ops_wanted=None, max_steps=MAX_STEPS, stop=None):
    """The Hypothesis strategy of FuzzGraphs; ``stop()`` true rejects examples cheaply (a time limit)."""
    from hypothesis import reject
    from hypothesis import strategies as st

    @st.composite
    def strategy(draw):
        if stop is not None and stop():
            reject()
        return draw_graph(Choices.hypothesis(draw), ops_wanted, max_steps)

    return strategy()
