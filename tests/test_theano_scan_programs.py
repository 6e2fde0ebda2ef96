"""Classic recurrent Theano programs, written as Theano's tutorials and deeplearning.net wrote them with
only the import changed, each run and checked against NumPy."""

from collections import OrderedDict

import numpy as np

import arignote as theano
import arignote.tensor as T
from arignote.tensor.shared_randomstreams import RandomStreams


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def numeric_grads(loss, params, eps=1e-6):
    """Central differences of loss() with respect to each array of ``params`` (changed in place)."""
    grads = []
    for p in params:
        g = np.zeros_like(p)
        for index in np.ndindex(*p.shape):
            saved = p[index]
            p[index] = saved + eps
            up = loss()
            p[index] = saved - eps
            down = loss()
            p[index] = saved
            g[index] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


# ---------------------------------------------------------------------------------------------------
# Theano's own scan tutorial ("Loop")


def test_tutorial_accumulator_of_a_shared_variable(backend):
    # the page's power and polynomial examples run as written in tests/theano_tutorial/loops.py
    k = theano.shared(0)
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
    accumulator = theano.function([n_sym], [], updates=updates, allow_input_downcast=True, backend=backend)
    assert k.get_value() == 0
    accumulator(5)
    assert k.get_value() == 5


def test_tutorial_recurrence_with_two_sequences(backend):
    X = T.vector("X")
    W = T.matrix("W")
    U = T.matrix("U")
    Y = T.matrix("Y")
    V = T.matrix("V")
    P = T.matrix("P")
    results, updates = theano.scan(lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
                                   sequences=[Y, P[::-1]], outputs_info=[X])
    compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results, backend=backend)
    x = np.zeros(2, dtype=theano.config.floatX)
    x[1] = 1
    w = np.ones((2, 2), dtype=theano.config.floatX)
    y = np.ones((5, 2), dtype=theano.config.floatX)
    y[0, :] = -3
    u = np.ones((2, 2), dtype=theano.config.floatX)
    p = np.ones((5, 2), dtype=theano.config.floatX)
    p[0, :] = 3
    v = np.ones((2, 2), dtype=theano.config.floatX)
    got = compute_seq(x, w, y, u, p, v)
    x_res = np.zeros((5, 2), dtype=theano.config.floatX)
    x_res[0] = np.tanh(x.dot(w) + y[0].dot(u) + p[4].dot(v))
    for i in range(1, 5):
        x_res[i] = np.tanh(x_res[i - 1].dot(w) + y[i].dot(u) + p[4 - i].dot(v))
    np.testing.assert_allclose(got, x_res, rtol=1e-12)


def test_tutorial_gibbs_sampling_with_shared_variables(backend):
    rng = np.random.RandomState(0)
    W_values = rng.uniform(-1, 1, (6, 4))
    bvis_values, bhid_values = rng.uniform(-1, 1, 6), rng.uniform(-1, 1, 4)
    W = theano.shared(W_values)
    bvis = theano.shared(bvis_values)
    bhid = theano.shared(bhid_values)
    trng = T.shared_randomstreams.RandomStreams(1234)

    def OneStep(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    sample = T.vector()
    values, updates = theano.scan(OneStep, outputs_info=sample, n_steps=10)
    gibbs10 = theano.function([sample], values[-1], updates=updates, backend=backend)
    draws = [gibbs10(np.zeros(6)) for _ in range(4)]
    assert all(d.shape == (6,) and set(np.unique(d)) <= {0.0, 1.0} for d in draws)
    assert len({tuple(d) for d in draws}) > 1


def test_tutorial_jacobian_and_hessian_with_scan(backend):
    x = T.dvector("x")
    y = x ** 2
    J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]), non_sequences=[y, x])
    f = theano.function([x], J, updates=updates, backend=backend)
    np.testing.assert_allclose(f([4, 4]), [[8, 0], [0, 8]])
    values = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(f(values), np.diag(2 * values))

    cost = y.sum()
    gy = T.grad(cost, x)
    H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]),
                             non_sequences=[gy, x])
    f = theano.function([x], H, updates=updates, backend=backend)
    np.testing.assert_allclose(f([4, 4]), [[2, 0], [0, 2]])

    # a jacobian of a less trivial function, against its closed form
    z = T.tanh(x * x[::-1]) + T.sum(x) * x
    Jz, _ = theano.scan(lambda i, z, x: T.grad(z[i], x), sequences=T.arange(z.shape[0]), non_sequences=[z, x])
    got = theano.function([x], Jz, backend=backend)(values)
    n = len(values)
    d = 1 - np.tanh(values * values[::-1]) ** 2
    expected = np.full((n, n), 0.0) + values[:, None] + np.diag(np.full(n, values.sum()))
    for i in range(n):
        expected[i, i] += d[i] * values[n - 1 - i]
        expected[i, n - 1 - i] += d[i] * values[i]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# an Elman RNN language model (deeplearning.net's rnnslu, trained to predict the next word)


