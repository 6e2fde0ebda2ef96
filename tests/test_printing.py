"""Printing graphs: pprint/pp strings, debugprint's options, and pydotprint's DOT text, files and the
fallback without graphviz."""

import io
import os
import re
import shutil
import stat
import sys

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.core import ops
from arignote.core.graph import FunctionGraph
from arignote.core.plugins import registry
from arignote.ifelse import ifelse
from arignote.printing import debugprint, pp, pprint, pydotprint

x, y = T.dvector("x"), T.dvector("y")
M, W = T.dmatrix("M"), T.dmatrix("W")
i = T.iscalar("i")


def fuses(backend):
    return "fusion" not in (getattr(registry.get(backend), "declined_rewrites", ()) or ())

# ---------------------------------------------------------------------------------------------------
# pprint


PPRINT = [
    (lambda: (x ** 2) + y, "((x ** 2) + y)"),
    (lambda: x * y, "(x * y)"),
    (lambda: x / y - x // y, "((x / y) - (x // y))"),
    (lambda: T.tanh(x), "tanh(x)"),
    (lambda: T.exp(-x) + abs(y), "(exp(-x) + |y|)"),
    (lambda: T.dot(x, W), "dot(x, W)"),
    (lambda: T.nnet.sigmoid(T.dot(M, W) + x), "sigmoid((dot(M, W) + x))"),
    (lambda: x[1:3], "x[1:3]"),
    (lambda: x[i:], "x[i:]"),
    (lambda: x[::-1], "x[::-1]"),
    (lambda: M[:, None], "M[:, None]"),
    (lambda: M[1, i], "M[1, i]"),
    (lambda: W[T.ivector("rows")], "W[rows]"),
    (lambda: T.sum(x, axis=0), "sum(x)"),
    (lambda: T.sum(M, axis=0), "sum(M, axis=0)"),
    (lambda: M.mean(axis=1, keepdims=True), "mean(M, axis=1, keepdims=True)"),
    (lambda: T.max(M), "max(M)"),
    (lambda: T.argmax(M, axis=1), "argmax(M, axis=1)"),
    (lambda: M.T, "M.T"),
    (lambda: M.dimshuffle(1, "x", 0), "M.dimshuffle(1, 'x', 0)"),
    (lambda: x.shape[0], "x.shape[0]"),
    (lambda: T.cast(x, "float32"), "cast(x, 'float32')"),
    (lambda: T.switch(x > 0, x, 0), "switch((x > 0), x, 0)"),
    (lambda: T.set_subtensor(x[1:3], y[:2]), "set_subtensor(x[1:3], y[:2])"),
    (lambda: T.inc_subtensor(x[i], 1.5), "inc_subtensor(x[i], 1.5)"),
    (lambda: T.nnet.softmax(M), "softmax(M)"),
    (lambda: T.grad(T.sum(x ** 2), x), "((fill(sqr(x), 1.0) * 2) * x)"),
]


@pytest.mark.parametrize("build, expected", PPRINT, ids=[e for _, e in PPRINT])
def test_pprint_strings(build, expected):
    assert pprint(build()) == expected
    assert pp is pprint and arignote.pp is pprint


def test_unnamed_variables_print_as_their_type_and_named_intermediates_by_name():
    v = T.dvector()
    assert pp(v * 2.5) == f"(<{v.type}> * 2.5)"
    h = T.tanh(T.dot(x, W))
    h.name = "h"
    assert pp(h * 2) == "(h * 2)"  # an intermediate by its name
    assert pp(h) == "tanh(dot(x, W))"  # the variable printed is always expanded
    assert pp([h, x + 1]) == "tanh(dot(x, W))\n(x + 1)"
    shared = arignote.shared(np.zeros(3))
    assert pp(shared + x) == f"(<{shared.type}> + x)"
    with pytest.raises(TypeError, match="pprint takes a variable"):
        pp(42)


def test_pprint_of_a_compiled_function_shows_what_fused_ops_compute(backend):
    f = arignote.function([x, y], [T.sum(T.tanh(x * y + 1.5)), T.exp(x) - y], backend=backend)
    assert pp(f) == "sum(tanh(((x * y) + 1.5)))\n(exp(x) - y)"
    composites = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, (ops.Composite, ops.FusedReduce))]
    if fuses(backend):
        assert composites  # the text above came from fused ops, expanded


