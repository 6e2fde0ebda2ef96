"""Profiling: where a compiled function spends its time (``function(..., profile=True)``).

A profiled call is timed three ways: the whole ``Function.__call__`` (argument checks, shared values,
output copies and updates included), the backend's executable alone, and each node inside it, as the
backend measures it (docs/profiling.md says how each built-in backend does). ``f.profile`` is a
``ProfileStats``; ``f.profile.summary()`` prints Theano's tables: time per op class, per op, per node.

A backend opts in through its ``compile(fgraph, profile=True)``: the executable it returns then has a
``profiled(inputs)`` method returning ``(outputs, seconds per node of fgraph.apply_nodes)``. A backend
that does not (a third-party one whose ``compile`` takes no ``profile``) still runs: its profile holds
the call totals only, and its summary says so. Only calls that return are counted: a call that raises
adds to ``failed_calls`` and nothing else, so a failure never leaves half a call in the tables.
"""

import atexit
import inspect
import sys
import threading
from collections import defaultdict
from time import perf_counter

import numpy as np

from .config import config
from .graph import Constant

_atexit_print_list = []  # the profiles made by function(), printed at exit when config.profile is set
_atexit_registered = []


class _Entry:
    """One function recorded into a profile: its name, nodes, backend, and the time of each node."""

    def __init__(self, name, fgraph, backend, per_node):
        self.name = name
        self.nodes = list(fgraph.apply_nodes)
        self.backend = backend
        self.per_node = per_node  # False: the backend records no per-node times
        self.times = np.zeros(len(self.nodes))
        self.timed_calls = 0