def test_elman_rnn_language_model_training_step(backend):
    nv, de, nh, seed = 8, 4, 5, 123
    rng = np.random.RandomState(seed)
    floatX = theano.config.floatX
    values = {
        "emb": 0.2 * rng.uniform(-1.0, 1.0, (nv + 1, de)).astype(floatX),
        "Wx": 0.2 * rng.uniform(-1.0, 1.0, (de, nh)).astype(floatX),
        "Wh": 0.2 * rng.uniform(-1.0, 1.0, (nh, nh)).astype(floatX),
        "W": 0.2 * rng.uniform(-1.0, 1.0, (nh, nv)).astype(floatX),
        "bh": np.zeros(nh, dtype=floatX),
        "b": np.zeros(nv, dtype=floatX),
        "h0": np.zeros(nh, dtype=floatX),
    }
    emb, Wx, Wh, W, bh, b, h0 = [theano.shared(values[k].copy(), name=k) for k in ("emb", "Wx", "Wh", "W", "bh", "b", "h0")]
    params = [emb, Wx, Wh, W, bh, b, h0]

    idxs = T.ivector()
    x = emb[idxs]
    y_sentence = T.ivector("y_sentence")

    def recurrence(x_t, h_tm1):
        h_t = T.nnet.sigmoid(T.dot(x_t, Wx) + T.dot(h_tm1, Wh) + bh)
        s_t = T.nnet.softmax(T.dot(h_t, W) + b)
        return [h_t, s_t]

    [h, s], _ = theano.scan(fn=recurrence, sequences=x, outputs_info=[h0, None], n_steps=x.shape[0])
    p_y_given_x_sentence = s[:, 0, :]
    y_pred = T.argmax(p_y_given_x_sentence, axis=1)
    lr = T.scalar("lr")
    sentence_nll = -T.mean(T.log(p_y_given_x_sentence)[T.arange(x.shape[0]), y_sentence])
    sentence_gradients = T.grad(sentence_nll, params)
    sentence_updates = OrderedDict((p, p - lr * g) for p, g in zip(params, sentence_gradients))
    classify = theano.function(inputs=[idxs], outputs=y_pred, backend=backend)
    sentence_train = theano.function(inputs=[idxs, y_sentence, lr], outputs=sentence_nll, updates=sentence_updates,
                                     backend=backend)

    words = np.array([1, 4, 2, 7, 3, 6, 5, 0], dtype="int32")
    inputs_, targets = words[:-1], words[1:]

    def numpy_nll(v=values):
        hidden, nll = v["h0"], 0.0
        for word, target in zip(inputs_, targets):
            hidden = sigmoid(v["emb"][word] @ v["Wx"] + hidden @ v["Wh"] + v["bh"])
            nll -= np.log(softmax(hidden @ v["W"] + v["b"])[target])
        return nll / len(targets)

    def numpy_predictions(v=values):
        hidden, out = v["h0"], []
        for word in inputs_:
            hidden = sigmoid(v["emb"][word] @ v["Wx"] + hidden @ v["Wh"] + v["bh"])
            out.append(np.argmax(hidden @ v["W"] + v["b"]))
        return out

    np.testing.assert_array_equal(classify(inputs_), numpy_predictions())
    expected_grads = numeric_grads(numpy_nll, [values[k] for k in ("emb", "Wx", "Wh", "W", "bh", "b", "h0")])
    rate = 0.5
    nll = sentence_train(inputs_, targets, rate)
    np.testing.assert_allclose(nll, numpy_nll(), rtol=1e-10)
    for p, old, g in zip(params, [values[k] for k in ("emb", "Wx", "Wh", "W", "bh", "b", "h0")], expected_grads):
        np.testing.assert_allclose((old - p.get_value()) / rate, g, rtol=1e-5, atol=1e-8, err_msg=p.name)
    losses = [float(sentence_train(inputs_, targets, 2.0)) for _ in range(160)]
    assert all(b < a for a, b in zip(losses, losses[1:]))
    assert losses[-1] < nll * 0.2
    np.testing.assert_array_equal(classify(inputs_), targets)   # it learned the sentence


