"""The differential fuzzer (arignote/fuzz, docs/fuzzing.md): a small fixed budget of random graphs on
every backend, and the fuzzer itself: it draws the whole vocabulary with awkward layouts and values,
is deterministic, catches wrong values, wrong exceptions, writes into inputs and crashes, tells drift
from bugs, and prints a reproducer that runs."""

import contextlib
import io
import re

import numpy as np
import pytest

import arignote
from arignote.backends.reference import ReferenceBackend, ReferenceProgram
from arignote.backends.reference.table import IMPLEMENTATIONS
from arignote.cli import main
from arignote.core import conformance, ops
from arignote.core.plugins import registry
from arignote.core.types import TensorType
from arignote.fuzz import Choices, FuzzGraph, check_graph, draw_graph, fuzz, program
from arignote.fuzz.graphs import InputSpec
from arignote.fuzz.oracle import _wrong_on_its_inputs

# Graphs per backend in the suite: compiling costs about 0.5 s a graph on c and 1-2 s on numba (less
# once its disk cache holds them: the same seed draws the same graphs). `arignote fuzz` is the long run.
BUDGET = {"reference": 40, "c": 16, "numba": 6}
SEED = 0  # a failure here is a bug: report it with the reproducer printed, never change the seed to hide it


def test_the_fuzz_budget_passes_on_every_backend(backend):
    out = io.StringIO()
    summary = fuzz(backend, graphs=BUDGET.get(backend, 6), seed=SEED, isolate=False, shrink_seconds=30, out=out)
    assert summary.graphs == BUDGET.get(backend, 6)
    assert not summary.failures, summary.text() + out.getvalue()
    assert summary.counts["pass"] >= summary.graphs // 2, summary.text()


def test_every_op_of_the_vocabulary_makes_graphs():
    for op in conformance.vocabulary():
        graph = draw_graph(Choices.seeded(1), ops_wanted={op.__name__}, max_steps=2)
        assert set(graph.op_names()) == {op.__name__}, (op, graph)


def test_the_same_seed_draws_the_same_graph_and_a_record_replays_it():
    first, again = draw_graph(Choices.seeded(11)), draw_graph(Choices.seeded(11))
    assert first.record == again.record and first.lines == again.lines
    replayed = draw_graph(Choices.replay(first.record))
    assert replayed.lines == first.lines
    for a, b in zip(first.values(), replayed.values()):
        assert a.tobytes() == b.tobytes() and a.strides == b.strides and a.dtype == b.dtype


def test_graphs_are_composed_with_awkward_layouts_values_and_gradients():
    graphs = [draw_graph(Choices.seeded(s)) for s in range(150)]
    views = " ".join(spec.view for g in graphs for spec in g.specs)
    for layout in ("::-1", "::2", "::-2", "1:", "np.broadcast_to", "np.asfortranarray", "offset=1",
                   "newbyteorder", "writeable=False"):
        assert layout in views, layout
    kinds = {spec.kind for g in graphs for spec in g.specs}
    assert {"special", "huge", "tiny", "decimal", "extreme", "wild"} <= kinds
    dtypes = {spec.dtype for g in graphs for spec in g.specs}
    assert {"float32", "float64", "int8", "uint64", "bool"} <= dtypes
    assert any(0 in spec.base_shape for g in graphs for spec in g.specs)  # size-0 axes
    assert any(len(g.outputs) > g.n_values for g in graphs)  # gradients
    assert any(g.raises for g in graphs)  # graphs the reference refuses: both must raise alike
    assert any(re.search(r"\(.*\bs\d", line.split(")(", 1)[-1]) for g in graphs for line in g.lines
               if line.startswith("s"))  # a step reads an earlier step's result


def test_the_reproducer_is_a_standalone_program():
    graph = next(g for g in (draw_graph(Choices.seeded(s)) for s in range(40))
                 if len(g.outputs) > g.n_values and not g.raises)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(program(graph, "reference"), "<reproducer>", "exec"), {"__name__": "__main__"})
    assert printed.getvalue().count("agrees") == len(graph.outputs), printed.getvalue()


# ---- the fuzzer catches what is wrong, and only that


class Faulty(ReferenceBackend):
    """The reference with some implementations replaced."""

    priority = -10

    def __init__(self, name, replaced):
        self.name, self.replaced = name, replaced

    def compile(self, fgraph, profile=False):
        return ReferenceProgram(fgraph, {**IMPLEMENTATIONS, **self.replaced})


def _negate_in_place(node, x):
    if x.flags.writeable:
        return np.negative(x, out=x)
    return -x


FAULTS = {
    "wrong-arctan": {ops.Arctan: lambda node, x: np.arcsinh(x)},
    "silent-max": {ops.Max: lambda node, x: IMPLEMENTATIONS[ops.Max](node, x) if x.size else np.max(  # no ValueError
        np.zeros([s or 1 for s in x.shape], x.dtype), axis=node.op.axis, keepdims=node.op.keepdims)},
    "neg-in-place": {ops.Neg: _negate_in_place},
}


@pytest.fixture
def faulty():
    registry.reset()
    for name, replaced in FAULTS.items():
        registry.register(Faulty(name, replaced))
    yield
    registry.reset()


