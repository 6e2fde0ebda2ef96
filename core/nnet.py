"""Theano's neural-network vocabulary (``T.nnet``): activations, softmax, and the cross-entropies.

As everywhere, ops describe types and gradients; the numbers live in each backend's table. What can be
written with existing ops is (elu, the cross-entropies); what needs its own numerics or gradient is an op:
Softplus (exact for large |x|, gradient sigmoid), Relu (Theano's gradient at 0), Softmax and LogSoftmax
(max-shifted, so logits of +-1e4 stay finite), PickPerRow / IncPerRow for integer labels, and
SoftmaxCrossentropy (made by the stabilization rewrite) with its gradient SoftmaxCrossentropyGrad.
"""

import numpy as np

from .graph import Apply, Op, as_tensor_variable
from .ops import (_elemwise, _float_rule, _numpy_rule, _out, broadcast_shapes, dimshuffle, eq, exp, expm1,
                  gt, log, lt, minimum, normalize_axes, ones_like, sgn, sigmoid, sum, switch, zeros_like)
from .types import DISCRETE_DTYPES, float_of

__all__ = ["sigmoid", "softplus", "relu", "elu", "softmax", "log_softmax", "logsoftmax",
           "categorical_crossentropy", "crossentropy_categorical_1hot", "binary_crossentropy"]

_as = as_tensor_variable


# ---------------------------------------------------------------------------------------------------
# Activations


def _relu_grad(x, alpha, z, g):
    # Slope 1 above 0 and alpha below; at 0, Theano's 0.5 * (1 + alpha) (the derivative of its
    # 0.5 * ((1 + alpha) * x + (1 - alpha) * |x|) there). The innermost branch only sees x == 0 or NaN,
    # where adding sgn(x) adds 0 or makes the slope NaN. d/dalpha is min(x, 0).
    one = ones_like(x)
    slope = switch(gt(x, 0), one, switch(lt(x, 0), alpha, (one + alpha) * 0.5 + sgn(x)))
    return [g * slope, g * minimum(x, 0)]


# name              class                                n  dtype rule                gradient
Softplus = _elemwise("Softplus", 1, _float_rule, lambda x, z, g: [g * sigmoid(x)],
                     "log(1 + exp(x)), exact for large |x| (softplus(1e4) = 1e4, softplus(-1e4) = 0)", costly=True)
Relu = _elemwise("Relu", 2, _numpy_rule(np.multiply), _relu_grad,
                 "x where x > 0, else alpha * x (alpha = 0: max(x, 0), so relu(-inf) = 0)")
Softplus.__module__ = Relu.__module__ = __name__  # they live here (pickling finds classes by module)

softplus, _relu = Softplus(), Relu()


def relu(x, alpha=0):
    """Rectified linear unit, Theano's ``T.nnet.relu``: x where x > 0, else ``alpha * x`` (a leaky ReLU
    for alpha != 0; alpha may be symbolic and broadcasts against x). The dtype is NumPy's for
    ``x * alpha``, a bare Python alpha taking x's dtype. The gradient at x == 0 is Theano's
    0.5 * (1 + alpha)."""
    return _relu(x, alpha)


def elu(x, alpha=1):
    """Exponential linear unit: x where x > 0, else ``alpha * (exp(x) - 1)``; gradient alpha at 0."""
    x = _as(x)
    # expm1 of min(x, 0): the branch that is not taken stays finite, and so does its gradient (x = 1e4)
    return switch(gt(x, 0), x, alpha * expm1(minimum(x, 0)))


# ---------------------------------------------------------------------------------------------------
# Softmax


class _AlongAxes(Op):
    """Base of ops that normalize along ``axis`` (a sorted tuple): the output has the input's type,
    in a float dtype."""

    abstract = True  # a base class, not an op of the vocabulary
    __props__ = ("axis",)

    def __init__(self, axis):
        self.axis = tuple(int(a) for a in axis)

    def make_node(self, x):
        x = _as(x)
        if x.ndim == 0 or any(not 0 <= a < x.ndim for a in self.axis):
            raise TypeError(f"{self}: expected a tensor with the axes {self.axis}, got {x.describe()}")
        return Apply(self, [x], [_out(float_of(x.dtype), x.broadcastable)])

    def infer_shape(self, node, shapes):
        return [shapes[0]]


class Softmax(_AlongAxes):
    """exp(x) / sum(exp(x)) along ``axis``, computed as exp(x - max) / sum(exp(x - max)), so any
    finite logits give finite results. A NaN makes its whole slice NaN."""

    def grad(self, inputs, outputs, output_grads):
        (sm,), (g,) = outputs, output_grads
        return [(g - sum(g * sm, axis=self.axis, keepdims=True)) * sm]


