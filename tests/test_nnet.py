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

from checks import case, check, freeze_arrays, run_case

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
freeze_arrays(globals())  # a backend must never write into its inputs


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


def d(build, weights=None):
    """A build function for the gradient of sum(build(x) * weights) (or of sum(build(x))) wrt x."""
    def gradient(x):
        out = build(x)
        return T.grad(T.sum(out if weights is None else out * const(weights).astype(x.dtype)), x)
    return gradient


def exactly(values, dtype="float64"):
    """An expectation that ignores the inputs: ``values`` in ``dtype``."""
    return lambda *inputs: np.array(values, dtype)


def f32(a):
    return np.asarray(a).astype("float32")


LN2, SP1 = np.log(2.0), np.log1p(np.e)  # softplus(0), softplus(1)
cce_, bce_ = nnet.categorical_crossentropy, nnet.binary_crossentropy


# ---------------------------------------------------------------------------------------------------
# Activations

ACTIVATIONS = [
    case("sigmoid is core's", nnet.sigmoid, sigmoid, M),
    case("softplus", nnet.softplus, softplus, M),
    case("softplus f32", nnet.softplus, softplus, M32),
    case("softplus vector", nnet.softplus, softplus, V),
    case("softplus empty", nnet.softplus, softplus, E04),
    case("softplus +-1e4 exact", nnet.softplus, exactly([1e4, 0, LN2, SP1]), BIGV),
    case("softplus +-1e4 f32", nnet.softplus, exactly([1e4, 0, LN2, SP1], "float32"), f32(BIGV), grad=False),
    case("softplus grad is sigmoid, +-1e4", d(nnet.softplus), exactly([1, 0, 0.5, sigmoid(1.0)]), BIGV, grad=False),
    case("softplus grad f32 +-1e4", d(nnet.softplus), exactly([1, 0, 0.5, sigmoid(1.0)], "float32"), f32(BIGV), grad=False),
    case("softplus special", nnet.softplus, exactly([np.nan, np.inf, 0, LN2, softplus(1.5), softplus(-2.5)]), SPECIAL,
         grad=False),
    case("relu", nnet.relu, relu, M),
    case("relu f32", nnet.relu, relu, M32),
    case("relu vector", nnet.relu, relu, V),
    case("relu leaky", lambda x: nnet.relu(x, 0.25), lambda x: relu(x, 0.25), M),  # 0.25: exact in any floatX
    case("relu leaky f32 stays f32", lambda x: nnet.relu(x, 0.1), lambda x: relu(x, 0.1), M32),
    case("relu symbolic alpha", nnet.relu, relu, M, np.array(0.3)),
    case("relu alpha broadcast per column", nnet.relu, relu, M, ROW_SLOPES),
    case("relu empty", nnet.relu, relu, E04),
    case("relu int stays int", nnet.relu, lambda x: np.maximum(x, 0), np.array([-3, 0, 4], "int32")),
    case("relu int leaky is float64", lambda x: nnet.relu(x, 0.5), exactly([-1.5, 0, 4]), np.array([-3, 0, 4], "int32")),
    case("relu special", nnet.relu, exactly([np.nan, np.inf, 0, 0, 1.5, 0]), SPECIAL, grad=False),
    case("relu leaky special", lambda x: nnet.relu(x, 0.5), exactly([np.nan, np.inf, -np.inf, 0, 1.5, -1.25]), SPECIAL,
         grad=False),
    case("relu grad: Theano's 0.5 at 0, NaN at NaN", d(nnet.relu), exactly([np.nan, 1, 0, 0.5, 1, 0]), SPECIAL, grad=False),
    case("relu leaky grad: (1+alpha)/2 at 0", d(lambda x: nnet.relu(x, 0.25)), exactly([0.25, 0.625, 1]), np.array([-1.0, 0, 2]),
         grad=False),
    case("relu leaky grad f32", d(lambda x: nnet.relu(x, 0.1)), exactly([0.1, 0.55, 1], "float32"), f32([-1, 0, 2]), grad=False),
    case("relu grad wrt alpha is min(x, 0)", d(lambda a: nnet.relu(const([-2.0, 0, 3]), a)), exactly(-2.0), np.array(0.3),
         grad=False),
    case("relu +-1e4", lambda x: nnet.relu(x, 0.5), exactly([1e4, -5e3, 0, 1]), BIGV),
    case("elu", nnet.elu, elu, M),
    case("elu f32", nnet.elu, elu, M32),
    case("elu alpha", lambda x: nnet.elu(x, 0.5), lambda x: elu(x, 0.5), V),
    case("elu empty", nnet.elu, elu, E04),
    case("elu +-1e4", lambda x: nnet.elu(x, 0.5), exactly([1e4, -0.5, 0, 1]), BIGV, grad=False),  # kink at 0
    case("elu grad +-1e4 finite", d(lambda x: nnet.elu(x, 0.5)), exactly([1, 0, 0.5, 1]), BIGV, grad=False),
    case("elu grad f32 +-1e4 finite", d(lambda x: nnet.elu(x, 0.5)), exactly([1, 0, 0.5, 1], "float32"), f32(BIGV), grad=False),
    case("elu special", lambda x: nnet.elu(x, 0.5), exactly([np.nan, np.inf, -0.5, 0, 1.5, 0.5 * np.expm1(-2.5)]), SPECIAL,
         grad=False),
]


