"""njit helpers the generated programs call: the per-op logic written once (not regenerated per graph).

Every helper takes arrays of any layout and writes into, or returns, fresh arrays. A helper that finds
bad input raises with a constant message (numba's rule); the program's Python side then asks the
reference backend for the full message (op, shapes, where the user built it).

Matrix helpers work on 2-d (rows, n) arrays: the generated code moves the op's axes last and folds the
others into rows, so one compiled helper serves every rank.
"""

import numba as _nb
import numpy as np

_jit = _nb.njit(cache=True, error_model="numpy", nogil=True)


def _ieee_extremum(name):
    """A numba intrinsic for LLVM's llvm.maximum / llvm.minimum of a float and a number or a bool
    (converted to the float's type): NaN if either is NaN, as NumPy's max and min. LLVM vectorizes a reduction
    through them; it vectorizes neither one chain of selects (``v if v > top else top``) nor a NaN
    test beside it, which ran 7 to 9 times slower than NumPy."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, a, b):
        if not (isinstance(a, types.Float) and isinstance(b, (types.Number, types.Boolean))):
            return None

        def codegen(context, builder, signature, args):
            t = args[0].type
            suffix = "f32" if t == ir.FloatType() else "f64"
            callee = cgutils.get_or_insert_function(builder.module, ir.FunctionType(t, [t, t]), f"llvm.{name}.{suffix}")
            return builder.call(callee, [args[0], context.cast(builder, args[1], signature.args[1], a)])
        return a(a, b), codegen
    return intrinsic(typer)


fmax = _ieee_extremum("maximum")
fmin = _ieee_extremum("minimum")


@_jit
def scalar(value, out):
    """A 0-d array holding ``value`` (0-d values travel between nodes as 0-d arrays)."""
    out[()] = value
    return out


def _row0():
    """An intrinsic: row i of the 1-d array x as a 0-d view, typed contiguous as the 0-d arrays of the
    programs are (x[i] is a number; loops pass rows as arrays, and a view costs no allocation:
    as_strided's view costs none either, but is typed non-contiguous, which reshape refuses)."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, x, i):
        if not (isinstance(x, types.Array) and x.ndim == 1 and isinstance(i, types.Integer)):
            return None
        row = types.Array(x.dtype, 0, "C")

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            at = context.cast(builder, args[1], signature.args[1], types.intp)
            pointer = cgutils.get_item_pointer(context, builder, signature.args[0], ary, [at], wraparound=False)
            out = context.make_array(row)(context, builder)
            empty = cgutils.pack_array(builder, [], ty=context.get_value_type(types.intp))
            context.populate_array(out, data=pointer, shape=empty, strides=empty, itemsize=ary.itemsize,
                                   meminfo=ary.meminfo, parent=ary.parent)
            value = out._getvalue()
            context.nrt.incref(builder, row, value)
            return value
        return row(x, i), codegen
    return intrinsic(typer)


row0 = _row0()


def _borrowed_vector(context, builder, vector, ary, data, size):
    """LLVM: a 1-d contiguous array of type ``vector``, ``size`` elements of ``ary``'s at ``data``, holding
    no reference (the views of ``row_at`` and ``flat``)."""
    from numba.core import cgutils, types

    out = context.make_array(vector)(context, builder)
    step = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(vector.dtype)))
    context.populate_array(out, data=data, shape=cgutils.pack_array(builder, [size]),
                           strides=cgutils.pack_array(builder, [step]), itemsize=ary.itemsize, meminfo=None, parent=None)
    return out._getvalue()


