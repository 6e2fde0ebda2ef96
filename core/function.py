"""``function``: the contract between the user's graph and a backend.

Core clones the graph with ``givens``, turns shared variables into implicit inputs and update
expressions into extra outputs, and hands the backend a pure FunctionGraph (arrays in, arrays out).
The compiled Function validates inputs, runs the backend's executable, and writes updates into shared
storage only after every output is computed, so a call that raises changes nothing.
"""

import warnings
from time import perf_counter

import numpy as np

from .config import config
from .crosscheck import CrossChecked
from .errors import UnsupportedOpError
from .graph import Constant, FunctionGraph, TensorVariable, Variable, ancestors, as_tensor_variable, \
    clone_replace, graph_inputs
from .plugins import registry
from .plan import plan_of
from .profile import compile_timed, stats_for
from .rewrite import rewrite
from .shared import SharedVariable
from .types import TensorType, is_float

_NO_VALUE = object()

# Theano's mode names, mapped to backends (None: the default backend).
THEANO_MODES = {"FAST_RUN": None, "FAST_COMPILE": "reference", "DebugMode": "reference",
                "DEBUG_MODE": "reference"}


class UnusedInputError(ValueError):
    """An explicit input of function() is not used to compute any output or update."""


class In:
    """An input with options: ``name`` for keyword calls, ``value`` as its default."""

    def __init__(self, variable, name=None, value=None, strict=False, allow_downcast=None,
                 borrow=False, mutable=False):
        if not isinstance(variable, TensorVariable):
            raise TypeError(f"In() takes a symbolic variable, got {type(variable).__name__}")
        self.variable = variable
        self.name = name if name is not None else variable.name
        self.value = _NO_VALUE if value is None else value
        self.strict = strict
        self.allow_downcast = allow_downcast
        self.borrow = borrow
        self.mutable = mutable  # accepted for Theano programs; arignote never overwrites an input

    def __repr__(self):
        return f"In({self.variable!r})"


class Out:
    """An output with options: ``borrow=True`` allows returning shared storage without a copy."""

    def __init__(self, variable, borrow=False):
        self.variable = as_tensor_variable(variable)
        self.borrow = borrow


def _normalize_outputs(outputs):
    """([Out...], how to return them: 'none', 'single' or 'list')."""
    if outputs is None:
        return [], "none"
    if isinstance(outputs, (list, tuple)):
        return [o if isinstance(o, Out) else Out(o) for o in outputs], "list"
    return [outputs if isinstance(outputs, Out) else Out(outputs)], "single"


def _normalize_updates(updates):
    """Updates as an ordered list of (shared variable, expression), from any of Theano's spellings."""
    if updates is None:
        return []
    # dicts (OrderedDict or not) keep insertion order
    pairs = list(updates.items()) if isinstance(updates, dict) else [tuple(pair) for pair in updates]
    result, seen = [], set()
    for pair in pairs:
        if len(pair) != 2:
            raise TypeError(f"updates: each update must be a (shared variable, expression) pair, got {pair!r}")
        target, expression = pair
        if not isinstance(target, SharedVariable):
            raise TypeError(f"updates: {target!r} is not a shared variable; only shared variables can be updated")
        if target in seen:
            raise ValueError(f"updates: shared variable {target!r} is updated twice")
        seen.add(target)
        result.append((target, _coerce_to(expression, target, "update for shared variable")))
    return result


def _coerce_to(expression, target, what):
    """``expression`` as a tensor of ``target``'s type, or TypeError naming both types."""
    expression = as_tensor_variable(expression)
    if isinstance(expression, Constant) and expression.weak and expression.ndim == target.ndim:
        # A bare Python number takes the target's dtype only when its value survives the conversion
        # (as for inputs): 1.5 must not silently become 1 in an int update, nor 300 wrap to 44 in int8.
        with np.errstate(all="ignore"):
            data = expression.data.astype(target.dtype)
        if is_float(target.dtype) or np.array_equal(data, expression.data):
            expression = Constant(TensorType(target.dtype, expression.broadcastable), data)
    compatible = (
        expression.dtype == target.dtype
        and expression.ndim == target.ndim
        and all(eb or not tb for eb, tb in zip(expression.broadcastable, target.broadcastable))
    )
    if not compatible:
        raise TypeError(
            f"{what} {target!r} ({target.type}) has type {expression.type}; they must match "
            f"(cast it with T.cast(..., {target.dtype!r}) or fix the graph)"
        )
    return expression


