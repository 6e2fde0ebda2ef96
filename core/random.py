"""Random numbers: ``RandomStreams`` (also ``MRG_RandomStreams``), Theano's random streams.

    srng = RandomStreams(seed=234)
    u = srng.uniform((2, 2))                          # a new (2, 2) sample at every call
    mask = srng.binomial(x.shape, p=0.5, dtype=x.dtype)
    f = function([x], x * mask)                       # each call advances the stream's state

The algorithm (the same numbers on every backend)
-------------------------------------------------
One primitive op, ``RandomUniform(dtype, ndim)``, is all a backend implements. Its inputs are a state,
a uint64 vector ``[key, counter]``, and a shape (an int vector); its outputs are the new state
``[key, counter + n]`` and ``n = prod(shape)`` uniform numbers in [0, 1), in C order. Element ``i`` is
made from 64 random bits of the counter-based generator SplitMix64 (all arithmetic modulo 2**64)::

    GOLDEN = 0x9E3779B97F4A7C15
    mix64(z):  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
               z = (z ^ (z >> 27)) * 0x94D049BB133111EB
               return z ^ (z >> 31)
    bits_i   = mix64(key + (counter + i) * GOLDEN)
    float64:   (bits_i >> 11) * 2**-53          float32:  (bits_i >> 40) * 2**-24

Both conversions are exact, so a C or Numba backend reproduces the reference bit for bit.

Every draw (each call of ``uniform``, ``normal``, ...) owns a shared state variable whose
``default_update`` is the op's new state, so a compiled function gives new numbers at each call
(``function(..., no_default_updates=True)`` freezes them). Draw number ``j`` (0, 1, 2, ... in the
order the stream made them) of a stream seeded with ``seed`` starts at
``[mix64(mix64(seed mod 2**64) + (j + 1) * GOLDEN), 0]``; ``seed(s)`` resets every draw that way.

A state's value, as ``rv.rng.get_value()`` returns it, is a ``RandomState``: a view of the two numbers
that also has Theano's ``seed(n)`` (the first draw of ``RandomStreams(n)``), ``get_state()`` and
``set_state(s)``; the shared variable stores a plain array, which is what the backends read.

Everything else is a graph of ordinary ops on those uniforms (so gradients with respect to ``low``,
``high``, ``avg``, ``std`` flow as the math says, and none flows to the state):

- ``uniform``: ``low + (high - low) * u``.
- ``normal``: Box-Muller from a (2, *size) uniform draw: ``avg + std * sqrt(-2 log1p(-u[0])) * cos(2 pi u[1])``.
- ``binomial``: the number of ``u < p`` among an (n, *size) float64 draw, summed over the leading axis
  (n = 1: just ``u < p``), so its cost is n times the size.
- ``choice``: with replacement and no ``p``, ``floor(u * a)``; with ``p``, the Gumbel-max trick,
  ``argmax(log p - log(-log u))`` over a (*size, len(p)) draw; without replacement, the first
  ``prod(size)`` entries of ``argsort(u)`` over a population-sized draw (with ``p``: of
  ``argsort(-(log p - log(-log u)))``, the Gumbel-top-k trick), reshaped to ``size``.
  A vector ``a``: its elements at the indices drawn from range(len(a)).
- ``permutation``: ``argsort(u)`` along the last axis of a (*size, n) draw (``Argsort``, a stable sort,
  is the one other op defined here).
- ``random_integers``: ``low + floor(u * (high - low + 1))``, high inclusive.
"""

import builtins

import numpy as np