class LogSoftmax(_AlongAxes):
    """log(softmax(x)) along ``axis``, computed as (x - max) - log(sum(exp(x - max))): finite for any
    finite logits, where log(softmax(x)) would give -inf."""

    def grad(self, inputs, outputs, output_grads):
        (out,), (g,) = outputs, output_grads
        return [g - exp(out) * sum(g, axis=self.axis, keepdims=True)]


def _along(cls, name):
    def apply(x, axis=-1):
        x = _as(x)
        if x.ndim == 0:
            raise TypeError(f"{name}: expected a vector, matrix or higher, got {x.describe()}")
        axes = normalize_axes(x, axis, name)
        if x.ndim == 1:  # Theano: a vector is one row, and the result a 1 x n matrix
            x, axes = dimshuffle(x, ("x", 0)), tuple(a + 1 for a in axes)
        return cls(axes)(x)

    apply.__name__ = name
    apply.__doc__ = (f"{cls.__doc__}\n\n``axis``: an int (default: the last axis), a tuple of ints, or None "
                     "(all axes). A vector is treated as one row: the result is a 1 x n matrix, as in Theano.")
    return apply


softmax = _along(Softmax, "softmax")
log_softmax = _along(LogSoftmax, "log_softmax")
logsoftmax = log_softmax  # Theano's spelling


# ---------------------------------------------------------------------------------------------------
# Integer labels: x[i, y[i]] for each row (what Theano's CrossentropyCategorical1Hot does inside).
# Unlike x[arange(n), y], labels are checked: one per row, in [0, classes); negatives are errors.


def _label_checks_need_values(self, node, shapes):
    """The shape is known, but computing it checks each label against the number of classes: a check
    of values, which only the op itself makes. Its shape is therefore read from its result."""
    return [None]


def _check_labels(op, x, y):
    if x.ndim != 2 or y.ndim != 1 or y.dtype not in DISCRETE_DTYPES or y.dtype == "bool":
        raise TypeError(f"{op}: expected a matrix and a vector of integer labels (one per row), "
                        f"got {x.describe()} and {y.describe()}")


def label_index(op, x, y):
    """The NumPy index (arange(n), y) of the labelled entries; raises if y has not one label per row of
    x (ValueError) or holds a label outside [0, classes) (IndexError). Backends call it first."""
    rows, classes = x.shape
    if y.shape != (rows,):
        raise ValueError(f"{y.shape[0]} label(s) for {rows} row(s): expected one integer label per row")
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        raise IndexError(f"label {y[bad[0]]} (row {bad[0]}) is out of range for {classes} classes; "
                         f"labels must be in [0, {classes})")
    return np.arange(rows), y


class PickPerRow(Op):
    """x[i, y[i]] for each row i of the matrix x and integer label y[i] in [0, x.shape[1])."""

    def make_node(self, x, y):
        x, y = _as(x), _as(y)
        _check_labels(self, x, y)
        return Apply(self, [x, y], [_out(x.dtype, (x.broadcastable[0] or y.broadcastable[0],))])

    infer_shape = _label_checks_need_values

    def grad(self, inputs, outputs, output_grads):
        (x, y), (g,) = inputs, output_grads
        return [IncPerRow()(zeros_like(x, g.dtype), g, y), None]


class IncPerRow(Op):
    """A copy of the matrix x with v[i] added to x[i, y[i]] for each row i (PickPerRow's gradient)."""

    def make_node(self, x, v, y):
        x, v, y = _as(x), _as(v), _as(y)
        _check_labels(self, x, y)
        if v.ndim != 1:
            raise TypeError(f"{self}: expected one value per row (a vector), got {v.describe()}")
        if not np.can_cast(v.dtype, x.dtype, "same_kind"):  # NumPy's rule for x[i, y[i]] += v[i]
            raise TypeError(f"{self}: values of dtype {v.dtype} cannot be added into a matrix of dtype {x.dtype} "
                            f"(NumPy's same_kind rule), got {v.describe()}")
        return Apply(self, [x, v, y], [_out(x.dtype, x.broadcastable)])

    def sum_dtype(self, x_dtype, v_dtype):
        """The dtype x[i, y[i]] + v[i] is computed in before it is stored in x's dtype (NumPy's)."""
        return np.result_type(x_dtype, v_dtype).name

    infer_shape = _label_checks_need_values

    def grad(self, inputs, outputs, output_grads):
        (x, v, y), (g,) = inputs, output_grads
        return [g, PickPerRow()(g, y), None]


def check_inc_per_row(node, x, v, y):
    """label_index for IncPerRow, also checking that v has one value per row (or one to broadcast)."""
    broadcast_shapes(node.op, [x.shape[:1], v.shape], [(False,), node.inputs[1].broadcastable])
    return label_index(node.op, x, y)


# ---------------------------------------------------------------------------------------------------
# Cross-entropies


