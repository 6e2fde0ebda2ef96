"""``python -m arignote.compat.theano script.py args...`` runs a Theano program on arignote, as
``python script.py args...`` would run it on Theano (``-m module args...`` runs a module)."""

import os
import runpy
import sys

from . import install

USAGE = "usage: python -m arignote.compat.theano script.py [args...]\n" \
        "       python -m arignote.compat.theano -m module [args...]"


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "-m" and len(argv) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        install()
    except (ValueError, RuntimeError) as error:
        print(f"arignote.compat.theano: {error}", file=sys.stderr)
        return 2
    if argv[0] == "-m":
        sys.argv = argv[1:]
        sys.path[0] = os.getcwd()  # as python -m module puts the current directory first
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        script = argv[0]
        if not os.path.isfile(script):
            print(f"arignote.compat.theano: can't open file {script!r}: no such file", file=sys.stderr)
            return 2
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(script))  # as python script.py puts its folder first
        runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
