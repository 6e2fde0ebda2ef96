"""Symbolic differentiation (reverse mode) and the finite-difference check ``verify_grad``."""

import warnings

import numpy as np

from . import ops
from .config import config
from .graph import Constant, TensorVariable, Variable, ancestors, as_tensor_variable, toposort
from .rewrite import selected_passes, stabilize_graph
from .test_values import built_without_test_values
from .types import DISCRETE_DTYPES, TensorType, is_float


class DisconnectedInputError(ValueError):
    """grad() was asked for the gradient with respect to a variable the cost does not depend on."""


class GradientError(AssertionError):
    """verify_grad found a symbolic gradient that disagrees with finite differences."""


def _is_discrete(var):
    return var.dtype in DISCRETE_DTYPES


def _conform(g, var):
    """Give a gradient the dtype and broadcastable pattern of the variable it belongs to."""
    g = as_tensor_variable(g)
    if g.ndim != var.ndim:
        raise ValueError(f"gradient for {var.describe()} has {g.ndim} dimensions instead of {var.ndim}")
    axes = tuple(a for a, (gb, vb) in enumerate(zip(g.broadcastable, var.broadcastable)) if vb and not gb)
    if axes:  # those axes have size 1, so the sum only fixes the type
        g = ops.sum(g, axis=axes, keepdims=True)
    if is_float(var.dtype) and g.dtype != var.dtype:
        g = ops.cast(g, var.dtype)
    return g


def _total(contributions):
    total = contributions[0]
    for g in contributions[1:]:
        total = total + g
    return total


def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", add_names=True,
         known_grads=None, return_disconnected="zero"):
    """Symbolic gradient of the scalar ``cost`` with respect to ``wrt`` (a variable or a list).

    ``consider_constant``: variables whose gradient is not propagated further (treated as constants).
    ``known_grads``: {variable: gradient} to start from, in addition to (or instead of) ``cost``.
    ``disconnected_inputs``: what to do for a ``wrt`` the cost does not depend on:
    'raise' (default), 'warn' or 'ignore'; its gradient is then zeros (or None if
    ``return_disconnected='None'``). Integer and boolean variables get zero gradients.
    """
    if disconnected_inputs not in ("raise", "warn", "ignore"):
        raise ValueError("disconnected_inputs must be 'raise', 'warn' or 'ignore'")
    single = isinstance(wrt, Variable)
    wrt_list = [wrt] if single else list(wrt)
    for w in wrt_list:
        if not isinstance(w, TensorVariable):
            raise TypeError(f"grad: wrt must be symbolic variables, got {type(w).__name__}")
    known = {}
    for var, g in (known_grads or {}).items():
        known[var] = _conform(g, var)
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(
                f"grad: the cost must be a scalar, but {cost.describe()} has {cost.ndim} dimension(s); "
                "reduce it first (e.g. with .sum() or .mean()), or use jacobian for a vector"
            )
        one = Constant(TensorType(cost.dtype if is_float(cost.dtype) else config.floatX, ()), 1.0)
        known.setdefault(cost, one)
    if not known:
        raise ValueError("grad: give a cost or known_grads")

    blockers = list(consider_constant or [])
    if cost is not None and "stabilize" in selected_passes():
        # differentiate the numerically stable form (log_softmax, not log(softmax), ...) so that the
        # gradients are stable too; variables the caller names stay in the graph
        seed = known.pop(cost)
        cost = stabilize_graph([cost], protected=wrt_list + blockers + list(known))[0]
        known[cost] = seed
    roots = list(known)
    reachable = {id(v) for v in ancestors(roots, stop=blockers)}
    nodes = toposort(roots, stop=blockers)

    # Only variables that depend on some wrt need gradients.
    blocked = set(map(id, blockers))
    depends = {id(w) for w in wrt_list}
    for node in nodes:
        if any(id(i) in depends and id(i) not in blocked for i in node.inputs):
            depends.update(id(o) for o in node.outputs)

    contributions = {}
    for var, g in known.items():
        contributions.setdefault(var, []).append(g)
    for node in reversed(nodes):
        out_grads = []
        for out in node.outputs:
            parts = contributions.get(out)
            out_grads.append(None if not parts or _is_discrete(out) else _conform(_total(parts), out))
        if all(g is None for g in out_grads) or not any(id(o) in depends for o in node.outputs):
            continue
        in_grads = node.op.grad(node.inputs, node.outputs, out_grads)
        if len(in_grads) != len(node.inputs):
            raise ValueError(f"{node.op}.grad returned {len(in_grads)} gradients for {len(node.inputs)} inputs")
        for var, g in zip(node.inputs, in_grads):
            if g is None or id(var) not in depends or id(var) in blocked or _is_discrete(var):
                continue
            contributions.setdefault(var, []).append(_conform(g, var))

    results = []
    for w in wrt_list:
        if id(w) not in reachable:
            message = f"grad: the cost does not depend on {w.describe()}"
            if disconnected_inputs == "raise":
                raise DisconnectedInputError(
                    message + "; pass disconnected_inputs='ignore' (or 'warn') to get zeros instead"
                )
            if disconnected_inputs == "warn":
                warnings.warn(message, stacklevel=2)
            if return_disconnected == "None":
                results.append(None)
                continue
        parts = contributions.get(w)
        g = _total(parts) if parts else ops.zeros_like(w, None if is_float(w.dtype) else config.floatX)
        if add_names and cost is not None and cost.name and w.name and g.owner is not None:
            g.name = f"(d{cost.name}/d{w.name})"
        results.append(g)
    return results[0] if single else results


