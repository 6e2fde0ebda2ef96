"""A fuzzing campaign: N graphs on one backend, each failure shrunk to a short reproducer.

Graph ``i`` of a run is drawn from its own seed (graph_seed), with uniform choices: every op and every
awkward option is as likely in the first graph as in the thousandth. A graph that fails is handed to
Hypothesis, which shrinks it: it tries simpler choices (fewer steps, plainer layouts and values, 0 being
the plain option of every choice) and keeps those that fail the same way, for at most
``shrink_seconds``. A later graph that fails the same way as a bug already found (the same kind, the same
exceptions, a common suspect op) is counted as a repeat of it rather than shrunk again. (Hypothesis does
not draw the graphs itself: its generator favours the simplest choices; of 300 graphs it drew, half
repeated others and a third of the ops never appeared.)

With ``isolate`` (the command's default) every graph runs in a worker process: a backend that crashes
(a segmentation fault) or hangs costs the worker, which is started again, and is reported as a failure
of the graph that did it, with its reproducer.
"""

import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field

from .graphs import MAX_STEPS, Choices, draw_graph, graph_strategy
from .oracle import Verdict, check_graph
from .reproducer import program

STATUSES = ("pass", "raised", "unspecified", "drift", "unsupported", "fail")


@dataclass
class Failure:
    verdict: Verdict
    graph: object  # shrunk
    repeats: int = 0  # later graphs that failed the same way
    index: int = 0  # the graph of the run that failed first

    def reproducer(self, backend):
        return program(self.graph, backend, self.verdict)


@dataclass
class Summary:
    backend: str
    seed: int
    graphs: int = 0
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    interrupted: bool = False

    @property
    def failed_graphs(self):
        return sum(1 + f.repeats for f in self.failures)

    @property
    def crashes(self):
        return sum(1 + f.repeats for f in self.failures if f.verdict.kind in ("crash", "hang"))

    def text(self):
        rate = self.graphs / self.seconds if self.seconds else 0.0
        counts = ", ".join(f"{s} {self.counts[s]}" for s in STATUSES if self.counts[s])
        lines = [f"fuzz: backend {self.backend!r}, seed {self.seed}: {self.graphs} graphs in {self.seconds:.1f} s "
                 f"({rate:.2f} graphs/s)" + (" (interrupted)" if self.interrupted else ""),
                 f"  {counts or 'nothing run'}",
                 f"  failures: {len(self.failures)} distinct in {self.failed_graphs} graph(s), "
                 f"crashes (and hangs): {self.crashes}"]
        for k, f in enumerate(self.failures, 1):
            repeats = f" (and {f.repeats} more graph(s) alike)" if f.repeats else ""
            lines.append(f"  {k}. {' '.join(f.verdict.headline(300).split())}{repeats}")
        return "\n".join(lines) + "\n"


class InProcess:
    """Checks each graph in this process."""

    def __init__(self, backend, **_):
        self.backend = backend

    def check(self, graph):
        return check_graph(graph, self.backend)

    def close(self):
        pass


class Isolated:
    """Checks each graph in a worker process, which rebuilds it from its record of choices; a worker
    that dies or stops answering is reported as the graph's failure and replaced."""

    def __init__(self, backend, timeout=120.0, ops_wanted=None, max_steps=MAX_STEPS, setup=None):
        self.backend, self.timeout, self.setup = backend, timeout, setup
        self.ops_wanted, self.max_steps = ops_wanted, max_steps
        self.process = None
        self.log = os.path.join(tempfile.mkdtemp(prefix="arignote-fuzz-"), "worker.log")

    def _start(self):
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker, daemon=True, args=(
            child, self.backend, self.log, self.setup, self.ops_wanted, self.max_steps))
        self.process.start()
        child.close()

    def check(self, graph):
        if self.process is None or not self.process.is_alive():
            self._start()
        start = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        self.connection.send(graph.record)
        suspects = tuple(dict.fromkeys(graph.op_names()))
        if not self.connection.poll(self.timeout):
            self._stop()
            return Verdict("fail", "hang", f"no answer in {self.timeout:g} s", suspects)
        try:
            return Verdict.from_dict(self.connection.recv())
        except (EOFError, OSError):
            self.process.join(10)
            code = self.process.exitcode
            self.process = None
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
            return Verdict("fail", "crash", f"the worker process died ({how}){self._log_since(start)}", suspects)

    def _log_since(self, start):
        """What the worker wrote since ``start``: faulthandler's report of a crash, first of all."""
        try:
            with open(self.log, "rb") as f:
                f.seek(start)
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        text = text[text.find("Fatal Python error"):] if "Fatal Python error" in text else text
        lines = [line for line in text.strip().splitlines() if not line.startswith("Extension modules")][:16]
        return ("; its last words:\n    " + "\n    ".join(lines)) if lines else ""

    def _stop(self):
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        self.process = None

    def close(self):
        if self.process is not None and self.process.is_alive():
            try:
                self.connection.send(None)
                self.process.join(10)
            except OSError:
                pass
        self._stop()
        shutil.rmtree(os.path.dirname(self.log), ignore_errors=True)


