"""The Numba backend's own promises: one njit function per graph, a disk cache a second process reuses,
readable generated source, errors raised as Python exceptions naming the op, any strides, the prange
path on large arrays, and core's decisions carried out (FusedReduce as one loop, plan.reuse)."""

import os
import re
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import ops
from arignote.core.plan import plan_of

numba_module = pytest.importorskip("numba")
from arignote.backends import blas  # noqa: E402
from arignote.backends.numba import PARALLEL_MIN, shares  # noqa: E402


def both(inputs, outputs, values):
    got = arignote.function(inputs, outputs, backend="numba")(*values)
    expected = arignote.function(inputs, outputs, backend="reference")(*values)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, equal_nan=True)
    return got


def segments(f):
    namespace = f._executable.__globals__
    return {name: value for name, value in namespace.items() if name.startswith("segment")}


def test_generated_source_is_one_function_commented_with_the_graph_nodes(numba_backend, monkeypatch):
    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: False)  # else the product's columns are split
    x, y = T.dmatrix("x"), T.drow("y")
    f = arignote.function([x, y], [T.exp(x) * y + 1, T.dot(x, x.T)], backend=numba_backend)
    source = f.backend_source
    assert source.count("def run(inputs)") == 1 and source.count("def segment") == 1
    assert "segment0(*inputs" in source  # no Python between the nodes
    assert "built at" in source and __file__.split(os.sep)[-1] in source  # where the user built it
    assert "_rt.gemm(" in source and "@_nb.njit" in source and "for i0 in" in source
    assert "Exp" in source


def mlp_step():
    rng = np.random.default_rng(3)
    x, y = T.fmatrix("x"), T.ivector("y")
    params = [arignote.shared(rng.normal(0, 0.1, s).astype("float32"), name=n)
              for n, s in [("W1", (7, 5)), ("b1", (5,)), ("W2", (5, 3)), ("b2", (3,))]]
    W1, b1, W2, b2 = params
    hid = T.tanh(T.dot(x, W1) + b1)
    prob = T.nnet.softmax(T.dot(hid, W2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(prob, y)) + 1e-3 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    updates = [(p, p - 0.1 * g) for p, g in zip(params, arignote.grad(cost, params))]
    return [x, y], cost, updates, params


@pytest.mark.parametrize("narrow", [False, True])
def test_a_training_step_is_one_compiled_call_and_agrees_with_the_reference(numba_backend, monkeypatch, narrow):
    """One compiled call; or, where the BLAS runs narrower vectors than the CPU (plan.own_rows), the
    products' columns shared out between threads from the glue, panels.py's kernels computing them."""
    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: narrow)
    results = {}
    for backend in (numba_backend, "reference"):
        inputs, cost, updates, params = mlp_step()
        f = arignote.function(inputs, cost, updates=updates, backend=backend)
        rng = np.random.default_rng(4)
        costs = [f(rng.normal(size=(6, 7)).astype("float32"), rng.integers(0, 3, 6).astype("int32"))
                 for _ in range(3)]
        results[backend] = costs + [p.get_value() for p in params]
        if backend == numba_backend:
            one_call = "segment0(*inputs" in f.backend_source and " = R" not in f.backend_source
            assert one_call != (narrow and shares.threads_for_shares() > 1)
    for got, expected in zip(results[numba_backend], results["reference"]):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)


def test_cache_directory_is_private_and_a_second_process_loads_instead_of_compiling(tmp_path):
    script = textwrap.dedent("""
        import numpy as np, arignote, arignote.tensor as T
        from arignote.core.plugins import registry
        from arignote.backends.numba import NumbaBackend
        if "numba" not in registry.names():
            registry.register(NumbaBackend())
        x = T.dmatrix("x")
        f = arignote.function([x], T.tanh(x) * 2 + T.exp(-x), backend="numba")
        assert np.allclose(f(np.ones((2, 3))), np.tanh(1) * 2 + np.exp(-1))
        program = f._executable.__globals__["segment0"]
        print("hits", sum(program.stats.cache_hits.values()), "misses", sum(program.stats.cache_misses.values()))
    """)
    cache = tmp_path / "cache"
    env = dict(os.environ, ARIGNOTE_CACHE_DIR=str(cache))
    env.pop("ARIGNOTE_CHECK", None)
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stdout.split() == ["hits", "0", "misses", "1"]
    assert runs[1].stdout.split() == ["hits", "1", "misses", "0"]
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o700
    assert any(name.startswith("program_") and name.endswith(".py") for name in os.listdir(cache / "numba"))


