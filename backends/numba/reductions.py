"""Reductions as loop nests: the seven reductions, ``FusedReduce`` (the elementwise body computed inside
the reduction's loop: no temporary array), argmax/argmin and the extremum mask of max/min's gradient.

A reduction follows its op's traits: the accumulator starts at ``identity`` in ``accumulator_dtype``,
each element is folded in by the step ``COMBINE`` writes for ``combine``, an empty reduction is an
error where the op ``has_identity`` not, and ``divides`` divides by the count (the mean).
"""

import numpy as np

from arignote.core import ops

from .elemwise import Loops
from .generator import cast, literal, nest, product, st, tup

# the step folding the value ``v`` (already in the accumulator's dtype) into ``acc``; maximum and
# minimum propagate NaN: integers use a select, not a branch, so that LLVM vectorizes it
COMBINE = {
    "add": "{acc} += {v}",
    "multiply": "{acc} *= {v}",
    "and": "{acc} = {acc} & {v}",  # not `and`/`or`: their branches kept the loops scalar
    "or": "{acc} = {acc} | {v}",
    "maximum": "{acc} = {v} if {v} > {acc} else {acc}",
    "minimum": "{acc} = {v} if {v} < {acc} else {acc}",
}
# floats: LLVM's NaN-propagating max/min, which vectorize (a select with a NaN test stays scalar)
FLOAT_COMBINE = {"maximum": "{acc} = _rt.fmax({acc}, {v})", "minimum": "{acc} = _rt.fmin({acc}, {v})"}


def reduce(gen, n, node, args, outs):
    """Sum, Mean, Prod, Max, Min, All, Any of one array."""
    x = node.inputs[0]
    loops = Loops(gen, None, source=x, label=type(node.op).__name__)
    return _reduction(gen, n, node, node.op, loops, "x0", x.dtype, args, outs, whole=True)


def fused_reduce(gen, n, node, args, outs):
    """A reduction of an elementwise body: each element computed where the reduction reads it."""
    inner, _ = node.op.parts(node.inputs)
    loops = Loops(gen, inner, label=type(node.op.reduce).__name__)
    value = loops.name_of(loops.inner_outputs[0])
    whole = all(v.ndim == loops.nd and not any(v.broadcastable) for v in node.inputs)
    return _reduction(gen, n, node, node.op.reduce, loops, value, inner.outputs[0].dtype, args, outs, whole)


def _reduction(gen, n, node, op, loops, value, in_dtype, args, outs, whole=False):
    """``whole``: every input is read whole, element for element (none broadcast), so that a reduction
    over every axis may read C-contiguous inputs as flat runs."""
    nd, axes = loops.nd, op.axis
    kept = [d for d in range(nd) if d not in axes]
    out_dtype = node.outputs[0].dtype
    acc_dtype = op.accumulator_dtype(in_dtype, out_dtype)
    is_float = np.dtype(acc_dtype).kind == "f"
    step = FLOAT_COMBINE.get(op.combine, COMBINE[op.combine]) if is_float else COMBINE[op.combine]
    sizes = loops.sizes
    kept_sizes = [sizes[d] for d in kept]
    counted = product([sizes[d] for d in axes])
    prologue = list(loops.prologue) + loops.constants
    if not op.has_identity:
        prologue += [f"if {counted} == 0:  # as NumPy, whatever the kept sizes",
                     f"    raise ValueError('{type(op).__name__}: zero-size array to reduction operation')"]
    start = literal(op.identity(acc_dtype), acc_dtype)
    at = "[" + ", ".join(f"i{d}" for d in kept) + "]" if kept else ""
    prologue.append(f"acc = np.full({tup(kept_sizes)}, {start})" if kept else f"acc = {start}")
    fold = step.format(acc="{acc}", v=cast(value, in_dtype, acc_dtype))
    if kept and axes and max(kept) < min(axes):
        # the reduction runs over the last axes: the kept axes outermost, each row folded into a local
        # (max(exp(x)) by rows through acc[i0] in memory stayed scalar: 19.5 ms on 2000x2000, now 1.6 ms)
        inner = nest(sizes, loops.body + [fold.format(acc="row")], order=list(axes))
        lines = prologue + nest(sizes, [f"row = acc{at}", *inner, f"acc{at} = row"], order=kept)
    elif whole and not kept and nd >= 2:
        # C-contiguous inputs as flat runs (through a nest, the inner loop's stride is read from the
        # array: a float32 max over 784 x 500 took 86 us, flat 25 us; the fused sum of squares of MLP
        # training's 784 x 500 weights, in the step, 93 us, flat 81 us); any other layout by the nest
        lines = prologue + [f"if {' and '.join(f'{a}.flags.c_contiguous' for a in loops.args)}:"]
        lines += [f"    f{k} = _rt.flat({a})" for k, a in enumerate(loops.args)]
        lines += ["    for i in range(f0.shape[0]):"] + [f"        x{k} = f{k}[i]" for k in range(len(loops.args))]
        lines += ["        " + line for line in loops.body[loops.n_loads:] + [fold.format(acc="acc")]] + ["else:"]
        lines += ["    " + line for line in loops.nest(loops.body + [fold.format(acc="acc")])]
    else:
        lines = prologue + loops.nest(loops.body + [fold.format(acc="acc" + at)])
    if op.divides:
        lines.append(f"acc = acc / np.float64({counted})")
    out_shape = [("1" if d in axes else sizes[d]) for d in range(nd)] if op.keepdims else kept_sizes
    if kept:
        lines.append(f"return acc.astype({st(out_dtype)}).reshape({tup(out_shape)})")
    else:
        lines += [f"out = np.empty({tup(out_shape)}, dtype={st(out_dtype)})",
                  f"out[{', '.join('0' for _ in out_shape) or '()'}] = acc", "return out"]
    # reassociation lets LLVM vectorize a float sum (the only chain of additions here)
    fastmath = is_float and op.combine == "add"
    name = gen.kernel(n, node, loops.args, lines, fastmath=fastmath, helpers=loops.helpers)
    return [f"{outs[0]} = {name}({', '.join(args)})"]


