"""The workloads of ``arignote bench``: their data, their hand-written NumPy baselines, the builders that
run them on arignote's backends and PyTensor (one Theano-style graph builder each), JAX (jitted) and
PyTorch (eager, with autograd), and what counts as their work (FLOPs or bytes)."""

import dataclasses
import functools
from types import SimpleNamespace
from typing import Any, Callable, NamedTuple

import numpy as np

LR, L2 = np.float32(0.01), np.float32(1e-4)  # SGD learning rate, weight of the L2 penalty
PARAMS = ("W1", "b1", "W2", "b2")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Problem sizes. The workload names describe the defaults; tests pass tiny ones."""

    mlp: tuple = (784, 500, 10)  # input, hidden, classes
    batches: tuple = (20, 500)  # mlp-train-b20, mlp-train-b500
    vector: int = 4_000_000  # elemwise-4m, reduce-4m
    logits: tuple = (2048, 1000)  # softmax-xent
    gemm: int = 2048  # the GEMM peak's n
    copy_mb: int = 256  # the bandwidth's array
    scan_steps: int = 100_000  # scan-overhead
    lstm: tuple = (64, 128, 50, 32)  # lstm-train, compile-lstm-cold: inputs, units, steps, batch
    lenet: tuple = (128, 28)  # lenet-train: batch, image side


class Compiled(NamedTuple):
    """``run()`` does one iteration (what is timed); ``observe(run())`` gives the arrays to verify."""

    run: Callable[[], Any]
    observe: Callable[[Any], list] = None

    def result(self):
        out = self.run()
        return self.observe(out) if self.observe else _arrays(out)


def _arrays(out):
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o.detach().cpu().numpy() if hasattr(o, "detach") else o) for o in out]


# ---------------------------------------------------------------------------------------------------
# Peers and arignote share one Theano-style graph builder per workload; `api` is the library's spelling.


def _arignote_api(backend):
    import arignote
    import arignote.tensor as T

    return SimpleNamespace(T=T, shared=arignote.shared, grad=arignote.grad, scan=arignote.scan,
                           function=functools.partial(arignote.function, backend=backend),
                           softmax=T.nnet.softmax, nll=T.nnet.categorical_crossentropy)


def _pytensor_api(_):
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import softmax

    return SimpleNamespace(T=pt, shared=pytensor.shared, grad=pytensor.grad, function=pytensor.function,
                           scan=pytensor.scan,
                           softmax=lambda z: softmax(z, axis=-1),
                           nll=lambda p, y: -pt.log(p[pt.arange(y.shape[0]), y]))


def _theano_style(build):
    """Implementations for arignote's backends and for PyTensor from one graph builder ``build(api, d)``."""
    return {"arignote": lambda d, backend: build(_arignote_api(backend), d),
            "pytensor": lambda d, backend: build(_pytensor_api(backend), d)}


# An implementation is make(data, backend name) -> compile; compile() -> Compiled. Graph building happens
# in make, so compile() is exactly "function(...)" (compile-* time compile() plus the first run()).

# --- MLP: one SGD step of a tanh MLP with softmax, mean NLL and an L2 penalty on both weight matrices


def _mlp_data(sizes, batch):
    rng = np.random.default_rng(20)
    i, h, o = sizes.mlp
    b1, b2 = np.sqrt(6 / (i + h)), np.sqrt(6 / (h + o))  # Glorot, as in the Theano tutorial's MLP
    return {"x": rng.random((batch, i), dtype=np.float32), "y": rng.integers(0, o, batch).astype(np.int32),
            "W1": rng.uniform(-b1, b1, (i, h)).astype(np.float32), "b1": np.zeros(h, np.float32),
            # W2 is random, not zero as in the tutorial, so that the first step's dW1 is not zero
            "W2": rng.uniform(-b2, b2, (h, o)).astype(np.float32), "b2": np.zeros(o, np.float32)}


def _mlp_observe(d, cost, params):
    """What a step is checked by: its cost and how much it moved each parameter."""
    return [np.asarray(cost)] + [np.asarray(p, np.float64) - d[k] for k, p in zip(PARAMS, params)]


