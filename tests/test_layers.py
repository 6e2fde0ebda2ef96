"""arignote.layers: each layer, loss and optimizer against NumPy or a hand-written graph, the training loop,
serialisation, and a layer-based model against the same model written by hand with `function`."""

import subprocess
import sys

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.tensor.shared_randomstreams import RandomStreams
from arignote.layers import (
    MLP, SGD, Adam, BatchNorm, Dense, Dropout, Embedding, ExponentialDecay, InverseTimeDecay, Momentum,
    Nesterov, RMSprop, Sequential, Softmax, StepDecay, Trainer, as_shared, binary_crossentropy,
    categorical_crossentropy, fit, l1, l2, load_digits, mean_squared_error, weights,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 4))
LABELS = np.array([0, 2, 1, 2, 0, 1], dtype="int32")


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def run(outputs, backend, inputs=(), values=(), updates=None):
    return arignote.function(list(inputs), outputs, updates=updates, backend=backend)(*values)


# -- layers ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation, np_fn", [
    ("tanh", np.tanh), ("relu", lambda z: np.maximum(z, 0)), ("linear", lambda z: z),
    ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
])
def test_dense_matches_numpy(backend, activation, np_fn):
    layer = Dense(4, 3, activation=activation, seed=1)
    layer.b.set_value(np.array([0.1, -0.2, 0.3]))
    x = T.matrix("x")
    w = layer.W.get_value()
    np.testing.assert_allclose(run(layer(x), backend, [x], [X]), np_fn(X @ w + [0.1, -0.2, 0.3]), rtol=1e-12)
    assert layer.params == [layer.W, layer.b] and layer.state == layer.params


def test_initialisation_is_seeded_glorot_or_he():
    a, b = Dense(100, 50, seed=3), Dense(100, 50, seed=3)
    np.testing.assert_array_equal(a.W.get_value(), b.W.get_value())
    assert not np.array_equal(a.W.get_value(), Dense(100, 50, seed=4).W.get_value())
    assert np.abs(a.W.get_value()).max() <= np.sqrt(6 / 150) and np.abs(a.W.get_value()).max() > 0.9 * np.sqrt(6 / 150)
    relu = Dense(100, 50, activation="relu", seed=3).W.get_value()
    assert np.sqrt(6 / 150) < np.abs(relu).max() <= np.sqrt(6 / 100)
    np.testing.assert_array_equal(a.b.get_value(), np.zeros(50))
    assert a.W.dtype == arignote.config.floatX


def test_softmax_layer(backend):
    layer = Softmax(4, 3, seed=2)
    x = T.matrix("x")
    np.testing.assert_allclose(run(layer(x), backend, [x], [X]), softmax(X @ layer.W.get_value()), rtol=1e-12)


def test_dropout_is_identity_in_evaluation_and_drops_in_training(backend):
    x = T.matrix("x")
    data = np.ones((200, 50))
    layer = Dropout(0.25, seed=5)
    np.testing.assert_array_equal(run(layer(x), backend, [x], [data]), data)
    np.testing.assert_array_equal(run(layer(x, deterministic=True), backend, [x], [data]), data)
    f = arignote.function([x], layer(x, training=True), backend=backend)
    first, second = f(data), f(data)
    assert set(np.unique(first)) == {0.0, 1 / 0.75}
    assert abs((first == 0).mean() - 0.25) < 0.02
    assert not np.array_equal(first, second)  # the mask is redrawn at every call
    # the mask is exactly the documented RandomStreams draw
    srng = RandomStreams(5)
    by_hand = x * srng.binomial(size=x.shape, n=1, p=0.75, dtype=x.dtype) / 0.75
    np.testing.assert_array_equal(run(by_hand, backend, [x], [data]), first)


