"""Theano's tutorial, "Using Random Numbers": streams, seeding, sharing streams between functions and
copying random state between graphs."""
import numpy
import theano
import theano.tensor as T
from theano import function
from theano.sandbox.rng_mrg import MRG_RandomStreams
from theano.tensor.shared_randomstreams import RandomStreams

srng = RandomStreams(seed=234)
rv_u = srng.uniform((2, 2))
rv_n = srng.normal((2, 2))
f = function([], rv_u)
g = function([], rv_n, no_default_updates=True)  # not updating rv_n.rng
nearly_zeros = function([], rv_u + rv_u - 2 * rv_u)
f_val0, f_val1 = f(), f()
assert f_val0.shape == (2, 2) and not numpy.array_equal(f_val0, f_val1)
assert numpy.array_equal(g(), g())
assert numpy.allclose(nearly_zeros(), 0)

# seeding one stream, then all of them
rng_val = rv_u.rng.get_value(borrow=True)
rng_val.seed(89234)
rv_u.rng.set_value(rng_val, borrow=True)
first = f()
rng_val = rv_u.rng.get_value(borrow=True)
rng_val.seed(89234)
rv_u.rng.set_value(rng_val, borrow=True)
assert numpy.array_equal(f(), first)
srng.seed(902340)
a = f()
srng.seed(902340)
assert numpy.array_equal(f(), a)

# sharing streams between functions: nearly_zeros advances rv_u's generator too
state_after_v0 = rv_u.rng.get_value().get_state()
nearly_zeros()
v1 = f()
rng = rv_u.rng.get_value(borrow=True)
rng.set_state(state_after_v0)
rv_u.rng.set_value(rng, borrow=True)
v2 = f()  # v2 != v1
v3 = f()  # v3 == v1
assert not numpy.array_equal(v1, v2) and numpy.array_equal(v1, v3)


# copying random state between graphs
class Graph:
    def __init__(self, seed=123):
        self.rng = RandomStreams(seed)
        self.y = self.rng.uniform(size=(1,))


g1 = Graph(seed=123)
f1 = theano.function([], g1.y)
g2 = Graph(seed=987)
f2 = theano.function([], g2.y)
assert f1() != f2()


def copy_random_state(g1, g2):
    if isinstance(g1.rng, MRG_RandomStreams):
        g2.rng.rstate = g1.rng.rstate
    for (su1, su2) in zip(g1.rng.state_updates, g2.rng.state_updates):
        su2[0].set_value(su1[0].get_value())


copy_random_state(g1, g2)
assert f1() == f2()
assert f1() == f2()
print("ok")
