"""Reductions (Sum, Mean, Prod, Max, Min, All, Any), FusedReduce (a reduction of an elementwise result
computed as it is read), and the arg-reductions Argmax, Argmin, ExtremumMask.

A reduction follows its op's traits (core/ops.py, Reduce): ``combine`` names the step folding an
element into the accumulator (its C in ``COMBINE``), ``identity`` and ``accumulator_dtype`` the
accumulator, ``has_identity`` whether an empty reduction is an error, ``divides`` (Mean)."""

from arignote.core import ops

from .ctext import comment, ct, hang, indent, isfloat, literal, nested, offset, shape_buffers
from .elemwise import NEGPOW, broadcast_header, contiguous_test, scalar_body

# the C folding the value ``x`` into the accumulator ``acc`` (maximum and minimum: a plain select)
COMBINE = {
    "add": lambda acc, x: f"{acc} + {x}",
    "multiply": lambda acc, x: f"{acc} * {x}",
    "maximum": lambda acc, x: f"({x} > {acc} ? {x} : {acc})",
    "minimum": lambda acc, x: f"({x} < {acc} ? {x} : {acc})",
    # not && and ||: their branches kept the loops scalar (all(x > 0) over 4M: 2.3 ms, now 1.0 ms)
    "and": lambda acc, x: f"{acc} & ({x} != 0)",
    "or": lambda acc, x: f"{acc} | ({x} != 0)",
}
# floats: maximum and minimum take a NaN and then keep it
TAKING_NAN = {
    "maximum": lambda acc, x: f"(({x} > {acc} || {x} != {x}) ? {x} : {acc})",
    "minimum": lambda acc, x: f"(({x} < {acc} || {x} != {x}) ? {x} : {acc})",
}
LANES = tuple(COMBINE)  # every step runs in independent lanes over contiguous runs (ARI_LANES, runtime.h)
CONVERTS = ("add", "multiply")  # steps that convert the element to the accumulator's type first


class _Source:
    """Where the reduced elements come from: ``setup`` (C lines), ``size(axis)`` (C), ``contiguous``
    (C: the flat paths apply), ``load(at)`` (C statements setting ``xv``, the element at flat offset
    ``at``, or at index i0, i1, ... when ``at`` is None), ``shape`` (C printing the reduced array's shape
    with %s), ``fails`` (an element can set the flag ``negpow``)."""

    def __init__(self, setup, size, contiguous, load, shape, fails=False):
        self.setup, self.size, self.contiguous, self.load, self.shape, self.fails = setup, size, contiguous, load, shape, fails


def _array(x, xv):
    """The elements of the array ``x`` (variable ``xv``)."""
    nd, X = xv.ndim, ct(xv.dtype)
    return _Source([shape_buffers(1), f"const {X} *px = (const {X} *){x}.data;"],
                   lambda a: f"{x}.shape[{a}]", f"ari_contiguous(&{x}, {nd})",
                   lambda at: f"const {X} xv = px[{offset(x, range(nd)) if at is None else at}];",
                   f"ari_shape(sb0, &{x}, {nd})")


def _computed(g, node, enode, index, ins, shown):
    """The elements of ``enode``'s result (the elementwise part of FusedReduce ``node``), computed from
    its inputs ``ins`` as they are read: no temporary array. ``shown``: messages print its shape."""
    xv = enode.outputs[0]
    nd, X = xv.ndim, ct(xv.dtype)
    in_vars = node.inputs
    body, results, fails = scalar_body(g, enode.op, [v.dtype for v in in_vars], [xv.dtype])
    static = [all(var.broadcastable) for var in in_vars]
    tin = [ct(var.dtype) for var in in_vars]
    setup = [shape_buffers(max(1, len(ins))),
             f"/* the reduced array, {comment(enode.op)}({', '.join(ins)}), is computed as it is read: no temporary */"]
    setup += broadcast_header(in_vars, index, ins, nd)
    setup.append("int negpow = 0;")
    setup += [f"const {t} *restrict p{j} = (const {t} *){v}.data;" for j, (v, t) in enumerate(zip(ins, tin))]
    for j, v in enumerate(ins):
        setup += [f"const int64_t s{j}_{a} = {v}.shape[{a}] == 1 ? 0 : {v}.strides[{a}];" for a in range(nd)]
    value = body + [f"const {X} xv = {results[0]};"]

    def load(at):
        if at is None:
            return "\n".join([f"const {t} x{j} = p{j}[{' + '.join(f'i{a} * s{j}_{a}' for a in range(nd)) or '0'}];"
                              for j, t in enumerate(tin)] + value)
        return "\n".join([f"const {t} x{j} = p{j}[{'0' if static[j] else at}];" for j, t in enumerate(tin)] + value)

    if shown:
        setup.append("arr_t whole;" + "".join(f" whole.shape[{a}] = n[{a}];" for a in range(nd)))
    return _Source(setup, lambda a: f"n[{a}]", contiguous_test(ins, in_vars, nd), load,
                   f"ari_shape(sb0, &whole, {nd})", fails)


