"""Random streams: shapes, dtypes, distributions, state handling, and the same numbers on every backend."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core.random import Argsort, RandomStreams, RandomUniform
from arignote.sandbox.rng_mrg import MRG_RandomStreams
from arignote.tensor.shared_randomstreams import RandomStreams as SharedRandomStreams

from checks import assert_same

MASK = 2 ** 64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix(z):
    """The SplitMix64 finaliser, written out independently of arignote (the spec of every backend)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def expected_uniform(key, counter, count, dtype="float64"):
    bits = [splitmix((key + (counter + i) * GOLDEN) & MASK) for i in range(count)]
    if dtype == "float32":
        return np.array([(b >> 40) * 2.0 ** -24 for b in bits], dtype="float32")
    return np.array([(b >> 11) * 2.0 ** -53 for b in bits], dtype="float64")


def run(outputs, backend, inputs=(), values=(), **kwargs):
    return arignote.function(list(inputs), outputs, backend=backend, **kwargs)(*values)


# ---------------------------------------------------------------------------------------------------
# The algorithm, pinned down bit for bit


def test_splitmix_matches_the_published_sequence():
    # SplitMix64 seeded with 0 starts 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4 (Vigna's reference code)
    assert [splitmix(GOLDEN), splitmix(2 * GOLDEN & MASK)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_primitive_op_gives_the_documented_numbers(backend, dtype):
    key, counter = 0x0123456789ABCDEF, 2 ** 64 - 3  # the counter wraps around modulo 2**64
    state = arignote.shared(np.array([key, counter], dtype="uint64"))
    new_state, sample = RandomUniform(dtype, 2)(state, np.array([3, 4]))
    got_state, got = run([new_state, sample], backend)
    np.testing.assert_array_equal(got, expected_uniform(key, counter, 12, dtype).reshape(3, 4))
    assert got.dtype == dtype
    np.testing.assert_array_equal(got_state, np.array([key, (counter + 12) & MASK], dtype="uint64"))


def test_stream_keys_follow_the_documented_derivation(backend):
    seed = 2024
    srng = RandomStreams(seed)
    first, second = srng.uniform((5,)), srng.uniform((3,))
    a, b = run([first, second], backend)
    for number, (value, count) in enumerate([(a, 5), (b, 3)]):
        key = splitmix((splitmix(seed) + (number + 1) * GOLDEN) & MASK)
        np.testing.assert_array_equal(value, expected_uniform(key, 0, count))


def test_argsort_is_stable(backend):
    x = T.dmatrix("x")
    values = np.array([[3.0, 1.0, 3.0, 1.0, 2.0], [0.0, 0.0, -1.0, 5.0, 0.0]])
    result = run(Argsort()(x), backend, [x], [values])
    np.testing.assert_array_equal(result, np.argsort(values, axis=-1, kind="stable"))
    assert result.dtype == np.int64


# ---------------------------------------------------------------------------------------------------
# Every backend gives the reference's numbers


DRAWS = {
    "uniform": lambda s, x: s.uniform((x.shape[0], 3), low=-2.0, high=x[:, 0].dimshuffle(0, "x")),
    "uniform32": lambda s, x: s.uniform((4, 3), dtype="float32"),
    "normal": lambda s, x: s.normal(x.shape, avg=1.0, std=x),
    "normal32": lambda s, x: s.normal((7,), dtype="float32"),
    "binomial": lambda s, x: s.binomial(x.shape, n=5, p=0.3),
    "binomial_p": lambda s, x: s.binomial(None, p=x / 4.0, dtype="float64"),
    "choice": lambda s, x: s.choice((4, 5), a=7),
    "choice_p": lambda s, x: s.choice((9,), a=4, p=[0.1, 0.2, 0.3, 0.4]),
    "choice_no_replace": lambda s, x: s.choice((2, 3), a=10, replace=False),
    "choice_no_replace_p": lambda s, x: s.choice((3,), p=[0.1, 0.0, 0.5, 0.4], replace=False),
    "permutation": lambda s, x: s.permutation((x.shape[0],), n=6),
    "random_integers": lambda s, x: s.random_integers((10,), low=-3, high=3),
}


@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_backend_numbers_equal_the_reference(backend, kind):
    srng = RandomStreams(99)
    x = T.dmatrix("x")
    draw = DRAWS[kind](srng, x)
    values = [np.linspace(0.5, 3.5, 12).reshape(4, 3)]
    on_backend = arignote.function([x], draw, backend=backend, on_unused_input="ignore")
    on_reference = arignote.function([x], draw, backend="reference", on_unused_input="ignore")
    results = {}
    for name, f in [(backend, on_backend), ("reference", on_reference)]:
        srng.seed(5)
        results[name] = [f(*values), f(*values), srng.state_updates[0][0].get_value()]
    for got, expected in zip(results[backend], results["reference"]):
        assert_same(got, expected, f"{kind} on {backend}")
    assert not np.array_equal(results[backend][0], results[backend][1])


# ---------------------------------------------------------------------------------------------------
# Shapes and dtypes


def test_constant_sizes_give_those_shapes(backend):
    s = RandomStreams(1)
    draws = [s.uniform((2, 3)), s.normal((4,)), s.binomial((2, 1, 3)), s.uniform(()), s.normal(5),
             s.choice((3, 2), a=5), s.choice((2, 2), a=5, replace=False), s.permutation(n=4),
             s.permutation((2, 3), n=4), s.uniform()]
    shapes = [r.shape for r in run(draws, backend)]
    assert shapes == [(2, 3), (4,), (2, 1, 3), (), (5,), (3, 2), (2, 2), (4,), (2, 3, 4), ()]
    assert s.binomial((2, 1, 3)).broadcastable == (False, True, False)


def test_symbolic_sizes(backend):
    s = RandomStreams(2)
    x, n, v = T.dmatrix("x"), T.lscalar("n"), T.lvector("v")
    draws = [s.uniform((x.shape[0], 4)), s.normal(x.shape), s.binomial((n, x.shape[1]), p=0.5),
             s.uniform(v, ndim=2), s.permutation((n,), n=x.shape[1]), s.choice((n,), a=x.shape[0], replace=False)]
    results = run(draws, backend, [x, n, v], [np.zeros((3, 5)), 2, [4, 1]])
    assert [r.shape for r in results] == [(3, 4), (3, 5), (2, 5), (4, 1), (2, 5), (2,)]
    with pytest.raises(ValueError, match="ndim"):
        s.uniform(v)


def test_size_none_takes_the_parameters_shape(backend):
    s = RandomStreams(3)
    low, p = T.dvector("low"), T.dmatrix("p")
    u, b = s.uniform(low=low, high=low + 1), s.binomial(p=p)
    got_u, got_b = run([u, b], backend, [low, p], [np.arange(4.0), np.full((2, 3), 0.5)])
    assert got_u.shape == (4,) and got_b.shape == (2, 3)
    assert np.all((np.arange(4.0) <= got_u) & (got_u < np.arange(4.0) + 1))
    with pytest.raises(ValueError, match="axes"):
        s.uniform((), low=low)  # one number stretched over a vector of parameters is refused


def test_dtypes(backend, floatX32):
    s = RandomStreams(4)
    draws = [s.uniform((2,)), s.normal((2,)), s.uniform((2,), dtype="float64"), s.binomial((2,)),
             s.binomial((2,), dtype="float32"), s.choice((2,), a=3, dtype="int32"), s.permutation(n=3, dtype="int8"),
             s.uniform((2,), low=-1, high=1)]
    assert [r.dtype for r in run(draws, backend)] == ["float32", "float32", "float64", "int64", "float32",
                                                     "int32", "int8", "float32"]
    assert s.uniform((2,), low=T.dscalar("lo"), high=1.0).dtype == "float64"  # a float64 bound widens it
    with pytest.raises(TypeError, match="float"):
        s.uniform((2,), dtype="int32")


# ---------------------------------------------------------------------------------------------------
# Values and moments


def test_uniform_range_and_moments(backend):
    s = RandomStreams(5)
    low, high = T.dvector("low"), T.dscalar("high")
    u01, u = s.uniform((100000,)), s.uniform((1000, 3), low=low, high=high)
    a, b = run([u01, u], backend, [low, high], [np.array([-1.0, 0.0, 2.0]), 3.0])
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.std() - np.sqrt(1 / 12)) < 0.01
    assert np.all(b >= [-1.0, 0.0, 2.0]) and np.all(b < 3.0)
    np.testing.assert_allclose(b.mean(axis=0), [1.0, 1.5, 2.5], atol=0.1)


