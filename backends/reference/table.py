"""The reference backend's table: from op class to a NumPy implementation.

An implementation gets the Apply node and the input arrays and returns the output array (or a tuple
for several outputs). The executor casts results to the node's declared output dtype, so an entry
only has to compute the right values. This table is the executable specification of every op.
"""

import math
import weakref
import warnings

import numpy as np

from arignote.core import ops, random
from arignote.core.ops import broadcast_shapes, numpy_index
from arignote.core import nnet
from arignote.core import linalg
from arignote.core import conv, pool
from arignote.core.ifelse import IfElse
from arignote.core.scan import Scan

from . import conv as reference_conv


class elemwise:
    """An elementwise implementation: checks that the shapes broadcast by the inputs' broadcastable
    patterns, then applies ``fn`` (on inputs cast to the output dtype when asked). ``compute`` skips
    the check, for the body of a Composite whose inputs were checked as a whole."""

    def __init__(self, fn, compute_in_output_dtype=False):
        self.fn = fn
        self.compute_in_output_dtype = compute_in_output_dtype

    def __call__(self, node, *xs):
        broadcast_shapes(node.op, [x.shape for x in xs], [i.broadcastable for i in node.inputs])
        return self.compute(node, *xs)

    def compute(self, node, *xs):
        return self.fn(*self._cast(node, xs))

    def into(self, node, target, *xs):
        """The result written into ``target`` (an input buffer nobody else needs), for NumPy ufuncs
        whose result has the target's shape; otherwise a new array."""
        shape = broadcast_shapes(node.op, [x.shape for x in xs], [i.broadcastable for i in node.inputs])
        if isinstance(self.fn, np.ufunc) and self.fn.nout == 1 and shape == target.shape:
            return self.fn(*self._cast(node, xs), out=target)
        return self.compute(node, *xs)

    def _cast(self, node, xs):
        return [x.astype(node.outputs[0].dtype, copy=False) for x in xs] if self.compute_in_output_dtype else xs


class CompositeImpl:
    """Evaluates a Composite's body node by node with the elementwise entries of ``table`` (the
    table of the program being compiled, so a backend that swaps one entry swaps it here too)."""

    def __init__(self, table=None):
        self.table = table

    def bind(self, table):
        return CompositeImpl(table)

    def __call__(self, node, *xs):
        broadcast_shapes(node.op, [x.shape for x in xs], [i.broadcastable for i in node.inputs])
        table = self.table or IMPLEMENTATIONS
        body = node.op.fgraph
        values = dict(zip(body.inputs, xs))
        for inner in body.apply_nodes:
            args = [v.data if v not in values else values[v] for v in inner.inputs]
            entry = table[type(inner.op)]
            result = getattr(entry, "compute", entry)(inner, *args)  # the whole was checked above
            values[inner.outputs[0]] = np.asarray(result, dtype=inner.outputs[0].dtype)
        shape = np.broadcast_shapes(*[x.shape for x in xs])
        results = tuple(np.broadcast_to(values[o] if o in values else o.data, shape) for o in body.outputs)
        return results if len(results) > 1 else results[0]


_fused_parts = weakref.WeakKeyDictionary()  # FusedReduce node -> its (elementwise node, reduction node)


class FusedReduceImpl:
    """A FusedReduce: the elementwise result, then its reduction, each with the entry of ``table`` (the
    table of the program being compiled), exactly as the two nodes it was fused from."""

    def __init__(self, table=None):
        self.table = table

    def bind(self, table):
        return FusedReduceImpl(table)

    def __call__(self, node, *xs):
        table = self.table or IMPLEMENTATIONS
        if node not in _fused_parts:  # made once per node, not per call
            _fused_parts[node] = node.op.parts(node.inputs)
        values = xs
        inner, outer = _fused_parts[node]
        for step in (inner, outer):
            entry = table[type(step.op)]
            entry = entry.bind(table) if hasattr(entry, "bind") else entry
            values = (np.asarray(entry(step, *values), dtype=step.outputs[0].dtype),)
        return values[0]


