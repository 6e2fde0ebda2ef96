"""The conformance kit and cross-check mode: every op has a case, every backend passes, and a wrong
backend is caught at the op that is wrong."""

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote.backends.reference import ReferenceBackend, ReferenceProgram
from arignote.backends.reference.table import IMPLEMENTATIONS
from arignote.core import conformance, ops
from arignote.core.crosscheck import CrossCheckError
from arignote.core.plugins import registry

EXAMPLE_PLUGIN = Path(__file__).resolve().parent.parent / "examples" / "arignote-toy-backend"


def test_every_op_of_the_vocabulary_has_a_case():
    assert conformance.uncovered_ops() == []
    assert len(conformance.vocabulary()) > 80


KIT_SHARDS = 6  # the kit in parts, so that test workers share a compiled backend's long run of it


@pytest.mark.parametrize("shard", range(KIT_SHARDS))
def test_the_kit_passes_on_every_backend(backend, shard):
    names = {op.__name__ for op in conformance.vocabulary()[shard::KIT_SHARDS]}
    out = io.StringIO()
    assert conformance.report(backend, out, only=names), out.getvalue()
    assert f"0 failed, 0 unsupported of {len(names)} ops" in out.getvalue()


class WrongArctan(ReferenceBackend):
    """The reference, except that Arctan is computed as arcsinh: a deliberately wrong backend."""

    name = "wrong-arctan"
    priority = -10

    def compile(self, fgraph):
        table = dict(IMPLEMENTATIONS)
        table[ops.Arctan] = lambda node, x: np.arcsinh(x)
        return ReferenceProgram(fgraph, table)


class MissingExp(ReferenceBackend):
    name = "missing-exp"
    priority = -10

    def compile(self, fgraph):
        table = {k: v for k, v in IMPLEMENTATIONS.items() if k is not ops.Exp}
        return ReferenceProgram(fgraph, table)


@pytest.fixture
def wrong_backends():
    registry.reset()
    registry.register(WrongArctan())
    registry.register(MissingExp())
    yield
    registry.reset()


def test_the_kit_names_the_wrong_op(wrong_backends):
    out = io.StringIO()
    assert not conformance.report("wrong-arctan", out)
    rows = {line.split()[0]: line for line in out.getvalue().splitlines()[1:-1]}
    assert "FAIL" in rows["Arctan"] and "largest difference" in rows["Arctan"]
    assert all("pass" in line for name, line in rows.items() if name != "Arctan"), out.getvalue()
    assert "1 failed" in out.getvalue()


def test_the_kit_reports_unsupported_ops(wrong_backends):
    out = io.StringIO()
    assert not conformance.report("missing-exp", out, only={"Exp", "Add"})
    text = out.getvalue()
    assert "unsupported" in [line.split()[1] for line in text.splitlines() if line.startswith("Exp ")]
    assert "1 passed, 0 failed, 1 unsupported" in text


def test_cross_check_names_the_first_node_that_differs(wrong_backends):
    x = T.dvector("x")
    w = arignote.shared(np.ones(3), name="w")
    y = T.exp(T.arctan(x * 2)).sum()
    f = arignote.function([x], y, updates=[(w, w + y)], backend="wrong-arctan", check=True)
    with pytest.raises(CrossCheckError) as info:
        f(np.array([0.5, 1.0, 2.0]))
    message = str(info.value)
    assert "arctan" in message.lower() and "first node that differs" in message
    assert "test_conformance.py" in message  # where the user built it
    np.testing.assert_array_equal(w.get_value(), np.ones(3))  # a failed call changes nothing
    # without check the wrong backend goes unnoticed, which is what check mode is for
    g = arignote.function([x], y, backend="wrong-arctan", check=False)
    assert np.isfinite(g(np.array([0.5])))


def test_cross_check_passes_agreeing_results_through(wrong_backends):
    x = T.dvector("x")
    f = arignote.function([x], T.exp(x) + 1, backend="wrong-arctan", check=True)  # no Arctan: agrees
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), [2.0, np.e + 1])


def test_cross_check_from_the_environment(tmp_path):
    script = (
        "import numpy as np, arignote, arignote.tensor as T\n"
        "from arignote.core.plugins import registry\n"
        "from arignote.core.crosscheck import CrossChecked\n"
        "assert arignote.config.check\n"
        "class Other(type(registry.get('reference'))):\n"
        "    name = 'other'\n"
        "registry.register(Other())\n"
        "x = T.dvector()\n"
        "f = arignote.function([x], x * 2, backend='other')\n"
        "assert isinstance(f._executable, CrossChecked)\n"
        "print(f(np.array([1.0]))[0])\n"
    )
    env = dict(os.environ, ARIGNOTE_CHECK="1")
    env.pop("ARIGNOTE_BACKEND", None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"


def test_the_cli_exit_status(wrong_backends):
    from arignote.cli import main

    assert main(["conformance", "reference", "--op", "Add"]) == 0
    assert main(["conformance", "wrong-arctan", "--op", "Arctan"]) == 1
    assert main(["conformance", "no-such-backend"]) == 2


def test_the_example_plugin_installs_and_passes_the_kit(tmp_path):
    """The example in examples/ is a real distribution: pip installs it (no network: its build
    backend, setuptools, is already installed) and the kit runs on it from the command line."""
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(EXAMPLE_PLUGIN)],
        capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("ARIGNOTE_BACKEND", None)
    listing = subprocess.run([sys.executable, "-m", "arignote", "backends"], env=env, capture_output=True, text=True)
    assert listing.returncode == 0 and any(line.split()[:2] == ["toy", "yes"] for line in listing.stdout.splitlines())
    kit = subprocess.run([sys.executable, "-m", "arignote", "conformance", "toy"], env=env,
                         capture_output=True, text=True)
    assert kit.returncode == 0, kit.stdout + kit.stderr
    assert "0 failed, 0 unsupported" in kit.stdout
    env["ARIGNOTE_BACKEND"] = "toy"
    run = subprocess.run([sys.executable, "-c", "import numpy as np, arignote, arignote.tensor as T\n"
                          "x = T.dvector(); f = arignote.function([x], T.tanh(x).sum())\n"
                          "print(f.backend.name, float(f(np.zeros(3))))"], env=env, capture_output=True, text=True)
    assert run.stdout.split() == ["toy", "0.0"], run.stderr