def _mlp_numpy(d, _):
    def compile():
        p = {k: d[k].copy() for k in PARAMS}
        x, y = d["x"], d["y"]
        rows = np.arange(len(y))

        def step():
            W1, b1, W2, b2 = (p[k] for k in PARAMS)
            hid = np.tanh(x @ W1 + b1)
            z = hid @ W2 + b2
            z -= z.max(axis=1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(axis=1, keepdims=True)
            cost = -np.log(prob[rows, y]).mean() + L2 * (np.vdot(W1, W1) + np.vdot(W2, W2))
            dz = prob  # d cost / d z = (softmax - onehot) / B
            dz[rows, y] -= 1
            dz /= len(y)
            dh = dz @ W2.T
            dh *= 1 - hid * hid
            W2 -= LR * (hid.T @ dz + 2 * L2 * W2)
            b2 -= LR * dz.sum(axis=0)
            W1 -= LR * (x.T @ dh + 2 * L2 * W1)
            b1 -= LR * dh.sum(axis=0)
            return cost

        return Compiled(step, lambda cost: _mlp_observe(d, cost, [p[k] for k in PARAMS]))
    return compile


def _mlp_graph(api, d):
    T = api.T
    x, y = T.fmatrix("x"), T.ivector("y")
    params = [api.shared(d[k].copy(), name=k) for k in PARAMS]
    W1, b1, W2, b2 = params
    hid = T.tanh(T.dot(x, W1) + b1)
    prob = api.softmax(T.dot(hid, W2) + b2)
    cost = T.mean(api.nll(prob, y)) + L2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    updates = [(p, p - LR * g) for p, g in zip(params, api.grad(cost, params))]

    def compile():
        train = api.function([x, y], cost, updates=updates)
        return Compiled(lambda: train(d["x"], d["y"]),
                        lambda c: _mlp_observe(d, c, [p.get_value(borrow=True) for p in params]))
    return compile


def _mlp_jax(d, _):
    import jax
    import jax.numpy as jnp

    def loss(params, x, y):
        W1, b1, W2, b2 = params
        logp = jax.nn.log_softmax(jnp.tanh(x @ W1 + b1) @ W2 + b2)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean() + L2 * ((W1 ** 2).sum() + (W2 ** 2).sum())

    def step(params, x, y):
        cost, grads = jax.value_and_grad(loss)(params, x, y)
        return cost, [p - LR * g for p, g in zip(params, grads)]

    def compile():
        train, x, y = jax.jit(step), jnp.asarray(d["x"]), jnp.asarray(d["y"])
        state = [jnp.asarray(d[k]) for k in PARAMS]

        def run():
            cost, state[:] = train(state, x, y)
            return jax.block_until_ready((cost, state))[0]
        return Compiled(run, lambda c: _mlp_observe(d, c, [np.asarray(p) for p in state]))
    return compile


def _mlp_torch(d, _):
    import torch

    def compile():
        params = [torch.tensor(d[k], requires_grad=True) for k in PARAMS]
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"]).long()

        def run():
            W1, b1, W2, b2 = params
            z = torch.tanh(x @ W1 + b1) @ W2 + b2
            cost = torch.nn.functional.cross_entropy(z, y) + float(L2) * ((W1 ** 2).sum() + (W2 ** 2).sum())
            grads = torch.autograd.grad(cost, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= float(LR) * g
            return cost.detach()
        return Compiled(run, lambda c: _mlp_observe(d, c.numpy(), [p.detach().numpy() for p in params]))
    return compile


MLP_IMPLS = {"numpy": _mlp_numpy, **_theano_style(_mlp_graph), "jax": _mlp_jax, "torch": _mlp_torch}


def _mlp_flops(sizes, batch):
    i, h, o = sizes.mlp
    return 2 * batch * (2 * i * h + 3 * h * o)


# --- elemwise-4m: exp(-a*a) * sin(b) + tanh(a*b)


def _two_vectors(sizes):
    rng = np.random.default_rng(4)
    return {"a": rng.standard_normal(sizes.vector, np.float32), "b": rng.standard_normal(sizes.vector, np.float32)}


def _elemwise_numpy(d, _):
    a, b = d["a"], d["b"]

    def run():  # in place where possible: three temporaries, no more
        out = a * a
        np.negative(out, out=out)
        np.exp(out, out=out)
        s = np.sin(b)
        out *= s
        np.multiply(a, b, out=s)
        np.tanh(s, out=s)
        out += s
        return out
    return lambda: Compiled(run)


def _elemwise_graph(api, d):
    T = api.T
    a, b = T.fvector("a"), T.fvector("b")
    out = T.exp(-a * a) * T.sin(b) + T.tanh(a * b)

    def compile():
        f = api.function([a, b], out)
        return Compiled(lambda: f(d["a"], d["b"]))
    return compile


def _jax_jit(fn, *names):
    def make(d, _):
        import jax
        import jax.numpy as jnp

        def compile():
            f, args = jax.jit(fn(jnp, jax)), [jnp.asarray(d[n]) for n in names]
            return Compiled(lambda: jax.block_until_ready(f(*args)))
        return compile
    return make


def _torch_eager(fn, *names):
    def make(d, _):
        import torch

        def compile():
            f, args = fn(torch), [torch.from_numpy(np.asarray(d[n])) for n in names]
            return Compiled(lambda: f(*args))
        return compile
    return make


ELEMWISE_IMPLS = {
    "numpy": _elemwise_numpy, **_theano_style(_elemwise_graph),
    "jax": _jax_jit(lambda jnp, jax: lambda a, b: jnp.exp(-a * a) * jnp.sin(b) + jnp.tanh(a * b), "a", "b"),
    "torch": _torch_eager(lambda t: lambda a, b: t.exp(-a * a) * t.sin(b) + t.tanh(a * b), "a", "b"),
}


# --- reduce-4m: ((a - a.mean()) ** 2).sum()


def _reduce_numpy(d, _):
    a = d["a"]

    def run():
        dev = a - a.mean()
        return np.dot(dev, dev)
    return lambda: Compiled(run)


def _reduce_graph(api, d):
    a = api.T.fvector("a")
    out = ((a - a.mean()) ** 2).sum()

    def compile():
        f = api.function([a], out)
        return Compiled(lambda: f(d["a"]))
    return compile


REDUCE_IMPLS = {
    "numpy": _reduce_numpy, **_theano_style(_reduce_graph),
    "jax": _jax_jit(lambda jnp, jax: lambda a: ((a - a.mean()) ** 2).sum(), "a"),
    "torch": _torch_eager(lambda t: lambda a: ((a - a.mean()) ** 2).sum(), "a"),
}


# --- softmax-xent: mean cross-entropy of softmax(z) with integer labels, and its gradient with respect to z


def _logits(sizes):
    rng = np.random.default_rng(2)
    rows, classes = sizes.logits
    return {"z": rng.standard_normal((rows, classes), np.float32),
            "y": rng.integers(0, classes, rows).astype(np.int32)}


def _xent_numpy(d, _):
    z, y = d["z"], d["y"]
    rows = np.arange(len(y))

    def run():
        top = z.max(axis=1, keepdims=True)
        e = np.exp(z - top)
        s = e.sum(axis=1, keepdims=True)
        loss = (np.log(s[:, 0]) + top[:, 0] - z[rows, y]).mean()
        e /= s  # the gradient: (softmax - onehot) / rows
        e[rows, y] -= 1
        e /= len(y)
        return loss, e
    return lambda: Compiled(run)


def _xent_graph(api, d):
    T = api.T
    z, y = T.fmatrix("z"), T.ivector("y")
    loss = T.mean(api.nll(api.softmax(z), y))

    def compile():
        f = api.function([z, y], [loss, api.grad(loss, z)])
        return Compiled(lambda: f(d["z"], d["y"]))
    return compile


def _xent_jax(jnp, jax):
    def loss(z, y):
        return -jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], axis=1).mean()
    return jax.value_and_grad(loss)