def _row_at():
    """An intrinsic: row ``index`` (a tuple of every index but the last) of the array x as a borrowed
    1-d view typed contiguous, for x whose last axis has a unit stride (the caller checks). Borrowed:
    it holds no reference (no meminfo), so making it costs no atomic reference count, which for the
    row views of an elementwise loop over a small matrix cost more than the loop itself; it must not
    outlive x nor leave the kernel that makes it."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, x, index):
        if not (isinstance(x, types.Array) and x.ndim >= 1 and isinstance(index, types.BaseTuple)
                and len(index) == x.ndim - 1 and all(isinstance(t, types.Integer) for t in index)):
            return None
        row = types.Array(x.dtype, 1, "C")

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            at = [context.cast(builder, i, t, types.intp)
                  for i, t in zip(cgutils.unpack_tuple(builder, args[1]), signature.args[1])]
            zero = context.get_constant(types.intp, 0)
            pointer = cgutils.get_item_pointer(context, builder, signature.args[0], ary, at + [zero],
                                               wraparound=False)
            return _borrowed_vector(context, builder, row, ary, pointer, cgutils.unpack_tuple(builder, ary.shape)[-1])
        return row(x, index), codegen
    return intrinsic(typer)


row_at = _row_at()


def _flat():
    """An intrinsic: every element of the C-contiguous array x (the caller checks ``x.flags.c_contiguous``)
    as a borrowed 1-d view typed contiguous, under the rules of ``row_at``'s views. A whole-array max of a
    784 x 500 float32 matrix through a two-level nest took 86 us (the inner loop's stride read from the
    array, and no vector code for llvm.maximum), through this view 25 us."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, x):
        if not (isinstance(x, types.Array) and x.ndim >= 1):
            return None
        flat = types.Array(x.dtype, 1, "C")

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            size = context.get_constant(types.intp, 1)
            for extent in cgutils.unpack_tuple(builder, ary.shape):
                size = builder.mul(size, extent)
            return _borrowed_vector(context, builder, flat, ary, ary.data, size)
        return flat(x), codegen
    return intrinsic(typer)


flat = _flat()


def _copy_run(count):
    """An intrinsic ``copy(dst, d, src, s)``: dst[d:d + count] = src[s:s + count] for 1-d contiguous arrays
    of one dtype, as an LLVM memcpy of a constant size (a few vector moves), the caller having checked
    the bounds. A loop of count iterations compiled to scalar moves: numba's index arithmetic kept LLVM
    from seeing one run (im2col's rows of 8 in LeNet's second layer)."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, dst, d, src, s):
        vectors = all(isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" for a in (dst, src))
        if not (vectors and dst.dtype == src.dtype and isinstance(d, types.Integer) and isinstance(s, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            at = []
            for array, index, array_type, index_type in zip((args[0], args[2]), (args[1], args[3]),
                                                            (signature.args[0], signature.args[2]),
                                                            (signature.args[1], signature.args[3])):
                ary = context.make_array(array_type)(context, builder, array)
                at.append(cgutils.get_item_pointer(context, builder, array_type, ary,
                                                   [context.cast(builder, index, index_type, types.intp)],
                                                   wraparound=False))
            itemsize = context.get_abi_sizeof(context.get_data_type(signature.args[0].dtype))
            cgutils.raw_memcpy(builder, at[0], at[1], context.get_constant(types.intp, count), itemsize)
            return context.get_dummy_value()
        return types.none(dst, d, src, s), codegen
    return intrinsic(typer)


copy8 = _copy_run(8)


@_jit
def start_rows(initial, size):
    """A loop's buffer of ``size`` rows like those of ``initial``, which it starts with."""
    rows = np.empty((size,) + initial.shape[1:], dtype=initial.dtype)
    flat = rows.reshape(-1)
    for k, value in enumerate(initial.flat):
        flat[k] = value
    return rows


@_jit
def put_row(rows, at, y, target):
    """Row ``at`` of a loop's buffer becomes the step's result ``y``: nothing to do when the step
    wrote it there (``target``, that row); an error when its shape differs from the rows'."""
    if y.shape != rows.shape[1:]:
        raise ValueError("a step gives a row of another shape than before")
    if y.ctypes.data != target.ctypes.data or y.shape != target.shape:
        rows[at].reshape(-1)[:] = np.ascontiguousarray(y).reshape(-1)


@_jit
def grow(rows, size):
    """A copy of the C-contiguous ``rows`` with ``size`` rows (the first ones copied): a while-loop's
    buffer, doubled when full."""
    new = np.empty((size,) + rows.shape[1:], dtype=rows.dtype)
    old, flat = rows.reshape(-1), new.reshape(-1)
    for k in range(old.shape[0]):
        flat[k] = old[k]
    return new


