"""The layers of the package: core depends on nothing above it (the command line, the benchmark, the
neural-network layers, the backends). Core reaches backends only through the plugin registry."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ABOVE_CORE = ("arignote.bench", "arignote.layers", "arignote.cli", "arignote.backends")


def imported_modules(source, module):
    """Every module that ``source`` (the module named ``module``) imports, anywhere in it, relative imports
    resolved; for ``from X import a`` both X and X.a, since a may be a submodule."""
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def is_above_core(name):
    return any(name == above or name.startswith(above + ".") for above in ABOVE_CORE)


@pytest.mark.parametrize("source, forbidden", [
    ("from ..layers import demo", True),
    ("def f():\n    from .. import bench", True),
    ("import arignote.backends.reference", True),
    ("from arignote import cli", True),
    ("from . import ops", False),
    ("from .plugins import registry", False),
    ("import numpy", False),
])
def test_the_check_resolves_relative_and_absolute_imports(source, forbidden):
    assert any(map(is_above_core, imported_modules(source, "arignote.core.example"))) == forbidden


def test_core_imports_nothing_above_it():
    paths = sorted((ROOT / "core").rglob("*.py"))
    assert paths
    offenders = []
    for path in paths:
        module = "arignote." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
        offenders += [f"{path.relative_to(ROOT)} imports {name}"
                      for name in sorted(set(imported_modules(path.read_text(), module))) if is_above_core(name)]
    assert offenders == []
