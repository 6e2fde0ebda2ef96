"""The timing harness of ``arignote bench``: who runs (the targets), how a result is checked against the
baseline's, how repeats are timed and interleaved, what the machine can do (its GEMM peak and copy
bandwidth, its description, how busy other processes kept it), and the processes of their own: each
peer's (timed beside a NumPy baseline of its own), the ones that measure memory (``footprint``), and the
fresh ones that time compile-cold and compile-warm."""

import dataclasses
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from ..backends.malloc import keep_freed_memory
from . import footprint
from .report import fill_row, new_row
from .workloads import WORKLOADS, Sizes, _arrays


@dataclasses.dataclass(frozen=True)
class Target:
    """A row of the table: an arignote backend, a peer library, or the NumPy baseline. A target of any
    other family than "numpy" and "arignote" (a peer) runs in a process of its own; ``module``, when
    given, is imported there first (a peer defined outside this package: importing it adds its family's
    implementations to the workloads' ``impls``)."""

    name: str
    family: str  # "numpy", "arignote", "pytensor", "jax", "torch"
    module: str = None


BASELINE = Target("numpy", "numpy")
PEERS = (Target("pytensor", "pytensor"), Target("jax", "jax"), Target("pytorch", "torch"))


def mismatch(got, want, tol=(2e-3, 1e-4)):
    """None if ``got`` matches ``want``, else why not. Each array must pass two tests, ``tol`` being
    (worst, overall) or one number for both: max |error| / max |expected| <= worst catches a few entries
    gone wrong (a loop's tail left out), and the ratio of the 2-norms of error and expected <= overall
    catches a small error everywhere (a forgotten L2 term in a gradient) while float32 rounding, ~1e-6,
    passes."""
    worst, overall = tol if isinstance(tol, tuple) else (tol, tol)
    if len(got) != len(want):
        return f"{len(got)} result(s), expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        if g.size != w.size:
            return f"result {k} has shape {g.shape}, expected {w.shape}"
        g = g.reshape(w.shape)
        with np.errstate(all="ignore"):
            error = float(np.abs(g - w).max(initial=0)) / max(float(np.abs(w).max(initial=0)), 1e-30)
            if not error <= worst:  # NaN fails too
                return f"wrong result {k}: max |error| / max |expected| = {error:.3g} > {worst:g}"
            error = float(np.linalg.norm((g - w).ravel())) / max(float(np.linalg.norm(w.ravel())), 1e-30)
            if not error <= overall:
                return f"wrong result {k}: |error| / |expected| (2-norms) = {error:.3g} > {overall:g}"
    return None


# ---------------------------------------------------------------------------------------------------
# Timing


def _time(run, number):
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            run()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def _calibrate(run, min_time):
    """How many calls make one repeat last at least ``min_time``."""
    number = 1
    while True:
        elapsed = _time(run, number)
        if elapsed >= min_time or number >= 1 << 22:
            return number
        number = min(1 << 22, max(2 * number, int(number * 1.2 * min_time / max(elapsed, 1e-9))))


def settle(limit=0.3):
    """Waits (at most ``limit`` seconds) until no other thread of this process is running: after a
    product, OpenBLAS's workers spin for about 0.1 s waiting for more work, on the cores where the
    next target's calls then run (LeNet's step on c took 22-26 ms right after a NumPy round, 16.5 ms
    otherwise). Returns at once where nothing spins, and off Linux."""
    me, deadline = threading.get_native_id(), time.perf_counter() + limit
    while time.perf_counter() < deadline:
        try:
            tasks = [t for t in os.listdir("/proc/self/task") if int(t) != me]
            busy = False
            for task in tasks:
                with open(f"/proc/self/task/{task}/stat") as stat:
                    busy |= stat.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, ValueError, IndexError):
            return
        if not busy:
            return
        time.sleep(0.005)


