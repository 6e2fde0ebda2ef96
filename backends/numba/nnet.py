"""The softmax family and cross-entropies as row loops, and the per-row ops (``runtime``'s helpers).

A softmax row is exp(x[i] - max) written out in one loop LLVM vectorizes (vecmath's SIMD exp where it
is enabled), their sum in float64 in another, then the division (or the log's subtraction); short rows
run in blocks whose exps are one such loop (``_rows_of_exps``). Ops over other axes move their axes
last and fold the others into rows.
"""

import numpy as np

from .generator import product, st, transpose, tup
from .shares import every_row


def _exp(gen, dtype):
    """The exp of ``dtype`` the loops call: vecmath's SIMD one when it is enabled."""
    vector = gen.vector_math.get(("Exp", np.dtype(dtype).name))
    return f"_vm.{vector}" if vector else "np.exp"


def _row_max(dtype):
    """The line finding ``top``, the max of row i of ``x`` in ``dtype`` (NaN if the row holds one)."""
    return [f"top = _rt.row_max(x, i, {st(dtype)}(-np.inf))"]


SHORT_ROW = 64  # rows shorter than this run in blocks, their exps one flat loop over a scratch
ROWS_SCRATCH = 1024  # elements of that scratch


def _rows_of_exps(gen, dtype, finish, exps_out=True, shift_finite=False):
    """Lines running rows i in [lo, hi) of the 2-d ``x`` (``n`` columns): per row its max ``top`` (0
    when it is not finite, if ``shift_finite``), exp(x[i] - top) along the row, ``total``, their sum
    in float64, then the ``finish`` lines, in which ``{ex}`` stands for the exp at column j. Rows
    shorter than SHORT_ROW run in blocks whose exps are one loop over a flat scratch, which LLVM
    vectorizes: row by row, a 500 x 10 softmax cross-entropy took 20 us, in blocks 10. Longer
    rows write their exps to ``out[i]`` (``exps_out``) or to the scratch ``row``."""
    T, exp = st(dtype), _exp(gen, dtype)
    shift = ["if not np.isfinite(top):", f"    top = {T}(0)"] if shift_finite else []
    where = "out[i, j]" if exps_out else "row[j]"
    long_row = [*_row_max(dtype), *shift, "for j in range(n):", f"    {where} = {exp}({T}(x[i, j]) - top)",
                "total = 0.0", "for j in range(n):", f"    total += np.float64({where})",
                *[line.format(ex=where) for line in finish]]
    # a short row's max in a plain select and a NaN flag: _rt.row_max's llvm.maximum, which vectorizes
    # long rows, cost 10 ns a row of 10; each row's view of the scratch, so that its indices are known
    # not negative (e[at + j] took a wraparound test per element, and its loops did not vectorize)
    short = [f"top = {T}(-np.inf)", "nan = False", "for j in range(n):", f"    v = {T}(x[i, j])",
             "    top = v if v > top else top", "    nan |= v != v", "if nan:", f"    top = {T}(np.nan)", *shift,
             "tops[i - i0] = top", "ex = e[(i - i0) * n:(i - i0 + 1) * n]", "for j in range(n):",
             f"    ex[j] = {T}(x[i, j]) - top"]
    sums = ["top = tops[i - i0]", "ex = e[(i - i0) * n:(i - i0 + 1) * n]", "total = 0.0", "for j in range(n):",
            "    total += np.float64(ex[j])", *[line.format(ex="ex[j]") for line in finish]]
    return [f"e = np.empty({ROWS_SCRATCH}, dtype={T})", f"tops = np.empty({ROWS_SCRATCH}, dtype={T})",
            *([] if exps_out else [f"row = np.empty(n, dtype={T})"]),
            f"if n < {SHORT_ROW}:",
            f"    per = {ROWS_SCRATCH} // n if n else {ROWS_SCRATCH}",
            "    for i0 in range(lo, hi, per):",
            "        i1 = min(hi, i0 + per)",
            "        for i in range(i0, i1):", *("            " + line for line in short),
            "        for t in range((i1 - i0) * n):", f"            e[t] = {exp}(e[t])",
            "        for i in range(i0, i1):", *("            " + line for line in sums),
            "else:", "    for i in range(lo, hi):", *("        " + line for line in long_row)]


def _softmax_rows(gen, dtype, finish, before=(), ranged=False):
    """Lines of a kernel over the rows of a 2-d ``x`` (``_rows_of_exps``) into ``out``. ``ranged``:
    rows [lo, hi) into ``flat`` (shares.py's ranged kernels)."""
    T = st(dtype)
    if ranged:
        lines = ["rows, n = x.shape", *before, "if flat.size == 0:", f"    flat = np.empty(rows * n, dtype={T})",
                 "out = flat.reshape((rows, n))", "hi = min(hi, rows)"]
    else:
        lines = ["rows, n = x.shape", *before, f"out = np.empty((rows, n), dtype={T})", "lo, hi = 0, rows"]
    return lines + _rows_of_exps(gen, dtype, finish) + ["return out"]


