"""function(): the contract between the user's graph and a backend (inputs, outputs, updates, givens)."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import In, MissingInputError, Out, UnusedInputError, function, shared
from arignote.core.plugins import BackendError, registry


# --- outputs ----------------------------------------------------------------------------------------

def test_single_output_returns_the_array(backend):
    x = T.dvector("x")
    result = function([x], x * 2, backend=backend)([1.0, 2.0])
    assert type(result) is np.ndarray
    np.testing.assert_array_equal(result, [2.0, 4.0])


def test_list_of_outputs_returns_a_list(backend):
    x = T.dvector("x")
    result = function([x], [x * 2, x + 1], backend=backend)([1.0, 2.0])
    assert isinstance(result, list) and len(result) == 2
    np.testing.assert_array_equal(result[0], [2.0, 4.0])
    np.testing.assert_array_equal(result[1], [2.0, 3.0])
    single = function([x], [x * 2], backend=backend)([1.0])
    assert isinstance(single, list) and len(single) == 1


def test_no_outputs_returns_an_empty_list(backend):
    s = shared(np.zeros(2), name="s")
    x = T.dvector("x")
    f = function([x], updates=[(s, s + x)], backend=backend)
    assert f([1.0, 2.0]) == []
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_no_inputs(backend):
    s = shared(np.array([1.0, 2.0]), name="s")
    assert function([], T.sum(s) * 2, backend=backend)() == 6.0
    assert function((), T.constant(3.0) * 2, backend=backend)() == 6.0


def test_inputs_must_be_a_list():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="list"):
        function(x, x * 2)


def test_scalar_outputs_are_zero_d_arrays(backend):
    x, c = T.dvector("x"), T.dscalar("c")
    f = function([x, c], [T.sum(x), c * 2, T.max(x)], backend=backend)
    for value in f([1.0, 2.0], 3.0):
        assert type(value) is np.ndarray and value.shape == ()
    assert float(f([1.0, 2.0], 3.0)[1]) == 6.0


# --- returned arrays never alias storage they do not own ----------------------------------------------

def test_returned_arrays_are_writeable(backend):
    x = T.dvector("x")
    f = function([x], [x * 2, T.sum(x), x.T, T.constant(np.arange(3.0))], backend=backend)
    for value in f([1.0, 2.0]):
        assert value.flags.writeable
        value[...] = 0  # does not raise


def test_output_of_a_shared_variable_is_a_copy(backend):
    s = shared(np.arange(3.0), name="s")
    out = function([], s, backend=backend)()
    out[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])
    view = function([], s.dimshuffle("x", 0), backend=backend)()  # a view of s is copied too
    view[0, 1] = 99.0
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])


def test_out_borrow_returns_shared_storage(backend):
    s = shared(np.arange(3.0), name="s")
    borrowed = function([], Out(s, borrow=True), backend=backend)()
    np.testing.assert_array_equal(borrowed, [0.0, 1.0, 2.0])
    if backend == "reference":  # borrow=True allows aliasing; core adds no copy, and the reference adds none
        assert borrowed is s.get_value(borrow=True)
    copied = function([], Out(s), backend=backend)()
    assert not np.may_share_memory(copied, s.get_value(borrow=True))


def test_input_returned_unchanged_does_not_alias_the_callers_array(backend):
    x = T.dvector("x")
    mine = np.array([1.0, 2.0])
    out = function([x], x, backend=backend)(mine)
    assert not np.may_share_memory(out, mine)
    out[0] = 99.0
    assert mine[0] == 1.0


def test_two_outputs_of_the_same_variable_are_distinct_arrays(backend):
    x = T.dvector("x")
    y = x * 2
    a, b = function([x], [y, y], backend=backend)([1.0, 2.0])
    assert not np.may_share_memory(a, b)
    a[0] = 99.0
    assert b[0] == 2.0
    a, b = function([x], [x, x], backend=backend)([1.0, 2.0])
    assert not np.may_share_memory(a, b)


def test_update_from_an_input_does_not_alias_the_callers_array(backend):
    s = shared(np.zeros(2), name="s")
    x = T.dvector("x")
    f = function([x], [], updates=[(s, x)], backend=backend)
    mine = np.array([1.0, 2.0])
    f(mine)
    mine[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_update_equal_to_an_output_does_not_alias_it(backend):
    s = shared(np.zeros(2), name="s")
    f = function([], s + 1, updates=[(s, s + 1)], backend=backend)
    out = f()
    out[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [1.0, 1.0])


# --- updates ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spelling", ["list of pairs", "tuple of tuples", "list of lists", "dict", "OrderedDict"])
def test_update_spellings(backend, spelling):
    a = shared(np.array(1.0), name="a")
    b = shared(np.array([1.0, 2.0]), name="b")
    pairs = [(a, a * 10), (b, b + a)]
    updates = {
        "list of pairs": pairs,
        "tuple of tuples": tuple(pairs),
        "list of lists": [list(p) for p in pairs],
        "dict": dict(pairs),
        "OrderedDict": OrderedDict(pairs),
    }[spelling]
    function([], [], updates=updates, backend=backend)()
    assert a.get_value() == 10.0
    np.testing.assert_array_equal(b.get_value(), [2.0, 3.0])  # b + the old a


def test_updates_are_written_after_the_outputs(backend):
    s = shared(np.array([1.0, 2.0]), name="s")
    f = function([], [s * 1, T.sum(s)], updates=[(s, s + 10)], backend=backend)
    first, total = f()
    np.testing.assert_array_equal(first, [1.0, 2.0])
    assert total == 3.0
    np.testing.assert_array_equal(s.get_value(), [11.0, 12.0])


def test_updates_can_swap_two_shared_variables(backend):
    a = shared(np.array([1.0, 1.0]), name="a")
    b = shared(np.array([2.0, 2.0]), name="b")
    swap = function([], [], updates=[(a, b), (b, a)], backend=backend)
    swap()
    np.testing.assert_array_equal(a.get_value(), [2.0, 2.0])
    np.testing.assert_array_equal(b.get_value(), [1.0, 1.0])
    assert not np.may_share_memory(a.get_value(borrow=True), b.get_value(borrow=True))
    swap()
    np.testing.assert_array_equal(a.get_value(), [1.0, 1.0])
    np.testing.assert_array_equal(b.get_value(), [2.0, 2.0])


def test_a_call_that_raises_changes_no_shared_variable(backend):
    s = shared(np.arange(3.0), name="s")
    t = shared(np.array(0.0), name="t")
    x = T.dvector("x")
    f = function([x], [T.sum(s), x + s], updates=[(s, s + 1), (t, t + 1)], backend=backend)
    with pytest.raises(ValueError):
        f([1.0, 2.0])  # shape mismatch in the second output
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])
    assert t.get_value() == 0.0
    with pytest.raises(TypeError):
        f(np.zeros((3, 3)))  # refused before running
    assert t.get_value() == 0.0
    f([1.0, 1.0, 1.0])
    assert t.get_value() == 1.0


def test_update_of_another_type_is_refused_at_compile_time():
    s = shared(np.zeros(3, dtype="float32"), name="s32")
    x = T.dvector("x")
    with pytest.raises(TypeError) as info:
        function([x], [], updates=[(s, x)])
    message = str(info.value)
    assert "s32" in message
    assert "TensorType(float32, vector)" in message and "TensorType(float64, vector)" in message


def test_update_with_a_wrong_ndim_or_pattern_is_refused():
    s = shared(np.zeros(3), name="s")
    with pytest.raises(TypeError, match="TensorType"):
        function([], [], updates=[(s, T.sum(s))])
    row = shared(np.zeros((1, 3)), broadcastable=(True, False), name="row")
    m = T.dmatrix("m")
    with pytest.raises(TypeError, match="row"):
        function([m], [], updates=[(row, row + m)])


def test_update_with_a_python_number_must_fit_the_shared_dtype(backend):
    count = shared(0, name="count")
    with pytest.raises(TypeError, match="int64"):
        function([], [], updates=[(count, 1.5)])  # would silently become 1
    small = shared(np.int8(0), name="small")
    with pytest.raises(TypeError, match="int8"):
        function([], [], updates=[(small, 300)])  # would wrap around to 44
    function([], [], updates=[(count, 2)], backend=backend)()
    assert count.get_value() == 2
    f32 = shared(np.float32(0), name="f32")
    function([], [], updates=[(f32, 0.1)], backend=backend)()  # Python floats suit any float type
    assert f32.get_value().dtype == np.float32 and f32.get_value() == np.float32(0.1)


def test_update_targets_must_be_shared_and_unique():
    s = shared(np.zeros(2), name="s")
    x = T.dvector("x")
    with pytest.raises(TypeError, match="shared"):
        function([x], [], updates=[(x, x + 1)])
    with pytest.raises(ValueError, match="twice"):
        function([], [], updates=[(s, s + 1), (s, s + 2)])


# --- default updates ----------------------------------------------------------------------------------

def test_default_updates_are_applied_and_can_be_frozen(backend):
    c = shared(np.array(0.0), name="c")
    c.default_update = c + 1
    f = function([], c * 2, backend=backend)
    assert [float(f()) for _ in range(3)] == [0.0, 2.0, 4.0]
    assert c.get_value() == 3.0
    frozen = function([], c * 2, no_default_updates=True, backend=backend)
    frozen()
    assert c.get_value() == 3.0
    frozen_list = function([], c * 2, no_default_updates=[c], backend=backend)
    frozen_list()
    assert c.get_value() == 3.0
    explicit = function([], c * 2, updates=[(c, c + 10)], backend=backend)  # explicit beats default
    explicit()
    assert c.get_value() == 13.0


# --- givens -----------------------------------------------------------------------------------------

def test_givens_replaces_an_input_variable(backend):
    x, y = T.dvector("x"), T.dvector("y")
    f = function([y], x * 2, givens={x: y + 1}, backend=backend)
    np.testing.assert_array_equal(f([1.0, 2.0]), [4.0, 6.0])
    g = function([y], x * 2, givens=[(x, y)], backend=backend)  # a list of pairs too
    np.testing.assert_array_equal(g([1.0, 2.0]), [2.0, 4.0])


def test_givens_replaces_a_shared_variable_before_compilation(backend):
    s = shared(np.array([1.0, 2.0]), name="s")
    t = shared(np.array([10.0, 20.0]), name="t")
    f = function([], s * 2, updates=[(t, t + 1)], givens={s: t}, backend=backend)
    np.testing.assert_array_equal(f(), [20.0, 40.0])
    np.testing.assert_array_equal(f(), [22.0, 42.0])  # reads t, which its update changed
    y = T.dvector("y")
    g = function([y], s * 2, givens={s: y}, backend=backend)
    np.testing.assert_array_equal(g([3.0, 4.0]), [6.0, 8.0])
    np.testing.assert_array_equal(s.get_value(), [1.0, 2.0])


def test_givens_with_a_wrong_type_is_refused():
    x = T.fvector("x")
    y = T.dvector("y")
    with pytest.raises(TypeError, match="float32"):
        function([y], x * 2, givens={x: y})
    with pytest.raises(ValueError):
        function([y], y * 2, givens={y: y + 1})  # an explicit input cannot also be replaced


# --- In: defaults and keyword calls ----------------------------------------------------------------

def test_in_defaults_and_keyword_calls(backend):
    x, w = T.dscalar("x"), T.dscalar("w")
    f = function([x, In(w, value=2.0, name="w_by_name")], x * w, backend=backend)
    assert f(33) == 66.0
    assert f(33, w_by_name=1) == 33.0
    assert f(33, 3) == 99.0
    assert f(x=4, w_by_name=0.5) == 2.0  # a variable's own name works as a keyword


def test_keyword_call_errors(backend):
    x, w = T.dscalar("x"), T.dscalar("w")
    f = function([x, In(w, value=2.0, name="w_by_name")], x * w, backend=backend)
    with pytest.raises(TypeError, match="missing") as info:
        f()
    assert "x" in str(info.value)
    with pytest.raises(TypeError, match="nope"):
        f(1.0, nope=3.0)
    with pytest.raises(TypeError, match="two values") as info:
        f(1.0, x=2.0)
    assert "'x'" in str(info.value)
    with pytest.raises(TypeError):
        f(1.0, 2.0, 3.0)  # too many positional arguments


# --- input conversion -------------------------------------------------------------------------------

def test_python_numbers_and_lists_are_converted(backend):
    x, c, i = T.dvector("x"), T.dscalar("c"), T.ivector("i")
    f = function([x, c, i], [x * c, i + 1], backend=backend)
    scaled, incremented = f([1, 2], 3, [4, 5])
    assert scaled.dtype == np.float64 and incremented.dtype == np.int32
    np.testing.assert_array_equal(scaled, [3.0, 6.0])
    np.testing.assert_array_equal(incremented, [5, 6])


def test_lossy_downcast_is_refused_naming_the_input(backend):
    x = T.fvector("my_input")
    f = function([x], x * 2, backend=backend)
    with pytest.raises(TypeError, match="my_input") as info:
        f(np.array([1.0, 2.0]))  # float64 into float32
    assert "allow_input_downcast" in str(info.value)
    i = T.iscalar("count")
    g = function([i], i * 2, backend=backend)
    with pytest.raises(TypeError, match="count"):
        g(1.5)  # the fraction would be lost


def test_allow_input_downcast(backend):
    x = T.fvector("x")
    f = function([x], x * 2, allow_input_downcast=True, backend=backend)
    result = f(np.array([1.0, 2.0]))
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, [2.0, 4.0])


def test_python_float_into_float32_input_is_accepted(backend):
    x, v = T.fscalar("x"), T.fvector("v")
    f = function([x, v], [x * 2, v * 2], backend=backend)
    a, b = f(1.1, [0.1, 0.2])
    assert a.dtype == np.float32 and b.dtype == np.float32
    assert a == np.float32(1.1) * 2


def test_wrong_ndim_input_is_refused_with_a_message(backend):
    x = T.dvector("x")
    f = function([x], x * 2, backend=backend)
    with pytest.raises(TypeError, match=r"input x.*1 dimension.*\(2, 2\)"):
        f(np.zeros((2, 2)))


# --- eval, unused and missing inputs ------------------------------------------------------------------

def test_eval(backend):
    x = T.dvector("x")
    np.testing.assert_array_equal((x + 1).eval({x: np.array([1.0, 2.0])}), [2.0, 3.0])
    np.testing.assert_array_equal((x * 2).eval({x: [3.0]}), [6.0])
    s = shared(np.array(4.0), name="s")
    assert (s * 2).eval() == 8.0
    s.set_value(5.0)
    assert (s * 2).eval() == 10.0


def test_on_unused_input(backend):
    x, y = T.dvector("x"), T.dvector("unused_y")
    with pytest.raises(UnusedInputError, match="unused_y"):
        function([x, y], x * 2, backend=backend)
    with pytest.warns(UserWarning, match="unused_y"):
        f = function([x, y], x * 2, on_unused_input="warn", backend=backend)
    np.testing.assert_array_equal(f([1.0], [5.0]), [2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = function([x, y], x * 2, on_unused_input="ignore", backend=backend)
    np.testing.assert_array_equal(g([1.0], [5.0]), [2.0])
    with pytest.raises(ValueError):
        function([x], x * 2, on_unused_input="sometimes")


def test_missing_input_error_names_the_variable(backend):
    x, y = T.dvector("x"), T.dvector("forgotten_y")
    with pytest.raises(MissingInputError, match="forgotten_y"):
        function([x], x + y, backend=backend)


# --- copy, modes and backends ----------------------------------------------------------------------

def test_copy_with_swap_and_delete_updates(backend):
    acc = shared(np.array(0.0), name="acc")
    other = shared(np.array(100.0), name="other")
    inc = T.dscalar("inc")
    f = function([inc], acc * 1, updates=[(acc, acc + inc)], backend=backend)
    swapped = f.copy(swap={acc: other})
    assert swapped(1.0) == 100.0
    assert other.get_value() == 101.0 and acc.get_value() == 0.0
    frozen = f.copy(delete_updates=True)
    assert frozen(5.0) == 0.0
    assert acc.get_value() == 0.0
    assert f(2.0) == 0.0 and acc.get_value() == 2.0  # the original still updates its own
    with pytest.raises(TypeError):
        f.copy(swap={acc: shared(np.zeros(2))})


@pytest.mark.parametrize("mode", ["FAST_RUN", "FAST_COMPILE"])
def test_theano_mode_names_are_accepted(mode):
    x = T.dvector("x")
    f = function([x], x * 2, mode=mode)
    np.testing.assert_array_equal(f([1.0, 2.0]), [2.0, 4.0])


def test_unknown_backend_lists_the_installed_ones():
    x = T.dvector("x")
    with pytest.raises(BackendError, match="nope") as info:
        function([x], x * 2, backend="nope")
    for name in registry.names():
        assert name in str(info.value)
    assert arignote.BackendError is BackendError


def test_function_name_appears_in_errors(backend):
    x = T.dvector("x")
    f = function([x], x * 2, name="doubler", backend=backend)
    assert f.name == "doubler"
    with pytest.raises(TypeError, match="doubler"):
        f(np.zeros((1, 1)))


# --- debugprint ---------------------------------------------------------------------------------------

def test_debugprint_of_a_variable_is_an_indented_tree_reusing_ids():
    x = T.dvector("x")
    e = T.exp(x)
    y = e * x + e
    y.name = "y"
    assert arignote.debugprint(y, file="str") == (
        "Add [id A] 'y'\n"
        " |Mul [id B]\n"
        " | |Exp [id C]\n"
        " | | |x [id D]\n"
        " | |x [id D]\n"
        " |Exp [id C]\n"  # seen before: shown by its id, not expanded again
    )


def test_debugprint_of_several_variables_shares_ids():
    x = T.dvector("x")
    e = T.exp(x)
    text = arignote.debugprint([e * x, T.tanh(e)], file="str")
    lines = text.splitlines()
    assert lines[0] == "Mul [id A]" and lines[1] == " |Exp [id B]" and lines[2] == " | |x [id C]"
    assert lines[4] == "Tanh [id D]" and lines[5] == " |Exp [id B]"
    assert len(lines) == 6


def test_debugprint_of_a_function_prints_outputs_and_updates(backend, capsys):
    x = T.dvector("x")
    c = shared(np.array(0.0), name="counter")
    f = function([x], T.tanh(x), updates=[(c, c + 1)], backend=backend)
    text = arignote.debugprint(f, file="str")
    lines = text.splitlines()
    assert lines[0].startswith("Tanh [id A]") and lines[1].startswith(" |x [id B]")
    update = [k for k, line in enumerate(lines) if "(update of counter)" in line]
    assert len(update) == 1 and lines[update[0]].startswith("Add [id")
    assert any(line.startswith(" |counter [id") for line in lines[update[0] + 1:])
    arignote.debugprint(f)  # without file=, it prints
    assert capsys.readouterr().out == text
    with pytest.raises(TypeError):
        arignote.debugprint(42, file="str")


def test_a_pickled_function_computes_and_updates_its_own_shared_variables(backend):
    import pickle

    x = T.dvector("x")
    w = arignote.shared(np.ones(3), name="w")
    f = arignote.function([x], (x * w).sum(), updates=[(w, w * 2)], name="train", backend=backend)
    g = pickle.loads(pickle.dumps(f))
    assert g.name == "train" and g.backend.name == backend
    assert float(g(np.arange(3.0))) == float(f(np.arange(3.0))) == 3.0
    (w_loaded,) = g._shared_inputs
    np.testing.assert_array_equal(w_loaded.get_value(), [2.0, 2.0, 2.0])
    assert w_loaded is not w
    g(np.arange(3.0))
    np.testing.assert_array_equal(w.get_value(), [2.0, 2.0, 2.0])  # the original is untouched
    np.testing.assert_array_equal(w_loaded.get_value(), [4.0, 4.0, 4.0])


def test_copy_shares_and_deepcopy_copies_shared_variables(backend):
    import copy

    w = arignote.shared(np.float64(1.0), name="w")
    f = arignote.function([], w, updates=[(w, w + 1)], backend=backend)
    deep = copy.deepcopy(f)
    assert float(deep()) == 1.0 and float(w.get_value()) == 1.0
    shallow = copy.copy(f)
    shallow()
    assert float(w.get_value()) == 2.0 and float(f()) == 2.0
