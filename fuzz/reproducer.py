"""A failing graph as a short standalone Python program.

A graph's steps are conformance cases (core/conformance_cases.py), so a step is printed as its case's
builder, the very text of the table (``(lambda x, y: x + y)(x0, s1)``), with the names it uses imported
from the table's module; inputs are printed as literal arrays and the view that gives them their layout.
"""

import ast
import builtins
import inspect

import numpy as np

from arignote.core import conformance

_TEXT = {}  # id(case) -> (expression, names it imports from its module)


def builder_text(case):
    """The source of ``case.build`` as written in the case table, and the module-level names it needs:
    (expression, module name, names); the expression is ``CASES[i].build`` when the text is not found."""
    if not _TEXT:
        _TEXT.update(_read_table())
    found = _TEXT.get(id(case))
    if found is None:
        position = conformance.CASES.index(case)
        return f"CASES[{position}].build", "arignote.core.conformance", ("CASES",)
    return found


def _read_table(module_name="arignote.core.conformance_cases"):
    """Match the top-level ``case(...)`` calls of the table's module with CASES, in order."""
    texts = {}
    try:
        module = __import__(module_name, fromlist=["_"])
        source = inspect.getsource(module)
    except Exception:  # noqa: BLE001  (no source: every case uses the fallback text)
        return texts
    calls = [s.value for s in ast.parse(source).body
             if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
             and isinstance(s.value.func, ast.Name) and s.value.func.id == "case" and len(s.value.args) >= 2]
    for c, call in zip(conformance.CASES, calls):
        op_name = call.args[0].attr if isinstance(call.args[0], ast.Attribute) else getattr(call.args[0], "id", "")
        if op_name != c.op.__name__:
            break  # the table and the calls no longer line up: the rest uses the fallback
        expression = " ".join(ast.get_source_segment(source, call.args[1]).split())
        texts[id(c)] = (expression, module_name, _free_names(call.args[1], module))
    return texts


def _free_names(expression, module):
    bound = {a.arg for node in ast.walk(expression) if isinstance(node, ast.Lambda)
             for a in node.args.args + node.args.kwonlyargs}
    names = []
    for node in ast.walk(expression):
        if (isinstance(node, ast.Name) and node.id not in bound and node.id not in names and node.id != "np"
                and not hasattr(builtins, node.id) and hasattr(module, node.id)):
            names.append(node.id)
    return tuple(names)


def array_literal(array):
    """Python text that makes ``array`` again, exactly (NaN, infinities, float32 values included)."""
    array = np.asarray(array)
    values = array.tolist() if array.ndim else [array.item()]
    body = repr(values if array.ndim else values[0])
    text = f"np.array({body}, dtype={array.dtype.name!r})"
    if array.ndim > 1 or array.size == 0 and array.ndim:
        text += f".reshape({tuple(array.shape)!r})"
    return text


def program(graph, backend, verdict=None):
    """A standalone program that builds ``graph``, runs it on the reference and on ``backend`` and
    prints where they disagree."""
    imports = {}
    for step in graph.steps:
        _, module_name, names = builder_text(step.case)
        imports.setdefault(module_name, [])
        imports[module_name] += [n for n in names if n not in imports[module_name] and n != "O"]
    lines = [f"# arignote fuzz: a reproducer for backend {backend!r}"]
    if verdict is not None:
        lines += [f"# {line}" for line in verdict.headline().splitlines()]
    lines += ["import numpy as np", "", "import arignote", "from arignote.core import ops as O",
              "from arignote.core.crosscheck import largest_difference", "from arignote.core.types import TensorType"]
    lines += [f"from {module} import {', '.join(names)}" for module, names in sorted(imports.items()) if names]
    lines += ["", "nan, inf = np.nan, np.inf", ""]
    lines += graph.lines
    lines.append(f"inputs = [{', '.join(spec.name for spec in graph.specs)}]")
    lines += ["", "", "def values():"]
    for spec in graph.specs:
        lines.append(f"    b = {array_literal(spec.base())}")
        lines.append(f"    {spec.name} = {spec.view}")
    lines.append(f"    return [{', '.join(spec.name for spec in graph.specs)}]")
    lines += ["", "", "def run(backend):",
              "    try:",
              "        f = arignote.function(inputs, outputs, backend=backend, on_unused_input='ignore')",
              "        with np.errstate(all='ignore'):",
              "            return f(*values())",
              "    except Exception as error:  # the same exception type is expected from both",
              "        return error",
              "", "",
              "expected, actual = run('reference'), run(%r)" % backend,
              "if isinstance(expected, Exception) or isinstance(actual, Exception):",
              "    print('reference:', repr(expected)[:300])",
              "    print(%r, repr(actual)[:300], sep=': ')" % backend,
              "else:",
              "    for position, (a, e) in enumerate(zip(actual, expected)):",
              "        print('output', position, largest_difference(a, e) or 'agrees')"]
    return "\n".join(lines) + "\n"