# ---------------------------------------------------------------------------------------------------
# debugprint


def test_debugprint_print_type_puts_the_type_after_the_id():
    z = x * y
    z.name = "z"
    assert debugprint(z, print_type=True, file="str") == (
        f"Mul [id A] <{z.type}> 'z'\n"
        f" |x [id B] <{x.type}>\n"
        f" |y [id C] <{y.type}>\n")


@pytest.mark.parametrize("ids, first, second", [
    ("CHAR", "[id A]", "[id B]"), ("int", "[id 0]", "[id 1]"), ("", "", "")])
def test_debugprint_ids(ids, first, second):
    lines = debugprint(T.exp(x), ids=ids, file="str").splitlines()
    assert lines == [f"Exp {first}".rstrip(), f" |x {second}".rstrip()]


def test_debugprint_ids_id_uses_python_ids():
    e = T.exp(x)
    assert debugprint(e, ids="id", file="str").splitlines() == [f"Exp [id {id(e.owner)}]", f" |x [id {id(x)}]"]
    with pytest.raises(ValueError, match="ids must be"):
        debugprint(e, ids="letters", file="str")


def test_debugprint_depth_stop_on_name_and_done():
    h = T.tanh(x + y)
    h.name = "h"
    out = h * 2
    assert debugprint(out, depth=1, file="str") == "Mul [id A]\n"
    assert debugprint(out, depth=2, file="str").splitlines() == [
        "Mul [id A]", " |Tanh [id B] 'h'", " |TensorConstant{(1,) of 2.0} [id C]"]
    assert debugprint(out, stop_on_name=True, file="str").splitlines() == [
        "Mul [id A]", " |Tanh [id B] 'h'", " |TensorConstant{(1,) of 2.0} [id C]"]
    done = {}
    debugprint(h, done=done, file="str")
    assert len(done) == 4  # Tanh, Add, x, y
    again = debugprint(out, done=done, file="str").splitlines()
    assert again == ["Mul [id E]", " |Tanh [id A] 'h'", " |TensorConstant{(1,) of 2.0} [id F]"]


def test_debugprint_to_a_file_and_with_storage(backend):
    w = arignote.shared(np.array([1.0, 2.0, 3.0]), name="w")
    f = arignote.function([x], T.dot(x, w), updates=[(w, w * 2)], backend=backend)
    stream = io.StringIO()
    assert debugprint(f, file=stream, print_storage=True) is stream
    text = stream.getvalue()
    assert "w [id" in text and "[1., 2., 3.]" in text and "(update of w)" in text
    f(np.ones(3))
    assert "[2., 4., 6.]" in debugprint(f, print_storage=True, file="str")
    assert "[1." not in debugprint(w * x, file="str")  # values only when asked
    assert "[2., 4., 6.]" in debugprint(w * x, print_storage=True, file="str")


def test_debugprint_shows_inner_graphs_of_loops_and_branches(backend):
    k = T.iscalar("k")
    result, updates = arignote.scan(lambda prev, x: prev * x, outputs_info=T.ones_like(x), non_sequences=x,
                                    n_steps=k)
    f = arignote.function([x, k], result[-1], updates=updates, backend=backend)
    text = debugprint(f, file="str")
    head, inner = text.split("\nInner graphs:\n")
    scan_line = next(line for line in head.splitlines() if "Scan{" in line)
    scan_id = re.search(r"\[id \w+\]", scan_line).group()
    assert inner.lstrip("\n").startswith("Scan{") and scan_id in inner.splitlines()[1]
    assert any(line.startswith(" >Mul [id") for line in inner.splitlines())
    branch = debugprint(ifelse(T.lt(k, 2), x * 2, x + 1), file="str")
    assert "\nInner graphs:\n" in branch and "IfElse{" in branch.split("Inner graphs:")[1]


# ---------------------------------------------------------------------------------------------------
# pydotprint: the DOT text


def parse_dot(text):
    """{node: attrs}, [(source, target, attrs)] and {cluster: [nodes]} of the DOT text pydotprint writes."""
    attr = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    nodes, edges, clusters, current = {}, [], {}, None
    assert text.startswith("digraph G {") and text.rstrip().endswith("}")
    for line in text.splitlines()[1:-1]:
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            current = line.split()[1]
            clusters[current] = []
        elif line == "}":
            current = None
        elif "->" in line:
            match = re.match(r"(\w+) -> (\w+)(?: \[(.*)\])?;$", line)
            edges.append((match.group(1), match.group(2), dict(attr.findall(match.group(3) or ""))))
        elif re.match(r"\w+ \[", line) and not line.startswith("graph ["):
            name = line.split()[0]
            nodes[name] = dict(attr.findall(line))
            if current:
                clusters[current].append(name)
    return nodes, edges, clusters