def _worker(connection, backend, log, setup, ops_wanted, max_steps):
    """The worker process: rebuild each graph from its choices, check it, answer with the verdict."""
    import faulthandler
    import importlib

    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    faulthandler.enable()  # a crash writes the Python stack to the log, for the report
    if setup:
        module, _, function = setup.partition(":")
        getattr(importlib.import_module(module), function)()
    while True:
        record = connection.recv()
        if record is None:
            return
        try:
            verdict = check_graph(draw_graph(Choices.replay(record), ops_wanted, max_steps), backend)
        except Exception as error:  # noqa: BLE001  (a fuzzer bug must not look like a crash)
            verdict = Verdict("fail", "fuzzer error", f"{type(error).__name__}: {error}")
        connection.send(verdict.as_dict())


def graph_seed(seed, index):
    """The seed of graph ``index`` of a run with ``seed``: any graph can be drawn again alone."""
    return seed * 1_000_003 + index


def fuzz(backend, graphs=100, seed=0, isolate=True, shrink_seconds=60.0, timeout=120.0, ops_wanted=None,
         max_steps=MAX_STEPS, progress=False, out=None, setup=None):
    """Run ``graphs`` random graphs on ``backend`` against the reference; a Summary. Each new failure
    is shrunk (for at most ``shrink_seconds``, by Hypothesis) and its reproducer written to ``out`` as
    it is found. ``setup`` ("module:function") is called in each worker process first (to register a
    backend that is not installed as a plugin)."""
    summary = Summary(backend, seed)
    checker = (Isolated(backend, timeout, ops_wanted, max_steps, setup) if isolate else InProcess(backend))
    bar = _progress_bar(graphs) if progress else None
    started = time.monotonic()
    try:
        for index in range(graphs):
            graph = draw_graph(Choices.seeded(graph_seed(seed, index)), ops_wanted, max_steps)
            verdict = checker.check(graph)
            summary.graphs += 1
            summary.counts[verdict.status] += 1
            if bar is not None:
                bar.update(1)
            if not verdict.failed:
                continue
            known = next((f for f in summary.failures if f.verdict.same_bug(verdict)), None)
            if known is not None:
                known.repeats += 1
                continue
            failure = shrink(Failure(verdict, graph, index=index), checker, shrink_seconds, ops_wanted, max_steps)
            summary.failures.append(failure)
            if out is not None:
                _write(out, bar, f"\nfailure {len(summary.failures)} on {backend!r} (graph {index} of seed {seed}): "
                                 f"{failure.verdict.headline()}\n{failure.reproducer(backend)}")
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        checker.close()
        if bar is not None:
            bar.close()
    summary.seconds = time.monotonic() - started
    return summary


class _Found(Exception):
    """Raised inside Hypothesis's test: the graph fails alike (Hypothesis then looks for a smaller one)."""


def shrink(failure, checker, seconds, ops_wanted=None, max_steps=MAX_STEPS):
    """A smaller graph that fails the same way as ``failure`` (or ``failure`` itself), found by
    Hypothesis's shrinker in at most ``seconds``. The failing graph's record of choices is handed to
    Hypothesis as a failing example it once saw (its database's secondary corpus, which it shrinks
    when it fails again); each choice is one ``st.integers(lo, hi)`` of graph_strategy, so the record
    is a valid Hypothesis example as it is."""
    if seconds <= 0:
        return failure
    try:
        from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
        from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes
    except ImportError:  # without Hypothesis: the failure as found
        return failure
    deadline = time.monotonic() + seconds
    best, verdicts = [failure], {}
    key = b"arignote.fuzz.shrink"
    database = InMemoryExampleDatabase()
    database.save(key + b".secondary", choices_to_bytes(failure.graph.record))

    @settings(database=database, phases=[Phase.reuse, Phase.shrink], deadline=None, max_examples=1,
              suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet, report_multiple_bugs=False,
              print_blob=False)
    @seed(0)  # the shrinker's own random choices: the same failure shrinks to the same graph
    @given(graph_strategy(ops_wanted, max_steps, stop=lambda: time.monotonic() > deadline))
    def fails_alike(graph):
        identity = graph.identity()
        if identity not in verdicts:  # many choices do not change the graph: check each graph once
            verdicts[identity] = checker.check(graph)
        verdict = verdicts[identity]
        if verdict.failed and verdict.same_bug(failure.verdict):
            best[0] = Failure(verdict, graph, failure.repeats, failure.index)  # Hypothesis's latest is its smallest
            raise _Found(verdict.headline())

    fails_alike._hypothesis_internal_database_key = key  # where it looks for the example (Hypothesis's own attribute)
    try:
        fails_alike()
    except Exception:  # noqa: BLE001  (_Found once shrunk; Flaky when the time ran out mid-way)
        pass
    return best[0]


def _progress_bar(total):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="graph", file=sys.stderr)


def _write(out, bar, text):
    if bar is not None:
        bar.clear()
    out.write(text)
    out.flush()
    if bar is not None:
        bar.refresh()