def test_batchnorm_training_evaluation_and_running_statistics(backend):
    layer = BatchNorm(4, momentum=0.8, eps=1e-5)
    layer.gamma.set_value(np.array([1.0, 2.0, 0.5, 1.0]))
    layer.beta.set_value(np.array([0.0, 1.0, -1.0, 0.5]))
    x = T.matrix("x")
    out = layer(x, training=True)
    assert [u[0] for u in layer.updates] == [layer.running_mean, layer.running_var]
    train = arignote.function([x], out, updates=layer.updates, backend=backend)
    mean, var = X.mean(axis=0), X.var(axis=0)
    expected = (X - mean) / np.sqrt(var + 1e-5) * [1.0, 2.0, 0.5, 1.0] + [0.0, 1.0, -1.0, 0.5]
    np.testing.assert_allclose(train(X), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.running_mean.get_value(), 0.2 * mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var.get_value(), 0.8 + 0.2 * var, rtol=1e-12)
    train(X)
    np.testing.assert_allclose(layer.running_mean.get_value(), 0.36 * mean, rtol=1e-12)
    evaluate = layer(x)
    assert layer.updates == []
    rm, rv = layer.running_mean.get_value(), layer.running_var.get_value()
    np.testing.assert_allclose(run(evaluate, backend, [x], [X]),
                               (X - rm) / np.sqrt(rv + 1e-5) * [1.0, 2.0, 0.5, 1.0] + [0.0, 1.0, -1.0, 0.5],
                               rtol=1e-10)
    assert layer.params == [layer.gamma, layer.beta] and layer.state[2:] == [layer.running_mean, layer.running_var]


def test_embedding_lookup_and_gradient(backend):
    layer = Embedding(7, 3, seed=0)
    idx = T.imatrix("idx")
    indices = np.array([[0, 3, 3], [6, 0, 1]], dtype="int32")
    table = layer.W.get_value()
    np.testing.assert_array_equal(run(layer(idx), backend, [idx], [indices]), table[indices])
    weights_ = RNG.normal(size=(2, 3, 3))
    g = arignote.grad(T.sum(layer(idx) * T.constant(weights_)), layer.W)
    expected = np.zeros_like(table)
    np.add.at(expected, indices, weights_)
    np.testing.assert_allclose(run(g, backend, [idx], [indices]), expected, rtol=1e-12)


def test_save_and_load_give_the_same_predictions(backend, tmp_path):
    model = MLP([4, 8, 3], activation="relu", batchnorm=True, dropout=0.2, seed=0)
    model.layers[1].running_mean.set_value(RNG.normal(size=8))  # running statistics are saved too
    x = T.matrix("x")
    before = run(model(x), backend, [x], [X])
    model.save(tmp_path / "model.npz")
    other = MLP([4, 8, 3], activation="relu", batchnorm=True, dropout=0.2, seed=99)
    assert not np.allclose(run(other(x), backend, [x], [X]), before)
    other.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(run(other(x), backend, [x], [X]), before)
    with pytest.raises(ValueError, match="needs"):
        MLP([4, 8, 8, 3], seed=0).load(tmp_path / "model.npz")


def test_sequential_collects_params_and_updates():
    model = Sequential([Dense(4, 5, seed=0), BatchNorm(5), Dropout(0.5, seed=0), Softmax(5, 2, seed=0)])
    assert len(model.params) == 6 and len(model.state) == 8
    model(T.matrix(), training=True)
    assert len(model.updates) == 2
    model(T.matrix())
    assert model.updates == []


# -- losses ----------------------------------------------------------------------------------------

P = softmax(RNG.normal(size=(6, 3)))
Q = RNG.uniform(0.05, 0.95, size=(5, 2))
TARGETS = RNG.uniform(size=(5, 2))


@pytest.mark.parametrize("loss, values, expected", [
    (categorical_crossentropy, (P, LABELS), -np.mean(np.log(P[np.arange(6), LABELS]))),
    (categorical_crossentropy, (P, softmax(RNG.normal(size=(6, 3)))), None),
    (binary_crossentropy, (Q, TARGETS), -np.mean(TARGETS * np.log(Q) + (1 - TARGETS) * np.log(1 - Q))),
    (mean_squared_error, (Q, TARGETS), np.mean((Q - TARGETS) ** 2)),
], ids=["nll-labels", "crossentropy-distributions", "binary", "mse"])
def test_losses_match_numpy(backend, loss, values, expected):
    if expected is None:
        expected = -np.mean(np.sum(values[1] * np.log(values[0]), axis=1))
    symbols = [T.TensorType(np.asarray(v).dtype.name, (False,) * np.ndim(v))() for v in values]
    np.testing.assert_allclose(run(loss(*symbols), backend, symbols, values), expected, rtol=1e-12)


