"""Neural-network ops: softmax and log-softmax, the softmax cross-entropy and its gradient, and the
per-row pick/increment of integer labels."""

from arignote.core import nnet

from .ctext import comment, ct, nested, offset, read_int, shape_buffers


def row_max(T):
    """Lines finding ``mx``, the max of ``row`` (``m`` elements ``sx`` apart, converted to T), NaN if it
    holds one: a plain select and a separate NaN flag, which vectorize (ari_max's compound test does
    not). runtime.h's ari_argmax_row does the same on rows of their own type. A row shorter than a
    vector runs a scalar loop: the vector loop's set-up and folds cost more than such a row (rows of 8
    took twice as long)."""

    def step(at):
        return f"{{ const {T} v = ({T})row[{at}]; mx = v > mx ? v : mx; nan |= v != v; }}"

    return [f"{T} mx = -INFINITY; int nan = 0;",
            f"if (sx == 1 && m >= ARI_VECTOR_BYTES / (int64_t)sizeof({T})) {{",
            "    #pragma omp simd reduction(max:mx) reduction(|:nan)",
            f"    for (j = 0; j < m; j++) {step('j')}",
            f"}} else for (j = 0; j < m; j++) {step('j * sx')}",
            "if (nan) mx = NAN;"]


def _rows_of_exps(x, X, T, base, exps, finish, shift_finite=False):
    """Lines running rows i in [lo, hi) of ``x`` (its last axis the row; ``base`` the C offset of row i):
    per row its max ``mx`` (0 when not finite, if ``shift_finite``), ``ex``, exp(x - mx) along the
    row, ``s``, their sum, then the ``finish`` lines (``r``: the row's output, ``exps``, when there is
    one). Short rows (fewer than ARI_SHORT_ROW elements) run in blocks whose exps are one flat loop
    over a scratch, which vectorizes: row by row, a row's 10 exps ran in the vector loop's scalar
    remainder (a 500 x 10 softmax cross-entropy took 38 us, 7 in blocks, against 3 for 10 x 500).
    Longer rows put their exps in the row's output, or only add them up when it has none."""
    S = "f" if T == "f32" else ""
    shift = ["if (!isfinite(mx)) mx = 0;"] if shift_finite else []
    row = f"const {X} *row = px + ({base}); int64_t j = 0;"
    long_sum = [f"{T} *restrict r = {exps};",
                f"if (sx == 1) for (j = 0; j < m; j++) r[j] = exp{S}(({T})row[j] - mx);",
                f"else for (j = 0; j < m; j++) r[j] = exp{S}(({T})row[j * sx] - mx);",
                f"{T} lsum[8] = {{0}};  /* 8 independent lanes: the sum vectorizes */",
                "for (j = 0; j + 8 <= m; j += 8) for (int l = 0; l < 8; l++) lsum[l] += r[j + l];",
                "for (; j < m; j++) lsum[0] += r[j];",
                "for (int l = 0; l < 8; l++) s += lsum[l];",
                f"const {T} *ex = r;"] if exps else [
        "if (sx == 1) {", "    #pragma omp simd reduction(+:s)",
        f"    for (j = 0; j < m; j++) s += exp{S}(({T})row[j] - mx);",
        f"}} else for (j = 0; j < m; j++) s += exp{S}(({T})row[j * sx] - mx);"]
    return [
        "if (m < ARI_SHORT_ROW) {  /* blocks [first, past) of per short rows, whose exps fill the scratch */",
        f"    {T} e[ARI_ROWS_SCRATCH], tops[ARI_ROWS_SCRATCH];",
        "    const int64_t per = m ? ARI_ROWS_SCRATCH / m : ARI_ROWS_SCRATCH;",
        "    for (int64_t first = lo; first < hi; first += per) {",
        "        const int64_t past = hi - first < per ? hi : first + per;",
        "        for (int64_t i = first; i < past; i++) {",
        f"            {row} {T} *sh = e + (i - first) * m;",
        *("            " + line for line in row_max(T) + shift),
        "            tops[i - first] = mx;",
        f"            if (sx == 1) for (j = 0; j < m; j++) sh[j] = ({T})row[j] - mx;",
        f"            else for (j = 0; j < m; j++) sh[j] = ({T})row[j * sx] - mx;",
        "        }",
        "        #pragma omp simd",
        f"        for (int64_t t = 0; t < (past - first) * m; t++) e[t] = exp{S}(e[t]);",
        "        for (int64_t i = first; i < past; i++) {",
        f"            {row} const {T} *ex = e + (i - first) * m, mx = tops[i - first]; {T} s = 0;",
        *([f"            {T} *restrict r = {exps};"] if exps else []),
        "            for (j = 0; j < m; j++) s += ex[j];",
        *("            " + line for line in finish),
        "        }",
        "    }",
        "} else for (int64_t i = lo; i < hi; i++) {",
        f"    {row} {T} s = 0;",
        *("    " + line for line in row_max(T) + shift + long_sum + finish),
        "}"]


