"""Indexing: basic (a view, integer indices bounds-checked) and advanced (integer arrays, boolean
masks) subtensors, and the inc/set_subtensor of each (a copy of x with the region written)."""

from arignote.core import ops
from arignote.core.errors import UnsupportedOpError

from .ctext import ct, indent, literal, nested, offset, read_int, shape_buffers


def _part(part, extra):
    """(has it: "0"/"1", C value) of one part of an index entry: absent, symbolic (the next of the
    node's extra inputs, ``extra``: (C name, variable) pairs) or a constant."""
    if part is None:
        return "0", "0"
    if part == ops.SYMBOLIC:
        v, var = next(extra)
        return "1", read_int(v, var)
    return "1", literal(int(part), "int64")  # -2**63 has no plain C literal


def _basic_view(g, node, index, x, xnd, dtype, o, idx_list, extra):
    """C making ``o`` the view x[idx_list] (basic indexing), integer indices bounds-checked."""
    lines = [f"{o}.data = {x}.data;"]
    axis, k = 0, 0
    isz = f"sizeof({ct(dtype)})"

    for entry in idx_list:
        if entry[0] == "newaxis":
            lines.append(f"{o}.shape[{k}] = 1; {o}.strides[{k}] = 0;")
            k += 1
        elif entry[0] == "index":
            _, i = _part(entry[1], extra)
            lines.append(f"{{ int64_t idx = {i}; if (idx < -{x}.shape[{axis}] || idx >= {x}.shape[{axis}]) FAIL(2, {index}, "
                         f"\"index %lld is out of bounds for axis {axis} with size %lld (input shape %s)\", (long long)idx, "
                         f"(long long){x}.shape[{axis}], ari_shape(sb0, &{x}, {xnd}));")
            lines.append(f"  if (idx < 0) idx += {x}.shape[{axis}]; {o}.data += idx * {x}.strides[{axis}] * {isz}; }}")
            axis += 1
        elif entry[0] == "slice":
            hs, start = _part(entry[1], extra)
            he, stop = _part(entry[2], extra)
            hstep, step = _part(entry[3], extra)
            step = step if hstep == "1" else "1"
            lines.append(f"{{ int64_t step = {step}, first, len; if (step == 0) FAIL(1, {index}, \"slice step cannot be zero\");")
            lines.append(f"  ari_slice({x}.shape[{axis}], {hs}, {start}, {he}, {stop}, step, &first, &len);")
            # one element or none: any stride will do (a step near 2**63 times the stride would overflow)
            lines.append(f"  {o}.shape[{k}] = len; {o}.strides[{k}] = len > 1 ? {x}.strides[{axis}] * step : {x}.strides[{axis}];")
            lines.append(f"  if (len > 0) {o}.data += first * {x}.strides[{axis}] * {isz}; }}")
            axis += 1
            k += 1
        else:
            raise UnsupportedOpError(f"the C backend has no implementation of {node.op} (index arrays)")
    for a in range(axis, xnd):
        lines.append(f"{o}.shape[{k}] = {x}.shape[{a}]; {o}.strides[{k}] = {x}.strides[{a}];")
        k += 1
    return lines, k


def emit_subtensor(g, node, index, ins, outs):
    """Basic indexing: a view, with integer indices bounds-checked (IndexError naming the axis)."""
    xv = node.inputs[0]
    lines, _ = _basic_view(g, node, index, ins[0], xv.ndim, xv.dtype, outs[0], node.op.idx_list,
                           iter(zip(ins[1:], node.inputs[1:])))
    return "\n".join([shape_buffers(1)] + lines)


def _fitting(index, region, rnd, y, yv, bufs=("sb0", "sb1"), first=""):
    """(C checking that y, padded on the left, fits ``region`` of ``rnd`` axes, stretching only along
    its broadcastable axes, after running the C ``first`` when it does not; the C offset of y's element
    for the region's loop indices i0...)."""
    pad = rnd - yv.ndim
    checks = [f"if ({y}.shape[{a}] != {region}.shape[{a + pad}]) {{ {first}FAIL(1, {index}, \"cannot fit a value of shape %s "
              f"into the indexed region of shape %s (only broadcastable axes stretch)\", "
              f"ari_shape({bufs[0]}, &{y}, {yv.ndim}), ari_shape({bufs[1]}, &{region}, {rnd})); }}"
              for a in range(yv.ndim) if not yv.broadcastable[a]]
    src = " + ".join(f"i{a + pad} * ({y}.shape[{a}] == 1 ? 0 : {y}.strides[{a}])" for a in range(yv.ndim)) or "0"
    return checks, src


