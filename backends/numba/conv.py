"""Convolutions (Corr2d and its two gradients) as im2col + BLAS GEMM (pooling: pool.py).

Convolutions: the work is done by the helpers at the top of this file, compiled once per dtype (and
layout) for every graph and every geometry: ``helpers(gen)`` writes their source, unchanged, under
njit into one module of the cache, and a convolution node's kernel *is* its helper (imported under
the kernel's name: no wrapper to compile per op). The node passes the op's geometry (padding rule,
paddings, strides, dilations, groups) as int64 values; the helper applies ``_Corr2dBase.paddings``,
raises the ValueErrors of ``_Corr2dBase.check`` and of a bad size vector (the program then explains
them with the reference's message), and works on C-contiguous arrays (a copy only of a view that is
not one). Per block of images and per group, one GEMM (``gemm_into``: BLAS with strides and beta):

- forward: the block's patches unrolled into the column matrix (taps x positions of every image of
  the block), the group's filters times it, the result copied into the output's rows;
- grad inputs: the block's output gradient gathered into (filters x positions); the filters'
  transpose times it gives the columns, added back onto the image (col2im);
- grad weights: the columns times the gathered gradient's transpose, accumulated over the blocks by
  BLAS (beta = 1), transposed into the filters' layout at the end.

The column buffer is allocated once per call and reused by every block and group (blocks of about
``COLUMNS`` elements, so that it stays in cache; freed memory is kept by malloc for the next call:
``backends.malloc``). Images of ONE_IMAGE output positions or more go one per GEMM,
which writes (reads) their output (gradient) planes in place, with no scatter (gather). A 1x1 kernel
at stride 1 without padding reads the image in place: one GEMM per image, no columns.

Each node is three pieces: one that checks and allocates (``corr2d_out``...), one that runs the blocks
of images [lo, hi) (``corr2d_images``...), and for the filters' gradient one that transposes the
accumulator into the filters' layout. The node's helper calls them in turn on one thread; a node of
``plan.image_threads`` is called by the glue instead (``SplitImages``), which runs the pieces itself
with the images shared out between threads (the pieces are compiled with Python wrappers and release
the GIL), while the program's call keeps the BLAS on one core (``plan.blas_one_core``).
"""

import inspect

import numpy as np

from . import products
from .generator import HEADER, Kernel, py_comment, tup
from .shares import run_shares

COLUMNS = 1 << 18  # elements of one block's column matrix (1 MiB of float32: measured best of 2**16..2**21)
# images of at least ONE_IMAGE output positions go one per GEMM, their planes written and read in place
# (as in the C backend: LeNet's first layer, P = 576)
ONE_IMAGE = 256

# ---------------------------------------------------------------------------------------------------
# The helpers' source (numba): compiled in the module ``helpers`` writes, where ``_rt`` is the
# backend's runtime copy (its BLAS entry points and integer width) and ``np`` is NumPy.

_rt = None  # (here, in the package, the helpers are only source)


def geometry(x_shape, w_shape, mode, geo):
    """The padding of a convolution of an input of ``x_shape`` with filters of ``w_shape`` ((top,
    bottom, left, right): geo's own when ``mode`` is 0, else 'full' (1) or 'half' (2) for this kernel),
    and the output's (rows, columns); ValueError when ``_Corr2dBase.check`` finds a problem."""
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    pt, pb, pl, pr, sh, sw, dh, dw, groups = geo
    if mode:
        pt, pl = dh * (kh - 1), dw * (kw - 1)
        if mode == 2:
            pt, pl = (pt + 1) // 2, (pl + 1) // 2
        pb, pr = pt, pl
    if c != cg * groups:
        raise ValueError("conv2d: the input's channels are not the filters' channels times the groups")
    if o % groups:
        raise ValueError("conv2d: the filters do not divide into the groups")
    if kh < 1 or kw < 1:
        raise ValueError("conv2d: the filters have no taps")
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if h + pt + pb < eh or w + pl + pr < ew:
        raise ValueError("conv2d: the filter spans more than the padded input")
    return (pt, pb, pl, pr, sh, sw, dh, dw, groups), (h + pt + pb - eh) // sh + 1, (w + pl + pr - ew) // sw + 1


