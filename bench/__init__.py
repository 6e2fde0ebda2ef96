"""``arignote bench`` (also ``python -m arignote.bench``): a fixed set of workloads on every usable
backend, each next to a hand-written NumPy baseline run in the same process, reported as median times
and as **ratios to that baseline**.

    arignote bench [--quick] [--backend NAME ...] [--workload NAME ...] [--json FILE] [--repeats N]
                   [--no-memory] [--list]

Ratios are what to compare between runs and machines, not seconds: the machines are noisy and the
baseline shares their noise (repeats of the baseline and of every backend are interleaved, round after
round). A repeat is the mean of as many calls back to back as last 0.2 s (0.1 s with --quick), started
once the threads the previous repeat left spinning have stopped: a training loop's steady step, not the
transient after another target's round. ``ratio = median time of the backend / median time of the NumPy baseline``: lower is better,
2.0 means twice NumPy's time. Every backend's first result is checked against the baseline's before it
is timed; a wrong result is reported as a failure row, never as a speed.

PyTensor, JAX and PyTorch, when importable, run the same workloads as extra rows (never required):
PyTensor from the very graph arignote builds, JAX jitted, PyTorch eager with autograd. Each peer runs in
a process of its own (its thread pools loaded beside the others once took a numba row from 0.85x to
1.68x), every workload there interleaved with a NumPy baseline of its own: its ratio is to that
baseline (marked * in the table; the JSON row's ``baseline_median_s`` is that baseline's median).

The "peak extra" column is the memory one call (one training step ...) needs above what was live before
it (its inputs, parameters and compiled code), on the baseline, every backend and every peer alike
(``footprint``): each backend in a process of its own (a peer in its own, after its timing) where glibc
maps every block of 64 KiB or more apart and unmaps it when freed, so that the kernel's peak resident
size (VmHWM, reset by ``echo 5 > /proc/self/clear_refs``) sees NumPy's, numba's and the C backend's
mallocs alike; after a first instance has been compiled, called and dropped, the peak of the second
call of a second one above its resident size before its first call. What a function keeps between
calls for reuse (the C backend's spare buffers) counts; "(left N)" says a call left N bytes of new
memory alive (a weight replaced by a new array rather than updated in place). Exact to about 128 KB per
core (the kernel counts pages per CPU in batches); Linux with glibc only; ``--no-memory`` skips it.

The "of limit" column says how close a workload came to what this machine can do, both measured in
the same run, at its start and its end (the best repeat of either: a peak, not a median):

    GEMM peak    2 n^3 / t of a float32 n x n matrix product (n = 2048; 1024 with --quick): NumPy's,
                 or a compiled backend's where it is faster (arignote's own kernels beat an OpenBLAS
                 held to AVX2 kernels on an AVX-512 machine: docs/products.md)
    bandwidth    2 * nbytes / t of np.copyto on a 256 MB float32 array (one read plus one write)
    mlp-train-*  FLOPs of its matrix products / t / GEMM peak, with FLOPs = 2B(2ih + 3ho) for batch B
                 and layer sizes i-h-o: forward xW1 and hW2, backward h'd (dW2), dW2' (dh), x'dh (dW1);
                 the gradient of x is not needed, elementwise work is not counted
    elemwise-4m, reduce-4m, softmax-xent
                 compulsory bytes / t / bandwidth, compulsory bytes = every input read once plus every
                 output written once (a two-pass algorithm, like reduce-4m's mean then deviations,
                 tops out near 1/2)
    lstm-train   FLOPs of its matrix products / t / GEMM peak, with FLOPs = 8BH(T(2I + 3H) - H) for
                 I inputs, H units, T steps, batch B: X·Wx, h·Wh, Xᵀ·dz, hᵀ·dz, and dz·Whᵀ after step 1
    lenet-train  FLOPs of its convolutions and matrix products / t / GEMM peak: each convolution's
                 forward and filter gradient, the second one's input gradient, each dense product three
                 times (bench/lenet.py, lenet_flops); pooling and elementwise work are not counted
    call-overhead(-vector), scan-overhead, compile-*: no limit; calls per second, time per loop step,
                 seconds

scan-overhead is what a loop costs: ``s = 0.999 * s + x_t`` over a float32 vector, the last state
returned; its rate column is the median divided by the number of steps. lstm-train is one SGD step of
an LSTM written the Theano way (scan, grad, updates); its baseline is a hand-written forward and
backward pass. lenet-train is one SGD step of the Deep Learning Tutorials' LeNet-5 at batch 128 (conv2d,
pool_2d, grad); its baseline is im2col (sliding windows) and matmul, forward and backward, by hand. Some
workloads have a goal on some backends (``Workload.goal``): the row says whether it is met
(call-overhead and call-overhead-vector: at most 1.5 us a call on c and numba; scan-overhead: at most
5 ns per step on c and numba; lstm-train: at most 0.7 x NumPy on c and numba;
lenet-train: at most 0.35 x NumPy on c and numba; compile-lstm-cold: under 3 s on c; mlp-train-b20 on
c and numba: at most 0.5 x NumPy, a peak extra of at most its activations (batch x (hidden + classes)
float32) plus one buffer of its largest weight matrix, and at most half its largest weight matrix left
alive, that is weights updated in place; mlp-train-b500 on c and numba: at least 90 % of the GEMM peak;
elemwise-4m on c: at least 75 % of the copy bandwidth). A goal missed does not change the exit status.

compile-cold and compile-warm time ``function(...)`` to the first result of the MLP training function
(batch 20), compile-lstm-cold that of lstm-train, graph building excluded, each in a fresh process: cold
with a new, empty cache directory (ARIGNOTE_CACHE_DIR, PyTensor's base_compiledir, JAX's compilation
cache), warm with the directory a cold run filled. Their baseline is the program's first NumPy training
step in a fresh process, so the ratio is "how many first NumPy steps one compilation costs". Backends
without a disk cache are measured the same way: for them warm and cold differ only by noise.

The package: ``workloads`` defines the workloads (data, NumPy baselines, the builders of every family),
``harness`` times them (interleaved repeats, the machine's limits and load, the processes of the peers,
of the memory measurements and of compile-*), ``footprint`` measures the memory of a call, ``report``
makes the rows, the table and the JSON; this module chooses what runs and is the command.
"""

