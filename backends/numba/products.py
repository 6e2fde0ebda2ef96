"""Matrix products: float ones through NumPy's own BLAS (``runtime.gemm``, one compiled helper per
dtype whatever the operands' layouts), integer and boolean ones with loops (BLAS has none)."""

import numpy as np

from arignote.core.plan import IMAGE_THREADS_MIN, PRODUCT_STORE_WORK

from .generator import st
from .shares import run_shares

PANEL = 32  # columns: shares start at whole panels of panels.py's kernels (32 float32 with AVX-512)
# multiply-adds: a smaller product that BLAS computes runs on this thread. Its shares are Python jobs,
# and one handed out from the glue costs tens of microseconds (shares.py), more than a second thread
# saves on 7.8 million multiply-adds (mlp-train-b20's products). A share that is one call of panels.py's
# kernels is made without Python, from core's IMAGE_THREADS_MIN as in the C backend.
SPLIT_MIN = 1 << 25


def _operands(args, node):
    """The operands' names, converted to the output dtype where they differ."""
    dtype = node.outputs[0].dtype
    return [name if v.dtype == dtype else f"{name}.astype({st(dtype)})" for name, v in zip(args, node.inputs)]


def own_rows(plan):
    """The most rows of a product that panels.py's kernels compute (the plan's own_rows, else the
    runtime's few rows), as the source text of the product helpers' last argument."""
    return "_rt.FEW_ROWS" if plan.own_rows is None else str(plan.own_rows)


def own_rows_value(plan_rows, runtime):
    """``own_rows`` as a number, for the glue's calls: the plan's ``plan_rows``, else the runtime's."""
    return np.int64(runtime.FEW_ROWS if plan_rows is None else plan_rows)


def dot(gen, n, node, args, outs):
    a, b = node.inputs
    out = node.outputs[0]
    dtype = st(out.dtype)
    x, y = _operands(args, node)
    # vectors as one-row or one-column matrices; views with a step are typed "any layout", so that
    # every product of a dtype shares one compiled helper whatever its operands' layouts
    x2 = f"{x}[::1, ::1]" if a.ndim == 2 else f"{x}[None, ::1]"
    y2 = f"{y}[::1, ::1]" if b.ndim == 2 else f"{y}[::1, None]"
    target = gen.targets.get(out) if a.ndim == 2 and b.ndim == 2 else None  # a loop step's output row
    if np.dtype(out.dtype).kind == "f" and target:  # straight into the row the loop hands it, when it fits
        call = f"_rt.gemm_into({x2}, {y2}, {target}, {own_rows(gen.plan)})"
    elif np.dtype(out.dtype).kind == "f":  # BLAS: NumPy's own library (runtime.gemm)
        call = f"_rt.gemm({x2}, {y2}, {own_rows(gen.plan)})"
    else:  # integers and booleans: loops (BLAS has none)
        call = f"_rt.dot_loops({x2}, {y2}, np.empty(0, dtype={dtype}))"
    if a.ndim == 2 and b.ndim == 2:
        return [f"{outs[0]} = {call}"]
    if a.ndim == 2:
        return [f"{outs[0]} = {call}[:, 0].copy()"]
    if b.ndim == 2:
        return [f"{outs[0]} = {call}[0].copy()"]
    return [f"{outs[0]} = _rt.scalar({call}[0, 0], np.empty((), dtype={dtype}))"]


def gemm(gen, n, node, args, outs):
    """beta z + alpha x y: z copied (or, for an update in place, z's own storage), then one BLAS gemm
    accumulating into it (runtime.gemm_scaled)."""
    z, alpha, x, y, beta = args
    label = type(node.op).__name__
    into = "a0  # an update in place: z's storage (plan.reuse)" if gen.plan.reuse.get(node) == 0 else "a0.copy()"
    lines = ["if x.shape[1] != y.shape[0] or a0.shape[0] != x.shape[0] or a0.shape[1] != y.shape[1]:",
             f"    raise ValueError('{label}: shapes do not fit z + x . y')",
             f"out = {into}",
             f"return _rt.gemm_scaled(x[::1, ::1], y[::1, ::1], out, alpha[()], beta[()], {own_rows(gen.plan)})"]
    name = gen.kernel(n, node, ["a0", "alpha", "x", "y", "beta"], lines)
    return [f"{outs[0]} = {name}({z}, {alpha}, {x}, {y}, {beta})"]


