"""lenet-train: one SGD step of the Deep Learning Tutorials' LeNet-5 on a batch of 1 x s x s images
(s = 28: conv 20 5x5, max-pool 2x2, tanh; conv 50 5x5, max-pool 2x2, tanh; dense 800 -> 500 tanh;
softmax 10; mean negative log-likelihood). As in the tutorial, the convolutions flip their filters
(Theano's conv2d) and each bias is added after the pooling. The NumPy baseline is im2col (sliding
windows) and matmul, forward and backward, written by hand."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .workloads import Compiled, _arignote_api

LENET_PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4")
LENET_LR = np.float32(0.1)  # the tutorial's learning rate
FILTERS, KERNEL, HIDDEN, CLASSES = (20, 50), 5, 500, 10


def _flat_size(side):
    for _ in FILTERS:
        side = (side - KERNEL + 1) // 2
    return FILTERS[-1] * side * side


def lenet_data(sizes):
    batch, side = sizes.lenet
    rng = np.random.default_rng(60)
    d = {"x": rng.uniform(0, 1, (batch, 1, side, side)).astype(np.float32),
         "y": rng.integers(0, CLASSES, batch).astype(np.int32)}
    channels = (1,) + FILTERS
    for k, (c_in, c_out) in enumerate(zip(channels, channels[1:]), 1):  # the tutorial's initialisation
        fan_in, fan_out = c_in * KERNEL ** 2, c_out * KERNEL ** 2 / 4
        bound = np.sqrt(6 / (fan_in + fan_out))
        d[f"W{k}"] = rng.uniform(-bound, bound, (c_out, c_in, KERNEL, KERNEL)).astype(np.float32)
        d[f"b{k}"] = np.zeros(c_out, np.float32)
    for k, (n_in, n_out) in enumerate([(_flat_size(side), HIDDEN), (HIDDEN, CLASSES)], 3):
        bound = np.sqrt(6 / (n_in + n_out))
        d[f"W{k}"] = rng.uniform(-bound, bound, (n_in, n_out)).astype(np.float32)
        d[f"b{k}"] = np.zeros(n_out, np.float32)
    return d


def lenet_flops(sizes):
    """The convolutions' and products' multiply-adds: each conv forward, its filters' gradient, and
    its input's gradient but for the first; each dense product three times."""
    batch, side = sizes.lenet
    flops, channels = 0, (1,) + FILTERS
    for k, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
        side = side - KERNEL + 1
        flops += 2 * batch * c_out * side * side * c_in * KERNEL ** 2 * (2 if k == 0 else 3)
        side //= 2
    return flops + 3 * 2 * batch * (_flat_size(sizes.lenet[1]) * HIDDEN + HIDDEN * CLASSES)


def _observe(d, cost, params):
    return [np.asarray(cost)] + [np.asarray(p, np.float64) - d[k] for k, p in zip(LENET_PARAMS, params)]


