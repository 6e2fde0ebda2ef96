"""Cross-check mode: every call also runs the reference backend and compares (``ARIGNOTE_CHECK=1`` or
``function(..., check=True)``). A disagreement is traced back to the first graph node whose value
differs, so a backend bug is found at its source rather than at the loss."""

import numpy as np

from .graph import FunctionGraph
from .plan import plan_of

# Per-dtype tolerances for comparing a backend with the reference: compiled code may reorder sums and
# use other (correctly rounded to a few ulp) math libraries; integers and booleans must match exactly.
TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}


class CrossCheckError(AssertionError):
    """A backend's result disagrees with the reference backend's."""


def largest_difference(actual, expected, tolerances=None):
    """None when ``actual`` agrees with ``expected`` (same dtype and shape, values within the dtype's
    tolerance, NaN where NaN), else a description of the largest disagreement. ``tolerances``
    ({dtype: (rtol, atol)}) overrides the defaults."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.dtype != expected.dtype:
        return f"dtype {actual.dtype} instead of {expected.dtype}"
    if actual.shape != expected.shape:
        return f"shape {actual.shape} instead of {expected.shape}"
    if actual.size == 0:
        return None
    rtol, atol = {**TOLERANCES, **(tolerances or {})}.get(actual.dtype.name, (0, 0))
    if actual.dtype.kind != "f":
        wrong = actual != expected
    else:
        both_nan = np.isnan(actual) & np.isnan(expected)
        with np.errstate(all="ignore"):
            same_inf = (actual == expected)
            wrong = ~(both_nan | same_inf | (np.abs(actual - expected) <= atol + rtol * np.abs(expected)))
    if not wrong.any():
        return None
    with np.errstate(all="ignore"):
        error = np.where(wrong, np.abs(actual.astype("float64") - expected.astype("float64")), -np.inf)
    worst = np.unravel_index(np.nanargmax(np.where(np.isnan(error), np.inf, error)), actual.shape)
    return (f"largest difference {float(np.nan_to_num(error[worst], nan=np.inf)):.6g} at index "
            f"{tuple(int(i) for i in worst)}: {actual[worst]!r} vs reference {expected[worst]!r} "
            f"({int(wrong.sum())} of {wrong.size} elements differ)")


class CrossChecked:
    """An executable that runs ``executable`` and the reference on copies of the same inputs."""

    def __init__(self, executable, backend, fgraph, n_outputs):
        from .plugins import registry

        self.executable = executable
        self.backend = backend
        self.fgraph = fgraph
        self.n_outputs = n_outputs
        self.reference = registry.get("reference").compile(fgraph)
        self.in_place = set(plan_of(fgraph).updates_in_place.values())
        self.source = getattr(executable, "source", None)

    def __call__(self, inputs):
        copies = [np.array(v, copy=True) for v in inputs]
        # an update computed in place lands in a copy: a disagreement then leaves the shared value as it was
        results = self.executable([copies[k].copy() if k in self.in_place else v for k, v in enumerate(inputs)])
        expected = self.reference(copies)
        for position, (actual, wanted) in enumerate(zip(results, expected)):
            problem = largest_difference(actual, wanted)
            if problem is not None:
                what = (f"output {position}" if position < self.n_outputs
                        else f"update {position - self.n_outputs}")
                raise CrossCheckError(f"backend {self.backend.name!r} disagrees with the reference on {what}: "
                                      f"{problem}.\n{self.locate(copies)}")
        return results

    def locate(self, inputs):
        """Run every intermediate value on both backends and name the first node that differs."""
        from .plugins import registry

        nodes = self.fgraph.apply_nodes
        everything = [out for node in nodes for out in node.outputs]
        probe = FunctionGraph(self.fgraph.inputs, everything)
        try:
            actual = self.backend.compile(probe)([np.array(v, copy=True) for v in inputs])
        except Exception as error:  # the backend may not be able to expose every intermediate
            return f"(could not trace the first differing node: {type(error).__name__}: {error})"
        expected = registry.get("reference").compile(probe)([np.array(v, copy=True) for v in inputs])
        position = 0
        for node in nodes:
            for out in node.outputs:
                problem = largest_difference(actual[position], expected[position])
                position += 1
                if problem is not None:
                    inputs_text = ", ".join(str(i.type) for i in node.inputs)
                    return (f"The first node that differs is {node.op} (built at {out.built_at()}) "
                            f"on inputs ({inputs_text}): {problem}")
        return "Every intermediate value agrees when computed on its own; the difference comes from the outputs."
