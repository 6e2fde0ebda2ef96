"""Theano's tutorial, "More Examples": logistic function, several outputs, default values, shared
variables, givens, copying functions."""
import numpy
import theano
import theano.tensor as T
from theano import In, function, shared

x = T.dmatrix("x")
s = 1 / (1 + T.exp(-x))
logistic = function([x], s)
expected = [[0.5, 0.73105858], [0.26894142, 0.11920292]]
assert numpy.allclose(logistic([[0, 1], [-1, -2]]), expected)
s2 = (1 + T.tanh(x / 2)) / 2
assert numpy.allclose(function([x], s2)([[0, 1], [-1, -2]]), expected)

a, b = T.dmatrices("a", "b")
diff = a - b
f = function([a, b], [diff, abs(diff), diff ** 2])
d, ad, d2 = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
assert numpy.array_equal(d, [[1, 0], [-1, -2]]) and numpy.array_equal(ad, [[1, 0], [1, 2]])
assert numpy.array_equal(d2, [[1, 0], [1, 4]])

x, y = T.dscalars("x", "y")
z = x + y
f = function([x, In(y, value=1)], z)
assert f(33) == 34 and f(33, 2) == 35
x, y, w = T.dscalars("x", "y", "w")
z = (x + y) * w
f = function([x, In(y, value=1), In(w, value=2, name="w_by_name")], z)
assert f(33) == 68 and f(33, 2) == 70 and f(33, 0, 1) == 33
assert f(33, w_by_name=1) == 34 and f(33, w_by_name=1, y=0) == 33

state = shared(0)
inc = T.iscalar("inc")
accumulator = function([inc], state, updates=[(state, state + inc)])
assert state.get_value() == 0
assert accumulator(1) == 0 and state.get_value() == 1
assert accumulator(300) == 1 and state.get_value() == 301
state.set_value(-1)
assert accumulator(3) == -1 and state.get_value() == 2
decrementor = function([inc], state, updates=[(state, state - inc)])
assert decrementor(2) == 2 and state.get_value() == 0

fn_of_state = state * 2 + inc
foo = T.scalar(dtype=state.dtype)
skip_shared = function([inc, foo], fn_of_state, givens=[(state, foo)])
assert skip_shared(1, 3) == 7 and state.get_value() == 0

state = shared(0)
accumulator = function([inc], state, updates=[(state, state + inc)])
accumulator(10)
assert state.get_value() == 10
new_state = shared(0)
new_accumulator = accumulator.copy(swap={state: new_state})
new_accumulator(100)
assert new_state.get_value() == 100 and state.get_value() == 10
null_accumulator = accumulator.copy(delete_updates=True)
null_accumulator(9000)
assert state.get_value() == 10
print("ok")