def by_label(nodes, label):
    found = [n for n, a in nodes.items() if a["label"] == label]
    assert len(found) == 1, (label, nodes)
    return found[0]


def test_dot_of_a_compiled_function(backend, tmp_path, capsys):
    w = arignote.shared(np.zeros(3), name="w")
    f = arignote.function([x], [T.dot(x, w) * 2, x + 1], updates=[(w, w - x)], backend=backend)
    path = pydotprint(f, outfile=tmp_path / "graph", format="dot")
    assert path == str(tmp_path / "graph.dot") and "available at" in capsys.readouterr().out
    nodes, edges, _ = parse_dot(open(path).read())
    x_node = by_label(nodes, f"x {x.type}")
    w_node = by_label(nodes, f"w {w.type}")
    assert nodes[x_node]["fillcolor"] == "green" and nodes[x_node]["shape"] == "ellipse"
    assert nodes[w_node]["fillcolor"] == "cyan"
    outputs = [n for n, a in nodes.items() if a.get("fillcolor") == "lightblue"]
    assert len(outputs) == 3  # two outputs and the update
    update = by_label(nodes, f"update of w {w.type}")
    assert (w_node, update, {"label": "UPDATE", "color": "lightblue", "style": "dashed"}) in edges
    boxes = [n for n, a in nodes.items() if a["shape"] == "box"]
    assert boxes and all(n.startswith("n") for n in boxes)
    # every edge joins drawn nodes; every op reads something and feeds something
    assert all(s in nodes and t in nodes for s, t, _ in edges)
    assert all(any(t == b for _, t, _ in edges) and any(s == b for s, _, _ in edges) for b in boxes)


def test_dot_of_a_symbolic_graph_compact_or_not():
    z = T.tanh(x * y) + 1.5
    nodes, edges, _ = parse_dot(pydotprint(z, format="dot", return_image=True))
    mul, tanh = by_label(nodes, "Mul"), by_label(nodes, "Tanh")
    assert (mul, tanh, {"label": str((x * y).type)}) in edges  # compact: an unnamed value is an edge
    assert nodes[mul]["fillcolor"] == "#FFAABB"  # elementwise ops are pink, as in Theano
    constant = by_label(nodes, f"val=(1,) of 1.5 {z.owner.inputs[1].type}")
    assert nodes[constant]["fillcolor"] == "lightyellow"
    assert {a["label"] for _, _, a in edges if "label" in a} >= {"0", "1"}  # which input is which
    full, full_edges, _ = parse_dot(pydotprint(z, format="dot", return_image=True, compact=False))
    (product,) = [t for s, t, _ in full_edges if s == by_label(full, "Mul")]  # every value is an ellipse
    assert full[product] == {"label": str((x * y).type), "shape": "ellipse"}
    assert (product, by_label(full, "Tanh"), {}) in full_edges
    simple, _, _ = parse_dot(pydotprint(z, format="dot", return_image=True, var_with_name_simple=True,
                                        with_ids=True, colorCodes={"Tanh": "red"}))
    assert by_label(simple, "x") and simple[by_label(simple, "Tanh id=1")]["fillcolor"] == "red"


def test_expand_composites_draws_the_fused_body_as_a_cluster():
    a, b = T.dscalar("a"), T.dscalar("b")
    body = FunctionGraph([a, b], [T.tanh(a * b) + 2.0])
    fused = ops.Composite(body)(x, y)
    plain, _, clusters = parse_dot(pydotprint(fused, format="dot", return_image=True))
    assert not clusters and plain[by_label(plain, str(fused.owner.op))]["shape"] == "box"
    nodes, edges, clusters = parse_dot(pydotprint(fused, format="dot", return_image=True, expand_composites=True))
    (members,) = clusters.values()
    labels = sorted(nodes[n]["label"] for n in members)
    assert labels == sorted(["i0", "i1", "Mul", "Tanh", "Add", f"val=2.0 {a.type}"])
    entry0 = next(n for n in members if nodes[n]["label"] == "i0")
    assert (by_label(nodes, f"x {x.type}"), entry0, {}) in edges
    add = next(n for n in members if nodes[n]["label"] == "Add")
    result = next(n for n, attrs in nodes.items() if attrs.get("fillcolor") == "lightblue")
    assert (add, result, {}) in edges
    # a fused reduction: the body, then the reduction, in one cluster
    reduced = ops.FusedReduce(ops.Sum((0,)), ops.Composite(body))(x, y)
    nodes, edges, clusters = parse_dot(pydotprint(reduced, format="dot", return_image=True, expand_composites=True))
    (members,) = clusters.values()
    assert any(nodes[n]["label"].startswith("Sum{") for n in members)


