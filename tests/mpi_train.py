"""Run by tests/test_distributed.py under ``mpiexec -n N`` (or alone): trains a small MLP for a few steps
and saves the parameters, so that a run on N ranks can be compared with one rank; or fails on purpose.

    python mpi_train.py OUT.npy --backend c --how trainer|function [--distributed] [--batch B] [--buckets BYTES]
    mpiexec -n 2 python mpi_train.py OUT.npy --fault step|guard|structure
    mpiexec -n 2 python mpi_train.py OUT.npy --distributed --checkpoint CK.npz [--resume] --epochs 1

With --checkpoint each rank also saves how often it wrote and read the checkpoint, to OUT.io.rankR.npy; a
distributed Trainer, how many buckets it sent its gradients in, to OUT.buckets.rankR.npy.
"""

import argparse

import numpy as np

import arignote
import arignote.tensor as T
from arignote.layers.data import as_shared
from arignote.layers.layers import MLP
from arignote.layers.optimizers import Adam
from arignote.layers import training
from arignote.layers.training import Trainer

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--backend", default="reference")
parser.add_argument("--how", choices=["trainer", "function"], default="trainer")
parser.add_argument("--distributed", action="store_true")
parser.add_argument("--buckets", type=int, help="gradients sent in buckets of this many bytes (config.bucket_bytes; "
                    "by hand: dist.GradientBuckets instead of dist.allreduce_gradients)")
parser.add_argument("--batch", type=int, default=20, help="the batch of all ranks together")
parser.add_argument("--shared", action="store_true", help="the Trainer's data in shared variables (givens)")
parser.add_argument("--batchnorm", action="store_true", help="an MLP with batch normalization")
parser.add_argument("--fault", choices=["step", "guard", "uncaught", "structure"])
parser.add_argument("--epochs", type=int, default=2)
parser.add_argument("--checkpoint", help="the Trainer's checkpoint path")
parser.add_argument("--resume", action="store_true")
args = parser.parse_args()

rng = np.random.default_rng(1)
X, Y = rng.normal(size=(70, 6)), rng.integers(0, 3, size=70).astype("int32")  # 70: the last batch is short
rank = 0
if args.distributed or args.fault or args.buckets is not None:
    import arignote.distributed as dist

    rank = dist.rank()
hidden = 9 if args.fault == "structure" and rank == 1 else 8
if args.fault == "step" and rank == 1:
    X = X[:, :5]  # rank 1's data do not fit the model: its first step raises
model = MLP([6, hidden, 3], activation="tanh", batchnorm=args.batchnorm, seed=0)
if args.buckets is not None:
    arignote.config.bucket_bytes = args.buckets
optimizer = Adam(0.01)

if args.how == "trainer" and args.fault not in ("guard", "uncaught"):
    trainer = Trainer(model, optimizer=optimizer, backend=args.backend,
                      distributed=bool(args.distributed or args.fault))
    data = as_shared((X, Y)) if args.shared else (X, Y)
    calls = {"_write_checkpoint": 0, "_read_checkpoint": 0}  # this rank's writes and reads of the checkpoint

    def counted(name, original):
        def call(*arguments):
            calls[name] += 1
            return original(*arguments)
        return call

    for name in calls:
        setattr(training, name, counted(name, getattr(training, name)))
    history = trainer.fit(data, valid=data, epochs=args.epochs, batch_size=args.batch, shuffle=True,
                          progress=False, checkpoint=args.checkpoint, resume=args.resume)
    if args.checkpoint:
        np.save(args.out + f".io.rank{rank}.npy", [calls["_write_checkpoint"], calls["_read_checkpoint"]])
    if trainer.distributed is not None:  # the buckets sent while the backward pass ran (0: one allreduce after it)
        buckets = trainer._graphs["buckets"]
        np.save(args.out + f".buckets.rank{rank}.npy", len(buckets.outputs) if buckets.sent else 0)
    metrics = history["val_loss"] + history["loss"]
else:  # a hand-written loop: gradients, their mean across ranks, the update compiled as usual
    x, y = T.matrix("x"), T.ivector("y")
    cost = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(model.output(x)), y))
    grads = arignote.grad(cost, model.params)
    if args.buckets is not None:  # two functions: the gradients sent in buckets as computed, then the update
        buckets = dist.GradientBuckets(cost, model.params, x.shape[0])
        train = arignote.function([x, y], [cost] + buckets.outputs, backend=args.backend)
        update = arignote.function(buckets.summed, [], updates=optimizer.updates(grads=buckets.means,
                                                                                params=model.params),
                                   backend=args.backend)
        dist.broadcast_parameters(model.params + optimizer.state)

        def step(xs, ys):
            update(*buckets.exchange(train(xs, ys)[1:], len(xs)))
    else:
        if args.distributed or args.fault:
            grads = dist.allreduce_gradients(grads, weight=x.shape[0])
            dist.broadcast_parameters(model.params + optimizer.state)
        step = arignote.function([x, y], cost, updates=optimizer.updates(grads=grads, params=model.params),
                                 backend=args.backend)
    for first in range(0, 70, args.batch):
        rows = slice(first, min(first + args.batch, 70))
        if args.distributed or args.fault:
            n = rows.stop - rows.start
            share = dist.share(n)
            rows = slice(rows.start + share.start, rows.start + share.stop)
            if args.fault == "uncaught" and rank == 1 and first == 40:
                raise RuntimeError("boom, uncaught")  # sys.excepthook tells the other ranks
            with dist.guard():
                if args.fault == "guard" and rank == 1 and first == 40:
                    raise RuntimeError("boom on purpose")
                step(X[rows], Y[rows])
        else:
            step(X[rows], Y[rows])
    metrics = []
np.save(args.out if rank == 0 else args.out + f".rank{rank}.npy",
        np.concatenate([p.get_value().ravel() for p in model.state + optimizer.state]  # Adam's moments and t too
                       + [np.asarray(metrics, dtype="float64")]))
