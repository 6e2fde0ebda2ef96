"""Products of tensors of any rank: NumPy's ``dot``, ``tensordot`` and ``matmul``, Theano's ``batched_dot``
and ``batched_tensordot``.

Every one is a graph of existing ops. The operands' axes are put in order (dimshuffle) and grouped into
at most three axes (reshape): batch, free, summed. The grouped operands meet in the 2-d ``Dot``, or, when
there are batch axes, in ``BatchedDot`` (the one primitive defined here: (B, n, k) · (B, k, m)), and the
product is reshaped back. Gradients come from those ops; backends implement only Dot and BatchedDot.

Dot and BatchedDot check the sizes they multiply over. Where several axis pairs are merged into one
axis, a mismatch can hide in the merge ((3, 4) against (4, 3)), so those pairs are checked one by one
with ``specify_shape`` when the function runs.
"""

import numpy as np

from . import ops
from . import shape_inference as si
from .graph import Apply, Op, TensorVariable, as_tensor_variable
from .types import TensorType

_as = as_tensor_variable


class BatchedDot(Op):
    """One matrix product per batch entry: (B, n, k) · (B, k, m) -> (B, n, m), NumPy's matmul on 3-d
    arrays except that both batch sizes must be equal (nothing stretches)."""

    def make_node(self, a, b):
        a, b = _as(a), _as(b)
        if a.ndim != 3 or b.ndim != 3:
            raise TypeError(f"BatchedDot: expected (B, n, k) and (B, k, m) tensors, got {a.describe()} and "
                            f"{b.describe()} (batched_dot and matmul take other ranks)")
        dtype = ops._numpy_rule(np.matmul)(self, [a.dtype, b.dtype])
        bcast = (a.broadcastable[0] or b.broadcastable[0], a.broadcastable[1], b.broadcastable[2])
        return Apply(self, [a, b], [TensorVariable(TensorType(dtype, bcast))])

    def infer_shape(self, node, shapes):
        (a, b), (sa, sb) = node.inputs, shapes
        sizes = (si.const(1) if node.outputs[0].broadcastable[0] else sa[0], sa[1], sb[2])
        if si.same_size(sa[0], sb[0]) and si.same_size(sa[2], sb[1]):
            return [sizes]
        # the products of (B, 0, k) and (B', k', 0) zeros fail where a and b would not fit
        check = BatchedDot()(si.empty(a.dtype, sa[0], 0, sa[2]), si.empty(b.dtype, sb[0], sb[1], 0))
        return [si.checked(sizes, check, node)]

    def grad(self, inputs, outputs, output_grads):
        (a, b), (g,) = inputs, output_grads
        return [self(g, ops.dimshuffle(b, (0, 2, 1))), self(ops.dimshuffle(a, (0, 2, 1)), g)]


# ---------------------------------------------------------------------------------------------------
# The one contraction every product below is built from


def _size(x, axis):
    """The length of an axis: the int 1 on a broadcastable axis (so reshapes keep the pattern)."""
    return 1 if x.broadcastable[axis] else ops.shape_i(x, axis)


def _product(sizes):
    known, symbolic = 1, None
    for s in sizes:
        if isinstance(s, int):
            known *= s
        else:
            symbolic = s if symbolic is None else symbolic * s
    if symbolic is None:
        return known
    return symbolic if known == 1 else symbolic * known


def _arrange(x, groups, keep):
    """``x`` with each group of axes (a list) merged into one axis, in the groups' order. An empty
    group becomes a new broadcastable axis where ``keep`` says so and no axis otherwise; axes in no
    group are dropped (they must be broadcastable)."""
    if all(len(g) == 1 or not g and not k for g, k in zip(groups, keep)):  # no merging: a view
        return ops.dimshuffle(x, [a for g, k in zip(groups, keep) for a in (g or ["x"] * k)])
    y = ops.dimshuffle(x, [a for g in groups for a in g])
    return ops.reshape(y, [_product(_size(x, a) for a in g) for g, k in zip(groups, keep) if g or k])


