"""The training loop: minibatch SGD-style training of a layer model, with validation, early stopping,
a progress bar and a history.

    trainer = Trainer(model, loss=categorical_crossentropy, optimizer=Adam(0.01))
    history = trainer.fit(data.train, valid=data.valid, epochs=30, batch_size=32, patience=5)
    loss, accuracy = trainer.evaluate(data.test)

Data sets are ``(x, y)`` pairs, either of NumPy arrays (each minibatch is passed to the compiled
function) or of symbolic tensors computed from shared variables, such as ``as_shared(arrays)`` gives:
then the training function takes only the minibatch's index and slices the data with ``givens``, the
Theano way, so the data never travels between calls (with ``shuffle=True`` it indexes the data with a
shared permutation that is redrawn every epoch).

Checkpoints: ``fit(..., checkpoint="run.npz")`` writes, after every epoch (with ``checkpoint_best_only``,
after each that improved ``monitor``), one ``.npz`` file at exactly that path, atomically (a temporary
file in the same folder, then ``os.replace``); ``fit(..., checkpoint="run.npz", resume=True)`` goes on
from it. Its keys (``np.load`` reads them):

- ``model/000_dense0.W``, ...: the values of ``model.state`` (the keys of ``model.save``, prefixed);
- ``optimizer/000_t``, ...: the values of ``optimizer.state`` (step counter, moments, velocities);
- ``random/000_...``: the states of the model's random streams (Dropout's masks), for an exact resume;
- ``epoch``: the number of epochs done; ``history/loss``, ``history/val_loss``, ... (one entry per epoch
  done, as in ``History``);
- ``best_epoch`` (-1: none), ``best`` (the best ``monitor`` value, NaN: none), ``waited`` (epochs since
  it improved), ``stopped_early``: the early-stopping bookkeeping;
- ``best_model/000_dense0.W``, ...: the best epoch's ``model.state``, present only under ``patience``
  with ``restore_best`` when the best epoch is not the last one done.
"""

import functools
import math
import os
import secrets
import sys
import time

import numpy as np

from .. import config, function, grad, shared
from .. import tensor as T
from ..core.graph import Variable
from ..core.types import TensorType
from .layers import _keys
from .losses import categorical_crossentropy
from .optimizers import SGD


class History:
    """What ``fit`` measured, epoch by epoch: ``history['loss']``, ``['accuracy']``, ``['val_loss']``,
    ``['val_accuracy']``, ``['seconds']`` (lists, one entry per epoch), ``best_epoch`` (0-based, the epoch
    whose parameters the model ends with under early stopping) and ``stopped_early``."""

    def __init__(self):
        self.metrics = {}
        self.best_epoch = None
        self.stopped_early = False
        self.compile_seconds = 0.0

    def append(self, **values):
        for key, value in values.items():
            self.metrics.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.metrics[key]

    def __contains__(self, key):
        return key in self.metrics

    def __len__(self):
        return len(self.metrics.get("loss", []))

    def keys(self):
        return self.metrics.keys()

    @property
    def seconds_per_epoch(self):
        """The median time of an epoch: the first one also pays for compiling what a backend compiles
        at a function's first call (numba: machine code for the inputs' types), which a mean would
        spread over every epoch (the demo on numba: 8.8 s, then 16 ms an epoch, read 341 ms)."""
        seconds = self.metrics.get("seconds", [])
        return float(np.median(seconds)) if seconds else float("nan")

    def plot(self, path=None, keys=None):
        """Plot the losses and the accuracies against the epoch with matplotlib (``pip install
        matplotlib``, or ``pip install 'arignote[plot]'``); save the figure to ``path`` when given.
        Returns the figure."""
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install matplotlib "
                              "(or pip install 'arignote[plot]')") from None
        keys = keys or [k for k in ("loss", "val_loss", "accuracy", "val_accuracy") if k in self.metrics]
        groups = [[k for k in keys if "loss" in k], [k for k in keys if "loss" not in k]]
        groups = [g for g in groups if g]
        figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.5), squeeze=False)
        for ax, group in zip(axes[0], groups):
            for key in group:
                ax.plot(range(1, len(self.metrics[key]) + 1), self.metrics[key], label=key)
            ax.set_xlabel("epoch")
            ax.legend()
        figure.tight_layout()
        if path is not None:
            figure.savefig(path)
        return figure

    def __repr__(self):
        last = {k: v[-1] for k, v in self.metrics.items() if v}
        return f"History({len(self)} epochs, last: {last})"


