"""Shapes and construction: dimshuffle, reshape, shape, make_vector, the view checks (rebroadcast,
specify_shape), alloc, arange, join, repeat. Views point into their input's buffer."""

from arignote.core import ops

from .ctext import ct, indent, nested, offset, read_int, shape_buffers


def emit_dimshuffle(g, node, index, ins, outs):
    """A view: the input's axes reordered, new broadcastable axes of stride 0."""
    (x,), (o,) = ins, outs
    lines = [f"{o}.data = {x}.data;"]
    for k, a in enumerate(node.op.new_order):
        if a == "x":
            lines.append(f"{o}.shape[{k}] = 1; {o}.strides[{k}] = 0;")
        else:
            lines.append(f"{o}.shape[{k}] = {x}.shape[{a}]; {o}.strides[{k}] = {x}.strides[{a}];")
    return "\n".join(lines)


def emit_reshape(g, node, index, ins, outs):
    """A view of contiguous data with the new shape (one -1 inferred); other data is copied first (the
    copy's buffer is the program's, but the output is not always one: an output is always copied)."""
    (x, s), (o,) = ins, outs
    xv, sv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    n, xnd = ov.ndim, xv.ndim
    lines = [shape_buffers(1),
             f"if ({s}.shape[0] != {n}) FAIL(1, {index}, \"the new shape has %lld entries, not ndim={n}\", (long long){s}.shape[0]);",
             "int64_t known = 1; int unknown = -1;"]
    for k in range(n):
        lines.append(f"{o}.shape[{k}] = {read_int(s, sv, k)};")
        lines.append(f"if ({o}.shape[{k}] == -1 && unknown < 0) unknown = {k}; else if ({o}.shape[{k}] < 0) "
                     f"FAIL(1, {index}, \"invalid size %lld in the new shape\", (long long){o}.shape[{k}]); "
                     f"else if (ari_mul_size(&known, {o}.shape[{k}])) FAIL(1, {index}, \"array is too big: the new shape "
                     f"has more elements than an int64 counts\");")
    lines.append(f"int64_t size = ari_size(&{x}, {xnd});")
    lines.append(f"if (unknown >= 0) {{ if (known == 0 || size % known) FAIL(1, {index}, \"cannot reshape an array of "
                 f"shape %s into a shape with %d axes and -1\", ari_shape(sb0, &{x}, {xnd}), {n}); {o}.shape[unknown] = size / known; }}"
                 f"\nelse if (known != size) FAIL(1, {index}, \"cannot reshape an array of shape %s (size %lld) into "
                 f"one of size %lld\", ari_shape(sb0, &{x}, {xnd}), (long long)size, (long long)known);")
    # NumPy's rule for the new shape, sizes of 0 included: (0, 2**32, 2**32) is refused as NumPy refuses it
    lines.append(f"if (ari_shape_fault({o}.shape, {n}, sizeof({ct(ov.dtype)}))) FAIL(1, {index}, \"array is too big: "
                 f"the new shape %s has more bytes than an int64 counts\", ari_shape(sb0, &{o}, {n}));")
    lines.append(f"if (ari_contiguous(&{x}, {xnd})) {{ int64_t st = 1; {o}.data = {x}.data; "
                 f"for (int k = {n} - 1; k >= 0; k--) {{ {o}.strides[k] = st; st *= {o}.shape[k]; }} }}")
    lines.append(f"else {{ {g.alloc(ov, index, conditional=True)} arr_t tmp; tmp.data = {o}.data; "
                 f"ari_copy(&tmp, &{x}, {xnd}, sizeof({ct(xv.dtype)})); }}")
    return "\n".join(lines)


def emit_shape(g, node, index, ins, outs):
    (x,), (o,) = ins, outs
    nd = node.inputs[0].ndim
    return "\n".join([f"{o}.shape[0] = {nd};", g.alloc(node.outputs[0], index)]
                     + [f"((i64 *){o}.data)[{k}] = {x}.shape[{k}];" for k in range(nd)])


def emit_shape_i(g, node, index, ins, outs):
    (x,), (o,) = ins, outs
    return "\n".join([g.alloc(node.outputs[0], index), f"*(i64 *){o}.data = {x}.shape[{node.op.i}];"])


def emit_make_vector(g, node, index, ins, outs):
    (o,), ov = outs, node.outputs[0]
    T = ct(ov.dtype)
    lines = [f"{o}.shape[0] = {len(ins)};", g.alloc(ov, index)]
    lines += [f"(({T} *){o}.data)[{k}] = ({T})*(const {ct(var.dtype)} *){v}.data;"
              for k, (v, var) in enumerate(zip(ins, node.inputs))]
    return "\n".join(lines)