def _xent_torch(torch):
    def run(z, y):
        z = z.detach().requires_grad_()
        loss = torch.nn.functional.cross_entropy(z, y.long())
        return loss.detach(), torch.autograd.grad(loss, z)[0]
    return run


XENT_IMPLS = {"numpy": _xent_numpy, **_theano_style(_xent_graph), "jax": _jax_jit(_xent_jax, "z", "y"),
              "torch": _torch_eager(_xent_torch, "z", "y")}


# --- call-overhead: a compiled a + 1 on a 0-d input; call-overhead-vector: on a short vector, so that the
# call makes an array output (its shape known only once the program ran)


def _call_numpy(d, _):
    a = d["a"]
    return lambda: Compiled(lambda: a + 1)


def _call_graph(api, d):
    a = (api.T.fscalar if d["a"].ndim == 0 else api.T.fvector)("a")

    def compile():
        f = api.function([a], a + 1)
        return Compiled(lambda: f(d["a"]))
    return compile


CALL_IMPLS = {"numpy": _call_numpy, **_theano_style(_call_graph),
              "jax": _jax_jit(lambda jnp, jax: lambda a: a + 1, "a"),
              "torch": _torch_eager(lambda t: lambda a: a + 1, "a")}


# --- scan-overhead: s = 0.999 * s + x_t over a float32 vector; the last state. What a loop costs per step.