from . import ops
from . import shape_inference as si
from .config import config
from .graph import Apply, Constant, Op, TensorVariable, as_tensor_variable
from .shared import SharedVariable
from .types import DISCRETE_DTYPES, TensorType, canonical_dtype, is_float

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def mix64(z):
    """The SplitMix64 finaliser of a Python int (modulo 2**64)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * MIX1) & _MASK
    z = ((z ^ (z >> 27)) * MIX2) & _MASK
    return z ^ (z >> 31)


def draw_key(seed, number):
    """The key of draw ``number`` of a stream seeded with ``seed``."""
    return mix64(mix64(int(seed) & _MASK) + (number + 1) * GOLDEN)


def initial_state(seed, number):
    return np.array([draw_key(seed, number), 0], dtype="uint64")


def _seed_int(seed, what):
    """A seed as an int modulo 2**64 (None: one nobody chose, from the OS's entropy)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy) & _MASK
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{what}: a seed must be an int (or None for a random one), got {seed!r}")
    return int(seed) & _MASK


# ---------------------------------------------------------------------------------------------------
# The value of a draw's state: what ``rv.rng.get_value()`` returns


class RandomState(np.ndarray):
    """The state of one random draw, ``[key, counter]`` (uint64), with the methods Theano programs call
    on ``rv.rng.get_value()`` (a ``numpy.random.RandomState`` in Theano): ``seed(n)``, ``get_state()``,
    ``set_state(s)``. They change the array in place, so the usual Theano idiom works::

        rng = rv.rng.get_value(borrow=True)   # a view of the stored state
        rng.seed(89234)
        rv.rng.set_value(rng, borrow=True)

    A thin ndarray subclass: it is a view of the same two numbers, so it is still an array to code that
    treats it as one (``np.array_equal``, ``.dtype``, pickling); the shared variable keeps a plain
    ndarray, which is what every backend reads.
    """

    def __new__(cls, seed=None):
        """A state seeded like ``seed(seed)``."""
        state = np.zeros(2, dtype=np.uint64).view(cls)
        state.seed(seed)
        return state

    def __array_wrap__(self, array, context=None, return_scalar=False):
        array = array.view(np.ndarray)  # arithmetic on a state gives plain arrays, not states
        return array[()] if return_scalar else array

    def _check(self, what):
        if self.shape != (2,) or self.dtype != np.uint64:
            raise ValueError(f"RandomState.{what}: a state is a uint64 array [key, counter], this one is "
                             f"{self.dtype} of shape {self.shape}")

    def seed(self, seed=None):
        """Restart from ``seed`` (an int; None: a random one): the numbers are then those of the first
        draw of ``RandomStreams(seed)``."""
        self._check("seed")
        self[...] = initial_state(_seed_int(seed, "RandomState.seed"), 0)

    def get_state(self):
        """A snapshot, ``('SplitMix64', key, counter)``, for ``set_state`` (NumPy's legacy tuple style)."""
        self._check("get_state")
        return ("SplitMix64", int(self[0]), int(self[1]))

    def set_state(self, state):
        """Go back to a snapshot from ``get_state()`` (or to the value of another state)."""
        self._check("set_state")
        self[...] = state_array(state, "RandomState.set_state")

    def __repr__(self):
        if self.shape != (2,):
            return np.ndarray.__repr__(self.view(np.ndarray)).replace("array", "RandomState", 1)
        return f"RandomState(key={int(self[0]):#018x}, counter={int(self[1])})"

    __str__ = __repr__


def state_array(value, what):
    """A [key, counter] uint64 array from what a program may give as a state: a state or array of two
    uint64, a ``get_state()`` tuple, or a NumPy ``RandomState``/``Generator`` (which seeds the state
    from one 64-bit number it draws)."""
    if isinstance(value, (np.random.RandomState, np.random.Generator)):
        draw = value.randint if isinstance(value, np.random.RandomState) else value.integers
        return initial_state(int(draw(0, 2 ** 64, dtype=np.uint64)), 0)
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], str):
        if value[0] != "SplitMix64" or len(value) != 3:
            raise ValueError(f"{what}: {value[0]!r} is another generator's state; arignote's streams use "
                             "SplitMix64: give a state from get_state() of an arignote state")
        return np.array([int(value[1]) & _MASK, int(value[2]) & _MASK], dtype=np.uint64)
    expected = ("a random state is a uint64 array [key, counter], a get_state() tuple or a "
                "numpy.random.RandomState")
    try:
        array = np.asarray(value)
    except ValueError:
        raise ValueError(f"{what}: {expected}; got {type(value).__name__} {value!r:.60}") from None
    if array.shape != (2,) or array.dtype != np.uint64:
        raise ValueError(f"{what}: {expected}; got {type(value).__name__} of dtype {array.dtype} and "
                         f"shape {array.shape}")
    return array


class RandomStateSharedVariable(SharedVariable):
    """The shared state of one draw. Its value reads as a ``RandomState`` (seed/get_state/set_state);
    inside it is the plain uint64 array [key, counter] that compiled functions pass to the backends and
    replace after each call."""

    def __init__(self, value, name=None):
        super().__init__(TensorType("uint64", (False,)), state_array(value, "random state"), name=name)

    def get_value(self, borrow=False, return_internal_type=False):
        value = self._value
        if borrow and not value.flags.writeable:  # seed()/set_state() write through the view
            value = self._value = value.copy()
        return (value if borrow else value.copy()).view(RandomState)

    def set_value(self, value, borrow=False):
        super().set_value(state_array(value, f"set_value of {self._what()}"), borrow=borrow)


