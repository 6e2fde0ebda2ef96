"""Views and shapes (dimshuffle, reshape, shape, the checks of rebroadcast and specify_shape), and the
ops that build arrays: alloc, arange, join, repeat, make_vector."""

import numpy as np

from .generator import nest, st, transpose, tup


def itemsize(var):
    """The bytes of one element of ``var`` (what ``_rt.check_shape`` multiplies a shape by)."""
    return np.dtype(var.dtype).itemsize


def dimshuffle(gen, n, node, args, outs):
    order = node.op.new_order
    x, nd = args[0], node.inputs[0].ndim
    kept = [a for a in order if a != "x"]
    dropped = [a for a in range(nd) if a not in kept]
    lines = [f"if {x}.shape[{a}] != 1:\n    raise ValueError('{gen.label(n, node)}: "
             f"a dropped axis must have size 1')" for a in dropped]
    if nd == 0:
        return lines + [f"{outs[0]} = {x}.reshape({tup('1' for _ in order)})"]
    perm = kept + dropped
    y = transpose(x, perm)
    index = ["None" if a == "x" else ":" for a in order] + ["0"] * len(dropped)
    if all(i == ":" for i in index):
        return lines + [f"{outs[0]} = {y}"]
    if all(i != ":" for i in index):  # only size-1 axes: a copy (numba cannot index to such views)
        return lines + [f"{outs[0]} = np.ascontiguousarray({x}).reshape({tup('1' for _ in order)})"]
    return lines + [f"{outs[0]} = {y}[{', '.join(index)}]"]


def reshape(gen, n, node, args, outs):
    shape = tup(f"{args[1]}[{k}]" for k in range(node.outputs[0].ndim))
    # numba's reshape multiplies the sizes in an int64 that wraps around: it takes (2**32, 2**32) for an
    # empty array; the view is checked by NumPy's rule before anything reads it
    return [f"_rt.check_reshape({args[1]})",
            f"{outs[0]} = np.ascontiguousarray({args[0]}).reshape({shape})",
            f"_rt.check_shape({outs[0]}.shape, {itemsize(node.outputs[0])})"]


def shape(gen, n, node, args, outs):
    nd = node.inputs[0].ndim
    return [f"{outs[0]} = np.empty({nd}, dtype=np.int64)"] + [f"{outs[0]}[{k}] = {args[0]}.shape[{k}]"
                                                              for k in range(nd)]


def shape_i(gen, n, node, args, outs):
    return [f"{outs[0]} = _rt.scalar({args[0]}.shape[{node.op.i}], np.empty((), dtype=np.int64))"]


def make_vector(gen, n, node, args, outs):
    dtype = st(node.outputs[0].dtype)
    return [f"{outs[0]} = np.empty({len(args)}, dtype={dtype})"] + [f"{outs[0]}[{k}] = {dtype}({a}[()])"
                                                                    for k, a in enumerate(args)]


def rebroadcast(gen, n, node, args, outs):
    lines = [f"if {args[0]}.shape[{a}] != 1:\n    raise ValueError('{gen.label(n, node)}: "
             f"a broadcastable axis must have size 1')" for a, b in node.op.axes if b]
    return lines + [f"{outs[0]} = {args[0]}"]


def specify_shape(gen, n, node, args, outs):
    given = iter(args[1:])
    lines = []
    for axis, known in enumerate(node.op.known):
        if known:
            lines += [f"if {args[0]}.shape[{axis}] != {next(given)}[()]:",
                      f"    raise ValueError('{gen.label(n, node)}: the shape differs from the specified one')"]
    return lines + [f"{outs[0]} = {args[0]}"]


