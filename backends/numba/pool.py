"""Pooling (core/pool.py) as loop nests, the window's geometry written in as constants.

One kernel per node, the window, stride, padding and border rule written in as constants
(a full window is a loop of constant trip counts), the leading axes flattened. 'max' folds with LLVM's
NaN-propagating maximum (``_rt.fmax``) for floats, as np.max does; sums accumulate in the dtype
(integers wrap as NumPy's do); max-pooling's gradient adds g where x equals the max through a select
(a branch there is mispredicted: 3 times slower); where the windows tile the image the gradients go a
row of windows at a time (``_tiled_rows``). The kernels are ranged (shares.py): a node of
``plan.threads`` has its images shared out between threads by the glue.
"""

import numpy as np

from .generator import st, tup
from .shares import every_row


def _length(op, axis, size):
    """The source of Theano's number of pooled positions along ``axis`` (``pool_output_length``)."""
    ws, stride, pad = op.ws[axis], op.stride[axis], op.pad[axis]
    padded = f"({size} + {2 * pad})"
    if op.ignore_border:
        count = f"max(({padded} - {ws}) // {stride} + 1, 0)"
    elif stride >= ws:
        count = f"max(({padded} - 1) // {stride} + 1, 0)"
    else:  # a last partial window
        count = f"max(({padded} - 1 - {ws} + {stride}) // {stride}, 0) + 1"
    return f"({count} if {size} > 0 else 0)"  # an empty axis has no window, padded or not


def _windows(op, nd, pooled, body, per_window=(), after=()):
    """The lines of a pooling kernel over x: its sizes, x flattened as ``xs``, the pooled arrays
    ``pooled`` checked and flattened as ``<name>s``; then (prologue, loop) where the loop, for each
    window (``o``: its flat index) of image rows [a0, a1) and columns [b0, b1), runs ``per_window``,
    ``body`` at each position (``e``: its flat index, ``v``: x there) and ``after``. Full windows take
    a loop of constant trip counts (unrolled); flat unsigned indices have no wraparound test."""
    (wr, wc), (sr, sc), (pr_, pc) = op.ws, op.stride, op.pad
    lead = " * ".join(f"x.shape[{d}]" for d in range(nd - 2)) or "1"
    lines = [f"ih, iw = x.shape[{nd - 2}], x.shape[{nd - 1}]",
             f"rows, cols = {_length(op, 0, 'ih')}, {_length(op, 1, 'iw')}",
             f"lead = {lead}", "xs = np.ascontiguousarray(x).reshape(-1)"]
    for name in pooled:
        wrong = [f"{name}.shape[{d}] != x.shape[{d}]" for d in range(nd - 2)]
        wrong += [f"{name}.shape[{nd - 2}] != rows", f"{name}.shape[{nd - 1}] != cols"]
        lines += [f"if {' or '.join(wrong)}:",
                  f"    raise ValueError('{type(op).__name__}: the pooled arrays do not have the pooled shape')",
                  f"{name}s = np.ascontiguousarray({name}).reshape(-1)"]
    lines += [f"jf0 = min(cols, {(pc + sc - 1) // sc})",  # the columns j whose window lies inside the image
              f"jf1 = min(cols, max(jf0, (iw - {wc - pc}) // {sc} + 1))"]
    element = ["v = xs[e]", *body]
    full = [f"q0 = j * {sc} - {pc}", f"q1 = q0 + {wc}", "b0, b1 = q0, q1", "o = np.uint64((l * rows + i) * cols + j)",
            *per_window, "first = base + np.uint64(a0 * iw + b0)",
            f"for r in range({wr}):", f"    for q in range({wc}):",
            "        e = first + np.uint64(r * iw + q)", *["        " + line for line in element], *after]
    partial = [f"q0 = j * {sc} - {pc}", f"q1 = min(q0 + {wc}, iw + {pc})", "b0, b1 = max(q0, 0), min(q1, iw)",
               "o = np.uint64((l * rows + i) * cols + j)", *per_window,
               "for r in range(a0, a1):", "    for q in range(b0, b1):", "        e = base + np.uint64(r * iw + q)",
               *["        " + line for line in element], *after]
    # a row of full windows runs a branch-free loop of constant trip counts over them (LLVM unrolls and
    # vectorizes it); the windows cut by the border take the general loops
    loop = ["for l in range(lo, min(hi, lead)):",
            "    base = np.uint64(l * ih * iw)",
            "    for i in range(rows):",
            f"        r0 = i * {sr} - {pr_}", f"        r1 = min(r0 + {wr}, ih + {pr_})",
            "        a0, a1 = max(r0, 0), min(r1, ih)",
            f"        inside = a1 - a0 == {wr}",
            "        for j in range(jf0, jf1 if inside else jf0):",
            *["            " + line for line in full]]
    for span in ("range(jf0 if inside else cols)", "range(jf1 if inside else cols, cols)"):
        loop += [f"        for j in {span}:", *["            " + line for line in partial]]
    return lines, loop


def _call(name, args, outs, T):
    """A program's call of a pooling kernel: its images are the rows of shares.py's ranged kernels."""
    return [f"{outs[0]} = {name}({', '.join(args)}, {every_row(T)})"]


def _divisor(op):
    return {"sum": None, "average_inc_pad": "(r1 - r0) * (q1 - q0)"}.get(op.mode, "(a1 - a0) * (b1 - b0)")


def _pooled_shape(nd):
    return tup([f"x.shape[{d}]" for d in range(nd - 2)] + ["rows", "cols"])


