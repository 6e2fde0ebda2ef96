"""A dense network written exactly as a classic Theano program, with only the import changed, trains on
a real data set (scikit-learn's bundled digits) and learns."""

import numpy as np
from sklearn.datasets import load_digits

import arignote as theano
import arignote.tensor as T
from arignote.tensor.shared_randomstreams import RandomStreams


def load_shared(x, y):
    """The deep-learning tutorials' pattern: data in shared variables, labels cast to int32."""
    shared_x = theano.shared(np.asarray(x, dtype=theano.config.floatX), borrow=True)
    shared_y = theano.shared(np.asarray(y, dtype=theano.config.floatX), borrow=True)
    return shared_x, T.cast(shared_y, "int32")


def test_mlp_with_dropout_learns_digits(backend):
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    data, labels = digits.data[order] / 16.0, digits.target[order]
    train_x, train_y = load_shared(data[:1400], labels[:1400])
    test_x, test_y = load_shared(data[1400:], labels[1400:])

    rng = np.random.RandomState(1234)
    srng = RandomStreams(seed=42)
    index = T.lscalar("index")
    x = T.matrix("x")
    y = T.ivector("y")
    n_in, n_hidden, n_out, batch_size, rate = 64, 64, 10, 20, 0.2
    bound = np.sqrt(6.0 / (n_in + n_hidden))
    W1 = theano.shared(np.asarray(rng.uniform(-bound, bound, (n_in, n_hidden)), dtype=theano.config.floatX), name="W1")
    b1 = theano.shared(np.zeros(n_hidden, dtype=theano.config.floatX), name="b1")
    W2 = theano.shared(np.zeros((n_hidden, n_out), dtype=theano.config.floatX), name="W2")
    b2 = theano.shared(np.zeros(n_out, dtype=theano.config.floatX), name="b2")
    params = [W1, b1, W2, b2]

    hidden = T.tanh(T.dot(x, W1) + b1)
    keep = srng.binomial(size=hidden.shape, n=1, p=0.8, dtype=theano.config.floatX)
    p_train = T.nnet.softmax(T.dot(hidden * keep / 0.8, W2) + b2)
    cost = -T.mean(T.log(p_train)[T.arange(y.shape[0]), y]) + 1e-4 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    updates = [(param, param - rate * gparam) for param, gparam in zip(params, T.grad(cost, params))]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates, backend=backend,
        givens={x: train_x[index * batch_size:(index + 1) * batch_size],
                y: train_y[index * batch_size:(index + 1) * batch_size]})

    p_test = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    errors = T.mean(T.neq(T.argmax(p_test, axis=1), y))
    test_model = theano.function([], errors, givens={x: test_x, y: test_y}, backend=backend)

    initial_error = float(test_model())
    costs = []
    for epoch in range(8):
        costs.append(np.mean([train_model(i) for i in range(1400 // batch_size)]))
    final_error = float(test_model())
    assert initial_error > 0.5
    assert costs[-1] < costs[0] / 3
    assert final_error < 0.08, (costs, final_error)