def _update(node, target, value):
    """C setting, or incrementing, the element ``target`` of x by the value ``value`` of y: the sum in
    ``IncSubtensor.sum_dtype`` (core's one rule: NumPy's dtype for x + y, as np.add.at), then stored
    in x's dtype."""
    x, y = node.inputs[:2]
    T, P = ct(x.dtype), ct(node.op.sum_dtype(x.dtype, y.dtype))
    if node.op.set_instead_of_inc:
        return f"{target} = ({T}){value};"
    if P == T:
        return f"{target} += ({T}){value};"
    return f"{target} = ({T})(({P}){target} + ({P}){value});"


def _store_broadcast(g, node, index, region, rnd, y, yv, T, bufs=("sb0", "sb1")):
    """C writing y (padded on the left, stretching along its broadcastable axes) into ``region`` (set or
    incremented: ``_update``); where both have unit-stride rows (y's not stretched), the rows as a loop
    that vectorizes."""
    lines, src = _fitting(index, region, rnd, y, yv, bufs)
    dst = " + ".join(f"i{a} * {region}.strides[{a}]" for a in range(rnd)) or "0"
    Y = ct(yv.dtype)
    body = _update(node, f"(({T} *){region}.data)[{dst}]", f"((const {Y} *){y}.data)[{src}]")
    general = nested(range(rnd), lambda a: f"{region}.shape[{a}]", body)
    if not rnd or not yv.ndim or yv.broadcastable[-1]:
        lines.append(general)
        return lines
    last, ylast, pad = rnd - 1, yv.ndim - 1, rnd - yv.ndim
    row_dst = " + ".join(f"i{a} * {region}.strides[{a}]" for a in range(last)) or "0"
    row_src = " + ".join(f"i{a + pad} * ({y}.shape[{a}] == 1 ? 0 : {y}.strides[{a}])" for a in range(ylast)) or "0"
    row = "\n".join([
        f"{T} *restrict d = ({T} *){region}.data + ({row_dst});",
        f"const {Y} *restrict s = (const {Y} *){y}.data + ({row_src});",
        "#pragma omp simd",
        f"for (int64_t i{last} = 0; i{last} < {region}.shape[{last}]; i{last}++) {_update(node, f'd[i{last}]', f's[i{last}]')}"])
    rows = nested(range(last), lambda a: f"{region}.shape[{a}]", row)
    lines.append(f"if ({region}.strides[{last}] == 1 && {y}.strides[{ylast}] == 1) {{\n{indent(rows)}\n}} else {{\n{indent(general)}\n}}")
    return lines


def _copy_of_x(g, node, index, x, o):
    """The start of every inc/set_subtensor: the output allocated as a copy of x (the region is then
    written into it), or x's own buffer where x dies here (``plan.reuse``)."""
    xv, ov = node.inputs[0], node.outputs[0]
    lines = [shape_buffers(2)]
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(xv.ndim)]
    if g.taken_over(node, ov) is xv:
        lines.append(g.alloc_or_reuse(node, ov, index))
        return lines
    lines.append(g.alloc(ov, index))
    lines.append(f"ari_copy(&{o}, &{x}, {xv.ndim}, sizeof({ct(xv.dtype)}));")
    return lines


def emit_inc_subtensor(g, node, index, ins, outs):
    """A copy of x with a basic-indexed region incremented (or set) by y."""
    x, y, o = ins[0], ins[1], outs[0]
    xv, yv = node.inputs[0], node.inputs[1]
    T = ct(xv.dtype)
    lines = _copy_of_x(g, node, index, x, o)
    lines.append("arr_t r;")
    view, rnd = _basic_view(g, node, index, o, xv.ndim, xv.dtype, "r", node.op.idx_list,
                            iter(zip(ins[2:], node.inputs[2:])))
    lines += view
    lines += _store_broadcast(g, node, index, "r", rnd, y, yv, T)
    return "\n".join(lines)