def emit_softmax(g, node, index, ins, outs):
    """Softmax and LogSoftmax along axes: per position of the other axes, the max, then exp(x - max)
    written out (a loop that vectorizes when the row is contiguous), its sum, then the scaling."""
    (x,), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    nd, axes = xv.ndim, set(node.op.axis)
    kept = [a for a in range(nd) if a not in axes]
    red = [a for a in range(nd) if a in axes]
    X, T = ct(xv.dtype), ct(ov.dtype)
    log = isinstance(node.op, nnet.LogSoftmax)
    S = "f" if T == "f32" else ""
    lines = [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    lines.append(f"const {X} *px = (const {X} *){x}.data; {T} *po = ({T} *){o}.data;")
    if red == [nd - 1]:  # along the last axis: rows, i running along the last of the other axes
        outer, inner = kept[:-1], kept[-1:]
        base = " + ".join([f"i{a} * {x}.strides[{a}]" for a in outer] + [f"i * {x}.strides[{a}]" for a in inner]) or "0"
        obase = " + ".join([f"i{a} * {o}.strides[{a}]" for a in outer] + [f"i * {o}.strides[{a}]" for a in inner]) or "0"
        finish = ([f"const {T} ls = log{S}(s); for (j = 0; j < m; j++) r[j] = (({T})row[j * sx] - mx) - ls;"] if log
                  else ["for (j = 0; j < m; j++) r[j] = ex[j] / s;"])
        per = "\n".join([f"const int64_t lo = 0, hi = {f'{x}.shape[{inner[0]}]' if inner else 1};",
                         *_rows_of_exps(x, X, T, base, f"po + ({obase})", finish)])
        lines.append(f"const int64_t m = {x}.shape[{nd - 1}], sx = {x}.strides[{nd - 1}];")
        lines.append(nested(outer, lambda a: f"{x}.shape[{a}]", per))
        return "\n".join(lines)
    xo = offset(x, range(nd))
    oo = offset(o, range(nd))
    per = "\n".join([
        f"{T} mx = -INFINITY, s = 0;",
        nested(red, lambda a: f"{x}.shape[{a}]", f"const {T} xv = ({T})px[{xo}]; mx = ari_max_{T}(mx, xv);"),
        nested(red, lambda a: f"{x}.shape[{a}]", f"const {T} e = exp{S}(({T})px[{xo}] - mx); s += e;"
               + ("" if log else f" po[{oo}] = e;")),
        (nested(red, lambda a: f"{x}.shape[{a}]", f"po[{oo}] = (({T})px[{xo}] - mx) - log{S}(s);") if log else
         nested(red, lambda a: f"{x}.shape[{a}]", f"po[{oo}] /= s;")),
    ])
    lines.append(nested(kept, lambda a: f"{x}.shape[{a}]", per))
    return "\n".join(lines)


def _check_labels_c(index, x, y, yv):
    """C checking that ``y`` holds one label per row of the matrix ``x``, each in [0, columns)."""
    return "\n".join([
        f"if ({y}.shape[0] != {x}.shape[0]) FAIL(1, {index}, \"%lld label(s) for %lld row(s): expected one integer "
        f"label per row\", (long long){y}.shape[0], (long long){x}.shape[0]);",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {read_int(y, yv, 'i')};",
        f"    if (l < 0 || l >= {x}.shape[1]) FAIL(2, {index}, \"label %lld (row %lld) is out of range for %lld classes; "
        f"labels must be in [0, %lld)\", (long long)l, (long long)i, (long long){x}.shape[1], (long long){x}.shape[1]); }}",
    ])


def _per_row_output(g, index, x, v, vv, y, yv, o, ov):
    """C checking that the vector ``v`` has one value per row of ``x`` (or one that its type lets
    stretch) and that ``y`` holds a valid label per row, then allocating ``o`` shaped like x."""
    return "\n".join([
        shape_buffers(2),
        "" if vv.broadcastable[0] else
        f"if ({v}.shape[0] != {x}.shape[0]) FAIL(1, {index}, \"input shapes %s, %s disagree on axis 0\", "
        f"ari_shape(sb0, &{x}, 2), ari_shape(sb1, &{v}, 1));",
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0]; {o}.shape[1] = {x}.shape[1];", g.alloc(ov, index),
    ])


def emit_pick_per_row(g, node, index, ins, outs):
    (x, y), (o,) = ins, outs
    xv, yv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(xv.dtype)
    return "\n".join([
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0];", g.alloc(ov, index),
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {read_int(y, yv, 'i')};",
        f"    (({T} *){o}.data)[i] = ((const {T} *){x}.data)[i * {x}.strides[0] + l * {x}.strides[1]]; }}",
    ])


