"""Synchronous data parallelism over MPI: every process (rank) holds a replica of the model, computes the
gradients of its own share of each batch, and the gradients are averaged across ranks by one allreduce
before the update, so the replicas stay identical. Launch with ``mpiexec -n 4 python train.py``.

    import arignote.distributed as dist
    optimizer = Adam(0.001)
    grads = dist.allreduce_gradients(T.grad(cost, params), weight=x.shape[0])
    train = function([x, y], cost, updates=optimizer.updates(grads=grads, params=params))
    dist.broadcast_parameters(params + optimizer.state)   # the replicas start equal (and checked so)
    with dist.guard():                                    # an error here stops the other ranks too
        train(x_batch[dist.share(len(x_batch))], y_batch[dist.share(len(y_batch))])

or, faster, between two compiled functions: ``packed_gradients(cost, params, x.shape[0])`` as an output
of the first (the gradients times the rows, joined into one vector), ``allreduce_packed(vector, rows)``,
then an update function reading ``unpacked_means(summed, params)``; ``GradientBuckets`` does the same
in buckets that a thread starts summing while the backward pass still runs, where that pays (when the
ranks span hosts: ``bucket_size``, ``config.bucket_bytes``). ``Trainer(model, ..., distributed=True)``
does all of it that way (``allreduce_arrays`` does it on NumPy arrays). The core never imports this module;
it needs mpi4py and an MPI (``pip install 'arignote[mpi]'``). Internals and the cost model:
docs/distributed.md.

Faults: every collective here waits on a non-blocking request while polling for an error message from
another rank, so a rank that raises inside ``guard()`` (the Trainer's loop is guarded) tells the others,
and each of them raises ``DistributedError`` naming that rank and its error instead of waiting forever.
A process that met such an error leaves without ``MPI_Finalize`` (requests left pending would make it
hang), with exit status 1.
"""

import atexit
import contextlib
import os
import sys
import threading
import time

import numpy as np

from .core.graph import Apply, Op, as_tensor_variable

ERROR_TAG = 0xA41  # the tag of the messages a failing rank sends to the others
DONE_TAG = 0xA42  # "I have reported the error, you may exit": sent at exit to the ranks that sent one
EXIT_WAIT = 10.0  # seconds a failed rank waits at exit for the others to have reported its error
SPIN, NAP = 2e-3, 5e-5  # seconds a collective polls busily, then naps between polls (docs/distributed.md)
PROBE = 1e-4  # seconds between two looks for another rank's error while polling busily
_state = {"comm": None, "broken": False, "told": set(), "heard": set()}


class DistributedError(RuntimeError):
    """Another rank stopped with an error (its rank, type and message are in this one's message), or
    the ranks disagree about the model."""


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("arignote.distributed needs mpi4py and an MPI: pip install 'arignote[mpi]' "
                          "(mpi4py and the mpich wheel)") from None
    return MPI


def comm():
    """The communicator every helper here uses (MPI.COMM_WORLD unless ``set_comm`` chose another)."""
    if _state["comm"] is None:
        _state["comm"] = _mpi().COMM_WORLD
        _install_excepthook()
    return _state["comm"]


def _install_excepthook():
    """An exception nobody caught tells the other ranks too (as ``guard`` does) before it is printed."""
    previous = sys.excepthook

    def hook(kind, error, traceback):
        try:
            fail(error)
        finally:
            previous(kind, error, traceback)

    sys.excepthook = hook


def set_comm(communicator):
    """Use ``communicator`` (an mpi4py communicator, e.g. a ``Split`` of COMM_WORLD) from now on."""
    _state["comm"] = communicator


def rank():
    """This process's rank (0 for the root, which alone prints progress and writes checkpoints)."""
    return comm().Get_rank()


def size():
    """The number of ranks."""
    return comm().Get_size()


def is_root():
    return rank() == 0