# ---------------------------------------------------------------------------------------------------
# deeplearning.net's LSTM sentiment model (lstm.py): embedding, LSTM with masks, mean pooling, softmax


def _p(pp, name):
    return "%s_%s" % (pp, name)


def numpy_floatX(data):
    return np.asarray(data, dtype=theano.config.floatX)


def lstm_layer(tparams, state_below, options, prefix="lstm", mask=None):
    nsteps = state_below.shape[0]
    if state_below.ndim == 3:
        n_samples = state_below.shape[1]
    else:
        n_samples = 1

    assert mask is not None

    def _slice(_x, n, dim):
        if _x.ndim == 3:
            return _x[:, :, n * dim:(n + 1) * dim]
        return _x[:, n * dim:(n + 1) * dim]

    def _step(m_, x_, h_, c_):
        preact = T.dot(h_, tparams[_p(prefix, "U")])
        preact += x_

        i = T.nnet.sigmoid(_slice(preact, 0, options["dim_proj"]))
        f = T.nnet.sigmoid(_slice(preact, 1, options["dim_proj"]))
        o = T.nnet.sigmoid(_slice(preact, 2, options["dim_proj"]))
        c = T.tanh(_slice(preact, 3, options["dim_proj"]))

        c = f * c_ + i * c
        c = m_[:, None] * c + (1. - m_)[:, None] * c_

        h = o * T.tanh(c)
        h = m_[:, None] * h + (1. - m_)[:, None] * h_

        return h, c

    state_below = (T.dot(state_below, tparams[_p(prefix, "W")]) + tparams[_p(prefix, "b")])

    dim_proj = options["dim_proj"]
    rval, updates = theano.scan(_step,
                                sequences=[mask, state_below],
                                outputs_info=[T.alloc(numpy_floatX(0.), n_samples, dim_proj),
                                              T.alloc(numpy_floatX(0.), n_samples, dim_proj)],
                                name=_p(prefix, "_layers"),
                                n_steps=nsteps)
    return rval[0]


def build_model(tparams, options):
    x = T.matrix("x", dtype="int64")
    mask = T.matrix("mask", dtype=theano.config.floatX)
    y = T.vector("y", dtype="int64")

    n_timesteps = x.shape[0]
    n_samples = x.shape[1]

    emb = tparams["Wemb"][x.flatten()].reshape([n_timesteps, n_samples, options["dim_proj"]])
    proj = lstm_layer(tparams, emb, options, prefix="lstm", mask=mask)
    proj = (proj * mask[:, :, None]).sum(axis=0)
    proj = proj / mask.sum(axis=0)[:, None]

    pred = T.nnet.softmax(T.dot(proj, tparams["U"]) + tparams["b"])

    off = 1e-8
    cost = -T.log(pred[T.arange(n_samples), y] + off).mean()
    return x, mask, y, pred, cost


def sgd(lr, tparams, grads, x, mask, y, cost, backend):
    gshared = [theano.shared(p.get_value() * 0., name="%s_grad" % k) for k, p in tparams.items()]
    gsup = [(gs, g) for gs, g in zip(gshared, grads)]
    f_grad_shared = theano.function([x, mask, y], cost, updates=gsup, name="sgd_f_grad_shared", backend=backend)
    pup = [(p, p - lr * g) for p, g in zip(tparams.values(), gshared)]
    f_update = theano.function([lr], [], updates=pup, name="sgd_f_update", backend=backend)
    return f_grad_shared, f_update


