"""Types, constructors, floatX, and the symbolic behaviour of variables: operators, truthiness,
identity equality and Theano's attributes."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core import ops
from arignote.core.config import Config
from arignote.core.graph import Constant, TensorVariable
from arignote.core.types import TensorType, canonical_dtype, float_of, upcast


# ---------------------------------------------------------------------------------------------------
# Constructors

PATTERNS = {"scalar": (), "vector": (False,), "matrix": (False, False), "row": (True, False),
            "col": (False, True), "tensor3": (False,) * 3, "tensor4": (False,) * 4}
PREFIXES = {"b": "int8", "w": "int16", "i": "int32", "l": "int64", "f": "float32", "d": "float64"}


@pytest.mark.parametrize("kind", PATTERNS)
@pytest.mark.parametrize("prefix", [""] + list(PREFIXES))
def test_constructor(kind, prefix):
    x = getattr(T, prefix + kind)("x")
    assert isinstance(x, TensorVariable)
    assert x.name == "x"
    assert x.broadcastable == PATTERNS[kind] and x.ndim == len(PATTERNS[kind])
    assert x.dtype == PREFIXES.get(prefix, "float64")
    assert x.type == TensorType(x.dtype, PATTERNS[kind])
    assert getattr(T, prefix + kind)().name is None


@pytest.mark.parametrize("kind", PATTERNS)
def test_constructor_dtype_and_name_keywords(kind):
    x = getattr(T, kind)(name="w", dtype="int32")
    assert (x.name, x.dtype, x.broadcastable) == ("w", "int32", PATTERNS[kind])
    assert getattr(T, kind)(dtype=np.uint8).dtype == "uint8"
    assert getattr(T, kind)(dtype="floatX").dtype == "float64"


@pytest.mark.parametrize("plural, single", [
    ("scalars", "scalar"), ("vectors", "vector"), ("matrices", "matrix"), ("rows", "row"), ("cols", "col"),
    ("tensor3s", "tensor3"), ("tensor4s", "tensor4"), ("dmatrices", "dmatrix"), ("fvectors", "fvector"),
    ("iscalars", "iscalar"), ("lvectors", "lvector"), ("bmatrices", "bmatrix"), ("wrows", "wrow"),
])
def test_plural_constructors(plural, single):
    a, b = getattr(T, plural)("a", "b")
    assert (a.name, b.name) == ("a", "b")
    assert a.type == b.type == getattr(T, single)().type
    assert a is not b
    three = getattr(T, plural)(3)
    assert len(three) == 3 and all(v.name is None and v.type == a.type for v in three)


def test_plural_forms_examples():
    a, b = T.dmatrices("a", "b")
    assert a.type == TensorType("float64", (False, False)) and b.name == "b"
    x, y = T.matrices("x", "y", dtype="int32")
    assert x.dtype == y.dtype == "int32"


def test_typed_constructors_refuse_a_dtype():
    with pytest.raises(TypeError):
        T.fmatrix(dtype="float64")


def test_tensor_constructor():
    x = T.tensor("int16", (False, True, False), name="t")
    assert (x.dtype, x.broadcastable, x.name) == ("int16", (False, True, False), "t")
    assert T.tensor(broadcastable=(True,)).type == TensorType("float64", (True,))
    assert T.tensor().ndim == 0
    assert TensorType("float32", (False,))("v").type == T.fvector().type


@pytest.mark.parametrize("dtype", ["float16", "complex128", "object", "U3", "datetime64"])
def test_unsupported_dtypes_are_refused(dtype):
    with pytest.raises(TypeError, match="not supported|not a dtype"):
        T.matrix(dtype=dtype)


def test_unknown_dtype_name_is_refused():
    with pytest.raises(TypeError, match="not a dtype"):
        TensorType("flaot32", ())


# ---------------------------------------------------------------------------------------------------
# config.floatX


def test_floatX_default_is_float64():
    assert Config(environ={}).floatX == "float64"
    assert config.floatX == "float64"
    assert T.matrix().dtype == T.scalar().dtype == "float64"
    assert T.constant(1.5).dtype == "float64"


def test_floatX_from_environment():
    assert Config(environ={"ARIGNOTE_FLOATX": "float32"}).floatX == "float32"
    with pytest.raises(ValueError, match="floatX"):
        Config(environ={"ARIGNOTE_FLOATX": "float16"})


def test_floatX_assignment_is_validated():
    with pytest.raises(ValueError, match="floatX"):
        config.floatX = "float16"
    assert config.floatX == "float64"


def test_floatX32_fixture(floatX32):
    assert config.floatX == "float32"
    assert T.matrix().dtype == T.vector().dtype == T.tensor4().dtype == "float32"
    assert T.dmatrix().dtype == "float64" and T.fmatrix().dtype == "float32"
    assert T.matrices("a", "b")[1].dtype == "float32"
    assert T.tensor(broadcastable=(False,)).dtype == "float32"
    assert T.matrix(dtype="floatX").dtype == "float32"
    assert T.cast(T.ivector(), "floatX").dtype == "float32"
    assert canonical_dtype(None) == "float32"


def test_floatX32_computes_in_float32(floatX32, backend):
    x = T.matrix("x")
    f = arignote.function([x], T.exp(x) * 0.5 + x.sum(axis=0) / 3, backend=backend)
    value = np.arange(6, dtype="float32").reshape(2, 3)
    result = f(value)
    assert result.dtype == "float32"
    np.testing.assert_allclose(result, np.exp(value) * 0.5 + value.sum(axis=0) / 3, rtol=1e-6)


# ---------------------------------------------------------------------------------------------------
# TensorType


def test_tensor_type_equality_hash_and_immutability():
    a, b = TensorType("float32", (False, True)), TensorType(np.float32, [0, 1])
    assert a == b and hash(a) == hash(b)
    assert a != TensorType("float64", (False, True)) and a != TensorType("float32", (False, False))
    assert a != "TensorType(float32, col)"
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.dtype = "float64"
    assert a.ndim == 2 and a.broadcastable == (False, True)


def test_tensor_type_repr_names_the_pattern():
    assert repr(TensorType("float32", (False, True))) == "TensorType(float32, col)"
    assert repr(TensorType("int8", ())) == "TensorType(int8, scalar)"
    assert "True" in repr(TensorType("float64", (True, True, False)))


@pytest.mark.parametrize("given, name", [
    ("float32", "float32"), (np.float64, "float64"), (float, "float64"), ("int", "int64"), (bool, "bool"),
    (np.dtype("uint16"), "uint16"), ("floatX", "float64"), (None, "float64"), ("i1", "int8"),
])
def test_canonical_dtype(given, name):
    assert canonical_dtype(given) == name


@pytest.mark.parametrize("dtype, expected", [
    ("bool", "float32"), ("int8", "float32"), ("uint8", "float32"), ("int16", "float32"), ("uint16", "float32"),
    ("int32", "float64"), ("uint32", "float64"), ("int64", "float64"), ("uint64", "float64"),
    ("float32", "float32"), ("float64", "float64"),
])
def test_float_of_never_gives_float16(dtype, expected):
    assert float_of(dtype) == expected


def test_upcast_is_numpy_promotion():
    assert upcast("int8", "uint8") == "int16"
    assert upcast("float32", "int32") == "float64"
    assert upcast("bool", "int8") == "int8"


def test_filter_checks_dtype_ndim_and_broadcastable_axes():
    row = TensorType("float64", (True, False))
    assert row.filter(np.ones((1, 3))).shape == (1, 3)
    with pytest.raises(TypeError, match="broadcastable"):
        row.filter(np.ones((2, 3)))
    with pytest.raises(TypeError, match="dimension"):
        row.filter(np.ones(3))
    f32 = TensorType("float32", (False,))
    with pytest.raises(TypeError, match="precision"):
        f32.filter(np.ones(3))  # a float64 array would be downcast
    assert f32.filter(np.ones(3), allow_downcast=True).dtype == "float32"
    assert f32.filter([0.1, 0.2]).dtype == "float32"  # Python floats are accepted by float types
    i8 = TensorType("int8", (False,))
    assert i8.filter([1, -2]).dtype == "int8"
    with pytest.raises(TypeError, match="precision"):
        i8.filter([300])
    with pytest.raises(TypeError):
        i8.filter(["a"])


def test_filter_keeps_matching_arrays_and_views():
    m = TensorType("float64", (False, False))
    view = np.arange(12.0).reshape(3, 4)[::-1, ::2]
    assert m.filter(view) is view


# ---------------------------------------------------------------------------------------------------
# Variables: attributes, operators, truthiness, identity


def test_variable_attributes():
    x = T.ftensor3("x")
    assert (x.ndim, x.dtype, x.broadcastable, x.name) == (3, "float32", (False, False, False), "x")
    assert x.type == TensorType("float32", (False,) * 3)
    assert T.row().broadcastable == (True, False)
    assert T.col().type.broadcastable == (False, True)


def test_T_and_transpose():
    m, c = T.matrix(), T.col()
    assert isinstance(m.T.owner.op, ops.DimShuffle) and m.T.owner.op.new_order == (1, 0)
    assert c.T.broadcastable == (True, False)
    assert T.vector().T.ndim == 1
    assert T.tensor3().T.owner.op.new_order == (2, 1, 0)
    assert T.tensor3().transpose(1, 0, 2).owner.op.new_order == (1, 0, 2)


def test_dimshuffle_method():
    v = T.vector()
    assert v.dimshuffle("x", 0).broadcastable == (True, False)
    assert v.dimshuffle(0, "x").broadcastable == (False, True)
    assert v.dimshuffle("x", 0, "x", "x").broadcastable == (True, False, True, True)
    assert v.dimshuffle(["x", 0]).owner.op.new_order == ("x", 0)


def test_shape_attribute():
    m = T.matrix()
    assert isinstance(m.shape.owner.op, ops.Shape)
    assert m.shape.type == TensorType("int64", (False,))
    assert isinstance(m.shape[0].owner.op, ops.ShapeI) and m.shape[0].ndim == 0


OPERATORS = [
    (lambda x, y: x + y, ops.Add), (lambda x, y: x - y, ops.Sub), (lambda x, y: x * y, ops.Mul),
    (lambda x, y: x / y, ops.TrueDiv), (lambda x, y: x // y, ops.IntDiv), (lambda x, y: x % y, ops.Mod),
    (lambda x, y: x ** y, ops.Pow), (lambda x, y: x < y, ops.Lt), (lambda x, y: x <= y, ops.Le),
    (lambda x, y: x > y, ops.Gt), (lambda x, y: x >= y, ops.Ge), (lambda x, y: -x, ops.Neg),
    (lambda x, y: abs(x), ops.Abs), (lambda x, y: x @ y, ops.Dot),
]


@pytest.mark.parametrize("build, op", OPERATORS, ids=[op.__name__ for _, op in OPERATORS])
def test_operators_build_ops(build, op):
    x, y = T.matrix("x"), T.matrix("y")
    out = build(x, y)
    assert isinstance(out, TensorVariable)
    assert type(out.owner.op) is op
    assert out.owner.inputs[0] is x


REFLECTED = [
    (lambda x: 2 + x, ops.Add), (lambda x: 2 - x, ops.Sub), (lambda x: 2 * x, ops.Mul), (lambda x: 2 / x, ops.TrueDiv),
    (lambda x: 2 // x, ops.IntDiv), (lambda x: 2 % x, ops.Mod), (lambda x: 2 ** x, ops.Pow),
]


@pytest.mark.parametrize("build, op", REFLECTED, ids=[op.__name__ for _, op in REFLECTED])
def test_reflected_operators_keep_the_operand_order(build, op, backend):
    x = T.vector("x")
    out = build(x)
    assert type(out.owner.op) is op and isinstance(out.owner.inputs[0], Constant)
    value = np.array([0.5, 1.5, 3.0])
    np.testing.assert_allclose(arignote.function([x], out, backend=backend)(value), build(value))


def test_reflected_comparisons_swap():
    x = T.vector()
    assert type((0 < x).owner.op) is ops.Gt and (0 < x).owner.inputs[0] is x
    assert type((0 >= x).owner.op) is ops.Le


def test_unary_plus_is_identity():
    x = T.vector()
    assert +x is x


def test_comparisons_are_symbolic_bool_tensors():
    x, y = T.fmatrix(), T.fmatrix()
    for out in (x < y, x <= y, x > y, x >= y, T.eq(x, y), T.neq(x, y), x > 0):
        assert isinstance(out, TensorVariable)
        assert out.dtype == "bool" and out.ndim == 2


def test_comparison_truth_value_raises():
    x = T.vector("x")
    for comparison in (x > 0, x < 0, x >= 0, x <= 0, T.eq(x, 0), T.neq(x, 0)):
        with pytest.raises(TypeError, match="truth value"):
            bool(comparison)
    with pytest.raises(TypeError):
        if x > 0:
            pass


def test_variables_are_truthy():
    x = T.vector("x")
    assert bool(x) is True
    assert bool(x + 1) and bool(T.exp(x)) and bool(x.sum()) and bool(T.constant(0))
    assert (x or None) is x


def test_equality_is_identity_not_elementwise():
    x, y = T.vector("x"), T.vector("y")
    assert (x == y) is False and (x == x) is True
    assert (x != y) is True and (x != x) is False
    assert {x: 1, y: 2}[x] == 1
    assert x in [y, x] and len({x, y, x}) == 2


def test_iteration_is_refused():
    with pytest.raises(TypeError, match="iterated"):
        list(T.vector())


def test_python_numbers_become_weak_constants():
    x = T.fvector()
    out = x * 2.0
    constant = out.owner.inputs[1]
    assert isinstance(constant, Constant) and constant.dtype == "float32"
    assert T.as_tensor_variable(2.0).dtype == "float64"
    assert T.as_tensor_variable(2).dtype == "int64"
    assert T.as_tensor_variable(True).dtype == "bool"
    assert T.as_tensor_variable(np.float32(2)).dtype == "float32"
    assert T.as_tensor_variable([1.0, 2.0]).dtype == "float64"
    assert T.as_tensor_variable(np.arange(3, dtype="int16")).dtype == "int16"


def test_constant_repr_and_readonly_data():
    c = T.constant(np.arange(3.0))
    assert c.broadcastable == (False,) and not c.data.flags.writeable
    assert T.constant([[5]]).broadcastable == (True, True)
    with pytest.raises(TypeError):
        T.as_tensor_variable("text")


# ---------------------------------------------------------------------------------------------------
# Constructors are type objects, as in Theano

NAMED = {"scalar": "scalar", "vector": "vector", "matrix": "matrix", "row": "row", "col": "col",
         "tensor3": "3D", "tensor4": "4D"}


@pytest.mark.parametrize("kind", PATTERNS)
@pytest.mark.parametrize("prefix", list(PREFIXES))
def test_typed_constructors_are_tensor_types(kind, prefix):
    made = getattr(T, prefix + kind)
    dtype = PREFIXES[prefix]
    assert isinstance(made, T.TensorType) and made == TensorType(dtype, PATTERNS[kind])
    assert str(made) == repr(made) == f"TensorType({dtype}, {NAMED[kind]})"
    x = made("x")
    assert x.type == made and x.name == "x" and made(name="W").name == "W"
    assert isinstance(x, T.TensorVariable) and isinstance(x.type, T.TensorType)


@pytest.mark.parametrize("kind", PATTERNS)
def test_floatX_constructors_are_the_type_of_floatX(kind, floatX32):
    made = getattr(T, kind)
    assert isinstance(made, T.TensorType)
    assert str(made) == f"TensorType(float32, {NAMED[kind]})" and made("x").type == made
    assert made == getattr(T, "f" + kind) and made != getattr(T, "d" + kind)
    assert made(name="q", dtype="int16").type == getattr(T, "w" + kind)
    config.floatX = "float64"
    assert str(made) == f"TensorType(float64, {NAMED[kind]})" and made == getattr(T, "d" + kind)
    assert made().dtype == "float64"


def test_theanos_examples_of_type_objects():
    x = T.dscalar("x")
    assert x.type == T.dscalar and str(x.type) == "TensorType(float64, scalar)"
    assert T.dmatrix(name="W").name == "W"
    col = T.TensorType("float64", (False, True))
    assert str(col) == "TensorType(float64, col)" and col("c").broadcastable == (False, True)
    assert str(T.TensorType("float32", (True, False, True))) == "TensorType(float32, (True, False, True))"
    assert str(T.dtensor3) == "TensorType(float64, 3D)"


def test_type_objects_make_variables_and_clones():
    assert T.fmatrix.make_variable("m").type == T.fmatrix
    assert T.fmatrix.clone(dtype="int32") == T.imatrix
    assert T.dvector.clone(broadcastable=(True,)) == TensorType("float64", (True,))
    assert T.matrix.clone(dtype="int8") == T.bmatrix
    with pytest.raises(AttributeError):
        T.dmatrix.dtype = "float32"


def test_type_objects_pickle_and_copy():
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(T.matrix)) is T.matrix  # still the floatX type, not float64's
    assert copy.deepcopy(T.vector) is T.vector
    assert pickle.loads(pickle.dumps(T.dmatrix)) == T.dmatrix


def test_isinstance_checks_programs_make():
    from arignote.compile import SharedVariable

    x, c, s = T.dmatrix("x"), T.constant(1.5), arignote.shared(np.zeros(3))
    assert isinstance(x, T.TensorVariable) and isinstance(x, arignote.Variable)
    assert isinstance(c, T.TensorConstant) and isinstance(c, arignote.Constant) and not isinstance(x, T.TensorConstant)
    assert isinstance(s, SharedVariable) and isinstance(s, arignote.Variable) and not isinstance(x, SharedVariable)
    assert isinstance(x.type, T.TensorType) and isinstance(T.dmatrix, T.TensorType)