def float_elemwise(fn):
    return elemwise(fn, compute_in_output_dtype=True)


def gemm(node, z, alpha, x, y, beta):
    if x.shape[1] != y.shape[0] or (x.shape[0], y.shape[1]) != z.shape:
        raise ValueError(f"gemm: shapes {z.shape}, {x.shape} and {y.shape} do not fit z + x . y")
    return beta * z + alpha * np.dot(x, y)


def sigmoid(x):
    # Both branches are finite where they are selected, so large |x| gives 0 or 1, never NaN.
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


_erf = np.vectorize(math.erf, otypes=["float64"])
_erfc = np.vectorize(math.erfc, otypes=["float64"])


def round_half_away_from_zero(x):
    whole = np.trunc(x)
    return np.where(np.abs(x - whole) >= 0.5, whole + np.sign(x), whole)


def mean(node, x):
    # NumPy warns (through warnings, not errstate) about the mean of an empty slice; the result, NaN,
    # is the specified one, and the executor silences NumPy's floating-point warnings too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.mean(x, axis=node.op.axis, keepdims=node.op.keepdims, dtype=node.outputs[0].dtype)


def dimshuffle(node, x):
    order = node.op.new_order
    kept = [a for a in order if a != "x"]
    dropped = [a for a in range(x.ndim) if a not in kept]
    y = np.transpose(x, kept + dropped)
    y = y.reshape(y.shape[: len(kept)])  # dropped axes have size 1
    return y[tuple(None if a == "x" else slice(None) for a in order)]


def reshape(node, x, shape):
    return x.reshape(tuple(int(s) for s in shape))


def subtensor(node, x, *index_inputs):
    return x[numpy_index(node.op.idx_list, index_inputs)]


def _masks_as_positions(index):
    """Boolean masks replaced by the integer positions they select (what np.add.at understands)."""
    result = []
    for part in index:
        if isinstance(part, np.ndarray) and part.dtype == bool:
            result.extend(np.nonzero(part))
        else:
            result.append(part)
    return tuple(result)


def inc_subtensor(node, x, y, *index_inputs):
    out = x.copy()
    index = _masks_as_positions(numpy_index(node.op.idx_list, index_inputs))
    region_shape = np.shape(out[index])
    pad = len(region_shape) - y.ndim
    # y stretches only along its broadcastable axes, as in every elementwise op
    broadcast_shapes(node.op, [region_shape, (1,) * pad + y.shape],
                     [(False,) * len(region_shape), (True,) * pad + node.inputs[1].broadcastable])
    if node.op.set_instead_of_inc:
        out[index] = y
    else:
        np.add.at(out, index, y)  # repeated indices accumulate
    return out


def extremum_mask(node, x):
    axes = node.op.axis
    last = tuple(range(x.ndim - len(axes), x.ndim))
    moved = np.moveaxis(x, axes, last)
    kept = moved.shape[: x.ndim - len(axes)]
    # the reduced size spelled out: -1 is ambiguous when a kept axis has size 0
    flat = moved.reshape(kept + (math.prod(moved.shape[len(kept):]),))
    mask = np.zeros(flat.shape, dtype=bool)
    if flat.shape[-1]:
        first = (np.argmin if node.op.minimum else np.argmax)(flat, axis=-1)
        np.put_along_axis(mask, first[..., None], True, axis=-1)
    return np.moveaxis(mask.reshape(moved.shape), last, axes)


def check_shape(shape, dtype):
    """NumPy's rule for a new array's shape, checked before NumPy makes it: no negative size, and the
    nonzero sizes times the item size fit in an int64 (the C and numba backends check the same)."""
    if any(s < 0 for s in shape):
        raise ValueError(f"negative dimensions are not allowed: shape {tuple(shape)}")
    if math.prod(s for s in shape if s) * np.dtype(dtype).itemsize > np.iinfo(np.int64).max:
        raise ValueError(f"array is too big: shape {tuple(shape)} of {np.dtype(dtype)} needs more than 2**63 - 1 bytes")