def test_shape_mismatch_is_a_value_error_naming_the_op(numba_backend):
    x, y = T.dmatrix("x"), T.dmatrix("y")
    f = arignote.function([x, y], T.exp(x) + y, backend=numba_backend)
    with pytest.raises(ValueError, match=r"Composite.*\(2, 3\).*\(2, 4\).*disagree on axis 1"):
        f(np.ones((2, 3)), np.ones((2, 4)))


def test_index_out_of_range_is_an_index_error(numba_backend):
    x, i = T.dvector("x"), T.lscalar("i")
    f = arignote.function([x, i], x[i] * 2, backend=numba_backend)
    assert f(np.arange(3.0), 2) == 4.0
    with pytest.raises(IndexError, match="out of"):
        f(np.arange(3.0), 7)


def test_integer_to_a_negative_power_raises_from_compiled_code(numba_backend):
    x, y = T.lvector("x"), T.lvector("y")
    f = arignote.function([x, y], x ** y + 1, backend=numba_backend)
    assert f(np.array([2, 3]), np.array([3, 2])).tolist() == [9, 10]
    with pytest.raises(ValueError, match="Pow|Composite"):
        f(np.array([2, 3]), np.array([1, -1]))


@pytest.mark.parametrize("view", ["transposed", "reversed", "strided", "reversed-both"])
def test_any_strides(numba_backend, view):
    base = np.random.default_rng(0).normal(size=(6, 8))
    value = {"transposed": base.T, "reversed": base[::-1], "strided": base[::2, 1::3],
             "reversed-both": base[::-2, ::-1]}[view]
    x, y = T.dmatrix("x"), T.drow("y")
    row = value[:1].copy()[:, ::-1]
    both([x, y], [T.tanh(x) * y - x ** 2, (x > 0) & (y < 1)], [value, row])



def test_products_call_one_blas_helper_per_dtype_whatever_the_layouts(numba_backend, monkeypatch):
    """Matrix products go to NumPy's BLAS through runtime.gemm, which every product of a dtype shares:
    operands arrive typed "any layout", so transposed, reversed or strided views compile nothing new.
    (A BLAS as wide as the CPU: else the products run from the glue, plan.product_threads.)"""
    import importlib

    from arignote.backends import numba as backend

    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: False)

    rng = np.random.default_rng(3)
    a, b, v = rng.normal(size=(6, 5)), rng.normal(size=(5, 4)), rng.normal(size=10)
    x, y, z = T.dmatrix("x"), T.dmatrix("y"), T.dvector("z")
    both([x, y, z], [T.dot(x, y), T.dot(x.T, x), T.dot(z[::2], y), T.dot(x, z[::-2]), T.dot(z[:5], z[5:]),
                     T.dot(x[:, :0], y[:0])], [a[::-1], b.T.copy().T, v])
    both([x, y], [T.dot(x, y)], [a[::2, ::-1].copy()[:, :5], b[:, ::2]])
    f32 = T.fmatrix("f")
    both([f32], [T.dot(f32, f32.T)], [a.astype("float32")[::-1, ::2]])
    runtime = importlib.import_module(backend._runtime_module())
    layouts = {(str(sig[0].dtype), sig[0].layout, sig[1].layout) for sig in runtime.gemm.signatures}
    assert layouts == {("float64", "A", "A"), ("float32", "A", "A")}

