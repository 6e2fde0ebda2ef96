"""The C backend's own promises: generated source, errors instead of crashes, the on-disk cache
(reuse across processes, corrupt entries rebuilt, concurrent compiles), and a clear message without a
compiler. Every other test of the suite also runs on `c` through the `backend` fixture."""

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("cffi")
pytest.importorskip("scipy")

import arignote  # noqa: E402
import arignote.tensor as T  # noqa: E402
from arignote.backends import blas  # noqa: E402

from checks import assert_same  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def both(inputs, outputs, *values, c="c"):
    mine = arignote.function(inputs, outputs, backend=c)(*values)
    reference = arignote.function(inputs, outputs, backend="reference")(*values)
    for a, b in zip(mine if isinstance(mine, list) else [mine], reference if isinstance(reference, list) else [reference]):
        assert_same(a, b, "c vs reference")
    return mine


def test_generated_source_is_visible_and_commented(c, monkeypatch):
    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: False)  # else the product's columns are split
    x, y = T.matrices("x", "y")
    f = arignote.function([x, y], T.tanh(x) + T.dot(x, y), backend=c)
    source = f.backend_source
    assert "int ari_run(" in source
    assert "/* node 0:" in source and "built at" in source and "test_c_backend.py" in source
    assert "Dot" in source and "ari_matmul(" in source  # BLAS, through the runtime


