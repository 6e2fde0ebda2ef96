"""The value of a random stream's state: Theano's seed/get_state/set_state idioms, copying state between
graphs, rstate, reseeding, and what get_value/set_value/pickling accept and return, on every backend."""

import pickle

import numpy as np
import pytest

import arignote
from arignote.core.random import RandomState, RandomStateSharedVariable, RandomStreams, initial_state
from arignote.sandbox.rng_mrg import MRG_RandomStreams


def compile(outputs, backend, **kwargs):
    return arignote.function([], outputs, backend=backend, **kwargs)


def first_draw(seed, size, backend):
    """What the first uniform draw of a fresh RandomStreams(seed) gives."""
    return compile(RandomStreams(seed).uniform(size), backend)()


# ---------------------------------------------------------------------------------------------------
# The state object


def test_get_value_is_a_random_state_array():
    s = RandomStreams(1)
    u = s.uniform((2,))
    value = u.rng.get_value()
    assert isinstance(value, RandomState) and isinstance(value, np.ndarray)
    assert value.dtype == np.uint64 and value.shape == (2,)
    np.testing.assert_array_equal(value, initial_state(1, 0))
    assert isinstance(u.rng, RandomStateSharedVariable)
    assert type(u.rng._value) is np.ndarray  # what the backends read stays a plain array
    assert repr(value).startswith("RandomState(key=0x") and "counter=0" in repr(value)
    assert type(value + np.uint64(1)) is np.ndarray  # arithmetic on a state gives plain arrays


def test_seed_get_state_set_state_act_in_place():
    state = RandomState(5)
    np.testing.assert_array_equal(state, initial_state(5, 0))
    snapshot = state.get_state()
    assert snapshot == ("SplitMix64", int(initial_state(5, 0)[0]), 0)
    state.seed(6)
    np.testing.assert_array_equal(state, initial_state(6, 0))
    state.set_state(snapshot)
    np.testing.assert_array_equal(state, initial_state(5, 0))
    state.set_state(RandomState(7))  # the value of another state works too
    np.testing.assert_array_equal(state, initial_state(7, 0))
    state.seed(2 ** 64 + 7)  # seeds are taken modulo 2**64, as RandomStreams takes them
    np.testing.assert_array_equal(state, initial_state(7, 0))
    state.seed()  # None: a seed from the OS's entropy
    assert not np.array_equal(state, initial_state(7, 0))


@pytest.mark.parametrize("bad, error, match", [
    (1.5, TypeError, "a seed must be an int"),
    ("3", TypeError, "a seed must be an int"),
])
def test_bad_seeds_are_refused(bad, error, match):
    with pytest.raises(error, match=match):
        RandomState(0).seed(bad)


@pytest.mark.parametrize("bad, match", [
    (np.random.RandomState(0).get_state(), "'MT19937' is another generator's state"),
    (np.zeros(3, dtype=np.uint64), "shape \\(3,\\)"),
    (np.array([1, 2]), "dtype int64"),
    ("state", "uint64 array"),
])
def test_set_state_and_set_value_refuse_what_is_not_a_state(bad, match):
    with pytest.raises(ValueError, match=match):
        RandomState(0).set_state(bad)
    rng = RandomStreams(0).uniform((2,)).rng
    with pytest.raises(ValueError, match=match):
        rng.set_value(bad)


def test_a_view_of_the_wrong_shape_says_what_a_state_is():
    with pytest.raises(ValueError, match="uint64 array \\[key, counter\\]"):
        np.zeros(3, dtype=np.uint64).view(RandomState).seed(1)


# ---------------------------------------------------------------------------------------------------
# Theano's tutorial idioms, on every backend


def test_seeding_one_stream_through_its_value(backend):
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    f = compile(rv_u, backend)
    f()
    rng_val = rv_u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    rv_u.rng.set_value(rng_val, borrow=True)
    seeded = f()
    np.testing.assert_array_equal(seeded, first_draw(89234, (2, 2), backend))
    assert not np.array_equal(f(), seeded)
    # the borrowed value is the stored state: seeding it alone is enough
    rv_u.rng.get_value(borrow=True).seed(89234)
    np.testing.assert_array_equal(f(), seeded)
    # a copy is not: seeding it changes nothing until it is set
    copy = rv_u.rng.get_value()
    copy.seed(89234)
    assert not np.array_equal(f(), seeded)
    rv_u.rng.set_value(copy)
    np.testing.assert_array_equal(f(), seeded)


def test_get_state_and_set_state_rewind_a_stream_shared_by_functions(backend):
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    f = compile(rv_u, backend)
    nearly_zeros = compile(rv_u + rv_u - 2 * rv_u, backend)
    f()
    state_after_v0 = rv_u.rng.get_value().get_state()
    np.testing.assert_allclose(nearly_zeros(), 0)  # this advances rv_u's state too
    v1 = f()
    rng = rv_u.rng.get_value(borrow=True)
    rng.set_state(state_after_v0)
    rv_u.rng.set_value(rng, borrow=True)
    v2, v3 = f(), f()
    assert not np.array_equal(v1, v2)
    np.testing.assert_array_equal(v1, v3)


class Graph:
    def __init__(self, seed, cls):
        self.rng = cls(seed)
        self.y = self.rng.uniform(size=(3,))
        self.z = self.rng.normal(size=(2, 2))


def copy_random_state(g1, g2):
    """Theano's tutorial, "Copying Random State Between Theano Graphs"."""
    if isinstance(g1.rng, MRG_RandomStreams):
        g2.rng.rstate = g1.rng.rstate
    for (su1, su2) in zip(g1.rng.state_updates, g2.rng.state_updates):
        su2[0].set_value(su1[0].get_value())


