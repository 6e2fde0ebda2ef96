"""shared(): values that persist between calls, copied unless borrowed, typed, picklable."""

import pickle

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import function, shared


# --- value ownership: borrow=False copies in both directions ---------------------------------------

def test_shared_copies_the_callers_array():
    original = np.arange(3.0)
    s = shared(original, name="s")
    assert s.name == "s" and s.type == T.TensorType("float64", (False,))
    original[0] = 99.0
    assert s.get_value()[0] == 0.0
    assert not np.may_share_memory(s.get_value(borrow=True), original)


def test_shared_borrow_true_keeps_the_callers_array():
    original = np.arange(3.0)
    s = shared(original, borrow=True)
    assert s.get_value(borrow=True) is original


def test_get_value_returns_a_copy_and_borrow_returns_the_internal_array():
    s = shared(np.arange(3.0))
    value = s.get_value()
    value[0] = 99.0
    assert s.get_value()[0] == 0.0
    internal = s.get_value(borrow=True)
    assert internal is s.get_value(borrow=True)
    internal[0] = 42.0  # the internal array is the value itself
    assert s.get_value()[0] == 42.0


def test_set_value_copies_unless_borrowed():
    s = shared(np.zeros(3))
    new = np.arange(3.0)
    s.set_value(new)
    new[0] = 99.0
    np.testing.assert_array_equal(s.get_value(), [0.0, 1.0, 2.0])
    assert not np.may_share_memory(s.get_value(borrow=True), new)
    s.set_value(new, borrow=True)
    assert s.get_value(borrow=True) is new


def test_set_value_converts_safely_and_may_change_the_shape():
    s = shared(np.zeros(3))
    s.set_value([1, 2])  # Python ints into float64: exact
    value = s.get_value()
    assert value.dtype == np.float64 and value.shape == (2,)
    np.testing.assert_array_equal(value, [1.0, 2.0])
    s.set_value(np.arange(4, dtype="float32"))  # float32 into float64: safe
    assert s.get_value().dtype == np.float64


def test_set_value_refuses_a_lossy_dtype():
    s = shared(np.zeros(3, dtype="float32"), name="s32")
    with pytest.raises(TypeError, match="s32"):
        s.set_value(np.ones(3))  # float64 array into float32
    np.testing.assert_array_equal(s.get_value(), np.zeros(3))
    assert s.get_value().dtype == np.float32


def test_set_value_refuses_a_wrong_ndim():
    s = shared(np.zeros(3))
    with pytest.raises(TypeError, match="dimension"):
        s.set_value(np.zeros((2, 2)))


def test_shared_refuses_symbolic_values_and_unsupported_dtypes():
    with pytest.raises(TypeError):
        shared(T.dvector("x"))
    with pytest.raises(TypeError, match="float16"):
        shared(np.zeros(2, dtype="float16"))


# --- 0-d values ---------------------------------------------------------------------------------------

def test_zero_d_shared_int_and_float():
    i = shared(3, name="i")
    f = shared(2.5, name="f")
    assert i.type == T.TensorType("int64", ()) and f.type == T.TensorType("float64", ())
    assert isinstance(i.get_value(), np.ndarray) and i.get_value().shape == ()
    assert i.get_value() == 3 and f.get_value() == 2.5
    i.set_value(7)
    f.set_value(0.25)
    assert i.get_value() == 7 and f.get_value() == 0.25
    with pytest.raises(TypeError):
        i.set_value(1.5)  # a Python float that is not an integer would lose its fraction
    assert i.get_value() == 7


def test_zero_d_shared_counter(backend):
    count = shared(0, name="count")
    step = function([], count, updates=[(count, count + 1)], backend=backend)
    assert [int(step()) for _ in range(3)] == [0, 1, 2]
    assert count.get_value() == 3 and count.get_value().dtype == np.int64


def test_zero_d_shared_float32_from_numpy_scalar(backend):
    lr = shared(np.float32(0.5), name="lr")
    assert lr.type == T.TensorType("float32", ())
    halve = function([], [], updates=[(lr, lr * 0.5)], backend=backend)  # 0.5 stays float32
    halve()
    assert lr.get_value() == np.float32(0.25) and lr.get_value().dtype == np.float32


# --- broadcastable= --------------------------------------------------------------------------------

def test_shared_is_not_broadcastable_by_default(backend):
    s = shared(np.ones((1, 3)))
    assert s.broadcastable == (False, False)
    m = T.dmatrix("m")
    f = function([m], s + m, backend=backend)
    with pytest.raises(ValueError):
        f(np.ones((2, 3)))  # a size-1 axis stretches only where the type says so, as in Theano


def test_shared_broadcastable_row(backend):
    s = shared(np.array([[1.0, 2.0, 3.0]]), broadcastable=(True, False), name="row")
    assert s.broadcastable == (True, False)
    m = T.dmatrix("m")
    result = function([m], s + m, backend=backend)(np.zeros((2, 3)))
    np.testing.assert_array_equal(result, [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(TypeError):
        s.set_value(np.ones((2, 3)))  # axis 0 is broadcastable: it must have size 1
    with pytest.raises(TypeError):
        shared(np.ones(3), broadcastable=(True,))


# --- pickling ----------------------------------------------------------------------------------------

def test_pickle_round_trips_the_value():
    s = shared(np.arange(6.0, dtype="float32").reshape(2, 3), name="W")
    copy = pickle.loads(pickle.dumps(s))
    assert isinstance(copy, arignote.SharedVariable)
    assert copy.name == "W" and copy.type == s.type
    np.testing.assert_array_equal(copy.get_value(), s.get_value())
    assert copy.get_value().dtype == np.float32
    copy.set_value(np.zeros((2, 3), dtype="float32"))  # the copy is independent
    assert s.get_value()[1, 2] == 5.0


def test_pickled_model_can_be_used_again(backend):
    w = shared(np.array([1.0, 2.0]), name="w")
    b = shared(0.5, name="b")
    w2, b2 = pickle.loads(pickle.dumps([w, b]))
    x = T.dvector("x")
    f = function([x], T.sum(x * w2) + b2, backend=backend)
    assert float(f([1.0, 1.0])) == 3.5