def emit_view_check(g, node, index, ins, outs):
    """Rebroadcast and SpecifyShape: check the shape, return the input itself."""
    x, o, nd = ins[0], outs[0], node.inputs[0].ndim
    lines = [shape_buffers(1), f"{o} = {x};"]
    if isinstance(node.op, ops.Rebroadcast):
        for axis, b in node.op.axes:
            if b:
                lines.append(f"if ({x}.shape[{axis}] != 1) FAIL(1, {index}, \"axis {axis} must have size 1 to be "
                             f"broadcastable, but the shape is %s\", ari_shape(sb0, &{x}, {nd}));")
    else:
        sizes = iter(zip(ins[1:], node.inputs[1:]))
        expected, conds = [], []
        for axis, known in enumerate(node.op.known):
            if known:
                v, var = next(sizes)
                expected.append((f"%lld", f"(long long){read_int(v, var)}"))
                conds.append(f"{x}.shape[{axis}] != {read_int(v, var)}")
            else:
                expected.append(("None", None))
        text = "(" + ", ".join(e for e, _ in expected) + ("," if len(expected) == 1 else "") + ")"
        args = "".join(f", {a}" for _, a in expected if a)
        if conds:
            lines.append(f"if ({' || '.join(conds)}) FAIL(1, {index}, \"the shape is %s, but specify_shape expects {text}\", "
                         f"ari_shape(sb0, &{x}, {nd}){args});")
    return "\n".join(lines)


def emit_alloc(g, node, index, ins, outs):
    """A new array of the given shape filled with the value (stretched along its broadcastable axes)."""
    value, sizes = ins[0], ins[1:]
    vv, ov = node.inputs[0], node.outputs[0]
    o, nd, pad = outs[0], ov.ndim, ov.ndim - node.inputs[0].ndim
    lines = [shape_buffers(2)]
    for k, (s, var) in enumerate(zip(sizes, node.inputs[1:])):
        lines.append(f"{o}.shape[{k}] = {read_int(s, var)};")
    for k in range(len(sizes)):  # once every size is read, so that the message shows them all
        lines.append(f"if ({o}.shape[{k}] < 0) FAIL(1, {index}, \"negative size in shape %s\", ari_shape(sb0, &{o}, {nd}));")
    lines.append("arr_t padded;" + "".join(f" padded.shape[{a}] = 1;" for a in range(pad))
                 + "".join(f" padded.shape[{a + pad}] = {value}.shape[{a}];" for a in range(vv.ndim)))
    for a in range(vv.ndim):
        if not vv.broadcastable[a]:
            lines.append(f"if ({value}.shape[{a}] != {o}.shape[{a + pad}]) FAIL(1, {index}, \"input shapes %s, %s disagree on "
                         f"axis {a + pad}: the value's axes stretch only where its type is broadcastable\", "
                         f"ari_shape(sb0, &{o}, {nd}), ari_shape(sb1, &padded, {nd}));")
    lines.append(g.alloc(ov, index))
    T = ct(ov.dtype)
    src = " + ".join(f"i{a + pad} * ({value}.shape[{a}] == 1 ? 0 : {value}.strides[{a}])" for a in range(vv.ndim)) or "0"
    lines.append(f"const {T} *pv = (const {T} *){value}.data; {T} *po = ({T} *){o}.data; int64_t q = 0;")
    lines.append(nested(range(nd), lambda a: f"{o}.shape[{a}]", f"po[q++] = pv[{src}];"))
    return "\n".join(lines)


def emit_arange(g, node, index, ins, outs):
    (a, b, c), (o,) = ins, outs
    av, bv, cv = node.inputs
    ov = node.outputs[0]
    T = ct(ov.dtype)

    def rd(v, var):
        return f"((f64)*(const {ct(var.dtype)} *){v}.data)"

    # NumPy's length: ceil((stop - start) / step), computed in double, and the values start + i * step
    return "\n".join([
        f"f64 start = {rd(a, av)}, stop = {rd(b, bv)}, step = {rd(c, cv)};",
        f"if (step == 0) FAIL(1, {index}, \"arange: step cannot be zero\");",
        "f64 len = ceil((stop - start) / step);",
        f"if (!(len == len)) FAIL(1, {index}, \"arange: cannot compute the length\");",
        f"if (len >= 0x1p63) FAIL(1, {index}, \"arange: array is too big: %g values, more than an int64 counts\", len);",
        f"{o}.shape[0] = len > 0 ? (int64_t)len : 0;",
        g.alloc(ov, index),
        f"{T} s0 = ({T})*(const {ct(av.dtype)} *){a}.data, d0 = ({T})*(const {ct(cv.dtype)} *){c}.data;",
        f"for (int64_t i = 0; i < {o}.shape[0]; i++) (({T} *){o}.data)[i] = ({T})(s0 + ({T})i * d0);",
    ])


