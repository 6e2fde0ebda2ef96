"""Layers: objects that own their parameters (shared variables) and map a symbolic input to a symbolic
output, as in Theano programs (the deep-learning tutorials' ``HiddenLayer``, Lasagne, Keras).

Every layer has

- ``params``: the shared variables that training changes (what ``grad`` is taken with respect to);
- ``state``: ``params`` plus other persistent shared variables (BatchNorm's running statistics), in a
  fixed order; this is what ``save``/``load`` write and read;
- ``output(x, training=False)`` (also ``layer(x, training=False)``): the symbolic output. As in Keras,
  ``training=True`` builds the training graph (Dropout drops, BatchNorm uses the batch's statistics) and
  ``training=False`` the evaluation graph (Dropout is the identity, BatchNorm uses its running
  statistics). Lasagne's spelling ``deterministic=True`` is accepted and means ``training=False``;
- ``updates``: the (shared variable, new value) pairs that the graph of the last ``output`` call needs
  in ``function(..., updates=)`` besides the optimizer's: BatchNorm's running statistics after
  ``output(x, training=True)``, nothing after an evaluation graph (so read it right after building the
  training graph);
- ``random_states``: the shared states of its random streams (``self.srng``: Dropout's masks), which a
  training checkpoint keeps so that a resumed run draws the masks an uninterrupted one would;
- ``save(path)`` / ``load(path)``: the values of ``state`` to and from a ``.npz`` file.

Parameters are initialised the standard way from a seeded NumPy generator: Glorot (Xavier) uniform for
tanh, sigmoid, softmax and linear layers, He (Kaiming) uniform for ReLU, biases zero. A layer's
``seed`` is an int or a ``numpy.random.Generator``; ``None`` draws from this module's generator, seeded
once (``set_seed``), so that a program is reproducible from run to run.
"""

import numpy as np

from .. import config, shared
from .. import tensor as T
from ..core.random import RandomStreams

_rng = np.random.default_rng(1234)


def set_seed(seed):
    """Re-seed the generator that layers built with ``seed=None`` draw their initial values from."""
    global _rng
    _rng = np.random.default_rng(seed)


def _generator(seed):
    if seed is None:
        return _rng
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def glorot_uniform(rng, shape, gain=1.0):
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    bound = gain * np.sqrt(6.0 / (shape[0] + shape[-1]))
    return rng.uniform(-bound, bound, shape)


def he_uniform(rng, shape):
    """U(-a, a) with a = sqrt(6 / fan_in) (He et al., 2015): for ReLU layers."""
    bound = np.sqrt(6.0 / shape[0])
    return rng.uniform(-bound, bound, shape)


ACTIVATIONS = {
    "linear": lambda x: x,
    None: lambda x: x,
    "tanh": T.tanh,
    "sigmoid": T.nnet.sigmoid,
    "relu": T.nnet.relu,
    "elu": T.nnet.elu,
    "softplus": T.nnet.softplus,
    "softmax": T.nnet.softmax,
}


def _activation(activation):
    if callable(activation):
        return activation
    try:
        return ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(f"unknown activation {activation!r}; use one of "
                         f"{', '.join(sorted(k for k in ACTIVATIONS if k))} or a function") from None


def _training(training, deterministic):
    if deterministic is not None:
        return not deterministic
    return bool(training)


class Layer:
    """The base class: subclasses set ``self.params`` (and ``self.extra_state``) and define ``_output``."""

    name = None

    def __init__(self):
        self.params = []
        self.extra_state = []
        self.updates = []

    @property
    def state(self):
        return list(self.params) + list(self.extra_state)

    @property
    def random_states(self):
        srng = getattr(self, "srng", None)
        return [state for state, _ in srng.state_updates] if srng is not None else []

    def output(self, x, training=False, deterministic=None):
        self.updates = []
        return self._output(T.as_tensor_variable(x), _training(training, deterministic))

    __call__ = output

    def _output(self, x, training):
        raise NotImplementedError

    def get_values(self):
        return [v.get_value() for v in self.state]

    def set_values(self, values):
        values = list(values)
        if len(values) != len(self.state):
            raise ValueError(f"{self!r} has {len(self.state)} state variables, got {len(values)} values")
        for variable, value in zip(self.state, values):
            current = variable.get_value(borrow=True)
            if np.shape(value) != current.shape:
                raise ValueError(f"{variable!r}: shape {np.shape(value)} does not match {current.shape}")
            variable.set_value(np.asarray(value, dtype=current.dtype))

    def save(self, path):
        """Write the values of ``state`` (parameters and running statistics) to the ``.npz`` file ``path``."""
        save_params(self, path)

    def load(self, path):
        """Read the values that ``save`` wrote back into this layer's shared variables."""
        load_params(self, path)

    def __repr__(self):
        return f"{type(self).__name__}({self.name or ''})"