def batched_dot(gen, n, node, args, outs):
    """(B, n, k) . (B, k, m): one product per batch entry, in a kernel."""
    out = node.outputs[0]
    dtype = st(out.dtype)
    x, y = _operands(args, node)
    label = type(node.op).__name__
    product = f"_rt.gemm(a[i, ::1, ::1], b[i, ::1, ::1], {own_rows(gen.plan)})" if np.dtype(out.dtype).kind == "f" else \
        f"_rt.dot_loops(a[i], b[i], np.empty(0, dtype={dtype}))"
    lines = ["if a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:",
             f"    raise ValueError('{label}: shapes do not fit (B, n, k) . (B, k, m)')",
             f"out = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype={dtype})",
             "for i in range(a.shape[0]):", f"    out[i] = {product}", "return out"]
    name = gen.kernel(n, node, ["a", "b"], lines)
    return [f"{outs[0]} = {name}({x}, {y})"]


class SplitColumns:
    """A matrix product of ``plan.product_threads`` (``Dot`` of two matrices, or ``Gemm``), called by the
    glue: the columns of its second operand and of its result are shared out between threads, each
    computing its block on one core (``plan.blas_one_core``) by the runtime's ``gemm_columns``, which
    releases the GIL (panels.py's kernels up to the plan's ``own_rows``, else one BLAS call), once the
    product is large enough (``_columns``). Shapes are checked here with constant messages; the
    program then explains a failure."""

    def __init__(self, node, runtime, in_place, rows):
        self.node, self.rt, self.in_place = node, runtime, in_place  # in_place: a Gemm computed in z's storage
        self.dtype = np.dtype(node.outputs[0].dtype)
        self.rows = own_rows_value(rows, runtime)

    def __call__(self, *args):
        return self.gemm(*args) if len(args) == 5 else self.dot(*args)

    def dot(self, a, b):
        if a.shape[1] != b.shape[0]:
            raise ValueError("Dot: shapes are not aligned")
        if a.shape[1] == 0:  # a sum of nothing (gemm_into writes no block then)
            return np.zeros((a.shape[0], b.shape[1]), dtype=self.dtype)
        out = np.empty((a.shape[0], b.shape[1]), dtype=self.dtype)
        self._columns(a, b, out, False, 1.0, 0.0)
        return out

    def gemm(self, z, alpha, x, y, beta):
        if x.shape[1] != y.shape[0] or z.shape[0] != x.shape[0] or z.shape[1] != y.shape[1]:
            raise ValueError("Gemm: shapes do not fit z + x . y")
        out = z if self.in_place else z.copy()
        self._columns(x, y, out, True, float(alpha[()]), float(beta[()]))  # one compiled version for every scale's type
        return out

    def _columns(self, a, b, out, scaled, alpha, beta):
        """out = a . b, or beta out + alpha a . b when ``scaled``, through ``gemm_columns``: one call, or
        shares once the work reaches core's IMAGE_THREADS_MIN where panels.py's kernels compute them (a
        worker makes their call without Python), else SPLIT_MIN."""
        work, columns = out.size * (a.shape[1] + PRODUCT_STORE_WORK), b.shape[1]  # stores count (core.plan)
        if work < (IMAGE_THREADS_MIN if 3 <= a.shape[0] <= self.rows else SPLIT_MIN):
            self.rt.gemm_columns(a, b, out, 0, columns, scaled, alpha, beta, self.rows)
            return
        run_shares(lambda lo, hi, t: self.rt.gemm_columns(a, b, out, lo, hi, scaled, alpha, beta, self.rows),
                   columns, work, least=0, align=PANEL,
                   kernel=lambda lo, hi, job, scale: self.rt.columns_job(a, b, out, lo, hi, scaled, alpha, beta,
                                                                        self.rows, job, scale))