def repeat(node, x, repeats):
    """np.repeat, its result's size checked first: NumPy adds the counts in an int64 that wraps around
    (np.repeat(np.ones(3), (2**64 + 6) // 3) writes past a small buffer and crashes the process)."""
    axis, counts = node.op.axis, repeats.reshape(-1)
    if counts.size and counts.min() >= 0:  # NumPy's own messages for negative or mismatched counts
        if counts.size == 1:
            total = int(counts[0]) * x.shape[axis]
        elif int(counts.max()) <= np.iinfo(np.int64).max // counts.size:  # the int64 sum cannot wrap
            total = int(counts.sum())
        else:
            total = sum(map(int, counts))
        check_shape(x.shape[:axis] + (total,) + x.shape[axis + 1:], x.dtype)
    return np.repeat(x, repeats, axis=axis)


def join(node, *xs):
    """np.concatenate, its result's size checked first: NumPy adds the joined sizes in an int64 that
    wraps around (eight broadcast views of 2**61 int8 each make a size of 0, and NumPy then writes on)."""
    axis = node.op.axis
    if all(x.ndim == xs[0].ndim for x in xs) and 0 <= axis < xs[0].ndim:  # else NumPy's own message
        check_shape(xs[0].shape[:axis] + (sum(x.shape[axis] for x in xs),) + xs[0].shape[axis + 1:],
                    node.outputs[0].dtype)
    return np.concatenate(xs, axis=axis)


def arange(node, start, stop, step):
    if step == 0:  # NumPy's own message for a 0-d zero step is "Maximum allowed size exceeded"
        raise ValueError("arange: step cannot be zero")
    return np.arange(start, stop, step, dtype=node.op.dtype)


def alloc(node, value, *shape):
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"negative size in shape {shape}")
    check_shape(shape, node.outputs[0].dtype)
    pad = len(shape) - value.ndim
    broadcast_shapes(node.op, [shape, (1,) * pad + value.shape],
                     [(False,) * len(shape), (True,) * pad + node.inputs[0].broadcastable])
    return np.broadcast_to(value, shape).copy()


def rebroadcast(node, x):
    for axis, broadcastable in node.op.axes:
        if broadcastable and x.shape[axis] != 1:
            raise ValueError(f"axis {axis} must have size 1 to be broadcastable, but the shape is {x.shape}")
    return x


def specify_shape(node, x, *sizes):
    given = iter(sizes)
    expected = tuple(int(next(given)) if known else None for known in node.op.known)
    if any(e is not None and e != s for e, s in zip(expected, x.shape)):
        raise ValueError(f"the shape is {x.shape}, but specify_shape expects {expected}")
    return x


_inner_programs = weakref.WeakKeyDictionary()  # inner FunctionGraph -> its compiled program


def _inner_program(fgraph):
    if fgraph not in _inner_programs:
        from . import ReferenceProgram

        _inner_programs[fgraph] = ReferenceProgram(fgraph, IMPLEMENTATIONS)
    return _inner_programs[fgraph]