def verify_grad(fun, pt, n_tests=2, rng=None, eps=None, abs_tol=None, rel_tol=None, backend=None, mode=None):
    """Check the symbolic gradient of ``fun`` at the point ``pt`` (a list of arrays) against central
    finite differences, along random projections of the output. Raises GradientError on disagreement.
    """
    from .function import function
    from .shared import shared

    if not isinstance(rng, (np.random.Generator, np.random.RandomState)):
        rng = np.random.default_rng(rng)  # None or a seed
    # C order: the finite differences perturb each point through point.reshape(-1), which is a copy
    # (so the perturbation is lost) for a Fortran-ordered array such as a transposed one.
    points = [np.array(p, dtype=np.asarray(p).dtype if np.asarray(p).dtype.kind == "f" else config.floatX,
                       order="C") for p in pt]
    # The functions read the points through read-only views: the types that compiled backends specialize
    # on (numba: layout and writability) are then those of read-only C arrays, whatever the caller's
    # arrays were, and a function compiled for read-only arrays of the caller's serves here too.
    views = [p.view() for p in points]
    for view in views:
        view.setflags(write=False)
    inputs = [TensorType(p.dtype, (False,) * p.ndim)(f"input{i}") for i, p in enumerate(points)]
    output = as_tensor_variable(fun(*inputs))
    dtype = np.result_type(*[p.dtype for p in points], output.dtype).name if is_float(output.dtype) else config.floatX
    # a float32 anywhere (input or output) cannot resolve float64's step and tolerances
    low_precision = output.dtype == "float32" or any(p.dtype == np.float32 for p in points)
    eps = eps or (1e-3 if low_precision else 1e-6)
    abs_tol = abs_tol if abs_tol is not None else (1e-2 if low_precision else 1e-4)
    rel_tol = rel_tol if rel_tol is not None else (1e-2 if low_precision else 1e-4)

    # Two functions, not three: the finite differences project the output in NumPy (in float64, which
    # only lowers their rounding noise), so the output's function also serves them.
    out_fn = function(inputs, output, backend=backend, mode=mode)
    out_value = out_fn(*views)
    projection = shared(np.zeros(out_value.shape, dtype=output.dtype if is_float(output.dtype) else dtype),
                        name="random_projection")
    cost = ops.sum(output * projection)
    grad_fn = function(inputs, grad(cost, inputs, disconnected_inputs="ignore"), backend=backend, mode=mode)

    def cost_fn(*values):
        weights = projection.get_value(borrow=True)
        return np.sum(np.asarray(out_fn(*values), dtype="float64") * weights, dtype="float64")

    for _ in range(n_tests):
        projection.set_value(rng.uniform(-1, 1, size=out_value.shape).astype(projection.dtype), borrow=True)
        analytic = grad_fn(*views)
        for index, (point, symbolic) in enumerate(zip(points, analytic)):
            numeric = np.zeros(point.shape, dtype="float64")
            flat = point.reshape(-1)
            for k in range(flat.size):
                saved = flat[k]
                flat[k] = saved + eps
                up = float(cost_fn(*views))
                flat[k] = saved - eps
                down = float(cost_fn(*views))
                flat[k] = saved
                numeric.reshape(-1)[k] = (up - down) / (2 * eps)
            abs_err = np.abs(symbolic - numeric)
            rel_err = abs_err / np.maximum(np.abs(symbolic) + np.abs(numeric), 1e-8)
            bad = (abs_err > abs_tol) & (rel_err > rel_tol)
            if bad.any() or np.isnan(symbolic).any() != np.isnan(numeric).any():
                worst = np.unravel_index(np.argmax(np.where(bad, abs_err, -1)), point.shape)
                raise GradientError(
                    f"verify_grad: gradient of input {index} (shape {point.shape}) disagrees with finite "
                    f"differences at {tuple(int(i) for i in worst)}: symbolic {symbolic[worst]!r}, "
                    f"numeric {numeric[worst]!r} (abs error {abs_err[worst]:.3g} > {abs_tol}, "
                    f"rel error {rel_err[worst]:.3g} > {rel_tol})"
                )