class ProfileStats:
    """The time a function's calls took, in total and per node. Theano's ``ProfileStats``: give one to
    ``function(..., profile=stats)`` to gather several functions into one profile.

    ``call_count`` (Theano: ``fct_callcount``), ``call_time`` (``fct_call_time``) and ``backend_time``
    (``vm_call_time``) count successful calls; ``apply_time`` and ``apply_callcount`` map each node to
    its seconds and calls; ``compile_time`` is the rewrites' and the backend's compile time."""

    def __init__(self, atexit_print=True, message=None):
        self.message = message
        self.call_count = 0
        self.call_time = 0.0
        self.backend_time = 0.0
        self.failed_calls = 0
        self.compile_time = 0.0
        self.entries = []
        self._lock = threading.Lock()
        if atexit_print:
            _atexit_print_list.append(self)
            if not _atexit_registered:
                atexit.register(_atexit_print)
                _atexit_registered.append(True)

    # Theano's names for the totals
    fct_callcount = property(lambda self: self.call_count)
    fct_call_time = property(lambda self: self.call_time)
    vm_call_time = property(lambda self: self.backend_time)

    def attach(self, name, fgraph, backend, per_node, compile_time=0.0):
        """Record the calls of a function compiled from ``fgraph`` here; returns its entry."""
        entry = _Entry(name, fgraph, backend, per_node)
        with self._lock:
            self.entries.append(entry)
            self.compile_time += compile_time
        return entry

    def record(self, entry, call_seconds, backend_seconds, node_seconds):
        """Add one successful call: its total time, the backend's part, and each node's (or None)."""
        with self._lock:
            self.call_count += 1
            self.call_time += call_seconds
            self.backend_time += backend_seconds
            if node_seconds is not None:
                entry.times += node_seconds
                entry.timed_calls += 1

    def record_failure(self):
        with self._lock:
            self.failed_calls += 1

    def reset(self):
        """Forget the calls recorded so far (after a warm-up call, say: numba compiles on first call)."""
        with self._lock:
            self.call_count, self.call_time, self.backend_time, self.failed_calls = 0, 0.0, 0.0, 0
            for entry in self.entries:
                entry.times[:] = 0
                entry.timed_calls = 0

    @property
    def per_node(self):
        """Whether every function of this profile has per-node times."""
        return bool(self.entries) and all(e.per_node for e in self.entries)

    @property
    def apply_time(self):
        return {node: float(t) for e in self.entries for node, t in zip(e.nodes, e.times)}

    @property
    def apply_callcount(self):
        return {node: e.timed_calls for e in self.entries for node in e.nodes}

    @property
    def node_time(self):
        """The seconds of all nodes together."""
        return float(sum(e.times.sum() for e in self.entries))

    @property
    def outside_time(self):
        """The seconds of the calls spent outside the backend (argument checks, output copies, updates)."""
        return self.call_time - self.backend_time

    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ---- the summary

    def summary(self, file=sys.stderr, n_ops_to_print=20, n_apply_to_print=20):
        """Print the totals and Theano's Class, Ops and Apply tables (the largest first) to ``file``."""
        file.write(self._summary_text(n_ops_to_print, n_apply_to_print))

    def _summary_text(self, n_ops_to_print, n_apply_to_print):
        lines = ["Function profiling", "=================="]
        names = ", ".join(repr(e.name) if e.name else "<unnamed>" for e in self.entries) or "none"
        lines.append(f"  Message: {self.message or ('functions ' if len(self.entries) > 1 else 'function ') + names}")
        backends = ", ".join(dict.fromkeys(e.backend for e in self.entries)) or "none"
        lines.append(f"  Backend: {backends}")
        calls, total = self.call_count, self.call_time

        def share(seconds):
            return f"{seconds:.3e}s ({100 * seconds / total if total else 0:.1f}% of the calls)"

        lines.append(f"  Time in {calls} calls to Function.__call__: {total:.3e}s")
        if calls:
            lines.append(f"  Time per call: {total / calls:.3e}s")
        lines.append(f"  Time in the backend's executable: {share(self.backend_time)}")
        if self.per_node:
            lines.append(f"  Time in nodes (the Apply table): {share(self.node_time)}")
            lines.append(f"  Time in the backend outside nodes: {share(self.backend_time - self.node_time)}")
        lines.append(f"  Time outside the backend (argument checks, output copies, updates): "
                     f"{share(self.outside_time)}")
        if self.failed_calls:
            lines.append(f"  Failed calls (not in these times): {self.failed_calls}")
        lines.append(f"  Compile time (rewrites and the backend's compile): {self.compile_time:.3e}s")
        untimed = [e for e in self.entries if not e.per_node]
        for entry in untimed:
            lines.append(f"  Backend {entry.backend!r} records no per-node times (its compile() takes no "
                         f"`profile` argument): only the call totals above are known"
                         + (f" for function {entry.name!r}" if len(self.entries) > 1 else "") + ".")
        timed = [e for e in self.entries if e.per_node]
        if not calls or not timed:
            if not calls:
                lines.append("  No call has returned yet: there are no times per node.")
            return "\n".join(lines) + "\n\n"
        nodes = [(e, k, node, float(e.times[k]), e.timed_calls) for e in timed for k, node in enumerate(e.nodes)]
        if any(type(node.op).__name__ in ("Scan", "IfElse") for _, _, node, _, _ in nodes):
            lines.append("  (a Scan or IfElse node's time includes the nodes of its inner graphs)")
        node_total = sum(t for _, _, _, t, _ in nodes)
        several = len(timed) > 1

        def by(key):
            groups = defaultdict(lambda: [0.0, 0, 0])
            for _, _, node, seconds, count in nodes:
                group = groups[key(node.op)]
                group[0] += seconds
                group[1] += count
                group[2] += 1
            return sorted(groups.items(), key=lambda item: -item[1][0])

        def table(title, header, rows, limit, kind):
            lines.extend(["", title, "-" * len(title), header])
            cumulative = 0.0
            for seconds, count, last, label in rows[:limit]:
                cumulative += seconds
                percent = 100 * seconds / node_total if node_total else 0.0
                running = 100 * cumulative / node_total if node_total else 0.0
                per_call = seconds / count if count else 0.0
                lines.append(f"  {percent:7.1f}% {running:6.1f}% {seconds:11.3e}s {per_call:14.3e}s "
                             f"{count:7d} {last:>8} {label}")
            if len(rows) > limit:
                rest = sum(r[0] for r in rows[limit:])
                share_rest = 100 * rest / node_total if node_total else 0.0
                lines.append(f"   ... (remaining {len(rows) - limit} {kind} account for {share_rest:.2f}% "
                             f"({rest:.3e}s) of the time in nodes)")

        columns = "  <% time> <sum %> <apply time> <time per call> <#call>"
        classes = by(lambda op: f"{type(op).__module__}.{type(op).__qualname__}")
        table("Class", columns + " <#apply> <Class name>",
              [(s, c, n, name) for name, (s, c, n) in classes], n_ops_to_print, "classes")
        ops = by(lambda op: op)
        table("Ops", columns + " <#apply> <Op name>",
              [(s, c, n, str(op)) for op, (s, c, n) in ops], n_ops_to_print, "ops")
        applies = sorted(nodes, key=lambda item: -item[3])
        table("Apply", columns + "     <id> <Apply name>",
              [(seconds, count, f"{entry.name or '?'}:{k}" if several else str(k), node_text(node, entry.nodes))
               for entry, k, node, seconds, count in applies], n_apply_to_print, "nodes")
        lines.append("")
        return "\n".join(lines) + "\n\n"