DECAY = np.float32(0.999)


def _scan_data(sizes):
    return {"x": np.random.default_rng(7).standard_normal(sizes.scan_steps, np.float32),
            "s0": np.array(0.5, np.float32)}


def _scan_numpy(d, _):
    x, s0 = d["x"], d["s0"]

    def run():  # float32 throughout: iterating x gives np.float32 scalars
        s = s0
        for x_t in x:
            s = DECAY * s + x_t
        return s
    return lambda: Compiled(run)


def _scan_graph(api, d):
    T = api.T
    x, s0 = T.fvector("x"), T.fscalar("s0")
    states, _ = api.scan(lambda x_t, s: DECAY * s + x_t, sequences=x, outputs_info=s0)

    def compile():
        f = api.function([x, s0], states[-1])
        return Compiled(lambda: f(d["x"], d["s0"]))
    return compile


def _scan_jax(jnp, jax):
    def last(x, s0):
        return jax.lax.scan(lambda s, x_t: (DECAY * s + x_t, None), s0, x)[0]
    return last


def _scan_torch(torch):
    def run(x, s0):  # eager: a Python loop over 0-d tensors
        s = s0
        for x_t in x:
            s = float(DECAY) * s + x_t
        return s
    return run


SCAN_IMPLS = {"numpy": _scan_numpy, **_theano_style(_scan_graph), "jax": _jax_jit(_scan_jax, "x", "s0"),
              "torch": _torch_eager(_scan_torch, "x", "s0")}


# --- lstm-train: one SGD step of an LSTM (gates i, f, o, g in that order along the 4H columns) on a
# sequence X of (steps, batch, inputs), h0 = c0 = 0; loss = mean of the last hidden state squared; the
# gradient runs through every step (BPTT) to Wx (inputs, 4H), Wh (H, 4H) and b (4H)

LSTM_PARAMS = ("Wx", "Wh", "b")
LSTM_LR = np.float32(1.0)  # large, so that a step moves the parameters well above float32 rounding


def _lstm_data(sizes):
    rng = np.random.default_rng(50)
    n_in, h, steps, batch = sizes.lstm
    bound = 1 / np.sqrt(h)  # PyTorch's nn.LSTM initialisation
    return {"X": rng.standard_normal((steps, batch, n_in), np.float32),
            "Wx": rng.uniform(-bound, bound, (n_in, 4 * h)).astype(np.float32),
            "Wh": rng.uniform(-bound, bound, (h, 4 * h)).astype(np.float32),
            "b": rng.uniform(-bound, bound, 4 * h).astype(np.float32)}


def _lstm_observe(d, cost, params):
    """As for the MLP: the cost and how much the step moved each parameter (LSTM_LR times its gradient)."""
    return [np.asarray(cost)] + [np.asarray(p, np.float64) - d[k] for k, p in zip(LSTM_PARAMS, params)]


