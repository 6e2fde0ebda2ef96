"""Neural-network building blocks on top of arignote's public API: layers that own their parameters,
losses, optimizers that return update lists, a training loop, and the digits data set.

    from arignote.layers import MLP, Adam, Trainer, load_digits

    data = load_digits()
    model = MLP([64, 128, 10], activation="relu", seed=0)   # or LeNet((1, 8, 8), ...): a CNN
    trainer = Trainer(model, optimizer=Adam(0.003))
    history = trainer.fit(data.train, valid=data.valid, epochs=30, patience=5)
    print(trainer.evaluate(data.test))          # (loss, accuracy)

Layers take ``training=True`` in ``output(x, training=...)`` to build training graphs (Dropout active,
BatchNorm on batch statistics); the default, ``training=False``, builds evaluation graphs.
scikit-learn (the data), tqdm (the progress bar) and matplotlib (``History.plot``) are imported only
when they are used.
"""

from .layers import (  # noqa: F401
    ACTIVATIONS, MLP, Activation, BatchNorm, Dense, Dropout, Embedding, Layer, LogisticRegression, Sequential,
    Softmax, glorot_uniform, he_uniform, load_params, save_params, set_seed,
)
from .conv import AvgPool2D, Conv2D, Flatten, LeNet, MaxPool2D, Reshape  # noqa: F401
from .losses import (  # noqa: F401
    accuracy, binary_crossentropy, categorical_crossentropy, errors, l1, l2, mean_squared_error, mse,
    negative_log_likelihood, nll, weights,
)
from .optimizers import (  # noqa: F401
    SGD, Adam, Constant, ExponentialDecay, InverseTimeDecay, Momentum, Nesterov, Optimizer, RMSprop, Schedule,
    StepDecay,
)
from .training import History, Trainer, fit  # noqa: F401
from .data import Split, as_shared, load_digits, with_shifts  # noqa: F401

__all__ = [
    "Layer", "Dense", "Softmax", "LogisticRegression", "Dropout", "BatchNorm", "Embedding", "Activation",
    "Sequential", "MLP", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Reshape", "LeNet", "save_params", "load_params", "set_seed", "glorot_uniform", "he_uniform",
    "categorical_crossentropy", "nll", "negative_log_likelihood", "binary_crossentropy", "mean_squared_error",
    "mse", "l1", "l2", "accuracy", "errors", "weights",
    "Optimizer", "SGD", "Momentum", "Nesterov", "RMSprop", "Adam",
    "Schedule", "Constant", "StepDecay", "ExponentialDecay", "InverseTimeDecay",
    "Trainer", "History", "fit", "load_digits", "with_shifts", "as_shared", "Split",
]
