"""T.nnet: activations, softmax, log_softmax and the cross-entropies, values and gradients, on every
backend, against NumPy.

As in test_ops.py, most tests are one line of a table: ``case(id, build, numpy_expected, *values)``;
``check`` compares the backend with the reference and with NumPy's ``numpy_expected(*values)`` (dtype
included), and runs verify_grad when every input and the output are floats. Gradients that finite
differences cannot see (at kinks, at +-1e4 in float32, at NaN) are checked as values of T.grad.
"""

import numpy as np
import pytest

import arignote.tensor as T
from arignote.core import nnet as core_nnet

from checks import check

nnet = T.nnet


# ---------------------------------------------------------------------------------------------------
# Values


def U(*shape, seed=0, low=-2.0, high=2.0, dtype="float64"):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def probabilities(rows, classes, seed=0, dtype="float64"):
    p = U(rows, classes, seed=seed, low=0.2, high=1.0)
    return (p / p.sum(axis=1, keepdims=True)).astype(dtype)


M, V, T3 = U(3, 4), U(5, seed=1), U(2, 3, 4, seed=2)
M32, V32 = M.astype("float32"), V.astype("float32")
ROW_SLOPES = U(4, seed=3, low=0.0, high=0.5)                        # relu's alpha, one per column
P, P32 = probabilities(3, 4), probabilities(3, 4).astype("float32")
LABELS = np.array([0, 3, 1])
ONE_HOT, SOFT = np.eye(4)[LABELS], probabilities(3, 4, seed=4)
OUT, TARGET = U(3, 4, seed=5, low=0.1, high=0.9), U(3, 4, seed=6, low=0.0, high=1.0)
E04, E0, E0L = np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype="int64")
BIG = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, -1e4]])                 # logits that overflow exp
BIGV = np.array([1e4, -1e4, 0.0, 1.0])
W = U(2, 3, seed=7)                                                   # weights of a cost
WITH_NAN = np.array([[np.nan, 1.0, 2.0], [1.0, 2.0, 3.0]])
SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, 1.5, -2.5])
for _value in list(globals().values()):
    if isinstance(_value, np.ndarray):
        _value.setflags(write=False)  # a backend must never write into its inputs


def case(id, build, expected, *values, grad=True):
    return pytest.param(build, expected, values, grad, id=id)


def run_case(build, expected, values, grad, backend):
    with np.errstate(all="ignore"):
        want = expected(*values)
    check(build, list(values), backend, expected=np.asarray(want), grad=grad)


def as_(x, like):
    """``x`` (computed in float64) in the dtype of ``like``."""
    return np.asarray(x).astype(np.asarray(like).dtype)


# Naive NumPy formulas (not the max-shifted ones under test), in float64, for moderate values.
def sm(x, axis=-1):
    e = np.exp(np.asarray(x, "float64"))
    return as_(e / e.sum(axis=axis, keepdims=True), x)


def lsm(x, axis=-1):
    return as_(np.log(sm(np.asarray(x, "float64"), axis)), x)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softplus(x):
    return as_(np.log1p(np.exp(np.asarray(x, "float64"))), x)


def relu(x, alpha=0.0):
    return as_(np.where(x > 0, x, alpha * np.asarray(x, "float64")), x)


def elu(x, alpha=1.0):
    return as_(np.where(x > 0, x, alpha * (np.exp(np.asarray(x, "float64")) - 1)), x)


def picked(p, y):
    return p[np.arange(len(y)), y]


def const(value):
    return T.constant(np.asarray(value))


def grad_of(build, weights):
    """The gradient of sum(build(x) * weights) with respect to x, as a build function."""
    return lambda x: T.grad(T.sum(build(x) * const(weights).astype(x.dtype)), x)


# ---------------------------------------------------------------------------------------------------
# Activations