def test_expand_composites_on_a_compiled_function(backend):
    f = arignote.function([x, y], T.exp(x * y) - y, backend=backend)
    fused = [n for n in f.maker.fgraph.apply_nodes if isinstance(n.op, ops.Composite)]
    _, _, clusters = parse_dot(pydotprint(f, format="dot", return_image=True, expand_composites=True))
    assert len(clusters) == len(fused)
    if fuses(backend):
        assert len(clusters) == 1


def test_scan_graphs_draws_each_inner_graph(tmp_path):
    k = T.iscalar("k")
    result, updates = arignote.scan(lambda prev: prev * 2, outputs_info=x, n_steps=k)
    path = pydotprint(result, outfile=tmp_path / "loop.dot", format="dot", scan_graphs=True, print_output_file=False)
    inner = [p for p in os.listdir(tmp_path) if p != "loop.dot"]
    assert path.endswith("loop.dot") and len(inner) == 1 and inner[0].startswith("loop_scan_")
    nodes, _, _ = parse_dot(open(tmp_path / inner[0]).read())
    assert by_label(nodes, "Mul")


# ---------------------------------------------------------------------------------------------------
# pydotprint: running graphviz, or saying how to get it


def fake_dot(folder):
    """A `dot` that records its arguments and input in the file it is asked to write."""
    script = folder / "dot"
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      "args = sys.argv[1:]\ndata = sys.stdin.read()\n"
                      "open(args[args.index('-o') + 1], 'w').write(' '.join(args) + '\\n' + data)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_graphviz_renders_the_requested_format(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_dot(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    path = pydotprint(x * 2, outfile=tmp_path / "pics" / "graph.png", print_output_file=False)
    assert path == str(tmp_path / "pics" / "graph.png")
    args, dot_text = open(path).read().split("\n", 1)
    assert args == f"-Tpng -o {path}"
    assert parse_dot(dot_text)[0]
    svg = pydotprint(x * 2, outfile=tmp_path / "graph", format="svg", print_output_file=False)
    assert svg.endswith("graph.svg") and open(svg).read().startswith("-Tsvg")


def test_without_graphviz_the_dot_file_is_written_with_a_warning(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    target = tmp_path / "graph.png"
    with pytest.warns(UserWarning, match="graphviz's `dot` program is not on PATH") as caught:
        path = pydotprint(x * 2, outfile=target)
    assert path == str(tmp_path / "graph.dot") and not target.exists()
    message = str(caught[0].message)
    assert "install graphviz" in message.lower() and f"dot -Tpng {path} -o {target}" in message
    assert parse_dot(open(path).read())[0]
    assert "available at" not in capsys.readouterr().out  # no png was made
    with pytest.raises(RuntimeError, match="no svg image can be made"):
        pydotprint(x * 2, format="svg", return_image=True)


def test_a_graphviz_error_is_reported(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dot"
    script.write_text("#!/bin/sh\necho 'Format: \"nope\" not recognized' >&2\nexit 1\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(RuntimeError, match='not recognized'):
        pydotprint(x * 2, outfile=tmp_path / "graph", format="nope")


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed here")
def test_real_graphviz_makes_an_image(tmp_path):
    w = arignote.shared(np.zeros(3), name="w")
    f = arignote.function([x], T.tanh(x * w).sum(), updates=[(w, w + x)])
    svg = pydotprint(f, outfile=tmp_path / "f.svg", format="svg", expand_composites=True, print_output_file=False)
    assert "<svg" in open(svg).read()
    png = pydotprint(f, format="png", return_image=True)
    assert png.startswith(b"\x89PNG")