def test_a_wrong_value_is_found_shrunk_and_reproduced(faulty):
    pytest.importorskip("hypothesis")  # the shrinker
    out = io.StringIO()
    summary = fuzz("wrong-arctan", graphs=15, seed=0, isolate=False, shrink_seconds=30,
                   ops_wanted={"Arctan", "Add", "Exp"}, out=out)
    assert len(summary.failures) == 1, summary.text()
    failure = summary.failures[0]
    assert failure.verdict.kind == "wrong value" and "Arctan" in failure.verdict.suspects
    steps = [line for line in failure.graph.lines if re.match(r"s\d+ = ", line)]
    assert len(steps) == 1 and "arctan" in steps[0], failure.reproducer("wrong-arctan")
    assert "failure 1 on 'wrong-arctan'" in out.getvalue()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(failure.reproducer("wrong-arctan"), "<reproducer>", "exec"), {"__name__": "__main__"})
    assert "largest difference" in printed.getvalue()


def test_a_missing_exception_is_a_failure(faulty):
    summary = fuzz("silent-max", graphs=12, seed=0, isolate=False, shrink_seconds=10, ops_wanted={"Max"})
    kinds = {f.verdict.kind: f for f in summary.failures}
    assert "did not raise" in kinds, summary.text()
    assert kinds["did not raise"].verdict.exceptions == ("ValueError", "")


def test_writing_into_an_input_is_a_failure(faulty):
    summary = fuzz("neg-in-place", graphs=10, seed=0, isolate=False, shrink_seconds=10, ops_wanted={"Neg"})
    assert [f.verdict.kind for f in summary.failures] == ["wrote into an input"], summary.text()


def crash_on_exp():
    """Registers 'crashy', whose Exp dies of a segmentation fault (the worker process's setup, by name)."""
    import os
    import signal

    registry.register(Faulty("crashy", {ops.Exp: lambda node, x: os.kill(os.getpid(), signal.SIGSEGV)}))


def test_a_crash_in_a_worker_is_reported_with_its_graph():
    summary = fuzz("crashy", graphs=2, seed=0, isolate=True, shrink_seconds=0, ops_wanted={"Exp"},
                   setup="test_fuzz:crash_on_exp")
    assert summary.graphs == 2 and summary.crashes == 2, summary.text()  # the second in a new worker
    verdict = summary.failures[0].verdict
    assert verdict.kind == "crash" and "SIGSEGV" in verdict.detail and "Exp" in verdict.suspects
    assert "Segmentation fault" in verdict.detail  # faulthandler's report from the worker's log


def test_rounding_carried_through_a_node_is_not_a_bug():
    x = TensorType("float64", (False,))("x")
    node = ops.sum(x).owner
    values = [np.array([1e16, 1.0, -1e16])]  # the sum cancels: its order decides between 0 and 1
    assert _wrong_on_its_inputs(node, values, [np.array(1.0)]) is None
    assert "largest difference" in _wrong_on_its_inputs(node, values, [np.array(1e10)])
    node = ops.exp(x).owner  # well conditioned: no leeway beyond the dtype's tolerance
    assert _wrong_on_its_inputs(node, [np.array([1.0])], [np.array([np.e * (1 + 1e-6)])])


def test_a_float_cast_to_an_integer_it_does_not_fit_is_not_compared():
    x = TensorType("float64", (False,))("x0")
    graph = FuzzGraph(inputs=[x], specs=[InputSpec("x0", "float64", "special", 3, (9,), "b")],
                      outputs=[ops.cast(x, "int32")], n_values=1)
    assert check_graph(graph, "reference").status == "unspecified"


def test_a_float32_step_inside_a_fused_loop_rounds_like_float32(backend):
    # exp of int8 computes in float32; NumPy's float32 exp is 1 ulp from the correctly rounded value
    # that c and numba compute, and the float64 cast after it shows that ulp: drift, not a bug
    x = TensorType("int8", (False,))("x0")
    graph = FuzzGraph(inputs=[x], specs=[InputSpec("x0", "int8", "int", 0, (6,), "b")],
                      outputs=[ops.arctan(ops.cast(ops.exp(x), "float64"))], n_values=1)
    assert check_graph(graph, backend).status in ("pass", "drift")


def test_the_strategy_serves_hypothesis_tests():
    hypothesis = pytest.importorskip("hypothesis")
    from arignote.fuzz import graph_strategy

    @hypothesis.settings(max_examples=5, database=None, deadline=None, derandomize=True,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(graph_strategy(max_steps=2))
    def agrees(graph):
        assert not check_graph(graph, "reference").failed

    agrees()


# ---- bugs the fuzzer found


def test_sgn_of_unsigned_integers_with_the_high_bit_set(backend):
    # numba's sign of a uint8 200 was 255 (-1, wrapped): it read the high bit as a sign
    for dtype in ("uint8", "uint16", "uint32", "uint64"):
        x = TensorType(dtype, (False,))("x")
        values = np.array([0, 1, 200, np.iinfo(dtype).max], dtype)
        result = arignote.function([x], ops.sgn(x), backend=backend)(values)
        assert result.dtype == dtype and result.tolist() == [0, 1, 1, 1], (dtype, result)


def test_the_command(capsys):
    assert main(["fuzz", "--backend", "reference", "--graphs", "4", "--seed", "2", "--in-process"]) == 0
    out = capsys.readouterr().out
    assert "fuzz: backend 'reference', seed 2: 4 graphs in" in out and "failures: 0 distinct" in out
    assert main(["fuzz", "--backend", "no-such-backend", "--graphs", "1"]) == 2
    assert arignote  # the package the command runs