import argparse
import dataclasses
import datetime
import importlib.util
import sys
import time

from ..backends.malloc import keep_freed_memory
from . import footprint
from .harness import (BASELINE, PEERS, Target, add_memory, best_limits, cpu_snapshot, machine,  # noqa: F401
                      measure, measure_limits, mismatch, other_load, own_process, run_compile, run_memory,
                      run_peer, run_workload)
from .report import apply_limits, judge_goals, print_table, write_json
from .workloads import WORKLOADS, Compiled, Sizes, Workload  # noqa: F401

QUICK = dict(repeats=5, min_time=0.1, sizes=Sizes(gemm=1024))
FULL = dict(repeats=15, min_time=0.2, sizes=Sizes())


# ---------------------------------------------------------------------------------------------------
# Running


def discover_targets():
    """Every usable arignote backend, then the importable peers."""
    from arignote.core.plugins import registry

    found = [Target(name, "arignote") for name in registry.names() if registry.availability(name)]
    module = {"pytensor": "pytensor", "jax": "jax", "torch": "torch"}
    return found + [peer for peer in PEERS if importlib.util.find_spec(module[peer.family]) is not None]


def select_workloads(names):
    if not names:
        return list(WORKLOADS.values())
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        raise ValueError(f"no workload named {', '.join(map(repr, unknown))}; workloads: {', '.join(WORKLOADS)}")
    return [w for w in WORKLOADS.values() if w.name in names]


def select_targets(names):
    available = discover_targets()
    if not names:
        return available
    by_name = {t.name: t for t in available}
    chosen = []
    for name in names:
        if name == BASELINE.name:
            continue  # always there
        if name not in by_name:
            from arignote.core.plugins import registry

            why = (f"backend {name!r} is not usable here: {registry.availability(name).reason}"
                   if name in registry.names() else f"no backend named {name!r}")
            raise ValueError(f"{why}; usable here: {', '.join(['numpy'] + list(by_name))}")
        chosen.append(by_name[name])
    return chosen


