"""``arignote demo``: train an MLP on scikit-learn's digits with a backend and report the test accuracy."""

import contextlib
import sys
import time

DEFAULTS = dict(epochs=25, hidden=512, seed=0, dropout=0.4, lr=0.002, batch_size=64, patience=8)


def run(backend=None, epochs=DEFAULTS["epochs"], hidden=DEFAULTS["hidden"], seed=DEFAULTS["seed"],
        dropout=DEFAULTS["dropout"], lr=DEFAULTS["lr"], batch_size=DEFAULTS["batch_size"],
        patience=DEFAULTS["patience"], progress=True, out=None):
    """Train a 64-hidden-10 ReLU MLP with dropout and Adam on digits (70% train, 10% validation for
    early stopping, 20% test; ``seed`` seeds the split, the initial weights and the dropout masks) and
    return a dict: test_accuracy, test_loss, seconds_per_epoch, epochs, backend, compile_seconds.

    BLAS runs on one thread meanwhile (through threadpoolctl, which scikit-learn brings): the matrices
    are small, and on a busy machine two BLAS threads mostly wait for each other (three times slower)."""
    with _one_blas_thread():
        return _run(backend, epochs, hidden, seed, dropout, lr, batch_size, patience, progress, out)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _run(backend, epochs, hidden, seed, dropout, lr, batch_size, patience, progress, out):
    from .data import load_digits
    from .layers import MLP
    from .optimizers import Adam
    from .training import Trainer

    out = out or sys.stdout
    start = time.perf_counter()
    data = load_digits(seed=seed, standardize=True)
    model = MLP([64, hidden, 10], activation="relu", dropout=dropout, seed=seed)
    trainer = Trainer(model, optimizer=Adam(lr), backend=backend)
    name = trainer.backend_name
    out.write(f"arignote demo: a 64-{hidden}-10 ReLU MLP (dropout {dropout}, Adam {lr}) on scikit-learn's digits "
              f"({len(data.train[0])} train / {len(data.valid[0])} validation / {len(data.test[0])} test), "
              f"backend {name!r}\n")
    out.flush()
    history = trainer.fit(data.train, valid=data.valid, epochs=epochs, batch_size=batch_size, patience=patience,
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


def add_arguments(parser):
    parser.add_argument("--backend", metavar="NAME", help="the backend to run on (default: the default backend)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="at most this many epochs "
                        f"(default {DEFAULTS['epochs']}; early stopping may end sooner)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                        help="seeds the data split, the initial weights and dropout")
    parser.add_argument("--hidden", type=int, default=DEFAULTS["hidden"], help="hidden units")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_command(args):
    from ..core.plugins import BackendError

    try:
        result = run(backend=args.backend, epochs=args.epochs, hidden=args.hidden, seed=args.seed,
                     progress=not args.no_progress)
    except BackendError as error:
        sys.stdout.write(f"{error}\n")
        return 2
    except ImportError as error:
        sys.stdout.write(f"arignote demo: {error}\n")
        return 2
    return 0 if result["test_accuracy"] > 0 else 1
