"""Products of few rows for the numba backend (runtime.py's ``_few_rows``; the C backend's
``ari_few_rows`` in runtime.h, docs/c-backend.md): blocks of up to BLOCK_ROWS rows by a panel of two
vectors of columns held in registers while the sum runs down k, for 3 to FEW_ROWS rows.

runtime.py's copy in the cache imports this module; the backend adds this file's hash to that copy's
source, so that a change here compiles the runtime again (``_runtime_module``).
"""

import numba as _nb


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


def _panel_sums():
    """An intrinsic ``panel_sums(a, b, sums, i0, rows, start, k)``: sums[r, :] = a[i0 + r, :k] .
    b[:k, start:start + P] for r < BLOCK_ROWS (rows past ``rows`` repeat row i0 + rows - 1), P two
    vectors of columns, b's columns of unit stride, sums a C-contiguous (BLOCK_ROWS, P) array; the
    caller checks the bounds. The accumulators are vectors carried round the loop over k, each step
    two loads of b, a broadcast of a per row and two FMAs: numba's own loops kept them in memory."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, a, b, sums, i0, rows, start, k):
        floats = all(isinstance(x, types.Array) and x.ndim == 2 and x.dtype in (types.float32, types.float64)
                     and x.dtype == a.dtype for x in (a, b, sums))
        if not (floats and sums.layout == "C" and all(isinstance(x, types.Integer) for x in (i0, rows, start, k))):
            return None

        def codegen(context, builder, signature, args):
            arrays = [context.make_array(t)(context, builder, v) for t, v in zip(signature.args[:3], args[:3])]
            i0, rows, start, k = [context.cast(builder, v, t, types.intp) for v, t in zip(args[3:], signature.args[3:])]
            scalar = context.get_data_type(signature.args[0].dtype)
            intp = context.get_value_type(types.intp)
            item = context.get_abi_sizeof(scalar)
            lanes = VECTOR_BYTES // item
            vector = ir.VectorType(scalar, lanes)
            const = lambda value: ir.Constant(intp, value)  # noqa: E731
            address = lambda ary: builder.ptrtoint(ary.data, intp)  # noqa: E731
            (as0, as1), (bs0, _), (ss0, _) = [cgutils.unpack_tuple(builder, a.strides, 2) for a in arrays]
            last = builder.sub(rows, const(1))
            row_at = [builder.add(address(arrays[0]), builder.mul(builder.add(i0, builder.select(
                builder.icmp_signed("<", const(r), rows), const(r), last)), as0)) for r in range(BLOCK_ROWS)]
            panel = builder.add(address(arrays[1]), builder.mul(start, const(item)))
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
            at = builder.add(panel, builder.mul(l, bs0))
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
            for r in range(BLOCK_ROWS):
                for h in (0, 1):
                    at = builder.add(builder.add(address(arrays[2]), builder.mul(const(r), ss0)), const(h * lanes * item))
                    builder.store(sums[2 * r + h], builder.inttoptr(at, vector.as_pointer()), align=item)
            return context.get_dummy_value()
        return types.none(a, b, sums, i0, rows, start, k), codegen
    return intrinsic(typer)



panel_sums = _panel_sums()