def _along_rows(gen, n, node, args, outs, log):
    """Softmax (or LogSoftmax) of each row of a 2-d view: the op's axes last, the others folded into rows."""
    T = st(node.outputs[0].dtype)
    if log:
        finish = [f"log_total = {T}(np.log(total))", "for j in range(n):",
                  f"    out[i, j] = ({T}(x[i, j]) - top) - log_total"]
    else:
        finish = [f"total_ = {T}(total)", "for j in range(n):", "    out[i, j] = {ex} / total_"]
    # reassociation lets LLVM vectorize the float64 sum (the only chain of additions here)
    kernel = gen.kernel(n, node, ["x"], _softmax_rows(gen, node.outputs[0].dtype, finish), note=", row by row",
                        fastmath=True)
    x = node.inputs[0]
    nd, axes = x.ndim, list(node.op.axis)
    others = [d for d in range(nd) if d not in axes]
    if nd == 2 and axes == [1]:
        return [f"{outs[0]} = {kernel}({args[0]})"]
    perm = others + axes
    rows = product([f"{args[0]}.shape[{d}]" for d in others])
    cols = product([f"{args[0]}.shape[{d}]" for d in axes])
    inverse = [perm.index(d) for d in range(nd)]
    moved_shape = tup(f"{args[0]}.shape[{d}]" for d in perm)
    lines = [f"{outs[0]} = {kernel}(np.ascontiguousarray({transpose(args[0], perm)}).reshape(({rows}, {cols})))",
             f"{outs[0]} = {outs[0]}.reshape({moved_shape})"]
    if inverse != list(range(nd)):
        lines.append(f"{outs[0]} = {transpose(outs[0], inverse)}")
    return lines


def softmax(gen, n, node, args, outs):
    return _along_rows(gen, n, node, args, outs, log=False)


def log_softmax(gen, n, node, args, outs):
    return _along_rows(gen, n, node, args, outs, log=True)


def softmax_crossentropy(gen, n, node, args, outs):
    """logsumexp(x[i]) - x[i, y[i]], the max shifted out (a non-finite max shifts by 0)."""
    dtype = node.outputs[0].dtype
    T = st(dtype)
    lines = ["rows, n = x.shape", "_rt.check_labels(rows, n, y)", "if out.size == 0:",
             f"    out = np.empty(rows, dtype={T})", "hi = min(hi, rows)"]
    finish = [f"out[i] = {T}({T}(np.log(total)) + top) - {T}(x[i, y[i]])"]
    lines += _rows_of_exps(gen, dtype, finish, exps_out=False, shift_finite=True) + ["return out"]
    name = gen.kernel(n, node, ["x", "y", "out", "lo", "hi"], lines, note=", row by row", fastmath=True)
    return [f"{outs[0]} = {name}({args[0]}, {args[1]}, {every_row(T)})"]


def softmax_crossentropy_grad(gen, n, node, args, outs):
    """Per row: the softmax (as ``softmax`` computes it) times g[i], then -g[i] added at the label."""
    T = st(node.outputs[0].dtype)
    check = [] if node.inputs[1].broadcastable[0] else [
        "if g.shape[0] != rows:", f"    raise ValueError('{gen.label(n, node)}: expected one value per row')"]
    finish = [f"total_ = {T}(total)", "gi = g[0] if one else g[i]", "for j in range(n):",
              "    out[i, j] = ({ex} / total_) * gi", "out[i, y[i]] += -gi"]
    lines = _softmax_rows(gen, node.outputs[0].dtype, finish,
                          before=[*check, "_rt.check_labels(rows, n, y)", "one = g.shape[0] == 1"], ranged=True)
    name = gen.kernel(n, node, ["x", "g", "y", "flat", "lo", "hi"], lines, note=", row by row", fastmath=True)
    return [f"{outs[0]} = {name}({', '.join(args)}, {every_row(T)})"]


def pick_per_row(gen, n, node, args, outs):
    dtype = st(node.outputs[0].dtype)
    return [f"{outs[0]} = _rt.pick_per_row({args[0]}, {args[1]}, np.empty({args[0]}.shape[0], dtype={dtype}))"]


def inc_per_row(gen, n, node, args, outs):
    dtype = st(node.outputs[0].dtype)
    lines = []
    if not node.inputs[1].broadcastable[0]:
        lines += [f"if {args[1]}.shape[0] != {args[0]}.shape[0]:",
                  f"    raise ValueError('{gen.label(n, node)}: expected one value per row')"]
    return lines + [f"{outs[0]} = _rt.inc_per_row({args[0]}, {args[1]}, {args[2]}, "
                    f"np.empty({args[0]}.shape, dtype={dtype}))"]
