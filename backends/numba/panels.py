"""Products of few rows for the numba backend, as the C backend's ``ari_few_rows`` (runtime.h,
docs/c-backend.md): OpenBLAS packs all of b on every call, which with 20 rows costs more than the
multiply-adds. Blocks of up to BLOCK_ROWS rows by a panel of two vectors of columns stay in registers
while the sum runs down k, for 3 to FEW_ROWS rows (or the plan's own_rows: docs/products.md); products
of few columns run on blocks of NARROW_ROWS rows by one vector (``_narrow``, as ``ari_narrow``).

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
NARROW_ROWS = 2 * BLOCK_ROWS  # rows of a block of one vector of columns
PANEL_BYTES = 2 * VECTOR_BYTES  # a panel's columns: at least this many bytes of b's rows


def _panel_block(vectors=2, block_rows=BLOCK_ROWS):
    """An intrinsic ``panel_block(a, as0, as1, b, bs0, rows, k, out, ldo, alpha, beta, sums, whole)``:
    the sums a[r, :k] . b[:k, :P] for r < ``block_rows`` (rows from ``rows`` on repeat row rows - 1), a,
    b and out pointers with strides in elements (b's and out's columns of unit stride), P ``vectors``
    vectors of columns. With ``whole``, rows 0 .. rows - 1 of out (ldo apart) get beta out + alpha sums at
    columns 0 .. P (out unread when beta is 0),
    straight from the registers; else the sums go into ``sums``, a C-contiguous (block_rows, P) array.
    The accumulators are vectors carried round the loop over k, each step a load of b per vector, a
    broadcast of a per row and an FMA per vector: numba's own loops kept them in memory."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, a, as0, as1, b, bs0, rows, k, out, ldo, alpha, beta, sums, whole):
        pointers = all(isinstance(x, types.CPointer) and x.dtype in (types.float32, types.float64) for x in (a, b, out))
        integers = all(isinstance(x, types.Integer) for x in (as0, as1, bs0, rows, k, ldo))
        if not (pointers and integers and isinstance(sums, types.Array) and sums.layout == "C" and sums.ndim == 2
                and a.dtype == b.dtype == out.dtype == sums.dtype and isinstance(alpha, types.Float)
                and isinstance(beta, types.Float) and isinstance(whole, (types.Boolean, types.Integer))):
            return None
        signature_types = (a, as0, as1, b, bs0, rows, k, out, ldo, alpha, beta, sums, whole)

        def codegen(context, builder, signature, args):
            dtype = signature.args[0].dtype
            scalar = context.get_data_type(dtype)
            intp = context.get_value_type(types.intp)
            item = context.get_abi_sizeof(scalar)
            const = lambda value: ir.Constant(intp, value)  # noqa: E731
            ints = {i: context.cast(builder, args[i], signature.args[i], types.intp) for i in (1, 2, 4, 5, 6, 8)}
            as0, as1, bs0, ldo = (builder.mul(ints[i], const(item)) for i in (1, 2, 4, 8))  # bytes
            rows, k = ints[5], ints[6]
            lanes = VECTOR_BYTES // item
            vector = ir.VectorType(scalar, lanes)
            everywhere = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)

            def spread(value):
                one = builder.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(ir.IntType(32), 0))
                return builder.shuffle_vector(one, ir.Constant(vector, ir.Undefined), everywhere)

            a_at = builder.ptrtoint(args[0], intp)
            b_at = builder.ptrtoint(args[3], intp)
            last = builder.sub(rows, const(1))
            row_at = [builder.add(a_at, builder.mul(builder.select(builder.icmp_signed("<", const(r), rows), const(r),
                                                                  last), as0)) for r in range(block_rows)]
            entry = builder.basic_block
            head, body, done = (builder.append_basic_block(f"panel_block.{n}") for n in ("head", "body", "done"))
            builder.branch(head)
            builder.position_at_end(head)
            l = builder.phi(intp)
            l.add_incoming(const(0), entry)
            sums = [builder.phi(vector) for _ in range(vectors * block_rows)]
            for acc in sums:
                acc.add_incoming(ir.Constant(vector, None), entry)
            builder.cbranch(builder.icmp_signed("<", l, k), body, done)
            builder.position_at_end(body)
            at = builder.add(b_at, builder.mul(l, bs0))
            b_vectors = [builder.load(builder.inttoptr(builder.add(at, const(h * lanes * item)), vector.as_pointer()),
                                   align=item) for h in range(vectors)]
            step = builder.mul(l, as1)
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                                 f"llvm.fma.v{lanes}f{8 * item}")
            following = []
            for r in range(block_rows):
                value = builder.load(builder.inttoptr(builder.add(row_at[r], step), scalar.as_pointer()), align=item)
                following += [builder.call(fma, [spread(value), b_vectors[h], sums[vectors * r + h]]) for h in range(vectors)]
            l.add_incoming(builder.add(l, const(1)), builder.basic_block)
            for acc, value in zip(sums, following):
                acc.add_incoming(value, builder.basic_block)
            builder.branch(head)
            builder.position_at_end(done)
            whole = builder.icmp_unsigned("!=", context.cast(builder, args[12], signature.args[12], types.intp), const(0))
            with builder.if_else(whole) as (into_out, into_sums):
                with into_out:  # beta out + alpha sums, in the dtype (as C's ari_row_block)
                    alpha, beta = (context.cast(builder, args[i], signature.args[i], dtype) for i in (9, 10))
                    alphas, betas = spread(alpha), spread(beta)
                    no_beta = builder.fcmp_ordered("==", beta, ir.Constant(scalar, 0))
                    out_at = builder.ptrtoint(args[7], intp)
                    for r in range(block_rows):
                        with builder.if_then(builder.icmp_signed("<", const(r), rows)):
                            row = builder.add(out_at, builder.mul(const(r), ldo))
                            for h in range(vectors):
                                pointer = builder.inttoptr(builder.add(row, const(h * lanes * item)), vector.as_pointer())
                                scaled = builder.fmul(alphas, sums[vectors * r + h])
                                with builder.if_else(no_beta) as (alone, added):
                                    with alone:
                                        builder.store(scaled, pointer, align=item)
                                    with added:
                                        old = builder.load(pointer, align=item)
                                        builder.store(builder.fadd(builder.fmul(betas, old), scaled), pointer, align=item)
                with into_sums:
                    array = context.make_array(signature.args[11])(context, builder, args[11])
                    (ss0, _) = cgutils.unpack_tuple(builder, array.strides, 2)
                    for r in range(block_rows):
                        for h in range(vectors):
                            at = builder.add(builder.add(builder.ptrtoint(array.data, intp), builder.mul(const(r), ss0)),
                                             const(h * lanes * item))
                            builder.store(sums[vectors * r + h], builder.inttoptr(at, vector.as_pointer()), align=item)
            return context.get_dummy_value()
        return types.none(*signature_types), codegen
    return intrinsic(typer)