@_jit
def last_rows(ring, total, count):
    """The last ``count`` of the ``total`` rows written into ``ring`` (row a at a % len(ring)), in
    order: a loop's output of which only the last rows are kept (Scan.keep)."""
    size = ring.shape[0]
    out = np.empty((count,) + ring.shape[1:], dtype=ring.dtype)
    width = ring.size // size
    src, dst = ring.reshape((size, width)), out.reshape((count, width))
    for i in range(count):
        a = (total - count + i) % size
        for k in range(width):
            dst[i, k] = src[a, k]
    return out


# Sizes. Every size a program computes from values (a shape read from an input, repeat counts, a
# loop's rows) is checked, never wrapped around (a wrapped size allocates a small array that the loops
# then overrun), by NumPy's rule for a new shape, as the C backend's ari_shape_fault: no negative size,
# and the nonzero sizes times the item size fit in an int64 (numba's np.empty multiplies the zeros in,
# so it takes (0, 2**32, 2**32), which NumPy refuses).
_INT64_MAX = np.iinfo(np.int64).max


@_jit
def check_reshape(sizes):
    """NumPy's rule numba's reshape misses: a size of -1 is unknowable when another size is 0."""
    unknown, known = False, np.int64(1)
    for size in sizes:
        if size == -1:
            unknown = True
        else:
            known *= size
    if unknown and known == 0:
        raise ValueError("cannot reshape into a shape with -1 and a size of 0")


@_jit
def check_shape(shape, itemsize):
    """The number of elements of a new array of ``shape`` (a tuple of int64), its shape checked."""
    for size in shape:
        if size < 0:
            raise ValueError("negative dimensions are not allowed")
    count, empty = np.int64(1), False
    for size in shape:
        if size == 0:
            empty = True
        elif count > _INT64_MAX // itemsize // size:
            raise ValueError("array is too big: more bytes than an int64 counts")
        else:
            count *= size
    return np.int64(0) if empty else count


@_jit
def add_size(total, size):
    """total + size (both >= 0) for a size being counted, checked."""
    if size > _INT64_MAX - total:
        raise ValueError("array is too big: a size passes what an int64 counts")
    return total + size


@_jit
def add_bound(total, size):
    """total + size (both >= 0), saturated at 2**63 - 1: a while-loop's step count is only a bound."""
    return _INT64_MAX if size > _INT64_MAX - total else total + size


@_jit
def index(i, size):
    """An integer index checked against an axis of ``size`` (negative counts from the end), as int64:
    numba adds a uint64 and an int64 in float64, which no array takes as an index."""
    if i < -size or i >= size:
        raise IndexError("index out of range")
    j = np.int64(i)
    return j + size if j < 0 else j


@_jit
def check_labels(rows, classes, y):
    if y.shape[0] != rows:
        raise ValueError("expected one integer label per row")
    for i in range(rows):
        if y[i] < 0 or y[i] >= classes:
            raise IndexError("label out of range")


@_jit
def row_max(x, i, top):
    """The max of row i of the matrix x, starting from ``top`` (-inf in the dtype wanted), NaN if the
    row holds one."""
    for j in range(x.shape[1]):
        top = fmax(top, x[i, j])
    return top


@_jit
def arg_extremum_rows(x, minimum, out):
    """out[i] = the index of the first max (min) of row i of the float matrix x, of its first NaN if
    it holds one: the extremum in a loop that vectorizes (fmax/fmin), then a search for it. One chain
    of compare-and-select ran five times slower than NumPy."""
    rows, n = x.shape
    for i in range(rows):
        top = x[i, 0]
        if minimum:
            for j in range(n):
                top = fmin(top, x[i, j])
        else:
            for j in range(n):
                top = fmax(top, x[i, j])
        k = 0
        if top != top:
            while x[i, k] == x[i, k]:
                k += 1
        else:
            while x[i, k] != top:
                k += 1
        out[i] = k
    return out


@_jit
def pick_per_row(x, y, out):
    rows, n = x.shape
    check_labels(rows, n, y)
    for i in range(rows):
        out[i] = x[i, y[i]]
    return out


@_jit
def inc_per_row(x, v, y, out):
    """out = x with v[i] (v[0] when v has one entry to broadcast) added at [i, y[i]]."""
    rows, n = x.shape
    check_labels(rows, n, y)
    one = v.shape[0] == 1
    for i in range(rows):
        for j in range(n):  # not out[:, :] = x: numba's broadcasting assignment takes seconds to compile
            out[i, j] = x[i, j]
        out[i, y[i]] += v[0] if one else v[i]
    return out