def _block(load, step):
    """``{ load; step }``: one element folded in."""
    return "\n".join(["{", indent(load), f"    {step}", "}"])


def _in_lanes(src, op, A, init, value, nan, outer_sizes, general, lead=None):
    """Each output element's contiguous run reduced in independent lanes (ARI_LANES: two vector
    registers' worth), which vectorize (and round better); floats' maximum and minimum: a plain select
    per lane and a lane of NaN catchers. ``lead`` (not with NaN catchers): the size of reduced leading
    axes too, each of whose slices adds its runs into the accumulators (a bias gradient's sum over axes
    (0, 2, 3): one run per image and channel, instead of a scalar loop through acc[k])."""
    combine = COMBINE[op.combine]
    L = f"ARI_LANES({'2 * ' if nan else ''}sizeof({A}))"  # a lane and its NaN catcher: twice the state
    if lead is not None:
        return "\n".join([
            f"if ({src.contiguous}) {{",
            f"    const int64_t m = {outer_sizes}, lead = {lead};",
            "    for (int64_t r = 0; r < lead; r++) for (int64_t k = 0; k < outn; k++) {",
            f"        const int64_t base = (r * outn + k) * m; {A} lane[{L}]; int64_t i = 0;",
            f"        for (int l = 0; l < {L}; l++) lane[l] = {init};",
            hang(f"        for (; i + {L} <= m; i += {L}) for (int l = 0; l < {L}; l++) ", _block(src.load("base + i + l"), f"lane[l] = {combine('lane[l]', value)};"), " " * 8),
            hang("        for (; i < m; i++) ", _block(src.load("base + i"), f"lane[0] = {combine('lane[0]', value)};"), " " * 8),
            "        " + _gather_lanes(L, A, lambda a, b: f"lane[{a}] = {combine(f'lane[{a}]', f'lane[{b}]')};"),
            f"        acc[k] = {combine('acc[k]', 'lane[0]')};",
            "    }",
            "} else {", indent(general), "}"])

    def fold(lane):
        catch = f" nanl[{lane}] = xv != xv ? xv : nanl[{lane}];" if nan else ""
        return f"lane[{lane}] = {combine(f'lane[{lane}]', value)};{catch}"

    def merge(a, b):  # lane b into lane a, and b's NaN catcher into a's
        catch = f" nanl[{a}] = nanl[{b}] != nanl[{b}] ? nanl[{b}] : nanl[{a}];" if nan else ""
        return f"lane[{a}] = {combine(f'lane[{a}]', f'lane[{b}]')};{catch}"

    return "\n".join([
        f"if ({src.contiguous}) {{",
        f"    const int64_t m = {outer_sizes};",
        "    for (int64_t k = 0; k < outn; k++) {",
        f"        const int64_t base = k * m; {A} lane[{L}]; int64_t i = 0;{f' {A} nanl[{L}] = {{0}};' if nan else ''}",
        f"        for (int l = 0; l < {L}; l++) lane[l] = {init};",
        hang(f"        for (; i + {L} <= m; i += {L}) for (int l = 0; l < {L}; l++) ", _block(src.load("base + i + l"), fold("l")), " " * 8),
        hang("        for (; i < m; i++) ", _block(src.load("base + i"), fold("0")), " " * 8),
        "        " + _gather_lanes(L, A, merge),
        f"        acc[k] = {'nanl[0] != nanl[0] ? nanl[0] : ' if nan else ''}lane[0];",
        "    }",
        "} else {", indent(general), "}"])