def _lstm_numpy(d, _):
    def compile():
        p = {k: d[k].copy() for k in LSTM_PARAMS}
        X = d["X"]
        steps, batch, n_in = X.shape
        H = d["Wh"].shape[0]
        flat_x = X.reshape(-1, n_in)
        hs = np.zeros((steps + 1, batch, H), np.float32)  # h_0 .. h_T
        cs = np.zeros((steps + 1, batch, H), np.float32)
        tanh_c = np.empty((steps, batch, H), np.float32)
        dz = np.empty((steps, batch, 4 * H), np.float32)  # gradient of the pre-activations
        scratch = np.empty((batch, H), np.float32)

        def step():
            Wx, Wh, b = (p[k] for k in LSTM_PARAMS)
            gates = (flat_x @ Wx).reshape(steps, batch, 4 * H)  # every step's input product at once
            gates += b
            for t in range(steps):  # forward: gates[t] becomes the gates' values, kept for the backward pass
                z = gates[t]
                z += hs[t] @ Wh
                s = z[:, :3 * H]
                np.negative(s, out=s)
                np.exp(s, out=s)
                s += 1
                np.reciprocal(s, out=s)  # sigmoid of i, f, o
                np.tanh(z[:, 3 * H:], out=z[:, 3 * H:])  # g
                i, f, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
                np.multiply(f, cs[t], out=cs[t + 1])
                np.multiply(i, g, out=scratch)
                cs[t + 1] += scratch
                np.tanh(cs[t + 1], out=tanh_c[t])
                np.multiply(o, tanh_c[t], out=hs[t + 1])
            h = hs[steps]
            cost = np.vdot(h, h) / np.float32(h.size)
            dh = h * np.float32(2 / h.size)
            dc = np.zeros((batch, H), np.float32)
            for t in range(steps - 1, -1, -1):  # backward through time
                z, d_z, tc = gates[t], dz[t], tanh_c[t]
                i, f, o, g = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
                np.multiply(dh, tc, out=d_z[:, 2 * H:3 * H])  # d o
                np.multiply(tc, tc, out=scratch)
                np.subtract(1, scratch, out=scratch)
                np.multiply(scratch, o, out=scratch)
                np.multiply(scratch, dh, out=scratch)
                dc += scratch  # d c_t
                np.multiply(dc, g, out=d_z[:, :H])  # d i
                np.multiply(dc, cs[t], out=d_z[:, H:2 * H])  # d f
                np.multiply(dc, i, out=d_z[:, 3 * H:])  # d g
                dc *= f  # d c_{t-1}
                s = z[:, :3 * H]
                d_z[:, :3 * H] *= s * (1 - s)  # through the sigmoids
                d_z[:, 3 * H:] *= 1 - g * g  # through the tanh
                if t:
                    dh = d_z @ Wh.T
            flat_dz = dz.reshape(-1, 4 * H)
            Wx -= LSTM_LR * (flat_x.T @ flat_dz)
            Wh -= LSTM_LR * (hs[:steps].reshape(-1, H).T @ flat_dz)
            b -= LSTM_LR * flat_dz.sum(axis=0)
            return cost

        return Compiled(step, lambda cost: _lstm_observe(d, cost, [p[k] for k in LSTM_PARAMS]))
    return compile


def _lstm_graph(api, d):
    T = api.T
    X = T.ftensor3("X")
    params = [api.shared(d[k].copy(), name=k) for k in LSTM_PARAMS]
    H = d["Wh"].shape[0]

    def step(x_t, h, c, Wx, Wh, b):
        z = T.dot(x_t, Wx) + T.dot(h, Wh) + b
        i, f, o = T.sigmoid(z[:, :H]), T.sigmoid(z[:, H:2 * H]), T.sigmoid(z[:, 2 * H:3 * H])
        c = f * c + i * T.tanh(z[:, 3 * H:])
        return o * T.tanh(c), c

    zeros = T.zeros((X.shape[1], H), dtype="float32")
    (hs, _), _ = api.scan(step, sequences=X, outputs_info=[zeros, zeros], non_sequences=params)
    cost = T.mean(hs[-1] ** 2)
    updates = [(p, p - LSTM_LR * g) for p, g in zip(params, api.grad(cost, params))]

    def compile():
        train = api.function([X], cost, updates=updates)
        return Compiled(lambda: train(d["X"]),
                        lambda c: _lstm_observe(d, c, [p.get_value(borrow=True) for p in params]))
    return compile


def _lstm_jax(d, _):
    import jax
    import jax.numpy as jnp

    H = d["Wh"].shape[0]

    def loss(params, X):
        Wx, Wh, b = params

        def step(carry, x_w):
            h, c = carry
            z = x_w + h @ Wh
            i, f, o = jax.nn.sigmoid(z[:, :H]), jax.nn.sigmoid(z[:, H:2 * H]), jax.nn.sigmoid(z[:, 2 * H:3 * H])
            c = f * c + i * jnp.tanh(z[:, 3 * H:])
            return (o * jnp.tanh(c), c), None

        zeros = jnp.zeros((X.shape[1], H), X.dtype)
        (h, _), _ = jax.lax.scan(step, (zeros, zeros), X @ Wx + b)  # the input products before the loop
        return jnp.mean(h ** 2)

    def step(params, X):
        cost, grads = jax.value_and_grad(loss)(params, X)
        return cost, [p - LSTM_LR * g for p, g in zip(params, grads)]

    def compile():
        train, X = jax.jit(step), jnp.asarray(d["X"])
        state = [jnp.asarray(d[k]) for k in LSTM_PARAMS]

        def run():
            cost, state[:] = train(state, X)
            return jax.block_until_ready((cost, state))[0]
        return Compiled(run, lambda c: _lstm_observe(d, c, [np.asarray(p) for p in state]))
    return compile


