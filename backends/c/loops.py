"""Loops: the Scan op (core/scan.py) as a C loop in the program, calling its step: the inner graph
compiled as a static function of the same program (``Generator.inner``), no Python per step.

Per step the loop hands the step views, no copies: row t of each sequence (its data pointer moved by
the row stride), the rows of each recurrent buffer its taps read, the non-sequences; and it gives the
step each output's destination, row t of the output's buffer, which the step writes its result into
(``Generator.alloc``: no allocation, no copy per step). Each output's buffer is one of

- ``whole``: a for-loop's output without ``keep``: the output itself, the initial rows then one row
  per step (a mapped output's is allocated after step 0, once its rows' shape is known);
- ``ring``: ``keep[j]`` set (core's save-memory rewrite): ``buffer_rows(j)`` rows (fewer when there are
  fewer steps) written round and round; at the end the last rows are copied out in order;
- ``grow``: a while-loop's output without ``keep``: its capacity doubles as the steps go (a while-loop's
  step count is only a bound), and it is handed over as the output, its shape the rows written.

A failing step's message is prefixed with the step and the inner op (runtime.h: ari_inner_fail), and
blamed on the Scan node. See docs/c-backend.md, "Loops and branches".
"""

from .ctext import ct

GROW_ROWS = 64  # the first capacity of a while-loop's buffers, in rows (then doubled as needed)


class Buffer:
    """How output j of a Scan node is held while the loop runs (C names and the kind above)."""

    def __init__(self, g, node, j, out):
        op = node.op
        self.j, self.var, self.out = j, node.outputs[j], out
        self.nd, self.T = self.var.ndim, ct(self.var.dtype)
        self.rec = j < op.n_rec
        self.depth = op.depth(j) if self.rec else 0
        self.keep = op.buffer_rows(j)
        self.kind = "ring" if self.keep is not None else "grow" if op.as_while else "whole"
        self.name, self.slot = (out, None) if self.kind == "whole" else g.temp()
        self.rows, self.p, self.rb = f"rows{j}", f"p{j}", f"rb{j}"  # capacity, next row, bytes a row

    def capacity(self, n):
        """C: the rows the buffer starts with, for ``n`` steps."""
        # saturated, not wrapped around: a while-loop's n is only a bound (2**63 - 1: "until the condition"),
        # and a for-loop's buffer of 2**63 - 1 rows is refused by ari_alloc as too big
        total = f"ari_add_sat({self.depth}, {n})" if self.depth else n
        if self.kind == "ring":
            return f"ari_min_i64({total}, {self.keep})"
        if self.kind == "grow":
            return f"{self.depth} + ari_min_i64({n}, {GROW_ROWS})"
        return total

    def allocate(self, g, index):
        """C allocating the buffer (its shape set): the output's own allocation (``whole``, which may
        be its caller's destination) or a buffer held in own[slot]."""
        if self.kind == "whole":
            return g.alloc(self.var, index)
        return (f"if (!(own[{self.slot}] = ari_alloc(&{self.name}, {self.nd}, sizeof({self.T}), 0))) "
                f"FAIL_ALLOC({index}, &{self.name}, {self.nd}, sizeof({self.T}));")

    def row(self, offset=""):
        """C: the address of row p + offset (a tap reads a row ``offset`` back; a ring wraps around)."""
        if not offset:
            return f"{self.name}.data + {self.p} * {self.rb}"
        if self.kind == "ring":
            return f"{self.name}.data + ({self.p} {offset} < 0 ? {self.p} {offset} + {self.rows} : {self.p} {offset}) * {self.rb}"
        return f"{self.name}.data + ({self.p} {offset}) * {self.rb}"

    def grow(self, index, n):
        """C doubling a ``grow`` buffer that is full (up to the rows ``n`` steps can write)."""
        most = f"ari_add_sat({self.depth}, {n})" if self.depth else n
        return (f"if ({self.p} == {self.rows}) {{ {self.rows} = {self.rows} > {most} - {self.rows} ? {most} : 2 * {self.rows}; "
                f"if (!ari_grow(&{self.name}, &own[{self.slot}], {self.nd}, sizeof({self.T}), {self.rows}, {self.p}, {self.rb})) "
                f"{{ arr_t want = {self.name}; want.shape[0] = {self.rows}; FAIL_ALLOC({index}, &want, {self.nd}, sizeof({self.T})); }} }}")

    def finish(self, g, index, total):
        """C making the output from the buffer after ``total`` rows were written."""
        o, b = self.out, self.name
        if self.kind == "whole":
            return []
        if self.kind == "grow":  # handed over: its shape the rows written
            return [f"{o} = {b}; {o}.shape[0] = {total}; {g.adopt(self.var)} own[{self.slot}] = NULL;"]
        lines = ["{ /* the last rows of the ring, in order */",
                 f"    const int64_t total = {total}, kept = ari_min_i64(total, {self.rows}), "
                 f"first = total > {self.rows} ? {self.p} : 0;",
                 f"    {o} = {b}; {o}.shape[0] = kept;",
                 "    " + g.alloc(self.var, index),
                 f"    const int64_t head = ari_min_i64(kept, {self.rows} - first);",
                 f"    if (head * {self.rb}) memcpy({o}.data, {b}.data + first * {self.rb}, head * {self.rb});",
                 f"    if ((kept - head) * {self.rb}) memcpy({o}.data + head * {self.rb}, {b}.data, (kept - head) * {self.rb});",
                 f"    ari_free(own[{self.slot}]); own[{self.slot}] = NULL;",
                 "}"]
        return lines


