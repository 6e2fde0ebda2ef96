"""Pooling (core/pool.py): Pool and its gradients as direct loop nests over each output's window.

The window, stride, padding and border rule are the op's constants, written into the C as literals;
the leading axes (all but the last two) are loops of their own, every array read through its strides.
Each output (i, j) reads rows [r0, r1) and columns [c0, c1) of the image, as ``Pool.windows`` cuts them:
r0 = max(i * stride - pad, 0), r1 = min(i * stride - pad + window, rows); 'average_inc_pad' divides by
the window cut at the padded image's end instead. Max takes NaN as np.max does (a NaN wins), and its
gradient goes to every element equal to the window's maximum. Rows of windows too short for gcc's
vectorizer go by columns where the geometry allows (``_max_by_columns``, ``_TiledRows``; docs/conv.md).
"""

import numpy as np

from .ctext import comment, ct, indent, isfloat, nested, offset, shape_buffers


def _floordiv(a, b):
    """C floor division of the int64 expression ``a`` by the positive constant ``b`` (Python's //)."""
    return f"(({a}) >= 0 ? ({a}) / {b} : -((-({a}) + {b} - 1) / {b}))"


def _length(op, axis, size, name):
    """C setting ``name`` as core.pool.pool_output_length does: the pooled positions along ``axis``."""
    ws, st, p = op.ws[axis], op.stride[axis], op.pad[axis]
    padded = f"({size} + {2 * p})" if p else size
    empty = f" if ({size} == 0) {name} = 0;"  # an empty axis has no window, padded or not
    if op.ignore_border:
        return f"int64_t {name} = {_floordiv(f'{padded} - {ws}', st)} + 1; if ({name} < 0) {name} = 0;{empty}"
    if st >= ws:
        return f"int64_t {name} = {_floordiv(f'{padded} - 1', st)} + 1; if ({name} < 0) {name} = 0;{empty}"
    # a last partial window
    return (f"int64_t {name} = {_floordiv(f'{padded} - 1 - {ws} + {st}', st)}; if ({name} < 0) {name} = 0; "
            f"{name} += 1;{empty}")


def _head(node, index, x, pooled=(), same=()):
    """C common to the four ops: the image's sizes H, W, the pooled R, Q, and the checks that each
    array of ``same`` has the input's shape and each of ``pooled`` the pooled shape (ValueError, as
    the reference says it)."""
    op, nd = node.op, node.inputs[0].ndim
    lines = [shape_buffers(3),
             f"const int64_t H = {x}.shape[{nd - 2}], W = {x}.shape[{nd - 1}];",
             f"/* window {op.ws}, stride {op.stride}, padding {op.pad}, ignore_border={op.ignore_border}: "
             "the pooled rows R and columns Q */",
             _length(op, 0, "H", "R"), _length(op, 1, "W", "Q"),
             f"arr_t pooled = {x}; pooled.shape[{nd - 2}] = R; pooled.shape[{nd - 1}] = Q;"]
    for v in same:
        test = " || ".join(f"{v}.shape[{a}] != {x}.shape[{a}]" for a in range(nd))
        lines.append(f"if ({test}) FAIL(1, {index}, \"the gradient has shape %s, the input %s\", "
                     f"ari_shape(sb0, &{v}, {nd}), ari_shape(sb1, &{x}, {nd}));")
    for v in pooled:
        test = " || ".join(f"{v}.shape[{a}] != pooled.shape[{a}]" for a in range(nd))
        lines.append(f"if ({test}) FAIL(1, {index}, \"for an input of shape %s the pooled arrays have shape %s, got %s\", "
                     f"ari_shape(sb0, &{x}, {nd}), ari_shape(sb1, &pooled, {nd}), ari_shape(sb2, &{v}, {nd}));")
    return lines