def test_normal_moments(backend, floatX32):
    s = RandomStreams(6)
    z, w = s.normal((100000,)), s.normal((100000,), avg=2.0, std=3.0)
    a, b = run([z, w], backend)
    assert a.dtype == np.float32 and np.all(np.isfinite(a))
    assert abs(a.mean()) < 0.02 and abs(a.std() - 1) < 0.02
    assert abs(b.mean() - 2) < 0.05 and abs(b.std() - 3) < 0.05
    # roughly Gaussian tails: 4.55% outside two standard deviations
    assert abs(np.mean(np.abs(a) > 2) - 0.0455) < 0.005


def test_truncated_normal_follows_theanos_rule(backend, floatX32):
    """normal(truncate=True): within two standard deviations; a sample beyond keeps its angle and
    takes a radius drawn below 2 (MRG_RandomStreams' rule, simulated here in NumPy to compare)."""
    s = RandomStreams(9)
    avg, std = T.fvector("avg"), T.fvector("std")
    z, w = s.normal((200000,), truncate=True), s.normal((20000, 3), avg=avg, std=std, truncate=True)
    a, b = run([z, w], backend, [avg, std], [np.array([0, 1, 2], "float32"), np.array([1, 2, 3], "float32")])
    assert a.dtype == np.float32 and np.abs(a).max() <= 2
    assert np.all(b >= [-2, -3, -4]) and np.all(b <= [2, 5, 8])
    rng = np.random.default_rng(0)
    radius, angle = np.sqrt(-2 * np.log1p(-rng.random(10 ** 6))), 2 * np.pi * rng.random(10 ** 6)
    rule = radius * np.cos(angle)
    beyond = np.abs(rule) > 2
    rule[beyond] = np.sqrt(-2 * np.log(rng.uniform(np.exp(-2), 1, beyond.sum()))) * np.cos(angle[beyond])
    assert abs(a.mean()) < 0.01 and abs(a.std() - rule.std()) < 0.006
    for edge in (0.5, 1.0, 1.5, 1.9):  # the distribution, not only its moments
        assert abs(np.mean(np.abs(a) < edge) - np.mean(np.abs(rule) < edge)) < 0.006
    np.testing.assert_allclose(b.mean(axis=0), [0, 1, 2], atol=0.1)
    np.testing.assert_allclose(b.std(axis=0), rule.std() * np.array([1, 2, 3]), rtol=0.03)