def _symbolic_like(data, name):
    dtype = data.dtype if isinstance(data, Variable) else np.asarray(data).dtype.name
    return TensorType(dtype, (False,) * data.ndim)(name)


def _is_symbolic(data):
    x, y = data
    if isinstance(x, Variable) != isinstance(y, Variable):
        raise TypeError("a data set is an (x, y) pair of two arrays or of two symbolic tensors (shared "
                        f"variables or expressions of them, as as_shared() gives), got {type(x).__name__} "
                        f"and {type(y).__name__}")
    return isinstance(x, Variable)


def _prepare(data):
    """Arrays as the functions take them: floats in floatX (as the tutorials load their data)."""
    if _is_symbolic(data):
        return data
    return tuple(np.asarray(a, dtype=config.floatX) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
                 for a in data)


def _length(array):
    if isinstance(array, Variable):
        return int(function([], array.shape[0])())
    return len(array)


def _progress_bar(total, enabled, initial=0):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="epoch", desc="training", dynamic_ncols=True)


# -- checkpoints ------------------------------------------------------------------------------------

def _named(prefix, variables):
    """``{"prefix/000_name": variable}`` in the order of ``variables``."""
    variables = list(variables)
    return {f"{prefix}/{key}": v for key, v in zip(_keys(variables), variables)}