def _windows(g, index, node, body, arrays, q=None, unit_image=None, unit_band=None):
    """C looping over the leading axes (the image of each array of ``arrays`` at p<k>, k its position
    there), then over the pooled positions (i, j), each with its window's rows [rb, re), columns
    [cb, ce) and the divisor ``div`` of its mode. ``body(at)`` is one output's (lines before, the statement
    of one tap (r, c), lines after), each element written ``at(k, v, row, col)`` (``_at``'s, with the
    column stride read or known to be 1); ``q`` (the output's name, its C type): an output written in order
    through ``q``; ``unit_image``: the C lines that do an image instead when every column stride is 1;
    ``unit_band(windows)``: those that do the windows [jf0, jf1) of a row inside the image then, given
    ``windows(first, end)``, the C of the windows [first, end) one by one.
    A window inside the image (most of them) has its taps written out one by one when there are at most
    UNROLL of them: constant offsets, no loop. A node the plan gives threads
    (``plan.threads``: ``Op.splits_rows``) runs its images in a kernel that ari_parallel splits
    between the cores once they hold a million elements."""
    op, nd = node.op, node.inputs[0].ndim
    lead = range(nd - 2)
    (wr, wc), (sr, sc), (pr, pc) = op.ws, op.stride, op.pad
    divisor = {"average_inc_pad": f"(ari_min_i64(top + {wr}, H + {pr}) - top) * (ari_min_i64(left + {wc}, W + {pc}) - left)",
               "average_exc_pad": "(re - rb) * (ce - cb)"}.get(op.mode)
    names = list(dict.fromkeys(v for v, _ in arrays))  # an array passed twice (x as h) is one name

    def window(whole, unit):
        """The C of one window (j), ``whole``: inside the image (its taps at constant offsets); ``unit``:
        every column stride is 1, a row of such windows a loop gcc vectorizes (LeNet's first 2x2
        max-pool: 0.34 -> 0.22 ms on two threads)."""
        before, tap, after = body(lambda k, v, row="r", col="c": _at(k, v, nd, row, col, unit))
        lines = [f"const int64_t left = j * {sc}{f' - {pc}' if pc else ''}, cb = left > 0 ? left : 0, ce = ari_min_i64(left + {wc}, W);",
                 *([f"const int64_t div = {divisor};  /* {op.mode}'s divisor */"] if divisor else []), *before]
        if whole and wr * wc <= UNROLL:
            lines += [f"{{ const int64_t r = top + {a}, c = left + {b}; {tap} }}" for a in range(wr) for b in range(wc)]
        elif whole:
            lines.append(f"for (int64_t r = top; r < top + {wr}; r++) for (int64_t c = left; c < left + {wc}; c++) {tap}")
        else:
            lines.append(f"for (int64_t r = rb; r < re; r++) for (int64_t c = cb; c < ce; c++) {tap}")
        return lines + after

    def columns(span, whole, unit=False):
        return [f"for (int64_t j = {span[0]}; j < {span[1]}; j++) {{", *("    " + line for line in window(whole, unit)), "}"]

    unit_test = " && ".join(f"{v}.strides[{nd - 1}] == 1" for v in names)
    inside = columns(("jf0", "jf1"), True)
    if not unit_image:  # a copy of the loop for unit column strides
        unit = columns(("jf0", "jf1"), True, True)
        if unit_band:  # rows of a few windows keep the loop over windows: the band's loops cost more to enter
            unit = [f"if (jf1 - jf0 >= {BAND_MIN_WINDOWS}) {{",
                    *("    " + line for line in unit_band(lambda first, end: columns((first, end), True, True))),
                    "} else {", *("    " + line for line in unit), "}"]
        inside = ["if (unit) {", *("    " + line for line in unit), "} else {", *("    " + line for line in inside), "}"]
    loops = [
        "for (int64_t i = 0; i < R; i++) {",
        f"    const int64_t top = i * {sr}{f' - {pr}' if pr else ''}, rb = top > 0 ? top : 0, re = ari_min_i64(top + {wr}, H);",
        f"    if (top >= 0 && top + {wr} <= H) {{  /* a row of windows inside the image's rows */",
        *("        " + line for line in columns(("0", "jf0"), False) + inside + columns(("jf1", "Q"), False)),
        "    } else {",
        *("        " + line for line in columns(("0", "Q"), False)),
        "    }",
        "}",
    ]
    if unit_image:
        loops = ["if (unit) {", *("    " + line for line in unit_image), "} else {", *("    " + line for line in loops), "}"]
    image = [
        # restrict: the one array written is the output, a buffer of its own
        *(f"{T} *restrict p{k} = ({T} *){v}.data + ({offset(v, lead)});" for k, (v, T) in enumerate(arrays)),
        "/* the columns [jf0, jf1) whose windows lie inside the image's columns */",
        f"const int64_t jf0 = ari_min_i64({(pc + sc - 1) // sc}, Q);",
        f"int64_t jf1 = W + {pc - wc} >= 0 ? (W + {pc - wc}) / {sc} + 1 : 0; jf1 = jf1 > Q ? Q : jf1 < jf0 ? jf0 : jf1;",
        f"const int unit = {unit_test};  /* every column stride 1 */",
        *loops,
    ]
    shared = names + ([q[0]] if q and q[0] not in names else [])  # what the threads' kernel is handed
    if node not in g.threads or not all(name.isidentifier() for name in shared):
        start = [f"{q[1]} *q = ({q[1]} *){q[0]}.data;  /* the output, C-contiguous: written in order */"] if q else []
        return "\n".join(start + [nested(lead, lambda a: f"lead{a}", "\n".join(image))])
    k = len(g.helpers)
    sizes = ["H", "W", "R", "Q", *(f"lead{a}" for a in lead)]
    # image `plane` of the leading axes, the last fastest: its indices i<a>
    unravel = ["int64_t rest = plane;"] + [f"const int64_t i{a} = rest % lead{a}; rest /= lead{a};" for a in reversed(lead)]
    start = [f"{q[1]} *q = ({q[1]} *){q[0]}.data + plane * R * Q;  /* the output, C-contiguous */"] if q else []
    g.helpers.append("\n".join(
        [f"\n/* the images of node {index}, split between threads: {comment(op)} */",
         f"typedef struct {{ arr_t {', '.join(shared)}; int64_t {', '.join(sizes)}; }} ari_images_ctx{k};",
         f"static __attribute__((noinline)) void ari_images{k}(void *context, int64_t lo, int64_t hi) {{",
         f"    const ari_images_ctx{k} *ctx = (const ari_images_ctx{k} *)context;",
         f"    const arr_t {', '.join(f'{name} = ctx->{name}' for name in shared)};",
         f"    const int64_t {', '.join(f'{size} = ctx->{size}' for size in sizes)};",
         "    for (int64_t plane = lo; plane < hi; plane++) {",
         *("        " + line for line in unravel + start + image),
         "    }", "}\n"]))
    planes = " * ".join(f"lead{a}" for a in lead) or "1"
    return "\n".join([f"ari_images_ctx{k} context = {{ {', '.join(shared)}, {', '.join(sizes)} }};",
                      f"ari_parallel(ari_images{k}, &context, {planes}, H * W, 1, {g.plan.parallel_min[node]});"])


