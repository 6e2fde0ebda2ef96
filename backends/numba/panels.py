"""Products of few rows for the numba backend, as the C backend's ``ari_few_rows`` (runtime.h,
docs/c-backend.md): OpenBLAS packs all of b on every call, which with 20 rows costs more than the
multiply-adds. Blocks of up to BLOCK_ROWS rows by a panel of two vectors of columns stay in registers
while the sum runs down k, for 3 to FEW_ROWS rows.

The kernels are C callbacks, one per dtype, that runtime.py's ``_blas_gemm`` calls by name as it
calls BLAS (the backend binds the names to their addresses): a named call keeps their code out of
every segment that computes a product, where numba would link a jitted helper's code in. The backend
runs this module's copy in the cache, as runtime.py's, so that their machine code is cached there.
"""

import numba as _nb
import numpy as np


def _vector_bytes():
    """The width of the vectors numba's code uses: 64 bytes with AVX-512 (numba's features, as the
    backend sets them, or the host's), 32 with AVX2 and FMA, else 16."""
    from llvmlite import binding

    features = (_nb.config.CPU_FEATURES or binding.get_host_cpu_features().flatten()).split(",")
    enabled = {f[1:] for f in features if f.startswith("+")}
    if "avx512f" in enabled and "-evex512" not in features:
        return 64
    return 32 if {"avx2", "fma"} <= enabled else 16


VECTOR_BYTES = _vector_bytes()
BLOCK_ROWS = 10 if VECTOR_BYTES == 64 else 6  # 20 accumulators of AVX-512's 32 registers, 12 of AVX2's 16
FEW_ROWS = 2 * BLOCK_ROWS
PANEL_BYTES = 2 * VECTOR_BYTES  # a panel's columns: at least this many bytes of b's rows