def _keys(variables):
    """The ``.npz`` keys of shared variables in their order: ``000_dense0.W``, ``001_dense0.b``, ..."""
    return [f"{i:03d}_{v.name or 'var'}" for i, v in enumerate(variables)]


def save_params(layer, path):
    """Save the values of ``layer.state`` (a layer or a model) to ``path`` (``.npz``)."""
    np.savez(path, **dict(zip(_keys(layer.state), layer.get_values())))


def load_params(layer, path):
    """Load values saved by ``save_params`` into ``layer.state``, checking names and shapes."""
    with np.load(path) as data:
        keys = _keys(layer.state)
        if sorted(data.files) != sorted(keys):
            raise ValueError(f"{path}: holds {sorted(data.files)}, but {layer!r} needs {keys}")
        layer.set_values([data[k] for k in keys])


class Dense(Layer):
    """activation(x @ W + b), W of shape (n_in, n_out). ``init``: 'glorot' (the default, He for ReLU),
    'he', 'zeros' or a function (rng, shape) -> array."""

    def __init__(self, n_in, n_out, activation="tanh", init=None, seed=None, name=None, dtype=None):
        super().__init__()
        self.n_in, self.n_out, self.name = n_in, n_out, name or "dense"
        self.activation = _activation(activation)
        dtype = dtype or config.floatX
        if init is None:
            init = "he" if activation == "relu" else "glorot"
        rng, shape = _generator(seed), (n_in, n_out)
        if init == "glorot":
            w = glorot_uniform(rng, shape, gain=4.0 if activation == "sigmoid" else 1.0)
        elif init == "he":
            w = he_uniform(rng, shape)
        elif init == "zeros":
            w = np.zeros(shape)
        elif callable(init):
            w = init(rng, shape)
        else:
            raise ValueError(f"unknown init {init!r}: use 'glorot', 'he', 'zeros' or a function")
        self.W = shared(np.asarray(w, dtype=dtype), name=f"{self.name}.W")
        self.b = shared(np.zeros(n_out, dtype=dtype), name=f"{self.name}.b")
        self.params = [self.W, self.b]

    def _output(self, x, training):
        return self.activation(T.dot(x, self.W) + self.b)


class Softmax(Dense):
    """The classifier output: softmax(x @ W + b), one row of class probabilities per example (the
    tutorials' ``LogisticRegression``). Pair it with ``categorical_crossentropy`` on integer labels: the
    graph rewrites turn the pair into one stable op."""

    def __init__(self, n_in, n_out, init="glorot", seed=None, name=None, dtype=None):
        super().__init__(n_in, n_out, activation="softmax", init=init, seed=seed, name=name or "softmax",
                         dtype=dtype)


LogisticRegression = Softmax


class Dropout(Layer):
    """Sets each input to 0 with probability ``p`` while training and scales the rest by 1 / (1 - p)
    ("inverted dropout"), so that evaluation is the identity. The mask is
    ``RandomStreams(seed).binomial(size=x.shape, n=1, p=1 - p, dtype=x.dtype)``; its state advances with
    every call of a function that uses it."""

    def __init__(self, p=0.5, seed=None, name=None):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p, self.name = p, name or "dropout"
        seed = int(_generator(seed).integers(2 ** 31)) if not isinstance(seed, int) else seed
        self.srng = RandomStreams(seed)

    def _output(self, x, training):
        if not training or self.p == 0:
            return x
        keep = 1.0 - self.p
        mask = self.srng.binomial(size=x.shape, n=1, p=keep, dtype=x.dtype)
        return x * mask / keep