def scan_loop(node, n, *outer):
    """The specification of Scan (core/scan.py): step t reads row t of each sequence and the rows
    t + k of each recurrent buffer (k its taps, counted after the initial rows), appends one row to
    each output, and a while-loop stops after the step whose condition is true. Only the rows an
    output keeps are held (``buffer_rows``)."""
    from collections import deque

    op = node.op
    program = _inner_program(op.fgraph)
    n = int(n)
    _, seqs, inits, non_seqs = op.split_outer([n, *outer])
    if n < 0:
        raise ValueError(f"the number of steps must not be negative, got {n}")
    for i, s in enumerate(seqs):
        if s.shape[0] < n:
            raise ValueError(f"sequence {i} has {s.shape[0]} rows, fewer than the {n} steps")
    histories = []
    for j, x0 in enumerate(inits):
        depth = op.depth(j)
        if x0.shape[0] != depth:
            raise ValueError(f"the initial value of recurrent output {j} has {x0.shape[0]} rows; its taps "
                             f"{list(op.taps[j])} read {depth}")
        histories.append(deque(x0, maxlen=op.buffer_rows(j)))
    mapped = [deque(maxlen=op.buffer_rows(op.n_rec + k)) for k in range(op.n_nit)]
    row_shapes = [x0.shape[1:] for x0 in inits] + [None] * op.n_nit
    for t in range(n):
        args = [s[t] for s in seqs]
        for j, history in enumerate(histories):
            args += [history[len(history) + k] for k in op.taps[j]]
        try:
            results = program(args + list(non_seqs))
        except Exception as error:
            raise type(error)(f"at step {t}: {error}") from error
        for j, value in enumerate(results[:op.n_rec + op.n_nit]):
            if row_shapes[j] is None:
                row_shapes[j] = value.shape
            elif value.shape != row_shapes[j]:
                what = f"recurrent output {j}" if j < op.n_rec else f"mapped output {j - op.n_rec}"
                raise ValueError(f"at step {t}: {what} has shape {value.shape}, but its "
                                 f"{'state' if j < op.n_rec else 'earlier rows'} have shape {row_shapes[j]}")
            (histories[j] if j < op.n_rec else mapped[j - op.n_rec]).append(value)
        if op.as_while and bool(results[-1]):
            break
    outputs = []
    for j, (rows, var) in enumerate(zip(histories + mapped, node.outputs)):
        shape = row_shapes[j] if row_shapes[j] is not None else (0,) * (var.ndim - 1)
        outputs.append(np.array(rows, dtype=var.dtype).reshape((len(rows),) + tuple(shape)))
    return tuple(outputs) if len(outputs) > 1 else outputs[0]


def if_else(node, condition, *inputs):
    """Runs only the branch the condition picks; an output never shares memory with an input."""
    op = node.op
    _, then_inputs, else_inputs = op.split_outer([condition, *inputs])
    graph, args = (op.then_graph, then_inputs) if condition else (op.else_graph, else_inputs)
    results = [np.array(r) if any(np.may_share_memory(r, a) for a in args) else r
               for r in _inner_program(graph)(list(args))]
    return tuple(results) if len(results) > 1 else results[0]


