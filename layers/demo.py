"""``arignote demo``: train an MLP or a LeNet on scikit-learn's digits with a backend and report the test
accuracy."""

import contextlib
import sys
import time

# each model's settings: the MLP's hidden units, the LeNet's dense layer (after two conv-pool stages)
MODELS = {
    "mlp": dict(epochs=25, hidden=512, dropout=0.4, lr=0.002, batch_size=64, patience=8),
    "lenet": dict(epochs=15, hidden=256, dropout=0.4, lr=0.002, batch_size=32, patience=8),
}
DEFAULTS = dict(model="mlp", seed=0, **MODELS["mlp"])


def run(backend=None, model="mlp", epochs=None, hidden=None, seed=DEFAULTS["seed"], dropout=None, lr=None,
        batch_size=None, patience=None, progress=True, out=None, distributed=False):
    """Train a model with dropout and Adam on digits (70% train, 10% validation for early stopping, 20%
    test; ``seed`` seeds the split, the initial weights and the dropout masks) and return a dict:
    test_accuracy, test_loss, seconds_per_epoch, epochs, backend, compile_seconds. ``model``: 'mlp', a
    64-hidden-10 ReLU MLP, or 'lenet', a LeNet on the 8 x 8 images (two stages of 3 x 3 convolutions
    padded to keep the size, 2 x 2 max-pooling and ReLU, then a dense layer of ``hidden`` units),
    trained on the training images and their copies moved by a pixel (``with_shifts``).
    ``distributed``: data parallelism over MPI (``mpiexec -n 2 arignote demo --distributed``): the same
    training, each rank computing the gradients of its share of every batch; rank 0 alone reports.
    Settings left out take the model's defaults (``MODELS``).

    BLAS runs on one thread meanwhile (through threadpoolctl, which scikit-learn brings): the matrices
    are small, and on a busy machine two BLAS threads mostly wait for each other (three times slower)."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; use one of {', '.join(MODELS)}")
    given = dict(epochs=epochs, hidden=hidden, dropout=dropout, lr=lr, batch_size=batch_size, patience=patience)
    settings = {k: MODELS[model][k] if v is None else v for k, v in given.items()}
    with _one_blas_thread():
        return _run(backend, model, seed, progress, out, distributed, **settings)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _model(model, hidden, dropout, seed):
    """The network and how the demo describes it."""
    from .conv import LeNet
    from .layers import MLP

    if model == "lenet":
        return (LeNet((1, 8, 8), filters=(32, 64), kernel=3, padding="same", hidden=hidden, activation="relu",
                      dropout=dropout, seed=seed),
                f"a LeNet (3x3 conv 32, pool, 3x3 conv 64, pool, {hidden}, 10; ReLU)")
    return MLP([64, hidden, 10], activation="relu", dropout=dropout, seed=seed), f"a 64-{hidden}-10 ReLU MLP"


def _run(backend, model_name, seed, progress, out, distributed, epochs, hidden, dropout, lr, batch_size, patience):
    from .data import load_digits, with_shifts
    from .optimizers import Adam
    from .training import Trainer

    out = out or sys.stdout
    ranks = ""
    if distributed:
        from .. import distributed as dist

        ranks = f", {dist.size()} ranks (data parallel over MPI)"
        if not dist.is_root():
            out = _Discard()  # rank 0 alone reports
    start = time.perf_counter()
    data = load_digits(seed=seed, standardize=model_name == "mlp")  # per-pixel scaling suits no convolution
    model, description = _model(model_name, hidden, dropout, seed)
    train = with_shifts(data.train) if model_name == "lenet" else data.train
    trainer = Trainer(model, optimizer=Adam(lr), backend=backend, distributed=distributed)
    name, shifts = trainer.backend_name, " with shifted copies" if model_name == "lenet" else ""
    out.write(f"arignote demo: {description} (dropout {dropout}, Adam {lr}) on scikit-learn's digits "
              f"({len(train[0])} train{shifts} / {len(data.valid[0])} validation / {len(data.test[0])} test), "
              f"backend {name!r}{ranks}\n")
    out.flush()
    history = trainer.fit(train, valid=data.valid, epochs=epochs, batch_size=batch_size, patience=patience,
                          seed=seed, progress=progress, out=out)
    loss, accuracy = trainer.evaluate(data.test)
    result = dict(test_accuracy=accuracy, test_loss=loss, seconds_per_epoch=history.seconds_per_epoch,
                  epochs=len(history), best_epoch=history.best_epoch, backend=name,
                  compile_seconds=history.compile_seconds, total_seconds=time.perf_counter() - start)
    stopped = f", stopped early, kept epoch {history.best_epoch + 1}" if history.stopped_early else ""
    out.write(f"test accuracy {accuracy:.2%} (loss {loss:.4f}) after {len(history)} epochs{stopped}\n"
              f"time per epoch {history.seconds_per_epoch * 1000:.0f} ms "
              f"(compiling {history.compile_seconds:.2f} s, total {result['total_seconds']:.1f} s)\n"
              f"backend {name}\n")
    return result


class _Discard:
    def write(self, text):
        pass

    def flush(self):
        pass


def add_arguments(parser):
    parser.add_argument("--backend", metavar="NAME", help="the backend to run on (default: the default backend)")
    parser.add_argument("--model", choices=list(MODELS), default="mlp",
                        help="the network: an MLP (default) or a LeNet (convolutions and pooling)")
    parser.add_argument("--epochs", type=int, help="at most this many epochs (default: "
                        + ", ".join(f"{k} {v['epochs']}" for k, v in MODELS.items()) + "; early stopping may end sooner)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="seeds the data split, the initial weights and dropout")
    parser.add_argument("--hidden", type=int, help="hidden units (default: "
                        + ", ".join(f"{k} {v['hidden']}" for k, v in MODELS.items()) + ")")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--distributed", action="store_true",
                        help="data parallelism over MPI: launch with mpiexec -n N (pip install 'arignote[mpi]')")


def run_command(args):
    from ..core.plugins import BackendError

    try:
        result = run(backend=args.backend, model=args.model, epochs=args.epochs, hidden=args.hidden, seed=args.seed,
                     progress=not args.no_progress, distributed=args.distributed)
    except BackendError as error:
        sys.stdout.write(f"{error}\n")
        return 2
    except ImportError as error:
        sys.stdout.write(f"arignote demo: {error}\n")
        return 2
    return 0 if result["test_accuracy"] > 0 else 1
