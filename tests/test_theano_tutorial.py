"""Theano's tutorial pages, written as Theano programs (``import theano``), each run as a script by
``python -m arignote.compat.theano`` on every backend: the compat layer is all they get."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import arignote

TESTS = Path(__file__).resolve().parent
PAGES = TESTS / "theano_tutorial"
SCRIPTS = sorted(p.name for p in PAGES.glob("*.py") if p.name != "config_flags.py")


def run_page(name, backend, *args, flags=None):
    env = dict(os.environ, ARIGNOTE_BACKEND=backend, ARIGNOTE_CACHE_DIR=arignote.config.cache_dir)
    env.pop("THEANO_FLAGS", None)
    if flags is not None:
        env["THEANO_FLAGS"] = flags
    done = subprocess.run([sys.executable, "-m", "arignote.compat.theano", str(PAGES / name), *args],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, f"{name} on {backend}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("name", SCRIPTS)
def test_tutorial_page_runs_unchanged(name, backend, tmp_path):
    out = run_page(name, backend, str(tmp_path))
    assert out.rstrip().splitlines()[-1].startswith("ok"), out


def test_theano_flags_set_float32_for_a_program(backend):
    run_page("config_flags.py", backend,
             flags="floatX=float32,device=cpu,mode=FAST_RUN,optimizer=fast_run,exception_verbosity=high")


# the classic programs (the deep-learning tutorials' MLP, LeNet, RNNs, RBM, HMC...) that the suite runs
# in process with `import arignote as theano` on every backend, run again with `import theano` only
CLASSIC_PROGRAMS = ["test_theano_program.py", "test_theano_scan_programs.py", "test_theano_conv_program.py"]


@pytest.mark.parametrize("name", CLASSIC_PROGRAMS)
def test_classic_programs_run_with_only_the_theano_import(name, tmp_path):
    source = re.sub(r"\barignote\b", "theano", (TESTS / name).read_text())
    assert "import theano" in source and "arignote" not in source
    (tmp_path / name).write_text(source)
    for helper in ("conftest.py", "checks.py", "pytest.ini"):  # the `backend` fixture, as the suite has it
        shutil.copy(TESTS / helper, tmp_path / helper)
    env = dict(os.environ, ARIGNOTE_BACKEND="c", ARIGNOTE_CACHE_DIR=arignote.config.cache_dir)
    env.pop("THEANO_FLAGS", None)
    done = subprocess.run([sys.executable, "-m", "arignote.compat.theano", "-m", "pytest", "-q", "-p", "no:xdist",
                           "-p", "no:cacheprovider", str(tmp_path / name)],
                          capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert done.returncode == 0 and " passed" in done.stdout and "failed" not in done.stdout, done.stdout + done.stderr