@pytest.mark.parametrize("cls", [RandomStreams, MRG_RandomStreams])
def test_copying_random_state_between_graphs(backend, cls):
    g1, g2 = Graph(123, cls), Graph(987, cls)
    f1, f2 = compile([g1.y, g1.z], backend), compile([g2.y, g2.z], backend)
    f1()
    assert not np.array_equal(f1()[0], f2()[0])
    copy_random_state(g1, g2)
    for _ in range(2):
        for a, b in zip(f1(), f2()):
            np.testing.assert_array_equal(a, b)
    # rstate carries the stream's own state: draws made after the copy agree too
    later1, later2 = g1.rng.binomial((5,), p=0.5), g2.rng.binomial((5,), p=0.5)
    np.testing.assert_array_equal(compile(later1, backend)(), compile(later2, backend)())


def test_rstate_is_seed_and_next_draw_and_checks_what_it_is_given():
    s = RandomStreams(42)
    s.uniform((2,))
    np.testing.assert_array_equal(s.rstate, np.array([42, 1], dtype=np.uint64))
    t = RandomStreams(7)
    t.rstate = s.rstate
    assert t.uniform((2,)).rng.get_value().get_state() == ("SplitMix64", int(initial_state(42, 1)[0]), 0)
    with pytest.raises(ValueError, match="seed, next draw number"):
        t.rstate = np.zeros(6, dtype=np.int32)  # Theano's MRG state: not this generator's


def test_srng_seed_reseeds_every_stream_as_a_fresh_stream(backend):
    def draws(s):
        return [s.uniform((3,)), s.normal((2,)), s.binomial((4,), p=0.3), s.choice((2,), a=5)]

    srng = RandomStreams(1)
    f = compile(draws(srng), backend)
    f()
    srng.seed(77)
    fresh = compile(draws(RandomStreams(77)), backend)
    for _ in range(2):
        for a, b in zip(f(), fresh()):
            np.testing.assert_array_equal(a, b)
    srng.seed()  # None: the seed it was created with
    for a, b in zip(f(), compile(draws(RandomStreams(1)), backend)()):
        np.testing.assert_array_equal(a, b)


def test_state_updates_are_pairs_of_state_and_new_state(backend):
    srng = RandomStreams(3)
    u, n = srng.uniform((2,)), srng.normal((2,))
    assert [pair[0] for pair in srng.state_updates] == [u.rng, n.rng]
    for state, new_state in srng.state_updates:
        assert isinstance(state, RandomStateSharedVariable) and state.default_update is new_state
        assert new_state.type == state.type
    # explicit updates (Theano's f = function([], u, updates=srng.updates())) advance the same way
    explicit = compile([u, n], backend, updates=srng.updates(), no_default_updates=True)
    first, second = explicit(), explicit()
    assert not np.array_equal(first[0], second[0])
    srng.seed(3)
    for a, b in zip(compile([u, n], backend)(), first):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------------
# get_value / set_value / pickling


def test_set_value_takes_arrays_states_tuples_and_numpy_generators(backend):
    s = RandomStreams(0)
    u = s.uniform((4,))
    f = compile(u, backend, no_default_updates=True)
    u.rng.set_value(initial_state(31, 0))  # a plain uint64 array
    expected = first_draw(31, (4,), backend)
    np.testing.assert_array_equal(f(), expected)
    u.rng.set_value(np.zeros(2, dtype=np.uint64))
    u.rng.set_value(RandomState(31))
    np.testing.assert_array_equal(f(), expected)
    u.rng.set_value(RandomState(31).get_state())
    np.testing.assert_array_equal(f(), expected)
    # a NumPy generator seeds the state from one 64-bit number it draws
    u.rng.set_value(np.random.RandomState(5))
    first = f()
    u.rng.set_value(np.random.RandomState(5))
    np.testing.assert_array_equal(f(), first)
    u.rng.set_value(np.random.default_rng(5))
    assert f().shape == (4,)


def test_set_value_copies_unless_borrowed():
    rng = RandomStreams(0).uniform((2,)).rng
    mine = RandomState(9)
    rng.set_value(mine)
    mine.seed(10)
    np.testing.assert_array_equal(rng.get_value(), initial_state(9, 0))
    rng.set_value(mine, borrow=True)
    mine.seed(11)
    np.testing.assert_array_equal(rng.get_value(), initial_state(11, 0))


def test_a_read_only_stored_state_can_still_be_seeded_through_a_borrowed_view(backend):
    s = RandomStreams(0)
    u = s.uniform((3,))
    frozen = initial_state(4, 0)
    frozen.setflags(write=False)
    u.rng.set_value(frozen, borrow=True)
    u.rng.get_value(borrow=True).seed(8)
    np.testing.assert_array_equal(compile(u, backend)(), first_draw(8, (3,), backend))
    np.testing.assert_array_equal(frozen, initial_state(4, 0))  # the caller's array is untouched


def test_pickling_states_and_functions_that_draw(backend):
    s = RandomStreams(21)
    u = s.uniform((3,))
    f = compile(u, backend)
    f()
    value = pickle.loads(pickle.dumps(u.rng.get_value()))
    assert isinstance(value, RandomState)
    np.testing.assert_array_equal(value, u.rng.get_value())
    rng = pickle.loads(pickle.dumps(u.rng))
    assert isinstance(rng, RandomStateSharedVariable) and isinstance(rng.get_value(), RandomState)
    np.testing.assert_array_equal(rng.get_value(), u.rng.get_value())
    g = pickle.loads(pickle.dumps(f))  # carries its own copy of the state
    for _ in range(2):
        np.testing.assert_array_equal(g(), f())
