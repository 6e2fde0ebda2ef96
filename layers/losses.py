"""Losses (each the mean over the examples of a batch, a symbolic scalar) and parameter penalties."""

from .. import tensor as T


def categorical_crossentropy(probabilities, targets):
    """Mean cross-entropy of rows of class probabilities with ``targets``: integer labels (the negative
    log-likelihood, -mean(log p[i, y[i]])) or distributions (one-hot or soft). After a Softmax layer the
    graph rewrites make it one stable softmax-cross-entropy op."""
    return T.mean(T.nnet.categorical_crossentropy(probabilities, targets))


nll = negative_log_likelihood = categorical_crossentropy


def binary_crossentropy(probabilities, targets):
    """Mean of -(t log p + (1 - t) log(1 - p)) over every element."""
    return T.mean(T.nnet.binary_crossentropy(probabilities, targets))


def mean_squared_error(predictions, targets):
    """Mean of (prediction - target)^2 over every element."""
    return T.mean(T.sqr(predictions - targets))


mse = mean_squared_error


def l1(params):
    """The L1 penalty: sum of |p| over every parameter (weigh it: ``loss + 1e-4 * l1(model.weights)``)."""
    return sum(T.sum(abs(p)) for p in _listed(params))


def l2(params):
    """The L2 penalty: sum of p^2 over every parameter."""
    return sum(T.sum(T.sqr(p)) for p in _listed(params))


def accuracy(probabilities, labels):
    """The fraction of rows whose largest probability is at the integer label."""
    return T.mean(T.eq(T.argmax(probabilities, axis=1), labels))


def errors(probabilities, labels):
    """The fraction of rows misclassified (the tutorials' ``errors``): 1 - accuracy."""
    return T.mean(T.neq(T.argmax(probabilities, axis=1), labels))


def _listed(params):
    return list(params) if isinstance(params, (list, tuple)) else [params]


def weights(model):
    """The matrices among a model's parameters (the usual target of L1/L2 penalties: not the biases)."""
    return [p for p in model.params if p.ndim >= 2]
