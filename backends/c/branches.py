"""Branches: the IfElse op (core/ifelse.py). Each branch is an inner graph compiled as a static function
of the same program (``Generator.inner``); the condition (any scalar dtype, true when nonzero) picks the
one function that runs. What only one branch reads was moved into it by core's rewrite
(``sink_into_branches``), so it is computed only when that branch is taken.

The branch hands its outputs over: buffers it allocated, or copies of anything else (an input passed
through, a view of one, a constant), so that an output never aliases an input the caller may later
change. Inside a loop's step, an output of the IfElse that is also an output of the step is written
straight into the step's destination: the branch gets that destination for it.
"""

from .ctext import ct


def emit_ifelse(g, node, index, ins, outs):
    op = node.op
    cond, then_ins, else_ins = op.split_outer(ins)
    labels = [g.labels[g.dest[v]] if v in g.dest else (f"output {k}", "its destination has")
              for k, v in enumerate(node.outputs)]
    lines = []
    calls = []
    for side, graph, args in (("then", op.then_graph, then_ins), ("else", op.else_graph, else_ins)):
        sub = g.inner(graph, side, labels)
        consts = g.define_inner(sub, index, node)
        arrays = list(args) + consts
        name = f"{side}_args"
        lines.append(f"arr_t {name}[{max(len(arrays), 1)}];")
        calls.append((side, sub, name, arrays))
    nout = len(node.outputs)
    lines.append(f"arr_t res[{max(nout, 1)}];  /* the branch's outputs */")
    # an output of the step this IfElse is in: the branch writes into the step's destination, if given
    through = {k: g.destination(v) for k, v in enumerate(node.outputs) if g.destination(v) is not None}
    for k in range(nout):
        lines.append(f"res[{k}] = out[{through[k]}];" if k in through else f"res[{k}].data = NULL;")
    T = ct(node.inputs[0].dtype)
    lines.append("int sub;")
    lines.append(f"if (*(const {T} *){cond}.data) {{")
    for position, (side, sub, name, arrays) in enumerate(calls):
        if position:
            lines.append("} else {")
        lines += [f"    {name}[{a}] = {v};" for a, v in enumerate(arrays)]
        lines.append(f"    sub = {sub.function}({name}, res, err, where);")
        lines.append(f"    if (sub) {{ ari_inner_fail(err, where, {index}, {sub.function}_nodes, {len(sub.nodes)}, "
                     f"\"in the {side}-branch: \"); rc = sub; goto done; }}")
    lines.append("}")
    for k, (o, var) in enumerate(zip(outs, node.outputs)):
        if k in through:  # the destination, or (none given) the buffer handed over
            lines.append(f"{o} = res[{k}]; if (!out[{through[k]}].data) own[{g.slot(var)}] = {o}.data;")
        else:
            lines.append(f"{o} = res[{k}]; {g.adopt(var)}")
    return "\n".join(lines)