panel_block = _panel_block()
narrow_block = _panel_block(vectors=1, block_rows=NARROW_ROWS)  # few columns (runtime.h's ARI_NARROW_BLOCK)


def _element_pointer():
    """An intrinsic ``element_pointer(x, offset)``: a pointer to element ``offset`` of x, a pointer or
    a contiguous array's data."""
    from numba.core import types
    from numba.extending import intrinsic

    def typer(typingctx, x, offset):
        if not isinstance(offset, types.Integer):
            return None
        if isinstance(x, types.CPointer):
            result = x
        elif isinstance(x, types.Array) and x.layout == "C":
            result = types.CPointer(x.dtype)
        else:
            return None

        def codegen(context, builder, signature, args):
            base = args[0]
            if isinstance(signature.args[0], types.Array):
                base = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.gep(base, [context.cast(builder, args[1], signature.args[1], types.intp)])
        return result(x, offset), codegen
    return intrinsic(typer)


element_pointer = _element_pointer()


def _address_pointer():
    """An intrinsic ``address_pointer(address, like)``: the integer ``address`` as a pointer to the
    dtype of the array ``like``."""
    from numba.core import types
    from numba.extending import intrinsic

    def typer(typingctx, address, like):
        if not (isinstance(address, types.Integer) and isinstance(like, types.Array)):
            return None
        result = types.CPointer(like.dtype)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(result))
        return result(address, like), codegen
    return intrinsic(typer)


address_pointer = _address_pointer()


KC = 384  # a long sum runs in chunks of at most this many terms (runtime.h's ARI_KC) ...
CHUNK_BYTES = 2 << 20  # ... once a's rows take more than this many bytes (ARI_CHUNK_BYTES)
NC = 1024  # the columns of b packed at a time (ARI_NC)
COPY_ROWS = 64  # a b whose columns are not of unit stride is copied from this many rows of a (ARI_COPY_ROWS) ...
COPY_BYTES = 64 << 10  # ... when it takes at most this many bytes (ARI_COPY_BYTES)


