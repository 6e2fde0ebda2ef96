"""Test values (Theano's ``compute_test_value``): ops evaluated on example values as the graph is built.

``x.tag.test_value = value`` gives a variable an example value, converted to its type as a function's
inputs are (``TensorType.filter``: a float64 array for a float32 variable is refused). Shared variables
and constants always have one: their value. With ``config.compute_test_value`` other than ``'off'``,
``Op.__call__`` hands each new node to ``compute_test_values``: when every input has a test value, the
reference backend computes the node's outputs, which become their test values, so a shape error is
raised at the line that builds the bad node. When an input has none, the setting decides:

=========  =========================================================================================
off        nothing is computed (the default; ``Op.__call__`` then checks this one attribute only)
ignore     the node is skipped silently
warn       a warning, pointing at the user's line; the node is skipped
raise      ValueError naming the node and the input
pdb        as raise, after a post-mortem debugger on the error (an op's failure included)
=========  =========================================================================================

An error while computing is raised whatever the setting. Only a root variable (no owner) is reported
missing: an output without a value comes from a node that was skipped, or built by arignote's own
machinery (``make_node`` directly, ``clone_replace``), and is skipped silently. Inputs of a
FunctionGraph (``graph_input``) have values only when it runs: rewrites and backends never see a test
value and never fail because of one, as Theano turns test values off while it optimizes.
"""

import functools
import sys
import warnings
from contextlib import contextmanager

from .config import config
from .graph import Constant, Variable, _is_internal, as_tensor_variable, toposort
from .shared import SharedVariable


class Tag:
    """Theano's ``var.tag``: a scratchpad for notes on a variable. Setting ``tag.test_value`` converts
    the value to the variable's type, or raises TypeError naming the variable."""

    def __init__(self, variable):
        object.__setattr__(self, "_variable", variable)

    def __setattr__(self, name, value):
        if name == "test_value":
            value = _checked(self._variable, value)
        object.__setattr__(self, name, value)

    def __repr__(self):
        notes = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "_variable")
        return f"Tag({notes})"


def _checked(var, value):
    if isinstance(value, Variable):
        raise TypeError(f"the test value of {var.describe()} must be an array, not the symbolic {value!r}")
    convert = getattr(var.type, "filter", None)
    return convert(value, what=f"test value of {var.describe()}") if convert else value


def test_value_of(var):
    """The test value of ``var``, or None: a constant's data, a shared variable's value (now), or
    ``var.tag.test_value``."""
    if isinstance(var, Constant):
        return var.data
    if isinstance(var, SharedVariable):
        return var.get_value(borrow=True)
    tag = var.__dict__.get("_tag")
    return getattr(tag, "test_value", None)


def get_test_value(v):
    """Theano's ``theano.gof.op.get_test_value``: the test value of ``v`` (a number or an array is a
    constant); AttributeError when it has none."""
    var = v if isinstance(v, Variable) else as_tensor_variable(v)
    value = _value_or_filled(var)
    if value is None:
        raise AttributeError(f"{var.describe()} has no test value; give it one with `var.tag.test_value = ...`")
    return value


def get_debug_values(*variables):
    """Theano's ``get_debug_values``: ``[]`` when test values are off; else one entry, the test value
    (one variable) or a tuple of them. A variable without one is reported as the setting says
    (AttributeError under 'raise'), then ``[]``."""
    mode = config.compute_test_value
    if mode == "off":
        return []
    values = []
    for position, var in enumerate(variables):
        try:
            values.append(get_test_value(var))
        except AttributeError as error:
            if mode in ("raise", "pdb"):
                raise AttributeError(f"argument {position}: {error}") from None
            if mode == "warn":
                warnings.warn(f"argument {position}: {error}", stacklevel=_user_stacklevel())
            return []
    return values if len(values) == 1 else [tuple(values)]


def compute_test_values(node):
    """Give ``node``'s outputs test values computed from its inputs' (called by ``Op.__call__`` when
    config.compute_test_value is not 'off')."""
    mode = config.compute_test_value
    values = []
    for position, var in enumerate(node.inputs):
        value = _value_or_filled(var)
        if value is None:
            node.without_test_values = True  # fill_test_values does not try it again
            if var.owner is None and not getattr(var, "graph_input", False):
                _report(mode, ValueError(
                    f"cannot compute the test value of {_describe_node(node)}: its input {position}, "
                    f"{var.describe()}, has no test value; give it one with `var.tag.test_value = ...`"))
            return
        values.append(value)
    _store(node, _evaluate(node, values, mode))