def _advanced_plan(node, x, xv, entries, extra, index):
    """NumPy's advanced indexing (integer arrays, boolean masks, with ints, slices and None), as C.
    Returns (setup lines, output dims as C size expressions, C offset of the source element in x
    for the loop indices i0.. over the output). Masks become integer arrays of their nonzero positions."""
    setup = []
    arrays = []   # (arr name, ndim, dtype, input axis)
    basic = []    # output dims from slices/newaxis/remaining axes: (kind, axis, name)
    adv_pos = []  # positions in the index of advanced entries (arrays and ints)
    axis = 0
    counter = [0]

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}{counter[0]}"

    ints = []  # (C value, axis)
    for pos, entry in enumerate(entries):
        if entry[0] == "newaxis":
            basic.append(("new", None, None))
        elif entry[0] == "slice":
            hs, start = _part(entry[1], extra); he, stop = _part(entry[2], extra); hst, step = _part(entry[3], extra)
            step = step if hst == "1" else "1"
            f, n, st = fresh("first"), fresh("len"), fresh("step")
            setup.append(f"int64_t {st} = {step}, {f}, {n}; if ({st} == 0) FAIL(1, {index}, \"slice step cannot be zero\");")
            setup.append(f"ari_slice({x}.shape[{axis}], {hs}, {start}, {he}, {stop}, {st}, &{f}, &{n});")
            basic.append(("slice", axis, (f, n, st)))
            axis += 1
        elif entry[0] == "index":
            _, i = _part(entry[1], extra)
            ints.append((i, axis))
            adv_pos.append(pos)
            axis += 1
        else:
            v, var = next(extra)
            adv_pos.append(pos)
            if entry[2]:  # a boolean mask over entry[1] axes -> that many int64 position arrays
                k = entry[1]
                for a in range(k):
                    setup.append(f"if ({v}.shape[{a}] != {x}.shape[{axis + a}]) FAIL(2, {index}, \"boolean index did not "
                                 f"match indexed array along axis {axis + a}; size of axis is %lld but size of corresponding "
                                 f"boolean axis is %lld\", (long long){x}.shape[{axis + a}], (long long){v}.shape[{a}]);")
                cnt = fresh("count")
                setup.append(f"int64_t {cnt} = 0;")
                setup.append(nested(range(k), lambda a: f"{v}.shape[{a}]",
                                    f"{cnt} += ((const b1 *){v}.data)[{offset(v, range(k))}] != 0;"))
                names = [fresh("mask") for _ in range(k)]
                for nm in names:
                    setup.append(f"arr_t {nm}; {nm}.shape[0] = {cnt}; {nm}.strides[0] = 1; "
                                 f"{nm}.data = malloc(sizeof(i64) * ({cnt} + 1)); if (!{nm}.data) FAIL(3, {index}, \"out of memory\");"
                                 f" if (nscratch < 64) scratch[nscratch++] = {nm}.data;")
                fill = f"if (((const b1 *){v}.data)[{offset(v, range(k))}]) {{ " + " ".join(
                    f"((i64 *){nm}.data)[w] = i{a};" for a, nm in enumerate(names)) + " w++; }"
                setup.append("{ int64_t w = 0;\n" + nested(range(k), lambda a: f"{v}.shape[{a}]", fill) + "\n}")
                for a, nm in enumerate(names):
                    arrays.append((nm, 1, "int64", axis + a))
                axis += k
            else:
                arrays.append((v, var.ndim, var.dtype, axis))
                axis += 1
    for a in range(axis, xv.ndim):
        basic.append(("rest", a, None))
    bnd = max([nd for _, nd, _, _ in arrays] + [0])
    # the broadcast shape of the index arrays (NumPy's rule: sizes equal or 1, aligned on the right)
    setup.append(f"int64_t bshape[{max(bnd, 1)}];")
    for d in range(bnd):
        setup.append(f"bshape[{d}] = 1;")
        for v, nd, _, _ in arrays:
            if d >= bnd - nd:
                a = d - (bnd - nd)
                setup.append(f"if ({v}.shape[{a}] != 1) {{ if (bshape[{d}] != 1 && bshape[{d}] != {v}.shape[{a}]) "
                             f"FAIL(2, {index}, \"shape mismatch: indexing arrays could not be broadcast together\"); "
                             f"bshape[{d}] = {v}.shape[{a}]; }}")
    adjacent = adv_pos == list(range(adv_pos[0], adv_pos[0] + len(adv_pos))) if adv_pos else True
    # output dims
    dims = []  # (kind, data)
    if adjacent:
        first = adv_pos[0]
        before = [b for b, pos in zip(basic, [p for p, e in enumerate(entries) if e[0] in ("slice", "newaxis")]
                                      + [len(entries)] * 64) if pos < first]
        after = basic[len(before):]
        dims = [("basic", b) for b in before] + [("b", d) for d in range(bnd)] + [("basic", b) for b in after]
    else:
        dims = [("b", d) for d in range(bnd)] + [("basic", b) for b in basic]
    sizes, terms = [], []
    for k, (kind, data) in enumerate(dims):
        if kind == "b":
            sizes.append(f"bshape[{data}]")
        else:
            what, a, extra_data = data
            if what == "new":
                sizes.append("1")
            elif what == "slice":
                f, n, st = extra_data
                sizes.append(n)
                terms.append(f"({f} + i{k} * {st}) * {x}.strides[{a}]")
            else:
                sizes.append(f"{x}.shape[{a}]")
                terms.append(f"i{k} * {x}.strides[{a}]")
    b_loop = [k for k, (kind, _) in enumerate(dims) if kind == "b"]
    for i, a in ints:
        setup.append(f"{{ int64_t idx = {i}; if (idx < -{x}.shape[{a}] || idx >= {x}.shape[{a}]) FAIL(2, {index}, "
                     f"\"index %lld is out of bounds for axis {a} with size %lld\", (long long)idx, (long long){x}.shape[{a}]); }}")
        terms.append(f"(({i}) < 0 ? ({i}) + {x}.shape[{a}] : ({i})) * {x}.strides[{a}]")
    checks = []
    for v, nd, dtype, a in arrays:
        pos = " + ".join(f"i{b_loop[bnd - nd + d]} * ({v}.shape[{d}] == 1 ? 0 : {v}.strides[{d}])" for d in range(nd)) or "0"
        name = f"ix_{v}_{a}"
        checks.append(f"int64_t {name} = (int64_t)((const {ct(dtype)} *){v}.data)[{pos}];")
        checks.append(f"if ({name} < -{x}.shape[{a}] || {name} >= {x}.shape[{a}]) FAIL(2, {index}, \"index %lld is out of "
                      f"bounds for axis {a} with size %lld\", (long long){name}, (long long){x}.shape[{a}]);")
        checks.append(f"if ({name} < 0) {name} += {x}.shape[{a}];")
        terms.append(f"{name} * {x}.strides[{a}]")
    # the loop over an empty result never reads the indices: NumPy checks them all the same (m[[5]] of a
    # (2, 0) matrix is an IndexError), so a loop over the index arrays alone checks them then
    unread = nested(b_loop, lambda k: sizes[k], "\n".join(checks)) if checks else ""
    return setup, sizes, checks, " + ".join(terms) or "0", unread