def _xlogy0(x, y):
    """x * log(y), with 0 where x == y == 0 (the limit), so that a saturated prediction that agrees
    with its target costs 0 with a finite gradient instead of NaN; NaN still propagates."""
    return x * log(switch(eq(x, 0) & eq(y, 0), 1, y))


def crossentropy_categorical_1hot(coding_dist, true_one_of_n):
    """-log(coding_dist[i, true_one_of_n[i]]) for each row i: integer labels, one per row."""
    return -log(PickPerRow()(coding_dist, true_one_of_n))


def categorical_crossentropy(coding_dist, true_dist):
    """Cross-entropy of each row of predicted probabilities ``coding_dist`` with its target, one value
    per row. ``true_dist`` is either an integer vector of labels (one per row of the matrix
    ``coding_dist``): -log(coding_dist[i, true_dist[i]]), labels outside [0, classes) raise IndexError;
    or a distribution (one-hot or soft) with coding_dist's number of axes, broadcasting against it:
    -sum(true_dist * log(coding_dist), axis=-1), where 0 * log(0) counts as 0."""
    p, t = _as(coding_dist), _as(true_dist)
    if t.ndim == p.ndim - 1 and t.dtype in DISCRETE_DTYPES and t.dtype != "bool":
        if p.ndim != 2:
            raise TypeError(f"categorical_crossentropy: integer labels need a matrix of probabilities "
                            f"(one row per label), got {p.describe()}")
        return crossentropy_categorical_1hot(p, t)
    if t.ndim == p.ndim and p.ndim > 0:
        return -sum(_xlogy0(t, p), axis=-1)
    raise TypeError(
        "categorical_crossentropy: true_dist must be a vector of integer labels (one per row of "
        "coding_dist) or a distribution with coding_dist's number of axes; got coding_dist "
        f"{p.describe()} and true_dist {t.describe()}"
    )


def binary_crossentropy(output, target):
    """-(target * log(output) + (1 - target) * log(1 - output)), elementwise (inputs broadcast), where
    0 * log(0) counts as 0: a saturated output equal to its target costs 0, with a finite gradient."""
    output, target = _as(output), _as(target)
    return -(_xlogy0(target, output) + _xlogy0(1 - target, 1 - output))


class SoftmaxCrossentropy(Op):
    """-log(softmax(x)[i, y[i]]) for each row of the logits x and integer label y[i], computed as
    logsumexp(x[i]) - x[i, y[i]] with the max shifted out: finite for any finite logits. Its gradient
    is the cheap (softmax(x) - onehot(y)) * g. The stabilization rewrite makes it from softmax followed
    by a negative log-likelihood."""

    splits_rows = True  # an exp per element, rows apart: worth threads on large inputs (plan.threads)

    def make_node(self, x, y):
        x, y = _as(x), _as(y)
        _check_labels(self, x, y)
        return Apply(self, [x, y], [_out(float_of(x.dtype), (x.broadcastable[0],))])

    infer_shape = _label_checks_need_values

    def grad(self, inputs, outputs, output_grads):
        (x, y), (g,) = inputs, output_grads
        if g.dtype == float_of(x.dtype):
            return [SoftmaxCrossentropyGrad()(x, g, y), None]
        return [_softmax_crossentropy_grad(x, g, y), None]


def _softmax_crossentropy_grad(x, g, y):
    """(softmax(x) - onehot(y)) * g[:, None] written with general ops."""
    return IncPerRow()(softmax(x) * dimshuffle(g, (0, "x")), -g, y)


class SoftmaxCrossentropyGrad(Op):
    """SoftmaxCrossentropy's gradient with respect to its logits: softmax(x) * g[:, None] with g[i]
    taken off at x[i, y[i]] (Theano's crossentropy_softmax_1hot_with_bias_dx). One op, not a softmax,
    a product and an IncPerRow, so that a backend computes it in one pass over each row, with their
    arithmetic: (softmax(x) * g) + (-g) at the label. g has x's float dtype (SoftmaxCrossentropy's
    output type), so that every step rounds in that one dtype."""

    splits_rows = True  # an exp per element, rows apart: worth threads on large inputs (plan.threads)

    def make_node(self, x, g, y):
        x, g, y = _as(x), _as(g), _as(y)
        _check_labels(self, x, y)
        if g.ndim != 1 or g.dtype != float_of(x.dtype):
            raise TypeError(f"{self}: expected one gradient value per row, a vector of {float_of(x.dtype)} "
                            f"(the logits' float dtype), got {g.describe()}")
        return Apply(self, [x, g, y], [_out(g.dtype, x.broadcastable)])

    infer_shape = _label_checks_need_values

    def grad(self, inputs, outputs, output_grads):
        from .grad import Lop

        (x, g, y), (h,) = inputs, output_grads
        # differentiate the expression the op stands for: second derivatives are rare, this keeps one truth
        return Lop(_softmax_crossentropy_grad(x, g, y), [x, g], h) + [None]