def _contract(a, b, batch=(), summed=(), drop_a=(), drop_b=()):
    """The sum over the ``summed`` axis pairs of a times b, one product per entry of the ``batch`` axis
    pairs (a pair is (axis of a, axis of b), sizes equal). The other axes are free, except the
    broadcastable ones in ``drop_a``/``drop_b``, which are left out. The result's axes: batch pairs, then
    a's free axes, then b's free axes, each in order."""
    batch_a, batch_b = [p for p, _ in batch], [q for _, q in batch]
    sum_a, sum_b = [p for p, _ in summed], [q for _, q in summed]
    free_a = [x for x in range(a.ndim) if x not in batch_a + sum_a + list(drop_a)]
    free_b = [x for x in range(b.ndim) if x not in batch_b + sum_b + list(drop_b)]
    batch_sizes = [1 if a.broadcastable[p] or b.broadcastable[q] else ops.shape_i(a, p) for p, q in batch]
    out_sizes = batch_sizes + [_size(a, x) for x in free_a] + [_size(b, x) for x in free_b]

    expected = [None] * b.ndim  # pairs merged with others are checked one by one
    for pairs in (batch, summed):
        for p, q in pairs if len(pairs) > 1 else ():
            if not (a.broadcastable[p] and b.broadcastable[q]):
                expected[q] = _size(a, p)
    if any(e is not None for e in expected):
        b = ops.specify_shape(b, expected)

    if batch:
        product = BatchedDot()(_arrange(a, [batch_a, free_a, sum_a], [True] * 3),
                               _arrange(b, [batch_b, sum_b, free_b], [True] * 3))
        groups = [batch_a, free_a, free_b]
    else:
        product = ops.Dot()(_arrange(a, [free_a, sum_a], [False, True]),
                            _arrange(b, [sum_b, free_b], [True, False]))
        groups = [free_a, free_b]
    if all(len(g) <= 1 for g in groups):  # no unmerging: a view without the axes of empty groups
        groups = groups if batch else [g for g in groups if g]  # Dot's operands had no such axes
        return ops.dimshuffle(product, [i for i, g in enumerate(groups) if g])
    return ops.reshape(product, out_sizes)


def _axis_list(x, axes, name):
    axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    result = []
    for axis in axes:
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, (bool, np.bool_)):
            raise TypeError(f"{name}: axes must be ints, got {axis!r}")
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of range for {x.describe()} ({x.ndim} axes)")
        result.append(int(axis) % x.ndim)
    if len(set(result)) != len(result):
        raise ValueError(f"{name}: axis repeated in {axes} for {x.describe()}")
    return result


def _summed_pairs(a, b, axes, name, first=0):
    """The (axis of a, axis of b) pairs to sum over, from ``axes`` as NumPy's tensordot takes it: an int
    n (a's last n axes with b's first n, after ``first`` batch axes) or a pair of axis sequences."""
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, (bool, np.bool_)):
        n = int(axes)
        if not 0 <= n <= min(a.ndim, b.ndim) - first:
            raise ValueError(f"{name}: cannot sum over {n} axes of {a.describe()} and {b.describe()}")
        return list(zip(range(a.ndim - n, a.ndim), range(first, first + n)))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise ValueError(f"{name}: axes must be an int or a pair of axis sequences, got {axes!r}") from None
    axes_a, axes_b = _axis_list(a, axes_a, name), _axis_list(b, axes_b, name)
    if len(axes_a) != len(axes_b):
        raise ValueError(f"{name}: {len(axes_a)} axes of a ({axes_a}) against {len(axes_b)} of b ({axes_b}); "
                         "give one axis of b for each axis of a")
    if first and (0 in axes_a or 0 in axes_b):
        raise ValueError(f"{name}: axis 0 is the batch axis and cannot be summed over (axes {axes!r})")
    return list(zip(axes_a, axes_b))


# ---------------------------------------------------------------------------------------------------
# The user's functions


def tensordot(a, b, axes=2):
    """NumPy's tensordot: the sum of a times b over pairs of axes. ``axes`` is an int n (a's last n axes
    against b's first n) or a pair of sequences ``([axes of a], [axes of b])``. The result has a's
    remaining axes, then b's."""
    a, b = _as(a), _as(b)
    return _contract(a, b, summed=_summed_pairs(a, b, axes, "tensordot"))


