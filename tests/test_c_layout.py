"""How the C backend is laid out and what it takes from core: the runtime included rather than pasted,
FusedReduce for every reduction with no temporary, and the plan's decisions carried out (buffers
reused in place exactly where plan.reuse says, threads only for plan.threads), nothing re-derived."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("cffi")
pytest.importorskip("scipy")

import arignote  # noqa: E402
import arignote.tensor as T  # noqa: E402
from arignote.backends import blas  # noqa: E402
from arignote.core import ops  # noqa: E402
from arignote.core.graph import FunctionGraph  # noqa: E402
from arignote.core.plan import IMAGE_THREADS_MIN, PARALLEL_MIN, make_plan, plan_of  # noqa: E402

from checks import assert_same  # noqa: E402

PACKAGE = Path(__file__).resolve().parent.parent / "backends" / "c"


def compiled(inputs, outputs, *values):
    """The C function of the graph, checked against the reference on ``values``."""
    f = arignote.function(inputs, outputs, backend="c")
    mine = f(*values)
    reference = arignote.function(inputs, outputs, backend="reference")(*values)
    for a, b in zip(mine if isinstance(mine, list) else [mine], reference if isinstance(reference, list) else [reference]):
        assert_same(a, b, "c vs reference")
    return f


def node_blocks(source):
    """{node index: the C block of that node} of the program ari_run."""
    program = source[source.index("int ari_run("):]
    parts = re.split(r"\n    /\* node (\d+): ", program)
    return {int(index): text for index, text in zip(parts[1::2], parts[2::2])}


def test_the_runtime_is_included_not_pasted(c):
    x = T.matrix("x")
    source = arignote.function([x], T.exp(x).sum(axis=1), backend=c).backend_source
    runtime = (PACKAGE / "runtime.h").read_text()
    assert source.count('#include "runtime.h"') == 1
    assert f"#define ARI_IMAGE_THREADS_MIN {IMAGE_THREADS_MIN}" in source.split('#include "runtime.h"')[0]
    for definition in ("static char *ari_alloc(", "void ari_free(void *data) {", "typedef struct { char *data;",
                       "static int ari_gemm(", "#define FAIL("):
        assert definition in runtime and definition not in source
    assert "#ifndef ARI_IMAGE_THREADS_MIN" in runtime


def test_the_cache_key_covers_the_runtime(c, monkeypatch):
    from arignote.backends.c import build

    key = build.cache_key("int x;")
    monkeypatch.setattr(build, "_runtime_cache", ["another runtime"])
    assert build.cache_key("int x;") != key


def test_no_module_is_long_and_nothing_edits_generated_text():
    """Each op family in its module (at most 600 lines), and no ``.replace`` on generated C."""
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 600, path.name
        calls = [node for node in ast.walk(ast.parse(text))
                 if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "replace"
                 and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "os")]  # os.replace: files
        allowed = {"comment"}  # ctext.comment makes a node's text safe inside a C comment
        owners = {f.name for f in ast.walk(ast.parse(text)) if isinstance(f, ast.FunctionDef)
                  for call in calls if f.lineno <= call.lineno <= f.end_lineno}
        assert owners <= allowed, f"{path.name}: .replace in {owners - allowed}"


@pytest.mark.parametrize("reduce", [
    lambda x, b: T.max(T.exp(x) * b, axis=1),
    lambda x, b: T.min(x - b, axis=0),
    lambda x, b: T.prod(x * b + 1, axis=1),
    lambda x, b: T.all(x > b, axis=1),
    lambda x, b: T.any(T.isnan(x / b)),
    lambda x, b: T.mean(T.sqr(x - b), axis=(0, 1), keepdims=True),
    lambda x, b: T.sum(T.tanh(x + b), axis=0),
], ids=["max", "min", "prod", "all", "any", "mean", "sum"])
def test_every_reduction_computes_the_elementwise_node_it_fuses(c, reduce):
    """One FusedReduce node and no temporary for its elements: the only buffer the program allocates
    is the result's; every layout agrees with the reference."""
    x, b = T.matrix("x"), T.row("b")
    f = compiled([x, b], reduce(x, b), np.ones((2, 3)), np.ones((1, 3)))
    assert [type(node.op) for node in f._executable.fgraph.apply_nodes] == [ops.FusedReduce]
    source = f.backend_source
    assert "is computed as it is read: no temporary" in source
    assert source.count("ari_alloc(&") == 1
    a = np.random.default_rng(5).standard_normal((30, 20))
    a[3, 4] = np.nan
    for view in (a, a[::-1, 1::2], a.T, a[:7]):
        compiled([x, b], reduce(x, b), view, np.linspace(0.5, 2, view.shape[1])[None])


def test_an_empty_fused_max_names_the_reduction_and_the_shape(c):
    x = T.matrix("x")
    f = arignote.function([x], T.max(x * 2, axis=1), backend=c)
    with pytest.raises(ValueError, match=r"zero-size array to reduction operation maximum .*\(3, 0\)"):
        f(np.zeros((3, 0)))