def _value_or_filled(var):
    """The test value of ``var``; for an output of a node built without test values (by ``make_node``,
    by a rewrite such as grad's stabilization, or while they were off), computed now from its
    ancestors' when they have theirs."""
    value = test_value_of(var)
    if value is None and var.owner is not None and not getattr(var.owner, "without_test_values", False):
        fill_test_values([var])
        value = test_value_of(var)
    return value


def _evaluate(node, values, mode):
    from .errors import UnsupportedOpError
    from .plugins import registry

    for positions in node.op.destroy_map.values():  # an op that writes into an input gets a copy
        for p in positions:
            values[p] = values[p].copy()
    try:
        return registry.get("reference").evaluate_node(node, values)
    except UnsupportedOpError as error:
        node.without_test_values = True
        _report(mode, ValueError(f"cannot compute the test value of {_describe_node(node)}: {error}"))
        return None
    except Exception as error:
        origins = "".join(f"\n  input {k}: {v.describe()}" for k, v in enumerate(node.inputs))
        failure = _rewrapped(error, f"computing test values: {error}{origins}")
        if mode == "pdb":
            _post_mortem(error.__cause__ or error)  # where the op's implementation failed
        raise failure from error.__cause__ or error


def _store(node, results):
    if results is not None:
        for var, value in zip(node.outputs, results):
            var.tag.test_value = value


def _describe_node(node):
    from .errors import describe_node

    return describe_node(node)


def _rewrapped(error, message):
    try:
        return type(error)(message)
    except Exception:
        return RuntimeError(message)


def _report(mode, error):
    """A missing test value, as the setting says: raised, warned about, or ignored."""
    if mode in ("raise", "pdb"):
        if mode == "pdb":
            _post_mortem(error)
        raise error
    if mode == "warn":
        warnings.warn(str(error), stacklevel=_user_stacklevel())


def _post_mortem(error):
    import pdb

    if error.__traceback__ is None:  # made here, never raised: raise it to have a traceback
        try:
            raise error
        except type(error):
            pass
    pdb.post_mortem(error.__traceback__)


def _user_stacklevel():
    """The ``stacklevel`` that makes a warning point at the user's line (the first frame outside
    arignote) rather than at arignote's code."""
    frame, level = sys._getframe(1), 1
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level


# ---------------------------------------------------------------------------------------------------
# Machinery that builds graphs of its own: loops' step functions, gradients of loops, compilation


@contextmanager
def test_values_off():
    """Build without test values (Theano's ``change_flags(compute_test_value='off')``)."""
    saved = config.compute_test_value
    config.compute_test_value = "off"
    try:
        yield
    finally:
        config.compute_test_value = saved


def built_without_test_values(build):
    """Decorator for machinery that builds on placeholders of its own, which have no test values (the
    backward step of a loop, the dummies of an Rop): ``build`` runs with test values off, then the outer
    nodes it made get theirs from their inputs' (Theano copies test values onto its placeholders)."""

    @functools.wraps(build)
    def building(*args, **kwargs):
        if config.compute_test_value == "off":
            return build(*args, **kwargs)
        with test_values_off():
            result = build(*args, **kwargs)
        fill_test_values(result if isinstance(result, (list, tuple)) else [result])
        return result

    return building


def fill_test_values(outputs):
    """Compute the test values that the nodes above ``outputs`` (None entries ignored) lack, where
    every input of a node has one; the others stay without (nothing is reported)."""
    wanted = [v for v in outputs if isinstance(v, Variable)]
    stop, seen, stack = [], set(), list(wanted)
    while stack:  # stop where values are known: the user's graph above was computed as it was built
        var = stack.pop()
        if id(var) in seen:
            continue
        seen.add(id(var))
        if var.owner is None or test_value_of(var) is not None or getattr(var.owner, "without_test_values", False):
            stop.append(var)
        else:
            stack.extend(var.owner.inputs)
    mode = config.compute_test_value
    for node in toposort(wanted, stop=stop):
        values = [test_value_of(v) for v in node.inputs]
        if all(v is not None for v in values):
            _store(node, _evaluate(node, values, mode))
        else:
            node.without_test_values = True


def give_first_step_values(rows):
    """Theano's rule for a step function's symbolic inputs: ``rows`` are (inner variable, outer
    variable, row) triples, and each inner variable gets that row of its outer variable's test value
    (what the first step reads), so that the step's ops compute test values as it is built."""
    if config.compute_test_value == "off":
        return
    for inner, outer, row in rows:
        value = test_value_of(outer)
        if value is not None and value.shape[0] > row:
            inner.tag.test_value = value[row]