class Stats:
    """Where the time of the gradients' allreduces went, since the last ``reset()``: ``seconds`` the step
    waited for them, ``calls`` and ``bytes`` (per rank), and ``in_flight``, the seconds from each bucket's
    hand-over to its sum (``GradientBuckets``: the part of it not in ``seconds`` ran beside the step)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.seconds, self.calls, self.bytes, self.in_flight = 0.0, 0, 0, 0.0


stats = Stats()


# -- collectives that never hang on a failed rank ---------------------------------------------------------

def _wait(request, what):
    """Wait for ``request``; raise DistributedError as soon as another rank reports a failure."""
    start = time.perf_counter()
    probe_at = start + PROBE
    while not request.Test():
        now = time.perf_counter()
        if now - start > SPIN:
            time.sleep(NAP)  # waiting long (a slower rank): leave the core to the ranks that compute
        elif now < probe_at:
            continue  # in step: let MPI progress, look for errors now and then
        probe_at = now + PROBE
        _raise_if_another_rank_failed(what)


def _raise_if_another_rank_failed(what):
    """Raise DistributedError (naming that rank, its error and ``what`` this one was doing) when another
    rank has reported a failure."""
    c, status = comm(), _mpi().Status()
    if c.Iprobe(source=_mpi().ANY_SOURCE, tag=ERROR_TAG, status=status):
        message = c.recv(source=status.Get_source(), tag=ERROR_TAG)
        _state["heard"].add(status.Get_source())
        _broke()
        raise DistributedError(f"rank {status.Get_source()} of {c.Get_size()} stopped with {message} "
                               f"(rank {c.Get_rank()} was waiting in {what})")


def allreduce_(buffer, what="an allreduce"):
    """Sum the contiguous array ``buffer`` across ranks, in place (every rank gets the sum); returns it."""
    c = comm()
    if c.Get_size() == 1:
        return buffer
    _wait(c.Iallreduce(_mpi().IN_PLACE, buffer, op=_mpi().SUM), what)
    return buffer


def broadcast_(buffer, root=0, what="a broadcast"):
    """Overwrite the contiguous array ``buffer`` with root's, in place; returns it."""
    c = comm()
    if c.Get_size() > 1:
        _wait(c.Ibcast(buffer, root=root), what)
    return buffer


def fail(error):
    """Tell every other rank that this one stopped with ``error`` (they raise DistributedError)."""
    c = comm()
    if isinstance(error, DistributedError) or c.Get_size() == 1 or _state["broken"]:
        return  # the others know already (or there are none)
    message = f"{type(error).__name__}: {error}"
    for other in range(c.Get_size()):
        if other != c.Get_rank():
            c.send(message, dest=other, tag=ERROR_TAG)  # a short message: sent eagerly, never blocks long
            _state["told"].add(other)
    _broke()


@contextlib.contextmanager
def guard():
    """Run the block; if it raises, tell the other ranks (``fail``) before the error goes on, so that
    they stop with it rather than wait for this rank in their next collective."""
    try:
        yield
    except BaseException as error:
        fail(error)
        raise


def _broke():
    """A collective was left pending: MPI_Finalize could wait for it forever, so leave without it."""
    if not _state["broken"]:
        _state["broken"] = True
        atexit.register(_exit_without_finalize)


def _exit_without_finalize():
    """At exit (the traceback printed): tell the ranks whose error this one reported that it is done, wait
    (at most EXIT_WAIT) until the ranks this one told have reported too (mpiexec kills every rank when the
    first exits with an error, and they should have said why they stopped), then leave."""
    sys.stdout.flush()
    sys.stderr.flush()
    c, status = comm(), _mpi().Status()
    waiting, deadline = set(_state["told"]), time.monotonic() + EXIT_WAIT
    while True:
        while c.Iprobe(source=_mpi().ANY_SOURCE, tag=ERROR_TAG, status=status):  # errors not read yet
            c.recv(source=status.Get_source(), tag=ERROR_TAG)
            _state["heard"].add(status.Get_source())
        for other in sorted(_state["heard"]):
            c.send(None, dest=other, tag=DONE_TAG)
        _state["heard"] = set()
        while c.Iprobe(source=_mpi().ANY_SOURCE, tag=DONE_TAG, status=status):
            c.recv(source=status.Get_source(), tag=DONE_TAG)
            waiting.discard(status.Get_source())
        if not waiting or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    os._exit(1)


