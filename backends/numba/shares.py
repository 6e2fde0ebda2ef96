"""Work a node shares out between threads from the glue: the nodes of ``plan.image_threads``
(convolutions: conv.SplitImages) and ``plan.product_threads`` (matrix products: products.SplitColumns),
with the BLAS on one core meanwhile, and the row ops of ``plan.threads`` (``Op.splits_rows``: poolings,
the softmax cross-entropy and its gradient: SplitRows). The glue calls such a node between two compiled
segments; its pieces are compiled functions that release the GIL, run by the calling thread and
polling workers (``_Crew``).

A row op's kernel is *ranged*: ``kernel(inputs..., out, lo, hi)`` runs rows [lo, hi) (a pooling's
images: its leading axes, flattened) into ``out``, which it allocates when handed an empty one, and
returns the result shaped. A program calls it with an empty ``out`` and every row (``every_row``); the
glue first calls it with no row, which checks the inputs and allocates, then runs shares of the rows
into that result."""

import os
import threading

import numba
import numpy as np

from arignote.core.config import thread_count
from arignote.core.plan import IMAGE_THREADS_MIN

from .. import blas

# How long a thread waits for a flag by polling it (GIL released, a ``pause`` between polls) before it
# sleeps on a condition: 2**15 polls, about 0.75 ms on the 2-vCPU EPYC. Waking a sleeping thread costs
# tens of microseconds on a virtual machine (a vCPU that halted must be scheduled again): a no-op
# handed out through a ThreadPoolExecutor took 36-48 us, to polling workers 24-34 us (the rest is the
# GIL passing between the two threads); a LeNet step hands work out about 14 times.
SPIN_POLLS = 1 << 15


def _load_acquire():
    """An intrinsic: element ``i`` of the int64 array ``flags``, read with acquire ordering (a plain
    load in a loop is hoisted out of it by LLVM; this one is read afresh every time)."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, flags, i):
        if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(i, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
            return builder.load_atomic(pointer, "acquire", 8)
        return types.int64(flags, i), codegen
    return intrinsic(typer)


load_acquire = _load_acquire()


def _store_release():
    """An intrinsic: ``flags[i] = value`` (int64 flags), written with release ordering: whatever the
    thread wrote before is seen by a thread that reads the flag with ``load_acquire``."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx, flags, i, value):
        if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and isinstance(i, types.Integer)
                and isinstance(value, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            array = context.make_array(signature.args[0])(context, builder, args[0])
            pointer = cgutils.get_item_pointer(context, builder, signature.args[0], array, [args[1]])
            builder.store_atomic(context.cast(builder, args[2], signature.args[2], types.int64), pointer, "release", 8)
            return context.get_dummy_value()
        return types.none(flags, i, value), codegen
    return intrinsic(typer)


store_release = _store_release()


def _pause():
    """An intrinsic: the x86 ``pause`` hint in a polling loop (nothing elsewhere), which slows the loop
    down and leaves more of the core to whatever else runs on it."""
    import platform

    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    def typer(typingctx):
        def codegen(context, builder, signature, args):
            if platform.machine().lower() in ("x86_64", "amd64", "i686"):
                hint = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), []),
                                                      "llvm.x86.sse2.pause")
                builder.call(hint, [])
            return context.get_dummy_value()
        return types.none(), codegen
    return intrinsic(typer)


pause = _pause()


@numba.njit(cache=True, nogil=True)
def spin_until(flags, i, value, polls):
    """Poll ``flags[i]`` until it equals ``value``, at most ``polls`` times, without Python's lock:
    whether it does."""
    for _ in range(polls):
        if load_acquire(flags, i) == value:
            return True
        pause()
    return False


