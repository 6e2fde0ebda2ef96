"""Convolutions and pooling, written to be obviously right: a correlation is a sum over the kernel's
taps of strided slices of the padded input, each contracted with that tap's weights (per group); a
pooling is a loop over output positions, each reading its window as ``Pool.windows`` cuts it."""

import numpy as np


def _geometry(op, image, kernel, in_channels, kernel_channels, out_channels, batch, out=None):
    problem = op.check(image, kernel, in_channels, kernel_channels, out_channels, batch, out)
    if problem:
        raise ValueError(problem)
    return op.paddings(*kernel), op.output_shape(image, kernel)


def _taps(op, kernel, rows, cols):
    """For each tap (a, b): the slices of the padded image it reads for every output position."""
    (sh, sw), (dh, dw) = op.stride, op.dilation
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            yield a, b, (slice(a * dh, a * dh + (rows - 1) * sh + 1, sh), slice(b * dw, b * dw + (cols - 1) * sw + 1, sw))


def _groups(op, channels, filters):
    """(channel slice, filter slice) of each group."""
    c, o = channels // op.groups, filters // op.groups
    return [(slice(k * c, (k + 1) * c), slice(k * o, (k + 1) * o)) for k in range(op.groups)]


def _image_size(op, size):
    size = np.asarray(size)
    if size.shape != (2,) or (size < 0).any():
        raise ValueError(f"{op}: expected a size of 2 non-negative ints, got {size.tolist()}")
    return tuple(int(s) for s in size)


def corr2d(node, x, w):
    op = node.op
    (n, c, h, wd), (o, cg, kh, kw) = x.shape, w.shape
    ((pt, pb), (pl, pr)), (rows, cols) = _geometry(op, (h, wd), (kh, kw), c, cg, o, n)
    padded = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((n, o, rows, cols), node.outputs[0].dtype)
    for a, b, (rs, cs) in _taps(op, (kh, kw), rows, cols):
        for ch, fl in _groups(op, c, o):
            out[:, fl] += np.einsum("ncij,oc->noij", padded[:, ch, rs, cs], w[fl, :, a, b])
    return out


def corr2d_grad_inputs(node, w, g, image):
    op = node.op
    (o, cg, kh, kw), (h, wd) = w.shape, _image_size(op, image)
    c = cg * op.groups
    ((pt, pb), (pl, pr)), (rows, cols) = _geometry(op, (h, wd), (kh, kw), c, cg, o, g.shape[0], g.shape)
    padded = np.zeros((g.shape[0], c, h + pt + pb, wd + pl + pr), node.outputs[0].dtype)
    for a, b, (rs, cs) in _taps(op, (kh, kw), rows, cols):
        for ch, fl in _groups(op, c, o):
            padded[:, ch, rs, cs] += np.einsum("noij,oc->ncij", g[:, fl], w[fl, :, a, b])
    return padded[:, :, pt:pt + h, pl:pl + wd].copy()


def corr2d_grad_weights(node, x, g, kernel):
    op = node.op
    (n, c, h, wd), (kh, kw) = x.shape, _image_size(op, kernel)
    o = g.shape[1]
    ((pt, pb), (pl, pr)), (rows, cols) = _geometry(op, (h, wd), (kh, kw), c, c // op.groups, o, n, g.shape)
    padded = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((o, c // op.groups, kh, kw), node.outputs[0].dtype)
    for a, b, (rs, cs) in _taps(op, (kh, kw), rows, cols):
        for ch, fl in _groups(op, c, o):
            out[fl, :, a, b] = np.einsum("ncij,noij->oc", padded[:, ch, rs, cs], g[:, fl])
    return out


# ---------------------------------------------------------------------------------------------------
# Pooling


def _windows(op, x, *pooled):
    """Each output position's (index, image region, divisor), after checking that every ``pooled``
    array has the pooled shape of x."""
    rows, cols = op.windows(0, x.shape[-2]), op.windows(1, x.shape[-1])
    shape = x.shape[:-2] + (len(rows), len(cols))
    for p in pooled:
        if p.shape != shape:
            raise ValueError(f"{op}: for an input of shape {x.shape} the pooled arrays have shape {shape}, got {p.shape}")
    for i, (r0, r1, rdiv) in enumerate(rows):
        for j, (c0, c1, cdiv) in enumerate(cols):
            divisor = {"sum": 1, "average_inc_pad": rdiv * cdiv}.get(op.mode, (r1 - r0) * (c1 - c0))
            yield (..., i, j), (..., slice(r0, r1), slice(c0, c1)), divisor


def pool(node, x):
    op = node.op
    rows, cols = op.output_shape(*x.shape[-2:])
    out = np.empty(x.shape[:-2] + (rows, cols), x.dtype)
    for at, region, divisor in _windows(op, x):
        window = x[region]
        if op.mode == "max":
            out[at] = np.max(window, axis=(-2, -1))
        else:
            total = np.sum(window, axis=(-2, -1), dtype=x.dtype)
            out[at] = total if divisor == 1 else total / x.dtype.type(divisor)
    return out


def _tied(x, out, region, at):
    return x[region] == out[at][..., None, None]


def max_pool_grad(node, x, out, g):
    gx = np.zeros_like(x)
    for at, region, _ in _windows(node.op, x, out, g):
        gx[region] += np.where(_tied(x, out, region, at), g[at][..., None, None], 0)
    return gx


def max_pool_grad_grad(node, x, out, h):
    if h.shape != x.shape:
        raise ValueError(f"{node.op}: the gradient has shape {h.shape}, the input {x.shape}")
    result = np.zeros_like(out)
    for at, region, _ in _windows(node.op, x, out):
        result[at] = np.sum(np.where(_tied(x, out, region, at), h[region], 0), axis=(-2, -1))
    return result


def average_pool_grad(node, x, g):
    gx = np.zeros_like(x)
    for at, region, divisor in _windows(node.op, x, g):
        gx[region] += (g[at] if divisor == 1 else g[at] / x.dtype.type(divisor))[..., None, None]
    return gx
