"""Backends are plugins: discovered through real entry points, loaded lazily, selected by name, by
ARIGNOTE_BACKEND or by priority; unusable and broken plugins are reported, never fatal."""

import importlib.metadata
import re
import sys
import textwrap

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core.plugins import BackendError, registry

from plugin_kit import BROKEN_AT_IMPORT, BROKEN_HOOK, PROBE, backend_module, backends_table, plugins, python, \
    run, write_distribution  # noqa: F401  (plugins is a fixture)


@pytest.fixture(autouse=True)
def no_env_backend(monkeypatch):
    """These tests choose backends themselves, whatever ARIGNOTE_BACKEND the suite runs under."""
    monkeypatch.setattr(config, "backend", None)


def twice_plus_one(backend=None):
    x = T.dvector("x")
    f = arignote.function([x], x * 2 + 1, backend=backend)
    return f, f(np.array([1.0, 2.0]))


def test_reference_is_registered_through_the_entry_point_group():
    points = {e.name: e.value for e in importlib.metadata.entry_points(group="arignote.backends")}
    assert points["reference"] == "arignote.backends.reference"
    assert "reference" in registry.names()
    assert registry.availability("reference")
    assert registry.get("reference").name == "reference"


def test_third_party_plugin_is_found_listed_and_selectable_by_name(plugins):
    plugins("toy_backend", backend_module("toy"), {"toy": "toy_backend"})
    assert {"reference", "toy"} <= set(registry.names())
    assert registry.availability("toy") and registry.broken() == {}
    f, value = twice_plus_one(backend="toy")
    assert f.backend.name == "toy"
    assert f.backend_source.startswith("# compiled by the toy backend")
    np.testing.assert_array_equal(value, [3.0, 5.0])
    f, _ = twice_plus_one(backend="reference")
    assert f.backend.name == "reference"


def test_plugin_with_higher_priority_becomes_the_default(plugins):
    plugins("zippy_backend", backend_module("zippy", priority=10), {"zippy": "zippy_backend"})
    plugins("aardvark_backend", backend_module("aardvark", priority=-1), {"aardvark": "aardvark_backend"})
    assert registry.default_name() == "zippy"
    f, value = twice_plus_one()
    assert f.backend.name == "zippy"
    np.testing.assert_array_equal(value, [3.0, 5.0])


def test_plugin_with_lower_priority_does_not_become_the_default(plugins):
    builtin = registry.default_name()
    plugins("aardvark_backend", backend_module("aardvark", priority=-1), {"aardvark": "aardvark_backend"})
    assert registry.default_name() == builtin != "aardvark"
    assert twice_plus_one()[0].backend.name == builtin


def test_c_is_the_default_where_a_compiler_works_else_reference():
    assert registry.default_name() == ("c" if registry.availability("c") else "reference")
    # no compiler: c is listed as unusable, with the reason, and reference is the default
    result = run([sys.executable, "-m", "arignote", "backends"], CC="/nonexistent/cc")
    assert result.returncode == 0, result.stderr
    rows, _ = backends_table(result.stdout)
    usable, is_default, notes = rows["c"]
    assert not usable and not is_default and "/nonexistent/cc" in notes
    assert rows["reference"][:2] == (True, True)


@pytest.mark.parametrize("available, reason", [
    ('Availability(False, "no compiler")', "no compiler"),
    ('(False, "no compiler")', "no compiler"),  # a plain tuple means the same
    ('(_ for _ in ()).throw(OSError("no compiler"))', "available() failed: OSError: no compiler"),
], ids=["availability", "tuple", "raises"])
def test_installed_but_unusable_backend_is_listed_never_default_and_refused(available, reason, plugins):
    builtin = registry.default_name()
    plugins("nocc_backend", backend_module("nocc", priority=100, available=available), {"nocc": "nocc_backend"})
    assert "nocc" in registry.names()
    availability = registry.availability("nocc")
    assert not availability and availability.reason == reason
    assert registry.default_name() == builtin  # despite its priority
    with pytest.raises(BackendError, match=re.escape(f"'nocc' is installed but not usable here: {reason}")):
        twice_plus_one(backend="nocc")
    assert twice_plus_one()[0].backend.name == builtin


def test_broken_plugins_are_recorded_and_do_not_stop_other_backends(plugins):
    plugins("frob_backend", BROKEN_AT_IMPORT, {"frob": "frob_backend"})
    plugins("hooky_backend", BROKEN_HOOK, {"hooky": "hooky_backend"})
    plugins("toy_backend", backend_module("toy"), {"toy": "toy_backend"})
    broken = registry.broken()
    assert set(broken) == {"frob", "hooky"}
    assert "ImportError: needs libfrobnicate" in broken["frob"]
    assert "RuntimeError: GPU driver too old" in broken["hooky"]
    assert {"reference", "toy"} <= set(registry.names()) and not {"frob", "hooky"} & set(registry.names())
    with pytest.raises(BackendError, match="'frob' is installed but broken: .*ImportError: needs libfrobnicate"):
        twice_plus_one(backend="frob")
    with pytest.raises(BackendError, match="'hooky' is installed but broken: .*GPU driver too old"):
        twice_plus_one(backend="hooky")
    for name in ("reference", "toy"):
        f, value = twice_plus_one(backend=name)
        assert f.backend.name == name
        np.testing.assert_array_equal(value, [3.0, 5.0])