def in_place_nodes(source):
    return sorted(index for index, block in node_blocks(source).items() if "/* in place:" in block)


def test_buffers_are_reused_in_place_exactly_where_the_plan_says(c):
    x, w, b = T.matrix("x"), T.matrix("w"), T.vector("b")
    h = T.tanh(T.dot(x, w) + b)
    outputs = [(h * 2 - 1).sum(axis=1), T.exp(h) + T.exp(h).T, T.sqr(T.dot(x, w) - 1) * 3]
    rng = np.random.default_rng(0)
    f = compiled([x, w, b], outputs, rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), rng.standard_normal(5))
    plan = plan_of(f._executable.fgraph)
    assert plan.reuse
    assert in_place_nodes(f.backend_source) == sorted(plan.position[node] for node in plan.reuse)


def test_an_inc_subtensor_increments_its_dying_x_in_place_by_rows_that_vectorize(c):
    x, y = T.matrix("x"), T.matrix("y")
    f = compiled([x, y], [T.inc_subtensor(T.exp(x)[1:], y) * 2], np.ones((3, 4)), np.ones((2, 4)))
    plan = plan_of(f._executable.fgraph)
    (node,) = [n for n in plan.nodes if isinstance(n.op, ops.IncSubtensor)]
    assert plan.reuse[node] == 0 and plan.position[node] in in_place_nodes(f.backend_source)
    block = node_blocks(f.backend_source)[plan.position[node]]
    assert "ari_copy" not in block and "#pragma omp simd" in block


def test_no_reuse_when_the_plan_has_none(c):
    """The inputs of a function are not the program's: never taken over; and a plan without reuse
    (the inplace rewrite off) gets none."""
    from arignote.backends.c import CBackend

    x, y = T.matrices("x", "y")
    f = compiled([x, y], T.exp(x) * y, np.ones((2, 2)), np.ones((2, 2)))
    assert in_place_nodes(f.backend_source) == []
    graph = FunctionGraph([x, y], [T.exp(T.dot(x, y)) - 1])
    assert make_plan(graph, reuse=True).reuse
    assert "/* in place:" in CBackend().compile(graph).source
    graph = FunctionGraph([x, y], [T.exp(T.dot(x, y)) - 1])
    make_plan(graph, reuse=False)
    assert "/* in place:" not in CBackend().compile(graph).source


def test_a_reshaped_view_is_not_taken_over(c):
    """A reshape of contiguous data is a view of its input: the plan offers no reuse of it, and the
    elementwise node reading it gets a buffer of its own."""
    x = T.matrix("x")
    y = T.exp(x).reshape((6,)) + 1
    f = compiled([x], y, np.arange(6.0).reshape(2, 3))
    fgraph = f._executable.fgraph
    assert not plan_of(fgraph).reuse
    assert in_place_nodes(f.backend_source) == []
    np.testing.assert_allclose(f(np.arange(6.0).reshape(3, 2).T), np.exp(np.arange(6.0).reshape(3, 2).T).ravel() + 1)


def test_threads_only_for_the_loops_the_plan_names(c, monkeypatch):
    monkeypatch.setattr(blas, "narrower_than_cpu", lambda: False)  # a BLAS that keeps its own threads
    x, y = T.matrices("x", "y")
    f = compiled([x, y], [T.tanh(x) * y, x * 2 + y], np.ones((3, 4)), np.ones((3, 4)))
    plan = plan_of(f._executable.fgraph)
    threaded = {plan.position[node] for node in plan.threads}
    blocks = node_blocks(f.backend_source)
    assert threaded and threaded != set(blocks)
    for index, block in blocks.items():
        assert ("ari_parallel(" in block) == (index in threaded), index
    # next to a matrix product (BLAS keeps its own threads busy) no loop takes threads
    g = compiled([x, y], T.tanh(T.dot(x, y)) * y, np.ones((4, 4)), np.ones((4, 4)))
    assert not plan_of(g._executable.fgraph).threads
    assert "ari_parallel(" not in g.backend_source
    # a serial loop calls its kernel directly, which gcc would inline into ari_run, where it ran 1.5
    # times slower: every kernel is declared noinline
    kernels = re.findall(r"^static .*void ari_kernel\d+\(", f.backend_source + g.backend_source, re.M)
    assert kernels and all("__attribute__((noinline))" in k for k in kernels)


def test_large_loops_agree_with_and_without_threads(c):
    """Above PARALLEL_MIN elements a threaded loop and a serial one both agree with the reference."""
    x, y = T.vectors("x", "y")
    n = PARALLEL_MIN + 1000
    values = np.linspace(-3, 3, n), np.linspace(1, 2, n)
    compiled([x, y], [T.tanh(x) * y, x * 2 + y, T.sum(T.exp(x) * y)], *values)