# panels.py's kernels, by the names the backend binds (runtime.py calls them the same way). Code that
# names them must not be compiled before they are bound (an unbound name crashes the process), so the
# workers run ``serve`` only once the backend says so (``KERNELS_BOUND``, set by its _bind_panels).
KERNELS_BOUND = False
_KERNEL = numba.types.void(numba.types.intp, numba.types.intp)  # the addresses of a description, of its scales
_few_rows_float32 = numba.types.ExternalFunction("arignote_few_rows_float32", _KERNEL)
_few_rows_float64 = numba.types.ExternalFunction("arignote_few_rows_float64", _KERNEL)


@numba.njit(cache=True, nogil=True)
def serve(posted, done, seat, served, kernels, scales, polls):
    """A worker's loop without Python's lock: runs the kernel calls posted to ``seat`` (kernels[seat]:
    a product's description, panels.JOB, as runtime.py's ``_few_rows_job`` writes it, its item size
    first; scales[seat]: alpha and beta) as they come, each marked done with its generation. Returns
    the generation last served when the next job is Python's (item size 0) or none came within
    ``polls`` polls."""
    while spin_until(posted, seat, served + 1, polls):
        job, scale = kernels[seat], scales[seat]
        if job[0] == 0:
            break
        if job[0] == 4:
            _few_rows_float32(job.ctypes.data, scale.ctypes.data)
        else:
            _few_rows_float64(job.ctypes.data, scale.ctypes.data)
        served += 1
        store_release(done, seat, served)
    return served


class _Crew:
    """Worker threads, each with a seat: a job, a generation posted by the caller and a generation done
    by the worker (int64 flags that both sides poll with ``spin_until``). A worker that finished a job
    polls for the next one for SPIN_POLLS polls, then sleeps on the condition; the caller waits for a
    share the same way. A flag is written without the condition's lock, which is taken only when some
    thread sleeps (``sleepers``, counted under the lock; both sides run Python under the GIL, so a
    sleeper's check of the flag after counting itself sees a write that missed its count).
    Workers are daemon threads, each made when its seat is first used (and anew in a forked child). One
    caller at a time: ``busy``, which a caller that finds it taken does without, running every share
    itself."""

    def __init__(self, size):
        self.posted = np.zeros(size, np.int64)
        self.done = np.zeros(size, np.int64)
        self.kernels = np.zeros((size, 13), np.int64)  # a seat's kernel call for ``serve`` (item size 0: none)
        self.scales = np.zeros((size, 2))
        self.jobs, self.errors, self.threads = [None] * size, [None] * size, [None] * size
        self.condition = threading.Condition(threading.Lock())
        self.sleepers = 0
        self.busy = threading.Lock()

    def _await(self, flags, seat, value):
        """Wait until ``flags[seat] == value``: polling, then asleep."""
        if spin_until(flags, seat, value, SPIN_POLLS):
            return
        with self.condition:
            self.sleepers += 1
            self.condition.wait_for(lambda: flags[seat] == value)
            self.sleepers -= 1

    def _set(self, flags, seat, value):
        flags[seat] = value
        if self.sleepers:
            with self.condition:
                self.condition.notify_all()

    def _serve(self, seat):
        served = 0
        while True:
            if KERNELS_BOUND:
                served = serve(self.posted, self.done, seat, served, self.kernels, self.scales, SPIN_POLLS)
            if self.posted[seat] == served:  # none came while polling: asleep until one does
                self._await(self.posted, seat, served + 1)
                continue  # ``serve`` runs a kernel call, or returns at once for Python's job
            if self.kernels[seat, 0]:  # a kernel call posted as ``serve`` gave up
                continue
            served += 1
            try:
                self.jobs[seat]()
            except BaseException as error:  # handed to the caller, which raises it
                self.errors[seat] = error
            self.jobs[seat] = None
            self._set(self.done, seat, served)

    def post(self, seat, job):
        """Hand ``job`` (a Python callable) to ``seat``; None: the kernel call in kernels[seat]."""
        if self.threads[seat] is None:
            self.threads[seat] = threading.Thread(target=self._serve, args=(seat,), daemon=True,
                                                  name=f"arignote-shares-{seat}")
            self.threads[seat].start()
        self.jobs[seat], self.errors[seat] = job, None
        if job is not None:
            self.kernels[seat, 0] = 0
        self._set(self.posted, seat, self.posted[seat] + 1)

    def wait(self, seat):
        """Wait for the job of ``seat`` to end; its error, or None. A kernel call's end is only polled
        for: ``serve`` marks it done without Python, so without waking a sleeper."""
        if self.jobs[seat] is None:
            while not spin_until(self.done, seat, self.posted[seat], SPIN_POLLS):
                pass
        else:
            self._await(self.done, seat, self.posted[seat])
        return self.errors[seat]