def test_unknown_backend_error_names_the_installed_ones(plugins):
    plugins("toy_backend", backend_module("toy"), {"toy": "toy_backend"})
    with pytest.raises(BackendError, match=r"no backend named 'nope'; installed: .*reference.*toy"):
        twice_plus_one(backend="nope")


def test_env_var_naming_no_backend_fails_at_compile_and_names_installed_ones():
    report = python(PROBE, "", "reference", ARIGNOTE_BACKEND="nope")
    assert report["config.backend"] == "nope"
    unset, overridden = report["runs"]
    assert "no backend named 'nope'" in unset["error"] and "reference" in unset["error"]
    assert overridden["backend"] == "reference" and overridden["value"] == [3.0, 5.0]  # backend= wins


def test_env_var_selects_a_backend_over_the_default_and_backend_argument_overrides_it(tmp_path):
    """toy (priority 10) is the default; ARIGNOTE_BACKEND picks reference, or toy, and backend= wins."""
    write_distribution(tmp_path, "toy_backend", backend_module("toy", priority=10), {"toy": "toy_backend"})
    report = python(PROBE, "", "toy", pythonpath=tmp_path, ARIGNOTE_BACKEND="reference")
    assert [run["backend"] for run in report["runs"]] == ["reference", "toy"]
    report = python(PROBE, "", "reference", pythonpath=tmp_path, ARIGNOTE_BACKEND="toy")
    env_selected, overridden = report["runs"]
    assert env_selected["backend"] == "toy" and env_selected["value"] == [3.0, 5.0]
    assert env_selected["source"].startswith("# compiled by the toy backend")
    assert overridden["backend"] == "reference"


def test_import_is_light_and_loads_no_plugin(tmp_path):
    """`import arignote` imports neither numba nor cffi, loads no entry point (not even one that is
    installed and would be found, as the second half shows) and is quick."""
    write_distribution(tmp_path, "tripwire_backend", backend_module("tripwire"), {"tripwire": "tripwire_backend"})
    report = python("""
        import json, sys, time
        start = time.perf_counter()
        import arignote
        seconds = time.perf_counter() - start
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "cffi", "tripwire_backend")
                        or m.startswith("arignote.backends."))
        from arignote.core.plugins import registry
        names = registry.names()
        print(json.dumps({"seconds": seconds, "loaded": loaded, "names": names,
                          "tripwire_loaded_later": "tripwire_backend" in sys.modules}))
    """, pythonpath=tmp_path)
    assert report["loaded"] == []
    assert report["seconds"] < 1.0, report
    assert {"reference", "tripwire"} <= set(report["names"]) and report["tripwire_loaded_later"]


# A PEP 517 build backend of a few lines, so that pip can build the plugin without network, build
# isolation or the `wheel` package (setuptools < 70.1 cannot build a wheel without it).
TINY_BUILD_BACKEND = '''
import base64, hashlib, zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    pyproject = tomllib.loads(Path("pyproject.toml").read_text())
    project, modules = pyproject["project"], pyproject["tool"]["tiny_build"]["py-modules"]
    name, version = project["name"].replace("-", "_"), project["version"]
    info = f"{name}-{version}.dist-info"
    entry_points = "".join(f"[{group}]\\n" + "".join(f"{k} = {v}\\n" for k, v in points.items())
                           for group, points in project["entry-points"].items())
    files = {f"{module}.py": Path(f"{module}.py").read_bytes() for module in modules}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {version}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    files[f"{info}/entry_points.txt"] = entry_points.encode()
    record = "".join(f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},"
                     f"{len(data)}\\n" for path, data in files.items()) + f"{info}/RECORD,,\\n"
    wheel = f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{info}/RECORD", record)
    return wheel
'''


def test_plugin_package_installed_with_pip_is_listed_and_used(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = []
        build-backend = "tiny_build"
        backend-path = ["."]

        [project]
        name = "arignote-pipdemo"
        version = "0.1"

        [project.entry-points."arignote.backends"]
        pipdemo = "pipdemo_backend"

        [tool.tiny_build]
        py-modules = ["pipdemo_backend"]
        '''))
    (project / "tiny_build.py").write_text(TINY_BUILD_BACKEND)
    (project / "pipdemo_backend.py").write_text(backend_module("pipdemo"))
    site = tmp_path / "site"
    install = run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                   "--no-index", "--target", site, project], cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "pipdemo_backend.py").exists()
    assert (site / "arignote_pipdemo-0.1.dist-info" / "INSTALLER").read_text().strip() == "pip"
    report = python("""
        import io, json
        import numpy as np
        import arignote
        import arignote.tensor as T
        from arignote.cli import backends_report
        listing = io.StringIO()
        backends_report(listing)
        x = T.dvector("x")
        f = arignote.function([x], x * 2 + 1, backend="pipdemo")
        print(json.dumps({"listing": listing.getvalue(), "backend": f.backend.name,
                          "value": f(np.array([1.0, 2.0])).tolist()}))
    """, pythonpath=site)
    rows, _ = backends_table(report["listing"])
    assert rows["pipdemo"][0] and rows["reference"][0]
    assert report["backend"] == "pipdemo" and report["value"] == [3.0, 5.0]
