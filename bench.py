"""``arignote bench`` (also ``python -m arignote.bench``): a fixed set of workloads on every usable
backend, each next to a hand-written NumPy baseline run in the same process, reported as median times
and as **ratios to that baseline**.

    arignote bench [--quick] [--backend NAME ...] [--workload NAME ...] [--json FILE] [--repeats N] [--list]

Ratios are what to compare between runs and machines, not seconds: the machines are noisy and the
baseline shares their noise (repeats of the baseline and of every backend are interleaved, round after
round). ``ratio = median time of the backend / median time of the NumPy baseline``: lower is better,
2.0 means twice NumPy's time. Every backend's first result is checked against the baseline's before it
is timed; a wrong result is reported as a failure row, never as a speed.

PyTensor, JAX and PyTorch, when importable, run the same workloads as extra rows (never required):
PyTensor from the very graph arignote builds, JAX jitted, PyTorch eager with autograd.

The "of limit" column says how close a workload came to what this machine can do, both measured in
the same run, at its start and its end (the best repeat of either: a peak, not a median):

    GEMM peak    2 n^3 / t of a float32 n x n NumPy matrix product (n = 2048; 1024 with --quick)
    bandwidth    2 * nbytes / t of np.copyto on a 256 MB float32 array (one read plus one write)
    mlp-train-*  FLOPs of its matrix products / t / GEMM peak, with FLOPs = 2B(2ih + 3ho) for batch B
                 and layer sizes i-h-o: forward xW1 and hW2, backward h'd (dW2), dW2' (dh), x'dh (dW1);
                 the gradient of x is not needed, elementwise work is not counted
    elemwise-4m, reduce-4m, softmax-xent
                 compulsory bytes / t / bandwidth, compulsory bytes = every input read once plus every
                 output written once (a two-pass algorithm, like reduce-4m's mean then deviations,
                 tops out near 1/2)
    call-overhead, compile-*: no limit; calls per second, seconds

compile-cold and compile-warm time ``function(...)`` to the first result of the MLP training function
(batch 20), graph building excluded, each in a fresh process: cold with a new, empty cache directory
(ARIGNOTE_CACHE_DIR, PyTensor's base_compiledir, JAX's compilation cache), warm with the directory a
cold run filled. Their baseline is the first NumPy training step in a fresh process, so the ratio is
"how many first NumPy steps one compilation costs". Backends without a disk cache are measured the
same way: for them warm and cold differ only by noise.
"""

import argparse
import dataclasses
import datetime
import functools
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


QUICK = dict(repeats=5, min_time=0.02, sizes=Sizes(gemm=1024))
FULL = dict(repeats=15, min_time=0.05, sizes=Sizes())


@dataclasses.dataclass(frozen=True)
class Target:
    """A row of the table: an arignote backend, a peer library, or the NumPy baseline."""

    name: str
    family: str  # "numpy", "arignote", "pytensor", "jax", "torch"


BASELINE = Target("numpy", "numpy")
PEERS = (Target("pytensor", "pytensor"), Target("jax", "jax"), Target("pytorch", "torch"))


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


def mismatch(got, want, tol=(2e-3, 1e-4)):
    """None if ``got`` matches ``want``, else why not. Each array must pass two tests, ``tol`` being
    (worst, overall) or one number for both: max |error| / max |expected| <= worst catches a few entries
    gone wrong (a loop's tail left out), and the ratio of the 2-norms of error and expected <= overall
    catches a small error everywhere (a forgotten L2 term in a gradient) while float32 rounding, ~1e-6,
    passes."""
    worst, overall = tol if isinstance(tol, tuple) else (tol, tol)
    if len(got) != len(want):
        return f"{len(got)} result(s), expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        if g.size != w.size:
            return f"result {k} has shape {g.shape}, expected {w.shape}"
        g = g.reshape(w.shape)
        with np.errstate(all="ignore"):
            error = float(np.abs(g - w).max(initial=0)) / max(float(np.abs(w).max(initial=0)), 1e-30)
            if not error <= worst:  # NaN fails too
                return f"wrong result {k}: max |error| / max |expected| = {error:.3g} > {worst:g}"
            error = float(np.linalg.norm((g - w).ravel())) / max(float(np.linalg.norm(w.ravel())), 1e-30)
            if not error <= overall:
                return f"wrong result {k}: |error| / |expected| (2-norms) = {error:.3g} > {overall:g}"
    return None