# -- parameters -----------------------------------------------------------------------------------------

def _describe(shared_variables):
    return [(v.name or f"#{k}", tuple(v.get_value(borrow=True).shape), str(v.get_value(borrow=True).dtype))
            for k, v in enumerate(shared_variables)]


def check_same_structure(shared_variables, what="parameters"):
    """Raise DistributedError on every rank unless every rank has the same number of ``shared_variables``
    with the same names, shapes and dtypes (a rank built another model, or with other settings)."""
    c = comm()
    if c.Get_size() == 1:
        return
    mine = _describe(shared_variables)
    allreduce_(np.zeros(1), what="the check of the model's structure")  # every rank got here, none failed
    every = c.allgather(mine)
    root = every[0]
    for r, theirs in enumerate(every):
        if theirs == root:
            continue
        if len(theirs) != len(root):
            detail = f"rank {r} has {len(theirs)} {what} and rank 0 has {len(root)}"
        else:
            k = next(k for k, (a, b) in enumerate(zip(theirs, root)) if a != b)
            detail = (f"{what[:-1]} {k} is {theirs[k][0]!r} of shape {theirs[k][1]} ({theirs[k][2]}) on rank {r} "
                      f"but {root[k][0]!r} of shape {root[k][1]} ({root[k][2]}) on rank 0")
        raise DistributedError(f"the ranks do not build the same model: {detail}; every rank must run the "
                               f"same script with the same settings")


def broadcast_parameters(shared_variables, root=0, check=True):
    """Give every rank root's values of ``shared_variables`` (parameters and optimizer state), after
    checking (``check``) that every rank has the same structure."""
    if check:
        check_same_structure(shared_variables)
    if size() == 1:
        return
    for v in shared_variables:
        value = np.array(v.get_value(borrow=True), order="C")  # a private contiguous copy (0-d too)
        broadcast_(value, root=root, what=f"the broadcast of {v.name or 'a shared variable'}")
        v.set_value(value, borrow=True)


def average_shared(shared_variables):
    """Replace the values of ``shared_variables`` on every rank by their mean across ranks, in one packed
    allreduce (a model's own state, such as batch normalization's running averages, which each rank
    updates from its share). Exact for running means (an exponential average is linear); running
    variances become the mean of the ranks' variances, without the spread between the ranks' means."""
    shared_variables = list(shared_variables)
    if size() == 1 or not shared_variables:
        return
    means = allreduce_arrays([v.get_value(borrow=True) for v in shared_variables])
    for v, mean in zip(shared_variables, means):
        v.set_value(mean, borrow=True)