def test_penalties_match_numpy(backend):
    a, b = arignote.shared(RNG.normal(size=(3, 2))), arignote.shared(RNG.normal(size=4))
    va, vb = a.get_value(), b.get_value()
    np.testing.assert_allclose(run(l1([a, b]), backend), np.abs(va).sum() + np.abs(vb).sum(), rtol=1e-12)
    np.testing.assert_allclose(run(l2([a, b]), backend), (va ** 2).sum() + (vb ** 2).sum(), rtol=1e-12)
    model = MLP([3, 4, 2], seed=0)
    assert weights(model) == [model.layers[0].W, model.layers[1].W]


# -- optimizers ------------------------------------------------------------------------------------

TARGET = np.array([1.0, -2.0, 0.5])
SCALE = np.array([1.0, 3.0, 0.2])


def numpy_steps(name, lr, steps, **kw):
    """The documented update rules on cost = sum(SCALE * (w - TARGET)^2), from w = 0."""
    w, state, out = np.zeros(3), {}, []
    for t in range(steps):
        g, rate = 2 * SCALE * (w - TARGET), lr(t)
        if name == "SGD":
            w = w - rate * g
        elif name in ("Momentum", "Nesterov"):
            v = kw["momentum"] * state.get("v", 0) - rate * g
            state["v"] = v
            w = w + v if name == "Momentum" else w + kw["momentum"] * v - rate * g
        elif name == "RMSprop":
            a = kw["rho"] * state.get("a", 0) + (1 - kw["rho"]) * g ** 2
            state["a"] = a
            w = w - rate * g / np.sqrt(a + kw["eps"])
        elif name == "Adam":
            m = kw["beta1"] * state.get("m", 0) + (1 - kw["beta1"]) * g
            v = kw["beta2"] * state.get("v", 0) + (1 - kw["beta2"]) * g ** 2
            state.update(m=m, v=v)
            step = rate * np.sqrt(1 - kw["beta2"] ** (t + 1)) / (1 - kw["beta1"] ** (t + 1))
            w = w - step * m / (np.sqrt(v) + kw["eps"])
        out.append(w)
    return out


@pytest.mark.parametrize("cls, kw", [
    (SGD, {}), (Momentum, dict(momentum=0.9)), (Nesterov, dict(momentum=0.8)),
    (RMSprop, dict(rho=0.9, eps=1e-6)), (Adam, dict(beta1=0.9, beta2=0.999, eps=1e-8)),
], ids=lambda v: getattr(v, "__name__", ""))
@pytest.mark.parametrize("schedule", [lambda t: 0.05, StepDecay(0.05, drop=0.5, every=2)], ids=["constant", "step"])
def test_optimizer_first_steps_match_numpy(backend, cls, kw, schedule):
    w = arignote.shared(np.zeros(3), name="w")
    cost = T.sum(T.constant(SCALE) * T.sqr(w - T.constant(TARGET)))
    optimizer = cls(schedule if isinstance(schedule, StepDecay) else 0.05, **kw)
    step = arignote.function([], cost, updates=optimizer.updates(cost, [w]), backend=backend)
    expected = numpy_steps(cls.__name__, schedule, 5, **kw)
    for t in range(5):
        step()
        np.testing.assert_allclose(w.get_value(), expected[t], rtol=1e-12, atol=1e-15, err_msg=f"step {t}")
    assert optimizer.t.get_value() == 5
    assert all(isinstance(s, arignote.SharedVariable) for s in optimizer.state)


def test_optimizers_keep_float32_parameters_float32(floatX32, backend):
    model = MLP([4, 3, 2], seed=0)
    x, y = T.fmatrix("x"), T.ivector("y")
    cost = categorical_crossentropy(model(x, training=True), y)
    for optimizer in (SGD(StepDecay(0.1)), Momentum(0.1), Nesterov(0.1), RMSprop(0.01), Adam(ExponentialDecay(0.01))):
        f = arignote.function([x, y], cost, updates=optimizer.updates(cost, model.params), backend=backend)
        f(X.astype("float32"), LABELS % 2)
    assert all(p.get_value().dtype == np.float32 for p in model.params)