# ---------------------------------------------------------------------------------------------------
# The ops


def _is_one(scalar):
    """Whether a shape entry is known to be 1 when the graph is built (a constant 1, or the length of
    a broadcastable axis)."""
    if isinstance(scalar, Constant):
        return scalar.data.ndim == 0 and int(scalar.data) == 1
    node = scalar.owner
    if node is not None and isinstance(node.op, ops.Cast):
        return _is_one(node.inputs[0])
    return node is not None and isinstance(node.op, ops.ShapeI) and node.inputs[0].broadcastable[node.op.i]


class RandomUniform(Op):
    """The one primitive random op: (state, shape) -> (new state, uniform numbers in [0, 1) of
    ``dtype`` with ``ndim`` axes). See the module docstring for the exact algorithm."""

    __props__ = ("dtype", "ndim")

    def __init__(self, dtype, ndim):
        self.dtype = canonical_dtype(dtype)
        self.ndim = int(ndim)
        if not is_float(self.dtype):
            raise TypeError(f"RandomUniform: dtype must be float32 or float64, got {self.dtype}")

    def make_node(self, state, shape):
        state, shape = as_tensor_variable(state), as_tensor_variable(shape)
        if state.dtype != "uint64" or state.ndim != 1:
            raise TypeError(f"{self}: the state must be a uint64 vector [key, counter], got {state.describe()}")
        if shape.ndim != 1 or shape.dtype not in DISCRETE_DTYPES or shape.dtype == "bool":
            raise TypeError(f"{self}: the shape must be a vector of ints, got {shape.describe()}")
        if isinstance(shape, Constant):
            entries = [Constant(TensorType("int64", ()), v) for v in shape.data]
        elif shape.owner is not None and isinstance(shape.owner.op, ops.MakeVector):
            entries = shape.owner.inputs
        else:
            entries = None
        if entries is not None and len(entries) != self.ndim:
            raise ValueError(f"{self}: the shape has {len(entries)} entries, not ndim={self.ndim}")
        bcast = [_is_one(e) for e in entries] if entries is not None else [False] * self.ndim
        return Apply(self, [state, shape], [TensorVariable(TensorType("uint64", (False,))),
                                            TensorVariable(TensorType(self.dtype, bcast))])

    def infer_shape(self, node, shapes):
        state, shape = node.inputs
        entries = si.vector_entries(shape, self.ndim)
        # the state must be [key, counter] and the sizes >= 0: the op drawing nothing fails where it would
        check = RandomUniform(self.dtype, self.ndim + 1)(state, ops.stack_scalars(entries + [0], "int64"))[1]
        return [si.checked(shapes[0], check, node), si.checked(entries, check, node)]

    def grad(self, inputs, outputs, output_grads):
        return [None, None]


class Argsort(Op):
    """The indices that sort x along its last axis (a stable sort: ties keep their order), int64."""

    def make_node(self, x):
        x = as_tensor_variable(x)
        if x.ndim < 1:
            raise TypeError(f"argsort: expected at least one axis, got {x.describe()}")
        return Apply(self, [x], [TensorVariable(TensorType("int64", x.broadcastable))])

    def infer_shape(self, node, shapes):
        return [shapes[0]]

    def grad(self, inputs, outputs, output_grads):
        return [None]


def argsort(x, axis=-1):
    """Indices that sort ``x`` along ``axis`` (stable; NaN last, as in NumPy); ``axis=None`` sorts
    the flattened input."""
    x = as_tensor_variable(x)
    if axis is None:
        return Argsort()(ops.flatten(x))
    axis = ops.normalize_axes(x, axis, "argsort")[0]
    if axis == x.ndim - 1:
        return Argsort()(x)
    order = [a for a in range(x.ndim) if a != axis] + [axis]  # sort along the last axis, then move back
    back = [order.index(a) for a in range(x.ndim)]
    return ops.dimshuffle(Argsort()(ops.dimshuffle(x, order)), back)