# ---------------------------------------------------------------------------------------------------
# Peers and arignote share one Theano-style graph builder per workload; `api` is the library's spelling.


def _arignote_api(backend):
    import arignote
    import arignote.tensor as T

    return SimpleNamespace(T=T, shared=arignote.shared, grad=arignote.grad,
                           function=functools.partial(arignote.function, backend=backend),
                           softmax=T.nnet.softmax, nll=T.nnet.categorical_crossentropy)


def _pytensor_api(_):
    import pytensor
    import pytensor.tensor as pt
    from pytensor.tensor.special import softmax

    return SimpleNamespace(T=pt, shared=pytensor.shared, grad=pytensor.grad, function=pytensor.function,
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


# --- call-overhead: a compiled a + 1 on a 0-d input


def _call_numpy(d, _):
    a = d["a"]
    return lambda: Compiled(lambda: a + 1)


def _call_graph(api, d):
    a = api.T.fscalar("a")

    def compile():
        f = api.function([a], a + 1)
        return Compiled(lambda: f(d["a"]))
    return compile


CALL_IMPLS = {"numpy": _call_numpy, **_theano_style(_call_graph),
              "jax": _jax_jit(lambda jnp, jax: lambda a: a + 1, "a"),
              "torch": _torch_eager(lambda t: lambda a: a + 1, "a")}


# ---------------------------------------------------------------------------------------------------
# The workloads


@dataclasses.dataclass
class Workload:
    name: str
    description: str
    impls: dict  # family -> make(data, backend) -> compile
    setup: Callable = None  # sizes -> data
    limit: str = None  # "gemm": work is FLOPs; "bandwidth": work is bytes; None: no limit
    work: Callable = None  # (sizes, data) -> FLOPs or bytes
    tol: Any = (2e-3, 1e-4)  # verification: see mismatch()
    compile: str = None  # "cold" or "warm" for the compile-* workloads


def _io_bytes(outputs):
    """Compulsory traffic: the inputs read once and ``outputs(data)`` (arrays of the result's size) written."""
    return lambda sizes, d: sum(v.nbytes for v in d.values()) + outputs(sizes, d)


def _mlp_workload(index, batch_name):
    return Workload(
        f"mlp-train-b{batch_name}",
        f"one SGD step of a {'-'.join(map(str, Sizes.mlp))} tanh MLP, batch {batch_name}",
        MLP_IMPLS, setup=lambda s: _mlp_data(s, s.batches[index]), limit="gemm",
        work=lambda s, d: _mlp_flops(s, s.batches[index]))


WORKLOADS = {w.name: w for w in [
    _mlp_workload(0, 20),
    _mlp_workload(1, 500),
    Workload("elemwise-4m", "exp(-a*a) * sin(b) + tanh(a*b), float32 vectors of 4M", ELEMWISE_IMPLS,
             setup=_two_vectors, limit="bandwidth", work=_io_bytes(lambda s, d: d["a"].nbytes)),
    Workload("reduce-4m", "((a - a.mean()) ** 2).sum(), float32 vector of 4M", REDUCE_IMPLS,
             setup=lambda s: {"a": _two_vectors(s)["a"]}, limit="bandwidth", work=_io_bytes(lambda s, d: 4),
             tol=1e-2),  # float32 sums of 4M terms: accumulation order matters at ~1e-4
    Workload("softmax-xent", "mean softmax cross-entropy of 2048x1000 logits and its gradient", XENT_IMPLS,
             setup=_logits, limit="bandwidth", work=_io_bytes(lambda s, d: d["z"].nbytes + 4)),
    Workload("call-overhead", "a compiled a + 1 on a 0-d float32 input", CALL_IMPLS,
             setup=lambda s: {"a": np.array(1.0, np.float32)}),
    Workload("compile-cold", "function(...) to first result, MLP training, fresh process, empty cache",
             MLP_IMPLS, compile="cold"),
    Workload("compile-warm", "function(...) to first result, MLP training, fresh process, warm cache",
             MLP_IMPLS, compile="warm"),
]}


# ---------------------------------------------------------------------------------------------------
# Timing


def _time(run, number):
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            run()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def _calibrate(run, min_time):
    """How many calls make one repeat last at least ``min_time``."""
    number = 1
    while True:
        elapsed = _time(run, number)
        if elapsed >= min_time or number >= 1 << 22:
            return number
        number = min(1 << 22, max(2 * number, int(number * 1.2 * min_time / max(elapsed, 1e-9))))


def measure(runs, repeats, min_time):
    """Seconds per call of each run, ``repeats`` times, in interleaved rounds (so drift hits all alike)."""
    numbers = {key: _calibrate(run, min_time) for key, run in runs.items()}
    times = {key: [] for key in runs}
    failed = {}
    for _ in range(repeats):
        gc.collect()
        for key, run in runs.items():
            if key in failed:
                continue
            try:
                times[key].append(_time(run, numbers[key]) / numbers[key])
            except Exception as error:  # a backend that fails on a later call
                failed[key] = f"{type(error).__name__}: {error}"
    return times, failed


def measure_limits(sizes, repeats, min_time):
    """The machine's float32 GEMM FLOP/s and copy bandwidth (bytes/s), measured now: the best repeat,
    since a limit is what the machine can do when nothing else gets in the way."""
    rng = np.random.default_rng(0)
    n = sizes.gemm
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    c = np.empty_like(a)
    src = np.ones(sizes.copy_mb * (1 << 20) // 4, np.float32)
    dst = np.empty_like(src)
    times, _ = measure({"gemm": lambda: np.matmul(a, b, out=c), "copy": lambda: np.copyto(dst, src)},
                       repeats, min_time)
    return {"gemm_flops": 2 * n ** 3 / min(times["gemm"]), "gemm_n": n,
            "bandwidth": 2 * src.nbytes / min(times["copy"]), "copy_bytes": src.nbytes}


def _best_limits(*measured):
    return {key: max(m[key] for m in measured) for key in measured[0]}


# ---------------------------------------------------------------------------------------------------
# Running


def discover_targets():
    """Every usable arignote backend, then the importable peers."""
    from arignote.core.plugins import registry

    found = [Target(name, "arignote") for name in registry.names() if registry.availability(name)]
    module = {"pytensor": "pytensor", "jax": "jax", "torch": "torch"}
    return found + [peer for peer in PEERS if importlib.util.find_spec(module[peer.family]) is not None]


def _row(workload, target, **fields):
    return {"workload": workload.name, "backend": target.name, "family": target.family, "status": "ok",
            "median_s": None, "ratio": None, "rate": None, "unit": None, "limit_fraction": None,
            "times_s": [], "error": None, **fields}


def _fill(row, times, base_median, workload, work):
    median = statistics.median(times)
    row.update(median_s=median, times_s=times, ratio=median / base_median)
    if workload.limit:
        row.update(rate=work / median, unit={"gemm": "FLOP/s", "bandwidth": "B/s"}[workload.limit])
    elif workload.compile is None:
        row.update(rate=1 / median, unit="calls/s")
    return row


def _apply_limits(rows, limits):
    for row in rows:
        limit = {"FLOP/s": limits["gemm_flops"], "B/s": limits["bandwidth"]}.get(row["unit"])
        if limit and row["status"] == "ok":
            row["limit_fraction"] = row["rate"] / limit


def run_workload(workload, targets, sizes, repeats, min_time):
    """Rows for ``workload``: the NumPy baseline, then each target (verified first, then timed)."""
    data = workload.setup(sizes)
    base = workload.impls["numpy"](data, None)()
    want = base.result()
    runs, rows = {BASELINE: base.run}, {BASELINE: _row(workload, BASELINE)}
    for target in targets:
        row = rows[target] = _row(workload, target)
        make = workload.impls.get(target.family)
        if make is None:
            row.update(status="error", error=f"no {workload.name} implementation for {target.family}")
            continue
        try:
            compiled = make(data, target.name)()
            problem = mismatch(compiled.result(), want, workload.tol)
        except Exception as error:
            row.update(status="error", error=f"{type(error).__name__}: {error}".splitlines()[0])
            continue
        if problem:
            row.update(status="wrong", error=problem)
        else:
            runs[target] = compiled.run
    times, failed = measure(runs, repeats, min_time)
    if BASELINE in failed:
        raise RuntimeError(f"the NumPy baseline of {workload.name} failed: {failed[BASELINE]}")
    base_median = statistics.median(times[BASELINE])
    work = workload.work(sizes, data) if workload.work else None
    for target in runs:
        if target in failed:
            rows[target].update(status="error", error=failed[target])
        else:
            _fill(rows[target], times[target], base_median, workload, work)
    return list(rows.values())


def _cache_env(directory):
    env = dict(os.environ, ARIGNOTE_CACHE_DIR=directory, JAX_COMPILATION_CACHE_DIR=directory,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = (flags + "," if flags else "") + f"base_compiledir={directory}"
    return env


def _spawn_compile(target, sizes, directory):
    """Run _compile_child in a fresh Python with ``directory`` as every cache; its JSON answer."""
    spec = json.dumps({"target": dataclasses.asdict(target), "sizes": dataclasses.asdict(sizes)})
    command = [sys.executable, "-c", "import sys; from arignote.bench import _compile_child; _compile_child(sys.argv[1])",
               spec]
    done = subprocess.run(command, env=_cache_env(directory), capture_output=True, text=True, timeout=600)
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the compile process failed (exit {done.returncode}): {tail}"}


def _compile_child(spec):
    """In a fresh process: build the MLP graph, then time compile() plus the first step; verify it."""
    spec = json.loads(spec)
    target = Target(**spec["target"])
    sizes = Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["sizes"].items()})
    try:
        data = _mlp_data(sizes, sizes.batches[0])
        compile = MLP_IMPLS[target.family](data, target.name)
        start = time.perf_counter()
        compiled = compile()
        out = compiled.run()
        seconds = time.perf_counter() - start
        answer = {"seconds": seconds, "error": None}
        if target != BASELINE:
            got = compiled.observe(out)
            answer["error"] = mismatch(got, _mlp_numpy(data, None)().result())
    except Exception as error:
        answer = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
    print(json.dumps(answer))


def run_compile(workloads, targets, sizes, repeats):
    """Rows for compile-cold and/or compile-warm: fresh processes, a new cache directory per cold run,
    warm runs on the directory the first cold run filled."""
    rows = []
    everyone = [BASELINE] + list(targets)
    results = {(target, kind): [] for target in everyone for kind in ("cold", "warm")}
    kinds = [w.compile for w in workloads]
    directories = {target: [tempfile.mkdtemp(prefix="arignote-bench-cache-") for _ in range(repeats)]
                   for target in everyone}
    try:
        # Rounds interleave the targets, as in measure(). Warm needs a filled cache: the first cold run
        # fills it (and is counted only when cold is asked for).
        for r in range(repeats if "cold" in kinds else 1):
            for target in everyone:
                results[target, "cold"].append(_spawn_compile(target, sizes, directories[target][r]))
        for r in range(repeats if "warm" in kinds else 0):
            for target in everyone:
                results[target, "warm"].append(_spawn_compile(target, sizes, directories[target][0]))
    finally:
        for directory in (d for ds in directories.values() for d in ds):
            shutil.rmtree(directory, ignore_errors=True)
    for workload in workloads:
        base = [a["seconds"] for a in results[BASELINE, workload.compile] if a.get("error") is None]
        if not base:
            raise RuntimeError(f"the NumPy baseline of {workload.name} failed: "
                               f"{results[BASELINE, workload.compile][0]['error']}")
        for target in [BASELINE] + list(targets):
            answers = results[target, workload.compile]
            row = _row(workload, target)
            errors = [a["error"] for a in answers if a.get("error")]
            if errors:
                row.update(status="wrong" if errors[0].startswith("wrong") else "error", error=errors[0])
            else:
                _fill(row, [a["seconds"] for a in answers], statistics.median(base), workload, None)
            rows.append(row)
    return rows


def machine():
    cpu, virtual = platform.processor() or platform.machine(), False
    try:
        with open("/proc/cpuinfo") as info:
            fields = dict(line.split(":", 1) for line in info.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        cpu = f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
        virtual = "hypervisor" in fields.get("flags", "").split()
    except (OSError, KeyError):
        pass
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:
        blas = "unknown BLAS"
    return {"cpu": cpu, "cores": os.cpu_count(), "virtual": virtual, "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas}


def run_bench(workloads=None, backends=None, quick=False, json_path=None, out=None, sizes=None, repeats=None,
              min_time=None, progress=None):
    """Run the benchmark; print the table to ``out`` and return the report (a dict, also written as JSON
    to ``json_path``). ``sizes``, ``repeats`` and ``min_time`` override the defaults (tests use tiny ones)."""
    started = time.perf_counter()
    out = out or sys.stdout
    mode = QUICK if quick else FULL
    sizes = sizes or mode["sizes"]
    repeats = repeats or mode["repeats"]
    min_time = mode["min_time"] if min_time is None else min_time
    chosen = select_workloads(workloads)
    targets = select_targets(backends)
    progress = progress or _progress
    load = _cpu_snapshot()
    report = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "quick": quick, "repeats": repeats, "sizes": dataclasses.asdict(sizes),
              "backends": [t.name for t in targets]}
    progress("limits")
    limits = measure_limits(sizes, repeats, min_time)
    rows = []
    for workload in [w for w in chosen if not w.compile]:
        progress(workload.name)
        rows += run_workload(workload, targets, sizes, repeats, min_time)
    compiles = [w for w in chosen if w.compile]
    if compiles:
        progress(" and ".join(w.name for w in compiles))
        rows += run_compile(compiles, targets, sizes, min(repeats, 3 if quick else 5))
    progress("limits again")  # the best of both: a limit measured while a neighbour was busy is too low
    report["limits"] = _best_limits(limits, measure_limits(sizes, repeats, min_time))
    _apply_limits(rows, report["limits"])
    report["results"] = rows
    report["wall_s"] = time.perf_counter() - started
    report["other_load"] = _other_load(load, _cpu_snapshot())
    print_table(report, out)
    if json_path:
        with open(json_path, "w") as file:
            json.dump(report, file, indent=1)
    return report


def _cpu_snapshot():
    """(CPU seconds the whole machine was busy, hypervisor steal included; CPU seconds of this process
    and its waited-for children; wall clock), or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return busy, sum(os.times()[:4]), time.perf_counter()


def _other_load(before, after):
    """How many cores, on average, something other than this run kept busy while it ran (noise)."""
    if before is None or after is None:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / (after[2] - before[2]))


def _progress(what):
    print(f"bench: {what} ...", file=sys.stderr, flush=True)


def select_workloads(names):
    if not names:
        return list(WORKLOADS.values())
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"no workload named {', '.join(map(repr, unknown))}; workloads: {', '.join(WORKLOADS)}")
    return [w for w in WORKLOADS.values() if w.name in names]


def select_targets(names):
    available = discover_targets()
    if not names:
        return available
    by_name = {t.name: t for t in available}
    chosen = []
    for name in names:
        if name == BASELINE.name:
            continue  # always there
        if name not in by_name:
            from arignote.core.plugins import registry

            why = (f"backend {name!r} is not usable here: {registry.availability(name).reason}"
                   if name in registry.names() else f"no backend named {name!r}")
            raise ValueError(f"{why}; usable here: {', '.join(['numpy'] + list(by_name))}")
        chosen.append(by_name[name])
    return chosen


# ---------------------------------------------------------------------------------------------------
# The table


def _seconds(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _rate(row):
    if row["unit"] == "FLOP/s":
        return f"{row['rate'] / 1e9:.3g} GFLOP/s"
    if row["unit"] == "B/s":
        return f"{row['rate'] / 1e9:.3g} GB/s"
    if row["unit"] == "calls/s":
        return f"{row['rate']:,.0f} calls/s"
    return ""


def print_table(report, out):
    m, limits = report["machine"], report["limits"]
    out.write(f"arignote bench{' --quick' if report['quick'] else ''}, {report['date']}: {m['cpu']}, "
              f"{m['cores']} cores{' (virtual machine)' if m.get('virtual') else ''}, Python {m['python']}, NumPy {m['numpy']} ({m['blas']})\n")
    out.write(f"limits: float32 GEMM {limits['gemm_flops'] / 1e9:.1f} GFLOP/s (n={limits['gemm_n']}), "
              f"copy bandwidth {limits['bandwidth'] / 1e9:.2f} GB/s ({limits['copy_bytes'] >> 20} MB)\n")
    out.write(f"median of {report['repeats']} repeats; ratio = median / NumPy baseline's median (lower is better)\n\n")
    header = ("workload", "backend", "median", "ratio", "rate", "of limit")
    lines = []
    for row in report["results"]:
        if row["status"] != "ok":
            lines.append((row["workload"], row["backend"], f"FAILED ({row['status']}): {row['error']}"))
            continue
        fraction = row["limit_fraction"]
        lines.append((row["workload"], row["backend"], _seconds(row["median_s"]), f"{row['ratio']:.2f}",
                      _rate(row), "" if fraction is None else f"{100 * fraction:.0f}%"))
    widths = [max([len(header[k])] + [len(line[k]) for line in lines if len(line) > 3]) for k in range(6)]
    align = "<<>><>"

    def format_line(cells):
        if len(cells) == 3:
            return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}"
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out.write(format_line(header) + "\n")
    for line in lines:
        out.write(format_line(line) + "\n")
    load = report.get("other_load")
    out.write(f"\nwall time {report['wall_s']:.1f} s" + ("" if load is None else
              f"; other processes (and hypervisor steal) kept {load:.2f} of {m['cores']} cores busy on average"
              + (": expect noise" if load > 0.1 else "")) + "\n")


# ---------------------------------------------------------------------------------------------------
# The command


def add_arguments(parser):
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="run only this backend (repeat or comma-separate; default: every usable one, "
                             "and PyTensor/JAX/PyTorch when installed); the NumPy baseline always runs")
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help=f"run only this workload (repeat or comma-separate): {', '.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15, compile-* 3 instead of 5, GEMM peak at n=1024")
    parser.add_argument("--json", metavar="FILE", help="also write the full report, every time included, as JSON")
    parser.add_argument("--repeats", type=int, metavar="N", help="repeats per measurement (the median is shown)")
    parser.add_argument("--list", action="store_true", help="list the workloads and the usable backends, and exit")


def _split(values):
    return [name for value in values or [] for name in value.split(",") if name]


def run_command(args, out=None):
    out = out or sys.stdout
    if args.list:
        for workload in WORKLOADS.values():
            out.write(f"{workload.name:<15} {workload.description}\n")
        out.write("backends: " + ", ".join(["numpy (baseline)"] + [t.name for t in discover_targets()]) + "\n")
        return 0
    try:
        report = run_bench(_split(args.workload), _split(args.backend), quick=args.quick, json_path=args.json,
                           out=out, repeats=args.repeats)
    except ValueError as error:
        print(f"arignote bench: {error}", file=sys.stderr)
        return 2
    return 0 if all(row["status"] == "ok" for row in report["results"]) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="arignote bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