def test_integer_and_boolean_dtypes_wrap_like_numpy(numba_backend):
    a, b = T.bvector("a"), T.bvector("b")
    c = T.vector("c", dtype="bool")
    both([a, b, c], [a + b, a * b, a // b, a % b, ~c, c | (a > 0), T.cast(a, "float32") / 3],
         [np.array([100, -100, 7, 0], np.int8), np.array([100, 3, 0, 0], np.int8),
          np.array([True, False, True, False])])


def test_trailing_axes_walked_whole_or_broadcast_loop_as_one_row(numba_backend):
    # tanh(x + b[None, :, None, None]): axes 2 and 3 are one row of 144 when x is C-contiguous (the
    # loop vectorizes), the plain nest otherwise (a transposed x)
    x, b = T.tensor4("x", dtype="float32"), T.vector("b", dtype="float32")
    f = arignote.function([x, b], T.tanh(x + b.dimshuffle("x", 0, "x", "x")), backend=numba_backend)
    assert "# axes 2..3 as one row" in f.backend_source and "s2 * s3" in f.backend_source
    rng = np.random.default_rng(0)
    value, bias = rng.standard_normal((3, 4, 5, 6)).astype("float32"), rng.standard_normal(4).astype("float32")
    for v in (value, value.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)):
        np.testing.assert_allclose(f(v, bias), np.tanh(v + bias[None, :, None, None]), rtol=1e-5, atol=1e-6)


def test_large_arrays_take_the_prange_path(numba_backend):
    x = T.dvector("x")
    f = arignote.function([x], T.exp(-x * x) + T.sin(x), backend=numba_backend)
    assert "_nb.prange" in f.backend_source and f"< {PARALLEL_MIN}" in f.backend_source
    for size in (PARALLEL_MIN + 5, 10):
        value = np.linspace(-3, 3, size)
        np.testing.assert_allclose(f(value), np.exp(-value * value) + np.sin(value), rtol=1e-12, atol=1e-14)