def sort(x, axis=-1):
    """``x`` sorted along ``axis`` (stable; ``axis=None`` sorts the flattened input). Its gradient
    flows back to each element's original position."""
    x = as_tensor_variable(x)
    if axis is None:
        x, axis = ops.flatten(x), 0
    axis = ops.normalize_axes(x, axis, "sort")[0]
    positions = argsort(x, axis)
    # pick x[i0, ..., positions[i0, ..., ik], ...] with broadcasting aranges on the other axes
    index = []
    for a in range(x.ndim):
        if a == axis:
            index.append(positions)
        else:
            pattern = ["x"] * x.ndim
            pattern[a] = 0
            index.append(ops.dimshuffle(ops.arange(ops.shape_i(x, a)), pattern))
    return x[tuple(index)]


# ---------------------------------------------------------------------------------------------------
# Sizes: a tuple of ints and symbolic int scalars, an int vector, or None (from the parameters)


def _entry(value, what):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: sizes must be integers, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise ValueError(f"{what}: sizes must be >= 0, got {value}")
        return int(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _entry(value.item(), what)
    var = as_tensor_variable(value)
    if var.ndim != 0 or var.dtype not in DISCRETE_DTYPES or var.dtype == "bool":
        raise TypeError(f"{what}: each size must be an int or a symbolic int scalar, got {var.describe()}")
    if isinstance(var, Constant):
        return _entry(int(var.data), what)
    return ops.cast(var, "int64")


def _size_entries(size, ndim, params, what):
    """The size as a list of ints and int64 scalar variables."""
    if size is None:
        params = [p for p in params if p is not None]
        rank = builtins.max([p.ndim for p in params], default=0)
        entries = []
        for axis in range(rank):
            owners = [(p, axis - (rank - p.ndim)) for p in params
                      if axis >= rank - p.ndim and not p.broadcastable[axis - (rank - p.ndim)]]
            entries.append(ops.shape_i(*owners[0]) if owners else 1)
    elif isinstance(size, (list, tuple)):
        entries = [_entry(s, what) for s in size]
    elif isinstance(size, (int, np.integer)):
        entries = [_entry(size, what)]
    elif isinstance(size, np.ndarray):
        entries = [_entry(s, what) for s in size.reshape(-1)]
    else:
        vector = as_tensor_variable(size)
        if vector.ndim == 0:
            entries = [_entry(vector, what)]
        elif vector.ndim != 1 or vector.dtype not in DISCRETE_DTYPES or vector.dtype == "bool":
            raise TypeError(f"{what}: size must be a tuple of ints or an int vector, got {vector.describe()}")
        elif isinstance(vector, Constant):
            entries = [_entry(s, what) for s in vector.data]
        elif vector.owner is not None and isinstance(vector.owner.op, ops.Shape):
            x = vector.owner.inputs[0]
            entries = [ops.shape_i(x, a) for a in range(x.ndim)]
        elif vector.owner is not None and isinstance(vector.owner.op, ops.MakeVector):
            entries = [_entry(s, what) for s in vector.owner.inputs]
        elif ndim is None:
            raise ValueError(f"{what}: cannot tell how many axes the size {vector.describe()} has; pass ndim=")
        else:
            entries = [_entry(vector[a], what) for a in range(ndim)]
    if ndim is not None and ndim != len(entries):
        raise ValueError(f"{what}: ndim={ndim} but the size has {len(entries)} entries")
    for p in params:
        if p is not None and p.ndim > len(entries):
            raise ValueError(f"{what}: the size has {len(entries)} axes but the parameter {p.describe()} has "
                             f"{p.ndim}; give a size with at least as many axes (or size=None for its shape)")
    return entries


def _shape_vector(entries):
    if all(isinstance(e, int) for e in entries):
        return Constant(TensorType("int64", (len(entries) == 1,)), np.array(entries, dtype="int64"))
    return ops.stack_scalars(entries, "int64")


def _count(entries):
    """The product of size entries (an int when all are ints)."""
    total = 1
    for e in entries:
        total = total * e
    return total


def _length(vector):
    """The length of a vector: an int when known, else a symbolic int64 scalar."""
    return len(vector.data) if isinstance(vector, Constant) else ops.shape_i(vector, 0)


def _strong_dtypes(*params):
    return [p.dtype for p in params if not (isinstance(p, Constant) and p.weak)]


def _float_dtype(dtype, params, what):
    if dtype is None:
        dtype = np.result_type(config.floatX, *_strong_dtypes(*params)).name
    dtype = canonical_dtype(dtype)
    if not is_float(dtype):
        raise TypeError(f"{what}: dtype must be a float dtype, got {dtype}")
    return dtype


def _int_param(value, what, name):
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if value < 0:
            raise ValueError(f"{what}: {name} must be >= 0, got {value}")
        return int(value)
    var = as_tensor_variable(value)
    if var.ndim != 0 or var.dtype not in DISCRETE_DTYPES or var.dtype == "bool":
        raise TypeError(f"{what}: {name} must be an int or a symbolic int scalar, got {var.describe()}")
    return int(var.data) if isinstance(var, Constant) else ops.cast(var, "int64")


# ---------------------------------------------------------------------------------------------------
# The streams


class RandomStreams:
    """A factory of random variables (Theano's ``RandomStreams`` and ``MRG_RandomStreams``).

    Each draw owns a shared state; ``state_updates`` lists (state, new state) pairs, ``updates()`` a
    copy of it, and ``seed(s)`` re-seeds every draw the stream made. Sizes may mix ints and symbolic
    int scalars (``(x.shape[0], 10)``), or be an int vector (``x.shape``); the parameters may be
    symbolic tensors that broadcast against the size. ``size=None`` takes the shape of the parameters.
    """

    def __init__(self, seed=12345):
        if seed is None:  # as Theano's RandomStreams(None): a seed nobody chose
            seed = int(np.random.SeedSequence().entropy)
        self.default_instance_seed = int(seed) & _MASK
        self._seed = self.default_instance_seed
        self._next_draw = 0
        self.state_updates = []

    def updates(self):
        return list(self.state_updates)

    def seed(self, new_seed=None):
        """Re-seed every random variable this stream made, and those it will make, as if the stream had
        been created with ``new_seed`` (None: the seed it was created with)."""
        self._seed = (self.default_instance_seed if new_seed is None else int(new_seed)) & _MASK
        for number, (state, _) in enumerate(self.state_updates):
            state.set_value(initial_state(self._seed, number), borrow=True)
        self._next_draw = len(self.state_updates)

    @property
    def rstate(self):
        """The stream's own state, [seed, number of the next draw] (uint64): what the next draw's state
        starts from (Theano's ``MRG_RandomStreams.rstate``). Copying it to another stream, with the
        values of ``state_updates``, makes the two streams give the same numbers from then on."""
        return np.array([self._seed, self._next_draw], dtype=np.uint64)

    @rstate.setter
    def rstate(self, value):
        value = np.asarray(value)
        if value.shape != (2,) or value.dtype.kind not in "iu":
            raise ValueError(f"rstate: expected [seed, next draw number] as two integers (the value of "
                             f"another stream's rstate), got {value.dtype} of shape {value.shape}")
        self._seed, self._next_draw = int(value[0]) & _MASK, int(value[1])

    def _uniform01(self, entries, dtype, what):
        """A (state, new state, uniform numbers) draw of shape ``entries``."""
        number = self._next_draw
        self._next_draw += 1
        state = RandomStateSharedVariable(initial_state(self._seed, number), name=f"{what}_state{number}")
        new_state, sample = RandomUniform(dtype, len(entries))(state, _shape_vector(entries))
        state.default_update = new_state
        self.state_updates.append((state, new_state))
        return state, new_state, sample

    @staticmethod
    def _finish(result, state, new_state):
        result.rng = state  # as in Theano: the random variable's state and its update
        result.update = (state, new_state)
        return result

    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None):
        """Uniform numbers in [low, high) (dtype: floatX, or wider if low/high are)."""
        low, high = as_tensor_variable(low), as_tensor_variable(high)
        dtype = _float_dtype(dtype, [low, high], "uniform")
        entries = _size_entries(size, ndim, [low, high], "uniform")
        state, new_state, u = self._uniform01(entries, dtype, "uniform")
        low, high = ops.cast(low, dtype), ops.cast(high, dtype)
        return self._finish(ops.cast(low + (high - low) * u, dtype), state, new_state)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None, truncate=False):
        """Normal numbers with mean ``avg`` and standard deviation ``std`` (Box-Muller). ``truncate=True``
        keeps them within two standard deviations of the mean by Theano's rule (MRG_RandomStreams): a
        sample beyond keeps its angle and takes a radius drawn below 2, sqrt(-2 log v) for v uniform in
        [e^-2, 1), from a third uniform number per sample."""
        avg, std = as_tensor_variable(avg), as_tensor_variable(std)
        dtype = _float_dtype(dtype, [avg, std], "normal")
        entries = _size_entries(size, ndim, [avg, std], "normal")
        state, new_state, u = self._uniform01([3 if truncate else 2] + entries, dtype, "normal")
        radius = ops.sqrt(-2 * ops.log1p(-u[0]))
        angle = ops.cos((2 * np.pi) * u[1])
        z = radius * angle
        if truncate:
            below_two = ops.minimum(ops.sqrt(-2 * ops.log1p(-(1 - np.exp(-2.0)) * u[2])), 2)  # rounding stays below 2
            z = ops.switch(ops.gt(abs(z), 2), below_two * angle, z)
        avg, std = ops.cast(avg, dtype), ops.cast(std, dtype)
        return self._finish(ops.cast(avg + std * z, dtype), state, new_state)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None):
        """The number of successes in ``n`` trials of probability ``p`` (``p`` may be a tensor)."""
        p = as_tensor_variable(p)
        n = _int_param(n, "binomial", "n")
        entries = _size_entries(size, ndim, [p], "binomial")
        if isinstance(n, int) and n == 1:
            state, new_state, u = self._uniform01(entries, "float64", "binomial")
            result = ops.lt(u, p)
        else:
            state, new_state, u = self._uniform01([n] + entries, "float64", "binomial")
            result = ops.sum(ops.lt(u, p), axis=0)
        return self._finish(ops.cast(result, dtype), state, new_state)

    def random_integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Integers drawn uniformly from [low, high], both included."""
        low, high = as_tensor_variable(low), as_tensor_variable(high)
        entries = _size_entries(size, ndim, [low, high], "random_integers")
        state, new_state, u = self._uniform01(entries, "float64", "random_integers")
        span = ops.cast(high, "float64") - ops.cast(low, "float64") + 1
        offset = ops.minimum(ops.floor(u * span), span - 1)
        return self._finish(ops.cast(ops.cast(low, "float64") + offset, dtype), state, new_state)

    def choice(self, size=None, a=2, replace=True, p=None, ndim=None, dtype="int64"):
        """Samples from range(a) (``a`` an int or int scalar) or from the elements of the vector ``a``,
        uniformly or with probabilities ``p`` (a vector, normalised or not); ``replace=False``: the
        prod(size) samples are distinct draws. The result is cast to ``dtype``, as in Theano."""
        if isinstance(a, (list, tuple, np.ndarray)) or (isinstance(a, TensorVariable) and a.ndim > 0):
            a = as_tensor_variable(a)
            if a.ndim != 1:
                raise TypeError(f"choice: a must be an int or a vector, got {a.describe()}")
            index = self.choice(size, _length(a), replace, p, ndim, "int64")
            return self._finish(ops.cast(a[index], dtype), *index.update)
        if p is not None:
            p = as_tensor_variable(p)
            if p.ndim != 1:
                raise TypeError(f"choice: p must be a vector of probabilities, got {p.describe()}")
        entries = _size_entries(() if size is None else size, ndim, [], "choice")
        if p is None:
            a = _int_param(a, "choice", "a")
            population = a
        else:
            population = _length(p)
        if replace and p is None:
            state, new_state, u = self._uniform01(entries, "float64", "choice")
            index = ops.minimum(ops.cast(ops.floor(u * a), "int64"), a - 1)
            return self._finish(ops.cast(index, dtype), state, new_state)
        if replace:
            state, new_state, u = self._uniform01(entries + [population], "float64", "choice")
            index = ops.argmax(self._gumbel_keys(p, u), axis=-1)
            return self._finish(ops.cast(index, dtype), state, new_state)
        count = _count(entries)
        if isinstance(count, int) and isinstance(population, int) and count > population:
            raise ValueError(f"choice: cannot take {count} samples without replacement from {population}")
        state, new_state, u = self._uniform01([population], "float64", "choice")
        keys = u if p is None else -self._gumbel_keys(p, u)
        chosen = argsort(keys)[:count]
        return self._finish(ops.cast(ops.reshape(chosen, entries), dtype), state, new_state)

    @staticmethod
    def _gumbel_keys(p, u):
        """log p plus Gumbel noise: its argmax (its top k) samples p (without replacement)."""
        return ops.log(p) - ops.log(-ops.log(u))

    def permutation(self, size=None, n=1, ndim=None, dtype="int64"):
        """Random permutations of range(n): an array of shape size + (n,) (one per entry of size)."""
        n = _int_param(n, "permutation", "n")
        entries = _size_entries(() if size is None else size, ndim, [], "permutation")
        state, new_state, u = self._uniform01(entries + [n], "float64", "permutation")
        return self._finish(ops.cast(argsort(u), dtype), state, new_state)


MRG_RandomStreams = RandomStreams
