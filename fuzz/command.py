"""``arignote fuzz``: the command's arguments (light: the fuzzer loads when it runs)."""

import sys


def add_arguments(parser):
    parser.add_argument("--backend", required=True, help="the backend's name, as `arignote backends` lists it")
    parser.add_argument("--graphs", type=int, default=100, help="how many graphs to run (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="the seed: the same seed draws the same graphs")
    parser.add_argument("--op", action="append", metavar="OP",
                        help="only cases of this op (by class name, e.g. Mod); repeat for several")
    parser.add_argument("--steps", type=int, default=4, help="at most this many steps per graph (default 4)")
    parser.add_argument("--shrink-seconds", type=float, default=60.0,
                        help="time to shrink each new failure (default 60; 0: report it unshrunk)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds a graph may take before it counts as a hang (default 120)")
    parser.add_argument("--in-process", action="store_true",
                        help="run the graphs in this process (a crash then ends the run; for debugging)")


def run_command(args, out=None):
    from arignote.core.plugins import BackendError, registry

    out = out or sys.stdout
    try:
        import hypothesis  # noqa: F401  (the shrinker)
    except ImportError:
        out.write("Hypothesis is not installed: failures are reported as found, not shrunk "
                  "(pip install 'arignote[fuzz]')\n")
    try:
        registry.get(args.backend)
    except BackendError as error:
        out.write(f"{error}\n")
        return 2
    from .run import fuzz

    summary = fuzz(args.backend, args.graphs, args.seed, isolate=not args.in_process,
                   shrink_seconds=args.shrink_seconds, timeout=args.timeout,
                   ops_wanted=set(args.op) if args.op else None, max_steps=args.steps, progress=True, out=out)
    out.write("\n" + summary.text())
    return 0 if not summary.failures else 1