ACTIVATIONS = [
    case("sigmoid is core's", lambda x: nnet.sigmoid(x), lambda x: sigmoid(x), M),
    case("softplus", lambda x: nnet.softplus(x), softplus, M),
    case("softplus f32", lambda x: nnet.softplus(x), softplus, M32),
    case("softplus vector", lambda x: nnet.softplus(x), softplus, V),
    case("softplus empty", lambda x: nnet.softplus(x), softplus, E04),
    case("softplus +-1e4 exact", lambda x: nnet.softplus(x), lambda x: np.array([1e4, 0.0, 0.0, 1.0]) + [0, 0, np.log(2), np.log1p(np.e) - 1], BIGV),
    case("softplus +-1e4 f32", lambda x: nnet.softplus(x), lambda x: np.array([1e4, 0, np.log(2), np.log1p(np.e)], "float32"), BIGV.astype("float32"), grad=False),
    case("softplus grad is sigmoid at +-1e4", lambda x: T.grad(nnet.softplus(x).sum(), x), lambda x: sigmoid(np.array([50.0, -50, 0, 1])).round(12), BIGV, grad=False),
    case("softplus grad f32 at +-1e4", lambda x: T.grad(nnet.softplus(x).sum(), x), lambda x: as_([1, 0, 0.5, sigmoid(1.0)], x), BIGV.astype("float32"), grad=False),
    case("softplus special", lambda x: nnet.softplus(x), lambda x: np.array([np.nan, np.inf, 0, np.log(2), np.log1p(np.exp(1.5)), np.log1p(np.exp(-2.5))]), SPECIAL, grad=False),
    case("relu", lambda x: nnet.relu(x), relu, M),
    case("relu f32", lambda x: nnet.relu(x), relu, M32),
    case("relu vector", lambda x: nnet.relu(x), relu, V),
    case("relu leaky", lambda x: nnet.relu(x, 0.1), lambda x: relu(x, 0.1), M),
    case("relu leaky f32 stays f32", lambda x: nnet.relu(x, 0.1), lambda x: relu(x, 0.1), M32),
    case("relu symbolic alpha", lambda x, a: nnet.relu(x, a), lambda x, a: relu(x, a), M, np.array(0.3)),
    case("relu alpha broadcast per column", lambda x, a: nnet.relu(x, a), lambda x, a: relu(x, a), M, ROW_SLOPES),
    case("relu empty", lambda x: nnet.relu(x), relu, E04),
    case("relu int stays int", lambda x: nnet.relu(x), lambda x: np.maximum(x, 0), np.array([-3, 0, 4], "int32")),
    case("relu int leaky is float64", lambda x: nnet.relu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * x), np.array([-3, 0, 4], "int32")),
    case("relu special", lambda x: nnet.relu(x), lambda x: np.array([np.nan, np.inf, 0, 0, 1.5, 0]), SPECIAL, grad=False),
    case("relu leaky special", lambda x: nnet.relu(x, 0.5), lambda x: np.array([np.nan, np.inf, -np.inf, 0, 1.5, -1.25]), SPECIAL, grad=False),
    case("relu grad (Theano's 0.5 at 0, NaN at NaN)", lambda x: T.grad(nnet.relu(x).sum(), x), lambda x: np.array([np.nan, 1, 0, 0.5, 1, 0]), SPECIAL, grad=False),
    case("relu leaky grad at 0 is (1+alpha)/2", lambda x: T.grad(nnet.relu(x, 0.1).sum(), x), lambda x: np.array([0.1, 0.55, 1.0]), np.array([-1.0, 0.0, 2.0]), grad=False),
    case("relu leaky grad f32", lambda x: T.grad(nnet.relu(x, 0.1).sum(), x), lambda x: np.array([0.1, 0.55, 1.0], "float32"), np.array([-1.0, 0.0, 2.0], "float32"), grad=False),
    case("relu grad wrt alpha is min(x, 0)", lambda a: T.grad(nnet.relu(const([-2.0, 0.0, 3.0]), a).sum(), a), lambda a: np.array(-2.0), np.array(0.3), grad=False),
    case("relu +-1e4", lambda x: nnet.relu(x, 0.5), lambda x: np.array([1e4, -5e3, 0, 1]), BIGV),
    case("elu", lambda x: nnet.elu(x), elu, M),
    case("elu f32", lambda x: nnet.elu(x), elu, M32),
    case("elu alpha", lambda x: nnet.elu(x, 0.5), lambda x: elu(x, 0.5), V),
    case("elu empty", lambda x: nnet.elu(x), elu, E04),
    case("elu +-1e4", lambda x: nnet.elu(x, 0.5), lambda x: np.array([1e4, -0.5, 0, 1]), BIGV),
    case("elu grad +-1e4 finite", lambda x: T.grad(nnet.elu(x, 0.5).sum(), x), lambda x: np.array([1, 0, 0.5, 1]), BIGV, grad=False),
    case("elu grad f32 +-1e4 finite", lambda x: T.grad(nnet.elu(x, 0.5).sum(), x), lambda x: np.array([1, 0, 0.5, 1], "float32"), BIGV.astype("float32"), grad=False),
    case("elu special", lambda x: nnet.elu(x, 0.5), lambda x: np.array([np.nan, np.inf, -0.5, 0, 1.5, 0.5 * np.expm1(-2.5)]), SPECIAL, grad=False),
]