def node_text(node, nodes):
    """A node as the Apply table shows it: its op, as debugprint prints it, applied to its inputs,
    each named by its name, by ``#k`` (an output of node k, ``#k.i`` for its output i), or its value."""
    position = {n: k for k, n in enumerate(nodes)}

    def argument(var):
        if var.owner is not None and var.owner in position:
            k = position[var.owner]
            return f"#{k}.{var.index}" if len(var.owner.outputs) > 1 else f"#{k}"
        if var.name:
            return var.name
        if isinstance(var, Constant):
            text = repr(var)
            return text if len(text) <= 24 else text[:21] + "..."
        return f"<{var.type}>"

    named = [repr(out.name) for out in node.outputs if out.name]
    return f"{node.op}({', '.join(map(argument, node.inputs))})" + (f" {', '.join(named)}" if named else "")


def accepts_profile(compile_method):
    """Whether a backend's ``compile`` takes the ``profile`` keyword (third-party ones may not)."""
    try:
        parameters = inspect.signature(compile_method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "profile" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


class TimedExecutable:
    """A backend's executable, timed: each call keeps (seconds in the executable, seconds per node or
    None) for the calling thread, where ``ProfiledFunction`` reads them once the call has returned."""

    def __init__(self, executable):
        self.executable = executable
        self.profiled = getattr(executable, "profiled", None)
        self.per_node = callable(self.profiled)
        self.source = getattr(executable, "source", None)
        self.fgraph = getattr(executable, "fgraph", None)
        self._last = threading.local()

    def __call__(self, inputs):
        start = perf_counter()
        if self.per_node:
            results, node_seconds = self.profiled(inputs)
        else:
            results, node_seconds = self.executable(inputs), None
        self._last.value = (perf_counter() - start, node_seconds)
        return results

    def take(self):
        """The times of this thread's last call (read once)."""
        value = self._last.value
        self._last.value = None
        return value


def compile_timed(backend, fgraph):
    """The backend's executable for ``fgraph`` with per-node timers where the backend offers them."""
    if accepts_profile(backend.compile):
        return TimedExecutable(backend.compile(fgraph, profile=True))
    return TimedExecutable(backend.compile(fgraph))


def stats_for(profile, name):
    """The ProfileStats a function records into, from function()'s ``profile`` argument (None, a bool, a
    message string, or a ProfileStats), or config.profile when it is None; None: no profiling."""
    if profile is None:
        profile = getattr(config, "profile", False)
    if isinstance(profile, ProfileStats):
        return profile
    if isinstance(profile, str):
        return ProfileStats(message=profile)
    if profile is True or profile is False or isinstance(profile, (int, np.bool_)):
        return ProfileStats(message=name) if profile else None
    raise TypeError(f"function(profile=...) takes True, False, a message string or a ProfileStats, got {profile!r}")


def _theano_flag(name, default):
    """Theano's ``config.profiling.<name>`` when a program set it, else ``default``."""
    try:
        return getattr(config.profiling, name)
    except AttributeError:
        return default


def _atexit_print():
    """Theano's behaviour: with config.profile set, every profile that has calls is printed at exit
    (to ``config.profiling.destination``: stderr, stdout or a file name), then their sum when there
    are several."""
    if not getattr(config, "profile", False):
        return
    printed = [p for p in _atexit_print_list if p.call_count or p.compile_time > 1]
    if not printed:
        return
    destination = str(_theano_flag("destination", "stderr"))
    counts = dict(n_ops_to_print=int(_theano_flag("n_ops", 20)), n_apply_to_print=int(_theano_flag("n_apply", 20)))
    file = {"stderr": sys.stderr, "stdout": sys.stdout}.get(destination) or open(destination, "w")
    try:
        for stats in printed:
            stats.summary(file=file, **counts)
        if len(printed) > 1:
            total = ProfileStats(atexit_print=False, message=f"Sum of all ({len(printed)}) printed profiles at exit")
            for stats in printed:
                for name in ("call_count", "call_time", "backend_time", "failed_calls", "compile_time"):
                    setattr(total, name, getattr(total, name) + getattr(stats, name))
                total.entries += stats.entries
            total.summary(file=file, **counts)
    finally:
        if file not in (sys.stderr, sys.stdout):
            file.close()
