"""Matrix products: dot (BLAS through runtime.h's ari_matmul for float32/float64, loops otherwise),
gemm (beta z + alpha x y, into z's storage for an update in place) and batched dot."""

from .ctext import ct, shape_buffers


def emit_dot(g, node, index, ins, outs):
    """Matrix and vector products; float32/float64 through BLAS (gemm, gemv), other dtypes by loops."""
    (a, b), (o,) = ins, outs
    av, bv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(ov.dtype)
    # view everything as matrices: a (n, k), b (k, m)
    lines = [shape_buffers(2),
             f"int64_t n = {f'{a}.shape[0]' if av.ndim == 2 else '1'}, k = {a}.shape[{av.ndim - 1}], "
             f"kb = {b}.shape[0], m = {f'{b}.shape[1]' if bv.ndim == 2 else '1'};",
             f"if (k != kb) FAIL(1, {index}, \"shapes %s and %s are not aligned: %lld (axis {av.ndim - 1}) != %lld (axis 0)\", "
             f"ari_shape(sb0, &{a}, {av.ndim}), ari_shape(sb1, &{b}, {bv.ndim}), (long long)k, (long long)kb);",
             f"int64_t as0 = {f'{a}.strides[0]' if av.ndim == 2 else '0'}, as1 = {a}.strides[{av.ndim - 1}], "
             f"bs0 = {b}.strides[0], bs1 = {f'{b}.strides[1]' if bv.ndim == 2 else '0'};"]
    dims = (["n"] if av.ndim == 2 else []) + (["m"] if bv.ndim == 2 else [])
    lines += [f"{o}.shape[{k}] = {d};" for k, d in enumerate(dims)]
    lines.append(g.alloc(ov, index))
    lines.append(f"{T} *po = ({T} *){o}.data;")
    same = av.dtype == bv.dtype == ov.dtype
    if same and ov.dtype in ("float32", "float64"):
        if node in g.plan.product_threads:
            # the plan's: its columns shared out between threads, the BLAS on one core (ari_matmul_columns)
            lines.append(f"switch (ari_matmul_columns({int(ov.dtype == 'float64')}, 0, n, m, k, {a}.data, as0, as1, "
                         f"{b}.data, bs0, bs1, po, 1, 0)) {{")
        else:  # runtime.h's ari_matmul: BLAS (gemm, gemv) with each operand's layout or a packed copy
            lines.append(f"switch (ari_matmul({int(ov.dtype == 'float64')}, n, m, k, {a}.data, as0, as1, {b}.data, "
                         f"bs0, bs1, po)) {{")
        lines.append(f"    case 3: FAIL(3, {index}, \"out of memory\");")
        lines.append(f"    case 1: FAIL(1, {index}, \"shapes %s and %s: a size exceeds what this 32-bit BLAS takes\", "
                     f"ari_shape(sb0, &{a}, {av.ndim}), ari_shape(sb1, &{b}, {bv.ndim}));")
        lines.append("}")
    else:
        lines.append(f"const {ct(av.dtype)} *pa = (const {ct(av.dtype)} *){a}.data; const {ct(bv.dtype)} *pb = (const {ct(bv.dtype)} *){b}.data;\n"
                     f"for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++) {{\n"
                     f"    {T} s = 0;\n    for (int64_t l = 0; l < k; l++) s += ({T})pa[i * as0 + l * as1] * ({T})pb[l * bs0 + j * bs1];\n"
                     f"    po[i * m + j] = s;\n}}")
    return "\n".join(lines)