def _lstm_torch(d, _):
    import torch

    n_in, H = d["Wx"].shape[0], d["Wh"].shape[0]
    order = np.r_[0:2 * H, 3 * H:4 * H, 2 * H:3 * H]  # nn.LSTM's gates are i, f, g, o; ours i, f, o, g
    back = np.argsort(order)

    def compile():
        lstm = torch.nn.LSTM(n_in, H)
        with torch.no_grad():
            lstm.weight_ih_l0.copy_(torch.from_numpy(d["Wx"][:, order].T.copy()))
            lstm.weight_hh_l0.copy_(torch.from_numpy(d["Wh"][:, order].T.copy()))
            lstm.bias_ih_l0.copy_(torch.from_numpy(d["b"][order]))
            lstm.bias_hh_l0.zero_()
        lstm.bias_hh_l0.requires_grad_(False)  # one bias, as in the other implementations
        params = [lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0]
        X = torch.from_numpy(d["X"])

        def run():
            _, (h, _) = lstm(X)
            cost = (h[0] ** 2).mean()
            grads = torch.autograd.grad(cost, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= float(LSTM_LR) * g
            return cost.detach()

        def observe(cost):
            Wx, Wh, b = (p.detach().numpy() for p in params)
            return _lstm_observe(d, cost.numpy(), [Wx.T[:, back], Wh.T[:, back], b[back]])
        return Compiled(run, observe)
    return compile


LSTM_IMPLS = {"numpy": _lstm_numpy, **_theano_style(_lstm_graph), "jax": _lstm_jax, "torch": _lstm_torch}


def _lstm_flops(sizes):
    """Its matrix products: X·Wx and dWx = Xᵀ·dz (2·T·B·I·4H each), h·Wh and dWh = hᵀ·dz (2·T·B·H·4H
    each), dh = dz·Whᵀ for the steps after the first (2·(T-1)·B·4H·H)."""
    n_in, h, steps, batch = sizes.lstm
    return 2 * batch * 4 * h * (steps * (2 * n_in + 3 * h) - h)


# ---------------------------------------------------------------------------------------------------
# The workloads


class Goal(NamedTuple):
    """What a workload should reach on some backends: the row's ``measure`` ("ratio", "median_s", "rate"
    when the rate is a time per step, or a memory measure: "peak_extra_bytes", "left_bytes") at most
    ``bound``, a number or a function of the sizes; with ``at_least``, the measure ("limit_fraction",
    the "of limit" column) at least ``bound``."""

    backends: tuple
    measure: str
    bound: Any
    at_least: bool = False


@dataclasses.dataclass
class Workload:
    name: str
    description: str
    impls: dict = None  # family -> make(data, backend) -> compile
    setup: Callable = None  # sizes -> data
    limit: str = None  # "gemm": work is FLOPs; "bandwidth": work is bytes; None: no limit
    work: Callable = None  # (sizes, data) -> FLOPs or bytes
    tol: Any = (2e-3, 1e-4)  # verification: see harness.mismatch()
    compile: str = None  # "cold" or "warm" for the compile-* workloads
    program: str = None  # compile-*: the workload whose function is compiled
    steps: Callable = None  # sizes -> loop steps one call runs; the rate is then the time per step
    goal: Any = None  # a Goal, or a tuple of Goals that must all be met


def _io_bytes(outputs):
    """Compulsory traffic: the inputs read once and ``outputs(data)`` (arrays of the result's size) written."""
    return lambda sizes, d: sum(v.nbytes for v in d.values()) + outputs(sizes, d)


def _mlp_workload(index, batch_name, goal=None):
    return Workload(
        f"mlp-train-b{batch_name}",
        f"one SGD step of a {'-'.join(map(str, Sizes.mlp))} tanh MLP, batch {batch_name}",
        MLP_IMPLS, setup=lambda s: _mlp_data(s, s.batches[index]), limit="gemm",
        work=lambda s, d: _mlp_flops(s, s.batches[index]), goal=goal)


def mlp_step_memory(sizes, batch):
    """What a training step of the MLP needs beyond its inputs and parameters (bytes, float32): its
    activations, the hidden layer and the logits (batch x (hidden + classes)), and one buffer of the
    largest weight matrix (its gradient, when the weights are updated in place)."""
    i, h, o = sizes.mlp
    return {"activations": 4 * batch * (h + o), "largest_weight": 4 * max(i * h, h * o)}


def _mlp_memory_goals(index):
    """A step on c and numba: peak extra <= its activations plus one weight-sized buffer, and no new
    array of half the largest weight matrix or more left alive after it (the weights updated in place;
    the smallest one, 20 KB, is below what the measure resolves: a few pages of Python's own objects)."""
    def need(sizes):
        return mlp_step_memory(sizes, sizes.batches[index])

    return (Goal(("c", "numba"), "peak_extra_bytes", lambda s: need(s)["activations"] + need(s)["largest_weight"]),
            Goal(("c", "numba"), "left_bytes", lambda s: need(s)["largest_weight"] // 2))


from .lenet import LENET_IMPLS, lenet_data, lenet_flops  # noqa: E402  (it uses Compiled, defined above)

WORKLOADS = {w.name: w for w in [
    _mlp_workload(0, 20, goal=(Goal(("c", "numba"), "ratio", 0.5),) + _mlp_memory_goals(0)),
    _mlp_workload(1, 500, goal=Goal(("c", "numba"), "limit_fraction", 0.9, at_least=True)),
    Workload("elemwise-4m", "exp(-a*a) * sin(b) + tanh(a*b), float32 vectors of 4M", ELEMWISE_IMPLS,
             setup=_two_vectors, limit="bandwidth", work=_io_bytes(lambda s, d: d["a"].nbytes),
             goal=Goal(("c",), "limit_fraction", 0.75, at_least=True)),
    Workload("reduce-4m", "((a - a.mean()) ** 2).sum(), float32 vector of 4M", REDUCE_IMPLS,
             setup=lambda s: {"a": _two_vectors(s)["a"]}, limit="bandwidth", work=_io_bytes(lambda s, d: 4),
             tol=1e-2),  # float32 sums of 4M terms: accumulation order matters at ~1e-4
    Workload("softmax-xent", "mean softmax cross-entropy of 2048x1000 logits and its gradient", XENT_IMPLS,
             setup=_logits, limit="bandwidth", work=_io_bytes(lambda s, d: d["z"].nbytes + 4)),
    Workload("call-overhead", "a compiled a + 1 on a 0-d float32 input", CALL_IMPLS,
             setup=lambda s: {"a": np.array(1.0, np.float32)}, goal=Goal(("c", "numba"), "median_s", 1.5e-6)),
    Workload("call-overhead-vector", "a compiled a + 1 on a float32 vector of 16", CALL_IMPLS,
             setup=lambda s: {"a": np.arange(16, dtype=np.float32)}, goal=Goal(("c", "numba"), "median_s", 1.5e-6)),
    Workload("scan-overhead", "scan of s = 0.999 * s + x_t over 100,000 float32 steps, the last state",
             SCAN_IMPLS, setup=_scan_data, steps=lambda s: s.scan_steps,
             goal=Goal(("c", "numba"), "rate", 5e-9)),
    Workload("lstm-train", "one SGD step of an LSTM, 64 inputs, 128 units, 50 steps, batch 32 (scan + BPTT)",
             LSTM_IMPLS, setup=_lstm_data, limit="gemm", work=lambda s, d: _lstm_flops(s),
             goal=Goal(("c", "numba"), "ratio", 0.7)),
    Workload("lenet-train", "one SGD step of LeNet-5 (conv 20 5x5, pool, conv 50 5x5, pool, 500, 10), batch 128 of 28x28",
             LENET_IMPLS, setup=lenet_data, limit="gemm", work=lambda s, d: lenet_flops(s),
             goal=Goal(("c", "numba"), "ratio", 0.35)),
    Workload("compile-cold", "function(...) to first result, MLP training, fresh process, empty cache",
             compile="cold", program="mlp-train-b20"),
    Workload("compile-warm", "function(...) to first result, MLP training, fresh process, warm cache",
             compile="warm", program="mlp-train-b20"),
    Workload("compile-lstm-cold", "function(...) to first result, lstm-train, fresh process, empty cache",
             compile="cold", program="lstm-train", goal=Goal(("c",), "median_s", 3.0)),
]}