def test_labels_out_of_range_raise_index_error_naming_the_op(numba_backend):
    z, y = T.dmatrix("z"), T.lvector("y")
    f = arignote.function([z, y], T.nnet.categorical_crossentropy(T.nnet.softmax(z), y), backend=numba_backend)
    assert f(np.zeros((2, 3)), np.array([0, 2])).shape == (2,)
    with pytest.raises(IndexError, match=r"SoftmaxCrossentropy.*label 3"):
        f(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="SoftmaxCrossentropy"):
        f(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_an_op_without_njit_form_runs_between_two_compiled_segments(numba_backend):
    x = T.dmatrix("x")
    f = arignote.function([x], T.exp(x[(x * 2) > 0.5]).sum(), backend=numba_backend)  # a boolean mask
    assert f.backend_source.count("def segment") == 2 and "AdvancedSubtensor" in f.backend_source
    value = np.arange(6.0).reshape(2, 3) / 10
    np.testing.assert_allclose(f(value), np.exp(value[value * 2 > 0.5]).sum(), rtol=1e-12)


def test_repeat_along_any_axis(numba_backend):
    x, r = T.dmatrix("x"), T.lvector("r")
    both([x, r], [T.repeat(x, 2, axis=1), T.repeat(x, r, axis=0), T.repeat(x, 3)],
         [np.arange(6.0).reshape(2, 3), np.array([1, 3])])
    with pytest.raises(ValueError, match="Repeat.*negative"):
        arignote.function([x, r], T.repeat(x, r, axis=0), backend=numba_backend)(np.ones((2, 3)), np.array([1, -1]))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_numbers_are_bit_identical_to_the_reference(numba_backend, dtype):
    draws = {}
    for backend in (numba_backend, "reference"):
        streams = T.shared_randomstreams.RandomStreams(seed=5)
        f = arignote.function([], streams.uniform((3, 4), dtype=dtype), backend=backend)
        draws[backend] = [f(), f()]
    for got, expected in zip(draws[numba_backend], draws["reference"]):
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_reductions_with_nan_empty_axes_and_integers(numba_backend):
    x, k = T.dmatrix("x"), T.lmatrix("k")
    outputs = [T.max(x, axis=1), T.argmax(x, axis=1), T.min(x, axis=0), x.sum(axis=0), T.prod(k, axis=1),
               k.sum(), T.mean(x, axis=1), T.all(k, axis=0), T.any(k > 2, axis=1), T.argmin(k, axis=None)]
    value = np.array([[1.0, np.nan, 3.0], [-np.inf, 2.0, 2.0]])
    both([x, k], outputs, [value, np.array([[1, 5, 0], [2, 2, 7]])])
    empty = T.dmatrix("e")
    both([empty], [empty.sum(axis=1), T.mean(empty, axis=0), T.max(empty, axis=0)], [np.zeros((3, 0))])
    with pytest.raises(ValueError, match="Max"):
        arignote.function([x], T.max(x, axis=1), backend=numba_backend)(np.zeros((2, 0)))


def test_views_indexing_and_updates_agree_with_the_reference(numba_backend):
    x, i = T.dtensor3("x"), T.lscalar("i")
    value = np.random.default_rng(1).normal(size=(3, 4, 5))[:, ::-1, ::2]
    outputs = [x.dimshuffle(2, 0, 1) * 2, x[i, 1:, ::-2], x[:, i], T.set_subtensor(x[1:, :2], 7.0),
               T.inc_subtensor(x[i], x[0]), x.reshape((3, -1)).sum(axis=1), T.nnet.softmax(x[0]),
               T.concatenate([x, x * 2], axis=1), T.argsort(x[0]), x.shape, x.flatten() + T.arange(36)]
    both([x, i], outputs, [value, np.array(-1)])
    with pytest.raises(IndexError):
        arignote.function([x, i], x[i], backend=numba_backend)(value, np.array(3))


def test_one_integer_vector_index_is_compiled_and_checked(numba_backend):
    x, r = T.dtensor3("x"), T.lvector("r")
    value = np.arange(24.0).reshape(2, 3, 4)[:, ::-1]
    f = arignote.function([x, r], [x[r], x[:, :, r]], backend=numba_backend)
    assert " = R" not in f.backend_source  # no NumPy step between segments
    both([x, r], [x[r], x[:, r] * 2, x[:, :, r]], [value, np.array([1, 0, -1])])
    with pytest.raises(IndexError, match="out of bounds"):
        f(value, np.array([0, 2]))


def test_updates_at_one_integer_vector_accumulate_repeated_indices(numba_backend):
    x, r, y = T.dmatrix("x"), T.lvector("r"), T.dmatrix("y")
    outputs = [T.inc_subtensor(x[r], y), T.set_subtensor(x[r], y), T.inc_subtensor(x[:, r[:2]], 1.0),
               arignote.grad((x[r] ** 2).sum(), x)]  # an embedding's gradient stays compiled
    f = arignote.function([x, r, y], outputs, backend=numba_backend)
    assert " = R" not in f.backend_source
    both([x, r, y], outputs, [np.arange(6.0).reshape(2, 3), np.array([1, 0, 1]), np.arange(9.0).reshape(3, 3)])
    with pytest.raises(IndexError, match="out of bounds"):
        f(np.ones((2, 3)), np.array([1, 5, 1]), np.ones((3, 3)))


def kernels_by_node(f):
    """{node index: the source of the kernel module it calls} of a compiled function."""
    found = re.findall(r"^from (\S+) import kernel as node(\d+)", f.backend_source, flags=re.M)
    return {int(n): Path(sys.modules[module].__file__).read_text() for module, n in found}


@pytest.mark.parametrize("axis", [1, None])
@pytest.mark.parametrize("reduce", [T.sum, T.mean, T.prod, T.max, T.min, T.all, T.any])
def test_a_fused_reduction_is_one_loop_without_a_temporary_array(numba_backend, monkeypatch, reduce, axis):
    monkeypatch.setattr(arignote.config, "rewrites", "all")
    x, y = T.dmatrix("x"), T.drow("y")
    f = arignote.function([x, y], reduce(T.exp(x) * y - 1, axis=axis), backend=numba_backend)
    assert [type(node.op) for node in f.maker.fgraph.apply_nodes] == [ops.FusedReduce]
    (kernel,) = kernels_by_node(f).values()
    assert "of Composite{" in kernel and "np.empty((s0, s1" not in kernel and "acc" in kernel
    value = np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.25]])
    both([x, y], [reduce(T.exp(x) * y - 1, axis=axis)], [value, np.array([[1.0, 0.0, -2.0]])])