def share(n, index=None, count=None):
    """The slice ``[start, stop)`` of ``n`` rows that rank ``index`` of ``count`` reads (default: this
    rank of all): contiguous, sizes differing by at most one."""
    index = rank() if index is None else index
    count = size() if count is None else count
    return slice(index * n // count, (index + 1) * n // count)


def average(values, weight=1.0):
    """The ``weight``-weighted mean across ranks of the numbers ``values`` (a metric measured on each
    rank's share: weight it by the share's size). Returns a list of floats, the same on every rank."""
    buffer = np.asarray([float(v) * weight for v in values] + [float(weight)], dtype="float64")
    allreduce_(buffer, what="the averaging of metrics")
    return [float(v / buffer[-1]) if buffer[-1] else float("nan") for v in buffer[:-1]]


def root_decides(value):
    """Root's ``value`` (a number) on every rank: decisions such as early stopping are taken once."""
    buffer = np.asarray([float(value)], dtype="float64")
    return float(broadcast_(buffer, what="root's decision")[0])


def broadcast_object(value, root=0, what="the broadcast of an object"):
    """Root's ``value`` (any picklable object, e.g. what root read from a checkpoint) on every rank. An
    allreduce first, which fails with root's error if root raised before it (mpi4py's pickled broadcast
    itself cannot be polled for errors)."""
    c = comm()
    if c.Get_size() == 1:
        return value
    allreduce_(np.zeros(1), what=what)  # every rank got here, none failed
    return c.bcast(value, root=root)


# -- gradients ------------------------------------------------------------------------------------------

def allreduce_arrays(arrays, weight=None, out=None):
    """The mean across ranks of the arrays (one per gradient), packed into one contiguous buffer (of their
    common dtype, at least float32) for a single allreduce; with ``weight`` (this rank's number of
    samples) the weighted mean, so that unequal shares average as one large batch would. Returns new
    arrays of the arrays' dtypes and shapes, or writes into ``out`` (arrays like them) and returns it."""
    arrays = [np.asarray(a) for a in arrays]
    total = sum(a.size for a in arrays)
    buffer = _buffer(total + 1, np.result_type(*[a.dtype for a in arrays], np.float32))
    w = 1.0 if weight is None else float(weight)
    at = 0
    for a in arrays:
        view = buffer[at:at + a.size].reshape(a.shape)
        if w == 0:
            view[...] = 0  # a rank without samples adds nothing (its mean gradient is 0/0)
        else:
            np.multiply(a, w, out=view)
        at += a.size
    buffer[-1] = w
    _allreduce_weighted(buffer)
    scale, at = 1 / buffer[-1], 0
    out = [np.empty_like(a) for a in arrays] if out is None else out
    for a, o in zip(arrays, out):  # unpacked: the buffer is the next step's
        np.multiply(buffer[at:at + a.size].reshape(a.shape), scale, out=o, dtype=a.dtype)
        at += a.size
    return out


_buffers = {}


def _buffer(size, dtype):
    """The packing buffer of this size and dtype, kept between steps: with a new buffer each step (new
    pages to fault in, new memory for MPI) packing and allreducing the MLP's 1.6 MB on 2 ranks took
    1.27 ms instead of 0.59 ms."""
    key = (size, np.dtype(dtype).str)
    if key not in _buffers:
        _buffers[key] = np.empty(size, dtype=dtype)
    return _buffers[key]


def packed_gradients(cost, params, weight):
    """Symbolic: this rank's gradients of ``cost`` with respect to ``params`` times ``weight`` (its
    number of samples, e.g. ``x.shape[0]``), flattened and joined into one vector with ``weight`` last.
    Compile it as an output of the training function; ``allreduce_packed`` sums the vector across ranks
    in place and ``unpacked_means`` reads the means out of it in the update function, so the packing is
    one pass of compiled code and no NumPy pass packs or unpacks (``allreduce_arrays`` makes two).
    ``GradientBuckets`` does the same in buckets sent while the backward pass runs."""
    return GradientBuckets(cost, params, weight, bucket_bytes=0).outputs[0]


def _pack(grads, weight, dtype):
    from . import tensor as T

    return T.concatenate([T.cast(g, dtype).flatten() for g in grads] + [weight.dimshuffle("x")])


def unpacked_means(summed, params):
    """Symbolic: the means of the gradients from ``summed`` (``packed_gradients``' vector after
    ``allreduce_packed``): views of its pieces shaped like ``params``, divided by the total weight."""
    from . import tensor as T

    means, at = [], 0
    for p in params:
        shape = p.get_value(borrow=True).shape
        size = int(np.prod(shape, dtype=np.int64))
        means.append(T.cast(summed[at:at + size].reshape(shape) / summed[-1], p.dtype))
        at += size
    return means


# -- buckets: gradients summed while the backward pass still runs ----------------------------------------

BUCKET_BYTES = 1 << 20  # bucket_bytes "auto" across hosts (docs/distributed.md, "Buckets")
SEND_NAP = 2e-4  # seconds the sender sleeps between two polls: it shares the rank's cores with the step
_hosts = {}  # communicator's handle -> whether its ranks span more than one host


def spans_hosts():
    """Whether the ranks run on more than one host (MPI's shared-memory split of the communicator). A
    collective: every rank calls it at the same point (the Trainer does, when it builds its graphs)."""
    c = comm()
    if c.Get_size() == 1:
        return False
    key = c.py2f()
    if key not in _hosts:
        allreduce_(np.zeros(1), what="the count of hosts")  # every rank got here, none failed
        local = c.Split_type(_mpi().COMM_TYPE_SHARED)
        _hosts[key] = local.Get_size() < c.Get_size()
        local.Free()
    return _hosts[key]


def bucket_size(setting=None):
    """The size in bytes of the buckets the gradients are sent in while the backward pass runs, or 0 for
    one allreduce after it: ``setting``, else ``config.bucket_bytes`` (ARIGNOTE_BUCKET_BYTES). "auto":
    BUCKET_BYTES when the ranks span hosts, else 0. On one host the allreduce is a copy through shared
    memory that needs the same cores and memory bandwidth as the step, so it has nothing to overlap
    with; across hosts the link does the work while the cores compute."""
    from .core.config import _check_bucket_bytes, config

    setting = _check_bucket_bytes(config.bucket_bytes if setting is None else setting)
    if setting == "auto":
        return BUCKET_BYTES if spans_hosts() else 0
    return setting


class GradientBuckets:
    """This rank's gradients of ``cost`` with respect to ``params``, times ``weight`` (its number of
    samples), packed for the allreduce: in one vector (``bucket_bytes`` 0, or all of them in one bucket)
    summed after the training call, or in buckets of about ``bucket_bytes`` each (default:
    ``bucket_size()``), each handed to a thread that starts summing it across ranks as soon as the
    compiled backward pass has computed it, while the pass goes on (the gradients a pass computes
    first, a model's last layers, go first; a bucket closes once it holds ``bucket_bytes``).

    - ``outputs``: outputs of the training function: one per bucket, in the order they are computed;
    - ``summed``: the symbolic inputs of the update function (each bucket's vector, summed over ranks);
    - ``means``: the mean gradients, one per parameter in ``params``' order, read from ``summed``;
    - ``exchange(values, weight)``: after a training call given ``outputs``' values and this rank's
      weight, the arrays to pass for ``summed`` (waiting for the buckets still on their way).

    Each bucket is a vector of its parameters' gradients flattened, with the weight last."""

    def __init__(self, cost, params, weight, bucket_bytes=None):
        from . import tensor as T
        from .core.grad import grad

        params = list(params)
        self.bucket_bytes = bucket_size(bucket_bytes)
        dtype = np.result_type(*[p.dtype for p in params], np.float32).name
        weight = T.cast(weight, dtype)
        grads = grad(cost * weight, params)  # the weight multiplies the first node of the backward pass only
        order = list(range(len(params)))
        if self.bucket_bytes:  # ready first: the gradient that needs the fewest nodes of the backward pass
            needed = _nodes_needed(grads)
            order.sort(key=lambda k: needed[k])
        self.groups, group, size = [], [], 0
        for k in order:
            group.append(k)
            size += params[k].get_value(borrow=True).size * np.dtype(dtype).itemsize
            if self.bucket_bytes and size >= self.bucket_bytes:
                self.groups.append(group)
                group, size = [], 0
        if group:
            self.groups.append(group)
        vectors = [_pack([grads[k] for k in g], weight, dtype) for g in self.groups]
        self.sent = len(self.groups) > 1  # one bucket would be ready when the pass ends: allreduced after it
        if self.sent:
            _sender.prepare()
        self.outputs = [SendBucket(i, len(vectors))(v) for i, v in enumerate(vectors)] if self.sent else vectors
        self.summed = [v.type(f"summed_gradients{i}") for i, v in enumerate(vectors)]
        means = {}
        for g, summed in zip(self.groups, self.summed):
            means.update(zip(g, unpacked_means(summed, [params[k] for k in g])))
        self.means = [means[k] for k in range(len(params))]

    def exchange(self, values, weight):
        """The buckets summed over the ranks, given this rank's ``values`` of ``outputs`` and ``weight``."""
        if not self.sent:
            return [allreduce_packed(values[0], weight)]
        return _sender.collect(len(self.outputs))


def _nodes_needed(outputs):
    """How many Apply nodes each of ``outputs`` needs, itself included: one walk of the graph, each node's
    ancestors a bitset (a walk per output was quadratic in a deep model's size)."""
    from .core.graph import toposort

    below = {}
    for position, node in enumerate(toposort(outputs)):
        bits = 1 << position
        for var in node.inputs:
            if var.owner is not None:
                bits |= below[id(var.owner)]
        below[id(node)] = bits
    return [below[id(o.owner)].bit_count() if o.owner is not None else 0 for o in outputs]


class SendBucket(Op):
    """Hands its input, bucket ``index`` of ``count`` (gradients packed with the weight last), to the
    sender thread, which starts its allreduce at once while the compiled code goes on; its output, the
    bucket's number, is an output of the training function so that the node runs. A Python op: the C
    backend calls it back from inside the program, numba between two compiled segments, and the
    reference in its turn; its perform copies the bucket (MPI sums the copy in place)."""

    __props__ = ("index", "count")

    def __init__(self, index, count):
        self.index, self.count = index, count

    def make_node(self, bucket):
        from .core.types import TensorType

        bucket = as_tensor_variable(bucket)
        return Apply(self, [bucket], [TensorType("int64", ())()])

    def perform(self, node, inputs, output_storage):
        buffer = np.array(inputs[0])  # private and writeable: summed in place after perform returns
        if buffer[-1] == 0:
            buffer[...] = 0  # a rank without samples adds nothing (its gradients are 0/0)
        _sender.hand(buffer, self.index, self.count)
        output_storage[0][0] = np.array(self.index, dtype="int64")

    def grad(self, inputs, outputs, output_grads):
        raise NotImplementedError("SendBucket has no gradient: it ends the backward pass")

    def infer_shape(self, node, shapes):
        return [()]


class _Sender:
    """The thread that sums the buckets across ranks while the step computes. ``hand`` (from SendBucket's
    perform) queues a bucket; the thread starts its allreduce at once, on a duplicate of the communicator
    (so that a step's buckets never meet another collective), in the order they come, which is the same
    on every rank; it then polls the pending ones, napping SEND_NAP between polls while the step computes
    (without naps once the step waits for them), and looks for another rank's error meanwhile.
    ``collect(count)`` waits for the step's ``count`` buckets and returns them."""

    def __init__(self):
        self.ready = threading.Condition()
        self.queued, self.summed, self.error, self.thread, self.comm, self.parent = [], [], None, None, None, None
        self.collecting = False  # the step waits for the sums: the thread polls without napping

    def prepare(self):
        """Called by every rank at the same point (a collective): the communicator of the buckets, a
        duplicate of ``comm()`` (made again after ``set_comm`` chose another)."""
        if self.comm is None or self.parent != comm().py2f():
            allreduce_(np.zeros(1), what="the setting up of the gradients' buckets")  # none failed before
            self.comm, self.parent = comm().Dup(), comm().py2f()

    def hand(self, buffer, index, count):
        with self.ready:
            if self.error is not None:
                return  # collect raises it
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="arignote-sender", daemon=True)
                self.thread.start()
            self.queued.append((buffer, index, count, time.perf_counter()))
            self.ready.notify_all()

    def _run(self):
        pending = []  # (buffer, request, handed at, what)
        try:
            while not _state["broken"]:
                with self.ready:
                    while not self.queued and not pending:
                        self.ready.wait()
                    queued, self.queued = self.queued, []
                for buffer, index, count, handed in queued:
                    what = f"the allreduce of the gradients (bucket {index + 1} of {count})"
                    request = self.comm.Iallreduce(_mpi().IN_PLACE, buffer, op=_mpi().SUM) \
                        if self.comm.Get_size() > 1 else _mpi().REQUEST_NULL
                    pending.append((buffer, request, handed, what))
                while pending and pending[0][1].Test():  # done in order: the sums go out in order
                    buffer, _, handed, _ = pending.pop(0)
                    with self.ready:
                        stats.in_flight += time.perf_counter() - handed
                        self.summed.append(buffer)
                        self.ready.notify_all()
                if pending:
                    _raise_if_another_rank_failed(pending[0][3])
                    # nap while the step computes; once it waits in collect, poll without napping
                    time.sleep(0 if self.collecting else SEND_NAP)
        except BaseException as error:
            with self.ready:
                self.error = error
                self.ready.notify_all()

    def collect(self, count):
        start = time.perf_counter()
        with self.ready:
            self.collecting = True
            while len(self.summed) < count and self.error is None:
                self.ready.wait(0.1)
                if _state["broken"] and self.error is None:
                    self.error = DistributedError("the step's gradients were not summed: this rank stopped")
            self.collecting = False
            if self.error is not None:
                raise self.error
            summed, self.summed = self.summed, []
        return _counted(summed, time.perf_counter() - start)


