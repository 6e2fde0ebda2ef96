"""Work a node shares out between threads from the glue: the nodes of ``plan.image_threads``
(convolutions: conv.SplitImages) and ``plan.product_threads`` (matrix products: products.SplitColumns),
with the BLAS on one core meanwhile, and the row ops of ``plan.threads`` (``Op.splits_rows``: poolings,
the softmax cross-entropy and its gradient: SplitRows). The glue calls such a node between two compiled
segments; its pieces are compiled functions that release the GIL, run by the calling thread and a
pool's workers.

A row op's kernel is *ranged*: ``kernel(inputs..., out, lo, hi)`` runs rows [lo, hi) (a pooling's
images: its leading axes, flattened) into ``out``, which it allocates when handed an empty one, and
returns the result shaped. A program calls it with an empty ``out`` and every row (``every_row``); the
glue first calls it with no row, which checks the inputs and allocates, then runs shares of the rows
into that result."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from arignote.core.config import thread_count
from arignote.core.plan import IMAGE_THREADS_MIN, PARALLEL_MIN

from .. import blas

_pool = []  # the worker threads, made on first use: [ThreadPoolExecutor]


def threads_for_shares():
    """The threads work is shared out between: ``thread_count()``, or 1 when the BLAS offers no thread
    count to set to one meanwhile (``blas.entry_points()["solo_sets_threads"]``)."""
    return thread_count() if blas.entry_points()["solo_sets_threads"] else 1


def every_row(T):
    """The arguments after the inputs of a program's call of a ranged kernel whose result has dtype T."""
    return f"np.empty(0, dtype={T}), np.int64(0), np.int64(1 << 62)"


def run_shares(run, n, work, least=IMAGE_THREADS_MIN):
    """``run(lo, hi, share)`` over [0, n) in ``threads_for_shares()`` shares, this thread taking share 0
    and the pool's workers the others, once ``work`` reaches ``least`` (multiply-adds, or elements for
    row ops); one call below. An error of any share is raised once every share has ended."""
    count = min(threads_for_shares(), n) if work >= least else 1
    if count <= 1:
        run(0, n, 0)
        return
    if not _pool:
        _pool.append(ThreadPoolExecutor(max_workers=7, thread_name_prefix="arignote-shares"))
    bounds = [n * t // count for t in range(count + 1)]
    futures = [_pool[0].submit(run, bounds[t], bounds[t + 1], t) for t in range(1, count)]
    try:
        run(bounds[0], bounds[1], 0)
    finally:
        for future in futures:
            future.exception()  # waits: no share outlives the call, whatever failed
    for future in futures:
        future.result()


class SplitRows:
    """A row op of ``plan.threads`` (``Op.splits_rows``), called by the glue: its ranged kernel (above)
    checks and allocates on this thread, then threads share its rows once its first input holds
    PARALLEL_MIN elements (C's ``ari_parallel`` threshold)."""

    def __init__(self, node, kernel):
        from arignote.core.pool import _PoolBase

        self.kernel = kernel
        self.empty = np.empty(0, dtype=node.outputs[0].dtype)
        self.leading = node.inputs[0].ndim - 2 if isinstance(node.op, _PoolBase) else 1  # the axes of its rows

    def __call__(self, *inputs):
        result = self.kernel(*inputs, self.empty, 0, 0)
        rows = int(np.prod(inputs[0].shape[:self.leading]))
        flat = result.reshape(-1)
        run_shares(lambda lo, hi, t: self.kernel(*inputs, flat, lo, hi), rows, inputs[0].size, PARALLEL_MIN)
        return result