def measure(runs, repeats, min_time):
    """Seconds per call of each run, ``repeats`` times, in interleaved rounds (so drift hits all alike),
    each repeat once the threads the last one left spinning have stopped (``settle``) and after half a
    repeat's calls untimed: on the 2-vCPU virtual machine the first calls after the cores idled, or
    after another target's round, ran slow for about 0.1 s (LeNet's step on c: 22-29 ms for four or
    five calls, then 14.5 ms; the same after 0.3 s of sleep, not after a single-threaded pass over 64
    MB), a transient of the interleaving and not of a training loop, whose steps follow each other."""
    numbers = {key: _calibrate(run, min_time) for key, run in runs.items()}
    times = {key: [] for key in runs}
    failed = {}
    for _ in range(repeats):
        gc.collect()
        for key, run in runs.items():
            if key in failed:
                continue
            settle()
            try:
                _time(run, max(1, numbers[key] // 2))  # untimed: the steady state again (WARM_UP)
                times[key].append(_time(run, numbers[key]) / numbers[key])
            except Exception as error:  # a backend that fails on a later call
                failed[key] = f"{type(error).__name__}: {error}"
    return times, failed


def measure_limits(sizes, repeats, min_time, backends=()):
    """The machine's float32 GEMM FLOP/s and copy bandwidth (bytes/s), measured now: the best repeat,
    since a limit is what the machine can do when nothing else gets in the way. The GEMM is NumPy's
    n x n product, and each of ``backends``' (arignote backends by name) where it runs faster: an
    OpenBLAS held to AVX2 kernels on an AVX-512 machine is not the machine's limit, and arignote's own
    kernels then run the product about twice as fast (docs/products.md). ``gemm_by`` names the fastest."""
    import arignote
    import arignote.tensor as T

    rng = np.random.default_rng(0)
    n = sizes.gemm
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    c = np.empty_like(a)
    src = np.ones(sizes.copy_mb * (1 << 20) // 4, np.float32)
    dst = np.empty_like(src)
    runs = {"numpy": lambda: np.matmul(a, b, out=c), "copy": lambda: np.copyto(dst, src)}
    x, y = T.fmatrix("x"), T.fmatrix("y")
    for name in backends:
        try:
            product = arignote.function([x, y], T.dot(x, y), backend=name)
            product(a, b)
        except Exception:  # a backend that fails says so in its own rows
            continue
        runs[name] = lambda product=product: product(a, b)
    times, _ = measure(runs, repeats, min_time)
    gemm = {name: 2 * n ** 3 / min(times[name]) for name in runs if name != "copy" and times[name]}
    fastest = max(gemm, key=gemm.get)
    return {"gemm_flops": gemm[fastest], "gemm_by": fastest, "gemm_numpy_flops": gemm["numpy"], "gemm_n": n,
            "bandwidth": 2 * src.nbytes / min(times["copy"]), "copy_bytes": src.nbytes}


def best_limits(*measured):
    """The best of each limit over the measurements (the GEMM's with the name of who ran it)."""
    best = {key: max(m[key] for m in measured) for key in measured[0] if key != "gemm_by"}
    best["gemm_by"] = max(measured, key=lambda m: m["gemm_flops"])["gemm_by"]
    return best


# ---------------------------------------------------------------------------------------------------
# The machine


def cpu_snapshot():
    """(CPU seconds the whole machine was busy, hypervisor steal included; CPU seconds of this process
    and its waited-for children; wall clock), or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return busy, sum(os.times()[:4]), time.perf_counter()


def other_load(before, after):
    """How many cores, on average, something other than this run kept busy while it ran (noise)."""
    if before is None or after is None:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / (after[2] - before[2]))


def machine():
    cpu, virtual = platform.processor() or platform.machine(), False
    try:
        with open("/proc/cpuinfo") as info:
            fields = dict(line.split(":", 1) for line in info.read().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        cpu = f"{fields['model name']} (family {fields['cpu family']}, model {fields['model']})"
        virtual = "hypervisor" in fields.get("flags", "").split()
    except (OSError, KeyError):
        pass
    try:
        blas = np.__config__.CONFIG["Build Dependencies"]["blas"]
        blas = f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:
        blas = "unknown BLAS"
    from ..backends.blas import entry_points

    # OpenBLAS's kernels set the GEMM peak (AVX2 ones reach half of an AVX-512 machine's)
    kernel_set = entry_points().get("kernel_set")
    if kernel_set:
        forced = os.environ.get("OPENBLAS_CORETYPE")
        blas += f", {kernel_set} kernels" + (f" (OPENBLAS_CORETYPE={forced})" if forced else "")
    return {"cpu": cpu, "cores": os.cpu_count(), "virtual": virtual, "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas}


# ---------------------------------------------------------------------------------------------------
# Running


def run_workload(workload, targets, sizes, repeats, min_time):
    """Rows for ``workload``: the NumPy baseline, then each target (verified first, then timed)."""
    data = workload.setup(sizes)
    base = workload.impls["numpy"](data, None)()
    want = base.result()
    runs, rows = {BASELINE: base.run}, {BASELINE: new_row(workload, BASELINE)}
    for target in targets:
        row = rows[target] = new_row(workload, target)
        make = workload.impls.get(target.family)
        if make is None:
            row.update(status="error", error=f"no {workload.name} implementation for {target.family}")
            continue
        try:
            compiled = make(data, target.name)()
            problem = mismatch(compiled.result(), want, workload.tol)
        except Exception as error:
            row.update(status="error", error=f"{type(error).__name__}: {error}".splitlines()[0])
            continue
        if problem:
            row.update(status="wrong", error=problem)
        else:
            runs[target] = compiled.run
    times, failed = measure(runs, repeats, min_time)
    if BASELINE in failed:
        raise RuntimeError(f"the NumPy baseline of {workload.name} failed: {failed[BASELINE]}")
    base_median = statistics.median(times[BASELINE])
    work = workload.work(sizes, data) if workload.work else None
    for target in runs:
        if target in failed:
            rows[target].update(status="error", error=failed[target])
        else:
            fill_row(rows[target], times[target], base_median, workload, work, sizes)
    return list(rows.values())


# Processes of their own: each peer's timing (its thread pools would slow the other targets: PyTorch's
# and JAX's loaded beside numba once took a numba row from 0.85x to 1.68x), and the memory measurements


CHILD_TIMEOUT = 3600  # seconds: a peer's whole set of workloads, or a backend's memory measurements


def own_process(target):
    """Whether ``target`` is timed in a process of its own: the peers."""
    return target.family not in ("numpy", "arignote")


def _import_module(target):
    if target.module:
        importlib.import_module(target.module)


def _memory(workload, target, sizes):
    """``footprint.call_memory`` of ``workload`` on ``target`` here, or {"error": why not}."""
    try:
        data = workload.setup(sizes)
        return footprint.call_memory(workload.impls[target.family](data, None if target == BASELINE else target.name))
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}".splitlines()[0]}


def target_child(spec):
    """In a process of its own: the rows of the workloads ``spec["time"]`` (the NumPy baseline and the
    target, interleaved), then the memory of the workloads ``spec["memory"]`` on the target (those it
    timed without failure). Prints {"rows": {workload: rows or why not}, "memory": {workload: ...}}."""
    spec = json.loads(spec)
    keep_freed_memory()  # as the main process does (a memory child's environment turns it off)
    target, sizes = Target(**spec["target"]), _sizes(spec["sizes"])
    answer = {"rows": {}, "memory": {}}
    try:
        _import_module(target)
    except Exception as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}".splitlines()[0]}))
        return
    for name in spec["time"]:
        try:
            answer["rows"][name] = run_workload(WORKLOADS[name], [target], sizes, spec["repeats"], spec["min_time"])
        except Exception as error:
            answer["rows"][name] = f"{type(error).__name__}: {error}".splitlines()[0]
    timed = {name: rows[-1]["status"] == "ok" for name, rows in answer["rows"].items() if isinstance(rows, list)}
    for name in spec["memory"]:
        if timed.get(name, True):
            answer["memory"][name] = _memory(WORKLOADS[name], target, sizes)
    print(json.dumps(answer))


def _spec(target, sizes, timed=(), memory=(), repeats=None, min_time=None):
    return {"target": dataclasses.asdict(target), "sizes": dataclasses.asdict(sizes), "repeats": repeats,
            "min_time": min_time, "time": [w.name for w in timed], "memory": [w.name for w in memory]}


def run_peer(target, workloads, sizes, repeats, min_time, memory=True):
    """The rows of the peer ``target`` for ``workloads``, measured in a process of its own: timed beside
    the NumPy baseline run there, their ratio to that baseline (its median is the row's
    ``baseline_median_s``); then, when ``memory``, the memory of each call there, once the timing is done
    (``footprint.return_freed`` changes glibc for good)."""
    spec = _spec(target, sizes, timed=workloads, memory=workloads if memory else (), repeats=repeats,
                 min_time=min_time)
    answer = _spawn("target_child", spec, f"{target.name} bench", timeout=CHILD_TIMEOUT)
    rows = []
    for workload in workloads:
        got = answer.get("rows", {}).get(workload.name, answer.get("error"))
        if isinstance(got, list):
            row = got[-1]
            row.update(own_process=True)
        else:
            row = new_row(workload, target, status="error", error=got, own_process=True)
        add_memory(row, answer.get("memory", {}).get(workload.name))
        rows.append(row)
    return rows


def run_memory(jobs, sizes):
    """{(workload name, target name): footprint.call_memory's answer or {"error": ...}} for each
    (target, workloads) of ``jobs``: each target in a process of its own that runs its workloads one after
    the other, glibc set from its start to give back what is freed (``footprint.ENV``)."""
    found = {}
    for target, workloads in jobs:
        answer = _spawn("target_child", _spec(target, sizes, memory=workloads), f"{target.name} memory",
                        env=dict(os.environ, **footprint.ENV), timeout=CHILD_TIMEOUT)
        for workload in workloads:
            found[workload.name, target.name] = (answer.get("memory", {}).get(workload.name)
                                                 or {"error": answer.get("error", "not measured")})
    return found


def add_memory(row, measured):
    """The memory measured for ``row`` (``footprint.call_memory``'s answer, or {"error": ...}, or None)."""
    if not measured:
        return row
    if "error" in measured:
        row["memory_error"] = measured["error"]
    else:
        row.update({key: measured[key] for key in ("peak_extra_bytes", "held_bytes", "left_bytes")})
    return row


# compile-cold and compile-warm: each run in a fresh process


def _cache_env(directory):
    env = dict(os.environ, ARIGNOTE_CACHE_DIR=directory, JAX_COMPILATION_CACHE_DIR=directory,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    env["PYTENSOR_FLAGS"] = (flags + "," if flags else "") + f"base_compiledir={directory}"
    return env


def _spawn(function, spec, what, env=None, timeout=None):
    """Run ``function(spec)``, a function of this module, in a fresh Python; its JSON answer (the last
    line of its stdout), or {"error": why there is none}."""
    child = f"import sys; from arignote.bench.harness import {function}; {function}(sys.argv[1])"
    command = [sys.executable, "-c", child, json.dumps(spec)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the {what} process took more than {timeout} s"}
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the {what} process failed (exit {done.returncode}): {tail}"}


def _sizes(spec):
    return Sizes(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})


def _spawn_compile(target, sizes, directory, program):
    """Run compile_child in a fresh Python with ``directory`` as every cache; its JSON answer."""
    spec = {"target": dataclasses.asdict(target), "sizes": dataclasses.asdict(sizes), "program": program}
    return _spawn("compile_child", spec, "compile", env=_cache_env(directory), timeout=600)


def compile_child(spec):
    """In a fresh process: build the graph of the workload named ``program``, then time compile() plus
    the first step; verify it."""
    spec = json.loads(spec)
    target = Target(**spec["target"])
    sizes = _sizes(spec["sizes"])
    program = WORKLOADS[spec["program"]]
    try:
        _import_module(target)
        data = program.setup(sizes)
        compile = program.impls[target.family](data, target.name)
        start = time.perf_counter()
        compiled = compile()
        out = compiled.run()
        seconds = time.perf_counter() - start
        answer = {"seconds": seconds, "error": None}
        if target != BASELINE:
            got = compiled.observe(out) if compiled.observe else _arrays(out)
            answer["error"] = mismatch(got, program.impls["numpy"](data, None)().result(), program.tol)
    except Exception as error:
        answer = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
    print(json.dumps(answer))


def run_compile(workloads, targets, sizes, repeats):
    """Rows for the compile-* workloads: fresh processes, a new cache directory per cold run, warm runs
    on the directory the first cold run filled; each compiled program (``Workload.program``) apart."""
    rows = []
    everyone = [BASELINE] + list(targets)
    results = {}
    for program in dict.fromkeys(w.program for w in workloads):
        kinds = {w.compile for w in workloads if w.program == program}
        for target in everyone:
            results[program, target, "cold"], results[program, target, "warm"] = [], []
        directories = {target: [tempfile.mkdtemp(prefix="arignote-bench-cache-") for _ in range(repeats)]
                       for target in everyone}
        try:
            # Rounds interleave the targets, as in measure(). Warm needs a filled cache: the first cold
            # run fills it (and is counted only when cold is asked for).
            for r in range(repeats if "cold" in kinds else 1):
                for target in everyone:
                    results[program, target, "cold"].append(
                        _spawn_compile(target, sizes, directories[target][r], program))
            for r in range(repeats if "warm" in kinds else 0):
                for target in everyone:
                    results[program, target, "warm"].append(
                        _spawn_compile(target, sizes, directories[target][0], program))
        finally:
            for directory in (d for ds in directories.values() for d in ds):
                shutil.rmtree(directory, ignore_errors=True)
    for workload in workloads:
        base = [a["seconds"] for a in results[workload.program, BASELINE, workload.compile] if a.get("error") is None]
        if not base:
            raise RuntimeError(f"the NumPy baseline of {workload.name} failed: "
                               f"{results[workload.program, BASELINE, workload.compile][0]['error']}")
        for target in everyone:
            answers = results[workload.program, target, workload.compile]
            row = new_row(workload, target)
            errors = [a["error"] for a in answers if a.get("error")]
            if errors:
                row.update(status="wrong" if errors[0].startswith("wrong") else "error", error=errors[0])
            else:
                fill_row(row, [a["seconds"] for a in answers], statistics.median(base), workload, None)
            rows.append(row)
    return rows