_sender = _Sender()


def allreduce_packed(packed, weight):
    """Sum ``packed`` (the value of ``packed_gradients``: contiguous, writeable) across ranks, in place,
    and return it. A rank with ``weight`` 0 adds zeros (its gradients of an empty share are 0/0)."""
    if weight == 0:
        packed[...] = 0
    return _allreduce_weighted(packed)


def _allreduce_weighted(buffer):
    """Sum the packed gradients times weights, the weight last, in place (counted in ``stats``)."""
    start = time.perf_counter()
    allreduce_(buffer, what="the allreduce of the gradients")
    waited = time.perf_counter() - start
    stats.in_flight += waited
    return _counted([buffer], waited)[0]


def _counted(summed, waited):
    """``summed`` (packed gradients summed over the ranks, the total weight last), counted in ``stats``
    as ``waited`` seconds of the step; DistributedError when no rank had a sample."""
    stats.seconds += waited
    stats.calls += len(summed)
    stats.bytes += sum(b.nbytes for b in summed)
    if summed[0][-1] == 0:
        raise DistributedError("no rank had any sample in this step: the gradients are undefined")
    return summed


class AllreduceMean(Op):
    """The (weighted) mean across ranks of its gradient inputs, in one packed allreduce; the last input
    is this rank's weight (a scalar). A Python op: every backend calls it back between compiled parts,
    so the gradients before it and the update after it are compiled as usual."""

    __props__ = ()

    def make_node(self, *inputs):
        inputs = [as_tensor_variable(i) for i in inputs]
        return Apply(self, inputs, [i.type() for i in inputs[:-1]])

    def perform(self, node, inputs, output_storage):
        for cell, value in zip(output_storage, allreduce_arrays(inputs[:-1], weight=inputs[-1])):
            cell[0] = value

    def grad(self, inputs, outputs, output_grads):
        raise NotImplementedError("AllreduceMean has no gradient: take gradients before the allreduce")

    def infer_shape(self, node, shapes):
        return shapes[:-1]


def allreduce_gradients(grads, weight=None):
    """Symbolic gradients averaged across ranks: pass what ``grad`` gave, compile the update with the
    result (``optimizer.updates(grads=..., params=...)``). ``weight``: this rank's number of samples
    (``x.shape[0]``), for the mean over all samples when shares differ in size; default: equal weights."""
    from . import tensor as T

    grads = list(grads)
    weight = T.constant(1.0) if weight is None else T.cast(weight, "float64")
    outputs = AllreduceMean()(*grads, weight)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