def _check_unread(region, nd, unread):
    """C checking the indices of an empty ``region`` (``_advanced_plan``'s ``unread``)."""
    if not unread:
        return []
    return [f"if (ari_size(&{region}, {nd}) == 0) {{  /* nothing to copy: check the indices alone */\n{indent(unread)}\n}}"]


def emit_advanced_subtensor(g, node, index, ins, outs):
    x, o = ins[0], outs[0]
    xv, ov = node.inputs[0], node.outputs[0]
    T = ct(xv.dtype)
    setup, sizes, checks, src, unread = _advanced_plan(node, x, xv, node.op.idx_list, iter(zip(ins[1:], node.inputs[1:])),
                                                       index)
    lines = [shape_buffers(1)] + setup
    lines += [f"{o}.shape[{k}] = {s};" for k, s in enumerate(sizes)]
    lines += _check_unread(o, len(sizes), unread)
    lines.append(g.alloc(ov, index))
    lines.append("int64_t q = 0;")
    body = "\n".join(checks + [f"(({T} *){o}.data)[q++] = ((const {T} *){x}.data)[{src}];"])
    lines.append(nested(range(len(sizes)), lambda k: f"{o}.shape[{k}]", body))
    return "\n".join(lines)


def emit_advanced_inc_subtensor(g, node, index, ins, outs):
    x, y, o = ins[0], ins[1], outs[0]
    xv, yv = node.inputs[0], node.inputs[1]
    T = ct(xv.dtype)
    lines = _copy_of_x(g, node, index, x, o)
    setup, sizes, checks, src, unread = _advanced_plan(node, o, xv, node.op.idx_list, iter(zip(ins[2:], node.inputs[2:])),
                                                       index)
    lines += setup
    rnd = len(sizes)
    lines.append("arr_t r;")
    lines += [f"r.shape[{k}] = {s};" for k, s in enumerate(sizes)]
    lines += _check_unread("r", rnd, unread)
    # an out-of-range index is reported before a value that does not fit, as the reference does
    checks_y, ysrc = _fitting(index, "r", rnd, y, yv, first=f"{{\n{indent(unread)}\n}}\n" if unread else "")
    lines += checks_y
    body = "\n".join(checks + [_update(node, f"(({T} *){o}.data)[{src}]", f"((const {ct(yv.dtype)} *){y}.data)[{ysrc}]")])
    lines.append(nested(range(rnd), lambda k: f"r.shape[{k}]", body))
    return "\n".join(lines)