def _normalize_givens(givens):
    if givens is None:
        return {}
    pairs = givens.items() if isinstance(givens, dict) else [tuple(p) for p in givens]
    result = {}
    for key, value in pairs:
        if not isinstance(key, Variable) or isinstance(key, Constant):
            raise TypeError(f"givens: keys must be symbolic variables, got {key!r}")
        result[key] = _coerce_to(value, key, "givens: replacement for")
    return result


def _backend_name(backend, mode):
    if backend is not None:
        return backend
    if mode is None or isinstance(mode, str) and mode in THEANO_MODES:
        return THEANO_MODES.get(mode)
    if isinstance(mode, str):
        return mode
    raise TypeError(f"mode must be a backend name or one of Theano's mode names, got {mode!r}")


class FunctionMaker:
    """What was compiled: the explicit inputs (In), outputs (Out) and the FunctionGraph."""

    def __init__(self, inputs, outputs, fgraph, backend):
        self.inputs = inputs
        self.outputs = outputs
        self.fgraph = fgraph
        self.backend = backend

    def __getstate__(self):
        state = dict(self.__dict__)
        state["backend"] = self.backend.name  # a backend is found again by name when loaded
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.backend = registry.get(state["backend"])


class Function:
    """A compiled function. Call it with the inputs' values, positionally or by name."""

    profile = None  # a ProfiledFunction's ProfileStats (function(..., profile=True))
    # no update computed in place: also what a function pickled before updates in place existed had
    _in_place, _checked_shared, _discard_in_place = (), (), False

    def __init__(self, maker, executable, shared_inputs, update_targets, return_style, name,
                 allow_input_downcast):
        self.maker = maker
        self.name = name
        self._executable = executable
        self._shared_inputs = list(shared_inputs)
        self._update_targets = list(update_targets)
        self._return_style = return_style
        self._allow_input_downcast = allow_input_downcast
        self._ins = maker.inputs
        self._types = [i.variable.type for i in self._ins]
        self._dtypes = [np.dtype(t.dtype) for t in self._types]
        self._positions = {i.name: k for k, i in enumerate(self._ins) if i.name}
        self._n_outputs = len(maker.outputs)
        self._copy_output, self._copy_update = self._plan_copies()
        # the inputs whose storage the plan computes an update in (core/plan.py), and the shared
        # values last found to overlap no other shared value (kept, so that their ids stay theirs)
        in_place = plan_of(maker.fgraph).updates_in_place
        self._in_place = sorted(in_place.values())
        self._checked_shared = ()
        self._discard_in_place = False
        # what a positional call checks per input before trusting it (see __call__)
        self._trusted = [(dtype, t.ndim, not any(t.broadcastable)) for dtype, t in zip(self._dtypes, self._types)]
        self._single = return_style == "single"
        self._fast = self._fast_entry()

    def _fast_entry(self):
        """The executable's ``fast(values)`` when a call needs nothing from core but the backend's check
        of its inputs: no updates and no result to copy. ``fast`` takes the tuple of every input's value
        (the explicit ones as the caller passed them, then the shared ones) and returns the list of
        outputs, fresh writable arrays, or None when an input is not exactly an ndarray of its type (dtype,
        rank, length 1 on its broadcastable axes) or not laid out as it takes it; core then checks and
        converts the inputs as usual (its errors) and calls the executable (docs/functions.md)."""
        fast = getattr(self._executable, "fast", None)
        return fast if not self._update_targets and not any(self._copy_output) else None

    def _plan_copies(self):
        """Which results must be copied so that no returned array, and no new shared value, aliases a
        caller's array, shared storage, a constant, or another result."""
        fgraph = self.maker.fgraph
        n_explicit = len(self._ins)
        shared_roots = set(map(id, fgraph.inputs[n_explicit:]))
        outside = set(map(id, fgraph.inputs))
        claimed = set()
        copy_output, copy_update = [], []
        plan = plan_of(fgraph)
        for position, var in enumerate(fgraph.outputs):
            root = plan.root(var)
            is_output = position < self._n_outputs
            borrow = is_output and self.maker.outputs[position].borrow
            # an update computed in its shared variable's storage is that variable's own value
            risky = position not in plan.updates_in_place and (id(root) in claimed or isinstance(root, Constant) or (
                id(root) in outside and not (borrow and id(root) in shared_roots)))
            (copy_output if is_output else copy_update).append(risky)
            claimed.add(id(root))
        return copy_output, copy_update

    @property
    def backend(self):
        return self.maker.backend

    @property
    def backend_source(self):
        """The code the backend generated for this function (None if it keeps none)."""
        return getattr(self._executable, "source", None)

    def _what(self, position):
        label = self._ins[position].name or f"#{position}"
        owner = f"function {self.name!r}" if self.name else "function"
        return f"input {label} of {owner}"

    def _arguments(self, args, kwargs):
        count = len(self._ins)
        if len(args) > count:
            raise TypeError(f"{self._describe()} takes {count} input(s), got {len(args)}")
        values = list(args) + [_NO_VALUE] * (count - len(args))
        for key, value in kwargs.items():
            position = self._positions.get(key)
            if position is None:
                raise TypeError(f"{self._describe()} has no input named {key!r} "
                                f"(named inputs: {', '.join(self._positions) or 'none'})")
            if position < len(args):
                raise TypeError(f"{self._describe()} got two values for input {key!r}")
            values[position] = value
        return [self._argument(position, value) for position, value in enumerate(values)]

    def _argument(self, position, value):
        """The value of input ``position`` as an array of its type (its default when not given)."""
        spec = self._ins[position]
        if value is _NO_VALUE:
            value = spec.value
            if value is _NO_VALUE:
                raise TypeError(f"{self._what(position)} is missing (expected {self._types[position]})")
        dtype, ndim, plain = self._trusted[position]
        if type(value) is np.ndarray and value.dtype is dtype and value.ndim == ndim and plain:
            return value  # the common case, checked cheaply
        if spec.strict and not (isinstance(value, np.ndarray) and value.dtype == dtype):
            raise TypeError(f"{self._what(position)} is strict: expected {self._types[position]}, "
                            f"got {type(value).__name__}")
        if ndim == 0 and type(value) is dtype.type:  # a NumPy scalar of the exact type
            return np.asarray(value)
        allow = spec.allow_downcast if spec.allow_downcast is not None else self._allow_input_downcast
        return self._types[position].filter(value, bool(allow), self._what(position))

    def _describe(self):
        return f"function {self.name!r}" if self.name else "this function"

    def _own_storage(self, values):
        """Makes each input an update is computed in (``self._in_place``) C-contiguous, writeable,
        aligned, in native byte order and overlapping no other input, by a copy of it where it is not
        (the update then lands in that copy, which becomes the shared variable's value): the
        backends write there without looking. Shared values rarely change between calls once updates
        are in place, so those found apart are remembered and only the explicit inputs checked again."""
        n_explicit = len(self._ins)
        if self._discard_in_place:  # a copy(delete_updates=True): the updates land in scratch copies
            for i in self._in_place:
                values[i] = values[i].copy()
            return
        shared = tuple(values[n_explicit:])
        recheck = len(shared) != len(self._checked_shared) or any(
            a is not b for a, b in zip(shared, self._checked_shared))
        for i in self._in_place:
            value = values[i]
            flags = value.flags
            others = range(len(values)) if recheck else range(n_explicit)
            if not (flags.c_contiguous and flags.writeable and flags.aligned and value.dtype.isnative) or any(
                    k != i and np.may_share_memory(value, values[k]) for k in others):
                values[i] = np.array(value, order="C")
                recheck = True
        self._checked_shared = tuple(values[n_explicit:]) if recheck else shared

    def __call__(self, *args, **kwargs):
        fast = self._fast  # the backend checks the inputs of the common call itself (_fast_entry)
        if fast is not None and not kwargs and len(args) == len(self._ins):
            shared = self._shared_inputs
            results = fast(args + tuple([s._value for s in shared]) if shared else args)
            if results is not None:
                return results[0] if self._single else results
        # The common call, positional arrays of exactly the declared dtype and rank, is checked inline:
        # a call costs a few microseconds, and this is most of what core adds to the backend's time.
        if kwargs or len(args) != len(self._trusted):
            values = self._arguments(args, kwargs)
        else:
            values = list(args)
            for k, (value, (dtype, ndim, plain)) in enumerate(zip(args, self._trusted)):
                if type(value) is not np.ndarray or value.dtype is not dtype or value.ndim != ndim or not plain:
                    values[k] = self._argument(k, value)
        shared = self._shared_inputs
        if shared:
            values += [s._value for s in shared]
            if self._in_place:
                self._own_storage(values)
        results = self._executable(values)
        n_outputs = self._n_outputs
        # results is the executable's own new list; a tuple is copied before outputs are replaced in it
        outputs = results if type(results) is list and not self._update_targets else list(results[:n_outputs])
        for k, copy in enumerate(self._copy_output):
            if copy or not outputs[k].flags.writeable:
                outputs[k] = outputs[k].copy()
        if self._update_targets:
            for target, value, copy in zip(self._update_targets, results[n_outputs:], self._copy_update):
                target._value = value.copy() if copy else value
        if self._return_style == "single":
            return outputs[0]
        return list(outputs)

    def copy(self, share_memory=False, swap=None, delete_updates=False, name=None):
        """A copy of this function; ``swap`` ({old shared: new shared}) makes it read and update other
        shared variables of the same types; ``delete_updates`` drops its updates."""
        swap = dict(swap or {})
        for old, new in swap.items():
            if not isinstance(new, SharedVariable) or new.type != old.type:
                raise TypeError(f"copy(swap=): {new!r} must be a shared variable of type {old.type}")
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.name = name or self.name
        if self.profile is not None:  # a copy records its calls into a profile of its own
            other._attach_profile(stats_for(True, other.name), 0.0)
        other._shared_inputs = [swap.get(s, s) for s in self._shared_inputs]
        other._update_targets = [] if delete_updates else [swap.get(s, s) for s in self._update_targets]
        # the program still computes the updates in place: without updates, into copies it drops
        other._discard_in_place = delete_updates and bool(self._in_place)
        return other

    def __getstate__(self):
        """Pickling keeps the rewritten graph, the shared variables and the backend's name; the
        backend compiles the graph again when the function is loaded (from its cache, if it has one)."""
        state = dict(self.__dict__)
        state["_executable"] = isinstance(self._executable, CrossChecked)  # only whether it was checked
        state.pop("_fast", None)  # the executable's, found again with it
        state["_checked_shared"] = ()
        return state

    def __setstate__(self, state):
        checked = state.pop("_executable")
        self.__dict__.update(state)
        if self.profile is not None:
            executable = compile_timed(self.maker.backend, self.maker.fgraph)
        else:
            executable = self.maker.backend.compile(self.maker.fgraph)
        if checked:
            executable = CrossChecked(executable, self.maker.backend, self.maker.fgraph, self._n_outputs)
        self._executable = executable
        self._fast = self._fast_entry()

    def __repr__(self):
        return f"<Function {self.name or ''} on {self.backend.name}>"