def test_schedules():
    assert [StepDecay(0.1, drop=0.5, every=10)(t) for t in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]
    np.testing.assert_allclose([ExponentialDecay(0.1, rate=0.5, steps=10)(t) for t in (0, 5, 10, 20)],
                               [0.1, 0.1 / np.sqrt(2), 0.05, 0.025])
    np.testing.assert_allclose(InverseTimeDecay(0.1, decay=0.5)(4), 0.1 / 3)
    t = T.dscalar("t")
    for schedule in (StepDecay(0.1, 0.5, 10), ExponentialDecay(0.1, 0.5, 10), InverseTimeDecay(0.1, 0.5)):
        f = arignote.function([t], schedule(t))
        np.testing.assert_allclose([f(s) for s in (0, 7, 13, 40)], [schedule(s) for s in (0, 7, 13, 40)], rtol=1e-12)
    optimizer = SGD(StepDecay(0.1, 0.5, 2))
    optimizer.t.set_value(4)
    assert optimizer.learning_rate() == 0.025


# -- a layer model and the same model by hand ------------------------------------------------------

def test_layer_model_and_hand_written_model_give_identical_numbers(backend):
    """An MLP with dropout trained by Trainer and by a Theano program written by hand with function,
    the same seed: the same costs and the same parameters, bit for bit."""
    data = load_digits()
    train_x, train_y = data.train[0][:200], data.train[1][:200]
    model = MLP([64, 32, 10], activation="tanh", dropout=0.2, seed=7)
    history = fit(model, (train_x, train_y), optimizer=Momentum(0.05, momentum=0.9), epochs=3, batch_size=50,
                  shuffle=False, progress=False, backend=backend)

    rng = np.random.default_rng(7)  # MLP draws, layer by layer: W1, the dropout seed, W2
    bound1, bound2 = np.sqrt(6 / (64 + 32)), np.sqrt(6 / (32 + 10))
    W1 = arignote.shared(rng.uniform(-bound1, bound1, (64, 32)), name="W1")
    b1 = arignote.shared(np.zeros(32), name="b1")
    srng = RandomStreams(int(rng.integers(2 ** 31)))
    W2 = arignote.shared(rng.uniform(-bound2, bound2, (32, 10)), name="W2")
    b2 = arignote.shared(np.zeros(10), name="b2")
    params = [W1, b1, W2, b2]
    x, y = T.matrix("x"), T.ivector("y")
    hidden = T.tanh(T.dot(x, W1) + b1)
    hidden = hidden * srng.binomial(size=hidden.shape, n=1, p=0.8, dtype=hidden.dtype) / 0.8
    p = T.nnet.softmax(T.dot(hidden, W2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(p, y))
    velocities = [arignote.shared(np.zeros_like(q.get_value())) for q in params]
    updates = []
    for q, g, v in zip(params, T.grad(cost, params), velocities):
        updates += [(v, 0.9 * v - 0.05 * g), (q, q + (0.9 * v - 0.05 * g))]
    accuracy = T.mean(T.eq(T.argmax(p, axis=1), y))
    train = arignote.function([x, y], [cost, accuracy], updates=updates, backend=backend)
    costs, accuracies = [], []
    for epoch in range(3):
        total = np.zeros(2)  # the loop's epoch means: batch values weighted by the batch sizes
        for i in range(0, 200, 50):
            total += np.asarray([float(v) for v in train(train_x[i:i + 50], train_y[i:i + 50])]) * 50
        costs.append(total[0] / 200)
        accuracies.append(total[1] / 200)

    np.testing.assert_array_equal(history["loss"], costs)
    np.testing.assert_array_equal(history["accuracy"], accuracies)
    for mine, theirs in zip(model.params, params):
        np.testing.assert_array_equal(mine.get_value(), theirs.get_value())


# -- the training loop -----------------------------------------------------------------------------

def small_digits():
    data = load_digits()
    return data.train[0][:400], data.train[1][:400], data.valid


def test_training_with_givens_and_with_arrays_agree_and_learn(backend):
    x, y, valid = small_digits()
    results = []
    for make in (lambda: (x, y), lambda: as_shared((x, y))):
        model = MLP([64, 32, 10], seed=1)
        trainer = Trainer(model, optimizer=SGD(0.2), backend=backend)
        history = trainer.fit(make(), valid=valid, epochs=4, batch_size=40, shuffle=False,
                              progress=False)
        results.append((history["loss"], history["val_accuracy"], [p.get_value() for p in model.params]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    for a, b in zip(results[0][2], results[1][2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert results[0][1][-1] > 0.75 and results[0][0][-1] < results[0][0][0] / 2


def test_shuffled_givens_training_matches_shuffled_arrays(backend):
    x, y, valid = small_digits()
    losses = []
    for data in ((x, y), as_shared((x, y))):
        model = MLP([64, 16, 10], seed=2)
        history = fit(model, data, valid=as_shared(valid), optimizer=Adam(0.01), epochs=3, batch_size=64,
                      shuffle=True, seed=3, progress=False, backend=backend)
        losses.append(history["loss"])
        assert history["val_accuracy"][-1] > 0.7
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12)


def test_early_stopping_with_patience_restores_the_best_epoch(backend):
    x, y, valid = small_digits()
    model = MLP([64, 16, 10], seed=0)
    trainer = Trainer(model, optimizer=SGD(ExponentialDecay(-0.05, rate=2.0, steps=10)), backend=backend)  # ascent
    history = trainer.fit((x, y), valid=valid, epochs=20, batch_size=40, patience=3, progress=False)
    assert history.stopped_early and len(history) == 4 and history.best_epoch == 0
    assert trainer.evaluate(valid)[0] == pytest.approx(history["val_loss"][0], rel=1e-12)
    learning = Trainer(MLP([64, 16, 10], seed=0), optimizer=SGD(0.2), backend=backend)
    history = learning.fit((x, y), valid=valid, epochs=5, batch_size=40, patience=3, monitor="val_accuracy",
                           progress=False)
    assert not history.stopped_early and len(history) == 5
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        learning.fit((x, y), epochs=1, patience=1, progress=False)


def test_history_and_predict(backend, tmp_path):
    x, y, valid = small_digits()
    model = MLP([64, 16, 10], seed=0)
    trainer = Trainer(model, optimizer=Adam(0.01), backend=backend)
    history = trainer.fit((x, y), valid=valid, epochs=2, progress=False)
    assert set(history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    assert len(history) == 2 and history.seconds_per_epoch > 0 and "2 epochs" in repr(history)
    assert trainer.backend_name == (backend or arignote.get_backend().name)
    predictions = trainer.predict(valid[0])
    assert predictions.shape == (len(valid[0]), 10)
    assert np.mean(predictions.argmax(axis=1) == valid[1]) == pytest.approx(history["val_accuracy"][-1])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install matplotlib"):
            history.plot()
    else:
        history.plot(tmp_path / "history.png")
        assert (tmp_path / "history.png").stat().st_size > 0


def test_plain_progress_lines_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    x, y, valid = small_digits()
    fit(MLP([64, 8, 10], seed=0), (x, y), valid=valid, epochs=2)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "val_accuracy" in out


def test_data_sets_are_pairs_of_arrays_or_of_tensors():
    x, y, valid = small_digits()
    with pytest.raises(TypeError, match="pair of two arrays or of two symbolic tensors"):
        fit(MLP([64, 8, 10], seed=0), (arignote.shared(x), y), epochs=1, progress=False)


def test_float_arrays_are_converted_to_floatX(floatX32, backend):
    x, y, valid = small_digits()
    model = MLP([64, 8, 10], seed=0)
    assert model.params[0].dtype == "float32"
    history = fit(model, (x.astype("float64"), y.astype("int64")), valid=valid, epochs=2, progress=False,
                  backend=backend)
    assert history["val_accuracy"][-1] > 0.3
    assert history.trainer.predict(valid[0].astype("float64")).dtype == np.float32


def test_importing_arignote_and_layers_stays_light():
    code = ("import sys, arignote, arignote.layers\n"
            "print(sorted(m for m in ('sklearn', 'tqdm', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_time_per_epoch_is_the_median_epoch():
    """A first epoch that also compiled (numba compiles at a function's first call) does not raise the
    time per epoch that the demo reports."""
    from arignote.layers.training import History

    history = History()
    assert np.isnan(history.seconds_per_epoch)
    for seconds in (8.8, 0.016, 0.017, 0.015):
        history.append(loss=1.0, seconds=seconds)
    assert history.seconds_per_epoch == pytest.approx(0.0165)
