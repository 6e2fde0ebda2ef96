"""A call's fast path (Function._fast_entry, the backends' ``fast``): taken for inputs exactly of their
types, never for anything core would check, convert or refuse, which still gets core's answer."""

import pickle
import threading

import numpy as np
import pytest

import arignote.tensor as T
from arignote import function, shared
from arignote.core.types import TensorType

from checks import backends_under_test


@pytest.fixture(params=[name for name in backends_under_test() if name in ("c", "numba")])
def backend(request):
    """The backends with a fast entry, installed and usable (or ARIGNOTE_BACKEND's, if it is one)."""
    return request.param


class Spy:
    """Stands in for ``f._fast``: what each call of the backend's fast entry returned."""

    def __init__(self, f):
        self.fast, self.returned = f._fast, []
        f._fast = self

    def __call__(self, values):
        result = self.fast(values)
        self.returned.append(result)
        return result

    def taken(self):
        return [r is not None for r in self.returned]


def fast_function(backend, inputs, outputs, **options):
    f = function(inputs, outputs, backend=backend, **options)
    assert f._fast is not None, f"the {backend} backend offers no fast entry for this function"
    return f, Spy(f)


def test_the_common_call_takes_the_fast_path(backend):
    a = T.fscalar("a")
    f, spy = fast_function(backend, [a], a + 1)
    x = np.array(0.5, np.float32)
    result = f(x)
    assert spy.taken() == [True]
    assert type(result) is np.ndarray and result.dtype == np.float32 and result == 1.5
    assert result is not x and result.flags.writeable
    assert f(x) is not result  # a fresh array each call


@pytest.mark.parametrize("value", [np.array(0.5), 0.5, np.float32(0.5), np.array([0.5], np.float32),
                                   np.array(0.5, ">f4"), np.array(0.5, np.float32).view(np.recarray), "x"])
def test_any_other_input_gets_cores_answer(backend, value):
    """Another dtype (the slow path refuses a lossy one), a Python or NumPy scalar, another rank or byte
    order, an ndarray subclass, a string: the fast entry declines and core converts or refuses as usual."""
    a = T.fscalar("a")
    f, spy = fast_function(backend, [a], a + 1)
    general = function([a], a + 1, backend="reference")
    try:
        expected = general(value)
    except Exception as error:
        with pytest.raises(type(error)) as raised:
            f(value)
        assert str(raised.value) == str(error)
    else:
        np.testing.assert_array_equal(f(value), expected)
    assert spy.taken() == [False]


def test_layouts_the_fast_path_cannot_take_give_the_same_values(backend):
    m = T.fmatrix("m")
    f, spy = fast_function(backend, [m], [(m * 2).sum(), m[0, 1] + 1])
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    buffer = np.zeros(4 * 5 * 4 + 1, np.uint8)
    unaligned = buffer[1:].view(np.float32).reshape(4, 5)
    unaligned[...] = x
    readonly = x.copy()
    readonly.flags.writeable = False
    for value in [x, x[::-1], x[:, ::-2], x.T, np.asfortranarray(x), unaligned, readonly, x.astype(">f4")]:
        total, element = f(value)
        assert total == (value * 2).sum() and element == value[0, 1] + 1
    assert spy.taken()[0]


def test_a_broadcastable_axis_of_another_length_is_refused(backend):
    column = TensorType("float32", (False, True))("column")
    f, spy = fast_function(backend, [column], (column * 2).sum())
    assert f(np.ones((3, 1), np.float32)) == 6
    with pytest.raises(TypeError, match="broadcastable"):
        f(np.ones((3, 2), np.float32))
    assert spy.taken() == [True, False]


def test_keyword_calls_and_defaults_take_the_general_path(backend):
    from arignote import In

    a, b = T.fscalar("a"), T.fscalar("b")
    f, spy = fast_function(backend, [a, In(b, value=np.float32(2))], a * b)
    one = np.array(1.5, np.float32)
    assert f(one) == 3 and f(a=one, b=one) == 2.25 and f(one, one) == 2.25
    assert spy.taken() == [True]  # only the positional call with every input


