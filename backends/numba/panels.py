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


def _panel_block():
    """An intrinsic ``panel_block(a, as0, as1, b, bs0, i0, rows, start, k, out, ldo, alpha, beta, sums,
    whole)``: the sums a[i0 + r, :k] . b[:k, start:start + P] for r < BLOCK_ROWS (rows from ``rows``
    on repeat row i0 + rows - 1), a, b and out pointers with strides in elements (b's and out's
    columns of unit stride), P two vectors of columns. With ``whole``, rows i0 .. i0 + rows - 1 of out
    (ldo apart) get beta out + alpha sums at columns start .. start + P (out unread when beta is 0),
    straight from the registers; else the sums go into ``sums``, a C-contiguous (BLOCK_ROWS, P) array.
    The accumulators are vectors carried round the loop over k, each step two loads of b, a broadcast
    of a per row and two FMAs: numba's own loops kept them in memory."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, a, as0, as1, b, bs0, i0, rows, start, k, out, ldo, alpha, beta, sums, whole):
        pointers = all(isinstance(x, types.CPointer) and x.dtype in (types.float32, types.float64) for x in (a, b, out))
        integers = all(isinstance(x, types.Integer) for x in (as0, as1, bs0, i0, rows, start, k, ldo))
        if not (pointers and integers and isinstance(sums, types.Array) and sums.layout == "C" and sums.ndim == 2
                and a.dtype == b.dtype == out.dtype == sums.dtype and isinstance(alpha, types.Float)
                and isinstance(beta, types.Float) and isinstance(whole, (types.Boolean, types.Integer))):
            return None
        signature_types = (a, as0, as1, b, bs0, i0, rows, start, k, out, ldo, alpha, beta, sums, whole)

        def codegen(context, builder, signature, args):
            dtype = signature.args[0].dtype
            scalar = context.get_data_type(dtype)
            intp = context.get_value_type(types.intp)
            item = context.get_abi_sizeof(scalar)
            const = lambda value: ir.Constant(intp, value)  # noqa: E731
            ints = {i: context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2, 4, 5, 6, 7, 8, 10)}
            as0, as1, bs0, start, ldo = (builder.mul(ints[i], const(item)) for i in (1, 2, 4, 7, 10))  # bytes
            i0, rows, k = ints[5], ints[6], ints[8]
            lanes = VECTOR_BYTES // item
            vector = ir.VectorType(scalar, lanes)
            everywhere = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)

            def spread(value):
                one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
                return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), everywhere)

            a_at = builder.add(builder.ptrtoint(args[0], intp), builder.mul(i0, as0))
            b_at = builder.add(builder.ptrtoint(args[3], intp), start)
            last = builder.sub(rows, const(1))
            row_at = [builder.add(a_at, builder.mul(builder.select(builder.icmp_signed("<", const(r), rows), const(r),
                                                                  last), as0)) for r in range(BLOCK_ROWS)]
            entry = builder.basic_block
            head, body, done = (builder.append_basic_block(f"panel_block.{n}") for n in ("head", "body", "done"))
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
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                                 f"llvm.fma.v{lanes}f{8 * item}")
            following = []
            for r in range(BLOCK_ROWS):
                value = builder.load(builder.inttoptr(builder.add(row_at[r], step), scalar.as_pointer()), align=item)
                following += [builder.call(fma, [spread(value), halves[h], sums[2 * r + h]]) for h in (0, 1)]
            l.add_incoming(builder.add(l, const(1)), builder.basic_block)
            for acc, value in zip(sums, following):
                acc.add_incoming(value, builder.basic_block)
            builder.branch(head)
            builder.position_at_end(done)
            whole = builder.icmp_unsigned("!=", context.cast(builder, args[14], signature.args[14], types.intp), const(0))
            with builder.if_else(whole) as (into_out, into_sums):
                with into_out:  # beta out + alpha sums, in the dtype (as C's ari_row_block)
                    alpha, beta = (context.cast(builder, args[i], signature.args[i], dtype) for i in (11, 12))
                    alphas, betas = spread(alpha), spread(beta)
                    no_beta = builder.fcmp_ordered("==", beta, ir.Constant(scalar, 0))
                    out_at = builder.add(builder.ptrtoint(args[9], intp), start)
                    for r in range(BLOCK_ROWS):
                        with builder.if_then(builder.icmp_signed("<", const(r), rows)):
                            row = builder.add(out_at, builder.mul(builder.add(i0, const(r)), ldo))
                            for h in (0, 1):
                                pointer = builder.inttoptr(builder.add(row, const(h * lanes * item)), vector.as_pointer())
                                scaled = builder.fmul(alphas, sums[2 * r + h])
                                with builder.if_else(no_beta) as (alone, added):
                                    with alone:
                                        builder.store(scaled, pointer, align=item)
                                    with added:
                                        old = builder.load(pointer, align=item)
                                        builder.store(builder.fadd(builder.fmul(betas, old), scaled), pointer, align=item)
                with into_sums:
                    array = context.make_array(signature.args[13])(context, builder, args[13])
                    (ss0, _) = cgutils.unpack_tuple(builder, array.strides, 2)
                    for r in range(BLOCK_ROWS):
                        for h in (0, 1):
                            at = builder.add(builder.add(builder.ptrtoint(array.data, intp), builder.mul(const(r), ss0)),
                                             const(h * lanes * item))
                            builder.store(sums[2 * r + h], builder.inttoptr(at, vector.as_pointer()), align=item)
            return context.get_dummy_value()
        return types.none(*signature_types), codegen
    return intrinsic(typer)


panel_block = _panel_block()


def _few_rows(a, as0, as1, b, bs0, out, ldo, n, k, m, alpha, beta):
    """out (n rows ldo apart, unit column stride) = beta out + alpha a (n, k) . b (k, m), out unread
    when beta is 0, strides in elements; b's columns have a unit stride and m is at least a panel.
    Panel after panel of columns (a short last one computed whole, overlapping the one before, and
    only its own columns written, through ``sums``), the rows in blocks of equal size."""
    target = _nb.carray(out, (n - 1) * ldo + m)
    panel = PANEL_BYTES // target.itemsize
    sums = np.empty((BLOCK_ROWS, panel), dtype=target.dtype)
    scale = np.empty(2, dtype=target.dtype)  # alpha and beta in the dtype, as the blocks use them
    scale[0], scale[1] = alpha, beta
    blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    per = (n + blocks - 1) // blocks
    for j0 in range(0, m, panel):
        cols = min(m - j0, panel)
        start = j0 + cols - panel
        for i0 in range(0, n, per):
            rows = min(n - i0, per)
            panel_block(a, as0, as1, b, bs0, i0, rows, start, k, out, ldo, scale[0], scale[1], sums, cols == panel)
            if cols < panel:
                for r in range(rows):
                    row = (i0 + r) * ldo + start
                    for j in range(panel - cols, panel):
                        if scale[1] == 0:
                            target[row + j] = scale[0] * sums[r, j]
                        else:
                            target[row + j] = scale[1] * target[row + j] + scale[0] * sums[r, j]


def _callback(dtype):
    """``_few_rows`` for ``dtype``, a C callback (the address runtime.py's name is bound to)."""
    from numba import types

    pointer = types.CPointer(dtype)
    return _nb.cfunc(types.void(pointer, types.intp, types.intp, pointer, types.intp, pointer, types.intp,
                                types.intp, types.intp, types.intp, types.float64, types.float64),
                     cache=True, error_model="numpy")(_few_rows)


few_rows_float32 = _callback(_nb.float32)
few_rows_float64 = _callback(_nb.float64)
