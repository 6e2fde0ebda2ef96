"""Elementwise ops: scalar C expressions (table.SCALAR), the scalar body of a Composite, the broadcast
check, and the three shapes of loop an elementwise node runs in."""

from arignote.core import ops

from .ctext import comment, ct, indent, literal, nested, shape_buffers, shape_text

NEGPOW = "Integers to negative integer powers are not allowed (Pow)"  # when a body's `negpow` flag is set


def scalar_code(form, op, args, in_dtypes, out_dtype):
    """A C expression of type ``out_dtype`` for ``op`` (its SCALAR ``form``) applied to the C values
    ``args``: the value inputs converted to the op's compute dtype first, as NumPy's loops do."""
    t = op.compute_dtype(in_dtypes, out_dtype)
    start = op.value_inputs_start
    cast = [a if i < start or d == t else f"(({ct(t)}){a})" for i, (a, d) in enumerate(zip(args, in_dtypes))]
    return f"(({ct(out_dtype)})({form(ct(t), *cast)}))"


def scalar_body(g, op, in_dtypes, out_dtypes):
    """How one element of elementwise ``op`` is computed from the values x0, x1, ... of its inputs:
    (C statements, one result expression per output, whether an element can fail: an integer to a
    negative power, which sets the flag ``negpow`` the loop declares)."""
    in_dtypes = [str(d) for d in in_dtypes]
    fails = op.may_fail(in_dtypes)
    if not isinstance(op, ops.Composite):
        xs = [f"x{j}" for j in range(len(in_dtypes))]
        return [], [scalar_code(g.scalar_form(op), op, xs, in_dtypes, str(out_dtypes[0]))], fails
    inner, body = op.fgraph, []
    values = {iv: f"x{j}" for j, iv in enumerate(inner.inputs)}
    for inode in inner.apply_nodes:
        args = [values[v] if v in values else literal(v.data, v.dtype) for v in inode.inputs]
        dts = [v.dtype for v in inode.inputs]
        for o in inode.outputs:
            name = g.fresh("s")
            body.append(f"{ct(o.dtype)} {name} = {scalar_code(g.scalar_form(inode.op), inode.op, args, dts, o.dtype)};")
            values[o] = name
    results = [values[o] if o in values else literal(o.data, o.dtype) for o in inner.outputs]
    return body, [f"(({ct(o.dtype)}){r})" for r, o in zip(results, inner.outputs)], fails


def broadcast_header(in_vars, index, ins, nd):
    """C setting n[] to the broadcast shape of an elementwise node's inputs (variables ``in_vars``,
    C names ``ins``), checking it: a size-1 axis stretches only where its type is broadcastable."""
    lines = [f"int64_t n[{max(nd, 1)}];"]
    fmt = ", ".join(["%s"] * len(ins))
    for a in range(nd):
        fixed = [v for v, var in zip(ins, in_vars) if not var.broadcastable[a]]
        lines.append(f"n[{a}] = {f'{fixed[0]}.shape[{a}]' if fixed else '1'};")
        for v in fixed[1:]:
            lines.append(f"if ({v}.shape[{a}] != n[{a}]) FAIL(1, {index}, \"input shapes {fmt} disagree on axis {a} "
                         f"(a size-1 axis stretches only where its type is broadcastable)\", "
                         f"{shape_text([(w, nd) for w in ins])});")
    return lines


def contiguous_test(ins, in_vars, nd):
    """C true when every operand that is not a single value by its type is C-contiguous with the
    broadcast shape n[] (the flat loop's condition)."""
    conds = [f"ari_contiguous(&{v}, {nd})" + "".join(f" && {v}.shape[{a}] == n[{a}]" for a in range(nd))
             for v, var in zip(ins, in_vars) if not all(var.broadcastable)]
    return " && ".join(f"({c})" for c in conds) or "1"


