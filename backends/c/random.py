"""Random numbers (uniform, counter-based) and argsort."""

from arignote.core import random as core_random

from .ctext import ct, isfloat, nested, read_int


def emit_random_uniform(g, node, index, ins, outs):
    """Uniform numbers in [0, 1) from the state [key, counter] (SplitMix64, as core/random.py specifies),
    and the state advanced past them."""
    (st, sh), (ns, o) = ins, outs
    shv = node.inputs[1]
    ov = node.outputs[1]
    nd = node.op.ndim
    T = ct(ov.dtype)
    lines = [f"if ({st}.shape[0] != 2 || {sh}.shape[0] != {nd}) FAIL(1, {index}, \"expected a state [key, counter] and "
             f"{nd} sizes\");"]
    for k in range(nd):
        lines.append(f"{o}.shape[{k}] = {read_int(sh, shv, k)}; if ({o}.shape[{k}] < 0) FAIL(1, {index}, \"negative size\");")
    lines.append(g.alloc(ov, index))
    lines.append(f"{ns}.shape[0] = 2;")
    lines.append(g.alloc(node.outputs[0], index))
    lines.append(f"uint64_t key = ((const u64 *){st}.data)[0], counter = ((const u64 *){st}.data)[{st}.strides[0]];")
    lines.append(f"int64_t count = ari_size(&{o}, {nd}); {T} *po = ({T} *){o}.data;")
    shift, scale = ("40", "0x1p-24f") if T == "f32" else ("11", "0x1p-53")
    lines.append(f"for (int64_t i = 0; i < count; i++) {{ uint64_t z = ari_mix64(key + (counter + (uint64_t)i) * "
                 f"{core_random.GOLDEN:#x}ULL); po[i] = ({T})(z >> {shift}) * {scale}; }}")
    lines.append(f"((u64 *){ns}.data)[0] = key; ((u64 *){ns}.data)[1] = counter + (uint64_t)count;")
    return "\n".join(lines)


def emit_argsort(g, node, index, ins, outs):
    """A stable merge sort of the indices along the last axis; NaN sorts last, as in NumPy."""
    (x,), (o,) = ins, outs
    xv, ov = node.inputs[0], node.outputs[0]
    nd, X = xv.ndim, ct(xv.dtype)
    last = nd - 1
    less = ("(va < vb || (vb != vb && va == va))" if isfloat(xv.dtype) else "(va < vb)")
    lines = [f"{o}.shape[{a}] = {x}.shape[{a}];" for a in range(nd)]
    lines.append(g.alloc(ov, index))
    lines.append(f"int64_t n = {x}.shape[{last}]; int64_t *tmp = malloc(sizeof(int64_t) * (n + 1)); "
                 f"if (!tmp) FAIL(3, {index}, \"out of memory\");")
    base = " + ".join(f"i{a} * {x}.strides[{a}]" for a in range(last)) or "0"
    obase = " + ".join(f"i{a} * {o}.strides[{a}]" for a in range(last)) or "0"
    body = f"""const {X} *px = (const {X} *){x}.data + ({base}); int64_t st = {x}.strides[{last}];
i64 *idx = (i64 *){o}.data + ({obase});
for (int64_t i = 0; i < n; i++) idx[i] = i;
for (int64_t width = 1; width < n; width *= 2) {{
    for (int64_t lo = 0; lo < n; lo += 2 * width) {{
        int64_t mid = lo + width < n ? lo + width : n, hi = lo + 2 * width < n ? lo + 2 * width : n, p = lo, q = mid, w = lo;
        while (p < mid && q < hi) {{ {X} va = px[idx[q] * st], vb = px[idx[p] * st]; tmp[w++] = {less} ? idx[q++] : idx[p++]; }}
        while (p < mid) tmp[w++] = idx[p++];
        while (q < hi) tmp[w++] = idx[q++];
    }}
    memcpy(idx, tmp, sizeof(int64_t) * n);
}}"""
    lines.append(nested(range(last), lambda a: f"{x}.shape[{a}]", body))
    lines.append("free(tmp);")
    return "\n".join(lines)