def _first_extremum(sizes, kept, axes, sign, is_float):
    """Loop-body lines keeping, per kept position, the first extremum ``best`` of a0 over ``axes`` and
    its flat index within them, ``where`` (a NaN wins, as in NumPy); the flat index expression."""
    nd = len(sizes)
    at = "[" + ", ".join(f"i{d}" for d in kept) + "]" if kept else "[()]"
    flat = " + ".join(f"i{d} * {product([sizes[e] for e in axes if e > d])}" for d in axes) or "0"
    first = " and ".join(f"i{d} == 0" for d in axes) or "True"
    nan = f" or (v != v and best{at} == best{at})" if is_float else ""
    return [f"v = a0[{', '.join(f'i{d}' for d in range(nd)) or '()'}]", f"if {first} or v {sign} best{at}{nan}:",
            f"    best{at} = v", f"    where{at} = {flat}"], at, flat


def argmax(gen, n, node, args, outs):
    """Argmax and Argmin: the flat index (within the reduced axes) of the first extremum."""
    op, x = node.op, node.inputs[0]
    nd = x.ndim
    axes = list(range(nd)) if op.axis is None else [op.axis]
    label = type(op).__name__
    kept = [d for d in range(nd) if d not in axes]
    sizes = [f"a0.shape[{d}]" for d in range(nd)]
    is_float = np.dtype(x.dtype).kind == "f"
    lines = [f"if {product([sizes[d] for d in axes])} == 0:",
             f"    raise ValueError('{label}: attempt to get the arg of an empty sequence')"]
    shape = [("1" if d in axes else sizes[d]) for d in range(nd)] if op.keepdims else [sizes[d] for d in kept]
    if is_float and axes == [nd - 1]:  # along the rows: runtime's two passes, which vectorize
        rows = product([sizes[d] for d in kept])
        lines += [f"where = np.empty({rows}, dtype=np.int64)",
                  f"_rt.arg_extremum_rows(np.ascontiguousarray(a0).reshape(({rows}, {sizes[-1]})), "
                  f"{isinstance(op, ops.Argmin)}, where)"]
    else:
        lines += [f"best = np.empty({tup(sizes[d] for d in kept)}, dtype=a0.dtype)",
                  f"where = np.zeros({tup(sizes[d] for d in kept)}, dtype=np.int64)"]
        sign = "<" if isinstance(op, ops.Argmin) else ">"
        lines += nest(sizes, _first_extremum(sizes, kept, axes, sign, is_float)[0], order=kept + axes)
    lines.append(f"return where.reshape({tup(shape)})")
    name = gen.kernel(n, node, ["a0"], lines)
    return [f"{outs[0]} = {name}({args[0]})"]


def extremum_mask(gen, n, node, args, outs):
    """True at the first position of the max (min) over the axes: the gradient of max and min."""
    op, x = node.op, node.inputs[0]
    nd = x.ndim
    axes = list(op.axis)
    kept = [d for d in range(nd) if d not in axes]
    sizes = [f"a0.shape[{d}]" for d in range(nd)]
    find, at, flat = _first_extremum(sizes, kept, axes, "<" if op.minimum else ">", np.dtype(x.dtype).kind == "f")
    everything = ", ".join(f"i{d}" for d in range(nd)) or "()"
    lines = [f"best = np.empty({tup(sizes[d] for d in kept)}, dtype=a0.dtype)",
             f"where = np.zeros({tup(sizes[d] for d in kept)}, dtype=np.int64)",
             f"out = np.zeros({tup(sizes)}, dtype=np.bool_)"]
    lines += nest(sizes, find, order=kept + axes)
    lines += nest(sizes, [f"out[{everything}] = where{at} == {flat}"], order=kept + axes)
    lines.append("return out")
    name = gen.kernel(n, node, ["a0"], lines)
    return [f"{outs[0]} = {name}({args[0]})"]