def emit_inc_per_row(g, node, index, ins, outs):
    (x, v, y), (o,) = ins, outs
    xv, vv, yv, ov = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    T, S = ct(xv.dtype), ct(node.op.sum_dtype(xv.dtype, vv.dtype))
    return "\n".join([
        _per_row_output(g, index, x, v, vv, y, yv, o, ov),
        f"ari_copy(&{o}, &{x}, 2, sizeof({T}));",
        f"for (int64_t i = 0; i < {x}.shape[0]; i++) {{ int64_t l = {read_int(y, yv, 'i')};",
        f"    {T} *at = ({T} *){o}.data + i * {o}.strides[0] + l;  /* the sum in NumPy's dtype, then stored */",
        f"    *at = ({T})(({S})*at + ({S})((const {ct(vv.dtype)} *){v}.data)[{v}.shape[0] == 1 ? 0 : i * {v}.strides[0]]); }}",
    ])


def _over_rows(g, index, node, arrays, count, per, rows):
    """C running rows [0, count) of ``node``: ``rows(*names)`` gives (setup lines, lines running rows
    [lo, hi)) over the arr_t descriptors ``arrays`` by those names. A node the plan gives threads
    (``plan.threads``, ``Op.splits_rows``) runs them in a kernel that ari_parallel splits between the
    cores once count * per reaches its threshold, the descriptors passed in the kernel's context."""
    if node not in g.threads:
        setup, body = rows(*arrays)
        return ["{", f"    const int64_t lo = 0, hi = {count};", *("    " + line for line in setup + body), "}"]
    k = len(g.helpers)
    local = [f"a{j}" for j in range(len(arrays))]
    setup, body = rows(*local)
    g.helpers.append("\n".join(
        [f"\n/* the rows of node {index}, split between threads: {comment(node.op)} */",
         f"typedef struct {{ arr_t {', '.join(local)}; }} ari_rows_ctx{k};",
         f"static __attribute__((noinline)) void ari_rows{k}(void *context, int64_t lo, int64_t hi) {{",
         f"    const ari_rows_ctx{k} *c = (const ari_rows_ctx{k} *)context;",
         f"    const arr_t {', '.join(f'{name} = c->{name}' for name in local)};",
         *("    " + line for line in setup + body), "}\n"]))
    return [f"ari_rows_ctx{k} context = {{ {', '.join(arrays)} }};",
            f"ari_parallel(ari_rows{k}, &context, {count}, {per}, 1, {g.plan.parallel_min[node]});"]


def emit_softmax_crossentropy(g, node, index, ins, outs):
    """logsumexp(x[i]) - x[i, y[i]], with the row's max shifted out (0 when it is not finite)."""
    (x, y), (o,) = ins, outs
    xv, yv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    X, T = ct(xv.dtype), ct(ov.dtype)
    S = "f" if T == "f32" else ""

    def rows(x, y, o):
        finish = [f"(({T} *){o}.data)[i * {o}.strides[0]] = (log{S}(s) + mx) - "
                  f"({T})row[{read_int(y, yv, 'i')} * sx];"]
        return ([f"const {X} *px = (const {X} *){x}.data;",
                 f"const int64_t m = {x}.shape[1], sx = {x}.strides[1];"],
                _rows_of_exps(x, X, T, f"i * {x}.strides[0]", None, finish, shift_finite=True))

    return "\n".join([
        _check_labels_c(index, x, y, yv),
        f"{o}.shape[0] = {x}.shape[0];", g.alloc(ov, index),
        *_over_rows(g, index, node, [x, y, o], f"{x}.shape[0]", f"{x}.shape[1]", rows)])


def emit_softmax_crossentropy_grad(g, node, index, ins, outs):
    """Per row: the softmax (as emit_softmax computes it) times g[i], then -g[i] added at the label."""
    (x, gr, y), (o,) = ins, outs
    xv, gv, yv, ov = node.inputs[0], node.inputs[1], node.inputs[2], node.outputs[0]
    X, T = ct(xv.dtype), ct(ov.dtype)

    def rows(x, gr, y, o):
        finish = [f"const {T} gi = pg[i * gs];", "for (j = 0; j < m; j++) r[j] = (ex[j] / s) * gi;",
                  f"r[{read_int(y, yv, 'i')}] += -gi;"]
        return ([f"const {X} *px = (const {X} *){x}.data; const {T} *pg = (const {T} *){gr}.data;",
                 f"const int64_t gs = {gr}.shape[0] == 1 ? 0 : {gr}.strides[0];",
                 f"const int64_t m = {x}.shape[1], sx = {x}.strides[1];"],
                _rows_of_exps(x, X, T, f"i * {x}.strides[0]", f"({T} *){o}.data + i * {o}.strides[0]", finish))

    return "\n".join([
        _per_row_output(g, index, x, gr, gv, y, yv, o, ov),
        *_over_rows(g, index, node, [x, gr, y, o], f"{x}.shape[0]", f"{x}.shape[1]", rows)])