def dot(a, b):
    """NumPy's dot for any ranks: a scalar operand multiplies; vectors and matrices use ``Dot``; otherwise
    the sum over a's last axis and b's second-to-last (its only axis when b is a vector), with result
    axes ``a.shape[:-1] + b.shape[:-2] + b.shape[-1:]``."""
    a, b = _as(a), _as(b)
    if a.ndim <= 2 and b.ndim <= 2 or a.ndim == 0 or b.ndim == 0:
        return ops.dot(a, b)
    return _contract(a, b, summed=[(a.ndim - 1, max(b.ndim - 2, 0))])


def batched_tensordot(a, b, axes=2):
    """Theano's batched_tensordot: ``tensordot`` for each entry of the batch axis 0, which a and b share
    (equal sizes). ``axes``: an int n (a's last n axes against b's axes 1..n) or a pair of sequences of
    axes other than 0. The result has the batch axis, then a's remaining axes, then b's."""
    a, b = _as(a), _as(b)
    if a.ndim < 1 or b.ndim < 1:
        raise TypeError(f"batched_tensordot: both operands need a batch axis, got {a.describe()} and "
                        f"{b.describe()}")
    return _contract(a, b, batch=[(0, 0)], summed=_summed_pairs(a, b, axes, "batched_tensordot", first=1))


def batched_dot(a, b):
    """Theano's batched_dot: for each entry of the batch axis 0, ``dot`` of a's and b's entries.
    (B, n, k) · (B, k, m) -> (B, n, m); (B, k) · (B, k) -> (B,); 2-d with 3-d drops the missing axis;
    a vector (B,) scales b's entries (and the other way round); higher ranks sum over a's last axis and
    b's axis ``max(1, b.ndim - 2)``. Both batch sizes must be equal."""
    a, b = _as(a), _as(b)
    if a.ndim == 0 or b.ndim == 0:
        raise TypeError(f"batched_dot: both operands need a batch axis, got {a.describe()} and "
                        f"{b.describe()}")
    if a.ndim == 1:
        return ops.dimshuffle(a, [0] + ["x"] * (b.ndim - 1)) * b
    if b.ndim == 1:
        return a * ops.dimshuffle(b, [0] + ["x"] * (a.ndim - 1))
    return _contract(a, b, batch=[(0, 0)], summed=[(a.ndim - 1, max(1, b.ndim - 2))])


def matmul(a, b):
    """NumPy's matmul (the ``@`` operator): the matrix product over the last two axes (a vector operand
    gains, then loses, an axis), batched over the axes in front, which align on the right. A batch axis
    stretches only where its type is broadcastable (Theano's rule); other batch sizes must be equal."""
    a, b = _as(a), _as(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: scalar operands are not allowed, got {a.describe()} and {b.describe()} "
                         "(use * to multiply by a scalar)")
    if a.ndim <= 2 and b.ndim <= 2:
        return ops.dot(a, b)
    n_a, n_b = max(a.ndim - 2, 0), max(b.ndim - 2, 0)  # batch axes
    n = max(n_a, n_b)
    batch, only_a, only_b, drop_a, drop_b = [], [], [], [], []
    for i in range(n):  # batch position i is axis p of a and q of b (None where that operand is shorter)
        p = i - (n - n_a) if i >= n - n_a else None
        q = i - (n - n_b) if i >= n - n_b else None
        a_fixed = p is not None and not a.broadcastable[p]
        b_fixed = q is not None and not b.broadcastable[q]
        if a_fixed and b_fixed:
            batch.append((p, q))
        elif a_fixed or p is not None and not b_fixed:  # b has no such axis, or one of size 1
            only_a.append(i)
            drop_b += [] if q is None else [q]
        else:
            only_b.append(i)
            drop_a += [] if p is None else [p]
    n_axis, m_axis = ["n"] * (a.ndim >= 2), ["m"] * (b.ndim >= 2)
    summed = [(a.ndim - 1, max(b.ndim - 2, 0))]
    result = _contract(a, b, batch=batch, summed=summed, drop_a=drop_a, drop_b=drop_b)
    # _contract's axes: the batch pairs, then a's other axes, then b's
    got = [i for i in range(n) if i not in only_a + only_b] + only_a + n_axis + only_b + m_axis
    return ops.dimshuffle(result, [got.index(k) for k in list(range(n)) + n_axis + m_axis])