def _lead_sizes(x, nd):
    return [f"const int64_t lead{a} = {x}.shape[{a}];" for a in range(nd - 2)]


def _at(k, v, nd, row="r", col="c", unit=False, as_type=None):
    """The element (row, col) of the image p<k> of the array ``v`` (read through its strides; ``unit``:
    its column stride is 1; ``as_type``: read as that type, the bits of the element)."""
    image = f"((const {as_type} *)p{k})" if as_type else f"p{k}"
    return f"{image}[{row} * {v}.strides[{nd - 2}] + {col}{'' if unit else f' * {v}.strides[{nd - 1}]'}]"


UNROLL = 16  # taps of a whole window written out one by one (more: a loop)
TILED_ROWS_CHUNK = 128  # windows of a row whose values _TiledRows lays out at a time (on the stack)
TILED_ROWS_MAX_WIDTH = 16  # windows wider than this keep the loops over windows (the buffers would be large)
BAND_MIN_WINDOWS = 8  # a 2x2 max-pool's rows of 12 windows: 0.22 -> 0.15 ms by columns; of 4: 0.16 -> 0.17 ms


class _TiledRows:
    """A gradient's image where the windows tile it and every column stride is 1, written a row of
    windows at a time: each window's ``values`` (name, C type, C at window (i, j)) are laid out ws[1]
    times over in buffers of image columns, then each image row of the band is one loop over its
    columns, ``element`` (C for column c, reading the buffers and ``rows``: (name, C type, k, array),
    the image row of p<k>), which gcc vectorizes. Written window by window, LeNet's rows of 12 and 4
    windows were too short for its vectorizer: a 2x2 max-pool's gradient over (128, 20, 24, 24) took
    0.66 ms in LeNet's step, now 0.33 ms."""

    def __init__(self, values, rows, element):
        self.values, self.rows, self.element = values, rows, element

    def image(self, op, nd):
        """The C of one image (the arrays' images at p<k>; H, W, R, Q set)."""
        (wr, wc), chunk = op.ws, TILED_ROWS_CHUNK
        return ["/* the windows tile the image: a row of windows at a time, its values laid out as the columns */",
                f"for (int64_t i = 0; i < R; i++) for (int64_t j0 = 0; j0 < Q; j0 += {chunk}) {{",
                f"    const int64_t nj = ari_min_i64({chunk}, Q - j0), n = nj * {wc};",
                *(f"    {ctype} {name}[{chunk * wc}];" for name, ctype, _ in self.values),
                "    for (int64_t jj = 0; jj < nj; jj++) {",
                "        const int64_t j = j0 + jj;",
                *(f"        const {ctype} {name}_ij = {value};" for name, ctype, value in self.values),
                *("        " + " ".join(f"{name}[jj * {wc} + {b}] = {name}_ij;" for b in range(wc))
                  for name, _, _ in self.values),
                "    }",
                f"    for (int64_t r = i * {wr}; r < (i + 1) * {wr}; r++) {{",
                *(f"        {ctype} *restrict {name} = ({ctype} *)(p{k} + r * {v}.strides[{nd - 2}] + j0 * {wc});"
                  for name, ctype, k, v in self.rows),
                f"        for (int64_t c = 0; c < n; c++) {self.element}",
                "    }",
                "}"]