def function(inputs, outputs=None, mode=None, updates=None, givens=None, no_default_updates=False,
             name=None, allow_input_downcast=None, on_unused_input=None, backend=None, check=None,
             profile=None):
    """Compile a callable from ``inputs`` to ``outputs`` that also applies ``updates`` to shared
    variables, with ``givens`` substituted into the graph first (see the README for the contract).
    ``check=True`` (default: ARIGNOTE_CHECK) also runs every call on the reference backend and raises
    CrossCheckError, naming the first graph node that differs, when the results disagree.
    ``profile=True`` (default: config.profile; or a message, or a ProfileStats to share) times every
    call and each node in it: ``f.profile.summary()`` (docs/profiling.md)."""
    stats = stats_for(profile, name)
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("function(): inputs must be a list, even for a single input (use [] for none)")
    on_unused_input = on_unused_input or config.on_unused_input
    if on_unused_input not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_unused_input must be 'raise', 'warn' or 'ignore', got {on_unused_input!r}")
    ins = [i if isinstance(i, In) else In(i) for i in inputs]
    seen = set()
    for spec in ins:
        var = spec.variable
        if isinstance(var, SharedVariable):
            raise TypeError(f"shared variable {var!r} cannot be an explicit input; it is an implicit "
                            "input of every function that uses it (use givens= to substitute it)")
        if isinstance(var, Constant):
            raise TypeError(f"constant {var!r} cannot be an input")
        if var.owner is not None:
            raise TypeError(f"{var.describe()} is computed by the graph and cannot be an input; "
                            "use givens= to replace it")
        if var in seen:
            raise ValueError(f"input {var!r} is given twice")
        seen.add(var)
    outs, return_style = _normalize_outputs(outputs)
    update_pairs = _normalize_updates(updates)
    givens = _normalize_givens(givens)
    for key in givens:
        if key in seen:
            raise ValueError(f"givens: {key!r} is an input of the function; it cannot also be replaced")
    _add_default_updates(update_pairs, [o.variable for o in outs], no_default_updates)

    expressions = [o.variable for o in outs] + [e for _, e in update_pairs]
    expressions = clone_replace(expressions, givens) if givens else expressions
    explicit = [i.variable for i in ins]
    used = set(map(id, ancestors(expressions)))
    for spec in ins:
        if id(spec.variable) not in used:
            message = (f"input {spec.variable.describe()} is not used to compute any output or update; "
                       "pass on_unused_input='ignore' (or 'warn') to allow this")
            if on_unused_input == "raise":
                raise UnusedInputError(message)
            if on_unused_input == "warn":
                warnings.warn(message, stacklevel=2)
    shared_inputs = [v for v in graph_inputs(expressions) if isinstance(v, SharedVariable) and v not in seen]
    fgraph = FunctionGraph(explicit + shared_inputs, expressions)
    # which input each update overwrites: the plan may compute some in that storage (core/plan.py)
    fgraph.update_targets = {len(outs) + k: len(explicit) + shared_inputs.index(target)
                             for k, (target, _) in enumerate(update_pairs) if target in shared_inputs}

    backend_object = registry.get(_backend_name(backend, mode))
    started = perf_counter()
    rewrite(fgraph, backend_object)
    try:
        executable = compile_timed(backend_object, fgraph) if stats else backend_object.compile(fgraph)
    except UnsupportedOpError as error:
        raise UnsupportedOpError(f"backend {backend_object.name!r} cannot compile this function: {error}") from None
    if (config.check if check is None else check) and backend_object.name != "reference":
        executable = CrossChecked(executable, backend_object, fgraph, len(outs))
    maker = FunctionMaker(ins, outs, fgraph, backend_object)
    made = Function if stats is None else ProfiledFunction
    made = made(maker, executable, shared_inputs, [t for t, _ in update_pairs], return_style, name,
                allow_input_downcast)
    if stats is not None:
        made._attach_profile(stats, perf_counter() - started)
    return made