def emit_join(g, node, index, ins, outs):
    """The inputs concatenated along ``axis``: every other axis must match."""
    o, ov = outs[0], node.outputs[0]
    axis, nd = node.op.axis, ov.ndim
    T = ct(ov.dtype)
    first = ins[0]
    lines = [shape_buffers(2)]
    lines += [f"{o}.shape[{a}] = {first}.shape[{a}];" for a in range(nd)]
    lines.append(f"{o}.shape[{axis}] = 0;")  # the sum, checked: wrapped around, it would allocate too little
    lines += [f"if (ari_add_size(&{o}.shape[{axis}], {v}.shape[{axis}])) FAIL(1, {index}, \"array is too big: the joined "
              f"axis has more elements than an int64 counts\");" for v in ins]
    for v in ins[1:]:
        for a in range(nd):
            if a != axis:
                lines.append(f"if ({v}.shape[{a}] != {first}.shape[{a}]) FAIL(1, {index}, \"all the input array dimensions "
                             f"except for the concatenation axis must match exactly, but along dimension {a} the shapes are "
                             f"%s and %s\", ari_shape(sb0, &{first}, {nd}), ari_shape(sb1, &{v}, {nd}));")
    lines.append(g.alloc(ov, index))
    lines.append("int64_t at = 0; arr_t r;")
    for v, var in zip(ins, node.inputs):
        lines.append(f"r = {o}; r.shape[{axis}] = {v}.shape[{axis}]; r.data = {o}.data + at * {o}.strides[{axis}] * sizeof({T});")
        src = offset(v, range(nd))
        dst = " + ".join(f"i{a} * r.strides[{a}]" for a in range(nd)) or "0"
        general = nested(range(nd), lambda a: f"r.shape[{a}]",
                         f"(({T} *)r.data)[{dst}] = ({T})((const {ct(var.dtype)} *){v}.data)[{src}];")
        if nd:  # rows contiguous on both sides (the usual case): a unit-stride inner loop, which vectorizes
            last, outer = nd - 1, range(nd - 1)
            row = (f"{T} *restrict d = ({T} *)r.data + {offset('r', outer)}; "
                   f"const {ct(var.dtype)} *restrict s = (const {ct(var.dtype)} *){v}.data + {offset(v, outer)};\n"
                   f"for (int64_t i{last} = 0; i{last} < r.shape[{last}]; i{last}++) d[i{last}] = ({T})s[i{last}];")
            general = (f"if (r.strides[{last}] == 1 && {v}.strides[{last}] == 1) {{  /* contiguous rows: a loop that vectorizes */\n"
                       + indent(nested(outer, lambda a: f"r.shape[{a}]", row), "    ")
                       + f"\n}} else {{\n{indent(general, '    ')}\n}}")
        lines.append(general)
        lines.append(f"at += {v}.shape[{axis}];")
    return "\n".join(lines)


def emit_repeat(g, node, index, ins, outs):
    """Each slice along ``axis`` repeated (one count, or one per slice)."""
    (x, rp), (o,) = ins, outs
    xv, rv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    axis, nd, T = node.op.axis, xv.ndim, ct(xv.dtype)
    rep = (lambda j: read_int(rp, rv)) if rv.ndim == 0 else (lambda j: f"{read_int(rp, rv, j)}")
    lines = [shape_buffers(1), "int64_t total = 0;"]
    if rv.ndim == 1:
        lines.append(f"if ({rp}.shape[0] != {x}.shape[{axis}] && {rp}.shape[0] != 1) FAIL(1, {index}, \"operands could not be "
                     f"broadcast together: %lld repeat counts for an axis of %lld\", (long long){rp}.shape[0], (long long){x}.shape[{axis}]);")
        rep = lambda j: f"{read_int(rp, rv, f'({rp}.shape[0] == 1 ? 0 : {j})')}"
    lines.append(f"for (int64_t j = 0; j < {x}.shape[{axis}]; j++) {{ int64_t c = {rep('j')}; if (c < 0) FAIL(1, {index}, "
                 f"\"repeats may not contain negative values\"); if (ari_add_size(&total, c)) FAIL(1, {index}, \"array is too big: "
                 f"the repeated axis has more elements than an int64 counts\"); }}")
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(f"{o}.shape[{axis}] = total;")
    lines.append(g.alloc(ov, index))
    outer = [a for a in range(nd) if a != axis]
    body = (f"int64_t w = 0;\nfor (int64_t j = 0; j < {x}.shape[{axis}]; j++) {{\n"
            f"    int64_t c = {rep('j')};\n    for (int64_t t = 0; t < c; t++, w++) {{\n"
            f"        (({T} *){o}.data)[{' + '.join([f'i{a} * {o}.strides[{a}]' for a in outer] + [f'w * {o}.strides[{axis}]'])}] = "
            f"((const {T} *){x}.data)[{' + '.join([f'i{a} * {x}.strides[{a}]' for a in outer] + [f'j * {x}.strides[{axis}]'])}];\n"
            "    }\n}")
    lines.append(nested(outer, lambda a: f"{x}.shape[{a}]", body))
    return "\n".join(lines)