def alloc(gen, n, node, args, outs):
    """The value broadcast to the given shape, copied with loops."""
    value = node.inputs[0]
    nd = node.outputs[0].ndim
    pad = nd - value.ndim
    label = type(node.op).__name__
    lines = [f"s{d} = np.int64(a{d + 1}[()])" for d in range(nd)]
    lines += [f"if s{d} < 0:\n    raise ValueError('{label}: negative size')" for d in range(nd)]
    if nd:  # (numba cannot loop over an empty tuple)
        lines.append(f"_rt.check_shape({tup(f's{d}' for d in range(nd))}, {itemsize(value)})")
    for d in range(value.ndim):
        if not value.broadcastable[d]:
            lines += [f"if a0.shape[{d}] != s{d + pad}:",
                      f"    raise ValueError('{label}: the value does not fit the shape')"]
    lines.append(f"out = np.empty({tup(f's{d}' for d in range(nd))}, dtype={st(value.dtype)})")
    index = ", ".join("0" if b else f"i{d + pad}" for d, b in enumerate(value.broadcastable)) or "()"
    lines += nest([f"s{d}" for d in range(nd)], [f"out[{', '.join(f'i{d}' for d in range(nd)) or '()'}] = a0[{index}]"])
    name = gen.kernel(n, node, [f"a{k}" for k in range(len(args))], lines + ["return out"])
    return [f"{outs[0]} = {name}({', '.join(args)})"]


def arange(gen, n, node, args, outs):
    dtype = st(node.op.dtype)
    return [f"{outs[0]} = _rt.arange({args[0]}[()], {args[1]}[()], {args[2]}[()], np.empty(0, dtype={dtype}))"]


def join(gen, n, node, args, outs):
    dtype = st(node.outputs[0].dtype)
    parts = [a if v.dtype == node.outputs[0].dtype else f"{a}.astype({dtype})" for a, v in zip(args, node.inputs)]
    if len(parts) == 1:
        return [f"{outs[0]} = {parts[0]}.copy()"]
    # the joined size checked first: numba's concatenate adds the sizes in an int64 that wraps around
    axis, nd, total = node.op.axis, node.outputs[0].ndim, "0"
    for a in args:
        total = f"_rt.add_size({total}, {a}.shape[{axis}])"
    shape = tup(total if d == axis else f"{args[0]}.shape[{d}]" for d in range(nd))
    lines = [f"_rt.check_shape({shape}, {itemsize(node.outputs[0])})"]
    target = gen.targets.get(node.outputs[0])  # a loop step's output row
    if not target:
        return lines + [f"{outs[0]} = np.concatenate({tup(parts)}, axis={axis})"]
    # straight into the row the loop hands it, when it fits: no allocation and no copy per step
    lines += [f"if {target}.shape == {shape}:", f"    {outs[0]} = {target}", "    at = 0"]
    for part in parts:
        index = ", ".join(f"at:at + {part}.shape[{axis}]" if d == axis else ":" for d in range(nd))
        lines += [f"    {outs[0]}[{index}] = {part}", f"    at += {part}.shape[{axis}]"]
    return lines + ["else:", f"    {outs[0]} = np.concatenate({tup(parts)}, axis={axis})"]


def repeat(gen, n, node, args, outs):
    """Each entry along the axis copied counts[k] times, with loops (numba's np.repeat has no axis)."""
    x, repeats = node.inputs
    nd, axis = x.ndim, node.op.axis
    lines = [f"n = x.shape[{axis}]", "counts = np.empty(n, dtype=np.int64)"]
    if repeats.ndim == 0:
        lines += ["for k in range(n):", "    counts[k] = r[()]"]
    else:
        lines += ["if r.shape[0] != n and r.shape[0] != 1:",
                  "    raise ValueError('Repeat: one count per entry along the axis, or one count')",
                  "for k in range(n):", "    counts[k] = r[k] if r.shape[0] != 1 else r[0]"]
    lines += ["total = 0", "for k in range(n):", "    if counts[k] < 0:",
              "        raise ValueError('Repeat: negative count')", "    total = _rt.add_size(total, counts[k])"]
    shape = tup("total" if d == axis else f"x.shape[{d}]" for d in range(nd))
    lines += [f"_rt.check_shape({shape}, {itemsize(x)})",
              f"out = np.empty({shape}, dtype=x.dtype)", "at = 0", "for k in range(n):",
              "    for c in range(counts[k]):"]
    indent = "        "
    for d in range(nd):
        if d != axis:
            lines.append(f"{indent}for i{d} in range(x.shape[{d}]):")
            indent += "    "
    target = ", ".join("at" if d == axis else f"i{d}" for d in range(nd))
    source = ", ".join("k" if d == axis else f"i{d}" for d in range(nd))
    lines += [f"{indent}out[{target}] = x[{source}]", "        at += 1", "return out"]
    name = gen.kernel(n, node, ["x", "r"], lines)
    return [f"{outs[0]} = {name}({args[0]}, {args[1]})"]