@_jit
def argsort_rows(x, out):
    for i in range(x.shape[0]):
        out[i, :] = np.argsort(x[i], kind="mergesort")  # stable: ties keep their order
    return out


# SplitMix64 (core/random.py): the C-order element i is mix64(key + (counter + i) * GOLDEN)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@_jit
def random_uniform(state, out, bits):
    """Fill the flat ``out`` with ``bits``-bit uniforms (24: float32, 53: float64; exact in either)
    and return the new state [key, counter + size]."""
    if state.shape[0] != 2:
        raise ValueError("expected a state [key, counter]")
    key, counter = state[0], state[1]
    shift, scale = np.uint64(64 - bits), 2.0 ** -bits
    for i in range(out.shape[0]):
        z = key + (counter + np.uint64(i)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        out[i] = np.float64(z >> shift) * scale
    new_state = np.empty(2, np.uint64)
    new_state[0] = key
    new_state[1] = counter + np.uint64(out.shape[0])
    return new_state


# BLAS: the library NumPy itself calls (arignote.backends.blas), so that numba's products share
# NumPy's thread pool (two OpenBLAS pools on few cores fight; numba's own np.dot binds SciPy's). Its
# functions are named LLVM symbols that the backend binds to their addresses in each process before a
# program is compiled or loaded from the cache, so cached machine code holds names, not addresses.
# Fortran interface: every argument by address. _INT is the width of the library's integers: the
# backend's copy of this module ends by setting it to the width of the BLAS it found (ILP64 libraries
# take 64-bit integers), which makes a copy, and its cache, per width.
_INT = np.int64
_ADDRESSES = _nb.types.void(*[_nb.types.intp] * 13)
_sgemm = _nb.types.ExternalFunction("arignote_sgemm", _ADDRESSES)
_dgemm = _nb.types.ExternalFunction("arignote_dgemm", _ADDRESSES)
# Products of 3 to ``rows`` rows (each product helper's last argument: the plan's own_rows, or
# FEW_ROWS) go to panels.py's kernels instead (``_few_rows_job``), named as BLAS is. The backend's
# copy sets both sizes for this machine's vectors (0: BLAS only).
FEW_ROWS, _COPY_ROWS, _COPY_BYTES = 0, 64, 1 << 16  # b of other strides: copied from _COPY_ROWS rows, if small
_PANEL_BYTES = 64
_KERNEL = _nb.types.void(_nb.types.intp, _nb.types.intp)  # the addresses of a description, of its scales
_few_rows_float32 = _nb.types.ExternalFunction("arignote_few_rows_float32", _KERNEL)
_few_rows_float64 = _nb.types.ExternalFunction("arignote_few_rows_float64", _KERNEL)


@_jit
def _blas_layout(x):
    """How BLAS can read the row-major matrix x in place: 1 (rows have a unit stride), 2 (columns
    do), 0 (neither: copy it), with the leading dimension times 4 added (layout + 4 * ld)."""
    rows, cols = x.shape
    s0, s1 = x.strides[0] // x.itemsize, x.strides[1] // x.itemsize
    if (s1 == 1 or cols == 1) and (rows == 1 or s0 >= cols):
        return 1 + 4 * (cols if rows == 1 or s0 < 1 else s0)
    if (s0 == 1 or rows == 1) and (cols == 1 or s1 >= rows):
        return 2 + 4 * (rows if cols == 1 or s1 < 1 else s1)
    return 0


@_jit
def _contiguous(x):
    out = np.empty(x.shape, dtype=x.dtype)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i, j] = x[i, j]
    return out


@_jit
def gemm(a, b, rows):
    """a (n, k) · b (k, m), float32 or float64, any strides, by BLAS (or panels.py's kernels, up to
    ``rows`` rows). Programs pass both as views typed "any layout" (x[::1, ::1]), so this compiles
    once per dtype."""
    n, k = a.shape
    m = b.shape[1]
    if b.shape[0] != k:
        raise ValueError("shapes are not aligned for dot")
    if n * m * k == 0:
        return np.zeros((n, m), dtype=a.dtype)
    out = np.empty((n, m), dtype=a.dtype)
    _blas_gemm(a, b, out, 1, 0, rows)
    return out