def emit_scan(g, node, index, ins, outs):
    """The loop of a Scan node (see the module's docstring)."""
    op = node.op
    labels = [(f"recurrent output {j}", "its state has") for j in range(op.n_rec)]
    labels += [(f"mapped output {k}", "its earlier rows have") for k in range(op.n_nit)]
    labels += [("the condition", "it should have")] * int(op.as_while)
    sub = g.inner(op.fgraph, "step", labels)
    consts = g.define_inner(sub, index, node)
    fn, nnodes = sub.function, len(sub.nodes)
    n_name, seqs, inits, non_seqs = op.split_outer(ins)
    _, seq_vars, _, _ = op.split_outer(node.inputs)
    nargs, nres = len(op.fgraph.inputs) + len(consts), len(op.fgraph.outputs)
    bufs = [Buffer(g, node, j, o) for j, o in enumerate(outs)]
    recs, nits = bufs[:op.n_rec], bufs[op.n_rec:]

    lines = [f"const int64_t n = *(const i64 *){n_name}.data;",
             f"if (n < 0) FAIL(1, {index}, \"the number of steps must not be negative, got %lld\", (long long)n);"]
    for i, s in enumerate(seqs):
        lines.append(f"if ({s}.shape[0] < n) FAIL(1, {index}, \"sequence {i} has %lld rows, fewer than the %lld steps\", "
                     f"(long long){s}.shape[0], (long long)n);")
    for b, x0 in zip(recs, inits):
        lines.append(f"if ({x0}.shape[0] != {b.depth}) FAIL(1, {index}, \"the initial value of recurrent output {b.j} has "
                     f"%lld rows; its taps {list(op.taps[b.j])} read {b.depth}\", (long long){x0}.shape[0]);")
    lines.append(f"arr_t args[{max(nargs, 1)}], res[{max(nres, 1)}];  /* the step's arguments and its results' destinations */")
    lines.append("int64_t t, steps = 0;")
    at = 0
    lines.append("/* sequences: row t is a view */")
    for s, sv in zip(seqs, seq_vars):
        lines.append(f"ari_row_of(&args[{at}], &{s}, {sv.ndim}); const int64_t ss{at} = {s}.strides[0] * (int64_t)sizeof({ct(sv.dtype)});")
        at += 1
    taps = []  # (argument position, buffer, tap)
    for b, x0 in zip(recs, inits):
        lines.append(f"/* recurrent output {b.j} ({b.kind} buffer): {b.depth} initial rows, then a row per step; taps {list(op.taps[b.j])} */")
        lines.append(f"int64_t {b.rows} = {b.capacity('n')}, {b.p} = {b.depth};")
        lines.append(f"{b.name}.shape[0] = {b.rows};" + "".join(f" {b.name}.shape[{a}] = {x0}.shape[{a}];" for a in range(1, b.nd)))
        lines.append(b.allocate(g, index))
        lines.append(f"const int64_t {b.rb} = {b.name}.strides[0] * (int64_t)sizeof({b.T});")
        lines.append(f"{{ arr_t head = {b.name}; head.shape[0] = {b.depth}; ari_copy(&head, &{x0}, {b.nd}, sizeof({b.T})); }}")
        for k in op.taps[b.j]:
            lines.append(f"ari_row_of(&args[{at}], &{b.name}, {b.nd});")
            taps.append((at, b, k))
            at += 1
        lines.append(f"ari_row_of(&res[{b.j}], &{b.name}, {b.nd});")
    lines.append("/* non-sequences, then the step's constants */")
    for v in list(non_seqs) + consts:
        lines.append(f"args[{at}] = {v};")
        at += 1
    for b in nits:
        lines.append(f"/* mapped output {b.j - op.n_rec} ({b.kind} buffer): allocated after step 0, its rows' shape known */")
        lines.append(f"int64_t {b.rows} = 0, {b.p} = 0, {b.rb} = 0;")
    if op.as_while:
        cond = op.fgraph.outputs[-1]
        lines.append(f"{ct(cond.dtype)} stop = 0; res[{nres - 1}].data = (char *)&stop;  /* the condition's destination */")

    loop = [f"args[{a}].data = {seqs[a]}.data + t * ss{a};" for a in range(len(seqs))]
    for b in recs:
        if b.kind == "grow":
            loop.append(b.grow(index, "n"))
    loop += [f"args[{a}].data = {b.row(f'- {-k}')};" for a, b, k in taps]
    loop += [f"res[{b.j}].data = {b.row()};" for b in recs]
    for b in nits:
        if b.kind == "grow":
            loop.append(f"if (t) {b.grow(index, 'n')}")
        loop.append(f"res[{b.j}].data = t ? {b.row()} : NULL;  /* step 0 hands its row over */")
    loop += [f"int sub = {fn}(args, res, err, where);",
             "if (sub) {",
             "    char context[64]; snprintf(context, sizeof context, \"at step %lld: \", (long long)t);",
             f"    ari_inner_fail(err, where, {index}, {fn}_nodes, {nnodes}, context); rc = sub; goto done;",
             "}"]
    if nits:
        loop.append("if (t == 0) {  /* the mapped outputs' buffers, now that their rows' shape is known */")
        for b in nits:
            r = f"res[{b.j}]"
            holder, k = g.temp()  # the row step 0 handed over, freed even if allocating fails
            loop += [f"    own[{k}] = {r}.data;",
                     f"    {b.rows} = {b.capacity('n')}; {b.name}.shape[0] = {b.rows};"
                     + "".join(f" {b.name}.shape[{a}] = {r}.shape[{a - 1}];" for a in range(1, b.nd)),
                     "    " + b.allocate(g, index),
                     f"    {b.rb} = {b.name}.strides[0] * (int64_t)sizeof({b.T});",
                     f"    if ({b.rb}) memcpy({b.name}.data, {r}.data, {b.rb});",
                     f"    ari_free(own[{k}]); own[{k}] = NULL; ari_row_of(&{r}, &{b.name}, {b.nd});"]
        loop.append("}")
    for b in bufs:
        loop.append(f"{b.p}++;" + (f" if ({b.p} == {b.rows}) {b.p} = 0;" if b.kind == "ring" else ""))
    loop.append("steps = t + 1;")
    if op.as_while:
        loop.append("if (stop) break;  /* the condition ends the loop after this step */")
    lines.append(f"/* the loop: step t calls {fn} */")
    lines.append("for (t = 0; t < n; t++) {")
    lines += ["    " + line for line in loop]
    lines.append("}")
    for b in recs:
        lines += b.finish(g, index, f"{b.depth} + steps")
    for b in nits:
        zero = "".join(f" {b.out}.shape[{a}] = 0;" for a in range(b.nd))
        lines.append(f"if (steps == 0) {{  /* no step: no row, and no shape known for one */{zero}")
        lines.append("    " + g.alloc(b.var, index))
        done = b.finish(g, index, "steps")
        lines += ["} else {"] + ["    " + x for x in done] + ["}"] if done else ["}"]
    return "\n".join(lines)