def test_binomial_moments_and_tensor_p(backend):
    s = RandomStreams(7)
    p = T.dvector("p")
    counts, per_column = s.binomial((100000,), n=10, p=0.3), s.binomial((20000, 3), p=p)
    a, b = run([counts, per_column], backend, [p], [np.array([0.0, 1.0, 0.25])])
    assert a.dtype == np.int64 and a.min() >= 0 and a.max() <= 10
    assert abs(a.mean() - 3) < 0.03 and abs(a.var() - 2.1) < 0.05
    np.testing.assert_array_equal(b[:, :2], np.broadcast_to([0, 1], (20000, 2)))
    assert abs(b[:, 2].mean() - 0.25) < 0.01


def test_choice(backend):
    s = RandomStreams(8)
    with_replacement, weighted = s.choice((30000,), a=5), s.choice((30000,), a=3, p=[0.0, 0.2, 0.8])
    distinct, weighted_distinct = s.choice((2, 5), a=10, replace=False), s.choice((3,), p=[0.2, 0, 0.3, 0.5], replace=False)
    elements = s.choice((4,), a=np.array([10, 20, 30]))
    a, b, c, d, e = run([with_replacement, weighted, distinct, weighted_distinct, elements], backend)
    np.testing.assert_allclose(np.bincount(a, minlength=5) / 30000, [0.2] * 5, atol=0.015)
    np.testing.assert_allclose(np.bincount(b, minlength=3) / 30000, [0.0, 0.2, 0.8], atol=0.015)
    assert c.shape == (2, 5) and set(c.ravel()) == set(range(10))  # ten distinct draws from range(10)
    assert len(set(d)) == 3 and 1 not in d
    assert set(e) <= {10, 20, 30}
    with pytest.raises(ValueError, match="without replacement"):
        s.choice((4,), a=3, replace=False)


def test_weighted_choice_without_replacement_frequencies(backend):
    s = RandomStreams(9)
    first = s.choice((1,), p=[0.1, 0.6, 0.3], replace=False)
    f = arignote.function([], first, backend=backend)
    picks = np.array([f()[0] for _ in range(2000)])
    np.testing.assert_allclose(np.bincount(picks, minlength=3) / 2000, [0.1, 0.6, 0.3], atol=0.04)