@_jit
def gemm_into(a, b, row, rows):
    """a · b as ``gemm``, written into ``row`` when its shape is the product's (a loop step's
    C-contiguous output row: no allocation and no copy per step, loops.py), else into a new array."""
    if row.shape != (a.shape[0], b.shape[1]) or b.shape[0] != a.shape[1] or row.size * a.shape[1] == 0:
        return gemm(a, b, rows)
    _blas_gemm(a, b, row, 1, 0, rows)
    return row


@_jit
def gemm_scaled(a, b, c, alpha, beta, rows):
    """c = beta c + alpha a · b in place (c C-contiguous (n, m), the checks made by the caller). BLAS
    reads no c when beta is 0 and no product when alpha is 0; NumPy's beta * c + alpha * (a · b) keeps
    their NaN there, so those cases scale or add by loops."""
    n, m = c.shape
    if alpha != 0 and beta != 0 and n * m * a.shape[1] != 0:
        _blas_gemm(a, b, c, alpha, beta, rows)
        return c
    if alpha != 0 and n * m * a.shape[1] != 0:
        for i in range(n):
            for j in range(m):
                c[i, j] *= beta
        _blas_gemm(a, b, c, alpha, 1, rows)
        return c
    product = gemm(a, b, rows)
    for i in range(n):
        for j in range(m):
            c[i, j] = beta * c[i, j] + alpha * product[i, j]
    return c


@_jit
def gemm_columns(a, b, out, lo, hi, scaled, alpha, beta, rows):
    """A share of products.SplitColumns: out[:, lo:hi] = a · b[:, lo:hi], or when ``scaled`` beta
    out[:, lo:hi] + alpha a · b[:, lo:hi] (``gemm_scaled``), out C-contiguous (k > 0 unless scaled). The operands go
    on as views typed "any layout", so that one compiled version serves every caller's layouts."""
    if hi <= lo:
        return
    block = out[::1, lo:hi]
    if scaled:
        gemm_scaled(a[::1, ::1], b[::1, lo:hi], block, alpha, beta, rows)
    else:
        _blas_gemm(a[::1, ::1], b[::1, lo:hi], block, 1, 0, rows)


@_jit
def columns_job(a, b, out, lo, hi, scaled, alpha, beta, rows, job, scale):
    """Whether ``gemm_columns`` with these arguments is one call of panels.py's kernels, described in
    job and scale (``_few_rows_job``) for a worker to make without Python (shares.py's ``serve``)."""
    if hi <= lo or a.shape[1] == 0 or (scaled and (alpha == 0 or beta == 0)):
        return False
    return _few_rows_job(a[::1, ::1], b[::1, lo:hi], out[::1, lo:hi], alpha if scaled else 1.0,
                         beta if scaled else 0.0, rows, job, scale)


@_jit
def _few_rows_job(a, b, out, alpha, beta, rows, job, scale):
    """Whether out = beta out + alpha a b goes to panels.py's kernels, as runtime.h's ari_matmul (kind 0:
    the blocks, b copied if need be; 1: turned; 2: narrow). If so, ``job`` gets its description
    (panels.JOB) and ``scale`` alpha and beta."""
    (n, k), m, item = a.shape, b.shape[1], a.itemsize
    direct = 3 <= n <= rows and m * item >= _PANEL_BYTES and (b.strides[1] == item or (n >= _COPY_ROWS and k * m * item <= _COPY_BYTES))
    turned = not direct and 3 <= m <= rows and n * item >= _PANEL_BYTES and a.strides[0] == item
    if not (direct or turned or (3 <= m and 2 * m * item <= _PANEL_BYTES and _COPY_ROWS <= n <= rows and k * _PANEL_BYTES <= 2 * _COPY_BYTES)):
        return False
    job[0], job[1], job[2], job[3], job[4] = item, 0 if direct else 1 if turned else 2, a.ctypes.data, a.strides[0] // item, a.strides[1] // item
    job[5], job[6], job[7], job[8] = b.ctypes.data, b.strides[0] // item, b.strides[1] // item, out.ctypes.data
    job[9], job[10], job[11], job[12] = out.strides[0] // item, n, k, m
    scale[0], scale[1] = alpha, beta
    return True


