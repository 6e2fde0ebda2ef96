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
"""

import math
import sys
import time

import numpy as np

from .. import config, function, grad, shared
from .. import tensor as T
from ..core.graph import Variable
from ..core.types import TensorType
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
        seconds = self.metrics.get("seconds", [])
        return sum(seconds) / len(seconds) if seconds else float("nan")

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


def _progress_bar(total, enabled):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="epoch", desc="training", dynamic_ncols=True)


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
    metrics are averaged across ranks, rank 0 decides early stopping and alone shows progress. A rank
    that raises makes the others stop with its error. See ``arignote.distributed``.
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
        grads, apply = [], None
        if self.distributed is not None:
            # two functions: this rank's gradients (and the model's own updates), then, given their mean
            # over every rank's samples, the optimizer's update (0.35 ms a step faster for the benchmark
            # MLP than one function around allreduce_gradients' Python op, which splits the compiled code)
            grads = grad(cost, self.model.params)
            means = [p.type(f"mean_grad_{p.name}") for p in self.model.params]
            updates = model_updates
            apply = function(means, [], updates=self.optimizer.updates(grads=means, params=self.model.params),
                             backend=self.backend, name="apply_gradients")
        else:
            updates = self.optimizer.updates(cost, self.model.params) + model_updates
        eval_out = self.model.output(x, training=False)
        classify = eval_out.ndim == 2 and y.ndim == 1 and y.dtype.startswith(("int", "uint"))
        train_outputs, eval_outputs = [cost], [self.loss(eval_out, y)]
        if classify:
            train_outputs.append(T.mean(T.eq(T.argmax(train_out, axis=1), y)))
            eval_outputs.append(T.mean(T.eq(T.argmax(eval_out, axis=1), y)))
        self._graphs = dict(x=x, y=y, train=train_outputs, grads=grads, apply=apply, updates=updates,
                            eval=eval_outputs, output=eval_out, classify=classify)
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
        return _DistributedStep(train, self._graphs["apply"], len(self._graphs["train"]), self.distributed)

    @property
    def backend_name(self):
        """The name of the backend that runs the compiled functions."""
        for f in self._functions.values():
            return f.backend.name
        from ..core.plugins import registry
        return registry.get(self.backend).name

    # -- running --------------------------------------------------------------------------------

    def fit(self, train, valid=None, epochs=10, batch_size=32, patience=None, monitor="val_loss",
            restore_best=True, shuffle=True, seed=0, progress=True, out=None):
        """Train for ``epochs`` passes over ``train`` in minibatches of ``batch_size``; after each, evaluate
        on ``valid`` when given. With ``patience``, stop when ``monitor`` (``val_loss``, ``val_accuracy``,
        ``loss`` or ``accuracy``) has not improved for ``patience`` epochs, and with ``restore_best`` put
        back the parameters of the best epoch. ``progress``: a tqdm bar (plain lines when tqdm is not
        installed, to ``out``, default stdout). Returns a ``History``.

        Distributed (``Trainer(distributed=True)``): every rank passes the whole data set and the same
        ``seed``; each reads its own share of every batch (``batch_size`` is the batch of all ranks)."""
        if self.distributed is None:
            return self._fit(train, valid, epochs, batch_size, patience, monitor, restore_best, shuffle, seed,
                             progress, out)
        dist = self.distributed
        with dist.guard():  # a rank that raises tells the others, which stop with its error
            progress = progress and dist.is_root()
            return self._fit(train, valid, epochs, batch_size, patience, monitor, restore_best, shuffle, seed,
                             progress, out)

    def _fit(self, train, valid, epochs, batch_size, patience, monitor, restore_best, shuffle, seed, progress,
             out):
        dist = self.distributed
        history = History()
        train, valid = _prepare(train), None if valid is None else _prepare(valid)
        start = time.perf_counter()
        train_fn = self._train_function(train, batch_size, shuffle)
        if valid is not None:
            self._eval_function(self._share(valid))
        history.compile_seconds = time.perf_counter() - start
        extra_state = list(getattr(self.model, "extra_state", []))  # e.g. batch normalization's averages
        if dist is not None:  # every rank starts from rank 0's parameters, model state and optimizer state
            dist.broadcast_parameters(list(self.model.params) + extra_state + list(self.optimizer.state))
        n = _length(train[0])
        batches = math.ceil(n / batch_size)
        rng = np.random.default_rng(seed)
        symbolic = _is_symbolic(train)
        larger_is_better = "accuracy" in monitor
        best, best_state, waited = None, None, 0
        bar = _progress_bar(epochs, progress)
        out = out or sys.stdout
        try:
            for epoch in range(epochs):
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
                if patience is None:
                    continue
                if monitor not in record:
                    raise ValueError(f"early stopping monitors {monitor!r}, which is not measured "
                                     f"(measured: {', '.join(record)}); pass valid= or another monitor")
                value = record[monitor]
                improved = best is None or (value > best if larger_is_better else value < best)
                if dist is not None:  # rank 0 decides, every rank follows
                    improved = bool(dist.root_decides(improved))
                if improved:
                    best, waited, history.best_epoch = value, 0, epoch
                    best_state = self.model.get_values() if restore_best else None
                else:
                    waited += 1
                    if waited >= patience:
                        history.stopped_early = True
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
    """One data-parallel training step: ``train`` (compiled) gives this rank's metrics and gradients; the
    gradients' mean over every rank's rows (one packed allreduce, weighted by ``rows``) goes to ``apply``
    (compiled: the optimizer's update). ``backend`` and ``order`` as the plain training function's."""

    def __init__(self, train, apply, metrics, dist):
        self.train, self.apply, self.metrics, self.dist = train, apply, metrics, dist
        self.backend, self.order = train.backend, None
        self.means = None  # the means' arrays, kept between steps (apply reads them at once)

    def __call__(self, *inputs, rows):
        values = self.train(*inputs)
        grads = values[self.metrics:]
        if self.means is None:
            self.means = [np.empty_like(g) for g in grads]
        self.apply(*self.dist.allreduce_arrays(grads, weight=rows, out=self.means))
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
