"""Loops: Map runs an inner graph, compiled as a C function of the same program, for i = 0 .. n-1."""

from .ctext import comment, ct, read_int, shape_buffers


def emit_scan(g, node, index, ins, outs):
    """The inner graph becomes its own C function, called for i = 0 .. n-1; its outputs are stacked."""
    inner = node.op.fgraph
    name = f"ari_map{len(g.helpers)}_{id(node) % 100000}"
    sub = g.inner(inner, name)
    g.helpers.append(f"\n/* the body of node {index}: {comment(node.op)} */\n" + sub.generate())
    nin, nc, nout = len(inner.inputs), len(sub.consts), len(inner.outputs)
    const_names = [g.name(c) for c in sub.consts]  # the body's constants are passed through the program
    n_var = node.inputs[0]
    free_results = f"for (int q = 0; q < {nout}; q++) ari_free(res[q].data);"
    lines = [shape_buffers(2),
             f"int64_t count = {read_int(ins[0], n_var)};",
             f"if (count <= 0) FAIL(1, {index}, \"cannot stack the results of zero iterations (their shape is unknown)\");",
             f"arr_t args[{nin + nc}], res[{nout}]; i64 step = 0;",
             "args[0].data = (char *)&step;"]
    lines += [f"args[{k + 1}] = {v};" for k, v in enumerate(ins[1:])]
    lines += [f"args[{nin + k}] = {c};" for k, c in enumerate(const_names)]
    lines.append("for (step = 0; step < count; step++) {")
    lines.append(f"    int sub = {name}(args, res, err, where);")
    lines.append(f"    if (sub) {{ rc = sub; *where = {index}; goto done; }}")
    for j, (o, ov) in enumerate(zip(outs, node.outputs)):
        T, ind = ct(ov.dtype), ov.ndim - 1
        lines.append("    if (step == 0) {")
        lines.append(f"        {o}.shape[0] = count;" + "".join(f" {o}.shape[{a + 1}] = res[{j}].shape[{a}];" for a in range(ind)))
        lines.append("        " + g.alloc(ov, index, cleanup=free_results))
        lines.append("    }")
        check = " || ".join(f"res[{j}].shape[{a}] != {o}.shape[{a + 1}]" for a in range(ind)) or "0"
        lines.append(f"    if ({check}) {{ ari_shape(sb0, &res[{j}], {ind}); {free_results} "
                     f"FAIL(1, {index}, \"all input arrays must have the same shape (iteration %lld gives %s)\", (long long)step, sb0); }}")
        lines.append(f"    memcpy({o}.data + step * {o}.strides[0] * sizeof({T}), res[{j}].data, sizeof({T}) * ari_size(&res[{j}], {ind}));")
    lines.append(f"    {free_results}")
    lines.append("}")
    return "\n".join(lines)
