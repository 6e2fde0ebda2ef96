"""Sizes are checked before anything is allocated (issue 21, item 1), on every backend alike.

A shape whose byte count passes what an int64 counts raises ValueError (NumPy's "array is too big"), a
negative size ValueError, memory the system refuses MemoryError (the reference's too, not
RuntimeError), each naming the op. Sums and products of sizes never wrap around: a wrapped size
allocated a small buffer that the loops then overran (a segfault in the C backend, in numba, and in
NumPy itself for np.repeat and np.concatenate, which the reference now guards).
"""

import re

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.scan_module import until
from arignote.tensor.shared_randomstreams import RandomStreams

INT64_MAX = 2 ** 63 - 1
_compiled = {}


def compiled(backend, key):
    """Each function compiled once per backend (numba compiles cost seconds)."""
    if (backend, key) not in _compiled:
        inputs, outputs = BUILD[key]()
        _compiled[backend, key] = arignote.function(inputs, outputs, backend=backend)
    return _compiled[backend, key]


def _zeros():
    m, n = T.lscalars("m", "n")
    return [m, n], T.zeros((m, n))


def _arange():
    stop = T.dscalar("stop")
    return [stop], T.arange(stop)


def _repeat():
    v, count = T.dvector("v"), T.lscalar("count")
    return [v, count], T.repeat(v, count)


def _repeat_each():
    v, counts = T.dvector("v"), T.lvector("counts")
    return [v, counts], T.repeat(v, counts)


def _reshape():
    v, a, b = T.dvector("v"), T.lscalar("a"), T.lscalar("b")
    return [v, a, b], v.reshape((a, b, b))


def _join():
    piece = T.bvector("piece")
    return [piece], T.concatenate([piece] * 8)


def _uniform():
    n = T.lscalar("n")
    return [n], RandomStreams(seed=1).uniform((n, n))


def _until():
    n = T.lscalar("n")
    h0 = T.dscalar("h0")
    rows, _ = arignote.scan(lambda h: (h + 1, until(h + 1 >= 100)), outputs_info=h0, n_steps=n)
    return [h0, n], rows


BUILD = {"zeros": _zeros, "arange": _arange, "repeat": _repeat, "repeat_each": _repeat_each,
         "reshape": _reshape, "join": _join, "uniform": _uniform, "until": _until}

EMPTY = np.zeros(0)
# eight read-only views of one int8 each, 2**61 long: joined, 2**64 elements, which wraps around to 0
BROADCAST = np.broadcast_to(np.zeros(1, np.int8), (2 ** 61,))

IMPOSSIBLE = [
    # (function, arguments, the exception, words of its message)
    pytest.param("zeros", (2 ** 32, 2 ** 32), ValueError, "too big", id="zeros-(2**32, 2**32)"),
    pytest.param("zeros", (2 ** 50, 1), MemoryError, None, id="zeros-8-PiB"),
    pytest.param("zeros", (-1, 3), ValueError, r"\(-1, 3\)", id="zeros-negative"),
    pytest.param("arange", (2.0 ** 62,), ValueError, None, id="arange-2**62"),
    pytest.param("arange", (1e300,), ValueError, None, id="arange-1e300"),
    pytest.param("arange", (np.inf,), ValueError, None, id="arange-inf"),
    pytest.param("repeat", (np.ones(3), 2 ** 62), ValueError, None, id="repeat-2**62"),
    pytest.param("repeat", (np.ones(3), (2 ** 64 + 6) // 3), ValueError, "too big", id="repeat-wraps-to-6"),
    pytest.param("repeat_each", (np.ones(3), np.array([INT64_MAX, INT64_MAX, 4])), ValueError, "too big",
                 id="repeat-counts-wrap-to-2"),
    pytest.param("reshape", (EMPTY, 1, 2 ** 32), ValueError, None, id="reshape-empty-to-(1, 2**32, 2**32)"),
    pytest.param("reshape", (EMPTY, 0, 2 ** 32), ValueError, None, id="reshape-empty-to-(0, 2**32, 2**32)"),
    pytest.param("join", (BROADCAST,), ValueError, "too big", id="join-wraps-to-0"),
    pytest.param("uniform", (2 ** 32,), ValueError, "too big", id="uniform-(2**32, 2**32)"),
]


@pytest.mark.parametrize("key, args, kind, words", IMPOSSIBLE)
def test_an_impossible_size_raises_naming_the_op(backend, key, args, kind, words):
    f = compiled(backend, key)
    with pytest.raises(kind, match=words) as raised:
        f(*args)
    assert type(raised.value) is kind  # not a subclass with another name, not RuntimeError
    op = {"zeros": "Alloc", "arange": "ARange", "repeat": "Repeat", "repeat_each": "Repeat",
          "reshape": "Reshape", "join": "Join", "uniform": "RandomUniform"}[key]
    assert re.match(rf"{op}[ {{]", str(raised.value)), str(raised.value)  # "Alloc (built at ...): ..."


def test_sizes_that_fit_still_work(backend):
    assert compiled(backend, "zeros")(2, 3).shape == (2, 3)
    np.testing.assert_array_equal(compiled(backend, "repeat")(np.arange(3.0), 2), np.repeat(np.arange(3.0), 2))
    np.testing.assert_array_equal(compiled(backend, "join")(np.arange(3, dtype=np.int8)),
                                  np.tile(np.arange(3, dtype=np.int8), 8))
    assert compiled(backend, "reshape")(EMPTY, 0, 5).shape == (0, 5, 5)
    np.testing.assert_array_equal(compiled(backend, "arange")(4.5), np.arange(4.5))


def test_a_while_loop_bounded_by_the_largest_int64_runs_until_its_condition(backend):
    """n_steps = 2**63 - 1 means "until the condition": the rows a grown buffer may take, initial row
    plus n, saturate instead of wrapping around to a negative size (which failed after 64 steps)."""
    rows = compiled(backend, "until")(0.0, INT64_MAX)
    np.testing.assert_array_equal(rows, np.arange(1.0, 101.0))