@pytest.mark.parametrize("build, expected, values, grad", ACTIVATIONS)
def test_activations(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Softmax and log_softmax

LN2 = np.log(2.0)
SOFTMAX = [
    case("softmax", lambda x: nnet.softmax(x), sm, M),
    case("softmax f32", lambda x: nnet.softmax(x), sm, M32),
    case("softmax vector is 1 x n", lambda x: nnet.softmax(x), lambda x: sm(x)[None, :], V),
    case("softmax vector f32", lambda x: nnet.softmax(x), lambda x: sm(x)[None, :], V32),
    case("softmax axis 0", lambda x: nnet.softmax(x, axis=0), lambda x: sm(x, 0), M),
    case("softmax axis -2 of tensor3", lambda x: nnet.softmax(x, axis=-2), lambda x: sm(x, 1), T3),
    case("softmax axes (0, 2)", lambda x: nnet.softmax(x, axis=(0, 2)), lambda x: sm(x, (0, 2)), T3),
    case("softmax axis None", lambda x: nnet.softmax(x, axis=None), lambda x: sm(x, None), M),
    case("softmax empty batch", lambda x: nnet.softmax(x), sm, E04),
    case("softmax empty axis", lambda x: nnet.softmax(x), sm, E04.T),
    case("softmax int input is float64", lambda x: nnet.softmax(x), lambda x: sm(x.astype(float)), np.array([[1, 2], [3, 5]])),
    case("softmax +-1e4", lambda x: nnet.softmax(x), lambda x: np.array([[1, 0, 0], [0.5, 0.5, 0]]), BIG),
    case("softmax +-1e4 f32", lambda x: nnet.softmax(x), lambda x: np.array([[1, 0, 0], [0.5, 0.5, 0]], "float32"), BIG.astype("float32")),
    case("softmax grad +-1e4", grad_of(nnet.softmax, W), lambda x: (W - (W * [[1, 0, 0], [.5, .5, 0]]).sum(1, keepdims=True)) * [[1, 0, 0], [.5, .5, 0]], BIG, grad=False),
    case("softmax grad +-1e4 f32", grad_of(nnet.softmax, W), lambda x: as_((W - (W * [[1, 0, 0], [.5, .5, 0]]).sum(1, keepdims=True)) * [[1, 0, 0], [.5, .5, 0]], x), BIG.astype("float32"), grad=False),
    case("softmax NaN fills its row", lambda x: nnet.softmax(x), lambda x: np.vstack([np.full(3, np.nan), sm(x[1:])]), WITH_NAN, grad=False),
    case("log_softmax", lambda x: nnet.log_softmax(x), lsm, M),
    case("log_softmax f32", lambda x: nnet.log_softmax(x), lsm, M32),
    case("log_softmax vector is 1 x n", lambda x: nnet.log_softmax(x), lambda x: lsm(x)[None, :], V),
    case("logsoftmax (Theano's name)", lambda x: nnet.logsoftmax(x), lsm, M),
    case("log_softmax axis 0", lambda x: nnet.log_softmax(x, axis=0), lambda x: lsm(x, 0), M),
    case("log_softmax axis 1 of tensor3", lambda x: nnet.log_softmax(x, axis=1), lambda x: lsm(x, 1), T3),
    case("log_softmax axis None", lambda x: nnet.log_softmax(x, axis=None), lambda x: lsm(x, None), M),
    case("log_softmax empty batch", lambda x: nnet.log_softmax(x), lsm, E04),
    case("log_softmax +-1e4", lambda x: nnet.log_softmax(x), lambda x: np.array([[0, -2e4, -1e4], [-LN2, -LN2, -2e4 - LN2]]), BIG),
    case("log_softmax +-1e4 f32", lambda x: nnet.log_softmax(x), lambda x: np.array([[0, -2e4, -1e4], [-LN2, -LN2, -2e4 - LN2]], "float32"), BIG.astype("float32"), grad=False),
    case("log_softmax grad +-1e4", grad_of(nnet.log_softmax, W), lambda x: W - W.sum(1, keepdims=True) * [[1, 0, 0], [.5, .5, 0]], BIG, grad=False),
    case("log_softmax grad +-1e4 f32", grad_of(nnet.log_softmax, W), lambda x: as_(W - W.sum(1, keepdims=True) * [[1, 0, 0], [.5, .5, 0]], x), BIG.astype("float32"), grad=False),
    case("log_softmax NaN fills its row", lambda x: nnet.log_softmax(x), lambda x: np.vstack([np.full(3, np.nan), lsm(x[1:])]), WITH_NAN, grad=False),
    case("log_softmax is log of softmax", lambda x: nnet.log_softmax(x) - T.log(nnet.softmax(x)), lambda x: np.zeros_like(x), M),
]


@pytest.mark.parametrize("build, expected, values, grad", SOFTMAX)
def test_softmax(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Cross-entropies and the label ops

LABEL_GRAD = np.zeros((3, 4))
LABEL_GRAD[np.arange(3), LABELS] = -W[0] / picked(P, LABELS)  # d sum(w * -log p[i, y_i]) / dp


def cce(p, t):
    return -(t * np.log(p)).sum(axis=-1)


def bce(o, t):
    return -(t * np.log(o) + (1 - t) * np.log(1 - o))


CROSSENTROPY = [
    case("cce labels", lambda p: nnet.categorical_crossentropy(p, const(LABELS)), lambda p: -np.log(picked(p, LABELS)), P),
    case("cce labels f32", lambda p: nnet.categorical_crossentropy(p, const(LABELS)), lambda p: as_(-np.log(picked(p, LABELS)), p), P32),
    case("cce symbolic labels", lambda p, y: nnet.categorical_crossentropy(p, y), lambda p, y: -np.log(picked(p, y)), P, LABELS),
    case("cce int32 labels", lambda p, y: nnet.categorical_crossentropy(p, y), lambda p, y: -np.log(picked(p, y)), P, LABELS.astype("int32")),
    case("cce uint8 labels", lambda p, y: nnet.categorical_crossentropy(p, y), lambda p, y: -np.log(picked(p, y)), P, LABELS.astype("uint8")),
    case("cce labels of a 1 x n softmax", lambda x: nnet.categorical_crossentropy(nnet.softmax(x), const([2])), lambda x: -np.log(sm(x)[2:3]), V),
    case("cce labels empty batch", lambda p, y: nnet.categorical_crossentropy(p, y), lambda p, y: np.zeros(0), E04, E0L),
    case("cce labels grad", lambda p: T.grad(T.sum(nnet.categorical_crossentropy(p, const(LABELS)) * const(W[0])), p), lambda p: LABEL_GRAD, P),
    case("cce labels NaN at the label", lambda p: nnet.categorical_crossentropy(p, const([0, 1])), lambda p: np.array([np.nan, -np.log(0.25)]), np.array([[np.nan, .5], [.75, .25]]), grad=False),
    case("cce labels of softmax", lambda x: nnet.categorical_crossentropy(nnet.softmax(x), const([0, 1, 2])), lambda x: -np.log(picked(sm(x), [0, 1, 2])), M),
    case("crossentropy_categorical_1hot", lambda p: nnet.crossentropy_categorical_1hot(p, const(LABELS)), lambda p: -np.log(picked(p, LABELS)), P),
    case("cce one-hot", lambda p, t: nnet.categorical_crossentropy(p, t), cce, P, ONE_HOT),
    case("cce one-hot f32", lambda p, t: nnet.categorical_crossentropy(p, t), lambda p, t: as_(cce(p, t), p), P32, ONE_HOT.astype("float32")),
    case("cce one-hot int matrix", lambda p, t: nnet.categorical_crossentropy(p, t), cce, P, ONE_HOT.astype("int64")),
    case("cce soft targets", lambda p, t: nnet.categorical_crossentropy(p, t), cce, P, SOFT),
    case("cce vector", lambda p, t: nnet.categorical_crossentropy(p, t), cce, P[0], SOFT[0]),
    case("cce target row broadcasts", lambda p, t: nnet.categorical_crossentropy(p, t.dimshuffle("x", 0)), cce, P, SOFT[0]),
    case("cce empty batch", lambda p, t: nnet.categorical_crossentropy(p, t), cce, E04, E04),
    case("cce 0 log 0 is 0", lambda p, t: nnet.categorical_crossentropy(p, t), lambda p, t: np.array([-np.log(0.25), 0.0]), np.array([[0, .25, .75], [1, 0, 0]]), np.array([[0, 1, 0], [1, 0, 0.0]]), grad=False),
    case("cce grad at a 0 probability", lambda p: T.grad(nnet.categorical_crossentropy(p, const([[0, 1, 0.0]])).sum(), p), lambda p: np.array([[0, -4, 0.0]]), np.array([[0, .25, .75]]), grad=False),
    case("cce NaN", lambda p, t: nnet.categorical_crossentropy(p, t), lambda p, t: np.array([np.nan, -np.log(.5)]), np.array([[np.nan, 1.0], [.5, .5]]), np.array([[0, 1.0], [1, 0]]), grad=False),
    case("bce", lambda o, t: nnet.binary_crossentropy(o, t), bce, OUT, TARGET),
    case("bce f32", lambda o, t: nnet.binary_crossentropy(o, t), lambda o, t: as_(bce(o, t), o), OUT.astype("float32"), TARGET.astype("float32")),
    case("bce vector", lambda o, t: nnet.binary_crossentropy(o, t), bce, OUT[0], TARGET[0]),
    case("bce target broadcasts", lambda o, t: nnet.binary_crossentropy(o, t), bce, OUT, TARGET[0]),
    case("bce output broadcasts", lambda o, t: nnet.binary_crossentropy(o, t), bce, OUT[0], TARGET),
    case("bce int targets", lambda o, t: nnet.binary_crossentropy(o, t), bce, OUT, (TARGET > 0.5).astype("int8")),
    case("bce empty", lambda o, t: nnet.binary_crossentropy(o, t), bce, E04, E04),
    case("bce saturated and right is 0", lambda o, t: nnet.binary_crossentropy(o, t), lambda o, t: np.array([0.0, 0.0, np.inf]), np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]), grad=False),
    case("bce saturated grad finite", lambda o: T.grad(nnet.binary_crossentropy(o, const([1.0, 0.0])).sum(), o), lambda o: np.array([-1.0, 1.0]), np.array([1.0, 0.0]), grad=False),
    case("bce of sigmoid +-1e4", lambda x: nnet.binary_crossentropy(nnet.sigmoid(x), const([1.0, 0.0])), lambda x: np.zeros(2), np.array([1e4, -1e4])),
    case("bce NaN", lambda o, t: nnet.binary_crossentropy(o, t), lambda o, t: np.array([np.nan, np.nan, -np.log(.5)]), np.array([np.nan, .5, .5]), np.array([1.0, np.nan, 0.0]), grad=False),
    case("PickPerRow", lambda x: core_nnet.PickPerRow()(x, const(LABELS)), lambda x: picked(x, LABELS), M),
    case("IncPerRow", lambda x, v: core_nnet.IncPerRow()(x, v, const(LABELS)), lambda x, v: x + np.eye(4)[LABELS] * v[:, None], M, U(3, seed=8)),
    case("IncPerRow f32 of f64 values", lambda x, v: core_nnet.IncPerRow()(x, v, const(LABELS)), lambda x, v: as_(x + np.eye(4)[LABELS] * v[:, None], x), M32, U(3, seed=8)),
]


