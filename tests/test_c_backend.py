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
from arignote.core.plugins import registry  # noqa: E402

from checks import assert_same  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def c():
    """The name of the C backend, registered for these tests if its entry point is not installed."""
    from arignote.backends.c import CBackend

    registry.names()
    added = "c" not in registry._backends
    if added:
        registry._backends["c"] = CBackend()
    if not registry.availability("c"):
        pytest.skip(f"the C backend is not usable here: {registry.availability('c').reason}")
    yield "c"
    if added:
        registry._backends.pop("c", None)
        registry._availability.pop("c", None)


def both(inputs, outputs, *values, c="c"):
    mine = arignote.function(inputs, outputs, backend=c)(*values)
    reference = arignote.function(inputs, outputs, backend="reference")(*values)
    for a, b in zip(mine if isinstance(mine, list) else [mine], reference if isinstance(reference, list) else [reference]):
        assert_same(a, b, "c vs reference")
    return mine


def test_generated_source_is_visible_and_commented(c):
    x, y = T.matrices("x", "y")
    f = arignote.function([x, y], T.tanh(x) + T.dot(x, y), backend=c)
    source = f.backend_source
    assert "int ari_run(" in source
    assert "/* node 0:" in source and "built at" in source and "test_c_backend.py" in source
    assert "Dot" in source and "gemm" in source


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
