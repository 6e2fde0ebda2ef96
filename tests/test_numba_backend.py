"""The Numba backend's own promises: a disk cache a second process reuses, readable generated source,
errors raised as Python exceptions naming the op, any strides, and the prange path on large arrays."""

import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core.plugins import registry

numba_module = pytest.importorskip("numba")
from arignote.backends.numba import PARALLEL_MIN, NumbaBackend  # noqa: E402


@pytest.fixture
def numba_backend(tmp_path, monkeypatch):
    """The backend named 'numba' (registered for the test when its entry point is not installed),
    with a fresh cache directory."""
    monkeypatch.setattr(arignote.config, "cache_dir", str(tmp_path / "cache"))
    registered = "numba" in registry.names()
    if not registered:
        registry.register(NumbaBackend())
    yield "numba"
    if not registered:
        registry.reset()


def both(inputs, outputs, values):
    got = arignote.function(inputs, outputs, backend="numba")(*values)
    expected = arignote.function(inputs, outputs, backend="reference")(*values)
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype and g.shape == e.shape
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12, equal_nan=True)
    return got


def kernels(f):
    namespace = f._executable.__globals__
    return {name: value for name, value in namespace.items() if name.startswith("K")}


def test_generated_source_is_one_function_commented_with_the_graph_nodes(numba_backend):
    x, y = T.dmatrix("x"), T.drow("y")
    f = arignote.function([x, y], [T.exp(x) * y + 1, T.dot(x, x.T)], backend=numba_backend)
    source = f.backend_source
    assert source.count("def run(inputs)") == 1
    assert "built at" in source and __file__.split(os.sep)[-1] in source  # where the user built it
    assert "np.dot(" in source and "@_nb.njit" in source and "for i0 in" in source
    assert "Exp" in source and "_nb.prange" in source


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
        kernel = f._executable.__globals__["K0"]
        print("hits", sum(kernel.stats.cache_hits.values()), "misses", sum(kernel.stats.cache_misses.values()))
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
    assert any(name.startswith("kernel_") and name.endswith(".py") for name in os.listdir(cache / "numba"))


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


def test_integer_and_boolean_dtypes_wrap_like_numpy(numba_backend):
    a, b = T.bvector("a"), T.bvector("b")
    c = T.vector("c", dtype="bool")
    both([a, b, c], [a + b, a * b, a // b, a % b, ~c, c | (a > 0), T.cast(a, "float32") / 3],
         [np.array([100, -100, 7, 0], np.int8), np.array([100, 3, 0, 0], np.int8),
          np.array([True, False, True, False])])


def test_large_arrays_take_the_prange_path(numba_backend):
    x = T.dvector("x")
    f = arignote.function([x], T.exp(-x * x) + T.sin(x), backend=numba_backend)
    value = np.linspace(-3, 3, PARALLEL_MIN + 5)
    np.testing.assert_allclose(f(value), np.exp(-value * value) + np.sin(value), rtol=1e-12)
    compiled = kernels(f)
    assert compiled["K0p"].signatures and not compiled["K0"].signatures
    f(value[:10])
    assert compiled["K0"].signatures