def numpy_lstm_cost(v, xs, masks, ys, dim):
    n_steps, n_samples = xs.shape
    state_below = v["Wemb"][xs] @ v["lstm_W"] + v["lstm_b"]
    h, c = np.zeros((n_samples, dim)), np.zeros((n_samples, dim))
    pooled = np.zeros((n_samples, dim))
    for t in range(n_steps):
        preact = h @ v["lstm_U"] + state_below[t]
        i, f, o = (sigmoid(preact[:, k * dim:(k + 1) * dim]) for k in range(3))
        new_c = f * c + i * np.tanh(preact[:, 3 * dim:])
        m = masks[t][:, None]
        c = m * new_c + (1 - m) * c
        h = m * (o * np.tanh(c)) + (1 - m) * h
        pooled += h * m
    pooled /= masks.sum(axis=0)[:, None]
    pred = softmax(pooled @ v["U"] + v["b"])
    return -np.log(pred[np.arange(n_samples), ys] + 1e-8).mean(), pred


def test_lstm_sentiment_training_step(backend):
    options = {"dim_proj": 4, "n_words": 10, "ydim": 2}
    rng = np.random.RandomState(7)
    dim = options["dim_proj"]
    params = OrderedDict()
    params["Wemb"] = (0.3 * rng.rand(options["n_words"], dim)).astype(theano.config.floatX)
    params["lstm_W"] = 0.4 * rng.randn(dim, 4 * dim)
    params["lstm_U"] = 0.4 * rng.randn(dim, 4 * dim)
    params["lstm_b"] = np.zeros(4 * dim)
    params["U"] = 0.3 * rng.randn(dim, options["ydim"]).astype(theano.config.floatX)
    params["b"] = np.zeros((options["ydim"],)).astype(theano.config.floatX)
    tparams = OrderedDict((k, theano.shared(v.copy(), name=k)) for k, v in params.items())

    x, mask, y, pred, cost = build_model(tparams, options)
    f_pred_prob = theano.function([x, mask], pred, name="f_pred_prob", backend=backend)
    grads = T.grad(cost, wrt=list(tparams.values()))
    lr = T.scalar(name="lr")
    f_grad_shared, f_update = sgd(lr, tparams, grads, x, mask, y, cost, backend)

    # three sentences of lengths 5, 3 and 4, padded with zeros and masked (prepare_data's layout)
    xs = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [2, 0, 4], [5, 0, 0]], dtype="int64")
    masks = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 1], [1, 0, 1], [1, 0, 0]], dtype=theano.config.floatX)
    ys = np.array([1, 0, 1], dtype="int64")

    want_cost, want_pred = numpy_lstm_cost(params, xs, masks, ys, dim)
    np.testing.assert_allclose(f_pred_prob(xs, masks), want_pred, rtol=1e-10)
    expected = numeric_grads(lambda: numpy_lstm_cost(params, xs, masks, ys, dim)[0], list(params.values()))
    first = f_grad_shared(xs, masks, ys)
    np.testing.assert_allclose(first, want_cost, rtol=1e-10)
    rate = 0.5
    f_update(rate)
    for (name, p), old, g in zip(tparams.items(), params.values(), expected):
        np.testing.assert_allclose((old - p.get_value()) / rate, g, rtol=1e-5, atol=1e-8, err_msg=name)
    after = f_grad_shared(xs, masks, ys)
    assert after < first
    new_values = {k: p.get_value() for k, p in tparams.items()}
    np.testing.assert_allclose(after, numpy_lstm_cost(new_values, xs, masks, ys, dim)[0], rtol=1e-10)


# ---------------------------------------------------------------------------------------------------
# deeplearning.net's RBM (rbm.py): CD-k with a Gibbs chain in scan, drawing from RandomStreams