def emit_pool(g, node, index, ins, outs):
    """Pool: for each output, its window's max (NaN wins), sum or average."""
    (x,), (o,) = ins, outs
    op, xv, ov = node.op, node.inputs[0], node.outputs[0]
    nd, T = xv.ndim, ct(xv.dtype)
    lines = _head(node, index, x)
    lines += [f"{o}.shape[{a}] = pooled.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    if op.mode == "max":
        if isfloat(xv.dtype):  # a select and a NaN flag: no branch (np.max: a NaN wins)
            body = lambda at: ([f"{T} m = {at(0, x, 'rb', 'cb')}; int nan = 0;"],
                               f"{{ const {T} v = {at(0, x)}; m = v > m ? v : m; nan |= v != v; }}", ["*q++ = nan ? NAN : m;"])
        else:
            body = lambda at: ([f"{T} m = {at(0, x, 'rb', 'cb')};"], f"{{ const {T} v = {at(0, x)}; m = v > m ? v : m; }}",
                               ["*q++ = m;"])
    else:
        body = lambda at: ([f"{T} s = 0;"], f"s += {at(0, x)};", [f"*q++ = {'s' if op.mode == 'sum' else f's / ({T})div'};"])
    lines += _lead_sizes(x, nd)
    by_columns = op.mode == "max" and op.stride == op.ws and op.pad == (0, 0) and op.ws[1] <= TILED_ROWS_MAX_WIDTH
    band = (lambda windows: _max_by_columns(op, x, nd, T, windows)) if by_columns else None
    lines.append(_windows(g, index, node, body, [(x, f"const {T}")], q=(o, T), unit_band=band))
    return "\n".join(lines)


def _max_by_columns(op, x, nd, T, windows):
    """C of the max-pooling of the windows [jf0, jf1) of a row of windows inside the image, when the
    windows do not overlap and every column stride is 1: first the maximum of each column of the band
    (one loop over its columns per row: gcc vectorizes it), then each window's over its columns.
    A float band that holds a NaN is done again by ``windows(first, end)`` (window by window: a NaN
    wins), as a select that lets a NaN win kept gcc from vectorizing. Window by window, LeNet's rows
    of 12 windows were too short for gcc's vectorizer: its first 2x2 max-pool took 0.22 ms, now
    0.145 ms (two threads)."""
    (wr, wc), chunk = op.ws, TILED_ROWS_CHUNK
    floats = T in ("f32", "f64")
    nan = " nan |= v != v;" if floats else ""
    windows_again = ["    if (nan) {  /* a NaN in the band: its windows again, one by one */", f"        q -= n / {wc};",
                     *("        " + line for line in windows("j0", f"j0 + n / {wc}")), "    }"] if floats else []
    return [f"for (int64_t j0 = jf0; j0 < jf1; j0 += {chunk}) {{",
            f"    const int64_t n = ari_min_i64({chunk}, jf1 - j0) * {wc};",
            f"    const {T} *restrict x0 = p0 + top * {x}.strides[{nd - 2}] + j0 * {wc};",
            f"    {T} cm[{chunk * wc}];  /* the band's column maxima */",
            *(["    int nan = 0;"] if floats else []),
            f"    for (int64_t c = 0; c < n; c++) {{ const {T} v = x0[c]; cm[c] = v;{nan} }}",
            f"    for (int64_t a = 1; a < {wr}; a++) for (int64_t c = 0; c < n; c++) {{",
            f"        const {T} v = x0[a * {x}.strides[{nd - 2}] + c], m = cm[c]; cm[c] = v > m ? v : m;{nan}",
            "    }",
            f"    for (int64_t c = 0; c < n; c += {wc}) {{",
            f"        {T} m = cm[c];",
            *(f"        {{ const {T} v = cm[c + {b}]; m = v > m ? v : m; }}" for b in range(1, wc)),
            "        *q++ = m;",
            "    }",
            *windows_again,
            "}"]


def emit_max_pool_grad(g, node, index, ins, outs):
    """MaxPoolGrad: each window's g[i, j] added to every element of the window equal to out[i, j]."""
    (x, out, gr), (o,) = ins, outs
    xv = node.inputs[0]
    nd, T = xv.ndim, ct(xv.dtype)
    lines = _head(node, index, x, pooled=(out, gr))
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines += _lead_sizes(x, nd)
    # pick[x == m]: a load, not a branch (gcc branches on a ?: of floats); ties each get g. (A select
    # vectorizes only in rows of 16 windows or more; LeNet's rows of 12 and 4 then branched: twice as slow.)
    parts = lambda at, assign: ([f"const {T} m = {at(1, out, 'i', 'j')}, pick[2] = {{0, {at(2, gr, 'i', 'j')}}};"],
                                f"{at(3, o)} {assign} pick[{at(0, x)} == m];")
    arrays = [(x, f"const {T}"), (out, f"const {T}"), (gr, f"const {T}"), (o, T)]
    # tiled rows: g's bits where x equals the window's maximum, else 0 (a mask, no branch: any g, NaN or
    # infinite, reaches the maxima unchanged and every other element gets exactly 0)
    U = f"ari_bits{8 * np.dtype(xv.dtype).itemsize}"
    rows = _TiledRows(values=[("m", T, _at(1, out, nd, "i", "j", unit=True)),
                              ("gv", U, _at(2, gr, nd, "i", "j", unit=True, as_type=U))],
                      rows=[("xr", f"const {T}", 0, x), ("orow", U, 3, o)],
                      element=f"orow[c] = gv[c] & -({U})(xr[c] == m[c]);")
    return "\n".join(lines + _spread(g, node, index, o, parts, arrays, rows))


def emit_max_pool_grad_grad(g, node, index, ins, outs):
    """MaxPoolGradGrad: for each window, the sum of h over its elements equal to out[i, j]."""
    (x, out, h), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    nd, T = xv.ndim, ct(xv.dtype)
    lines = _head(node, index, x, pooled=(out,), same=(h,))
    lines += [f"{o}.shape[{a}] = pooled.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    lines += _lead_sizes(x, nd)
    body = lambda at: ([f"const {T} m = {at(1, out, 'i', 'j')}; {T} s = 0;"],
                       f"{{ const {T} pick[2] = {{0, {at(2, h)}}}; s += pick[{at(0, x)} == m]; }}", ["*q++ = s;"])
    arrays = [(x, f"const {T}"), (out, f"const {T}"), (h, f"const {T}")]
    lines.append(_windows(g, index, node, body, arrays, q=(o, T)))
    return "\n".join(lines)


def emit_average_pool_grad(g, node, index, ins, outs):
    """AveragePoolGrad: each window's g[i, j] / its divisor (1 for 'sum') added over the window."""
    (x, gr), (o,) = ins, outs
    op, xv = node.op, node.inputs[0]
    nd, T = xv.ndim, ct(xv.dtype)
    lines = _head(node, index, x, pooled=(gr,))
    lines += [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines += _lead_sizes(x, nd)
    divide = "" if op.mode == "sum" else f" / ({T})div"
    parts = lambda at, assign: ([f"const {T} v = {at(0, gr, 'i', 'j')}{divide};"], f"{at(1, o)} {assign} v;")
    arrays = [(gr, f"const {T}"), (o, T)]
    # tiled rows: each window's share, the windows whole (div = its size)
    share = "" if op.mode == "sum" else f" / ({T}){op.ws[0] * op.ws[1]}"
    rows = _TiledRows(values=[("v", T, _at(0, gr, nd, "i", "j", unit=True) + share)], rows=[("orow", T, 1, o)],
                      element="orow[c] = v[c];")
    return "\n".join(lines + _spread(g, node, index, o, parts, arrays, rows))


def _spread(g, node, index, o, parts, arrays, rows):
    """C allocating the gradient ``o`` (shaped like the input) and adding each window's share into it
    (``parts(at, assign)``: the lines before and the tap, which assigns with ``assign``): where the
    windows tile the image (stride = window, no padding, sizes that divide) each element is written
    once, with no zeroing first, and when every column stride is 1 too, a row of windows at a time
    (``rows``, a _TiledRows)."""
    op, ov, nd = node.op, node.outputs[0], node.inputs[0].ndim
    add = _windows(g, index, node, lambda at: (*parts(at, "+="), []), arrays)
    if op.stride != op.ws or op.pad != (0, 0):
        return [g.alloc(ov, index, zero=True), add]
    unit_image = rows.image(op, nd) if op.ws[1] <= TILED_ROWS_MAX_WIDTH else None
    return [g.alloc(ov, index),
            f"if (R * {op.ws[0]} == H && Q * {op.ws[1]} == W) {{  /* the windows tile the image */",
            indent(_windows(g, index, node, lambda at: (*parts(at, "="), []), arrays, unit_image=unit_image)),
            "} else {",
            f"    memset({o}.data, 0, sizeof({ct(ov.dtype)}) * ari_size(&{o}, {nd}));",
            indent(add), "}"]