def test_views_negative_strides_and_integer_dtypes(c):
    x = T.matrix("x")
    a = np.arange(24.0).reshape(4, 6)
    both([x], [T.exp(x) * 2 - x.T.T, x.sum(axis=0), T.argmax(x, axis=1)], a[::-1, ::2])
    both([x], [x * 3 + 1, x.max(axis=1)], a.T)
    i, j = T.imatrix("i"), T.bvector("j")
    ii = np.arange(-6, 6, dtype="int32").reshape(3, 4)
    both([i, j], [i // 3, i % 3, i + j, (i > 0) & (j < 2), T.sum(i)], ii, np.array([1, -2, 3, 0], "int8"))


def test_outputs_are_owned_by_the_caller(c):
    x = T.vector("x")
    f = arignote.function([x], [x * 2, x], backend=c)
    value = np.arange(3.0)
    first, same = f(value)
    first[:] = -1
    again, _ = f(value)
    np.testing.assert_array_equal(again, [0, 2, 4])
    np.testing.assert_array_equal(value, [0, 1, 2])



def test_large_buffers_are_recycled_only_once_their_arrays_are_gone(c):
    """Large outputs and intermediates come from spare buffers the program keeps: a buffer is reused
    only after the NumPy array that wrapped it is gone, never while the caller still holds it."""
    x = T.vector("x")
    f = arignote.function([x], [T.exp(x) * 2, (x + 1).sum()], backend=c)
    value = np.linspace(-1, 1, 1 << 16)  # 512 KB outputs: above the spare-buffer size
    held = [f(value * k)[0] for k in range(4)]
    assert len({a.__array_interface__["data"][0] for a in held}) == 4
    for k, a in enumerate(held):
        np.testing.assert_allclose(a, np.exp(value * k) * 2)
    address = held[0].__array_interface__["data"][0]
    del held
    again = [f(value)[0] for _ in range(3)]  # whatever they reuse, each result is right and its own
    assert len({a.__array_interface__["data"][0] for a in again}) == 3
    for a in again:
        np.testing.assert_allclose(a, np.exp(value) * 2)
    assert address > 0


def test_arrays_outliving_their_function_survive_interpreter_exit(c, tmp_path):
    """A shared value wrapping a program's buffer may be dropped last thing at exit, after cffi let go
    of the program's library: the library stays loaded so that the buffer can still be given back
    (a training step's parameters, held in reference cycles of the graph, crashed the exit before)."""
    script = textwrap.dedent("""
        from arignote.bench import workloads
        data = workloads._mlp_data(workloads.Sizes(), 20)
        step = workloads._mlp_graph(workloads._arignote_api("c"), data)().run
        print([float(step()) for _ in range(3)])
    """)
    env = dict(os.environ, ARIGNOTE_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    costs = eval(done.stdout)
    assert len(costs) == 3 and costs[2] < costs[0]



def test_out_of_range_index_raises_index_error(c):
    x, i = T.vector("x"), T.lscalar("i")
    f = arignote.function([x, i], x[i], backend=c)
    assert f(np.arange(3.0), -3) == 0
    with pytest.raises(IndexError, match=r"index 7 is out of bounds for axis 0 with size 3"):
        f(np.arange(3.0), 7)
    v = T.lvector("v")
    g = arignote.function([x, v], x[v], backend=c)
    with pytest.raises(IndexError, match="out of bounds"):
        g(np.arange(3.0), np.array([0, 1 << 40]))
    h = arignote.function([x, v], T.inc_subtensor(x[v], 1.0), backend=c)
    with pytest.raises(IndexError, match="AdvancedIncSubtensor"):
        h(np.arange(3.0), np.array([-4]))


def test_shape_errors_name_the_op_and_the_shapes(c):
    x, y = T.matrices("x", "y")
    f = arignote.function([x, y], x + y, backend=c)
    with pytest.raises(ValueError, match=r"Add.*\(2, 3\), \(3, 2\)"):
        f(np.zeros((2, 3)), np.zeros((3, 2)))
    g = arignote.function([x, y], T.dot(x, y), backend=c)
    with pytest.raises(ValueError, match=r"Dot.*\(2, 3\) and \(2, 3\) are not aligned"):
        g(np.zeros((2, 3)), np.zeros((2, 3)))


SCRIPT = textwrap.dedent("""
    import sys, numpy as np, arignote, arignote.tensor as T
    from arignote.core.plugins import registry
    from arignote.backends.c import CBackend
    if "c" not in registry.names():
        registry.register(CBackend())
    x = T.matrix("x")
    f = arignote.function([x], T.tanh(x).sum(axis=1) * 3, backend="c")
    assert np.allclose(f(np.ones((2, 3))), 3 * 3 * np.tanh(1.0))
    print("compiled" if f._executable.compiled_now else "cached")
""")


def run_script(cache, **env):
    environment = dict(os.environ, ARIGNOTE_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1", **env)
    environment.pop("ARIGNOTE_BACKEND", None)
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment,
                          cwd=ROOT)


def programs(cache):
    root = cache / "c"
    return [p for p in root.glob("*/program.so")] if root.exists() else []


def test_cache_is_reused_by_a_second_process_and_private(c, tmp_path):
    first = run_script(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split()[-1] == "compiled"
    second = run_script(tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split()[-1] == "cached"
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "delete"])
def test_a_damaged_cache_entry_is_rebuilt(c, tmp_path, damage):
    assert run_script(tmp_path).returncode == 0
    for path in programs(tmp_path):
        data = path.read_bytes()
        if damage == "truncate":
            path.write_bytes(data[: len(data) // 3])
        elif damage == "corrupt":
            path.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:400]) + data[400:])
        else:
            path.unlink()
    again = run_script(tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[-1] == "compiled"
    assert run_script(tmp_path).stdout.split()[-1] == "cached"


def test_two_processes_compiling_the_same_graph_both_succeed(c, tmp_path):
    environment = dict(os.environ, ARIGNOTE_CACHE_DIR=str(tmp_path))
    environment.pop("ARIGNOTE_BACKEND", None)
    runs = [subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=environment, cwd=ROOT) for _ in range(3)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    assert run_script(tmp_path).stdout.split()[-1] == "cached"


def test_no_compiler_gives_a_clear_message(tmp_path):
    script = textwrap.dedent("""
        from arignote.backends.c import CBackend, build
        import arignote.tensor as T
        from arignote.core.graph import FunctionGraph
        availability = CBackend().available()
        print("usable" if availability else "unusable:", availability.reason)
        x = T.vector("x")
        try:
            CBackend().compile(FunctionGraph([x], [x * 2]))
        except build.CompileError as error:
            print("compile error:", error)
    """)
    environment = dict(os.environ, ARIGNOTE_CACHE_DIR=str(tmp_path), CC="/nonexistent/cc")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "unusable: the C backend needs a C compiler, and '/nonexistent/cc' could not be run" in done.stdout
    assert "compile error: the C backend needs a C compiler" in done.stdout


def test_broadcast_rows_every_layout(c):
    """The three loop shapes of an elementwise node (flat, rows with a value broadcast along each row,
    strided) agree with the reference on every layout, small and large enough to run on several cores."""
    x, b, col = T.matrix("x"), T.row("b"), T.col("c")
    outputs = [T.tanh(x + b), x * col - b, T.exp(-x * x) * b + col]
    for n, m in [(3, 5), (700, 500), (0, 4), (4, 0), (1, 1)]:
        a = np.random.default_rng(n).standard_normal((n, m + 3))
        for view in (a[:, :m], a[::-1, :m], a[:, m - 1::-1] if m else a[:, :0], np.asfortranarray(a[:, :m])):
            both([x, b, col], outputs, view, np.arange(view.shape[1], dtype=float)[None], np.ones((view.shape[0], 1)))
    t3, v = T.tensor3("t3"), T.vector("v")
    cube = np.random.default_rng(1).standard_normal((4, 5, 6))
    both([t3, v], [T.sin(t3 + v), t3.dimshuffle(0, "x", 1, 2) * t3.dimshuffle("x", 0, 1, 2).sum(axis=0)], cube[:, ::2], np.arange(6.0))


def test_broadcast_rows_integers_bools_and_specials(c):
    i, r = T.imatrix("i"), T.irow("r")
    bm, br = T.TensorType("bool", (False, False))("bm"), T.TensorType("bool", (True, False))("br")
    ii = np.arange(-12, 12, dtype="int32").reshape(4, 6)
    both([i, r], [i // r, i % r, i * r + 1, T.maximum(i, r)], ii, np.array([[1, -2, 3, 5, -7, 2]], "int32"))
    both([bm, br], [bm & br, bm | br, T.invert(bm) ^ br], np.eye(4, dtype=bool), np.array([[True, False, True, False]]))
    x, b = T.fmatrix("x"), T.frow("b")
    special = np.array([[np.nan, np.inf, -np.inf, 0.0], [1.0, -1.0, 1e30, -0.0]], "float32")
    both([x, b], [x + b, T.tanh(x * b), T.exp(x) / b, T.maximum(x, b)], special, np.array([[1, np.nan, -np.inf, 0]], "float32"))


def test_intermediates_are_reused_in_place_without_clobbering(c):
    """Elementwise results take over the buffer of an input that dies at their node; the function's
    inputs, its outputs of earlier calls, and a buffer still read through a view are never overwritten."""
    x, w, b = T.matrix("x"), T.matrix("w"), T.vector("b")
    h = T.tanh(T.dot(x, w) + b)
    y = T.exp(h)
    outputs = [(h * 2 - 1).sum(axis=1), y + y.T, T.sqr(T.dot(x, w) - 1) * 3]
    f = arignote.function([x, w, b], outputs, backend=c)
    assert "in place" in f.backend_source and "last use" in f.backend_source
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5)]
    kept = [v.copy() for v in values]
    first = [o.copy() for o in f(*values)]
    reference = arignote.function([x, w, b], outputs, backend="reference")(*values)
    for got, want in zip(first, reference):
        assert_same(got, want, "c vs reference")
    again = f(*values)
    for v, k in zip(values, kept):
        np.testing.assert_array_equal(v, k)
    for a, b_ in zip(again, first):
        np.testing.assert_array_equal(a, b_)


def test_a_reduction_computes_the_elementwise_node_it_fuses(c):
    """sum(x ** 2), mean(a * b, axis), ... read their elementwise node's inputs directly (no temporary):
    every layout, broadcasting, integer dtypes and empty arrays agree with the reference."""
    x, b = T.matrix("x"), T.row("b")
    outputs = [T.sum(x ** 2), T.mean(x * b, axis=1), T.sum(T.tanh(x + b), axis=0), T.mean(T.exp(x) - b, axis=(0, 1), keepdims=True)]
    f = arignote.function([x, b], outputs, backend=c)
    assert "is computed as it is read" in f.backend_source
    a = np.random.default_rng(2).standard_normal((40, 30))
    for view in (a, a[::-1, 1::2], a.T, a[:0], a[:, :0]):
        both([x, b], outputs, view, np.linspace(-1, 1, view.shape[1])[None])
    i = T.imatrix("i")
    ii = np.arange(-6, 6, dtype="int32").reshape(3, 4)
    both([i], [T.sum(i * i, axis=1), T.sum(i // 2), T.mean(abs(i), axis=0)], ii)
    with pytest.raises(ValueError, match="negative integer powers"):
        arignote.function([i], T.sum(i ** i), backend=c)(ii)


def test_leading_axes_reduced_on_every_layout(c):
    x, t3 = T.matrix("x"), T.tensor3("t3")
    a = np.random.default_rng(3).standard_normal((50, 40))
    cube = np.random.default_rng(4).standard_normal((3, 4, 5))
    for view in (a, a[::-1], a[:, ::3], a.T, a[:0], a[:, :0]):
        both([x], [x.sum(axis=0), x.mean(axis=0, keepdims=True), T.sum(x * 2, axis=0), x.prod(axis=0)], view)
    both([t3], [t3.sum(axis=(0, 1)), T.max(t3.astype("int32"), axis=0), T.mean(T.exp(t3), axis=0)], cube)
    i = T.lmatrix("i")
    both([i], [i.sum(axis=0), T.min(i, axis=0)], np.arange(-10, 10).reshape(4, 5))


def test_axes_around_the_kept_ones_reduced_in_lanes_on_every_layout(c):
    """A bias gradient's sum over (0, 2, 3) adds each image's contiguous runs in lanes; views and
    NaN-taking maxima go the general way."""
    x = T.tensor4("x")
    a = np.random.default_rng(5).standard_normal((3, 4, 5, 7))
    assert "lead = " in arignote.function([x], x.sum(axis=(0, 2, 3)), backend=c).backend_source
    for view in (a, a[:, :, ::-1], a.transpose(0, 1, 3, 2), a[:0], a[:, :, :0]):
        both([x], [x.sum(axis=(0, 2, 3)), x.mean(axis=(0, 3), keepdims=True), T.sum(x * 2, axis=(0, 1, 3)),
                   x.prod(axis=(0, 2, 3))] + ([T.max(x, axis=(0, 2, 3))] if view.size else []), view)
    b = a.copy()
    b[1, 2, 3, 4] = np.nan
    both([x], [x.sum(axis=(0, 2, 3)), T.max(x, axis=(0, 2, 3))], b)


def test_join_copies_contiguous_rows_and_any_view(c):
    a, b = T.matrix("a"), T.matrix("b")
    f = arignote.function([a, b], T.concatenate([a * 2, b], axis=1), backend=c)
    assert "contiguous rows: a loop that vectorizes" in f.backend_source
    x = np.random.default_rng(6).standard_normal((4, 6))
    for u, v in ((x, x[:, :2]), (x[:, ::-1], x[::-1, 1:4]), (x.T[:4], x[:, ::2])):
        both([a, b], [T.concatenate([a * 2, b], axis=1), T.concatenate([a, b.astype("float32")], axis=1)], u, v)
    both([a, b], T.concatenate([a, b], axis=0), x, x[:, ::-1])


def test_fast_and_slow_calls_agree(c):
    """C reads the inputs straight from the argument list and fills 0-d outputs in place; anything it
    does not take (a subclass, another byte order, a tuple of arguments, no arguments) goes the slow way."""
    x = T.vector("x")
    f = arignote.function([x], [x.sum(), x * 2, T.max(x)], backend=c)
    value = np.arange(4.0)

    class Sub(np.ndarray):
        pass

    for arg in (value, value.view(Sub), value.astype(">f8"), value[::-1]):
        total, twice, top = f(arg)
        assert total.shape == () and float(total) == 6.0 and float(top) == 3.0
        np.testing.assert_array_equal(twice, np.asarray(arg) * 2)
    assert [float(v) for v in f._executable((value,))[::2]] == [6.0, 3.0]
    assert float(arignote.function([], T.constant(2.0) * 3, backend=c)()) == 6.0


def test_vector_code_clears_the_upper_registers(c):
    """A loop that calls libmvec on whole vectors calls scalar libm on its remainder; with the vector
    registers' upper halves left dirty, that SSE code (and NumPy's, after the program returns) runs
    several times slower. gcc inserts vzeroupper only when -fexpensive-optimizations is on."""
    from arignote.backends.c import build

    if "-mavx2" not in build.cflags():
        pytest.skip("this machine gets no AVX code, so nothing leaves the upper registers dirty")
    x, b = T.fmatrix("x"), T.fvector("b")
    f = arignote.function([x, b], T.tanh(x + b), backend=c)
    both([x, b], T.tanh(x + b), np.linspace(-9, 9, 500 * 37, dtype=np.float32).reshape(37, 500),
         np.linspace(-1, 1, 500, dtype=np.float32))
    module, _ = build.load_or_build(f.backend_source)
    with open(module.path, "rb") as file:
        assert b"\xc5\xf8\x77" in file.read(), "the program never clears the upper halves (vzeroupper)"


CREW_SCRIPT = """
import gc, os, signal, threading
import numpy as np
import arignote, arignote.tensor as T

x = T.fvector()
a = np.full(1 << 21, 0.5, np.float32)  # past PARALLEL_MIN: the loop is a parallel region
expected = np.exp(np.float32(0.5)) * 2

def program():
    f = arignote.function([x], T.exp(x) * 2, backend="c")
    assert np.allclose(f(a), expected)  # (the output, which would hold the library, is dropped)
    return f

def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()
f = program()
assert threads() == before + 1, (before, threads())  # the program's crew: one worker, kept
for _ in range(50):
    assert np.allclose(f(a), expected)
assert threads() == before + 1
del f
gc.collect()
assert threads() == before, (before, threads())  # stopped, and joined, before the library closed

g = program()
child = os.fork()
if child == 0:  # the parent's worker is not in the child: the child makes its own
    signal.alarm(30)
    ok = all(np.allclose(g(a), expected) for _ in range(5))
    os._exit(0 if ok else 3)
_, status = os.waitpid(child, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status

results = []
def call():
    results.extend(bool(np.allclose(g(a), expected)) for _ in range(20))
callers = [threading.Thread(target=call) for _ in range(3)]  # at once: the crew is busy for some
for t in callers:
    t.start()
for t in callers:
    t.join()
assert results == [True] * 60, results
print("crew ok")
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task") or not hasattr(os, "fork"),
                    reason="counts threads in /proc/self/task and forks (Linux)")
def test_c_parallel_regions_use_a_kept_crew_stopped_before_unloading(c, tmp_path):
    """runtime.h's crew: a parallel region's shares go to worker threads made once and kept (not
    created per region); unloading the program stops and joins them first (a worker left polling in
    an unmapped library would crash the process); a forked child makes its own; callers from several
    threads at once all get right results (a caller that finds the crew busy runs its shares itself).
    In a process of its own, so that a crash or a hang fails this test only."""
    env = dict(os.environ, ARIGNOTE_THREADS="2", ARIGNOTE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", CREW_SCRIPT], capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0 and "crew ok" in done.stdout, done.stdout + done.stderr


COSTLY_SCRIPT = """
import os
import numpy as np
import arignote, arignote.tensor as T
from arignote.core.plan import COSTLY_ELEMENT, PARALLEL_MIN

x, b = T.fmatrix(), T.fvector()
f = arignote.function([x, b], T.tanh(x + b), backend="c")
least = PARALLEL_MIN // COSTLY_ELEMENT
assert f"ari_parallel(ari_kernel" in f.backend_source and f", {least});" in f.backend_source

def threads():
    return len(os.listdir("/proc/self/task"))

before = threads()
for rows in (least // 1000 - 1, least // 1000 + 1):  # 1000 columns: just below, then just past it
    a = np.linspace(-3, 3, rows * 1000, dtype=np.float32).reshape(rows, 1000)
    assert np.allclose(f(a, a[0]), np.tanh(a + a[0]), atol=1e-6)
    print(rows, threads() - before)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc/self/task (Linux)")
def test_a_costly_loop_splits_from_the_plans_threshold(c, tmp_path):
    """A loop of tanh splits between threads from plan.parallel_min elements (PARALLEL_MIN //
    COSTLY_ELEMENT), which the program passes to ari_parallel: just below it runs on this thread
    (no crew started), just past it the crew's worker takes a share. In a process of its own, whose
    threads are counted."""
    env = dict(os.environ, ARIGNOTE_THREADS="2", ARIGNOTE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-c", COSTLY_SCRIPT], capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    below, past = (line.split() for line in done.stdout.split("\n")[:2])
    assert below[1] == "0" and past[1] == "1", done.stdout