class RBM(object):
    def __init__(self, input=None, n_visible=6, n_hidden=4, W=None, hbias=None, vbias=None, numpy_rng=None,
                 theano_rng=None):
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        if numpy_rng is None:
            numpy_rng = np.random.RandomState(1234)
        if theano_rng is None:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if W is None:
            initial_W = np.asarray(numpy_rng.uniform(low=-4 * np.sqrt(6. / (n_hidden + n_visible)),
                                                     high=4 * np.sqrt(6. / (n_hidden + n_visible)),
                                                     size=(n_visible, n_hidden)), dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name="W", borrow=True)
        if hbias is None:
            hbias = theano.shared(value=np.zeros(n_hidden, dtype=theano.config.floatX), name="hbias", borrow=True)
        if vbias is None:
            vbias = theano.shared(value=np.zeros(n_visible, dtype=theano.config.floatX), name="vbias", borrow=True)
        self.input = input
        if not input:
            self.input = T.matrix("input")
        self.W = W
        self.hbias = hbias
        self.vbias = vbias
        self.theano_rng = theano_rng
        self.params = [self.W, self.hbias, self.vbias]

    def free_energy(self, v_sample):
        wx_b = T.dot(v_sample, self.W) + self.hbias
        vbias_term = T.dot(v_sample, self.vbias)
        hidden_term = T.sum(T.log(1 + T.exp(wx_b)), axis=1)
        return -hidden_term - vbias_term

    def propup(self, vis):
        pre_sigmoid_activation = T.dot(vis, self.W) + self.hbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_h_given_v(self, v0_sample):
        pre_sigmoid_h1, h1_mean = self.propup(v0_sample)
        h1_sample = self.theano_rng.binomial(size=h1_mean.shape, n=1, p=h1_mean, dtype=theano.config.floatX)
        return [pre_sigmoid_h1, h1_mean, h1_sample]

    def propdown(self, hid):
        pre_sigmoid_activation = T.dot(hid, self.W.T) + self.vbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_v_given_h(self, h0_sample):
        pre_sigmoid_v1, v1_mean = self.propdown(h0_sample)
        v1_sample = self.theano_rng.binomial(size=v1_mean.shape, n=1, p=v1_mean, dtype=theano.config.floatX)
        return [pre_sigmoid_v1, v1_mean, v1_sample]

    def gibbs_hvh(self, h0_sample):
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h0_sample)
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v1_sample)
        return [pre_sigmoid_v1, v1_mean, v1_sample, pre_sigmoid_h1, h1_mean, h1_sample]

    def gibbs_vhv(self, v0_sample):
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v0_sample)
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h1_sample)
        return [pre_sigmoid_h1, h1_mean, h1_sample, pre_sigmoid_v1, v1_mean, v1_sample]

    def get_cost_updates(self, lr=0.1, persistent=None, k=1):
        pre_sigmoid_ph, ph_mean, ph_sample = self.sample_h_given_v(self.input)
        if persistent is None:
            chain_start = ph_sample
        else:
            chain_start = persistent
        (
            [pre_sigmoid_nvs, nv_means, nv_samples, pre_sigmoid_nhs, nh_means, nh_samples],
            updates
        ) = theano.scan(
            self.gibbs_hvh,
            outputs_info=[None, None, None, None, None, chain_start],
            n_steps=k,
            name="gibbs_hvh"
        )
        chain_end = nv_samples[-1]
        cost = T.mean(self.free_energy(self.input)) - T.mean(self.free_energy(chain_end))
        gparams = T.grad(cost, self.params, consider_constant=[chain_end])
        for gparam, param in zip(gparams, self.params):
            updates[param] = param - gparam * T.cast(lr, dtype=theano.config.floatX)
        if persistent:
            updates[persistent] = nh_samples[-1]
            monitoring_cost = self.get_pseudo_likelihood_cost(updates)
        else:
            monitoring_cost = self.get_reconstruction_cost(updates, pre_sigmoid_nvs[-1])
        self.chain = (pre_sigmoid_nvs, nv_means, nv_samples, nh_samples)
        return monitoring_cost, updates

    def get_reconstruction_cost(self, updates, pre_sigmoid_nv):
        cross_entropy = T.mean(
            T.sum(self.input * T.log(T.nnet.sigmoid(pre_sigmoid_nv)) +
                  (1 - self.input) * T.log(1 - T.nnet.sigmoid(pre_sigmoid_nv)), axis=1))
        return cross_entropy


