"""Helpers for the tests: compare any backend with the reference, values and gradients."""

import numpy as np

import arignote
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


def assert_same(actual, expected, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    tol = tolerance(actual.dtype)
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
