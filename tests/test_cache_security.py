"""The disk cache trusts only itself (issue 21, docs/cache.md), on c and numba: a cache folder of another
user or writable by others is refused (a private temporary folder is used instead, said once); code
planted in any artefact (C library, cffi module, generated Python, numba's index and object files)
never runs; every kind of damage is rebuilt by the next process; a cache that cannot be written warns
and keeps working instead of the default backend silently becoming the reference.

Each attack runs in a fresh process (that is the point: what a later process finds on disk), all of a
backend's at once on copies of one filled cache."""

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from arignote import config
from arignote.backends import cache

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = textwrap.dedent("""
    import errno, json, os, sys, warnings
    import numpy as np
    import arignote, arignote.tensor as T
    from arignote.backends import cache
    from arignote.core.plugins import registry

    full = os.environ.get("TEST_FULL_DISK")  # "cache": the cache folder's disk is full; "all": every disk
    if full:
        def no_space(function):
            def refuse(path, *args):
                if full == "all" or str(path).startswith(arignote.config.cache_dir):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
                return function(path, *args)
            return refuse
        cache.stage, cache.open_new = no_space(cache.stage), no_space(cache.open_new)
    backend = sys.argv[1]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = T.dmatrix("x")
        try:
            f = arignote.function([x], T.tanh(x).sum(axis=1) * 3 + 1, backend=backend)
            value = f(np.ones((2, 3)))
        except Exception as error:
            print(json.dumps({"error": f"{type(error).__name__}: {error}", "warnings": [
                str(w.message) for w in caught if issubclass(w.category, cache.CacheWarning)]}))
            raise SystemExit(0)
    run = f._executable
    if backend == "c":
        compiled = run.compiled_now
    else:
        compiled = sum(run.__globals__["segment0"].stats.cache_misses.values()) > 0
    print(json.dumps({"right": bool(np.allclose(value, 9 * np.tanh(1.0) + 1)), "compiled": bool(compiled),
                      "default": registry.default_name() if os.environ.get("TEST_DEFAULT") else None,
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, cache.CacheWarning)]}))
""")


def start(backend, cache_dir, **env):
    environment = dict(os.environ, ARIGNOTE_CACHE_DIR=str(cache_dir), PYTHONDONTWRITEBYTECODE="1", **env)
    for name in ("ARIGNOTE_BACKEND", "ARIGNOTE_CHECK", "NUMBA_CACHE_DIR"):
        environment.pop(name, None)
    return subprocess.Popen([sys.executable, "-c", SCRIPT, backend], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT)


def answer(process):
    out, err = process.communicate(timeout=300)
    if process.returncode != 0:
        return {"crashed": f"exit status {process.returncode}: {err[-2000:]}"}
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------
# the artefacts of a filled cache, and what is done to them


def entries(folder):
    """The c entries: folders of c/ not starting with a dot."""
    return [p for p in (folder / "c").iterdir() if p.is_dir() and not p.name.startswith(".")]


def program_entry(folder):
    return next(p for p in entries(folder) if (p / "program.c").exists() and "ari_run" in (p / "program.c").read_text()
                and "tanh" in (p / "program.c").read_text())


def ffi_module(folder):
    """The cffi module of the program interface (in an entry; before issue 21, a file of c/)."""
    return next(p for p in [*(folder / "c").glob("ffi_*/ffi.py"), *(folder / "c").glob("_arignote_c_ffi_*.py")])


def checksums(entry):
    """The file holding the entry's digests (before issue 21: program.so.sha256)."""
    return entry / "manifest.json" if (entry / "manifest.json").exists() else entry / "program.so.sha256"


def numba_files(folder, prefix, suffix):
    """The numba module files of ``prefix`` (program, kernel) that numba compiled (an index exists)."""
    pycache = folder / "numba" / "__pycache__"
    stems = sorted({p.name.split(".")[0] for p in pycache.glob(f"{prefix}_*.nbi")})
    assert stems, f"no compiled {prefix} module in {pycache}"
    if suffix == ".py":
        return [folder / "numba" / f"{stem}.py" for stem in stems]
    if suffix == ".manifest.json":  # (none before issue 21)
        return [p for stem in stems for p in (folder / "numba").glob(f"{stem}.manifest.json")]
    return [p for stem in stems for p in pycache.glob(f"{stem}.*{suffix}")]


