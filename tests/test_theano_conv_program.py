"""The Deep Learning Tutorials' LeNet (convolutional_mlp.py), written as the classic Theano program with
only the imports changed, trains on scikit-learn's digits (8 x 8, so 3 x 3 filters) and learns, and
every backend trains it to the reference's parameters."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

import arignote as theano
import arignote.tensor as T
from arignote.tensor.nnet import conv2d
from arignote.tensor.signal import pool


class LeNetConvPoolLayer:
    """Pool Layer of a convolutional network (the tutorial's class, its body unchanged in substance)."""

    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        assert image_shape[1] == filter_shape[1]
        self.input = input
        fan_in = np.prod(filter_shape[1:])
        fan_out = filter_shape[0] * np.prod(filter_shape[2:]) // np.prod(poolsize)
        W_bound = np.sqrt(6.0 / (fan_in + fan_out))
        self.W = theano.shared(np.asarray(rng.uniform(low=-W_bound, high=W_bound, size=filter_shape),
                                          dtype=theano.config.floatX), borrow=True)
        b_values = np.zeros((filter_shape[0],), dtype=theano.config.floatX)
        self.b = theano.shared(value=b_values, borrow=True)
        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape, input_shape=image_shape,
                          border_mode="half")
        pooled_out = pool.pool_2d(input=conv_out, ws=poolsize, ignore_border=True)
        self.output = T.tanh(pooled_out + self.b.dimshuffle("x", 0, "x", "x"))
        self.params = [self.W, self.b]


class HiddenLayer:
    def __init__(self, rng, input, n_in, n_out, activation=T.tanh):
        W_values = np.asarray(rng.uniform(low=-np.sqrt(6.0 / (n_in + n_out)), high=np.sqrt(6.0 / (n_in + n_out)),
                                          size=(n_in, n_out)), dtype=theano.config.floatX)
        self.W = theano.shared(value=W_values, name="W", borrow=True)
        self.b = theano.shared(value=np.zeros((n_out,), dtype=theano.config.floatX), name="b", borrow=True)
        self.output = activation(T.dot(input, self.W) + self.b)
        self.params = [self.W, self.b]


class LogisticRegression:
    def __init__(self, input, n_in, n_out):
        self.W = theano.shared(value=np.zeros((n_in, n_out), dtype=theano.config.floatX), name="W", borrow=True)
        self.b = theano.shared(value=np.zeros((n_out,), dtype=theano.config.floatX), name="b", borrow=True)
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]

    def negative_log_likelihood(self, y):
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        return T.mean(T.neq(self.y_pred, y))


def shared_dataset(data_x, data_y):
    shared_x = theano.shared(np.asarray(data_x, dtype=theano.config.floatX), borrow=True)
    shared_y = theano.shared(np.asarray(data_y, dtype=theano.config.floatX), borrow=True)
    return shared_x, T.cast(shared_y, "int32")


def evaluate_lenet(backend, learning_rate=0.5, n_epochs=5, nkerns=(8, 16), batch_size=50):
    digits = load_digits()
    order = np.random.RandomState(0).permutation(len(digits.target))
    data, labels = digits.data[order] / 16.0, digits.target[order]
    train_set_x, train_set_y = shared_dataset(data[:1400], labels[:1400])
    test_set_x, test_set_y = shared_dataset(data[1400:], labels[1400:])
    n_train_batches = 1400 // batch_size

    rng = np.random.RandomState(23455)
    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")
    layer0_input = x.reshape((batch_size, 1, 8, 8))
    layer0 = LeNetConvPoolLayer(rng, input=layer0_input, image_shape=(batch_size, 1, 8, 8),
                                filter_shape=(nkerns[0], 1, 3, 3), poolsize=(2, 2))
    layer1 = LeNetConvPoolLayer(rng, input=layer0.output, image_shape=(batch_size, nkerns[0], 4, 4),
                                filter_shape=(nkerns[1], nkerns[0], 3, 3), poolsize=(2, 2))
    layer2 = HiddenLayer(rng, input=layer1.output.flatten(2), n_in=nkerns[1] * 2 * 2, n_out=100, activation=T.tanh)
    layer3 = LogisticRegression(input=layer2.output, n_in=100, n_out=10)
    cost = layer3.negative_log_likelihood(y)

    test_model = theano.function([index], layer3.errors(y), backend=backend, givens={
        x: test_set_x[index * batch_size: (index + 1) * batch_size],
        y: test_set_y[index * batch_size: (index + 1) * batch_size]})
    params = layer3.params + layer2.params + layer1.params + layer0.params
    grads = T.grad(cost, params)
    updates = [(param_i, param_i - learning_rate * grad_i) for param_i, grad_i in zip(params, grads)]
    train_model = theano.function([index], cost, updates=updates, backend=backend, givens={
        x: train_set_x[index * batch_size: (index + 1) * batch_size],
        y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    costs = []
    for epoch in range(n_epochs):
        costs.append(np.mean([train_model(minibatch_index) for minibatch_index in range(n_train_batches)]))
    test_error = np.mean([test_model(i) for i in range(len(data[1400:]) // batch_size)])
    return costs, test_error, [p.get_value() for p in params]


@pytest.fixture(scope="module")
def reference_run():
    return evaluate_lenet("reference")


def test_lenet_program_learns_digits(backend, reference_run):
    costs, test_error, params = evaluate_lenet(backend) if backend != "reference" else reference_run
    assert costs[-1] < costs[0] / 5, costs
    assert test_error < 0.06, (costs, test_error)
    for mine, theirs in zip(params, reference_run[2]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