def test_rbm_contrastive_divergence_with_a_gibbs_chain(backend):
    n_visible, n_hidden, k, batch = 6, 4, 3, 10
    data = (np.random.RandomState(3).rand(batch, n_visible) > 0.5).astype(theano.config.floatX)
    x = T.matrix("x")
    rbm = RBM(input=x, n_visible=n_visible, n_hidden=n_hidden, numpy_rng=np.random.RandomState(123),
              theano_rng=RandomStreams(2 ** 20))
    W0, hb0, vb0 = (p.get_value().copy() for p in rbm.params)
    cost, updates = rbm.get_cost_updates(lr=0.1, persistent=None, k=k)
    states = [v for v in updates if v not in rbm.params]
    assert len(states) >= 2   # the random states drawn inside the chain are among the updates
    assert all(isinstance(v, theano.SharedVariable) and v.name and "state" in v.name for v in states)
    pre_sigmoid_nvs, nv_means, nv_samples, nh_samples = rbm.chain
    train_rbm = theano.function([x], [cost, nv_samples, nv_means, pre_sigmoid_nvs, nh_samples], updates=updates,
                                name="train_rbm", backend=backend)
    state_before = [s.get_value().copy() for s in states]
    monitor, chain_v, chain_vmean, chain_pre, chain_h = train_rbm(data)
    assert chain_v.shape == (k, batch, n_visible) and chain_h.shape == (k, batch, n_hidden)
    assert set(np.unique(chain_v)) <= {0.0, 1.0} and set(np.unique(chain_h)) <= {0.0, 1.0}
    assert any(not np.array_equal(a, s.get_value()) for a, s in zip(state_before, states))
    np.testing.assert_allclose(chain_vmean, sigmoid(chain_pre), rtol=1e-12)
    # each step of the chain: v_t's means come from h_(t-1) (chain_h[t-1] for t > 0)
    for t in range(1, k):
        np.testing.assert_allclose(chain_pre[t], chain_h[t - 1] @ W0.T + vb0, rtol=1e-12)
    # the reconstruction cost and the CD-k update, from the chain's end
    p_last = sigmoid(chain_pre[-1])
    np.testing.assert_allclose(monitor, np.mean(np.sum(data * np.log(p_last) + (1 - data) * np.log(1 - p_last),
                                                       axis=1)), rtol=1e-10)
    end = chain_v[-1]
    ph0, phk = sigmoid(data @ W0 + hb0), sigmoid(end @ W0 + hb0)
    gW = -(data.T @ ph0) / batch + (end.T @ phk) / batch
    ghb = -ph0.mean(axis=0) + phk.mean(axis=0)
    gvb = -data.mean(axis=0) + end.mean(axis=0)
    for p, old, g in zip(rbm.params, (W0, hb0, vb0), (gW, ghb, gvb)):
        np.testing.assert_allclose(p.get_value(), old - 0.1 * g, rtol=1e-10, atol=1e-12, err_msg=p.name)
    # the next call draws other samples
    assert not np.array_equal(train_rbm(data)[1], chain_v)


def test_rbm_gibbs_chain_statistics(backend):
    # with W = 0 each visible unit is an independent Bernoulli(sigmoid(vbias)): the chain's samples
    # must show those frequencies
    n_visible, n_hidden, steps, batch = 4, 3, 25, 40
    vbias_values = np.array([-2.0, -0.5, 0.5, 2.0])
    rbm = RBM(n_visible=n_visible, n_hidden=n_hidden, W=theano.shared(np.zeros((n_visible, n_hidden))),
              vbias=theano.shared(vbias_values), theano_rng=RandomStreams(77))
    persistent_vis_chain = theano.shared(np.zeros((batch, n_visible), dtype=theano.config.floatX))
    ([presig_hids, hid_mfs, hid_samples, presig_vis, vis_mfs, vis_samples], updates) = theano.scan(
        rbm.gibbs_vhv, outputs_info=[None, None, None, None, None, persistent_vis_chain], n_steps=steps)
    updates.update({persistent_vis_chain: vis_samples[-1]})
    sample_fn = theano.function([], [vis_mfs[-1], vis_samples], updates=updates, name="sample_fn", backend=backend)
    means, samples = sample_fn()
    assert samples.shape == (steps, batch, n_visible)
    np.testing.assert_allclose(means, np.broadcast_to(sigmoid(vbias_values), (batch, n_visible)), rtol=1e-12)
    frequencies = samples.reshape(-1, n_visible).mean(axis=0)   # 1000 draws per unit
    np.testing.assert_allclose(frequencies, sigmoid(vbias_values), atol=0.06)
    np.testing.assert_array_equal(persistent_vis_chain.get_value(), samples[-1])