def emit_gemm(g, node, index, ins, outs):
    """beta z + alpha x y: z copied into the output (or, for an update in place, the output is z's
    storage), then one BLAS gemm accumulating into it (runtime.h's ari_matmul_scaled)."""
    (z, alpha, x, y, beta), (o,) = ins, outs
    zv, ov = node.inputs[0], node.outputs[0]
    T = ct(ov.dtype)
    lines = [shape_buffers(3),
             f"int64_t n = {x}.shape[0], k = {x}.shape[1], m = {y}.shape[1];",
             f"if ({y}.shape[0] != k || {z}.shape[0] != n || {z}.shape[1] != m) FAIL(1, {index}, "
             f"\"shapes %s, %s and %s do not fit z + x . y\", ari_shape(sb0, &{z}, 2), ari_shape(sb1, &{x}, 2), "
             f"ari_shape(sb2, &{y}, 2));",
             f"{o}.shape[0] = n; {o}.shape[1] = m;"]
    if g.taken_over(node, ov) is zv:
        lines.append(g.alloc_or_reuse(node, ov, index))
    else:
        lines += [g.alloc(ov, index), f"ari_copy(&{o}, &{z}, 2, sizeof({T}));"]
    operands = (f"(const {T} *){x}.data, {x}.strides[0], {x}.strides[1], (const {T} *){y}.data, {y}.strides[0], "
                f"{y}.strides[1], ({T} *){o}.data")
    scale = f"*(const {T} *){alpha}.data, *(const {T} *){beta}.data"
    if node in g.plan.product_threads:  # the plan's: its columns shared out between threads
        call = f"ari_matmul_columns({int(ov.dtype == 'float64')}, 1, n, m, k, {operands}, {scale})"
    else:
        call = f"ari_matmul_scaled_{'f64' if ov.dtype == 'float64' else 'f32'}(n, m, k, {operands}, m, {scale})"
    lines += [f"switch ({call}) {{",
              f"    case 3: FAIL(3, {index}, \"out of memory\");",
              f"    case 1: FAIL(1, {index}, \"shapes %s and %s: a size exceeds what this 32-bit BLAS takes\", "
              f"ari_shape(sb1, &{x}, 2), ari_shape(sb2, &{y}, 2));",
              "}"]
    return "\n".join(lines)


def emit_batched_dot(g, node, index, ins, outs):
    """(B, n, k) . (B, k, m) -> (B, n, m) by loops."""
    (a, b), (o,) = ins, outs
    av, bv, ov = node.inputs[0], node.inputs[1], node.outputs[0]
    T = ct(ov.dtype)
    return "\n".join([
        shape_buffers(2),
        f"if ({a}.shape[0] != {b}.shape[0] || {a}.shape[2] != {b}.shape[1]) FAIL(1, {index}, \"shapes %s and %s do not fit "
        f"(B, n, k) · (B, k, m): %s\", ari_shape(sb0, &{a}, 3), ari_shape(sb1, &{b}, 3), {a}.shape[0] != {b}.shape[0] ? "
        f"\"the batch sizes differ (a batch axis stretches only where its type is broadcastable)\" : \"the summed sizes differ\");",
        f"{o}.shape[0] = {a}.shape[0]; {o}.shape[1] = {a}.shape[1]; {o}.shape[2] = {b}.shape[2];",
        g.alloc(ov, index),
        f"const {ct(av.dtype)} *pa = (const {ct(av.dtype)} *){a}.data; const {ct(bv.dtype)} *pb = (const {ct(bv.dtype)} *){b}.data; {T} *po = ({T} *){o}.data;",
        f"for (int64_t z = 0; z < {o}.shape[0]; z++) for (int64_t i = 0; i < {o}.shape[1]; i++) for (int64_t j = 0; j < {o}.shape[2]; j++) {{",
        f"    {T} s = 0;",
        f"    for (int64_t l = 0; l < {a}.shape[2]; l++) s += ({T})pa[z * {a}.strides[0] + i * {a}.strides[1] + l * {a}.strides[2]] "
        f"* ({T})pb[z * {b}.strides[0] + l * {b}.strides[1] + j * {b}.strides[2]];",
        f"    po[(z * {o}.shape[1] + i) * {o}.shape[2] + j] = s;",
        "}",
    ])