def run_bench(workloads=None, backends=None, quick=False, json_path=None, out=None, sizes=None, repeats=None,
              min_time=None, progress=None, memory=True, targets=None):
    """Run the benchmark; print the table to ``out`` and return the report (a dict, also written as JSON
    to ``json_path``). ``sizes``, ``repeats`` and ``min_time`` override the defaults (tests use tiny ones),
    ``memory=False`` skips the memory measurement, ``targets`` (Targets) replaces ``backends``."""
    started = time.perf_counter()
    keep_freed_memory()  # every process of the bench: NumPy's baseline then does not depend on the backends run
    out = out or sys.stdout
    mode = QUICK if quick else FULL
    sizes = sizes or mode["sizes"]
    repeats = repeats or mode["repeats"]
    min_time = mode["min_time"] if min_time is None else min_time
    chosen = select_workloads(workloads)
    targets = select_targets(backends) if targets is None else list(targets)
    here, peers = [t for t in targets if not own_process(t)], [t for t in targets if own_process(t)]
    memory = memory and footprint.supported()
    progress = progress or _progress
    load = cpu_snapshot()
    report = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
              "quick": quick, "repeats": repeats, "sizes": dataclasses.asdict(sizes),
              "backends": [t.name for t in targets], "memory": memory}
    progress("limits")
    own_products = [t.name for t in here if t.family == "arignote" and t.name != "reference"]  # the reference's is NumPy's
    limits = measure_limits(sizes, repeats, min_time, own_products)
    timed = [w for w in chosen if not w.compile]
    by_workload = {}
    for workload in timed:
        progress(workload.name)
        by_workload[workload.name] = run_workload(workload, here, sizes, repeats, min_time)
    for peer in peers if timed else []:
        progress(f"{peer.name}, in a process of its own")
        for row in run_peer(peer, timed, sizes, repeats, min_time, memory):
            by_workload[row["workload"]].append(row)
    rows = [row for workload in timed for row in by_workload[workload.name]]
    if memory and timed:
        progress("memory, a process per backend")
        jobs = [(target, [w for w in timed if _ok(by_workload[w.name], target)]) for target in [BASELINE] + here]
        found = run_memory([(target, ws) for target, ws in jobs if ws], sizes)
        for row in rows:
            add_memory(row, found.get((row["workload"], row["backend"])))
    compiles = [w for w in chosen if w.compile]
    if compiles:
        progress(" and ".join(w.name for w in compiles))
        rows += run_compile(compiles, targets, sizes, min(repeats, 3 if quick else 5))
    progress("limits again")  # the best of both: a limit measured while a neighbour was busy is too low
    report["limits"] = best_limits(limits, measure_limits(sizes, repeats, min_time, own_products))
    apply_limits(rows, report["limits"])
    for row in rows:  # with the memory and the limits known
        if row["status"] == "ok":
            judge_goals(row, WORKLOADS[row["workload"]], sizes)
    report["results"] = rows
    report["wall_s"] = time.perf_counter() - started
    report["other_load"] = other_load(load, cpu_snapshot())
    print_table(report, out)
    if json_path:
        write_json(report, json_path)
    return report


def _ok(rows, target):
    return any(row["backend"] == target.name and row["status"] == "ok" for row in rows)


def _progress(what):
    print(f"bench: {what} ...", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# The command


def add_arguments(parser):
    parser.add_argument("--backend", action="append", metavar="NAME",
                        help="run only this backend (repeat or comma-separate; default: every usable one, "
                             "and PyTensor/JAX/PyTorch when installed); the NumPy baseline always runs")
    parser.add_argument("--workload", action="append", metavar="NAME",
                        help=f"run only this workload (repeat or comma-separate): {', '.join(WORKLOADS)}")
    parser.add_argument("--quick", action="store_true", help="5 repeats instead of 15, compile-* 3 instead of 5, GEMM peak at n=1024")
    parser.add_argument("--json", metavar="FILE", help="also write the full report, every time included, as JSON")
    parser.add_argument("--repeats", type=int, metavar="N", help="repeats per measurement (the median is shown)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the memory measurement (the peak extra column: a process per backend)")
    parser.add_argument("--list", action="store_true", help="list the workloads and the usable backends, and exit")


def _split(values):
    return [name for value in values or [] for name in value.split(",") if name]


def run_command(args, out=None):
    out = out or sys.stdout
    if args.list:
        width = max(map(len, WORKLOADS))
        for workload in WORKLOADS.values():
            out.write(f"{workload.name:<{width}}  {workload.description}\n")
        out.write("backends: " + ", ".join(["numpy (baseline)"] + [t.name for t in discover_targets()]) + "\n")
        return 0
    try:
        report = run_bench(_split(args.workload), _split(args.backend), quick=args.quick, json_path=args.json,
                           out=out, repeats=args.repeats, memory=not args.no_memory)
    except ValueError as error:
        print(f"arignote bench: {error}", file=sys.stderr)
        return 2
    return 0 if all(row["status"] == "ok" for row in report["results"]) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="arignote bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_command(parser.parse_args(argv))