def _gather_lanes(lanes, A, fold):
    """C folding every lane into lane 0 (``fold(a, b)``: C folding lane b into lane a). Lanes of 4 bytes
    or more halve, steps of independent folds at constant lanes that stay in registers (a chain through
    lane 0 cost a bias gradient's runs of 16 elements as much as their loads: (128, 50, 4, 4) 24 -> 14
    us); narrower ones chain (their halving steps are part-registers, and put the lanes in memory for
    the whole reduction: any() of 1M 29 -> 154 us)."""
    if int("".join(ch for ch in A if ch.isdigit())) < 32:
        return f"for (int l = 1; l < {lanes}; l++) {{ {fold('0', 'l')} }}"
    steps = [f"if ({lanes} > 8) for (int l = 0; l < 8; l++) {{ {fold('l', 'l + 8')} }}"]  # ARI_LANES: 8 or 16
    steps += [f"for (int l = 0; l < {w}; l++) {{ {fold('l', f'l + {w}')} }}" for w in (4, 2, 1)]
    return " ".join(steps)


def _by_rows(src, step, general):
    """The leading axes reduced (column sums): each row folded into the accumulators, which vectorizes
    (told so: inside the program's one big function gcc kept the float32-into-float64 sum of an LSTM's
    bias gradient, 1600 by 512, scalar; the accumulators and the source never overlap)."""
    return "\n".join([
        f"if ({src.contiguous}) {{",
        "    for (int64_t r = 0; r < count; r++) {",
        "        const int64_t base = r * outn;",
        *(["        #pragma omp simd"] if not src.fails else []),
        hang("        for (int64_t k = 0; k < outn; k++) ", _block(src.load("base + k"), step), " " * 8),
        "    }",
        "} else {", indent(general), "}"])


def emit_reduce(g, node, index, ins, outs):
    """A reduction of an input array, or (FusedReduce: sum(x ** 2), max(exp(x)), all(x > 0), ...) of the
    elementwise result its inputs give, computed on the fly: one pass, no temporary."""
    if isinstance(node.op, ops.FusedReduce):
        enode, rnode = node.op.parts(node.inputs)
        src = _computed(g, node, enode, index, ins, shown=not rnode.op.has_identity)
    else:
        rnode = node
        src = _array(ins[0], node.inputs[0])
    o, op, xv, ov = outs[0], rnode.op, rnode.inputs[0], node.outputs[0]
    nd, axes = xv.ndim, set(op.axis)
    kept = [a for a in range(nd) if a not in axes]
    size = src.size
    X, T = ct(xv.dtype), ct(ov.dtype)
    acc_dtype = op.accumulator_dtype(xv.dtype, ov.dtype)
    # a bool accumulator is kept as u8 (0 or 1): gcc vectorizes no loop storing _Bool
    A, init = ("u8" if acc_dtype == "bool" else ct(acc_dtype)), literal(op.identity(acc_dtype), acc_dtype)
    value = f"(({A})xv)" if op.combine in CONVERTS and A != X else "xv"
    nan = op.combine in TAKING_NAN and isfloat(xv.dtype)
    step = f"acc[k] = {(TAKING_NAN if nan else COMBINE)[op.combine]('acc[k]', value)};"
    lines = list(src.setup)
    out_axes = [a if a not in axes else None for a in range(nd)] if op.keepdims else kept
    lines += [f"{o}.shape[{k}] = {size(a) if a is not None else '1'};" for k, a in enumerate(out_axes)]
    lines.append(f"int64_t count = {' * '.join(size(a) for a in sorted(axes)) or '1'};")
    if not op.has_identity:
        lines.append(f"if (count == 0) FAIL(1, {index}, \"zero-size array to reduction operation {op.combine} "
                     f"which has no identity (input shape %s)\", {src.shape});")
    lines.append(f"int64_t outn = {' * '.join(size(a) for a in kept) or '1'};")
    # counted, not wrapped: a broadcast int8 view of 2**62 elements has 2**62 int64 accumulators
    lines.append(f"int64_t accbytes = sizeof({A}); if (ari_mul_size(&accbytes, outn + 1)) FAIL(1, {index}, "
                 f"\"array is too big: %lld accumulators of %d bytes\", (long long)outn, (int)sizeof({A}));")
    lines.append(f"{A} *restrict acc = malloc(accbytes);")
    lines.append(f"if (!acc) FAIL(3, {index}, \"out of memory\");")
    lines.append(f"for (int64_t k = 0; k < outn; k++) acc[k] = {init};")
    # accumulator strides over the kept axes (C order)
    for pos, a in enumerate(kept):
        lines.append(f"const int64_t as{a} = {' * '.join(size(b) for b in kept[pos + 1:]) or '1'};")
    general = nested(range(nd), size, "\n".join([src.load(None), f"const int64_t k = {' + '.join(f'i{a} * as{a}' for a in kept) or '0'};", step]))
    if op.combine in LANES:
        if all(a in axes for a in range(len(kept), nd)) and kept == list(range(len(kept))):  # the trailing axes
            general = _in_lanes(src, op, A, init, value, nan, " * ".join(size(a) for a in range(len(kept), nd)) or "1", general)
        elif kept and axes == set(range(min(kept))) and kept == list(range(min(kept), nd)):  # the leading ones
            general = _by_rows(src, step, general)
        elif (kept and not nan and kept == list(range(kept[0], kept[-1] + 1)) and kept[0] > 0
              and kept[-1] < nd - 1):  # leading and trailing axes around the kept ones (a bias gradient)
            general = _in_lanes(src, op, A, init, value, nan, " * ".join(size(a) for a in range(kept[-1] + 1, nd)),
                                general, lead=" * ".join(size(a) for a in range(kept[0])))
    lines.append(general)
    if src.fails:
        lines.append(f"if (negpow) {{ free(acc); FAIL(1, {index}, \"{NEGPOW}\"); }}")
    lines.append(g.alloc(ov, index, cleanup="free(acc);"))
    final = "acc[k] / (f64)count" if op.divides else "acc[k]"
    lines.append(f"for (int64_t k = 0; k < outn; k++) (({T} *){o}.data)[k] = ({T})({final});")
    lines.append("free(acc);")
    return "\n".join(lines)


