"""Helpers for the tests: compare any backend with the reference, values and gradients."""

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core.plugins import registry
from arignote.core.types import TensorType


def backends_under_test():
    if config.backend:
        return [config.backend]
    return [name for name in registry.names() if registry.availability(name)]


def symbolic_like(values):
    return [TensorType(np.asarray(v).dtype, (False,) * np.ndim(v))(f"in{i}") for i, v in enumerate(values)]


def tolerance(dtype):
    return {"float32": 1e-5, "float64": 1e-12}.get(np.dtype(dtype).name, 0)


def assert_same(actual, expected, what="", tol=None):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    tol = tolerance(actual.dtype) if tol is None else tol
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, equal_nan=True, err_msg=what)


def check(build, values, backend, expected=None, grad=True):
    """Build ``build(*symbolic inputs)`` for inputs like ``values``, run it on ``backend`` and on the
    reference and compare; with ``expected`` (a NumPy result) compare with that too; with ``grad``,
    check the gradient against finite differences on ``backend`` for float inputs."""
    inputs = symbolic_like(values)
    output = build(*inputs)
    result = arignote.function(inputs, output, backend=backend, on_unused_input="ignore")(*values)
    reference = arignote.function(inputs, output, backend="reference", on_unused_input="ignore")(*values)
    assert_same(result, reference, f"{backend} vs reference")
    if expected is not None:
        assert_same(reference, expected, "reference vs NumPy")
    if grad and all(np.asarray(v).dtype.kind == "f" for v in values) and output.dtype.startswith("float"):
        arignote.verify_grad(build, [np.array(v) for v in values], backend=backend,
                             rng=np.random.default_rng(42))
    return result


def freeze_arrays(namespace):
    """Make every array in a test module's namespace read-only: a backend must never write into its
    inputs, and a test that tries fails loudly."""
    for value in list(namespace.values()):
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


def case(id, build, expected, *values, grad=True):
    """One table row: ``build`` (symbolic) against ``expected`` (NumPy) on ``values``."""
    return pytest.param(build, expected, values, grad, id=id)


def run_case(build, expected, values, grad, backend):
    with np.errstate(all="ignore"):
        want = np.asarray(expected(*values))
    check(build, list(values), backend, expected=want, grad=grad)


def weighted_grads(build, values, backend, seed=7):
    """The gradients of sum(build(*values) * W), W random and fixed, with respect to every float
    input, computed by ``backend``; returns (gradients, W)."""
    inputs = symbolic_like(values)
    output = build(*inputs)
    result = arignote.function(inputs, output, backend=backend, on_unused_input="ignore")(*values)
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, result.shape)
    wrt = [i for i, v in zip(inputs, values) if np.asarray(v).dtype.kind == "f"]
    cost = T.sum(output * T.constant(weights))
    return arignote.function(inputs, T.grad(cost, wrt), backend=backend, on_unused_input="ignore")(*values), weights


def selection_grads(np_fn, values, weights):
    """The gradients of sum(np_fn(*values) * weights) with respect to the float inputs, when np_fn
    only moves, copies or drops their elements: np_fn applied to arrays of element numbers says where
    each element went, and each element collects the weights of its copies."""
    floats = [np.asarray(v).dtype.kind == "f" for v in values]
    sizes = [np.size(v) if f else 0 for v, f in zip(values, floats)]
    offsets = np.cumsum([0] + sizes)
    ids = [np.arange(o, o + n).reshape(np.shape(v)) if f else v
           for o, n, v, f in zip(offsets, sizes, values, floats)]
    moved = np.asarray(np_fn(*ids))
    total = np.bincount(moved.ravel(), weights=np.asarray(weights, float).ravel(), minlength=offsets[-1])
    return [total[o:o + n].reshape(np.shape(v)) for o, n, v, f in zip(offsets, sizes, values, floats) if f]