def test_elementwise_results_are_written_in_place_exactly_where_the_plan_says(numba_backend, monkeypatch):
    monkeypatch.setattr(arignote.config, "rewrites", "all")
    x, y = T.dmatrix("x"), T.dmatrix("y")
    d, e = T.dot(x, y), T.dot(y, x)
    outputs = [T.tanh(d) * 2,  # d dies here: written in place
               T.dot(T.exp(e) + 1, e),  # e is read again
               T.cast(T.dot(x, x), "float32") + 1,  # another dtype
               T.sqrt(x)]  # an input
    f = arignote.function([x, y], outputs, backend=numba_backend)
    plan = plan_of(f.maker.fgraph)
    reused = {plan.position[node] for node in plan.reuse}
    kernels = kernels_by_node(f)
    assert reused and set(kernels) - reused
    assert {n for n, text in kernels.items() if "written in place" in text} == reused
    g = arignote.function([x, y], T.inc_subtensor(T.dot(x, y)[1:], y[1:]), backend=numba_backend)
    (inc,) = [n for n in plan_of(g.maker.fgraph).reuse if isinstance(n.op, ops.IncSubtensor)]
    assert "written in place" in kernels_by_node(g)[plan_of(g.maker.fgraph).position[inc]]
    value = np.random.default_rng(2).normal(size=(3, 3))
    both([x, y], outputs, [value, value.T * 2])


def test_prange_twins_go_to_the_plan_s_costliest_loops_only(numba_backend, monkeypatch):
    monkeypatch.setattr(arignote.config, "rewrites", "all")
    x = T.dvector("x")
    outputs = [T.exp(x), T.sin(T.cos(x)), T.sqrt(x), x * 2]
    f = arignote.function([x], outputs, backend=numba_backend)
    plan = plan_of(f.maker.fgraph)
    assert len(plan.threads) == 3
    twins = re.findall(r"^from \S+ import kernel as node(\d+), kernel_parallel", f.backend_source, flags=re.M)
    assert {int(n) for n in twins} == {plan.position[node] for node in plan.threads[:2]}
    value = np.linspace(0.5, 2, 7)
    both([x], outputs, [value])