def test_an_error_in_compiled_code_is_the_same_on_both_paths(backend):
    v, i = T.fvector("v"), T.lvector("i")
    f, spy = fast_function(backend, [v, i], v[i].sum())
    values = np.ones(3, np.float32)
    with pytest.raises(IndexError) as fast:
        f(values, np.array([0, 5]))
    with pytest.raises(IndexError) as general:
        f(values, [0, 5])  # a list: converted by core, then the executable as usual
    assert spy.taken() == [False]  # the first call raised inside the fast entry, the list was declined
    assert str(fast.value) == str(general.value) and "index 5" in str(fast.value)
    assert f(values, np.array([0, 2])) == 2


def test_shared_inputs_are_read_at_each_call(backend):
    w = shared(np.float32(2), name="w")
    a = T.fscalar("a")
    f, spy = fast_function(backend, [a], a * w)
    x = np.array(3, np.float32)
    assert f(x) == 6
    w.set_value(np.float32(5))
    assert f(x) == 15
    assert spy.taken() == [True, True]


def test_functions_core_must_finish_have_no_fast_entry(backend):
    """Updates, a result to copy (an input or a constant returned, an output twice), a cross-checked or
    profiled call: core's general path."""
    s = shared(np.float32(0), name="s")
    a = T.fscalar("a")
    for f in [function([a], a + 1, updates=[(s, s + a)], backend=backend),
              function([a], a, backend=backend),
              function([a], [a + 1, a + 1], backend=backend),
              function([a], T.constant(np.float32(1)) + 0, backend=backend, on_unused_input="ignore"),
              function([a], a + 1, backend=backend, check=True),
              function([a], a + 1, backend=backend, profile=True)]:
        assert f._fast is None
        f(np.array(1, np.float32))  # and it runs
    assert s.get_value() == 1


def test_two_outputs_are_distinct_fresh_arrays(backend):
    a = T.fscalar("a")
    f, spy = fast_function(backend, [a], [a + 1, a * 2])
    x = np.array(3, np.float32)
    first, second = f(x)
    assert spy.taken() == [True]
    assert (first, second) == (4, 6) and not np.shares_memory(first, second)
    first[...] = 0
    assert second == 6 and x == 3


def test_array_outputs_follow_their_shapes_from_call_to_call(backend):
    """Array outputs of every kind (small, large, 0-d, empty, the same variable twice, an update in
    place) come back right and fresh when the input shapes change between calls and when they repeat:
    the C backend makes each small output's array from the last call's shape and C fills it."""
    x, y = T.fmatrix("x"), T.fvector("y")
    w = shared(np.zeros(3, np.float32), name="w")
    doubled = x * 2
    outputs = [doubled, doubled, x.sum(axis=1), (x * y).sum(), T.outer(y, y), x[:0]]
    f = function([x, y], outputs, updates=[(w, w + 1)], backend=backend)
    # no update, no variable twice, no view of an input: the fast path
    fast, spy = fast_function(backend, [x, y], outputs[1:-1])
    rng = np.random.default_rng(3)
    previous = None
    for rows, cols in [(2, 3), (2, 3), (4, 3), (4, 3), (1, 200), (200, 200), (200, 200), (0, 3), (2, 3)]:
        a, b = rng.random((rows, cols), np.float32), rng.random(cols, np.float32)
        got = f(a, b) + fast(a, b)
        want = [a * 2, a * 2, a.sum(axis=1), (a * b).sum(), np.outer(b, b), a[:0]]
        want += want[1:-1]
        for g, expected in zip(got, want):
            assert g.shape == expected.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, expected, rtol=1e-5)
            assert g.flags.writeable and g.flags.c_contiguous
        assert not np.shares_memory(got[0], got[1]) and not np.shares_memory(got[1], got[6])
        if previous is not None:
            assert not any(np.shares_memory(g, p) for g in got for p in previous if g.size and p.size)
        for g in got:  # writing into one call's arrays changes nothing the next call returns
            g[...] = -1
        previous = got
    assert w.get_value().tolist() == [9, 9, 9]
    assert spy.taken() == [True] * 9