def size_of(size):
    """The two sizes of an image or kernel size vector (ValueError unless 2 non-negative ints)."""
    if size.shape[0] != 2 or size[0] < 0 or size[1] < 0:
        raise ValueError("conv2d: expected a size of 2 non-negative ints")
    return size[0], size[1]


def gemm_into(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, scale, own_rows):
    """Row-major C (m x n, leading dimension ldc) = op(A) op(B) + beta C at the addresses a, b, c:
    op(A) is A (m x k, lda) or, with ta, the transpose of A (k x m); likewise op(B). ``scale`` holds
    (alpha, beta) in the dtype. Up to ``own_rows`` rows (the plan's) with B untransposed, by
    panels.py's kernels; else column-major BLAS computes C^T = op(B)^T op(A)^T: B goes first."""
    if m == 0 or n == 0 or k == 0:
        return
    if not tb and 3 <= m <= own_rows and n * scale.itemsize >= _rt._PANEL_BYTES:
        as0, as1 = (1, lda) if ta else (lda, 1)
        job, factors = np.empty(13, dtype=np.int64), np.empty(2)  # panels.JOB, and alpha and beta
        job[0], job[1], job[2], job[3], job[4], job[5], job[6] = scale.itemsize, 0, a, as0, as1, b, ldb
        job[7], job[8], job[9], job[10], job[11], job[12] = 1, c, ldc, m, k, n
        factors[0], factors[1] = scale[0], scale[1]
        _rt._run_few_rows(job, factors)
        return
    ints = np.empty(6, dtype=_rt._INT)
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = n, m, k, ldb, lda, ldc
    flags = np.empty(2, dtype=np.uint8)
    flags[0] = 84 if tb else 78  # 'T' or 'N'
    flags[1] = 84 if ta else 78
    i, s, f, size = ints.ctypes.data, scale.ctypes.data, flags.ctypes.data, ints.itemsize
    if scale.itemsize == 4:
        _rt._sgemm(f, f + 1, i, i + size, i + 2 * size, s, b, i + 3 * size, a, i + 4 * size, s + 4, c, i + 5 * size)
    else:
        _rt._dgemm(f, f + 1, i, i + size, i + 2 * size, s, b, i + 3 * size, a, i + 4 * size, s + 8, c, i + 5 * size)
    if ints[0] != n or flags[0] == 0:  # read after the call: the temporaries live until it returns
        raise RuntimeError("BLAS changed its arguments")


def _scale(x, beta):
    """(alpha, beta) = (1, beta) in x's dtype, and the flags 0 and 1 as int64: values, not the literals
    that numba would compile a specialization of each callee for."""
    scale = np.empty(2, dtype=x.dtype)
    scale[0], scale[1] = 1, beta
    return scale, np.int64(0), np.int64(1)