# ---------------------------------------------------------------------------------------------------
# deeplearning.net's hybrid Monte Carlo sampler (hmc.py) on a 2-D Gaussian


def kinetic_energy(vel):
    return 0.5 * (vel ** 2).sum(axis=1)


def hamiltonian(pos, vel, energy_fn):
    return energy_fn(pos) + kinetic_energy(vel)


def metropolis_hastings_accept(energy_prev, energy_next, s_rng):
    ediff = energy_prev - energy_next
    return (T.exp(ediff) - s_rng.uniform(size=energy_prev.shape)) >= 0


def simulate_dynamics(initial_pos, initial_vel, stepsize, n_steps, energy_fn):
    def leapfrog(pos, vel, step):
        dE_dpos = T.grad(energy_fn(pos).sum(), pos)
        new_vel = vel - step * dE_dpos
        new_pos = pos + step * new_vel
        return [new_pos, new_vel], {}

    initial_energy = energy_fn(initial_pos)
    dE_dpos = T.grad(initial_energy.sum(), initial_pos)
    vel_half_step = initial_vel - 0.5 * stepsize * dE_dpos
    pos_full_step = initial_pos + stepsize * vel_half_step

    (all_pos, all_vel), scan_updates = theano.scan(
        leapfrog,
        outputs_info=[
            dict(initial=pos_full_step),
            dict(initial=vel_half_step),
        ],
        non_sequences=[stepsize],
        n_steps=n_steps - 1)
    final_pos = all_pos[-1]
    final_vel = all_vel[-1]
    assert not scan_updates
    energy = energy_fn(final_pos)
    final_vel = final_vel - 0.5 * stepsize * T.grad(energy.sum(), final_pos)
    return final_pos, final_vel


def hmc_move(s_rng, positions, energy_fn, stepsize, n_steps):
    initial_vel = s_rng.normal(size=positions.shape)
    final_pos, final_vel = simulate_dynamics(initial_pos=positions, initial_vel=initial_vel, stepsize=stepsize,
                                             n_steps=n_steps, energy_fn=energy_fn)
    accept = metropolis_hastings_accept(energy_prev=hamiltonian(positions, initial_vel, energy_fn),
                                        energy_next=hamiltonian(final_pos, final_vel, energy_fn), s_rng=s_rng)
    return accept, final_pos


def hmc_updates(positions, stepsize, avg_acceptance_rate, final_pos, accept, target_acceptance_rate, stepsize_inc,
                stepsize_dec, stepsize_min, stepsize_max, avg_acceptance_slowness):
    accept_matrix = accept.dimshuffle(0, *(("x",) * (final_pos.ndim - 1)))
    new_positions = T.switch(accept_matrix, final_pos, positions)
    _new_stepsize = T.switch(avg_acceptance_rate > target_acceptance_rate, stepsize * stepsize_inc,
                             stepsize * stepsize_dec)
    new_stepsize = T.clip(_new_stepsize, stepsize_min, stepsize_max)
    # (the tutorial spells the dtype theano.scalar.upcast(accept.dtype, avg_acceptance_rate.dtype))
    new_acceptance_rate = T.add(avg_acceptance_slowness * avg_acceptance_rate,
                                (1.0 - avg_acceptance_slowness) * accept.mean(dtype=avg_acceptance_rate.dtype))
    return [(positions, new_positions), (stepsize, new_stepsize), (avg_acceptance_rate, new_acceptance_rate)]


