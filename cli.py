"""The ``arignote`` command (also ``python -m arignote``)."""

import argparse
import sys


def backends_report(out):
    from .core.config import config
    from .core.plugins import BackendError, registry

    try:
        default = registry.default_name()
    except BackendError:
        default = None
    rows = []
    for name in registry.names():
        availability = registry.availability(name)
        rows.append((name, "yes" if availability else "no", "*" if name == default else "",
                     "" if availability else availability.reason))
    for name, reason in sorted(registry.broken().items()):
        rows.append((name, "no", "", reason))
    width = max([len(r[0]) for r in rows] + [len("backend")])
    out.write(f"{'backend':<{width}}  usable  default  notes\n")
    for name, usable, is_default, notes in rows:
        out.write(f"{name:<{width}}  {usable:<6}  {is_default:<7}  {notes}".rstrip() + "\n")
    if config.backend:
        # Check the selection rather than echo it: a misspelt, broken or unusable ARIGNOTE_BACKEND makes
        # every function() fail, which is what someone running this command wants to learn.
        try:
            registry.get(config.backend)
        except BackendError as error:
            out.write(f"ARIGNOTE_BACKEND={config.backend} cannot be used: {error}\n")
            return 1
        out.write(f"ARIGNOTE_BACKEND={config.backend} selects {config.backend!r} for every function\n")
    return 0 if default else 1


def conformance_report(backend, only, out):
    from .core.conformance import report
    from .core.plugins import BackendError, registry

    try:
        registry.get(backend)
    except BackendError as error:
        out.write(f"{error}\n")
        return 2
    return 0 if report(backend, out, only=set(only) if only else None) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="arignote", description="arignote: a symbolic tensor compiler")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("backends", help="list the installed backends, whether each is usable, and the default")
    conformance = commands.add_parser("conformance", help="check a backend op by op against the reference")
    conformance.add_argument("backend", help="the backend's name, as `arignote backends` lists it")
    conformance.add_argument("--op", action="append", metavar="OP",
                             help="only this op (by class name, e.g. Add); repeat for several")
    from . import bench  # light: NumPy only; backends and peers are imported when it runs

    bench.add_arguments(commands.add_parser("bench", help="time fixed workloads on every usable backend "
                                                          "against hand-written NumPy baselines"))
    from .layers import demo  # light: imports scikit-learn and tqdm only when it runs

    demo.add_arguments(commands.add_parser("demo", help="train an MLP (or a LeNet: --model lenet) on scikit-learn's "
                                                        "digits and report the test accuracy, the time per epoch and "
                                                        "the backend"))
    from .fuzz import command as fuzz_command  # light: the fuzzer (and Hypothesis) load when it runs

    fuzz_command.add_arguments(commands.add_parser("fuzz", help="run random graphs on a backend against the "
                                                                "reference and shrink each failure to a reproducer"))
    args = parser.parse_args(argv)
    if args.command == "backends":
        return backends_report(sys.stdout)
    if args.command == "conformance":
        return conformance_report(args.backend, args.op, sys.stdout)
    if args.command == "bench":
        return bench.run_command(args)
    if args.command == "demo":
        return demo.run_command(args)
    if args.command == "fuzz":
        return fuzz_command.run_command(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
