"""Optimizers: each returns the update list for ``function(..., updates=)`` of one training step.

    optimizer = Adam(0.001)
    train = function([x, y], cost, updates=optimizer.updates(cost, model.params) + model.updates)

Their state (velocities, moment estimates, the step counter ``t``) lives in shared variables, so it is
kept between calls, pickled with the functions, and seen by every function that shares it. The
learning rate is a number or a schedule: a function of the number of steps already taken (``t``, 0 for
the first step), evaluated symbolically inside the training function. The formulas are Lasagne's:

- SGD:       p <- p - lr g
- Momentum:  v <- mu v - lr g;  p <- p + v
- Nesterov:  v <- mu v - lr g;  p <- p + mu v - lr g       (v the new velocity)
- RMSprop:   a <- rho a + (1 - rho) g^2;  p <- p - lr g / sqrt(a + eps)
- Adam:      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
             p <- p - lr sqrt(1 - b2^(t+1)) / (1 - b1^(t+1)) m / (sqrt(v) + eps)
"""

import math

import numpy as np

from .. import grad, shared
from .. import tensor as T
from ..core.graph import Variable


def _floor(t):
    return T.floor(t) if isinstance(t, Variable) else math.floor(t)


def _exp(t):
    return T.exp(t) if isinstance(t, Variable) else math.exp(t)


class Schedule:
    """A learning rate as a function of the step ``t`` (0 for the first step); ``schedule(t)`` works
    on a number (for plotting or tests) and on a symbolic scalar (inside the training function)."""

    def __call__(self, t):
        raise NotImplementedError


class Constant(Schedule):
    def __init__(self, lr):
        self.lr = lr

    def __call__(self, t):
        return self.lr


class StepDecay(Schedule):
    """lr * drop ** floor(t / every): multiply by ``drop`` every ``every`` steps."""

    def __init__(self, lr, drop=0.5, every=1000):
        self.lr, self.drop, self.every = lr, drop, every

    def __call__(self, t):
        return self.lr * self.drop ** _floor(t / self.every)


class ExponentialDecay(Schedule):
    """lr * rate ** (t / steps): smooth decay by ``rate`` every ``steps`` steps."""

    def __init__(self, lr, rate=0.5, steps=1000):
        self.lr, self.rate, self.steps = lr, rate, steps

    def __call__(self, t):
        return self.lr * _exp(math.log(self.rate) * (t / self.steps))


class InverseTimeDecay(Schedule):
    """lr / (1 + decay * t)."""

    def __init__(self, lr, decay=1e-3):
        self.lr, self.decay = lr, decay

    def __call__(self, t):
        return self.lr / (1 + self.decay * t)


def _schedule(lr):
    return lr if callable(lr) else Constant(lr)


class Optimizer:
    """The base class: ``updates(cost, params)`` (or ``updates(grads=..., params=...)``)."""

    def __init__(self, lr):
        self.schedule = _schedule(lr)
        self.t = shared(np.asarray(0.0), name="t")  # steps taken so far (float64, exact to 2**53)
        self.state = [self.t]

    def learning_rate(self, step=None):
        """The learning rate of step ``step`` (default: the next step), as a number."""
        return float(self.schedule(self.t.get_value() if step is None else step))

    def _zeros_like(self, p, what):
        v = shared(np.zeros_like(p.get_value(borrow=True)), name=f"{p.name or 'param'}.{what}")
        self.state.append(v)
        return v

    def updates(self, cost=None, params=(), grads=None):
        params = list(params)
        grads = grad(cost, params) if grads is None else list(grads)
        lr = self.schedule(self.t)
        result = []
        for p, g in zip(params, grads):
            result += self._step(p, g, T.cast(lr, p.dtype) if isinstance(lr, Variable) else lr)
        result.append((self.t, self.t + 1))
        return result

    __call__ = updates

    def _step(self, p, g, lr):
        raise NotImplementedError


class SGD(Optimizer):
    def __init__(self, lr=0.01):
        super().__init__(lr)

    def _step(self, p, g, lr):
        return [(p, p - lr * g)]


class Momentum(Optimizer):
    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr)
        self.momentum = momentum

    def _step(self, p, g, lr):
        v = self._zeros_like(p, "velocity")
        new_v = self.momentum * v - lr * g
        return [(v, new_v), (p, p + new_v)]


class Nesterov(Momentum):
    def _step(self, p, g, lr):
        v = self._zeros_like(p, "velocity")
        new_v = self.momentum * v - lr * g
        return [(v, new_v), (p, p + self.momentum * new_v - lr * g)]


class RMSprop(Optimizer):
    def __init__(self, lr=0.001, rho=0.9, eps=1e-6):
        super().__init__(lr)
        self.rho, self.eps = rho, eps

    def _step(self, p, g, lr):
        a = self._zeros_like(p, "accumulator")
        new_a = self.rho * a + (1 - self.rho) * T.sqr(g)
        return [(a, new_a), (p, p - lr * g / T.sqrt(new_a + self.eps))]


class Adam(Optimizer):
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _step(self, p, g, lr):
        m, v = self._zeros_like(p, "m"), self._zeros_like(p, "v")
        t = T.cast(self.t + 1, p.dtype)
        a = lr * T.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        new_m = self.beta1 * m + (1 - self.beta1) * g
        new_v = self.beta2 * v + (1 - self.beta2) * T.sqr(g)
        return [(m, new_m), (v, new_v), (p, p - a * new_m / (T.sqrt(new_v) + self.eps))]
