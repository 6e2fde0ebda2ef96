"""Helpers for the plugin and command-line tests: installed distributions written into a folder (a
sys.path entry, never the venv), the backend modules they carry, and subprocess runs of arignote."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from arignote.core.plugins import registry


def backend_module(name, priority=0, available="Availability(True)"):
    """Source of a third-party backend module: a Backend subclass that delegates to the reference
    backend and tags the generated listing, so a test can tell which backend compiled a function."""
    return textwrap.dedent(f'''
        """The {name!r} arignote backend (written by the tests)."""
        from arignote import Availability, Backend, hookimpl
        from arignote.backends.reference import ReferenceBackend


        class Program:
            def __init__(self, inner, name):
                self.inner = inner
                self.source = f"# compiled by the {{name}} backend\\n" + inner.source

            def __call__(self, inputs):
                return self.inner(inputs)


        class ToyBackend(Backend):
            name = {name!r}
            priority = {priority!r}

            def available(self):
                return {available}

            def compile(self, fgraph):
                return Program(ReferenceBackend().compile(fgraph), self.name)


        @hookimpl
        def arignote_backends():
            return [ToyBackend()]
        ''')


BROKEN_AT_IMPORT = 'raise ImportError("needs libfrobnicate")\n'

BROKEN_HOOK = textwrap.dedent('''
    from arignote import hookimpl


    @hookimpl
    def arignote_backends():
        raise RuntimeError("GPU driver too old")
    ''')


def write_distribution(where, module, source, entry_points):
    """Write the distribution ``module`` (version 0.1) into the folder ``where``: the module
    ``module.py`` with ``source`` and a dist-info whose entry_points.txt lists ``entry_points``
    ({entry-point name: target}) in the group arignote.backends."""
    where = Path(where)
    (where / f"{module}.py").write_text(source)
    info = where / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text("[arignote.backends]\n" + lines)
    return where


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """``plugins(module, source, entry_points)`` installs a distribution in tmp_path, which is put on
    sys.path; the registry is reset so that the next look-up finds it, and reset again afterwards."""
    def install(module, source, entry_points):
        write_distribution(tmp_path, module, source, entry_points)
        registry.reset()
        return tmp_path

    monkeypatch.syspath_prepend(str(tmp_path))
    registry.reset()
    yield install
    registry.reset()
    for name, module in list(sys.modules.items()):  # forget the plugin modules imported from tmp_path
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def zoo(where):
    """A folder with one plugin of each kind: toy (usable, priority 5), nocc (installed but unusable,
    priority 100), frob (its module raises ImportError) and hooky (its hook raises)."""
    write_distribution(where, "toy_backend", backend_module("toy", priority=5), {"toy": "toy_backend"})
    write_distribution(where, "nocc_backend",
                       backend_module("nocc", priority=100, available='Availability(False, "no compiler")'),
                       {"nocc": "nocc_backend"})
    write_distribution(where, "frob_backend", BROKEN_AT_IMPORT, {"frob": "frob_backend"})
    write_distribution(where, "hooky_backend", BROKEN_HOOK, {"hooky": "hooky_backend"})
    return where


def run(args, pythonpath=None, cwd=None, **env):
    """Run ``args`` with the test's Python environment, none of the ARIGNOTE_ settings of the caller
    except ``env``'s, and ``pythonpath`` in front of PYTHONPATH."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("ARIGNOTE_BACKEND", "ARIGNOTE_FLOATX", "ARIGNOTE_CHECK")}
    if pythonpath is not None:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), environ.get("PYTHONPATH")]))
    environ.update(env)
    cwd = cwd or pythonpath or Path(__file__).parent
    return subprocess.run([str(a) for a in args], env=environ, cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def python(code, *args, **kwargs):
    """Run ``code`` with this Python; return the JSON it prints on its last line (rc must be 0)."""
    result = run([sys.executable, "-c", textwrap.dedent(code), *args], **kwargs)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# Compiles x * 2 + 1 once per argument (a backend name, or "" for none given); prints JSON.
PROBE = """
    import json, sys
    import numpy as np
    import arignote
    import arignote.tensor as T

    report = {"config.backend": arignote.config.backend, "runs": []}
    for backend in sys.argv[1:]:
        x = T.dvector("x")
        try:
            f = arignote.function([x], x * 2 + 1, backend=backend or None)
        except arignote.BackendError as error:
            report["runs"].append({"error": str(error)})
            continue
        report["runs"].append({"backend": f.backend.name, "value": f(np.array([1.0, 2.0])).tolist(),
                               "source": f.backend_source})
    print(json.dumps(report))
"""


def backends_table(stdout):
    """``arignote backends``'s table as {name: (usable, is_default, notes)}, and its trailing lines."""
    lines = stdout.splitlines()
    header = lines[0]
    assert header.split() == ["backend", "usable", "default", "notes"], stdout
    usable_at, default_at, notes_at = (header.index(word) for word in ("usable", "default", "notes"))
    rows, rest = {}, []
    for line in lines[1:]:
        if line[:usable_at].strip() and line[usable_at:default_at].strip() in ("yes", "no"):
            rows[line[:usable_at].strip()] = (line[usable_at:default_at].strip() == "yes",
                                              line[default_at:notes_at].strip() == "*",
                                              line[notes_at:].strip())
        else:
            rest.append(line)
    return rows, rest