@pytest.mark.parametrize("build, expected, values, grad", CROSSENTROPY)
def test_crossentropy(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Errors: built wrong (TypeError / ValueError when building) or fed wrong (naming the op when run)

BUILD_ERRORS = [
    (TypeError, "softmax", lambda: nnet.softmax(T.dscalar())),
    (ValueError, "softmax: axis 2", lambda: nnet.softmax(T.dmatrix(), axis=2)),
    (TypeError, "log_softmax", lambda: nnet.log_softmax(T.dscalar())),
    (ValueError, "log_softmax: axis -3", lambda: nnet.log_softmax(T.dmatrix(), axis=-3)),
    (TypeError, "categorical_crossentropy: true_dist must be", lambda: nnet.categorical_crossentropy(T.dmatrix(), T.dvector())),
    (TypeError, "categorical_crossentropy: true_dist must be", lambda: nnet.categorical_crossentropy(T.dmatrix(), T.lscalar())),
    (TypeError, "categorical_crossentropy: true_dist must be", lambda: nnet.categorical_crossentropy(T.dmatrix(), T.bvector() > 0)),
    (TypeError, "categorical_crossentropy: integer labels need a matrix", lambda: nnet.categorical_crossentropy(T.dtensor3(), T.lmatrix())),
    (TypeError, "categorical_crossentropy: integer labels need a matrix", lambda: nnet.categorical_crossentropy(T.dvector(), T.lscalar())),
    (TypeError, "PickPerRow: expected a matrix and a vector of integer labels", lambda: core_nnet.PickPerRow()(T.dmatrix(), T.dvector())),
    (TypeError, "IncPerRow: expected one value per row", lambda: core_nnet.IncPerRow()(T.dmatrix(), T.dmatrix(), T.lvector())),
]


@pytest.mark.parametrize("error, message, build", BUILD_ERRORS, ids=[m for _, m, _ in BUILD_ERRORS])
def test_build_errors(error, message, build):
    with pytest.raises(error, match=message):
        build()


def cce_of(p, y):
    return nnet.categorical_crossentropy(p, y)


RUN_ERRORS = [
    (IndexError, r"PickPerRow.*label 4 \(row 1\) is out of range for 4 classes", cce_of, [P, np.array([0, 4, 1])]),
    (IndexError, r"PickPerRow.*label -1 \(row 2\) is out of range for 4 classes", cce_of, [P, np.array([0, 1, -1])]),
    (IndexError, r"PickPerRow.*out of range for 0 classes", cce_of, [np.zeros((2, 0)), np.array([0, 0])]),
    (ValueError, r"PickPerRow.*2 label\(s\) for 3 row\(s\)", cce_of, [P, np.array([0, 1])]),
    (ValueError, r"PickPerRow.*1 label\(s\) for 3 row\(s\)", cce_of, [P, np.array([2])]),  # never broadcast
    (ValueError, r"IncPerRow.*disagree", lambda x, v: core_nnet.IncPerRow()(x, v, const(LABELS)), [M, np.ones(2)]),
    (ValueError, r"disagree", nnet.binary_crossentropy, [OUT, TARGET[:, :3]]),
    (ValueError, r"disagree", nnet.categorical_crossentropy, [P, SOFT[:, :3]]),
]


@pytest.mark.parametrize("error, message, build, values", RUN_ERRORS, ids=[m for _, m, _, _ in RUN_ERRORS])
def test_run_errors(error, message, build, values, backend):
    with pytest.raises(error, match=message):
        check(build, values, backend, grad=False)


# ---------------------------------------------------------------------------------------------------
# Types and the namespace


def test_types():
    x, v, i = T.fmatrix(), T.fvector(), T.ivector()
    assert nnet.softmax(v).broadcastable == (True, False) and nnet.softmax(v).dtype == "float32"
    assert nnet.log_softmax(v).broadcastable == (True, False)
    assert nnet.softmax(x, axis=0).type == x.type and nnet.softmax(T.bmatrix()).dtype == "float32"
    assert nnet.softplus(i).dtype == "float64" and nnet.softplus(x).dtype == "float32"
    assert nnet.relu(x).dtype == nnet.relu(x, 0.01).dtype == nnet.elu(x).dtype == "float32"
    assert nnet.relu(i).dtype == "int32" and nnet.relu(i, 0.5).dtype == "float64"
    assert nnet.relu(x, T.dscalar()).dtype == "float64"  # a symbolic alpha takes part in the dtype
    assert nnet.categorical_crossentropy(x, i).type == v.type
    assert nnet.categorical_crossentropy(x, x).type == v.type
    assert nnet.binary_crossentropy(x, x).type == x.type


def test_namespace():
    from arignote.tensor.nnet import binary_crossentropy, categorical_crossentropy, softmax  # noqa: F401

    assert T.nnet.sigmoid is T.sigmoid
    assert softmax is T.nnet.softmax is core_nnet.softmax
    for name in ("softplus", "relu", "elu", "softmax", "log_softmax", "categorical_crossentropy",
                 "binary_crossentropy"):
        assert not hasattr(T, name), f"{name} belongs to T.nnet only"