def _lenet_numpy(d, _):
    def compile():
        p = {k: d[k].copy() for k in LENET_PARAMS}
        x, y = d["x"], d["y"]
        batch, rows = len(y), np.arange(len(y))

        def conv(a, W):
            """The valid convolution of a (B, C, H, W) with W: (B·rows·cols, O) and the im2col matrix."""
            out_c, in_c, k, _ = W.shape
            windows = sliding_window_view(a, (k, k), axis=(2, 3))  # (B, C, rows, cols, k, k)
            side = windows.shape[2]
            cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(batch * side * side, in_c * k * k)
            return cols @ W[:, :, ::-1, ::-1].reshape(out_c, -1).T, cols, side

        def pool_tanh(z, side, b):
            """z (B·side·side, O) -> tanh(max over 2x2 + b) as (B, O, side/2, side/2), and the mask."""
            z = z.reshape(batch, side // 2, 2, side // 2, 2, -1)
            top = z.max(axis=(2, 4))
            return np.tanh(top + b).transpose(0, 3, 1, 2), z == top[:, :, None, :, None]

        def unpool(g, mask, side):
            """The gradient (B, O, side/2, side/2) of the pooled maps back to (B·side·side, O)."""
            return (mask * g.transpose(0, 2, 3, 1)[:, :, None, :, None]).reshape(batch * side * side, -1)

        def step():
            W1, b1, W2, b2, W3, b3, W4, b4 = (p[k] for k in LENET_PARAMS)
            z1, cols1, s1 = conv(x, W1)
            h1, mask1 = pool_tanh(z1, s1, b1)
            z2, cols2, s2 = conv(h1, W2)
            h2, mask2 = pool_tanh(z2, s2, b2)
            flat = h2.reshape(batch, -1)
            h3 = np.tanh(flat @ W3 + b3)
            z = h3 @ W4 + b4
            z -= z.max(axis=1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(axis=1, keepdims=True)
            cost = -np.log(prob[rows, y]).mean()
            dz = prob
            dz[rows, y] -= 1
            dz /= batch
            dh3 = (dz @ W4.T) * (1 - h3 * h3)
            dflat = dh3 @ W3.T
            dm2 = dflat.reshape(h2.shape) * (1 - h2 * h2)
            g2 = unpool(dm2, mask2, s2)  # (B·8·8, 50)
            dcols2 = (g2 @ W2[:, :, ::-1, ::-1].reshape(len(b2), -1)).reshape(batch, s2, s2, *W2.shape[1:])
            dh1 = np.zeros_like(h1)
            for a in range(KERNEL):  # col2im: each tap's gradient back onto the image it read
                for c in range(KERNEL):
                    dh1[:, :, a:a + s2, c:c + s2] += dcols2[..., a, c].transpose(0, 3, 1, 2)
            dm1 = dh1 * (1 - h1 * h1)
            g1 = unpool(dm1, mask1, s1)
            W4 -= LENET_LR * (h3.T @ dz)
            b4 -= LENET_LR * dz.sum(axis=0)
            W3 -= LENET_LR * (flat.T @ dh3)
            b3 -= LENET_LR * dh3.sum(axis=0)
            W2 -= LENET_LR * (g2.T @ cols2).reshape(W2.shape)[:, :, ::-1, ::-1]
            b2 -= LENET_LR * dm2.sum(axis=(0, 2, 3))
            W1 -= LENET_LR * (g1.T @ cols1).reshape(W1.shape)[:, :, ::-1, ::-1]
            b1 -= LENET_LR * dm1.sum(axis=(0, 2, 3))
            return cost

        return Compiled(step, lambda cost: _observe(d, cost, [p[k] for k in LENET_PARAMS]))
    return compile


def _lenet_graph(api, d):
    T = api.T
    x, y = T.ftensor4("x"), T.ivector("y")
    params = [api.shared(d[k].copy(), name=k) for k in LENET_PARAMS]
    W1, b1, W2, b2, W3, b3, W4, b4 = params
    h = x
    for W, b in ((W1, b1), (W2, b2)):  # the tutorial's LeNetConvPoolLayer
        h = T.tanh(T.signal.pool.pool_2d(T.nnet.conv2d(h, W), (2, 2), ignore_border=True) + b.dimshuffle("x", 0, "x", "x"))
    h3 = T.tanh(T.dot(h.flatten(2), W3) + b3)
    prob = api.softmax(T.dot(h3, W4) + b4)
    cost = T.mean(api.nll(prob, y))
    updates = [(p, p - LENET_LR * g) for p, g in zip(params, api.grad(cost, params))]

    def compile():
        train = api.function([x, y], cost, updates=updates)
        return Compiled(lambda: train(d["x"], d["y"]),
                        lambda c: _observe(d, c, [p.get_value(borrow=True) for p in params]))
    return compile


def _lenet_jax(d, _):
    import jax
    import jax.numpy as jnp

    def loss(params, x, y):
        W1, b1, W2, b2, W3, b3, W4, b4 = params
        h = x
        for W, b in ((W1, b1), (W2, b2)):
            z = jax.lax.conv_general_dilated(h, W[:, :, ::-1, ::-1], (1, 1), "VALID")
            z = jax.lax.reduce_window(z, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
            h = jnp.tanh(z + b[None, :, None, None])
        h3 = jnp.tanh(h.reshape(h.shape[0], -1) @ W3 + b3)
        logp = jax.nn.log_softmax(h3 @ W4 + b4)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    def step(params, x, y):
        cost, grads = jax.value_and_grad(loss)(params, x, y)
        return cost, [p - LENET_LR * g for p, g in zip(params, grads)]

    def compile():
        train, x, y = jax.jit(step), jnp.asarray(d["x"]), jnp.asarray(d["y"])
        state = [jnp.asarray(d[k]) for k in LENET_PARAMS]

        def run():
            cost, state[:] = train(state, x, y)
            return jax.block_until_ready((cost, state))[0]
        return Compiled(run, lambda c: _observe(d, c, [np.asarray(p) for p in state]))
    return compile


def _lenet_torch(d, _):
    import torch
    import torch.nn.functional as F

    def compile():
        params = [torch.tensor(d[k], requires_grad=True) for k in LENET_PARAMS]
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"]).long()

        def run():
            W1, b1, W2, b2, W3, b3, W4, b4 = params
            h = x
            for W, b in ((W1, b1), (W2, b2)):
                h = torch.tanh(F.max_pool2d(F.conv2d(h, W.flip(2, 3)), 2) + b[None, :, None, None])
            z = torch.tanh(h.flatten(1) @ W3 + b3) @ W4 + b4
            cost = F.cross_entropy(z, y)
            grads = torch.autograd.grad(cost, params)
            with torch.no_grad():
                for p, g in zip(params, grads):
                    p -= float(LENET_LR) * g
            return cost.detach()
        return Compiled(run, lambda c: _observe(d, c.numpy(), [p.detach().numpy() for p in params]))
    return compile


LENET_IMPLS = {"numpy": _lenet_numpy, "arignote": lambda d, backend: _lenet_graph(_arignote_api(backend), d),
               "jax": _lenet_jax, "torch": _lenet_torch}
