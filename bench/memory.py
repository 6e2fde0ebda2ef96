"""The memory a long-running process keeps when it compiles many different graphs (docs/memory.md).

    python -m arignote.bench.memory [--graphs 2000] [--backend NAME ...] [--every 200]
                                    [--cache-dir DIR] [--max-rss-mb MB] [--json FILE]

Builds ``--graphs`` small graphs, each a new program (five families: elementwise, reductions, a product,
a gradient, views and indexing, each with a constant of its own), compiles each with ``function``,
calls it once and drops it, as a server or a hyper-parameter search would; every ``--every`` graphs it
records the process's resident memory (VmRSS), the memory malloc has handed out (glibc's mallinfo2),
its number of memory maps (/proc/self/maps) and the seconds so far. Each backend runs in a process of its own, with an empty cache directory (a temporary
one unless ``--cache-dir`` names one), so that every graph is compiled. The summary gives the growth
per graph over the second half of the run (what a longer run would keep adding) and the peak; with
``--max-rss-mb`` the exit status is 1 when a backend's peak exceeds it. Linux only (/proc).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FAMILIES = ("elementwise", "reduction", "product", "gradient", "views")


def graph(k):
    """(inputs, outputs, input values) of the k-th graph: family k % 5, with a constant no other has."""
    import numpy as np

    import arignote
    import arignote.tensor as T

    c = 1.0 + k * 1e-4  # a new constant: a new program (constants are part of the generated source)
    family = FAMILIES[k % len(FAMILIES)]
    x, y = T.matrices("x", "y")
    values = [np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(0, 2, 12).reshape(3, 4)]
    if family == "elementwise":
        return [x, y], [T.tanh(x) * c + T.exp(-y)], values
    if family == "reduction":
        return [x, y], [(x * c).sum(axis=1) - y.max(axis=0).sum(), T.mean(x - c)], values
    if family == "product":
        return [x, y], [T.maximum(T.dot(x, y.T) + c, 0)], values
    if family == "gradient":
        w = T.vector("w")
        loss = T.sum((T.dot(x, w) - c) ** 2)
        return [x, w], [loss, arignote.grad(loss, w)], [values[0], np.ones(4)]
    return [x, y], [x[::2, 1:] * c + y[::2, ::-1][:, 1:], x[[0, 2]].sum(axis=0)], values


def resident_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def malloc_in_use_mb():
    """The bytes malloc has handed out and not yet been given back (glibc's mallinfo2), or NaN: RSS
    minus this is code, maps and memory malloc keeps for reuse."""
    import ctypes

    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                     "keepcost")]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        return float("nan")
    mallinfo2.restype = Info
    info = mallinfo2()
    return (info.uordblks + info.hblkhd) / (1 << 20)


def memory_maps():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def measure(backend, graphs, every, out=None):
    """Compile and call ``graphs`` graphs on ``backend`` in this process; returns the rows
    [{"graphs", "rss_mb", "malloc_mb", "maps", "seconds"}], the first one after one graph of each family (imports
    and one-time set-up done)."""
    import arignote

    out = out or sys.stdout
    rows = []
    started = time.perf_counter()

    def record(n):
        rows.append({"graphs": n, "rss_mb": round(resident_mb(), 1), "malloc_mb": round(malloc_in_use_mb(), 1),
                     "maps": memory_maps(), "seconds": round(time.perf_counter() - started, 1)})
        row = rows[-1]
        print(f"{backend:>10} {n:>7} {row['rss_mb']:>9.1f} {row['malloc_mb']:>10.1f} {row['maps']:>6} {row['seconds']:>8.1f}",
              file=out, flush=True)

    for k in range(graphs):
        inputs, outputs, values = graph(k)
        f = arignote.function(inputs, outputs, backend=backend)
        f(*values)
        del f, inputs, outputs
        done = k + 1
        if done == min(len(FAMILIES), graphs) or done % every == 0 or done == graphs:
            record(done)
    return rows


def summary(backend, rows):
    """Growth per graph over the second half of the run, and the peak."""
    first, last = rows[0], rows[-1]
    middle = min(rows, key=lambda r: abs(r["graphs"] - last["graphs"] / 2))
    if last["graphs"] > middle["graphs"]:
        span = last["graphs"] - middle["graphs"]
    else:
        middle, span = first, max(1, last["graphs"] - first["graphs"])
    return {"backend": backend, "graphs": last["graphs"], "start_rss_mb": first["rss_mb"],
            "peak_rss_mb": max(r["rss_mb"] for r in rows), "end_rss_mb": last["rss_mb"],
            "kb_per_graph": round((last["rss_mb"] - middle["rss_mb"]) * 1024 / span, 1),
            "maps_per_graph": round((last["maps"] - middle["maps"]) / span, 2),
            "start_maps": first["maps"], "end_maps": last["maps"], "seconds": last["seconds"]}


def _one_backend(args):
    """Run in the child process: one backend, rows as JSON on the last line of stdout."""
    import arignote

    arignote.config.cache_dir = args.cache_dir
    rows = measure(args.backend[0], args.graphs, args.every, out=sys.stderr)
    print(json.dumps(rows))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m arignote.bench.memory", description=__doc__.split("\n\n")[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", type=int, default=2000, help="how many different graphs (default 2000)")
    parser.add_argument("--backend", action="append", help="a backend (repeat it; default: every usable one)")
    parser.add_argument("--every", type=int, default=200, help="record every N graphs (default 200)")
    parser.add_argument("--cache-dir", help="the cache directory (default: a new temporary one per backend)")
    parser.add_argument("--max-rss-mb", type=float, help="exit status 1 when a backend's peak RSS exceeds this")
    parser.add_argument("--json", help="write the rows and summaries to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _one_backend(args)
    if not args.backend:
        from arignote.core.plugins import registry

        args.backend = [name for name in registry.names() if registry.availability(name)]
    print(f"{'backend':>10} {'graphs':>7} {'RSS (MB)':>9} {'malloc (MB)':>10} {'maps':>6} {'seconds':>8}", flush=True)
    report, failed = {}, False
    for backend in args.backend:
        with tempfile.TemporaryDirectory(prefix="arignote-memory-") as scratch:
            command = [sys.executable, "-m", "arignote.bench.memory", "--child", "--backend", backend,
                       "--graphs", str(args.graphs), "--every", str(args.every),
                       "--cache-dir", args.cache_dir or os.path.join(scratch, "cache")]
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=None, text=True)
        if done.returncode != 0:
            print(f"{backend}: the measuring process failed (exit status {done.returncode})", flush=True)
            failed = True
            continue
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        report[backend] = {"rows": rows, "summary": summary(backend, rows)}
    print()
    print(f"{'backend':>10} {'graphs':>7} {'start MB':>9} {'peak MB':>8} {'KB/graph':>9} {'maps':>12} {'maps/graph':>10}")
    for backend, result in report.items():
        s = result["summary"]
        over = args.max_rss_mb is not None and s["peak_rss_mb"] > args.max_rss_mb
        failed |= over
        print(f"{backend:>10} {s['graphs']:>7} {s['start_rss_mb']:>9.1f} {s['peak_rss_mb']:>8.1f} {s['kb_per_graph']:>9.1f} "
              f"{s['start_maps']:>5} -> {s['end_maps']:<5} {s['maps_per_graph']:>10.2f}"
              + (f"  over {args.max_rss_mb:g} MB" if over else ""))
    print("(KB/graph and maps/graph: the growth over the second half of the run)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