def emit_arg(g, node, index, ins, outs):
    """Argmax, Argmin and ExtremumMask: for each position of the kept axes, the first extremum over
    the reduced ones (a NaN is the extremum, as in NumPy)."""
    (x,), (o,) = ins, outs
    xv, ov, op = node.inputs[0], node.outputs[0], node.op
    nd = xv.ndim
    if isinstance(op, ops.ExtremumMask):
        axes, minimum, mask = set(op.axis), op.minimum, True
    else:
        axes = set(range(nd)) if op.axis is None else {op.axis}
        minimum, mask = isinstance(op, ops.Argmin), False
    kept = [a for a in range(nd) if a not in axes]
    red = [a for a in range(nd) if a in axes]
    X = ct(xv.dtype)
    lines = [shape_buffers(1)]
    if mask:
        lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
        lines.append(g.alloc(ov, index, zero=True))
    else:
        lines.append(f"if ({' * '.join(f'{x}.shape[{a}]' for a in red) or '1'} == 0) FAIL(1, {index}, "
                     f"\"attempt to get {'argmin' if minimum else 'argmax'} of an empty sequence (input shape %s)\", "
                     f"ari_shape(sb0, &{x}, {nd}));")
        out_axes = [None if a in axes else a for a in range(nd)] if op.keepdims else kept
        for k, a in enumerate(out_axes):
            lines.append(f"{o}.shape[{k}] = {f'{x}.shape[{a}]' if a is not None else '1'};")
        lines.append(g.alloc(ov, index))
    lines.append(f"const {X} *px = (const {X} *){x}.data;")
    lines.append("int64_t q = 0;")
    if not mask and isfloat(xv.dtype) and red == [nd - 1]:
        # along the rows: runtime.h's two passes (the extremum, which vectorizes, then the first index
        # holding it); one compare-and-select chain ran 15 times slower than NumPy
        base = " + ".join(f"i{a} * {x}.strides[{a}]" for a in kept) or "0"
        find = f"ari_{'argmin' if minimum else 'argmax'}_row_{X}(px + ({base}), {x}.shape[{nd - 1}], {x}.strides[{nd - 1}])"
        lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", f"((i64 *){o}.data)[q++] = {find};"))
        return "\n".join(lines)
    better = "<" if minimum else ">"
    nan = "(xv != xv && best == best)" if isfloat(xv.dtype) else "0"
    stop = "best != best" if isfloat(xv.dtype) else "0"
    mask_off = " + ".join(f"i{a} * {o}.strides[{a}]" for a in range(nd)) or "0"
    inner = (f"const {X} xv = px[{offset(x, range(nd))}];\n"
             f"if (bi < 0 || (!({stop}) && (xv {better} best || {nan}))) {{ best = xv; bi = r; bo = {mask_off if mask else '0'}; }}\n"
             "r++;")
    per_kept = (f"{X} best = 0; int64_t bi = -1, r = 0, bo = 0;\n" + nested(red, lambda a: f"{x}.shape[{a}]", inner) + "\n"
                + (f"if (bi >= 0) ((b1 *){o}.data)[bo] = 1;" if mask else f"((i64 *){o}.data)[q++] = bi;"))
    lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per_kept))
    return "\n".join(lines)