@_nb.njit(inline="always")
def _block(a, as0, as1, b, bs0, out, ldo, rows, k, start, cols, sums, alpha, beta):
    """``rows`` rows of out (ldo apart from ``out`` on), columns start .. start + P (P two vectors) =
    beta out + alpha a (rows, k) . b (k, P), b pointing at the panel; when the panel is short only its
    last ``cols`` columns are written, through ``sums``."""
    panel = sums.shape[1]
    panel_block(a, as0, as1, b, bs0, rows, k, element_pointer(out, start), ldo, alpha, beta, sums, cols == panel)
    for r in range(rows if cols < panel else 0):
        for j in range(panel - cols, panel):
            at = r * ldo + start + j
            out[at] = alpha * sums[r, j] if beta == 0 else beta * out[at] + alpha * sums[r, j]


@_nb.njit
def _few_rows(a, as0, as1, b, bs0, out, ldo, n, k, m, alpha, beta):
    """out (n rows ldo apart, unit column stride) = beta out + alpha a (n, k) . b (k, m), out unread
    when beta is 0, strides in elements; b's columns have a unit stride and m is at least a panel.
    Panel after panel of columns (a short last one computed whole, overlapping the one before), the
    rows in blocks of equal size. A long sum over many rows runs in chunks, as runtime.h's
    ``ari_few_rows``: up to NC columns of b over a chunk packed panel after panel, and each block of
    a's rows packed over it, so that both stay in cache."""
    first = _nb.carray(out, 1)  # the dtype's facts
    dtype, item = first.dtype, first.itemsize
    panel = PANEL_BYTES // item
    sums = np.empty((BLOCK_ROWS, panel), dtype=dtype)
    scale = np.empty(3, dtype=dtype)  # alpha, beta and 1 in the dtype, as the blocks use them
    scale[0], scale[1], scale[2] = alpha, beta, 1
    blocks = (n + BLOCK_ROWS - 1) // BLOCK_ROWS
    per = (n + blocks - 1) // blocks
    if k <= KC or n * k * item <= CHUNK_BYTES:
        for j0 in range(0, m, panel):
            start = min(j0, m - panel)
            for i0 in range(0, n, per):
                _block(element_pointer(a, i0 * as0), as0, as1, element_pointer(b, start), bs0, element_pointer(out, i0 * ldo),
                       ldo, min(n - i0, per), k, start, min(m - j0, panel), sums, scale[0], scale[1])
        return
    chunks = (k + KC - 1) // KC
    kc = (k + chunks - 1) // chunks
    nc = min(m, NC)
    slab = np.empty(kc * panel * ((nc + panel - 1) // panel), dtype=dtype)
    rows_block = np.empty(kc * BLOCK_ROWS, dtype=dtype)
    for l0 in range(0, k, kc):
        terms = min(k - l0, kc)
        chunk_beta = scale[1] if l0 == 0 else scale[2]  # later chunks add to the first
        for c0 in range(0, m, nc):
            c1 = min(m, c0 + nc)
            panels = (c1 - c0 + panel - 1) // panel
            for q in range(panels):
                start = min(c0 + q * panel, c1 - panel)
                for l in range(terms):
                    for j in range(panel):
                        slab[(q * kc + l) * panel + j] = b[(l0 + l) * bs0 + start + j]
            for i0 in range(0, n, per):
                rows = min(n - i0, per)
                for l in range(terms):
                    for r in range(rows):
                        rows_block[l * rows + r] = a[(i0 + r) * as0 + (l0 + l) * as1]
                for q in range(panels):
                    start = min(c0 + q * panel, c1 - panel)
                    _block(element_pointer(rows_block, 0), 1, rows, element_pointer(slab, q * kc * panel), panel,
                           element_pointer(out, i0 * ldo), ldo, rows, terms, start, min(c1 - c0 - q * panel, panel), sums,
                           scale[0], chunk_beta)


@_nb.njit
def _copied(a, as0, as1, b, bs0, bs1, out, ldo, n, k, m, alpha, beta):
    """``_few_rows`` on a copy of a small b whose columns are not of unit stride (COPY_ROWS), as
    runtime.h's ``ari_copied``. Returns the copy's size: a use after the products keeps it alive
    through them (numba frees an array after its last use, and another thread may take the memory)."""
    copy = np.empty(k * m, dtype=_nb.carray(out, 1).dtype)
    for l in range(k):
        for j in range(m):
            copy[l * m + j] = b[l * bs0 + j * bs1]
    _few_rows(a, as0, as1, element_pointer(copy, 0), m, out, ldo, n, k, m, alpha, beta)
    return copy.size


@_nb.njit
def _narrow(a, as0, as1, b, bs0, bs1, out, ldo, n, k, m, alpha, beta):
    """out = beta out + alpha a (n, k) . b (k, m) for 3 <= m <= a vector's lanes, as runtime.h's
    ``ari_narrow``: b copied one vector wide, its columns last and zeros before them, then blocks of
    NARROW_ROWS rows by that vector. Returns the copy's size (a use that keeps it alive, as in
    ``_copied``)."""
    first = _nb.carray(out, 1)  # the dtype's facts
    dtype, item = first.dtype, first.itemsize
    lanes = VECTOR_BYTES // item
    packed = np.zeros(k * lanes, dtype=dtype)
    for l in range(k):
        for j in range(m):
            packed[l * lanes + lanes - m + j] = b[l * bs0 + j * bs1]
    sums = np.empty((NARROW_ROWS, lanes), dtype=dtype)
    scale = np.empty(2, dtype=dtype)  # alpha and beta in the dtype
    scale[0], scale[1] = alpha, beta
    blocks = (n + NARROW_ROWS - 1) // NARROW_ROWS
    per = (n + blocks - 1) // blocks
    for i0 in range(0, n, per):
        rows = min(n - i0, per)
        narrow_block(element_pointer(a, i0 * as0), as0, as1, element_pointer(packed, 0), lanes, rows, k,
                     element_pointer(out, i0 * ldo), ldo, scale[0], scale[1], sums, False)
        for r in range(rows):
            for j in range(m):
                at = (i0 + r) * ldo + j
                total = scale[0] * sums[r, lanes - m + j]
                out[at] = total if scale[1] == 0 else scale[1] * out[at] + total
    return packed.size


# A product's description, as runtime.py's ``_few_rows_job`` writes it: integers (JOB), then alpha and
# beta; kind 0 runs ``_few_rows``, 1 turned, 2 ``_narrow``
JOB = ("item", "kind", "a", "as0", "as1", "b", "bs0", "bs1", "out", "ldo", "n", "k", "m")


def _callback(dtype):
    """The kernel for ``dtype``, a C callback taking the addresses of a product's description (JOB and
    its two scales; runtime.py's name is bound to its address). It computes out (n rows ldo apart,
    unit column stride) = beta out + alpha a (n, k) . b (k, m), out unread when beta is 0, strides in
    elements: by ``_few_rows`` (b's columns of unit stride; ``_copied`` a small b), by ``_narrow``, or, ``turned`` (few columns, a's rows of
    unit stride), as out^T = b^T a^T into a scratch added to out (the scratch is read after the call:
    numba frees an array after its last use, and another thread may take the memory)."""
    from numba import types

    like = np.empty(0, dtype=np.dtype(str(dtype)))

    def product(job_address, scale_address):
        job, scale = _nb.carray(job_address, len(JOB)), _nb.carray(scale_address, 2)
        a, b, out = address_pointer(job[2], like), address_pointer(job[5], like), address_pointer(job[8], like)
        as0, as1, bs0, bs1, ldo, n, k, m = job[3], job[4], job[6], job[7], job[9], job[10], job[11], job[12]
        if job[1] == 2:
            _narrow(a, as0, as1, b, bs0, bs1, out, ldo, n, k, m, scale[0], scale[1])
            return
        if job[1]:
            turned = np.empty(m * n, dtype=like.dtype)
            _few_rows(b, bs1, bs0, a, as1, element_pointer(turned, 0), n, m, k, n, 1.0, 0.0)
            alpha, beta = like.dtype.type(scale[0]), like.dtype.type(scale[1])
            for i in range(n):
                for j in range(m):
                    out[i * ldo + j] = (0 if beta == 0 else beta * out[i * ldo + j]) + alpha * turned[j * n + i]
            return
        if bs1 != 1:
            _copied(a, as0, as1, b, bs0, bs1, out, ldo, n, k, m, scale[0], scale[1])
            return
        _few_rows(a, as0, as1, b, bs0, out, ldo, n, k, m, scale[0], scale[1])

    return _nb.cfunc(types.void(types.CPointer(types.int64), types.CPointer(types.float64)),
                     cache=True, error_model="numpy")(product)


few_rows_float32 = _callback(_nb.float32)
few_rows_float64 = _callback(_nb.float64)