class BatchNorm(Layer):
    """Batch normalisation over axis 0 (Ioffe and Szegedy, 2015): gamma * (x - mean) / sqrt(var + eps)
    + beta. Training graphs use the batch's mean and (biased) variance and set ``updates`` to move the
    running statistics: running = momentum * running + (1 - momentum) * batch value; evaluation graphs
    use the running statistics. ``params`` are gamma and beta; the running statistics are in ``state``."""

    def __init__(self, n, momentum=0.9, eps=1e-5, name=None, dtype=None):
        super().__init__()
        dtype = dtype or config.floatX
        self.n, self.momentum, self.eps, self.name = n, momentum, eps, name or "batchnorm"
        self.gamma = shared(np.ones(n, dtype=dtype), name=f"{self.name}.gamma")
        self.beta = shared(np.zeros(n, dtype=dtype), name=f"{self.name}.beta")
        self.running_mean = shared(np.zeros(n, dtype=dtype), name=f"{self.name}.running_mean")
        self.running_var = shared(np.ones(n, dtype=dtype), name=f"{self.name}.running_var")
        self.params = [self.gamma, self.beta]
        self.extra_state = [self.running_mean, self.running_var]

    def _output(self, x, training):
        if training:
            mean = T.mean(x, axis=0)
            var = T.mean(T.sqr(x - mean), axis=0)
            m = self.momentum
            self.updates = [(self.running_mean, m * self.running_mean + (1 - m) * mean),
                            (self.running_var, m * self.running_var + (1 - m) * var)]
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / T.sqrt(var + self.eps) * self.gamma + self.beta


class Embedding(Layer):
    """A lookup table: integer indices of any shape to rows of W (n_items, dim), W ~ N(0, scale^2)."""

    def __init__(self, n_items, dim, scale=0.01, seed=None, name=None, dtype=None):
        super().__init__()
        self.n_items, self.dim, self.name = n_items, dim, name or "embedding"
        w = _generator(seed).normal(0.0, scale, (n_items, dim))
        self.W = shared(np.asarray(w, dtype=dtype or config.floatX), name=f"{self.name}.W")
        self.params = [self.W]

    def _output(self, x, training):
        return self.W[x]


class Sequential(Layer):
    """Layers applied one after the other; ``params``, ``state`` and ``updates`` are theirs, in order."""

    def __init__(self, layers, name=None):
        super().__init__()
        self.layers, self.name = list(layers), name or "sequential"
        self.params = [p for layer in self.layers for p in layer.params]
        self.extra_state = [s for layer in self.layers for s in layer.extra_state]

    @property
    def state(self):
        return [s for layer in self.layers for s in layer.state]

    @property
    def random_states(self):
        return super().random_states + [s for layer in self.layers for s in layer.random_states]

    def _output(self, x, training):
        for layer in self.layers:
            x = layer.output(x, training=training)
            self.updates += layer.updates
        return x

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __repr__(self):
        return f"{type(self).__name__}([{', '.join(map(repr, self.layers))}])"


class MLP(Sequential):
    """A multi-layer perceptron for classification: ``sizes = [n_in, hidden..., n_classes]``, hidden
    Dense layers with ``activation`` (each followed by Dropout when ``dropout`` > 0) and a Softmax output.
    All initial values come from one generator seeded with ``seed``, layer by layer."""

    def __init__(self, sizes, activation="tanh", dropout=0.0, batchnorm=False, seed=None, name=None):
        rng = _generator(seed)
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-2], sizes[1:-1])):
            if batchnorm:
                layers.append(Dense(n_in, n_out, activation="linear", init="he" if activation == "relu" else None,
                                    seed=rng, name=f"dense{i}"))
                layers.append(BatchNorm(n_out, name=f"batchnorm{i}"))
                layers.append(Activation(activation))
            else:
                layers.append(Dense(n_in, n_out, activation=activation, seed=rng, name=f"dense{i}"))
            if dropout:
                layers.append(Dropout(dropout, seed=rng, name=f"dropout{i}"))
        layers.append(Softmax(sizes[-2], sizes[-1], seed=rng, name="output"))
        super().__init__(layers, name=name or "mlp")
        self.sizes = list(sizes)


class Activation(Layer):
    def __init__(self, activation):
        super().__init__()
        self.name, self.activation = str(activation), _activation(activation)

    def _output(self, x, training):
        return self.activation(x)