def _spans(size, steps, stride, offset):
    """The first and end output positions j whose input position j * stride + offset is in [0, size)."""
    first = min(max(0, (stride - 1 - offset) // stride), steps)
    return first, min(max(first, (size - offset + stride - 1) // stride), steps)


def im2col(x, n0, nb, c0, cg, kh, kw, pt, pl, sh, sw, dh, dw, rows, cols, col):
    """col[(c * kh + a) * kw + b, n * P + i * cols + j] = the padded x[n0 + n, c0 + c] at (i * sh + a * dh,
    j * sw + b * dw), P = rows * cols: the patches of nb images, one column per output position.
    Flat arrays and unsigned indices: no wraparound test per element (4 times faster than x[n, c, r, q])."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    p = rows * cols
    xf, cf = x.reshape(-1), col.reshape(-1)
    step = np.uint64(sw)
    for c in range(cg):
        for a in range(kh):
            i0, i1 = _spans(h, rows, sh, a * dh - pt)
            for b in range(kw):
                off = b * dw - pl
                j0, j1 = _spans(w, cols, sw, off)
                if sw == 1 and i0 == 0 and i1 == rows and j0 == 0 and j1 == cols:
                    # the tap reads inside the image: rows copied whole, no padding to test or write
                    d = np.uint64(((c * kh + a) * kw + b) * col.shape[1])
                    for n in range(nb):
                        src = np.uint64(((n0 + n) * channels + c0 + c) * h * w + (a * dh - pt) * w + off)
                        for i in range(rows):
                            if cols == 8:  # LeNet's second layer: one run of a constant size
                                _rt.copy8(cf, d, xf, src)
                            else:
                                for j in range(np.uint64(cols)):
                                    cf[d + j] = xf[src + j]
                            d += np.uint64(cols)
                            src += np.uint64(sh * w)
                    continue
                for n in range(nb):
                    plane = ((n0 + n) * channels + c0 + c) * h * w
                    for i in range(rows):
                        d = np.uint64(((c * kh + a) * kw + b) * col.shape[1] + n * p + i * cols)
                        first, end = (j0, j1) if i0 <= i < i1 else (cols, cols)
                        for j in range(np.uint64(first)):
                            cf[d + j] = 0
                        src, d = np.uint64(plane + (i * sh + a * dh - pt) * w + first * sw + off), d + np.uint64(first)
                        if sw == 1:
                            for j in range(np.uint64(end - first)):
                                cf[d + j] = xf[src + j]
                        else:
                            for j in range(np.uint64(end - first)):
                                cf[d + j] = xf[src + j * step]
                        for j in range(np.uint64(end - first), np.uint64(cols - first)):
                            cf[d + j] = 0


def col2im(col, n0, nb, c0, cg, kh, kw, pt, pl, sh, sw, dh, dw, rows, cols, x):
    """The transpose of im2col: each column's values added back onto the image positions it read."""
    channels, h, w = x.shape[1], x.shape[2], x.shape[3]
    p = rows * cols
    xf, cf = x.reshape(-1), col.reshape(-1)
    step = np.uint64(sw)
    for c in range(cg):
        for a in range(kh):
            i0, i1 = _spans(h, rows, sh, a * dh - pt)
            for b in range(kw):
                off = b * dw - pl
                j0, j1 = _spans(w, cols, sw, off)
                for n in range(nb):
                    plane = ((n0 + n) * channels + c0 + c) * h * w
                    for i in range(i0, i1):
                        d = np.uint64(((c * kh + a) * kw + b) * col.shape[1] + n * p + i * cols + j0)
                        src = np.uint64(plane + (i * sh + a * dh - pt) * w + j0 * sw + off)
                        if sw == 1:
                            for j in range(np.uint64(j1 - j0)):
                                xf[src + j] += cf[d + j]
                        else:
                            for j in range(np.uint64(j1 - j0)):
                                xf[src + j * step] += cf[d + j]


def gather(g, n0, nb, o0, og, out):
    """out[o, n * P + k] = g[n0 + n, o0 + o, k] (g is (N, O, P))."""
    p, outs = g.shape[2], g.shape[1]
    gf, of = g.reshape(-1), out.reshape(-1)
    for o in range(og):
        for n in range(nb):
            src, d = np.uint64(((n0 + n) * outs + o0 + o) * p), np.uint64(o * out.shape[1] + n * p)
            for k in range(np.uint64(p)):
                of[d + k] = gf[src + k]


def scatter(y, n0, nb, o0, og, g):
    """The inverse of gather: g[n0 + n, o0 + o, k] = y[o, n * P + k]."""
    p, outs = g.shape[2], g.shape[1]
    gf, yf = g.reshape(-1), y.reshape(-1)
    for o in range(og):
        for n in range(nb):
            d, src = np.uint64(((n0 + n) * outs + o0 + o) * p), np.uint64(o * y.shape[1] + n * p)
            for k in range(np.uint64(p)):
                gf[d + k] = yf[src + k]


def _direct(kh, kw, geo):
    """A 1x1 kernel at stride 1 without padding: the image is its own column matrix."""
    return kh == 1 and kw == 1 and geo[0] == 0 and geo[1] == 0 and geo[2] == 0 and geo[3] == 0 and \
        geo[4] == 1 and geo[5] == 1


def _block(n, k, p):
    """Images per block: a column matrix of about COLUMNS elements (at least one image); one image when
    it has ONE_IMAGE output positions or more, whose output (gradient) planes the GEMM then writes
    (reads) in place, with no scatter (gather)."""
    if p >= ONE_IMAGE:
        return 1
    return max(1, min(n, COLUMNS // max(1, k * p)))


def _wrong_gradient(g, n, o, rows, cols):
    if g.shape[0] != n or g.shape[1] != o or g.shape[2] != rows or g.shape[3] != cols:
        raise ValueError("conv2d: the output gradient does not have the convolution's output shape")


def corr2d_out(x, w, mode, geo):
    """The (uninitialized) output of Corr2d of x (N, C, H, W) and w (O, C / groups, kh, kw); ``mode``:
    the padding's rule (``geometry``), ``geo``: (top, bottom, left, right, strides, dilations, groups)."""
    geo, rows, cols = geometry(x.shape, w.shape, mode, geo)
    return np.empty((x.shape[0], w.shape[0], rows, cols), dtype=x.dtype)


def corr2d_images(xc, wc, mode, geo, out, lo, hi, own_rows):
    """Images [lo, hi) of Corr2d of the C-contiguous xc and wc, written into ``out`` (corr2d_out's)."""
    geo, rows, cols = geometry(xc.shape, wc.shape, mode, geo)
    pt, pb, pl, pr, sh, sw, dh, dw, groups = geo
    o, cg, kh, kw = wc.shape
    og, k, p = o // groups, cg * kh * kw, rows * cols
    if hi <= lo or og == 0:
        return
    if k == 0:
        out[lo:hi] = 0
        return
    filters = wc.reshape((o, k))
    scale, no, yes = _scale(xc, 0)
    if _direct(kh, kw, geo):
        for i in range(lo, hi):
            for gi in range(groups):
                gemm_into(no, no, og, p, k, filters[gi * og].ctypes.data, k, xc[i, gi * cg].ctypes.data, p,
                          out[i, gi * og].ctypes.data, p, scale, own_rows)
        return
    nb = _block(hi - lo, k, p)
    col, y = np.empty(k * nb * p, dtype=xc.dtype), np.empty(og * nb * p, dtype=xc.dtype)
    flat = out.reshape((out.shape[0], o, p))
    for n0 in range(lo, hi, nb):
        b = min(nb, hi - n0)
        columns, ys = col[:k * b * p].reshape((k, b * p)), y[:og * b * p].reshape((og, b * p))
        for gi in range(groups):
            im2col(xc, n0, b, gi * cg, cg, kh, kw, pt, pl, sh, sw, dh, dw, rows, cols, columns)
            if b == 1 and p >= ONE_IMAGE:  # the image's output planes, written in place
                gemm_into(no, no, og, p, k, filters[gi * og].ctypes.data, k, columns.ctypes.data, p,
                          out[n0, gi * og].ctypes.data, p, scale, own_rows)
                continue
            gemm_into(no, no, og, b * p, k, filters[gi * og].ctypes.data, k, columns.ctypes.data, b * p,
                      ys.ctypes.data, b * p, scale, own_rows)
            scatter(ys, n0, b, gi * og, og, flat)


def corr2d_node(x, w, mode, geo, own_rows):
    """Corr2d of x and w, any layouts, on this thread."""
    xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
    out = corr2d_out(xc, wc, mode, geo)
    corr2d_images(xc, wc, mode, geo, out, 0, xc.shape[0], own_rows)
    return out


def corr2d_grad_inputs_out(w, g, size, mode, geo):
    """The input's gradient of Corr2dGradInputs of w (O, C / groups, kh, kw) and g (N, O, rows, cols)
    for an image of ``size`` (H, W), zeros (the images add their columns into it)."""
    h, wd = size_of(size)
    o, cg, kh, kw = w.shape
    n = g.shape[0]
    geo, rows, cols = geometry((n, cg * geo[8], h, wd), w.shape, mode, geo)
    _wrong_gradient(g, n, o, rows, cols)
    return np.zeros((n, cg * geo[8], h, wd), dtype=g.dtype)


def corr2d_grad_inputs_images(wc, gc, mode, geo, gx, lo, hi, own_rows):
    """Images [lo, hi) of Corr2dGradInputs of the C-contiguous wc and gc, added into ``gx``."""
    o, cg, kh, kw = wc.shape
    n, h, wd = gc.shape[0], gx.shape[2], gx.shape[3]
    geo, rows, cols = geometry((n, cg * geo[8], h, wd), wc.shape, mode, geo)
    pt, pb, pl, pr, sh, sw, dh, dw, groups = geo
    og, k, p = o // groups, cg * kh * kw, rows * cols
    if hi <= lo or og == 0 or k == 0 or h * wd == 0:
        return
    filters = wc.reshape((o, k))
    scale, no, yes = _scale(gc, 0)
    if _direct(kh, kw, geo):
        for i in range(lo, hi):
            for gi in range(groups):
                gemm_into(yes, no, k, p, og, filters[gi * og].ctypes.data, k, gc[i, gi * og].ctypes.data, p,
                          gx[i, gi * cg].ctypes.data, p, scale, own_rows)
        return
    nb = _block(hi - lo, k, p)
    col, gs = np.empty(k * nb * p, dtype=gc.dtype), np.empty(og * nb * p, dtype=gc.dtype)
    flat = gc.reshape((n, o, p))
    for n0 in range(lo, hi, nb):
        b = min(nb, hi - n0)
        columns, gathered = col[:k * b * p].reshape((k, b * p)), gs[:og * b * p].reshape((og, b * p))
        for gi in range(groups):
            if b == 1 and p >= ONE_IMAGE:  # the image's gradient planes, read in place
                gemm_into(yes, no, k, p, og, filters[gi * og].ctypes.data, k, gc[n0, gi * og].ctypes.data, p,
                          columns.ctypes.data, p, scale, own_rows)
            else:
                gather(flat, n0, b, gi * og, og, gathered)
                gemm_into(yes, no, k, b * p, og, filters[gi * og].ctypes.data, k, gathered.ctypes.data, b * p,
                          columns.ctypes.data, b * p, scale, own_rows)
            col2im(columns, n0, b, gi * cg, cg, kh, kw, pt, pl, sh, sw, dh, dw, rows, cols, gx)


def corr2d_grad_inputs_node(w, g, size, mode, geo, own_rows):
    """Corr2dGradInputs of w and g, any layouts, on this thread."""
    wc, gc = np.ascontiguousarray(w), np.ascontiguousarray(g)
    gx = corr2d_grad_inputs_out(wc, gc, size, mode, geo)
    corr2d_grad_inputs_images(wc, gc, mode, geo, gx, 0, gc.shape[0], own_rows)
    return gx


def corr2d_grad_weights_acc(x, g, size, mode, geo):
    """The accumulator of Corr2dGradWeights of x (N, C, H, W) and g (N, O, rows, cols) for filters of
    ``size`` (kh, kw): zeros, per group the transpose of its filters' gradient (taps x filters), which
    BLAS computes 15 % faster than the filters' layout."""
    kh, kw = size_of(size)
    n, c = x.shape[0], x.shape[1]
    o = g.shape[1]
    geo, rows, cols = geometry(x.shape, (o, c // geo[8], kh, kw), mode, geo)
    _wrong_gradient(g, n, o, rows, cols)
    return np.zeros(c * kh * kw * (o // geo[8]), dtype=x.dtype)


def corr2d_grad_weights_images(xc, gc, size, mode, geo, acc, lo, hi):
    """Images [lo, hi) of Corr2dGradWeights of the C-contiguous xc and gc, accumulated into ``acc``."""
    kh, kw = size_of(size)
    c, o = xc.shape[1], gc.shape[1]
    geo, rows, cols = geometry(xc.shape, (o, c // geo[8], kh, kw), mode, geo)
    pt, pb, pl, pr, sh, sw, dh, dw, groups = geo
    cg = c // groups
    og, k, p = o // groups, cg * kh * kw, rows * cols
    if hi <= lo or og == 0 or k == 0:
        return
    scale, no, yes = _scale(xc, 1)  # accumulated over the images: C += A B^T, by the BLAS (own_rows 0)
    if _direct(kh, kw, geo):  # the image is its own column matrix
        for i in range(lo, hi):
            for gi in range(groups):
                gemm_into(no, yes, k, og, p, xc[i, gi * cg].ctypes.data, p, gc[i, gi * og].ctypes.data, p,
                          acc[gi * k * og:].ctypes.data, og, scale, no)
        return
    nb = _block(hi - lo, k, p)
    col, gs = np.empty(k * nb * p, dtype=xc.dtype), np.empty(og * nb * p, dtype=xc.dtype)
    flat = gc.reshape((gc.shape[0], o, p))
    for n0 in range(lo, hi, nb):
        b = min(nb, hi - n0)
        columns, gathered = col[:k * b * p].reshape((k, b * p)), gs[:og * b * p].reshape((og, b * p))
        for gi in range(groups):
            im2col(xc, n0, b, gi * cg, cg, kh, kw, pt, pl, sh, sw, dh, dw, rows, cols, columns)
            source = gc[n0, gi * og].ctypes.data  # the image's gradient planes, read in place
            if b != 1 or p < ONE_IMAGE:
                gather(flat, n0, b, gi * og, og, gathered)
                source = gathered.ctypes.data
            gemm_into(no, yes, k, og, b * p, columns.ctypes.data, b * p, source, b * p,
                      acc[gi * k * og:].ctypes.data, og, scale, no)


def corr2d_grad_weights_filters(acc, c, o, size, geo):
    """The filters' gradient (O, C / groups, kh, kw) from the accumulator's transposes."""
    kh, kw = size_of(size)
    groups = geo[8]
    cg, og = c // groups, o // groups
    k = cg * kh * kw
    gw = np.empty((o, cg, kh, kw), dtype=acc.dtype)
    flat_w = gw.reshape((o, k))
    for gi in range(groups):
        for f in range(og):
            for t in range(k):
                flat_w[gi * og + f, t] = acc[(gi * k + t) * og + f]
    return gw


def corr2d_grad_weights_node(x, g, size, mode, geo):
    """Corr2dGradWeights of x and g, any layouts, on this thread."""
    xc, gc = np.ascontiguousarray(x), np.ascontiguousarray(g)
    acc = corr2d_grad_weights_acc(xc, gc, size, mode, geo)
    corr2d_grad_weights_images(xc, gc, size, mode, geo, acc, 0, xc.shape[0])
    return corr2d_grad_weights_filters(acc, xc.shape[1], gc.shape[1], size, geo)


HELPERS = [geometry, size_of, gemm_into, _scale, _spans, im2col, col2im, gather, scatter, _direct, _block,
           _wrong_gradient, corr2d_node, corr2d_grad_inputs_node, corr2d_grad_weights_node]
# the pieces of a node that the glue calls itself when it splits the images between threads (SplitImages):
# compiled with Python wrappers
SPLIT_HELPERS = [corr2d_out, corr2d_images, corr2d_grad_inputs_out, corr2d_grad_inputs_images,
                 corr2d_grad_weights_acc, corr2d_grad_weights_images, corr2d_grad_weights_filters]


# ---------------------------------------------------------------------------------------------------
# The convolution nodes' kernels

_DECORATOR = "@_nb.njit(cache=True, error_model='numpy', nogil=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)"
_CALLABLE = "@_nb.njit(cache=True, error_model='numpy', nogil=True, no_cfunc_wrapper=True)"  # from Python too
_modules = {}  # runtime copy -> the helpers' module source


def helpers(gen):
    """The name of the helpers' module (written into the cache once per runtime copy)."""
    source = _modules.get(gen.runtime)
    if source is None:
        parts = ["\n".join(HEADER + [f"import {gen.runtime} as _rt"]), f"COLUMNS = {COLUMNS}",
                 f"ONE_IMAGE = {ONE_IMAGE}"]
        parts += [f"{_DECORATOR}\n{inspect.getsource(f)}" for f in HELPERS]
        parts += [f"{_CALLABLE}\n{inspect.getsource(f)}" for f in SPLIT_HELPERS]
        source = _modules[gen.runtime] = "\n\n\n".join(parts)
    return gen.import_kernel(source)


def _conv(gen, n, node, args, outs, helper, own_rows=False):
    """A convolution node: the helper ``helper`` is its kernel (a module that imports it under that
    name: no wrapper to compile per op), called with the op's geometry as int64 values (a literal
    argument would make numba compile the helper again for each value), and with ``own_rows`` the
    plan's (the most rows of a GEMM that panels.py's kernels compute)."""
    op = node.op
    mode, values = _geometry(op)
    geo = tup(f"np.int64({v})" for v in values)
    rows = f", np.int64({products.own_rows(gen.plan)})" if own_rows else ""
    text = f"# {py_comment(op)}, im2col and BLAS: the helper itself\nfrom {helpers(gen)} import {helper} as kernel"
    gen.kernels.append(Kernel(f"node{n}", text, [], False))
    return [f"{outs[0]} = node{n}({', '.join(args)}, np.int64({mode}), {geo}{rows})"]


def corr2d(gen, n, node, args, outs):
    return _conv(gen, n, node, args, outs, "corr2d_node", own_rows=True)


def corr2d_grad_inputs(gen, n, node, args, outs):
    return _conv(gen, n, node, args, outs, "corr2d_grad_inputs_node", own_rows=True)


def corr2d_grad_weights(gen, n, node, args, outs):
    return _conv(gen, n, node, args, outs, "corr2d_grad_weights_node")


def _geometry(op):
    """The op's padding rule and geometry as the helpers take them: int64 values, not literals."""
    mode = {"full": 1, "half": 2}.get(op.pad, 0)
    pads = (0, 0, 0, 0) if mode else tuple(p for pair in op.pad for p in pair)
    return mode, pads + op.stride + op.dilation + (op.groups,)


class SplitImages:
    """A convolution node of ``plan.image_threads``, called by the glue: the helpers' pieces (compiled
    once, with Python wrappers) check and allocate on this thread, then the images are shared out between
    threads that each run the blocks of theirs with their own scratch; the filters' gradient sums one
    accumulator per share (in share order: the same sum on every call). The BLAS runs on one core
    meanwhile (the program's whole call: ``plan.blas_one_core``). The helpers release the GIL."""

    def __init__(self, node, helpers, own_rows):
        self.node, self.h = node, helpers
        self.rows = products.own_rows_value(own_rows, helpers._rt)
        mode, geo = _geometry(node.op)
        self.mode, self.geo = np.int64(mode), tuple(np.int64(v) for v in geo)
        self.kind = type(node.op).__name__

    def __call__(self, *args):
        return getattr(self, self.kind)(*args)

    def _one_result(self, allocate, images, a, b, size, filters):
        """Corr2d (a = x, b = w) or Corr2dGradInputs (a = w, b = g): the result allocated and checked by
        ``allocate``, each share's images written into it by ``images``. ``filters``: which of a and b."""
        mode, geo = self.mode, self.geo
        ac, bc = np.ascontiguousarray(a), np.ascontiguousarray(b)
        w, images_of = (ac, bc) if filters == 0 else (bc, ac)
        out = allocate(ac, bc, mode, geo) if size is None else allocate(ac, bc, size, mode, geo)
        work = (out.size if filters else bc.size) * (w.size // max(1, w.shape[0]))
        run_shares(lambda lo, hi, t: images(ac, bc, mode, geo, out, lo, hi, self.rows), images_of.shape[0], work)
        return out

    def Corr2d(self, x, w):
        return self._one_result(self.h.corr2d_out, self.h.corr2d_images, x, w, None, filters=1)

    def Corr2dGradInputs(self, w, g, size):
        return self._one_result(self.h.corr2d_grad_inputs_out, self.h.corr2d_grad_inputs_images, w, g, size,
                                filters=0)

    def Corr2dGradWeights(self, x, g, size):
        h, mode, geo = self.h, self.mode, self.geo
        xc, gc = np.ascontiguousarray(x), np.ascontiguousarray(g)
        acc = h.corr2d_grad_weights_acc(xc, gc, size, mode, geo)
        others = {}  # share -> its accumulator

        def run(lo, hi, t):
            own = acc if t == 0 else others.setdefault(t, np.zeros_like(acc))
            h.corr2d_grad_weights_images(xc, gc, size, mode, geo, own, lo, hi)

        run_shares(run, xc.shape[0], gc.size * acc.size // max(1, gc.shape[1]))  # N O P x (C / groups) kh kw
        for t in sorted(others):
            acc += others[t]
        return h.corr2d_grad_weights_filters(acc, xc.shape[1], gc.shape[1], size, geo)