def _write_checkpoint(path, arrays):
    """Write ``arrays`` to the ``.npz`` file ``path`` atomically: a crash leaves the previous file whole."""
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # permissions as umask says
    try:
        with os.fdopen(handle, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _read_checkpoint(path):
    """Every array of the checkpoint ``path``, as a dict."""
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _restore(data, path, variables):
    """Check that ``data`` (a checkpoint) holds exactly the entries of ``variables`` under their
    prefixes, with their shapes, then set the variables' values; a ValueError names the first mismatch."""
    prefixes = {key.split("/")[0] for key in variables}
    extra = [key for key in data if key.split("/")[0] in prefixes and key not in variables]
    for key, v in variables.items():
        shape = v.get_value(borrow=True).shape
        if key not in data:
            raise ValueError(f"{path}: the checkpoint has no entry {key!r} (shape {shape}): it was written "
                             f"for another model or optimizer (its entries: {', '.join(sorted(data))})")
        if data[key].shape != shape:
            raise ValueError(f"{path}: the checkpoint's entry {key!r} has shape {data[key].shape}, but this "
                             f"model's or optimizer's has shape {shape}")
    if extra:
        raise ValueError(f"{path}: the checkpoint's entry {extra[0]!r} is not in this model or optimizer: "
                         f"it was written for another one")
    for key, v in variables.items():
        v.set_value(np.asarray(data[key], dtype=v.get_value(borrow=True).dtype))


class Trainer:
    """Compiles and runs the training, evaluation and prediction functions of ``model`` (a layer).

    ``loss(output, y)`` is a symbolic scalar (default: categorical cross-entropy on integer labels);
    ``penalty`` an optional symbolic term added to the training cost (``1e-4 * l2(weights(model))``);
    ``optimizer`` one of ``layers.optimizers`` (default SGD(0.1)). Accuracy is reported when the model's
    output is a matrix of class scores and the labels are integers. Every function is compiled for
    ``backend`` (default: the default backend).

    ``distributed=True``: data parallelism over MPI (``mpiexec -n 4 python train.py``; needs
    ``pip install 'arignote[mpi]'``): the parameters and optimizer state start as rank 0's (after checking
    that every rank built the same model), ``batch_size`` is the batch of all ranks together, of which
    each rank reads its own share, the gradients are averaged across ranks before every update, the
    metrics are averaged across ranks, rank 0 decides early stopping and alone shows progress and writes
    (and on resume reads) checkpoints. A rank that raises makes the others stop with its error. See
    ``arignote.distributed``.
    """

    def __init__(self, model, loss=categorical_crossentropy, optimizer=None, penalty=None, backend=None,
                 distributed=False):
        self.model, self.loss, self.penalty, self.backend = model, loss, penalty, backend
        self.optimizer = optimizer if optimizer is not None else SGD(0.1)
        self.distributed = None
        if distributed:
            from .. import distributed as dist  # needs mpi4py: imported only when asked for

            self.distributed = dist
        self._graphs = None
        self._functions = {}
        self._shares = {}  # distributed: each data set's share of this rank (the data set kept alive with it)

    # -- graphs ---------------------------------------------------------------------------------

    def _build(self, data):
        if self._graphs is not None:
            return self._graphs
        x, y = _symbolic_like(data[0], "x"), _symbolic_like(data[1], "y")
        train_out = self.model.output(x, training=True)
        model_updates = list(self.model.updates)
        cost = self.loss(train_out, y)
        if self.penalty is not None:
            cost = cost + self.penalty
        grads, apply, buckets = [], None, None
        if self.distributed is not None:
            # two functions: this rank's gradients times its rows, packed (and the model's own updates), then,
            # given them summed over the ranks, the optimizer's update (0.35 ms a step faster for the
            # benchmark MLP than one function around allreduce_gradients' Python op, which splits the
            # compiled code; packing in the graph saves NumPy's passes over the gradients). Across hosts
            # the packed buckets are sent while the backward pass runs (dist.GradientBuckets).
            dist, params = self.distributed, self.model.params
            buckets = dist.GradientBuckets(cost, params, x.shape[0])
            grads, updates = buckets.outputs, model_updates
            apply = function(buckets.summed, [], updates=self.optimizer.updates(
                grads=buckets.means, params=params), backend=self.backend, name="apply_gradients")
        else:
            updates = self.optimizer.updates(cost, self.model.params) + model_updates
        eval_out = self.model.output(x, training=False)
        classify = eval_out.ndim == 2 and y.ndim == 1 and y.dtype.startswith(("int", "uint"))
        train_outputs, eval_outputs = [cost], [self.loss(eval_out, y)]
        if classify:
            train_outputs.append(T.mean(T.eq(T.argmax(train_out, axis=1), y)))
            eval_outputs.append(T.mean(T.eq(T.argmax(eval_out, axis=1), y)))
        self._graphs = dict(x=x, y=y, train=train_outputs, grads=grads, apply=apply, buckets=buckets,
                            updates=updates, eval=eval_outputs, output=eval_out, classify=classify)
        return self._graphs

    def _function(self, key, make):
        if key not in self._functions:
            self._functions[key] = make()
        return self._functions[key]

    def _train_function(self, data, batch_size, shuffle):
        g = self._build(data)
        if not _is_symbolic(data):
            return self._function("train-arrays", lambda: self._step(function(
                [g["x"], g["y"]], g["train"] + g["grads"], updates=g["updates"], backend=self.backend,
                name="train")))
        data_x, data_y = data
        key = ("train-givens", id(data_x), id(data_y), batch_size, shuffle)

        def make():
            index = T.lscalar("index")
            batch = slice(index * batch_size, (index + 1) * batch_size)
            if self.distributed is not None:  # this rank's share of the batch: rows [start, stop)
                start, stop = T.lscalar("start"), T.lscalar("stop")
                index, batch = [start, stop], slice(start, stop)
            if shuffle:
                order = shared(np.arange(_length(data_x), dtype="int64"), name="order")
                givens = {g["x"]: data_x[order[batch]], g["y"]: data_y[order[batch]]}
            else:
                order, givens = None, {g["x"]: data_x[batch], g["y"]: data_y[batch]}
            train = self._step(function(index if isinstance(index, list) else [index], g["train"] + g["grads"],
                                        updates=g["updates"], givens=givens, backend=self.backend, name="train"))
            train.order = order
            return train

        return self._function(key, make)

    def _step(self, train):
        """Distributed: the training step as a callable ``step(*inputs, rows=)``: ``train`` gives this rank's
        metrics and gradients, their mean over every rank's rows goes to the compiled update."""
        if self.distributed is None:
            return train
        return _DistributedStep(train, self._graphs["apply"], len(self._graphs["train"]),
                                self._graphs["buckets"])

    @property
    def backend_name(self):
        """The name of the backend that runs the compiled functions."""
        for f in self._functions.values():
            return f.backend.name
        from ..core.plugins import registry
        return registry.get(self.backend).name

    # -- running --------------------------------------------------------------------------------

    def fit(self, train, valid=None, epochs=10, batch_size=32, patience=None, monitor="val_loss",
            restore_best=True, shuffle=True, seed=0, progress=True, out=None, checkpoint=None,
            checkpoint_best_only=False, resume=False):
        """Train for ``epochs`` passes over ``train`` in minibatches of ``batch_size``; after each, evaluate
        on ``valid`` when given. With ``patience``, stop when ``monitor`` (``val_loss``, ``val_accuracy``,
        ``loss`` or ``accuracy``) has not improved for ``patience`` epochs, and with ``restore_best`` put
        back the parameters of the best epoch. ``progress``: a tqdm bar (plain lines when tqdm is not
        installed, to ``out``, default stdout). Returns a ``History``.

        ``checkpoint``: a path; after every epoch (with ``checkpoint_best_only``, after each that improved
        ``monitor``) the model's and optimizer's state, the epochs done, the history and the early-stopping
        bookkeeping are written there atomically (keys: this module's docstring). ``resume=True``: if that
        file exists, start from it and go on with its next epoch (``epochs`` counts them all: 4 done and
        ``epochs=6`` train 2 more, shuffled as an uninterrupted run would be); pass the same data,
        ``batch_size``, ``seed`` and ``shuffle``. A checkpoint of another model or optimizer raises a
        ValueError naming the entry that differs. ``Trainer.load_checkpoint`` reads one for inference.

        Distributed (``Trainer(distributed=True)``): every rank passes the whole data set and the same
        ``seed``; each reads its own share of every batch (``batch_size`` is the batch of all ranks). Rank 0
        alone writes the checkpoint and, on resume, reads it and gives every rank its state."""
        if (resume or checkpoint_best_only) and checkpoint is None:
            raise ValueError("resume and checkpoint_best_only need checkpoint=, the checkpoint's path")
        run = functools.partial(self._fit, train, valid, epochs, batch_size, patience, monitor, restore_best,
                                shuffle, seed, out=out, checkpoint=checkpoint, best_only=checkpoint_best_only,
                                resume=resume)
        if self.distributed is None:
            return run(progress=progress)
        with self.distributed.guard():  # a rank that raises tells the others, which stop with its error
            return run(progress=progress and self.distributed.is_root())

    @staticmethod
    def load_checkpoint(path, model, optimizer=None):
        """Put the model state (and, given ``optimizer``, its state) that ``fit(checkpoint=path)`` wrote
        back into ``model``, checking names and shapes, e.g. for inference. Returns the epochs done."""
        data = _read_checkpoint(path)
        _restore(data, path, {**_named("model", model.state),
                              **(_named("optimizer", optimizer.state) if optimizer is not None else {})})
        return int(data["epoch"])

    def _checkpoint_variables(self):
        return {**_named("model", self.model.state), **_named("optimizer", self.optimizer.state),
                **_named("random", self.model.random_states)}

    def _resume(self, path, keep_best):
        """Rank 0 (or the only process): load the checkpoint ``path`` into the model, optimizer and random
        streams; returns its bookkeeping (None when there is no such file)."""
        if not os.path.exists(path):
            return None
        data = _read_checkpoint(path)
        _restore(data, path, self._checkpoint_variables())
        done, best_epoch = int(data["epoch"]), int(data["best_epoch"])
        best_state = None
        if keep_best and best_epoch >= 0:  # the best epoch's state, or the last one's if that is the best
            best = _named("best_model", self.model.state)
            if all(key in data for key in best):
                best_state = [data[key] for key in best]
            elif best_epoch == done - 1:
                best_state = self.model.get_values()
        return dict(done=done, best_epoch=best_epoch if best_epoch >= 0 else None,
                    best=None if np.isnan(data["best"]) else float(data["best"]), waited=int(data["waited"]),
                    stopped_early=bool(data["stopped_early"]), best_state=best_state,
                    metrics={key.split("/", 1)[1]: [float(v) for v in data[key]] for key in data
                             if key.startswith("history/")})

    def _checkpoint_arrays(self, done, history, best, waited, best_state):
        arrays = {key: v.get_value() for key, v in self._checkpoint_variables().items()}
        arrays.update({f"history/{key}": np.asarray(values, dtype="float64")
                       for key, values in history.metrics.items()})
        arrays.update(epoch=np.int64(done), best_epoch=np.int64(-1 if history.best_epoch is None else
                                                                history.best_epoch),
                      best=np.float64("nan" if best is None else best), waited=np.int64(waited),
                      stopped_early=np.bool_(history.stopped_early))
        if best_state is not None and history.best_epoch != done - 1:
            arrays.update(zip(_named("best_model", self.model.state), best_state))
        return arrays

    def _fit(self, train, valid, epochs, batch_size, patience, monitor, restore_best, shuffle, seed, progress,
             out, checkpoint, best_only, resume):
        dist = self.distributed
        root = dist is None or dist.is_root()
        history = History()
        train, valid = _prepare(train), None if valid is None else _prepare(valid)
        start = time.perf_counter()
        train_fn = self._train_function(train, batch_size, shuffle)
        if valid is not None:
            self._eval_function(self._share(valid))
        history.compile_seconds = time.perf_counter() - start
        keep_best = patience is not None and restore_best
        resumed = self._resume(checkpoint, keep_best) if resume and root else None  # before the broadcast
        extra_state = list(getattr(self.model, "extra_state", []))  # e.g. batch normalization's averages
        if dist is not None:  # every rank starts from rank 0's parameters, model state and optimizer state
            if resume:  # and from what rank 0 read: the bookkeeping, the random streams
                resumed = dist.broadcast_object(resumed, what="the broadcast of the checkpoint's bookkeeping")
            dist.broadcast_parameters(list(self.model.params) + extra_state + list(self.optimizer.state)
                                      + (self.model.random_states if resume else []))
        done, best, best_state, waited = 0, None, None, 0
        if resumed is not None:
            done, best, best_state, waited = (resumed[k] for k in ("done", "best", "best_state", "waited"))
            history.metrics, history.best_epoch = resumed["metrics"], resumed["best_epoch"]
            history.stopped_early = resumed["stopped_early"]
        n = _length(train[0])
        batches = math.ceil(n / batch_size)
        rng = np.random.default_rng(seed)
        for _ in range(done if shuffle else 0):  # every epoch's order as in an uninterrupted run
            rng.permutation(n)
        symbolic = _is_symbolic(train)
        larger_is_better = "accuracy" in monitor
        bar = _progress_bar(epochs, progress, initial=min(done, epochs))
        out = out or sys.stdout
        try:
            for epoch in range(done, done if history.stopped_early else epochs):  # stopped early: it is over
                start = time.perf_counter()
                order = rng.permutation(n) if shuffle else None
                if symbolic and shuffle:
                    train_fn.order.set_value(order)
                totals, seen = np.zeros(len(self._graphs["train"])), 0
                for i in range(batches):
                    first, size = i * batch_size, min(batch_size, n - i * batch_size)
                    if dist is not None:  # this rank's rows of the batch
                        share = dist.share(size)
                        first, size = first + share.start, share.stop - share.start
                    if symbolic:
                        values = train_fn(first, first + size, rows=size) if dist is not None else train_fn(i)
                    else:
                        rows = order[first:first + size] if shuffle else slice(first, first + size)
                        arrays = (train[0][rows], train[1][rows])
                        values = train_fn(*arrays, rows=size) if dist is not None else train_fn(*arrays)
                    if size:
                        totals += np.asarray([float(v) for v in values]) * size
                        seen += size
                if dist is not None:  # the epoch's metrics and the model's own state: their means over the ranks
                    totals = dist.average(totals / max(seen, 1), weight=seen)
                    dist.average_shared(extra_state)
                else:
                    totals /= n
                record = {"loss": totals[0]}
                if self._graphs["classify"]:
                    record["accuracy"] = totals[1]
                if valid is not None:
                    values = self.evaluate(valid)
                    record["val_loss"] = values[0]
                    if self._graphs["classify"]:
                        record["val_accuracy"] = values[1]
                record["seconds"] = time.perf_counter() - start
                history.append(**record)
                if bar is not None:
                    bar.set_postfix({k.replace("accuracy", "acc"): f"{v:.4f}" for k, v in record.items()
                                     if k != "seconds"}, refresh=False)
                    bar.update(1)
                elif progress:
                    out.write(f"epoch {epoch + 1}/{epochs}  " + "  ".join(
                        f"{k} {v:.4f}" for k, v in record.items() if k != "seconds") + "\n")
                if patience is not None or best_only:
                    if monitor not in record:
                        who = "early stopping" if patience is not None else "checkpoint_best_only"
                        raise ValueError(f"{who} monitors {monitor!r}, which is not measured (measured: "
                                         f"{', '.join(record)}); pass valid= or another monitor")
                    value = record[monitor]
                    improved = best is None or (value > best if larger_is_better else value < best)
                    if dist is not None:  # rank 0 decides, every rank follows
                        improved = bool(dist.root_decides(improved))
                    if improved:
                        best, waited, history.best_epoch = value, 0, epoch
                        best_state = self.model.get_values() if keep_best else None
                    else:
                        waited += 1
                        history.stopped_early = patience is not None and waited >= patience
                if checkpoint is not None and root and (not best_only or improved):
                    _write_checkpoint(checkpoint, self._checkpoint_arrays(epoch + 1, history, best, waited,
                                                                          best_state))
                if history.stopped_early:
                    break
        finally:
            if bar is not None:
                bar.close()
        if best_state is not None:
            self.model.set_values(best_state)
        return history

    def _share(self, data):
        """This rank's rows of ``data`` (all of them when not distributed)."""
        if self.distributed is None:
            return data
        key = (id(data[0]), id(data[1]))
        if not _is_symbolic(data) or key not in self._shares:
            rows = self.distributed.share(_length(data[0]))
            self._shares[key] = (data, tuple(a[rows] for a in data))  # symbolic: one expression, one function
        return self._shares[key][1]

    def _eval_function(self, data):
        g = self._build(data)
        if not _is_symbolic(data):
            return self._function("eval-arrays", lambda: function(
                [g["x"], g["y"]], g["eval"], backend=self.backend, name="evaluate"))
        return self._function(("eval-givens", id(data[0]), id(data[1])), lambda: function(
            [], g["eval"], givens={g["x"]: data[0], g["y"]: data[1]}, backend=self.backend, name="evaluate"))

    def evaluate(self, data):
        """The loss (without the penalty) and, for classifiers, the accuracy on ``data``, evaluation mode.
        Distributed, each rank evaluates its share and every rank gets the mean over all of ``data``."""
        if self.distributed is None:
            return self._evaluate(_prepare(data))
        with self.distributed.guard():  # each rank its share; every rank gets the mean over all of data
            share = self._share(_prepare(data))
            return tuple(self.distributed.average(self._evaluate(share), weight=_length(share[0])))

    def _evaluate(self, data):
        f = self._eval_function(data)
        values = f() if _is_symbolic(data) else f(*data)
        return tuple(float(v) for v in values)

    def predict(self, x):
        """The model's output (evaluation mode) for the array ``x``."""
        x = _prepare((x, x))[0]
        g = self._build((x, np.zeros(1, dtype="int32")))
        f = self._function("predict", lambda: function([g["x"]], g["output"], backend=self.backend,
                                                        name="predict"))
        return f(x)


class _DistributedStep:
    """One data-parallel training step: ``train`` (compiled) gives this rank's metrics and its gradients
    times its ``rows``, packed (``dist.GradientBuckets``: one vector, or buckets handed over while the
    backward pass ran); summed over the ranks, they go to ``apply`` (compiled: the optimizer's update of
    the means). ``backend`` and ``order`` as the plain training function's."""

    def __init__(self, train, apply, metrics, buckets):
        self.train, self.apply, self.metrics, self.buckets = train, apply, metrics, buckets
        self.backend, self.order = train.backend, None

    def __call__(self, *inputs, rows):
        values = self.train(*inputs)
        self.apply(*self.buckets.exchange(values[self.metrics:], rows))
        return values[:self.metrics]


def fit(model, train, valid=None, loss=categorical_crossentropy, optimizer=None, penalty=None, backend=None,
        distributed=False, **options):
    """``Trainer(model, loss, optimizer, penalty, backend, distributed).fit(train, valid, **options)``; the
    trainer is ``history.trainer``."""
    trainer = Trainer(model, loss=loss, optimizer=optimizer, penalty=penalty, backend=backend,
                      distributed=distributed)
    history = trainer.fit(train, valid, **options)
    history.trainer = trainer
    return history