def test_permutation_rows_are_permutations(backend):
    s = RandomStreams(10)
    rows, one = s.permutation((50,), n=7), s.permutation(n=9)
    a, b = run([rows, one], backend)
    assert a.shape == (50, 7) and a.dtype == np.int64
    np.testing.assert_array_equal(np.sort(a, axis=1), np.broadcast_to(np.arange(7), (50, 7)))
    assert len({tuple(r) for r in a}) > 40  # not all the same permutation
    np.testing.assert_array_equal(np.sort(b), np.arange(9))


# ---------------------------------------------------------------------------------------------------
# State: calls advance it, seeds reproduce it, no_default_updates freezes it


def test_calls_differ_and_reseeding_reproduces(backend):
    s = RandomStreams(11)
    u, z = s.uniform((5,)), s.normal((5,))
    f = arignote.function([], [u, z], backend=backend)
    first, second = f(), f()
    assert not np.array_equal(first[0], second[0]) and not np.array_equal(first[1], second[1])
    s.seed(11)
    np.testing.assert_array_equal(f()[0], first[0])
    np.testing.assert_array_equal(f()[1], second[1])
    s.seed(12)
    assert not np.array_equal(f()[0], first[0])


def test_same_seed_same_numbers_different_seed_different(backend):
    def sample(seed, cls):
        s = cls(seed)
        return run([s.uniform((4,)), s.binomial((6,), p=0.5), s.normal((3,))], backend)

    for a, b in zip(sample(3, RandomStreams), sample(3, MRG_RandomStreams)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sample(3, SharedRandomStreams)[0], sample(4, RandomStreams)[0])


def test_no_default_updates_freezes(backend):
    s = RandomStreams(13)
    u = s.uniform((4,))
    frozen = arignote.function([], u, backend=backend, no_default_updates=True)
    np.testing.assert_array_equal(frozen(), frozen())
    moving = arignote.function([], u, backend=backend)
    assert not np.array_equal(moving(), moving())


def test_one_draw_used_twice_in_a_call_is_one_value(backend):
    s = RandomStreams(14)
    u = s.uniform((3, 3))
    np.testing.assert_array_equal(run(u + u - 2 * u, backend), np.zeros((3, 3)))


def test_state_updates_and_rng(backend):
    s = RandomStreams(15)
    u, b = s.uniform((2,)), s.binomial((2,))
    assert [pair[0] for pair in s.updates()] == [u.rng, b.rng] and s.updates() == s.state_updates
    assert u.update[0] is u.rng and u.rng.default_update is u.update[1]
    assert u.rng.get_value().dtype == np.uint64
    # copying states between streams (Theano's tutorial) makes them agree
    other = RandomStreams(16)
    v, c = other.uniform((2,)), other.binomial((2,))
    for (mine, _), (theirs, _) in zip(s.state_updates, other.state_updates):
        theirs.set_value(mine.get_value())
    for a, b in zip(run([u, b], backend), run([v, c], backend)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------------
# Use in models: dropout, and gradients through graphs with random draws


def test_dropout(backend):
    s = RandomStreams(17)
    x = T.dmatrix("x")
    dropped = x * s.binomial(x.shape, p=0.5, dtype=x.dtype)
    values = np.arange(1.0, 20001.0).reshape(100, 200)
    a = run(dropped, backend, [x], [values])
    assert a.dtype == np.float64 and np.all((a == 0) | (a == values))
    assert abs(np.mean(a == 0) - 0.5) < 0.02


def test_grad_through_random_draws(backend):
    s = RandomStreams(18)
    x, low, high = T.dvector("x"), T.dscalar("low"), T.dscalar("high")
    mask = s.binomial(x.shape, p=0.5, dtype="float64")
    u = s.uniform(x.shape, low=low, high=high)
    z = s.normal(x.shape, avg=low, std=high)
    cost = T.sum((x * mask) ** 2) + T.sum(u) + T.sum(z * x)
    grads = arignote.grad(cost, [x, low, high])
    f = arignote.function([x, low, high], [mask, u, z] + grads, backend=backend)
    xv = np.linspace(-1, 1, 50)
    for _ in range(2):  # fresh draws each call; the gradients use that call's draws
        m, uv, zv, gx, glow, ghigh = f(xv, -1.0, 2.0)
        t, standard = (uv + 1.0) / 3.0, (zv + 1.0) / 2.0
        np.testing.assert_allclose(gx, 2 * xv * m ** 2 + zv, rtol=1e-12)
        np.testing.assert_allclose(glow, np.sum(1 - t) + np.sum(xv), rtol=1e-9)
        np.testing.assert_allclose(ghigh, np.sum(t) + np.sum(standard * xv), rtol=1e-9)
    assert arignote.grad(T.sum(mask * x), x) is not None