def random_uniform(node, state, shape):
    """SplitMix64 of (key, counter), as core/random.py specifies: the C-order element i is made from
    mix64(key + (counter + i) * GOLDEN); the new state advances the counter by the element count."""
    shape = tuple(int(s) for s in shape)
    if len(state) != 2 or any(s < 0 for s in shape):
        raise ValueError(f"expected a state [key, counter] and sizes >= 0, got {state} and {shape}")
    check_shape(shape, node.outputs[1].dtype)
    count = math.prod(shape)
    key, counter = state.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = key + (counter + np.arange(count, dtype=np.uint64)) * np.uint64(random.GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(random.MIX1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(random.MIX2)
        z = z ^ (z >> np.uint64(31))
        new_state = np.array([key, counter + np.uint64(count)], dtype=np.uint64)
    if node.op.dtype == "float32":
        sample = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)
    else:
        sample = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return new_state, sample.reshape(shape)


def softmax(node, x):
    return _softmax(x.astype(node.outputs[0].dtype, copy=False), node.op.axis)


def _softmax(x, axis):
    # shifted by the max, so the largest exponent is 0: finite for any finite logits
    e = np.exp(x - np.max(x, axis=axis, keepdims=True, initial=-np.inf))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(node, x):
    x = x.astype(node.outputs[0].dtype, copy=False)
    shifted = x - np.max(x, axis=node.op.axis, keepdims=True, initial=-np.inf)
    return shifted - np.log(np.sum(np.exp(shifted), axis=node.op.axis, keepdims=True))


def relu(x, alpha):
    # alpha * x below 0, but alpha == 0 gives 0 there (not 0 * -inf = NaN); NaN stays NaN
    return np.where(x > 0, x, np.where(alpha == 0, np.maximum(x, 0), alpha * x))


def inc_per_row(node, x, v, y):
    out = x.copy()
    out[nnet.check_inc_per_row(node, x, v, y)] += v  # one entry per row: no repeated positions
    return out


def batched_dot(node, a, b):
    if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        why = ("the batch sizes differ (a batch axis stretches only where its type is broadcastable)"
               if a.shape[0] != b.shape[0] else "the summed sizes differ")
        raise ValueError(f"shapes {a.shape} and {b.shape} do not fit (B, n, k) · (B, k, m): {why}")
    return np.matmul(a, b)


def softmax_crossentropy(node, x, y):
    rows, labels = nnet.label_index(node.op, x, y)
    x = x.astype(node.outputs[0].dtype, copy=False)
    shift = np.max(x, axis=1, keepdims=True) if x.shape[1] else np.zeros((x.shape[0], 1), x.dtype)
    shift = np.where(np.isfinite(shift), shift, 0)
    log_sum = np.log(np.sum(np.exp(x - shift), axis=1)) + shift[:, 0]
    return log_sum - x[rows, labels]


def softmax_crossentropy_grad(node, x, g, y):
    index = nnet.check_inc_per_row(node, x, g, y)
    out = _softmax(x.astype(g.dtype, copy=False), 1) * g[:, None]
    out[index] += -g  # as IncPerRow adds the negated gradient: the same rounding
    return out


IMPLEMENTATIONS = {
    ops.Composite: CompositeImpl(),
    ops.FusedReduce: FusedReduceImpl(),
    nnet.SoftmaxCrossentropy: softmax_crossentropy,
    nnet.SoftmaxCrossentropyGrad: softmax_crossentropy_grad,
    ops.Add: elemwise(np.add),
    ops.Sub: elemwise(np.subtract),
    ops.Mul: elemwise(np.multiply),
    ops.TrueDiv: elemwise(np.true_divide),
    ops.IntDiv: elemwise(np.floor_divide),
    ops.Mod: elemwise(np.remainder),
    ops.Pow: elemwise(np.power),
    ops.Maximum: elemwise(np.maximum),
    ops.Minimum: elemwise(np.minimum),
    ops.Neg: elemwise(np.negative),
    ops.Abs: elemwise(np.absolute),
    ops.Sgn: elemwise(np.sign),
    ops.Exp: float_elemwise(np.exp),
    ops.Log: float_elemwise(np.log),
    ops.Sqrt: float_elemwise(np.sqrt),
    ops.Tanh: float_elemwise(np.tanh),
    ops.Sigmoid: float_elemwise(sigmoid),
    ops.Eq: elemwise(np.equal),
    ops.Neq: elemwise(np.not_equal),
    ops.Lt: elemwise(np.less),
    ops.Gt: elemwise(np.greater),
    ops.Le: elemwise(np.less_equal),
    ops.Ge: elemwise(np.greater_equal),
    ops.Switch: elemwise(lambda c, a, b: np.where(c, a, b)),
    ops.Second: elemwise(lambda x, y: np.broadcast_to(y, np.broadcast_shapes(x.shape, y.shape)).copy()),
    ops.Cast: elemwise(lambda x: x),
    ops.Expm1: float_elemwise(np.expm1),
    ops.Log1p: float_elemwise(np.log1p),
    ops.Log2: float_elemwise(np.log2),
    ops.Log10: float_elemwise(np.log10),
    ops.Sqr: elemwise(np.square),
    ops.Sin: float_elemwise(np.sin),
    ops.Cos: float_elemwise(np.cos),
    ops.Tan: float_elemwise(np.tan),
    ops.Arcsin: float_elemwise(np.arcsin),
    ops.Arccos: float_elemwise(np.arccos),
    ops.Arctan: float_elemwise(np.arctan),
    ops.Sinh: float_elemwise(np.sinh),
    ops.Cosh: float_elemwise(np.cosh),
    ops.Arctanh: float_elemwise(np.arctanh),
    ops.Erf: float_elemwise(_erf),
    ops.Erfc: float_elemwise(_erfc),
    ops.Floor: float_elemwise(np.floor),
    ops.Ceil: float_elemwise(np.ceil),
    ops.RoundHalfToEven: float_elemwise(np.round),
    ops.RoundHalfAwayFromZero: float_elemwise(round_half_away_from_zero),
    ops.Clip: elemwise(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    ops.BitwiseAnd: elemwise(np.bitwise_and),
    ops.BitwiseOr: elemwise(np.bitwise_or),
    ops.BitwiseXor: elemwise(np.bitwise_xor),
    ops.Invert: elemwise(np.invert),
    ops.IsNan: elemwise(np.isnan),
    ops.IsInf: elemwise(np.isinf),  # the executor casts to the node's dtype
    ops.XlogX: float_elemwise(lambda x: np.where(x == 0, 0, x * np.log(x))),
    ops.XlogY0: float_elemwise(lambda x, y: np.where(x == 0, 0, x * np.log(y))),
    ops.Sum: lambda node, x: np.sum(x, axis=node.op.axis, keepdims=node.op.keepdims,
                                    dtype=node.outputs[0].dtype),
    ops.Mean: mean,
    ops.Max: lambda node, x: np.max(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.Min: lambda node, x: np.min(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.Prod: lambda node, x: np.prod(x, axis=node.op.axis, keepdims=node.op.keepdims,
                                      dtype=node.outputs[0].dtype),
    ops.All: lambda node, x: np.all(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.Any: lambda node, x: np.any(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.ExtremumMask: extremum_mask,
    ops.Argmax: lambda node, x: np.argmax(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.Argmin: lambda node, x: np.argmin(x, axis=node.op.axis, keepdims=node.op.keepdims),
    ops.DimShuffle: dimshuffle,
    ops.Reshape: reshape,
    ops.Shape: lambda node, x: np.array(x.shape, dtype="int64"),
    ops.ShapeI: lambda node, x: np.array(x.shape[node.op.i], dtype="int64"),
    ops.MakeVector: lambda node, *xs: np.array(xs, dtype=node.op.dtype),
    ops.Dot: lambda node, a, b: np.dot(a, b),
    ops.Gemm: gemm,
    linalg.BatchedDot: batched_dot,
    ops.Alloc: alloc,
    ops.ARange: arange,
    ops.Join: join,
    ops.Rebroadcast: rebroadcast,
    ops.SpecifyShape: specify_shape,
    ops.Repeat: repeat,
    Scan: scan_loop,
    IfElse: if_else,
    ops.Subtensor: subtensor,
    ops.AdvancedSubtensor: subtensor,
    ops.IncSubtensor: inc_subtensor,
    ops.AdvancedIncSubtensor: inc_subtensor,
    nnet.Softplus: float_elemwise(lambda x: np.logaddexp(0, x)),  # exact for large |x|
    nnet.Relu: elemwise(relu, compute_in_output_dtype=True),
    nnet.Softmax: softmax,
    nnet.LogSoftmax: log_softmax,
    nnet.PickPerRow: lambda node, x, y: x[nnet.label_index(node.op, x, y)],
    nnet.IncPerRow: inc_per_row,
    conv.Corr2d: reference_conv.corr2d,
    conv.Corr2dGradInputs: reference_conv.corr2d_grad_inputs,
    conv.Corr2dGradWeights: reference_conv.corr2d_grad_weights,
    pool.Pool: reference_conv.pool,
    pool.MaxPoolGrad: reference_conv.max_pool_grad,
    pool.MaxPoolGradGrad: reference_conv.max_pool_grad_grad,
    pool.AveragePoolGrad: reference_conv.average_pool_grad,
    random.RandomUniform: random_uniform,
    random.Argsort: lambda node, x: np.argsort(x, axis=-1, kind="stable"),
}