@pytest.mark.parametrize("build, expected, values, grad", ACTIVATIONS)
def test_activations(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Softmax and log_softmax

SM_BIG = np.array([[1, 0, 0], [0.5, 0.5, 0]])                          # softmax(BIG), exactly
LSM_BIG = np.array([[0, -2e4, -1e4], [-LN2, -LN2, -2e4 - LN2]])          # log_softmax(BIG), exactly
SM_BIG_GRAD = (W - (W * SM_BIG).sum(1, keepdims=True)) * SM_BIG         # d sum(softmax(BIG) * W) / dBIG
LSM_BIG_GRAD = W - W.sum(1, keepdims=True) * SM_BIG                     # d sum(log_softmax(BIG) * W) / dBIG
NAN_ROW = np.full((1, 3), np.nan)

SOFTMAX = [
    case("softmax", nnet.softmax, sm, M),
    case("softmax f32", nnet.softmax, sm, M32),
    case("softmax vector is 1 x n", nnet.softmax, lambda x: sm(x)[None, :], V),
    case("softmax vector f32", nnet.softmax, lambda x: sm(x)[None, :], V32),
    case("softmax axis 0", lambda x: nnet.softmax(x, axis=0), lambda x: sm(x, 0), M),
    case("softmax axis -2 of tensor3", lambda x: nnet.softmax(x, axis=-2), lambda x: sm(x, 1), T3),
    case("softmax axes (0, 2)", lambda x: nnet.softmax(x, axis=(0, 2)), lambda x: sm(x, (0, 2)), T3),
    case("softmax axis None", lambda x: nnet.softmax(x, axis=None), lambda x: sm(x, None), M),
    case("softmax empty batch", nnet.softmax, sm, E04),
    case("softmax empty axis", nnet.softmax, sm, E04.T),
    case("softmax int input is float64", nnet.softmax, lambda x: sm(x.astype(float)), np.array([[1, 2], [3, 5]])),
    case("softmax +-1e4", nnet.softmax, exactly(SM_BIG), BIG),
    case("softmax +-1e4 f32", nnet.softmax, exactly(SM_BIG, "float32"), f32(BIG)),
    case("softmax grad +-1e4", d(nnet.softmax, W), exactly(SM_BIG_GRAD), BIG, grad=False),
    case("softmax grad +-1e4 f32", d(nnet.softmax, W), exactly(SM_BIG_GRAD, "float32"), f32(BIG), grad=False),
    case("softmax NaN fills its row", nnet.softmax, lambda x: np.vstack([NAN_ROW, sm(x[1:])]), WITH_NAN, grad=False),
    case("log_softmax", nnet.log_softmax, lsm, M),
    case("log_softmax f32", nnet.log_softmax, lsm, M32),
    case("log_softmax vector is 1 x n", nnet.log_softmax, lambda x: lsm(x)[None, :], V),
    case("logsoftmax (Theano's name)", nnet.logsoftmax, lsm, M),
    case("log_softmax axis 0", lambda x: nnet.log_softmax(x, axis=0), lambda x: lsm(x, 0), M),
    case("log_softmax axis 1 of tensor3", lambda x: nnet.log_softmax(x, axis=1), lambda x: lsm(x, 1), T3),
    case("log_softmax axis None", lambda x: nnet.log_softmax(x, axis=None), lambda x: lsm(x, None), M),
    case("log_softmax empty batch", nnet.log_softmax, lsm, E04),
    case("log_softmax +-1e4", nnet.log_softmax, exactly(LSM_BIG), BIG),
    case("log_softmax +-1e4 f32", nnet.log_softmax, exactly(LSM_BIG, "float32"), f32(BIG), grad=False),
    case("log_softmax grad +-1e4", d(nnet.log_softmax, W), exactly(LSM_BIG_GRAD), BIG, grad=False),
    case("log_softmax grad +-1e4 f32", d(nnet.log_softmax, W), exactly(LSM_BIG_GRAD, "float32"), f32(BIG), grad=False),
    case("log_softmax NaN fills its row", nnet.log_softmax, lambda x: np.vstack([NAN_ROW, lsm(x[1:])]), WITH_NAN, grad=False),
    case("log_softmax is log of softmax", lambda x: nnet.log_softmax(x) - T.log(nnet.softmax(x)), np.zeros_like, M),
]


@pytest.mark.parametrize("build, expected, values, grad", SOFTMAX)
def test_softmax(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Cross-entropies and the label ops


def cce(p, t):
    return -(t * np.log(p)).sum(axis=-1)


def nll(p, y=LABELS):
    return -np.log(picked(p, y))


def bce(o, t):
    return -(t * np.log(o) + (1 - t) * np.log(1 - o))


LABEL_GRAD = np.zeros((3, 4))
LABEL_GRAD[np.arange(3), LABELS] = -W[0] / picked(P, LABELS)        # d sum(W[0] * -log p[i, y_i]) / dp
Y = const(LABELS)

CROSSENTROPY = [
    case("cce labels", lambda p: cce_(p, Y), nll, P),
    case("cce labels f32", lambda p: cce_(p, Y), lambda p: as_(nll(p), p), P32),
    case("cce symbolic labels", cce_, nll, P, LABELS),
    case("cce int32 labels", cce_, nll, P, LABELS.astype("int32")),
    case("cce uint8 labels", cce_, nll, P, LABELS.astype("uint8")),
    case("cce labels of a 1 x n softmax", lambda x: cce_(nnet.softmax(x), const([2])), lambda x: nll(sm(x)[None], [2]), V),
    case("cce labels empty batch", cce_, exactly(np.zeros(0)), E04, E0L),
    case("cce labels grad", d(lambda p: cce_(p, Y), W[0]), exactly(LABEL_GRAD), P),  # and its own gradient
    case("cce labels NaN at the label", lambda p: cce_(p, const([0, 1])), exactly([np.nan, -np.log(0.25)]),
         np.array([[np.nan, .5], [.75, .25]]), grad=False),
    case("cce labels of softmax", lambda x: cce_(nnet.softmax(x), const([0, 1, 2])), lambda x: nll(sm(x), [0, 1, 2]), M),
    case("crossentropy_categorical_1hot", lambda p: nnet.crossentropy_categorical_1hot(p, Y), nll, P),
    case("cce one-hot", cce_, cce, P, ONE_HOT),
    case("cce one-hot f32", cce_, lambda p, t: as_(cce(p, t), p), P32, f32(ONE_HOT)),
    case("cce one-hot int matrix", cce_, cce, P, ONE_HOT.astype("int64")),
    case("cce soft targets", cce_, cce, P, SOFT),
    case("cce vector", cce_, cce, P[0], SOFT[0]),
    case("cce target row broadcasts", lambda p, t: cce_(p, t.dimshuffle("x", 0)), cce, P, SOFT[0]),
    case("cce empty batch", cce_, cce, E04, E04),
    case("cce 0 log 0 is 0", cce_, exactly([-np.log(0.25), 0]), np.array([[0, .25, .75], [1, 0, 0]]),
         np.array([[0, 1, 0], [1, 0, 0.0]]), grad=False),
    case("cce grad at a 0 probability", d(lambda p: cce_(p, const([[0, 1, 0.0]]))), exactly([[0, -4, 0]]),
         np.array([[0, .25, .75]]), grad=False),
    case("cce NaN", cce_, exactly([np.nan, -np.log(.5)]), np.array([[np.nan, 1.0], [.5, .5]]), np.array([[0, 1.0], [1, 0]]),
         grad=False),
    case("bce", bce_, bce, OUT, TARGET),
    case("bce f32", bce_, lambda o, t: as_(bce(o, t), o), f32(OUT), f32(TARGET)),
    case("bce vector", bce_, bce, OUT[0], TARGET[0]),
    case("bce target broadcasts", bce_, bce, OUT, TARGET[0]),
    case("bce output broadcasts", bce_, bce, OUT[0], TARGET),
    case("bce int targets", bce_, bce, OUT, (TARGET > 0.5).astype("int8")),
    case("bce empty", bce_, bce, E04, E04),
    case("bce saturated and right is 0", bce_, exactly([0, 0, np.inf]), np.array([1.0, 0, 1]), np.array([1.0, 0, 0]),
         grad=False),
    case("bce saturated grad finite", d(lambda o: bce_(o, const([1.0, 0]))), exactly([-1, 1]), np.array([1.0, 0]), grad=False),
    case("bce of sigmoid +-1e4", lambda x: bce_(nnet.sigmoid(x), const([1.0, 0])), exactly([0, 0]), np.array([1e4, -1e4])),
    case("bce NaN", bce_, exactly([np.nan, np.nan, -np.log(.5)]), np.array([np.nan, .5, .5]), np.array([1.0, np.nan, 0]),
         grad=False),
    case("PickPerRow", lambda x: core_nnet.PickPerRow()(x, Y), lambda x: picked(x, LABELS), M),
    case("IncPerRow", lambda x, v: core_nnet.IncPerRow()(x, v, Y), lambda x, v: x + np.eye(4)[LABELS] * v[:, None],
         M, U(3, seed=8)),
    case("IncPerRow f32 of f64 values", lambda x, v: core_nnet.IncPerRow()(x, v, Y),
         lambda x, v: as_(x + np.eye(4)[LABELS] * v[:, None], x), M32, U(3, seed=8)),
    case("SoftmaxCrossentropyGrad", lambda x, g: core_nnet.SoftmaxCrossentropyGrad()(x, g, Y),
         lambda x, g: (np.exp(x) / np.exp(x).sum(1, keepdims=True) - np.eye(4)[LABELS]) * g[:, None], M, U(3, seed=8)),
    case("SoftmaxCrossentropyGrad f32, +-1e4", lambda x, g: core_nnet.SoftmaxCrossentropyGrad()(x, g, Y),
         exactly([[-2, 0, 0, 2], [0, 0, 2, -2], [0, -2, 2, 0]], "float32"),
         np.array([[1e4, 0, 0, 2e4], [-1e4, -1e4, 1e4, -1e4], [0, 1e4, 2e4, 0]], "float32"), np.full(3, 2, "float32"),
         grad=False),
]


@pytest.mark.parametrize("build, expected, values, grad", CROSSENTROPY)
def test_crossentropy(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


# ---------------------------------------------------------------------------------------------------
# Errors: built wrong (TypeError / ValueError when building) or fed wrong (naming the op when run)

MUST_BE = "categorical_crossentropy: true_dist must be"
NEED_MATRIX = "categorical_crossentropy: integer labels need a matrix"
Pick, Inc = core_nnet.PickPerRow(), core_nnet.IncPerRow()

BUILD_ERRORS = [
    pytest.param(TypeError, "softmax", lambda: nnet.softmax(T.dscalar()), id="softmax of a scalar"),
    pytest.param(ValueError, "softmax: axis 2", lambda: nnet.softmax(T.dmatrix(), axis=2), id="softmax axis"),
    pytest.param(TypeError, "log_softmax", lambda: nnet.log_softmax(T.dscalar()), id="log_softmax of a scalar"),
    pytest.param(ValueError, "log_softmax: axis -3", lambda: nnet.log_softmax(T.dmatrix(), axis=-3), id="log_softmax axis"),
    pytest.param(TypeError, MUST_BE, lambda: cce_(T.dmatrix(), T.dvector()), id="cce float labels"),
    pytest.param(TypeError, MUST_BE, lambda: cce_(T.dmatrix(), T.bvector() > 0), id="cce bool labels"),
    pytest.param(TypeError, MUST_BE, lambda: cce_(T.dmatrix(), T.lscalar()), id="cce rank mismatch"),
    pytest.param(TypeError, NEED_MATRIX, lambda: cce_(T.dtensor3(), T.lmatrix()), id="cce labels of a tensor3"),
    pytest.param(TypeError, NEED_MATRIX, lambda: cce_(T.dvector(), T.lscalar()), id="cce label of a vector"),
    pytest.param(TypeError, "PickPerRow: expected a matrix and a vector of integer labels",
                 lambda: Pick(T.dmatrix(), T.dvector()), id="PickPerRow float labels"),
    pytest.param(TypeError, "IncPerRow: expected one value per row", lambda: Inc(T.dmatrix(), T.dmatrix(), T.lvector()),
                 id="IncPerRow values"),
    pytest.param(TypeError, r"SoftmaxCrossentropyGrad: expected one gradient value per row, a vector of float64",
                 lambda: core_nnet.SoftmaxCrossentropyGrad()(T.lmatrix(), T.fvector(), T.lvector()), id="xent grad dtype"),
]


@pytest.mark.parametrize("error, message, build", BUILD_ERRORS)
def test_build_errors(error, message, build):
    with pytest.raises(error, match=message):
        build()


RUN_ERRORS = [
    pytest.param(IndexError, r"PickPerRow.*label 4 \(row 1\) is out of range for 4 classes", cce_, [P, np.array([0, 4, 1])],
                 id="label too large"),
    pytest.param(IndexError, r"PickPerRow.*label -1 \(row 2\) is out of range for 4 classes", cce_, [P, np.array([0, 1, -1])],
                 id="negative label"),
    pytest.param(IndexError, r"PickPerRow.*out of range for 0 classes", cce_, [np.zeros((2, 0)), np.array([0, 0])],
                 id="no classes"),
    pytest.param(ValueError, r"PickPerRow.*2 label\(s\) for 3 row\(s\)", cce_, [P, np.array([0, 1])], id="too few labels"),
    pytest.param(ValueError, r"PickPerRow.*1 label\(s\) for 3 row\(s\)", cce_, [P, np.array([2])], id="1 label, 3 rows"),
    pytest.param(ValueError, r"IncPerRow.*disagree", lambda x, v: Inc(x, v, Y), [M, np.ones(2)], id="IncPerRow values"),
    pytest.param(ValueError, r"SoftmaxCrossentropyGrad.*disagree",
                 lambda x, g: core_nnet.SoftmaxCrossentropyGrad()(x, g, Y), [M, np.ones(2)], id="xent grad values"),
    pytest.param(IndexError, r"SoftmaxCrossentropyGrad.*label 4 \(row 1\) is out of range",
                 lambda x, g: core_nnet.SoftmaxCrossentropyGrad()(x, g, const(np.array([0, 4, 1]))), [M, np.ones(3)],
                 id="xent grad label"),
    pytest.param(ValueError, r"disagree", bce_, [OUT, TARGET[:, :3]], id="bce shapes"),
    pytest.param(ValueError, r"disagree", cce_, [P, SOFT[:, :3]], id="cce shapes"),
]


@pytest.mark.parametrize("error, message, build, values", RUN_ERRORS)
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


@pytest.mark.parametrize("threads", ["2", "3"])
def test_a_large_softmax_crossentropy_splits_its_rows_between_threads(backend, monkeypatch, threads):
    """The plan gives the cross-entropy and its gradient threads (Op.splits_rows) in a graph without
    products; on inputs past PARALLEL_MIN elements C runs their rows split between the cores
    (ari_parallel over a row kernel), numba from the glue (shares.SplitRows: no prange, which ran
    slower than the serial loop here), in shares of unequal sizes with 3 threads, with the reference's
    values; a wrong label is still an IndexError naming the op."""
    import arignote
    from arignote.core.plan import PARALLEL_MIN

    monkeypatch.setenv("ARIGNOTE_THREADS", threads)

    z, y = T.fmatrix("z"), T.ivector("y")
    loss = T.mean(T.nnet.categorical_crossentropy(T.nnet.softmax(z), y))
    f = arignote.function([z, y], [loss, arignote.grad(loss, z)], backend=backend)
    threaded = [type(node.op) for node in f.maker.fgraph.plan.threads]
    assert threaded.count(core_nnet.SoftmaxCrossentropy) == threaded.count(core_nnet.SoftmaxCrossentropyGrad) == 1
    source = f.backend_source or ""
    assert backend != "c" or source.count("ari_parallel(ari_rows") == 2
    assert backend != "numba" or ("prange" not in source and source.count("its rows split between threads") == 2)
    rng = np.random.default_rng(3)
    rows = PARALLEL_MIN // 500 + 3
    Z = rng.standard_normal((rows, 500)).astype("float32")
    Z[5, 7] = np.inf
    Y = rng.integers(0, 500, rows).astype("int32")
    expected = arignote.function([z, y], [loss, arignote.grad(loss, z)], backend="reference")(Z, Y)
    for got, want in zip(f(Z, Y), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    Y[rows - 1] = 500  # a label past the last class: caught before any row runs
    with pytest.raises(IndexError, match="Softmax|[Cc]rossentropy"):
        f(Z, Y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("width", [1, 10, 63, 64, 130])
def test_the_softmax_family_over_short_and_long_rows(backend, width, dtype):
    """Rows shorter than 64 (the backends' SHORT_ROW) run in blocks whose exps are one flat loop over
    a scratch of 1024 elements; longer rows run one by one. Both agree with the reference: over more
    rows than a block holds (the last block partial), through a view with reversed rows and every
    other column, with a NaN, a row of -inf, a +inf at a label and a +inf elsewhere; softmax,
    log_softmax, a 3-d softmax along its last axis, the cross-entropy and its gradient."""
    import arignote

    rng = np.random.default_rng(width)
    rows = 2 * (1024 // width) + 3
    base = (rng.standard_normal((rows, 2 * width)) * 3).astype(dtype)
    labels = rng.integers(0, width, rows).astype("int32")
    base[1, 0] = np.nan
    base[2] = -np.inf
    base[3, 2 * labels[rows - 4]] = np.inf  # row 3 of the base is row rows - 4 of the view
    base[4, 2 * ((labels[rows - 5] + 1) % width)] = np.inf if width > 1 else 5.0
    X = base[::-1, ::2]
    x, y = T.matrix("x", dtype=dtype), T.ivector("y")
    loss = nnet.categorical_crossentropy(nnet.softmax(x), y)
    weights = T.constant(rng.uniform(0.5, 1.5, rows).astype(dtype))
    outputs = [nnet.softmax(x), nnet.log_softmax(x), nnet.softmax(
        x[: rows - rows % 3].reshape((3, rows // 3, width))), loss, arignote.grad((loss * weights).sum(), x)]
    f = arignote.function([x, y], outputs, backend=backend)
    assert {core_nnet.SoftmaxCrossentropy, core_nnet.SoftmaxCrossentropyGrad} <= {
        type(node.op) for node in f.maker.fgraph.apply_nodes}
    want = arignote.function([x, y], outputs, backend="reference")(X, labels)
    tolerance = {"float32": 2e-6, "float64": 1e-13}[dtype]
    for got, expected in zip(f(X, labels), want):
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