def _as_list(value):
    return (list(value), False) if isinstance(value, (list, tuple)) else ([value], True)


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):
    """Vector-Jacobian product: ``eval_points`` (shaped like ``f``) times the Jacobian of ``f`` with
    respect to ``wrt``; ``f``/``eval_points`` and ``wrt`` may be variables or lists of them."""
    fs, _ = _as_list(f)
    points, _ = _as_list(eval_points)
    if len(fs) != len(points):
        raise ValueError(f"Lop: {len(fs)} expression(s) but {len(points)} evaluation point(s)")
    return grad(None, wrt, consider_constant=consider_constant, disconnected_inputs=disconnected_inputs,
                known_grads=dict(zip(fs, points)))


@built_without_test_values  # its dummies have no test values; its results get theirs
def Rop(f, wrt, eval_points, disconnected_outputs="raise"):
    """Jacobian-vector product: the Jacobian of ``f`` with respect to ``wrt`` times ``eval_points``
    (shaped like ``wrt``), computed as the transpose of an Lop (reverse mode applied twice)."""
    from .graph import clone_replace

    fs, single_f = _as_list(f)
    wrts, _ = _as_list(wrt)
    points, _ = _as_list(eval_points)
    if len(wrts) != len(points):
        raise ValueError(f"Rop: {len(wrts)} variable(s) but {len(points)} evaluation point(s)")
    points = [_conform(as_tensor_variable(p), w) for p, w in zip(points, wrts)]
    dummies = [f_.type(f"u{k}") if is_float(f_.dtype) else None for k, f_ in enumerate(fs)]
    pairs = [(f_, u) for f_, u in zip(fs, dummies) if u is not None]
    transposed = grad(None, wrts, disconnected_inputs="ignore", known_grads=dict(pairs))
    dot = _total([ops.sum(t * p) for t, p in zip(transposed, points)])
    # The results are linear in the dummies, so a dummy left in their graphs multiplies zero or only
    # gives a shape (through the gradient of a sum, the other f's dummies too): take every dummy = 0.
    zeros = {u: ops.zeros_like(f_) for f_, u in pairs}
    results = []
    for f_, u in zip(fs, dummies):
        if u is None:  # integer outputs do not move
            results.append(ops.zeros_like(f_, config.floatX))
            continue
        r = grad(dot, u, disconnected_inputs="ignore")
        results.append(clone_replace([r], zeros)[0])
    return results[0] if single_f else results


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Jacobian of ``expression`` with respect to ``wrt`` (a variable or a list): for each wrt an
    array of shape expression.shape + wrt.shape, computed by looping over the expression's elements."""
    from .ops import flatten, reshape, shape, shape_i
    from .scan import map_range

    expression = as_tensor_variable(expression)
    wrts, single = _as_list(wrt)
    if expression.ndim == 0:
        return grad(expression, wrt, consider_constant=consider_constant, disconnected_inputs=disconnected_inputs)
    flat = flatten(expression)
    rows = map_range(shape_i(flat, 0), lambda i: grad(
        flat[i], wrts, consider_constant=consider_constant, disconnected_inputs=disconnected_inputs))
    results = [reshape(r, ops.join(0, shape(expression), shape(w)), ndim=expression.ndim + w.ndim)
               for r, w in zip(rows, wrts)]
    return results[0] if single else results


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """The Hessian of the scalar ``cost`` with respect to ``wrt`` (a variable or a list): for each wrt
    an array of shape wrt.shape + wrt.shape."""
    wrts, single = _as_list(wrt)
    results = []
    for w in wrts:
        g = grad(cost, w, consider_constant=consider_constant, disconnected_inputs=disconnected_inputs)
        results.append(jacobian(g, w, consider_constant=consider_constant, disconnected_inputs="ignore"))
    return results[0] if single else results