def _panel_sums():
    """An intrinsic ``panel_sums(a, as0, as1, b, bs0, sums, i0, rows, start, k)``: sums[r, :] =
    a[i0 + r, :k] . b[:k, start:start + P] for r < BLOCK_ROWS (rows from ``rows`` on repeat row
    i0 + rows - 1), a and b pointers with strides in
    elements (b's columns of unit stride), P two vectors of columns, sums a C-contiguous
    (BLOCK_ROWS, P) array. The accumulators are vectors carried round the loop over k, each step two
    loads of b, a broadcast of a per row and two FMAs: numba's own loops kept them in memory."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, a, as0, as1, b, bs0, sums, i0, rows, start, k):
        pointers = all(isinstance(x, types.CPointer) and x.dtype in (types.float32, types.float64) for x in (a, b))
        integers = all(isinstance(x, types.Integer) for x in (as0, as1, bs0, i0, rows, start, k))
        if not (pointers and integers and isinstance(sums, types.Array) and sums.layout == "C"
                and a.dtype == b.dtype == sums.dtype and sums.ndim == 2):
            return None

        def codegen(context, builder, signature, args):
            scalar = context.get_data_type(signature.args[0].dtype)
            intp = context.get_value_type(types.intp)
            item = context.get_abi_sizeof(scalar)
            const = lambda value: ir.Constant(intp, value)  # noqa: E731
            as0, as1, bs0, i0, rows, start, k = [  # the strides and offsets in bytes
                builder.mul(context.cast(builder, args[i], signature.args[i], types.intp),
                            const(item if i in (1, 2, 4, 8) else 1)) for i in (1, 2, 4, 6, 7, 8, 9)]
            lanes = VECTOR_BYTES // item
            vector = ir.VectorType(scalar, lanes)
            a_at = builder.add(builder.ptrtoint(args[0], intp), builder.mul(i0, as0))
            b_at = builder.add(builder.ptrtoint(args[3], intp), start)
            out = context.make_array(signature.args[5])(context, builder, args[5])
            last = builder.sub(rows, const(1))
            row_at = [builder.add(a_at, builder.mul(builder.select(builder.icmp_signed("<", const(r), rows), const(r),
                                                                  last), as0)) for r in range(BLOCK_ROWS)]
            entry = builder.basic_block
            head, body, done = (builder.append_basic_block(f"panel_sums.{n}") for n in ("head", "body", "done"))
            builder.branch(head)
            builder.position_at_end(head)
            l = builder.phi(intp)
            l.add_incoming(const(0), entry)
            sums = [builder.phi(vector) for _ in range(2 * BLOCK_ROWS)]
            for acc in sums:
                acc.add_incoming(ir.Constant(vector, None), entry)
            builder.cbranch(builder.icmp_signed("<", l, k), body, done)
            builder.position_at_end(body)
            at = builder.add(b_at, builder.mul(l, bs0))
            halves = [builder.load(builder.inttoptr(builder.add(at, const(h * lanes * item)), vector.as_pointer()),
                                   align=item) for h in (0, 1)]
            step = builder.mul(l, as1)
            everywhere = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                                 f"llvm.fma.v{lanes}f{8 * item}")
            following = []
            for r in range(BLOCK_ROWS):
                value = builder.load(builder.inttoptr(builder.add(row_at[r], step), scalar.as_pointer()), align=item)
                spread = builder.shuffle_vector(builder.insert_element(ir.Constant(vector, ir.Undefined), value,
                                                                       ir.Constant(ir.IntType(32), 0)),
                                                ir.Constant(vector, ir.Undefined), everywhere)
                following += [builder.call(fma, [spread, halves[h], sums[2 * r + h]]) for h in (0, 1)]
            l.add_incoming(builder.add(l, const(1)), builder.basic_block)
            for acc, value in zip(sums, following):
                acc.add_incoming(value, builder.basic_block)
            builder.branch(head)
            builder.position_at_end(done)
            (ss0, _) = cgutils.unpack_tuple(builder, out.strides, 2)
            for r in range(BLOCK_ROWS):
                for h in (0, 1):
                    at = builder.add(builder.add(builder.ptrtoint(out.data, intp), builder.mul(const(r), ss0)),
                                     const(h * lanes * item))
                    builder.store(sums[2 * r + h], builder.inttoptr(at, vector.as_pointer()), align=item)
            return context.get_dummy_value()
        return types.none(a, as0, as1, b, bs0, sums, i0, rows, start, k), codegen
    return intrinsic(typer)


panel_sums = _panel_sums()


def _few_rows(a, as0, as1, b, bs0, out, ldo, n, k, m, alpha, beta):
    """out (n rows ldo apart, unit column stride) = beta out + alpha a (n, k) . b (k, m), out unread
    when beta is 0, strides in elements; b's columns have a unit stride and m is at least a panel.
    Panel after panel of columns (a short last one computed whole, overlapping the one before, and
    only its own columns written), the rows in blocks of equal size."""
    target = _nb.carray(out, (n - 1) * ldo + m)
    panel = PANEL_BYTES // target.itemsize
    sums = np.empty((BLOCK_ROWS, panel), dtype=target.dtype)
    blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    per = (n + blocks - 1) // blocks
    for j0 in range(0, m, panel):
        cols = min(m - j0, panel)
        start = j0 + cols - panel
        for i0 in range(0, n, per):
            rows = min(n - i0, per)
            panel_sums(a, as0, as1, b, bs0, sums, i0, rows, start, k)
            for r in range(rows):
                row = (i0 + r) * ldo + start
                if beta == 0:
                    for j in range(panel - cols, panel):
                        target[row + j] = alpha * sums[r, j]
                else:
                    for j in range(panel - cols, panel):
                        target[row + j] = beta * target[row + j] + alpha * sums[r, j]


def _callback(dtype):
    """``_few_rows`` for ``dtype``, a C callback (the address runtime.py's name is bound to)."""
    from numba import types

    pointer = types.CPointer(dtype)
    return _nb.cfunc(types.void(pointer, types.intp, types.intp, pointer, types.intp, pointer, types.intp,
                                types.intp, types.intp, types.intp, types.float64, types.float64),
                     cache=True, error_model="numpy")(_few_rows)


few_rows_float32 = _callback(_nb.float32)
few_rows_float64 = _callback(_nb.float64)