@_jit
def _run_few_rows(job, scale):
    """The call of panels.py's kernel that ``_few_rows_job`` described."""
    if job[0] == 4:
        _few_rows_float32(job.ctypes.data, scale.ctypes.data)
    else:
        _few_rows_float64(job.ctypes.data, scale.ctypes.data)


@_jit
def _blas_gemm(a, b, out, alpha, beta, rows):
    """out (n, m, unit column stride: C-contiguous, or a block of a C-contiguous matrix's columns) =
    beta out + alpha a b by BLAS: row-major C = A B is column-major C^T = B^T A^T, so B goes first. An
    operand with neither unit-stride rows nor columns is copied. Few rows go to panels.py's kernels."""
    n, k = a.shape
    m = b.shape[1]
    job, scale = np.empty(13, dtype=np.int64), np.empty(2)
    if _few_rows_job(a, b, out, alpha, beta, rows, job, scale):
        _run_few_rows(job, scale)
        return
    la, lb = _blas_layout(a), _blas_layout(b)
    pa = a if la else _contiguous(a)
    pb = b if lb else _contiguous(b)
    la, lb = la or 1 + 4 * k, lb or 1 + 4 * m
    ints = np.empty(6, dtype=_INT)
    ints[0] = m
    ints[1] = n
    ints[2] = k
    ints[3] = lb // 4
    ints[4] = la // 4
    ints[5] = out.strides[0] // out.itemsize if n > 1 and out.strides[0] >= m * out.itemsize else m
    flags = np.empty(2, dtype=np.uint8)
    flags[0] = 84 if lb % 4 == 2 else 78  # 'T' or 'N'
    flags[1] = 84 if la % 4 == 2 else 78
    scale = np.empty(2, dtype=a.dtype)
    scale[0] = alpha
    scale[1] = beta
    i, w, f, s = ints.ctypes.data, ints.itemsize, flags.ctypes.data, scale.ctypes.data
    if a.itemsize == 4:
        _sgemm(f, f + 1, i, i + w, i + 2 * w, s, pb.ctypes.data, i + 3 * w, pa.ctypes.data, i + 4 * w,
               s + 4, out.ctypes.data, i + 5 * w)
    else:
        _dgemm(f, f + 1, i, i + w, i + 2 * w, s, pb.ctypes.data, i + 3 * w, pa.ctypes.data, i + 4 * w,
               s + 8, out.ctypes.data, i + 5 * w)
    # the temporaries are read after the call, so that none is released while BLAS uses it
    if ints[0] != m or flags[0] == 0 or (scale[1] != beta and beta == beta) or pa.shape[0] != n or pb.shape[0] != k:
        raise RuntimeError("BLAS changed its arguments")


@_jit
def dot_loops(a, b, like):
    """a · b for 2-d integer or boolean arrays (BLAS has none), in the dtype of ``like``."""
    if a.shape[1] != b.shape[0]:
        raise ValueError("shapes do not align for dot")
    out = np.zeros((a.shape[0], b.shape[1]), dtype=like.dtype)
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            x = a[i, k]
            for j in range(b.shape[1]):
                out[i, j] += x * b[k, j]
    return out


@_jit
def arange(start, stop, step, like):
    """NumPy's arange in the dtype of ``like``: ceil((stop - start) / step) values start + i * delta,
    delta being the dtype's (start + step) - start, as NumPy fills them."""
    if step == 0:
        raise ValueError("arange: step cannot be zero")
    length = np.ceil((np.float64(stop) - np.float64(start)) / np.float64(step))
    if not length < 2.0 ** 63:  # NaN too; converted, it would be any int64 at all
        raise ValueError("arange: array is too big, or its length cannot be computed")
    count = np.int64(length) if length > 0 else np.int64(0)
    out = np.empty(check_shape((count,), like.itemsize), dtype=like.dtype)
    if count > 0:
        out[0] = start
    if count > 1:
        out[1] = start + step
        first = out[0]
        delta = out[1] - first
        for i in range(2, count):
            out[i] = first + i * delta
    return out
