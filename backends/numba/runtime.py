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


@_jit
def scalar(value, out):
    """A 0-d array holding ``value`` (0-d values travel between nodes as 0-d arrays)."""
    out[()] = value
    return out


@_jit
def index(i, size):
    """An integer index checked against an axis of ``size`` (negative counts from the end)."""
    if i < -size or i >= size:
        raise IndexError("index out of range")
    return i + size if i < 0 else i


@_jit
def check_labels(rows, classes, y):
    if y.shape[0] != rows:
        raise ValueError("expected one integer label per row")
    for i in range(rows):
        if y[i] < 0 or y[i] >= classes:
            raise IndexError("label out of range")


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
    out[:, :] = x
    one = v.shape[0] == 1
    for i in range(rows):
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


@_jit
def dot(a, b):
    """np.dot (BLAS) compiled here once per layout and cached with this module: a new graph links it
    instead of compiling numba's BLAS binding again (half a second per layout pair)."""
    return np.dot(a, b)


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
    count = int(np.ceil((np.float64(stop) - np.float64(start)) / np.float64(step)))
    out = np.empty(max(count, 0), dtype=like.dtype)
    if count > 0:
        out[0] = start
    if count > 1:
        out[1] = start + step
        first = out[0]
        delta = out[1] - first
        for i in range(2, count):
            out[i] = first + i * delta
    return out