class HMC_sampler(object):
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)

    @classmethod
    def new_from_shared_positions(cls, shared_positions, energy_fn, initial_stepsize=0.01, target_acceptance_rate=.9,
                                  n_steps=20, stepsize_dec=0.98, stepsize_min=0.001, stepsize_max=0.25,
                                  stepsize_inc=1.02, avg_acceptance_slowness=0.9, seed=12345, backend=None):
        stepsize = theano.shared(initial_stepsize, "hmc_stepsize")
        avg_acceptance_rate = theano.shared(target_acceptance_rate, "avg_acceptance_rate")
        s_rng = RandomStreams(seed)
        accept, final_pos = hmc_move(s_rng, shared_positions, energy_fn, stepsize, n_steps)
        simulate_updates = hmc_updates(shared_positions, stepsize, avg_acceptance_rate, final_pos=final_pos,
                                       accept=accept, stepsize_min=stepsize_min, stepsize_max=stepsize_max,
                                       stepsize_inc=stepsize_inc, stepsize_dec=stepsize_dec,
                                       target_acceptance_rate=target_acceptance_rate,
                                       avg_acceptance_slowness=avg_acceptance_slowness)
        simulate = theano.function([], [], updates=simulate_updates, backend=backend)
        return cls(positions=shared_positions, stepsize=stepsize, stepsize_min=stepsize_min,
                   stepsize_max=stepsize_max, avg_acceptance_rate=avg_acceptance_rate,
                   target_acceptance_rate=target_acceptance_rate, s_rng=s_rng, _updates=simulate_updates,
                   simulate=simulate)

    def draw(self, **kwargs):
        self.simulate()
        return self.positions.get_value(borrow=False)


def test_hmc_samples_a_2d_gaussian(backend):
    batchsize, dim, n_samples, burnin = 50, 2, 300, 100
    rng = np.random.RandomState(123)
    mu = np.array([1.5, -0.5])
    cov = np.array([[1.0, 0.95], [0.95, 1.0]])   # narrow along one axis: the step size must adapt
    cov_inv = np.linalg.inv(cov)

    def gaussian_energy(x):
        return 0.5 * (T.dot((x - mu), cov_inv) * (x - mu)).sum(axis=1)

    position = rng.randn(batchsize, dim).astype(theano.config.floatX)
    position = theano.shared(position)
    sampler = HMC_sampler.new_from_shared_positions(position, gaussian_energy, initial_stepsize=0.05,
                                                    stepsize_max=0.5, n_steps=10, backend=backend)
    garbage = [sampler.draw() for _ in range(burnin)]
    _samples = np.asarray([sampler.draw() for _ in range(n_samples)])
    samples = _samples.T.reshape(dim, -1).T
    assert np.all(abs(sampler.avg_acceptance_rate.get_value() - sampler.target_acceptance_rate) < .1)
    assert np.all(sampler.stepsize.get_value() >= sampler.stepsize_min)
    assert np.all(sampler.stepsize.get_value() <= sampler.stepsize_max)
    assert sampler.stepsize.get_value() < sampler.stepsize_max   # adapted, not stuck at the bound
    np.testing.assert_allclose(samples.mean(axis=0), mu, atol=0.1)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.1)
    assert len(garbage) == burnin
    assert len(np.unique(samples[:, 0])) > 0.5 * len(samples)   # the chains move


def test_hmc_leapfrog_matches_numpy(backend):
    mu = np.array([1.5, -0.5])
    cov_inv = np.linalg.inv(np.array([[1.0, 0.95], [0.95, 1.0]]))

    def gaussian_energy(x):
        return 0.5 * (T.dot((x - mu), cov_inv) * (x - mu)).sum(axis=1)

    pos, vel, step = T.matrix("pos"), T.matrix("vel"), T.scalar("step")
    final_pos, final_vel = simulate_dynamics(pos, vel, step, 8, gaussian_energy)
    run = theano.function([pos, vel, step], [final_pos, final_vel], backend=backend)
    rng = np.random.RandomState(5)
    p0, v0 = rng.randn(4, 2), rng.randn(4, 2)
    got_pos, got_vel = run(p0, v0, 0.1)

    def grad_energy(x):
        return (x - mu) @ cov_inv

    v = v0 - 0.05 * grad_energy(p0)
    p = p0 + 0.1 * v
    for _ in range(7):
        v = v - 0.1 * grad_energy(p)
        p = p + 0.1 * v
    v = v - 0.05 * grad_energy(p)
    np.testing.assert_allclose(got_pos, p, rtol=1e-12)
    np.testing.assert_allclose(got_vel, v, rtol=1e-12)