def test_the_reference_backend_has_none():
    a = T.fscalar("a")
    assert function([a], a + 1, backend="reference")._fast is None


def test_the_fast_path_survives_pickling(backend):
    a = T.fscalar("a")
    f, _ = fast_function(backend, [a], a + 1)
    f._fast = f._fast.fast  # not the spy
    loaded = pickle.loads(pickle.dumps(f))
    assert loaded._fast is not None and loaded(np.array(1, np.float32)) == 2


def test_calls_from_several_threads(backend):
    """The C backend's all-0-d programs run without a lock, their errors kept per thread."""
    v, i = T.fvector("v"), T.lvector("i")
    f, _ = fast_function(backend, [v, i], v[i].sum())
    values = np.arange(100, dtype=np.float32)
    wrong = []

    def work(k):
        for n in range(300):
            if n % 3 == 0:
                try:
                    f(values, np.array([k, 1000 + k]))
                    wrong.append("no error")
                except IndexError as error:
                    if f"index {1000 + k} is out of bounds" not in str(error):
                        wrong.append(str(error))
            elif f(values, np.array([k, k + 1])) != 2 * k + 1:
                wrong.append("value")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


@pytest.mark.skipif("numba" not in backends_under_test(), reason="the numba backend is not usable here")
def test_numba_calls_the_overload_of_each_input_signature_directly():
    m = T.fmatrix("m")
    f, spy = fast_function("numba", [m], (m * 2).sum())
    glue = f._executable.fast.__globals__
    x = np.ones((3, 4), np.float32)
    readonly = x.copy()
    readonly.flags.writeable = False
    for value in [x, x, x.T, x[:, ::2], readonly, readonly]:
        assert f(value) == 2 * value.sum()
    # C, F, A and read-only C: each learnt on its first call, then called without the dispatcher
    assert len(glue["_entries"]) == 4 and glue["segment0"] not in glue["_entries"].values()
    with pytest.raises(TypeError, match="lose precision"):
        f(np.ones((3, 4)))  # float64: declined before any lookup, so nothing compiled for it
    assert len(glue["_entries"]) == 4 and len(glue["segment0"].overloads) == 4
    assert spy.taken() == [True] * 6 + [False]


def test_numba_learns_the_dispatcher_itself_when_it_ran_an_overload_of_other_types():
    pytest.importorskip("numba")
    from arignote.backends.numba import _learner

    class Dispatcher:
        overloads = {}  # it converted the arguments to the types of an overload it has

        def __call__(self, *arguments):
            return ("ran",)

    dispatcher, entries = Dispatcher(), {}
    assert _learner(dispatcher, entries)("key")(np.zeros(2)) == ("ran",)
    assert entries == {"key": dispatcher}


@pytest.mark.skipif("numba" not in backends_under_test(), reason="the numba backend is not usable here")
def test_numba_fast_path_of_a_program_with_a_parallel_twin():
    from arignote.core.plan import PARALLEL_MIN

    x = T.fvector("x")
    f, spy = fast_function("numba", [x], [T.tanh(x) * 2.5, T.exp(x).sum()])
    assert "segment0_parallel" in f.backend_source.split("def fast(")[1]
    for n in (3, PARALLEL_MIN):  # the plain program, then its twin
        value = np.linspace(-1, 1, n, dtype=np.float32)
        scaled, total = f(value)
        np.testing.assert_allclose(scaled, np.tanh(value) * 2.5, rtol=1e-6)
        np.testing.assert_allclose(total, np.exp(value).sum(), rtol=1e-4)
    assert spy.taken() == [True, True]
