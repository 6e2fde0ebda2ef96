"""Theano's tutorial pages, written as Theano programs (``import theano``), each run as a script by
``python -m arignote.compat.theano`` on every backend: the compat layer is all they get."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import arignote

PAGES = Path(__file__).resolve().parent / "theano_tutorial"
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