def _kernel(g, index, op, kind, tin, tout, fields, setup, loop):
    """A C function running ``loop`` over [lo, hi) of the flat index (or of the rows), its operands in a
    struct; its number k names both (ari_kernel<k>, ari_ctx<k>). Never inlined: gcc inlines a static
    function called once into ari_run, where a serial loop ran 1.5 times slower (a training step of a
    784-500-10 MLP at batch 20: 650 us instead of 420)."""
    k = len(g.helpers)
    unpack = [f"const {t} *restrict p{j} = c->p{j};" for j, t in enumerate(tin)]
    unpack += [f"{t} *restrict q{j} = c->q{j};" for j, t in enumerate(tout)]
    g.helpers.append("\n".join(
        [f"\n/* the {kind} loop of node {index}: {comment(op)} */",
         f"typedef struct {{ {' '.join(fields)} }} ari_ctx{k};",
         f"static __attribute__((noinline)) void ari_kernel{k}(void *context, int64_t lo, int64_t hi) {{",
         f"    const ari_ctx{k} *c = (const ari_ctx{k} *)context;",
         indent("\n".join(unpack + setup + [loop])), "}\n"]))
    return k


def _run(least, k, count, per, align):
    """C running kernel k over [0, count): split between the cores from ``least`` elements when the
    plan says the node is worth threads (``plan.parallel_min``; None: it is not), else on this thread."""
    if least:
        return f"    ari_parallel(ari_kernel{k}, &context, {count}, {per}, {align}, {least});"
    return f"    if ({count} > 0) ari_kernel{k}(&context, 0, {count});"


