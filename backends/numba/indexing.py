"""Indexing: basic subtensors (views, integers checked against their axis), inc/set at a basic region
(a copy updated with loops), and advanced (inc)subtensor at one integer vector among full slices
(checked indices, loops; repeated indices accumulate as np.add.at). Other advanced indexing (masks,
several index arrays) runs in NumPy between segments (``table.PYTHON_ONLY``)."""

from arignote.core import ops

from .generator import st, tup


def one_index_vector(node):
    """The axis of x[..., idx, ...] when an advanced (inc)subtensor's index is one integer vector among
    full slices (the case compiled; masks and several arrays stay in NumPy), else None."""
    if type(node.op) not in (ops.AdvancedSubtensor, ops.AdvancedIncSubtensor):
        return None
    arrays = [k for k, e in enumerate(node.op.idx_list) if e[0] == "array"]
    if len(arrays) != 1 or node.op.idx_list[arrays[0]] != ("array", 1, False) or any(
            e != ("slice", None, None, None) for e in node.op.idx_list if e[0] != "array"):
        return None
    return arrays[0]


def _loops_except(lines, nd, axis):
    """Append loops i0, i1... over every axis of x but ``axis`` (the index loop, already open at one
    indent); the indent of their body."""
    indent = "    "
    for d in range(nd):
        if d != axis:
            lines.append(f"{indent}for i{d} in range(x.shape[{d}]):")
            indent += "    "
    return indent


def _update(node, target, value):
    """The line setting, or incrementing, ``target`` (an element of x) by ``value`` (one of y): the sum
    in ``IncSubtensor.sum_dtype`` (core's one rule: NumPy's dtype for x + y, as np.add.at), then stored
    in x's dtype."""
    x, y = node.inputs[:2]
    kind, total = st(x.dtype), st(node.op.sum_dtype(x.dtype, y.dtype))
    if node.op.set_instead_of_inc:
        return f"{target} = {kind}({value})"
    if total == kind:
        return f"{target} += {kind}({value})"
    return f"{target} = {kind}({total}({target}) + {total}({value}))"


def _checked_index(label):
    """The loop over the index vector ``idx`` (m entries) binding j, checked against n and wrapped."""
    return ["for k in range(m):", "    j = idx[k]", "    if j < -n or j >= n:",
            f"        raise IndexError('{label}: index out of range')", "    if j < 0:", "        j += n"]


def _basic_index(x, description, index_args):
    """The numba index expression of a basic index, integers checked against their axis."""
    values = iter(index_args)

    def value(part):
        return "None" if part is None else (f"{next(values)}[()]" if part == ops.SYMBOLIC else str(part))

    parts, axis = [], 0
    for entry in description:
        if entry[0] == "newaxis":
            parts.append("None")
            continue
        if entry[0] == "index":
            parts.append(f"_rt.index({value(entry[1])}, {x}.shape[{axis}])")
        else:
            start, stop, step = (value(p) for p in entry[1:])
            parts.append(f"slice({start}, {stop}, {step})")
        axis += 1
    return parts


def subtensor(gen, n, node, args, outs):
    parts = _basic_index(args[0], node.op.idx_list, args[1:])
    if not parts:
        return [f"{outs[0]} = {args[0]}"]
    if node.outputs[0].ndim == 0:  # numba gives a scalar: a 0-d array holds it
        return [f"{outs[0]} = _rt.scalar({args[0]}[{', '.join(parts)}], "
                f"np.empty((), dtype={st(node.outputs[0].dtype)}))"]
    return [f"{outs[0]} = {args[0]}[{', '.join(parts) or '...'}]"]


def advanced_subtensor(gen, n, node, args, outs):
    """x[..., idx, ...] for one integer vector: checked indices, copied with loops."""
    axis, nd = one_index_vector(node), node.inputs[0].ndim
    shape = tup("m" if d == axis else f"x.shape[{d}]" for d in range(nd))
    lines = [f"n, m = x.shape[{axis}], idx.shape[0]", f"out = np.empty({shape}, dtype=x.dtype)"]
    lines += _checked_index("AdvancedSubtensor")
    indent = _loops_except(lines, nd, axis)
    target = ", ".join("k" if d == axis else f"i{d}" for d in range(nd))
    source = ", ".join("j" if d == axis else f"i{d}" for d in range(nd))
    lines += [f"{indent}out[{target}] = x[{source}]", "return out"]
    name = gen.kernel(n, node, ["x", "idx"], lines)
    return [f"{outs[0]} = {name}({args[0]}, {args[1]})"]


def advanced_inc_subtensor(gen, n, node, args, outs):
    """A copy of x with y added (or set) at x[..., idx, ...] for one integer vector, in index order:
    repeated indices accumulate (np.add.at), and the last write wins when setting."""
    x, y = node.inputs[:2]
    axis, nd = one_index_vector(node), x.ndim
    pad = nd - y.ndim
    lines = ["out = x.copy()", f"n, m = x.shape[{axis}], idx.shape[0]"]
    for d in range(y.ndim):
        if not y.broadcastable[d]:
            size = "m" if d + pad == axis else f"x.shape[{d + pad}]"
            lines += [f"if y.shape[{d}] != {size}:",
                      f"    raise ValueError('{type(node.op).__name__}: the value does not fit the region')"]
    lines += _checked_index(type(node.op).__name__)
    indent = _loops_except(lines, nd, axis)
    target = ", ".join("j" if d == axis else f"i{d}" for d in range(nd))
    source = ", ".join("0" if b else ("k" if d + pad == axis else f"i{d + pad}")
                       for d, b in enumerate(y.broadcastable)) or "()"
    lines.append(indent + _update(node, f"out[{target}]", f"y[{source}]"))
    name = gen.kernel(n, node, ["x", "y", "idx"], lines + ["return out"])
    return [f"{outs[0]} = {name}({', '.join(args)})"]


def inc_subtensor(gen, n, node, args, outs):
    """A copy of x with y added (or set) at a basic region."""
    x, y = node.inputs[:2]
    parts = _basic_index("out", node.op.idx_list, [f"a{k + 2}" for k in range(len(args) - 2)])
    region_nd = sum(e[0] != "index" for e in node.op.idx_list) + x.ndim - sum(
        e[0] != "newaxis" for e in node.op.idx_list)
    label = type(node.op).__name__
    if gen.plan.reuse.get(node) == 0 and not gen.targets.get(node.outputs[0]):
        lines = ["out = a0  # written in place: x dies here (plan.reuse)"]
    else:
        lines = ["out = a0.copy()"]
    index = ", ".join(parts)
    if region_nd == 0:
        lines.append(_update(node, f"out[{index}]", "a1[()]"))
    else:
        lines.append(f"region = out[{index or '...'}]")
        pad = region_nd - y.ndim
        for d in range(y.ndim):
            if not y.broadcastable[d]:
                lines += [f"if a1.shape[{d}] != region.shape[{d + pad}]:",
                          f"    raise ValueError('{label}: the value does not fit the region')"]
        indent = ""
        for d in range(region_nd):
            lines.append(f"{indent}for i{d} in range(region.shape[{d}]):")
            indent += "    "
        at = ", ".join(f"i{d}" for d in range(region_nd))
        source = ", ".join("0" if b else f"i{d + pad}" for d, b in enumerate(y.broadcastable)) or "()"
        lines.append(indent + _update(node, f"region[{at}]", f"a1[{source}]"))
    name = gen.kernel(n, node, [f"a{k}" for k in range(len(args))], lines + ["return out"])
    return [f"{outs[0]} = {name}({', '.join(args)})"]
