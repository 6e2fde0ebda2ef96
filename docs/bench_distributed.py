"""Throughput of data parallelism over MPI on one machine: the benchmark MLP's training step (784-500-10,
tanh, softmax, mean NLL, L2, SGD: bench's mlp-train-b500) with a batch of 500 per rank, on 1 rank and on
2 ranks, every rank on one thread (OPENBLAS_NUM_THREADS=1 ARIGNOTE_THREADS=1).

    python docs/bench_distributed.py [--backend c] [--steps 40] [--batch 500] [--ranks 2]

prints the per-sample throughput of each, their ratio, the share of a step that the ranks spend in the
allreduce of the gradients (waiting for the slower rank included), and the allreduce alone, timed with
the ranks in step (what the link costs); then the machine's ceiling: as many ranks each training alone,
without allreduce (what running side by side costs). Needs ``pip install 'arignote[mpi]'``.
Run alone, it launches itself under ``mpiexec -n 1`` and ``mpiexec -n RANKS``.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np


def measure(backend, steps, batch, how="functions", independent=False):
    """One launch: the step's median time and the share in the allreduce (rank 0 prints JSON)."""
    import arignote
    import arignote.distributed as dist
    import arignote.tensor as T

    ranks = dist.size()
    if os.environ.get("BENCH_SPIN"):
        dist.SPIN = float(os.environ["BENCH_SPIN"])
    rng = np.random.default_rng(20 + dist.rank())  # each rank its own data
    sizes = (784, 500, 10)
    x_data = rng.random((batch, sizes[0]), dtype=np.float32)
    y_data = rng.integers(0, sizes[2], batch).astype(np.int32)
    bounds = [np.sqrt(6 / (sizes[0] + sizes[1])), np.sqrt(6 / (sizes[1] + sizes[2]))]
    params = [arignote.shared(rng.uniform(-bounds[0], bounds[0], sizes[:2]).astype(np.float32), name="W1"),
              arignote.shared(np.zeros(sizes[1], np.float32), name="b1"),
              arignote.shared(rng.uniform(-bounds[1], bounds[1], sizes[1:]).astype(np.float32), name="W2"),
              arignote.shared(np.zeros(sizes[2], np.float32), name="b2")]
    W1, b1, W2, b2 = params
    x, y = T.fmatrix("x"), T.ivector("y")
    prob = T.nnet.softmax(T.dot(T.tanh(T.dot(x, W1) + b1), W2) + b2)
    cost = T.mean(T.nnet.categorical_crossentropy(prob, y)) + np.float32(1e-4) * ((W1 ** 2).sum() + (W2 ** 2).sum())
    grads = arignote.grad(cost, params)
    sgd = lambda grads: [(p, p - np.float32(0.01) * g) for p, g in zip(params, grads)]  # noqa: E731
    if ranks == 1 or independent:  # the plain step
        step = arignote.function([x, y], cost, updates=sgd(grads), backend=backend)
    elif how == "op":  # one function around allreduce_gradients' Python op
        dist.broadcast_parameters(params)
        step = arignote.function([x, y], cost, updates=sgd(dist.allreduce_gradients(grads)), backend=backend)
    else:  # as the Trainer does: the gradients packed, their sum (allreduce_packed), the update of the means
        dist.broadcast_parameters(params)
        packed = dist.packed_gradients(cost, params, x.shape[0])
        gradients = arignote.function([x, y], [cost, packed], backend=backend)
        summed = packed.type()
        apply = arignote.function([summed], [], updates=sgd(dist.unpacked_means(summed, params)), backend=backend)

        def step(x_data, y_data):
            value, vector = gradients(x_data, y_data)
            apply(dist.allreduce_packed(vector, len(x_data)))
            return value
    for _ in range(3):
        step(x_data, y_data)
    dist.allreduce_(np.zeros(1))  # start together
    dist.stats.reset()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x_data, y_data)
        times.append(time.perf_counter() - start)
    share = dist.stats.seconds / sum(times)
    shares = dist.average([share])  # the mean over ranks
    arrays = [p.get_value() for p in params]
    alone = []
    for _ in range(steps):  # the allreduce alone, the ranks in step: what the link costs, no waiting
        dist.allreduce_(np.zeros(1))
        start = time.perf_counter()
        dist.allreduce_arrays(arrays)
        alone.append(time.perf_counter() - start)
    if dist.is_root():
        print(json.dumps(dict(ranks=ranks, independent=independent, step=float(np.median(times)),
                              allreduce_share=shares[0],
                              allreduce_alone=float(np.median(alone)),
                              bytes=dist.stats.bytes / max(dist.stats.calls, 1),
                              samples_per_second=ranks * batch / float(np.median(times)))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="c")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500, help="samples per rank per step")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--how", choices=["functions", "op"], default="functions",
                        help="functions: packed gradients, allreduce_packed, update (as the Trainer); op: one "
                             "function around allreduce_gradients")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return measure(args.backend, args.steps, args.batch, args.how, args.independent)
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("needs mpiexec and mpi4py: pip install 'arignote[mpi]'")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", ARIGNOTE_THREADS="1", OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    results = []
    for ranks, independent in ((1, False), (args.ranks, False), (args.ranks, True)):
        command = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--child",
                   "--backend", args.backend, "--steps", str(args.steps), "--batch", str(args.batch),
                   "--how", args.how]
        done = subprocess.run(command + ["--independent"] * independent, env=env, capture_output=True, text=True,
                              timeout=600)
        if done.returncode:
            sys.exit(done.stdout + done.stderr)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    one, many, alone = results
    print(f"mlp 784-500-10, batch {args.batch} per rank, backend {args.backend}, {args.how}, one thread per rank, "
          f"{os.cpu_count()} cores")
    for r in (one, many):
        print(f"  {r['ranks']} rank(s): step {r['step'] * 1000:.1f} ms, {r['samples_per_second']:.0f} samples/s, "
              f"allreduce {r['allreduce_share']:.1%} of a step ({r['bytes'] / 1e6:.2f} MB per rank; "
              f"alone, the ranks in step: {r['allreduce_alone'] * 1000:.2f} ms)")
    print(f"  throughput ratio {many['samples_per_second'] / one['samples_per_second']:.2f}x (target >= 1.8x)")
    print(f"  the machine's ceiling: {alone['ranks']} ranks each training alone (no allreduce): step "
          f"{alone['step'] * 1000:.1f} ms, {alone['samples_per_second'] / one['samples_per_second']:.2f}x")


if __name__ == "__main__":
    main()