def test_parallel_twins_called_from_several_threads_at_once(tmp_path):
    """numba's workqueue layer aborts the process when two threads enter parallel loops at once: the
    glue runs one parallel twin at a time, and a thread that finds it busy runs the plain program
    (the same values). In a process of its own: an abort would take the test run with it."""
    script = textwrap.dedent("""
        import threading
        import numpy as np
        import arignote, arignote.tensor as T
        from arignote.core.plugins import registry
        from arignote.backends.numba import NumbaBackend, PARALLEL_MIN
        if "numba" not in registry.names():
            registry.register(NumbaBackend())
        x = T.fmatrix("x")
        f = arignote.function([x], T.exp(x) * T.tanh(x) + T.sin(x), backend="numba")
        assert "kernel_parallel" in f.backend_source
        value = np.random.default_rng(0).random((PARALLEL_MIN // 500 + 1, 500), dtype=np.float32)
        expected = f(value)
        wrong = []
        def work():
            for _ in range(20):
                wrong.extend([1] if not np.array_equal(f(value), expected) else [])
        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("wrong", len(wrong))
    """)
    env = dict(os.environ, ARIGNOTE_CACHE_DIR=str(tmp_path / "cache"))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-2:] == ["wrong", "0"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc thresholds are Linux-only")
def test_calls_do_not_page_fault_their_temporaries_in_again(tmp_path):
    # a function whose temporaries are large (8 MB each): with freed memory kept (the default), the
    # calls after the first reuse it; with ARIGNOTE_KEEP_FREED=0 every call maps and faults them in
    script = textwrap.dedent("""
        import resource
        import numpy as np
        import arignote, arignote.tensor as T
        from arignote.core.plugins import registry
        from arignote.backends.numba import NumbaBackend
        if "numba" not in registry.names():
            registry.register(NumbaBackend())
        x = T.dmatrix("x")
        f = arignote.function([x], T.sum(T.dot(T.exp(x), x) * 2), backend="numba")
        a = np.ones((1000, 1000))
        f(a)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            f(a)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    faults = {}
    for keep in ("1", "0"):
        env = dict(os.environ, ARIGNOTE_CACHE_DIR=str(tmp_path / "cache"), ARIGNOTE_KEEP_FREED=keep)
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        faults[keep] = int(run.stdout.split()[-1])
    # 10 calls of two 8 MB temporaries are some 40,000 pages when each is faulted in again
    assert faults["0"] > 10_000 and faults["1"] < faults["0"] / 10, faults


def test_shares_run_every_row_once_raise_after_every_share_and_survive_a_second_caller(monkeypatch):
    """shares.run_shares hands shares to polling workers: every row runs exactly once, by share 0 on the
    calling thread and the others on workers; an error of a worker's share is raised once every share
    has ended; two threads sharing at once both finish with every row done (the second, finding the
    workers busy, runs its rows itself); a forked child makes workers of its own."""
    import threading

    from arignote.backends.numba import shares

    monkeypatch.setenv("ARIGNOTE_THREADS", "3")
    if shares.threads_for_shares() < 2:
        pytest.skip("the BLAS offers no thread count to set (SciPy's Cython BLAS): no shares")
    seen, threads = np.zeros(1000, np.int64), set()

    def mark(lo, hi, share):
        threads.add((share, threading.get_ident()))
        seen[lo:hi] += 1

    for _ in range(200):
        shares.run_shares(mark, 1000, work=1, least=0)
    assert (seen == 200).all()
    assert {s for s, _ in threads} == {0, 1, 2} and len({t for _, t in threads}) == 3

    ended = []

    def fail_on_worker(lo, hi, share):
        if share == 2:
            raise RuntimeError(f"share {share} failed")
        time.sleep(0.05)
        ended.append(share)

    with pytest.raises(RuntimeError, match="share 2 failed"):
        shares.run_shares(fail_on_worker, 9, work=1, least=0)
    assert sorted(ended) == [0, 1]  # the others had ended when it was raised

    totals = [np.zeros(500, np.int64) for _ in range(2)]

    def caller(k):
        for _ in range(100):
            shares.run_shares(lambda lo, hi, share: totals[k].__setitem__(slice(lo, hi), totals[k][lo:hi] + 1),
                              500, work=1, least=0)

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(2)]
    for c in callers:
        c.start()
    for c in callers:
        c.join(timeout=60)
    assert all((t == 100).all() for t in totals)

    if hasattr(os, "fork"):
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the child: its parent's workers are gone, the shares still run
            import signal
            signal.alarm(30)  # a child waiting for workers it does not have dies: the read below gets b""
            try:
                shares.run_shares(mark, 1000, work=1, least=0)
                os.write(write, b"ok" if (seen == 201).all() else b"rows")
            finally:
                os._exit(0)
        os.close(write)
        assert os.read(read, 8) == b"ok"
        os.waitpid(child, 0)


def test_workers_make_kernel_calls_without_python_awake_or_asleep(numba_backend, monkeypatch):
    """A worker's share that is one call of panels.py's kernels (runtime.columns_job) is made by the
    worker without Python (shares.serve): right results whether the worker is polling or asleep when it
    is posted, and beside shares that are Python jobs, on the same seats."""
    import importlib

    from arignote.backends import numba as numba_package
    from arignote.backends.numba import shares

    monkeypatch.setenv("ARIGNOTE_THREADS", "3")
    if shares.threads_for_shares() < 2:
        pytest.skip("the BLAS offers no thread count to set (SciPy's Cython BLAS): no shares")
    runtime = importlib.import_module(numba_package._runtime_module())
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(12, 40)).astype("float32"), rng.normal(size=(40, 200)).astype("float32")
    kinds = []

    def kernel(lo, hi, job, scale, python_share):
        made = lo != python_share and runtime.columns_job(a, b, out, lo, hi, False, 1.0, 0.0, 1 << 62, job, scale)
        kinds.append(bool(made))
        return made

    for round in range(40):
        if round % 8 == 7:
            time.sleep(0.02)  # the workers stop polling and sleep (shares.SPIN_POLLS)
        out = np.full((12, 200), np.nan, np.float32)
        python_share = 64 if round % 3 == 0 else -1
        shares.run_shares(lambda lo, hi, t: runtime.gemm_columns(a, b, out, lo, hi, False, 1.0, 0.0, 1 << 62),
                          200, work=1, least=0, align=32,
                          kernel=lambda lo, hi, job, scale: kernel(lo, hi, job, scale, python_share))
        np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert True in kinds and False in kinds


def test_only_top_level_program_segments_skip_the_optimization_after_linking(numba_backend, monkeypatch):
    """numba re-optimizes every function a compiled function links in; a top-level program's segments
    (glue) skip that pass, and nothing else does: not a loop's inner graph, whose segment runs every
    step, nor a function of the user's that happens to be called segment0."""
    import numba

    import arignote.backends.numba as backend

    judged = []

    def recording(library):
        judged.append((library.name, backend_is_segment(library)))
        return judged[-1][1]

    backend_is_segment = backend._is_program_segment
    monkeypatch.setattr(backend, "_is_program_segment", recording)
    x = T.vector("x")
    total, _ = arignote.scan(lambda v, s: s * 0.5 + v, sequences=x, outputs_info=T.zeros_like(x[0]))
    f = arignote.function([x], [T.tanh(x) * 3, total[-1]], backend=numba_backend)
    np.testing.assert_allclose(f(np.arange(3.0))[1], 2.5)

    namespace = {"__name__": "users_module"}
    exec("def segment0(a):\n    return a.sum() * 2.0\n", namespace)  # a function of the user's, named so
    assert numba.njit(namespace["segment0"])(np.ones(3)) == 6.0
    segment_libraries = [skipped for name, skipped in judged if name == "segment0"]
    # the program's segment skipped it; the loop's inner graph's and the user's function kept it
    assert sorted(segment_libraries) == [False, False, True], judged


def test_row_ops_split_from_the_plans_threshold(monkeypatch):
    """A row op of plan.threads (the softmax cross-entropy and its gradient) is shared out by the glue
    (shares.SplitRows) from its plan.parallel_min elements, PARALLEL_MIN // COSTLY_ELEMENT: just below
    it one call, just past it shares, with the reference's values either way."""
    from arignote.core.plan import COSTLY_ELEMENT

    shared_out = []
    real = shares.run_shares
    monkeypatch.setattr(shares, "run_shares", lambda run, n, work, *args, **kw: (shared_out.append(work),
                                                                                  real(run, n, work, *args, **kw)))
    monkeypatch.setenv("ARIGNOTE_THREADS", "2")
    z, y = T.fmatrix("z"), T.ivector("y")
    loss = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(z), y))
    outputs = [loss, arignote.grad(loss, z)]
    f = arignote.function([z, y], outputs, backend="numba")
    least = PARALLEL_MIN // COSTLY_ELEMENT
    assert set(f.maker.fgraph.plan.parallel_min.values()) == {least}
    reference = arignote.function([z, y], outputs, backend="reference")
    rng = np.random.default_rng(5)
    for rows, splits in ((least // 100 - 1, False), (least // 100 + 1, True)):  # 100 columns
        shared_out.clear()
        Z = rng.standard_normal((rows, 100)).astype("float32")
        Y = rng.integers(0, 100, rows).astype("int32")
        for got, want in zip(f(Z, Y), reference(Z, Y)):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        assert (shared_out == [Z.size, Z.size]) == splits and (shared_out == []) != splits, (rows, shared_out)