def pool(gen, n, node, args, outs):
    op, x = node.op, node.inputs[0]
    nd, T, kind = x.ndim, st(x.dtype), np.dtype(x.dtype).kind
    if op.mode == "max":
        start = f"{T}(-np.inf)" if kind == "f" else "False" if kind == "b" else f"{T}({np.iinfo(x.dtype).min})"
        step = "acc = _rt.fmax(acc, v)" if kind == "f" else "acc = v if v > acc else acc"
        result = "acc"
    else:  # sums accumulate in the dtype (integers wrap, as NumPy's sum in the dtype)
        start, step = f"{T}(0)", "acc += v"
        result = "acc" if _divisor(op) is None else f"{T}({T}(acc) / {T}({_divisor(op)}))"
    prologue, loop = _windows(op, nd, [], [step], [f"acc = {start}"], [f"out[o] = {result}"])
    lines = [*prologue, "if out.size == 0:", f"    out = np.empty(lead * rows * cols, dtype={T})", *loop,
             f"return out.reshape({_pooled_shape(nd)})"]
    name = gen.kernel(n, node, ["x", "out", "lo", "hi"], lines, note=", window by window")
    return _call(name, args[:1], outs, T)


def _tiled_rows(op, T, values, element):
    """The lines of a gradient kernel where the windows tile the image (stride = window, no padding,
    sizes that divide): each element written once, a row of windows at a time. Each window's
    ``values`` (name, the source at its flat index o + j) are laid out ws[1] times over in rows of
    image columns, then each image row of the band is one loop over its columns, ``element`` (the
    value at column c, x's row being ``xr``), which LLVM vectorizes. Window by window, LeNet's rows of
    12 and 4 windows were too short for its vectorizer."""
    (wr, wc) = op.ws
    return [f"if rows * {wr} == ih and cols * {wc} == iw:  # the windows tile the image",
            "    if gx.size == 0:", f"        gx = np.empty(lead * ih * iw, dtype={T})",
            *(f"    {name} = np.empty(iw, dtype={T})" for name, _ in values),
            "    for l in range(lo, min(hi, lead)):",
            "        for i in range(rows):",
            "            o = (l * rows + i) * cols",
            "            for j in range(cols):",
            *(f"                {name}_j = {value}" for name, value in values),
            *(f"                {name}[j * {wc} + {q}] = {name}_j" for name, _ in values for q in range(wc)),
            f"            for r in range({wr}):",
            f"                e0 = (l * ih + i * {wr} + r) * iw",
            "                xr, gr = xs[e0:e0 + iw], gx[e0:e0 + iw]",
            "                for c in range(iw):",
            f"                    gr[c] = {element}",
            "    return gx.reshape(x.shape)"]


def _gradient(gen, n, node, args, outs, names, per_window, body, tiled=None):
    """A kernel adding ``body`` at each position of each window into gx, shaped and typed like x;
    ``tiled`` (values, element): _tiled_rows' where the windows may tile the image."""
    x, op = node.inputs[0], node.op
    T = st(x.dtype)
    prologue, loop = _windows(op, x.ndim, names[1:], body, per_window)
    if tiled and op.stride == op.ws and op.pad == (0, 0):
        prologue += _tiled_rows(op, T, *tiled)
    lines = prologue + ["if gx.size == 0:", f"    gx = np.zeros(lead * ih * iw, dtype={T})", *loop,
                        "return gx.reshape(x.shape)"]
    name = gen.kernel(n, node, names + ["gx", "lo", "hi"], lines, note=", window by window")
    return _call(name, args, outs, T)


def max_pool_grad(gen, n, node, args, outs):
    """g goes to every position of a window equal to its max."""
    zero = f"{st(node.inputs[0].dtype)}(0)"  # a select, not a branch: which element is the max is unpredictable
    return _gradient(gen, n, node, args, outs, ["x", "out", "g"], ["top, gv = outs[o], gs[o]"],
                     [f"gx[e] += gv if v == top else {zero}"],
                     tiled=([("tops", "outs[o + j]"), ("gvs", "gs[o + j]")], f"gvs[c] if xr[c] == tops[c] else {zero}"))


def average_pool_grad(gen, n, node, args, outs):
    """g divided by the window's divisor, added at every position of the window."""
    T = st(node.inputs[0].dtype)
    divisor = _divisor(node.op)
    value = "gs[o]" if divisor is None else f"{T}(gs[o] / {T}({divisor}))"
    share = "gs[o + j]" if divisor is None else f"{T}(gs[o + j] / {T}({node.op.ws[0] * node.op.ws[1]}))"
    return _gradient(gen, n, node, args, outs, ["x", "g"], [f"gv = {value}"], ["gx[e] += gv"],
                     tiled=([("gvs", share)], "gvs[c]"))


def max_pool_grad_grad(gen, n, node, args, outs):
    """For each window, the sum of h over its positions equal to the window's max."""
    op, x = node.op, node.inputs[0]
    nd, T = x.ndim, st(x.dtype)
    prologue, loop = _windows(op, nd, ["out"], [f"acc += hs[e] if v == top else {T}(0)"],
                              [f"top, acc = outs[o], {T}(0)"], ["res[o] = acc"])
    same = " or ".join(f"h.shape[{d}] != x.shape[{d}]" for d in range(nd))
    check = [f"if {same}:", f"    raise ValueError('{type(op).__name__}: the gradient does not have the input shape')",
             "hs = np.ascontiguousarray(h).reshape(-1)"]
    lines = prologue + check + ["if res.size == 0:", f"    res = np.empty(lead * rows * cols, dtype={T})", *loop,
                                f"return res.reshape({_pooled_shape(nd)})"]
    name = gen.kernel(n, node, ["x", "out", "h", "res", "lo", "hi"], lines, note=", window by window")
    return _call(name, args, outs, T)