class ProfiledFunction(Function):
    """A Function that times each call, its backend's part and each node into ``self.profile``
    (core/profile.py). Only calls that return are recorded; a call that raises counts as failed."""

    def _attach_profile(self, stats, compile_time):
        executable = self._executable
        # the timer sits inside the cross-check, whose reference run is time outside the backend
        self._timer = executable.executable if isinstance(executable, CrossChecked) else executable
        self.profile = stats
        self._profile_entry = stats.attach(self.name, self.maker.fgraph, self.backend.name,
                                           self._timer.per_node, compile_time)

    def __call__(self, *args, **kwargs):
        start = perf_counter()
        try:
            result = Function.__call__(self, *args, **kwargs)
        except BaseException:
            self.profile.record_failure()
            raise
        elapsed = perf_counter() - start
        backend_seconds, node_seconds = self._timer.take()
        self.profile.record(self._profile_entry, elapsed, backend_seconds, node_seconds)
        return result

    def __getstate__(self):
        state = Function.__getstate__(self)
        del state["_timer"]  # made again, with the executable, when loaded
        return state

    def __setstate__(self, state):
        Function.__setstate__(self, state)
        executable = self._executable
        self._timer = executable.executable if isinstance(executable, CrossChecked) else executable


def _add_default_updates(update_pairs, outputs, no_default_updates):
    """Append the default updates of shared variables the graph uses and nobody updates explicitly."""
    if no_default_updates is True:
        return
    frozen = set(no_default_updates or [])
    while True:
        updated = {t for t, _ in update_pairs}
        pending = [v for v in graph_inputs(outputs + [e for _, e in update_pairs])
                   if isinstance(v, SharedVariable) and v.default_update is not None
                   and v not in updated and v not in frozen]
        if not pending:
            return
        for var in pending:
            update_pairs.append((var, _coerce_to(var.default_update, var, "default update for shared variable")))
