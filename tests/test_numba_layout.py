"""The Numba backend's layout: modules by op family, none too long to read; one table that every op of
core reaches; generated source written from parameters, never edited afterwards."""

import ast
import inspect
from pathlib import Path

import pytest

from arignote.core import graph, ops

pytest.importorskip("numba")
from arignote.backends.numba import table  # noqa: E402

FOLDER = Path(table.__file__).parent
MODULES = sorted(FOLDER.glob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_module_stays_short(path):
    assert len(path.read_text().splitlines()) <= 600


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_generated_text_is_edited_afterwards(path):
    """No re.sub, and no str.replace (os.replace renames files): emitters write final text."""
    edits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else None
            if node.func.attr == "replace" and name != "os" or node.func.attr == "sub" and name == "re":
                edits.append(f"{path.name}:{node.lineno}")
    assert edits == []


def _subclasses(base):
    for cls in base.__subclasses__():
        yield cls
        yield from _subclasses(cls)


def test_one_table_reaches_every_op():
    """Every concrete op class of core has an emitter (or runs in NumPy, saying why); every elementwise
    op has a scalar template, and with it the elementwise emitter."""
    concrete = {cls for cls in _subclasses(graph.Op) if not vars(cls).get("abstract") and cls.__module__.startswith(
        "arignote.core") and not cls.__name__.startswith("_")}
    missing = sorted(cls.__name__ for cls in concrete if cls not in table.EMITTERS and cls not in table.PYTHON_ONLY)
    assert missing == []
    elementwise = {cls for cls in concrete if issubclass(cls, ops.Elemwise)} - {ops.Composite}
    assert sorted(cls.__name__ for cls in elementwise - set(table.SCALARS)) == []
    assert all(table.EMITTERS[cls] is table.EMITTERS[ops.Add] for cls in elementwise)
    assert all(isinstance(reason, str) and reason for reason in table.PYTHON_ONLY.values())


def test_emitters_are_dispatched_by_the_table_only():
    from arignote.backends.numba import generator

    assert "getattr(self" not in inspect.getsource(generator)
