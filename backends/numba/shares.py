"""Work a node shares out between threads from the glue, the BLAS on one core meanwhile: the nodes of
``plan.image_threads`` (convolutions: conv.SplitImages) and ``plan.product_threads`` (matrix products:
products.SplitColumns). The glue calls such a node between two compiled segments; its pieces are
compiled helpers that release the GIL, run by the calling thread and a pool's workers."""

from concurrent.futures import ThreadPoolExecutor

from arignote.core.config import thread_count
from arignote.core.plan import IMAGE_THREADS_MIN

from .. import blas

_pool = []  # the worker threads, made on first use: [ThreadPoolExecutor]


def threads_for_shares():
    """The threads work is shared out between: ``thread_count()``, or 1 when the BLAS offers no thread
    count to set to one meanwhile (``blas.entry_points()["solo_sets_threads"]``)."""
    return thread_count() if blas.entry_points()["solo_sets_threads"] else 1


def run_shares(run, n, work):
    """``run(lo, hi, share)`` over [0, n) in ``threads_for_shares()`` shares, this thread taking share 0
    and the pool's workers the others, once ``work`` (multiply-adds) reaches IMAGE_THREADS_MIN; one call
    below. An error of any share is raised once every share has ended."""
    count = min(threads_for_shares(), n) if work >= IMAGE_THREADS_MIN else 1
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