def flip(path):
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, min(len(data), len(data) // 3 + 64)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def empty(path):
    path.write_bytes(b"")


def planted_python(marker):
    return f"open({str(marker)!r}, 'w').write('planted code ran')\n".encode()


class Planted:
    """A pickle that runs code when it is loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('planted code ran')",)


def planted_library(folder, marker):
    """A shared library whose constructor runs when it is loaded."""
    source = folder / "planted.c"
    source.write_text(f'#include <stdio.h>\n__attribute__((constructor)) static void planted(void) '
                      f'{{ FILE *f = fopen("{marker}", "w"); if (f) {{ fputs("ran", f); fclose(f); }} }}\n')
    library = folder / "planted.so"
    subprocess.run(["cc", "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return library.read_bytes()


def consistent(path, data, manifest):
    """Replace ``path`` and record its digest in ``manifest``: the work of someone who can write the folder."""
    path.write_bytes(data)
    if manifest.suffix == ".sha256":  # before issue 21
        manifest.write_text(cache.digest(data))
        return
    files = json.loads(manifest.read_text())
    name = os.path.relpath(path, manifest.parent)
    files["files"][name] = cache.digest(data)
    manifest.write_text(json.dumps(files))


def plant_everywhere_c(folder, marker, scratch):
    entry = program_entry(folder)
    (entry / "program.so").write_bytes(planted_library(scratch, marker))
    ffi_module(folder).write_bytes(planted_python(marker))


def plant_everywhere_numba(folder, marker, scratch):
    numba = folder / "numba"
    for path in numba.glob("*.py"):  # programs, kernels, the runtime copy, the glue
        path.write_bytes(planted_python(marker) + path.read_bytes())
    import numba as nb

    for path in (numba / "__pycache__").glob("*.nbi"):
        path.write_bytes(pickle.dumps(nb.__version__) + pickle.dumps(Planted(marker)))
    for path in (numba / "__pycache__").glob("*.nbc"):
        path.write_bytes(pickle.dumps(Planted(marker)))


def open_folder_c(folder, marker, scratch):
    """The attack of issue 21: a cache folder others can write, an entry planted with its manifest."""
    entry = program_entry(folder)
    consistent(entry / "program.so", planted_library(scratch, marker), checksums(entry))
    os.chmod(folder / "c", 0o777)


def open_folder_numba(folder, marker, scratch):
    for path in numba_files(folder, "program", ".nbc"):
        manifests = numba_files(folder, "program", ".manifest.json")
        consistent(path, pickle.dumps(Planted(marker)), manifests[0]) if manifests else path.write_bytes(
            pickle.dumps(Planted(marker)))
    os.chmod(folder / "numba", 0o777)


def other_owner(plant):
    def attack(folder, marker, scratch):
        plant(folder, marker, scratch)
        os.chmod(folder / ("c" if plant is open_folder_c else "numba"), 0o700)
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, 4242, 4242)
    return attack


# (what is done, whether the program must be compiled again)
DAMAGE = {
    "c": {
        "truncate the program": (lambda f: truncate(program_entry(f) / "program.so"), True),
        "empty the program": (lambda f: empty(program_entry(f) / "program.so"), True),
        "corrupt the program": (lambda f: flip(program_entry(f) / "program.so"), True),
        "corrupt the cffi module": (lambda f: flip(ffi_module(f)), False),
        "corrupt the manifest": (lambda f: flip(checksums(program_entry(f))), True),
        "lose the manifest": (lambda f: checksums(program_entry(f)).unlink(), True),
    },
    "numba": {
        "truncate the program": (lambda f: truncate(numba_files(f, "program", ".py")[0]), False),
        "empty a kernel": (lambda f: empty(numba_files(f, "kernel", ".py")[0]), False),
        "corrupt the index": (lambda f: [flip(p) for p in numba_files(f, "program", ".nbi")], True),
        "corrupt the object file": (lambda f: [flip(p) for p in numba_files(f, "program", ".nbc")], True),
        "truncate the object file": (lambda f: [truncate(p) for p in numba_files(f, "program", ".nbc")], True),
        "corrupt the manifest": (lambda f: [flip(p) for p in numba_files(f, "program", ".manifest.json")], True),
    },
}
ATTACKS = {
    "c": {"planted code in every artefact": plant_everywhere_c, "a folder others can write": open_folder_c,
          "a folder of another user": other_owner(open_folder_c)},
    "numba": {"planted code in every artefact": plant_everywhere_numba, "a folder others can write": open_folder_numba,
              "a folder of another user": other_owner(open_folder_numba)},
}


def assert_consistent(folder):
    """Every entry the next process would use is whole: each c entry verifies, and every numba index
    and object file is covered by its module's manifest."""
    if (folder / "c").exists():
        for entry in entries(folder):
            assert cache.read_entry(str(folder / "c"), entry.name) is not None, entry
    pycache = folder / "numba" / "__pycache__"
    for path in pycache.glob("*.nb?") if pycache.exists() else []:
        manifest = folder / "numba" / (path.name.split(".")[0] + ".manifest.json")
        files = json.loads(manifest.read_text())["files"]
        assert files.get(f"__pycache__/{path.name}") == cache.digest(path.read_bytes()), path


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """{backend: a cold cache folder filled by processes compiling the same graph at once (two for numba:
    test_two_cold_numba_processes...), and "results": {backend: their answers}}."""
    folders, runs = {}, []
    for backend in ("c", "numba", "numba"):
        folders[backend] = folders.get(backend) or tmp_path_factory.mktemp(f"filled-{backend}")
        runs.append((backend, start(backend, folders[backend])))
    folders["results"] = {}
    for backend, run in runs:
        folders["results"].setdefault(backend, []).append(answer(run))
    return folders


def available(backend):
    if backend == "numba":
        pytest.importorskip("numba")
    else:
        pytest.importorskip("cffi")
        if shutil.which("cc") is None:
            pytest.skip("no C compiler")


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_every_damage_and_attack_is_rebuilt_in_a_fresh_process_and_no_planted_code_runs(backend, filled, tmp_path):
    available(backend)
    assert all(result.get("right") for result in filled["results"][backend]), filled["results"][backend]
    runs = {}
    for name, (damage, _) in DAMAGE[backend].items():
        folder = tmp_path / name.replace(" ", "-")
        shutil.copytree(filled[backend], folder, symlinks=True)
        damage(folder)
        runs[name] = (folder, start(backend, folder))
    for name, attack in ATTACKS[backend].items():
        if name == "a folder of another user" and os.geteuid() != 0:
            continue  # only root can give files away (test_a_root_of_another_user_is_refused checks the rule)
        folder = tmp_path / name.replace(" ", "-")
        shutil.copytree(filled[backend], folder, symlinks=True)
        attack(folder, tmp_path / f"{folder.name}-ran", tmp_path)
        runs[name] = (folder, start(backend, folder))
    failures = []
    for name, (folder, run) in runs.items():
        result = answer(run)
        if (tmp_path / f"{folder.name}-ran").exists():
            failures.append(f"{name}: planted code ran")
        if not result.get("right"):
            failures.append(f"{name}: {result}")
            continue
        refused = name.startswith("a folder")
        if name in DAMAGE[backend] and result["compiled"] != DAMAGE[backend][name][1]:
            failures.append(f"{name}: compiled again {result['compiled']}, expected {DAMAGE[backend][name][1]}")
        said = any("does not use its cache folder" in w for w in result["warnings"])
        if refused and not (result["compiled"] and said):
            failures.append(f"{name}: the folder was not refused: {result}")
        if not refused:
            if result["warnings"]:
                failures.append(f"{name}: {result['warnings']}")
            try:
                assert_consistent(folder)
            except AssertionError as error:
                failures.append(f"{name}: not repaired: {str(error).splitlines()[0]}")
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_an_unwritable_cache_warns_and_the_backend_keeps_working(backend, tmp_path):
    """A cache folder that cannot be made (a file where a folder should be), a full disk under the cache,
    and (numba) no disk at all: a warning naming the folder and the fix, right answers, and c stays
    the default backend."""
    available(backend)
    (tmp_path / "a-file").write_text("")
    runs = {"full disk": start(backend, tmp_path / "full", TEST_FULL_DISK="cache", TEST_DEFAULT="1"),
            "no disk at all": start(backend, tmp_path / "none", TEST_FULL_DISK="all")}
    if backend == "c":  # the same rule for numba (cache.folder), without a numba process more
        runs["cannot be made"] = start(backend, tmp_path / "a-file" / "cache", TEST_DEFAULT="1")
    results = {name: answer(run) for name, run in runs.items()}
    for name in results.keys() - {"no disk at all"}:
        result = results[name]
        assert result.get("right"), (name, result)
        assert result["default"] == "c", (name, result)
        warning = "\n".join(result["warnings"])
        assert "cannot write its cache folder" in warning and str(tmp_path) in warning, (name, warning)
        assert "To fix:" in warning and "ARIGNOTE_CACHE_DIR" in warning
    nothing = results["no disk at all"]
    if backend == "numba":  # compiled without a disk cache
        assert nothing.get("right"), nothing
    else:  # the compiler needs a disk: a clear error and a warning, not a silent fallback
        assert "No space left on device" in nothing.get("error", ""), nothing
        assert any("the C backend cannot compile" in w for w in nothing["warnings"]), nothing


def test_two_cold_numba_processes_compiling_the_same_graph_both_succeed_and_agree(filled):
    """numba's files written by both, each recorded in the manifest under the folder's lock."""
    available("numba")
    for result in filled["results"]["numba"]:
        assert result.get("right") and result["warnings"] == [], result
    assert_consistent(filled["numba"])


# ---------------------------------------------------------------------------------------------------
# the rules of backends/cache.py, in this process


@pytest.fixture
def root(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setattr(config, "cache_dir", str(folder))
    return folder


def refused(kind="c"):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = cache.folder(kind)
    return path, [str(w.message) for w in caught if issubclass(w.category, cache.CacheWarning)]


def test_a_new_cache_is_made_private(root):
    path, said = refused()
    assert said == [] and path == str(root / "c")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700 and stat.S_IMODE(os.stat(path).st_mode) == 0o700


@pytest.mark.parametrize("how", ["root writable by others", "folder writable by group", "folder is a link",
                                 "root's parent writable by everyone"])
def test_an_open_or_linked_folder_is_refused_once_with_the_fix(root, tmp_path, how):
    if how == "root's parent writable by everyone":
        shared = tmp_path / "shared"
        shared.mkdir()
        os.chmod(shared, 0o777)
        config.cache_dir = str(shared / "cache")
    else:
        root.mkdir(mode=0o700)
        if how == "root writable by others":
            os.chmod(root, 0o777)
        elif how == "folder writable by group":
            (root / "c").mkdir(mode=0o770)
            os.chmod(root / "c", 0o770)
        else:
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir(mode=0o700)
            (root / "c").symlink_to(elsewhere)
    path, said = refused()
    assert cache.is_private(path) and stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert len(said) == 1 and "does not use its cache folder" in said[0] and "To fix:" in said[0], said
    assert refused()[1] == []  # said once


def test_a_root_of_another_user_is_refused(root, monkeypatch):
    root.mkdir(mode=0o700)
    monkeypatch.setattr(cache, "_uid", lambda: os.geteuid() + 4242)
    path, said = refused("numba")
    assert cache.is_private(path)
    assert "belongs to user id" in said[0] and str(root) in said[0]


def test_an_entry_is_read_only_when_every_digest_agrees(tmp_path):
    root = tmp_path / "c"
    root.mkdir(mode=0o700)
    assert cache.store(str(root), "e", {"a.so": b"library", "b.py": b"x = 1"}) == {"a.so": b"library", "b.py": b"x = 1"}
    assert cache.read_entry(str(root), "e") == {"a.so": b"library", "b.py": b"x = 1"}
    entry = root / "e"
    (entry / "b.py").write_bytes(b"x = 2")  # a changed file
    assert cache.read_entry(str(root), "e") is None
    (entry / "b.py").write_bytes(b"x = 1")
    os.chmod(entry / "b.py", 0o666)  # a file others can write
    assert cache.read_entry(str(root), "e") is None
    os.chmod(entry / "b.py", 0o600)
    (entry / "b.py").unlink()
    (entry / "b.py").symlink_to(tmp_path / "elsewhere.py")  # a link, even to the right bytes
    (tmp_path / "elsewhere.py").write_bytes(b"x = 1")
    assert cache.read_entry(str(root), "e") is None
    # publishing again replaces the damaged entry; publishing over a whole one keeps it
    assert cache.store(str(root), "e", {"a.so": b"library", "b.py": b"x = 1"}) is not None
    assert cache.read_entry(str(root), "e") == {"a.so": b"library", "b.py": b"x = 1"}
    assert cache.store(str(root), "e", {"a.so": b"library", "b.py": b"x = 1"}) == {"a.so": b"library", "b.py": b"x = 1"}
    assert sorted(p.name for p in root.iterdir()) == ["e"]  # no staging or trash left behind


def test_a_manifest_cannot_name_files_outside_its_entry(tmp_path):
    root = tmp_path / "c"
    root.mkdir(mode=0o700)
    (tmp_path / "outside").write_bytes(b"secret")
    entry = root / "e"
    entry.mkdir(mode=0o700)
    cache.Manifest(str(entry / cache.MANIFEST)).write({"../../outside": cache.digest(b"secret")})
    assert cache.read_entry(str(root), "e") is None