def emit_elemwise(g, node, index, ins, outs):
    """One loop for an elementwise op or a fused Composite, Theano's broadcasting, any strides. Three
    shapes of loop, chosen at run time:
    - flat: every operand C-contiguous with the output's shape (or a single value by its type);
    - rows: along the last axis every operand has a unit stride or is broadcast by its type (a value
      loaded once per row), e.g. x + b with b a row: the inner loop vectorizes, vector math included;
    - strided: anything else (transposed or negatively strided views).
    Flat and rows are kernels; those of the nodes the plan finds worth threads (``plan.threads``)
    split large arrays between the cores."""
    nd = node.outputs[0].ndim
    op = node.op
    lines = [shape_buffers(len(ins)), "int negpow = 0;"] + broadcast_header(node.inputs, index, ins, nd)
    for v, var in zip(outs, node.outputs):
        lines += [f"{v}.shape[{a}] = n[{a}];" for a in range(nd)]
        lines.append(g.alloc_or_reuse(node, var, index))
    body, results, negpow = scalar_body(g, op, [v.dtype for v in node.inputs], [v.dtype for v in node.outputs])
    least = g.plan.parallel_min.get(node)
    static_scalar = [all(var.broadcastable) for var in node.inputs]
    tin = [ct(var.dtype) for var in node.inputs]
    tout = [ct(var.dtype) for var in node.outputs]
    stores = [f"q{j}[i] = {r};" for j, r in enumerate(results)]
    lines.append(f"int64_t total = {' * '.join(f'n[{a}]' for a in range(nd)) or '1'};")
    lines += [f"const {t} *restrict p{j} = (const {t} *){v}.data;" for j, (v, t) in enumerate(zip(ins, tin))]
    lines += [f"{t} *restrict q{j} = ({t} *){v}.data;" for j, (v, t) in enumerate(zip(outs, tout))]

    pointers = [f"const {t} *p{j};" for j, t in enumerate(tin)] + [f"{t} *q{j};" for j, t in enumerate(tout)]
    ptr_names = [f"p{j}" for j in range(len(ins))] + [f"q{j}" for j in range(len(outs))]
    # flat: every operand C-contiguous with the output's shape (or a single value by its type)
    flat_loads = [f"const {t} x{j} = p{j}[{'0' if static_scalar[j] else 'i'}];" for j, t in enumerate(tin)]
    flat_loop = "\n".join(["for (int64_t i = lo; i < hi; i++) {", indent("\n".join(flat_loads + body + stores)), "}"])
    lines.append(f"if ({contiguous_test(ins, node.inputs, nd)}) {{")
    if nd >= 1 and not negpow:
        k = _kernel(g, index, op, "contiguous", tin, tout, pointers, [], flat_loop)
        lines.append(f"    ari_ctx{k} context = {{ {', '.join(ptr_names)} }};")
        lines.append(_run(least, k, "total", 1, 64))
    else:
        lines.append(indent("int64_t lo = 0, hi = total;\n" + flat_loop))
    # rows: a unit stride along the last axis, or a value broadcast along it by the input's type
    last = nd - 1
    in_row = [not static_scalar[j] and not var.broadcastable[last] for j, var in enumerate(node.inputs)] if nd else []
    if nd >= 2 and not negpow:
        rows_cond = " && ".join(f"({v}.strides[{last}] == 1 || n[{last}] <= 1)" for j, v in enumerate(ins) if in_row[j]) or "1"
        fields = pointers + [f"int64_t n[{nd}];"] + [f"int64_t s{j}[{nd}];" for j in range(len(ins)) if not static_scalar[j]]
        moving = [j for j in range(len(ins)) if not static_scalar[j]]
        setup = [f"const int64_t m = c->n[{last}];",
                 f"int64_t idx[{last}], r = lo;  /* the row's index over the outer axes, kept as an odometer */",
                 f"for (int k = {last - 1}; k >= 0; k--) {{ idx[k] = r % c->n[k]; r /= c->n[k]; }}"]
        for j in moving:
            setup.append(f"int64_t o{j} = 0; for (int k = 0; k < {last}; k++) o{j} += idx[k] * c->s{j}[k];")
        row_loads = [f"const {tin[j]} x{j} = p{j}[{'o' + str(j) + ' + i' if in_row[j] else ('o' + str(j) if j in moving else '0')}];"
                     for j in range(len(ins))]
        hoisted = [line for j, line in enumerate(row_loads) if not in_row[j]]
        inner = [line for j, line in enumerate(row_loads) if in_row[j]]
        row_stores = [f"q{j}[r * m + i] = {res};" for j, res in enumerate(results)]
        step = (f"for (int k = {last - 1}; k >= 0; k--) {{ "
                + " ".join(f"o{j} += c->s{j}[k];" for j in moving)
                + " if (++idx[k] < c->n[k]) break; "
                + " ".join(f"o{j} -= c->s{j}[k] * c->n[k];" for j in moving) + " idx[k] = 0; }")
        loop = "\n".join(["for (r = lo; r < hi; r++) {"] + ["    " + h for h in hoisted]
                         + ["    for (int64_t i = 0; i < m; i++) {"] + ["        " + s for s in inner + body + row_stores]
                         + ["    }", "    " + step, "}"])
        k = _kernel(g, index, op, "row", tin, tout, fields, setup, loop)
        lines.append(f"}} else if ({rows_cond}) {{")
        lines.append(f"    ari_ctx{k} context = {{ {', '.join(ptr_names)} }};")
        lines.append(f"    for (int a = 0; a < {nd}; a++) context.n[a] = n[a];")
        for j in moving:
            lines.append(f"    for (int a = 0; a < {nd}; a++) context.s{j}[a] = {ins[j]}.shape[a] == 1 ? 0 : {ins[j]}.strides[a];")
        # an outer axis that every operand walks on along the row (unit stride through both) or not at
        # all (broadcast along both) joins the row: tanh(x + b[None, :, None, None]) on 12 x 12 maps
        # runs rows of 144 that vectorize, not rows of 12
        joins = " && ".join(f"context.s{j}[{last}] == 1 && context.s{j}[a] == context.n[{last}]" if in_row[j]
                            else f"context.s{j}[a] == 0" for j in moving) or "1"
        lines.append(f"    for (int a = {last - 1}; a >= 0 && context.n[{last}] > 1 && ({joins}); a--) "
                     f"{{ context.n[{last}] *= context.n[a]; context.n[a] = 1; }}")
        rows = " * ".join(f"context.n[{a}]" for a in range(last))
        lines.append(_run(least, k, rows, f"context.n[{last}]", 1))
    lines.append("} else {")
    # general strided path
    for j, v in enumerate(ins):
        for a in range(nd):
            lines.append(f"    const int64_t s{j}_{a} = {v}.shape[{a}] == 1 ? 0 : {v}.strides[{a}];")
    lines.append("    int64_t i = 0;")
    strided_loads = [f"const {t} x{j} = p{j}[{' + '.join(f'i{a} * s{j}_{a}' for a in range(nd)) or '0'}];"
                     for j, t in enumerate(tin)]
    lines.append(indent(nested(range(nd), lambda a: f"n[{a}]", "\n".join(strided_loads + body + stores + ["i++;"]))))
    lines.append("}")
    if negpow:
        lines.append(f"if (negpow) FAIL(1, {index}, \"{NEGPOW}\");")
    return "\n".join(lines)