_crew = []  # the workers, made on first use: [_Crew]
os.register_at_fork(after_in_child=_crew.clear)  # a forked child has none of its parent's threads


def threads_for_shares():
    """The threads work is shared out between: ``thread_count()``, or 1 when the BLAS offers no thread
    count to set to one meanwhile (``blas.entry_points()["solo_sets_threads"]``)."""
    return thread_count() if blas.entry_points()["solo_sets_threads"] else 1


def every_row(T):
    """The arguments after the inputs of a program's call of a ranged kernel whose result has dtype T."""
    return f"np.empty(0, dtype={T}), np.int64(0), np.int64(1 << 62)"


def run_shares(run, n, work, least=IMAGE_THREADS_MIN, align=1, kernel=None):
    """``run(lo, hi, share)`` over [0, n) in ``threads_for_shares()`` shares starting at multiples of
    ``align``, this thread taking share 0 and the pool's workers the others, once ``work`` reaches
    ``least`` (multiply-adds, or elements for row ops); one call below. A worker's share is one call
    of panels.py's kernels, made without Python, where ``kernel(lo, hi, job, scale)`` describes it (as
    runtime.py's ``columns_job``). An error of any share is raised once every share has ended."""
    count = 1 if work < least else min(threads_for_shares(), n)
    if count <= 1:
        run(0, n, 0)
        return
    if not _crew:
        _crew.append(_Crew(7))
    crew = _crew[0]
    if not crew.busy.acquire(blocking=False):  # another thread's shares are running: do without
        run(0, n, 0)
        return
    try:
        units = -(-n // align)  # shares of equal numbers of whole units (a short last one in the last share)
        bounds = [min(n, units * t // count * align) for t in range(count)] + [n]
        for t in range(1, count):
            native = kernel is not None and kernel(bounds[t], bounds[t + 1], crew.kernels[t - 1], crew.scales[t - 1])
            crew.post(t - 1, None if native else lambda t=t: run(bounds[t], bounds[t + 1], t))
        try:
            run(bounds[0], bounds[1], 0)
        finally:
            errors = [crew.wait(t - 1) for t in range(1, count)]  # no share outlives the call, whatever failed
    finally:
        crew.busy.release()
    for error in errors:
        if error is not None:
            raise error


class SplitRows:
    """A row op of ``plan.threads`` (``Op.splits_rows``), called by the glue: its ranged kernel (above)
    checks and allocates on this thread, then threads share its rows once its first input holds
    ``least`` elements (the node's ``plan.parallel_min``, as C's ``ari_parallel``)."""

    def __init__(self, node, kernel, least):
        from arignote.core.pool import _PoolBase

        self.kernel, self.least = kernel, least
        self.empty = np.empty(0, dtype=node.outputs[0].dtype)
        self.leading = node.inputs[0].ndim - 2 if isinstance(node.op, _PoolBase) else 1  # the axes of its rows

    def __call__(self, *inputs):
        if inputs[0].size < self.least:  # one call for every row
            return self.kernel(*inputs, self.empty, 0, 1 << 62)
        result = self.kernel(*inputs, self.empty, 0, 0)
        rows = int(np.prod(inputs[0].shape[:self.leading]))
        flat = result.reshape(-1)
        run_shares(lambda lo, hi, t: self.kernel(*inputs, flat, lo, hi), rows, inputs[0].size, self.least)
        return result
